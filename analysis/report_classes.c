/* report_classes.c: the report's "Active and dormant heads" section, drawn when the probe logged
 * the query-class metrics (metric table chart METRIC_CHART_CLASSES): attention on BOS from
 * dormant vs active queries per head, and the probe loss split by query class. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "analysis/plot.h"
#include "analysis/report_run.h"

/* Per head when there are few heads, else the mean over each layer's heads: y (n_lines, 2, n). */
static int class_lines(double *y, PlotSeries *s, char (*lab)[48], const ProbeTable *p)
{
    int LH = p->L * p->H, per_head = LH <= 8, n_lines = per_head ? LH : p->L;
    for (int k = 0; k < n_lines; k++) {
        for (int which = 0; which < 2; which++) {
            const double *col = p->col[which ? METRIC_ALPHA_BOS_ACTIVE : METRIC_ALPHA_BOS_DORMANT];
            double *yy = y + (size_t)(2 * k + which) * p->n;
            for (int r = 0; r < p->n; r++) {
                if (per_head) { yy[r] = col[(size_t)r * LH + k]; continue; }
                double acc = 0;
                for (int h = 0; h < p->H; h++) acc += col[(size_t)r * LH + k * p->H + h];
                yy[r] = acc / p->H;
            }
            if (per_head) snprintf(lab[2 * k + which], 48, "L%d h%d %s", k / p->H, k % p->H, which ? "active" : "dormant");
            else snprintf(lab[2 * k + which], 48, "L%d %s", k, which ? "active" : "dormant");
            s[2 * k + which] = (PlotSeries){ .label = lab[2 * k + which], .x = p->step, .y = yy, .n = p->n,
                                             .color = plot_palette(k), .dashed = which };
        }
    }
    return per_head;
}

static void write_class_loss(FILE *f, const ProbeTable *p)
{
    report_fig_begin(f, NULL, metric_chart_title(METRIC_LOSS_COPY));
    PlotSeries ls[2] = {
        { .label = "copy positions (after a trigger)", .x = p->step, .y = p->col[METRIC_LOSS_COPY], .n = p->n,
          .color = "#e15759" },
        { .label = "Markov positions", .x = p->step, .y = p->col[METRIC_LOSS_MARKOV], .n = p->n, .color = "#4e79a7" },
    };
    PlotAxes la = { .width = 560, .height = 320, .xlabel = "step", .ylabel = metric_def(METRIC_LOSS_COPY)->ylabel,
                    .y_from_zero = 1 };
    plot_lines(f, &la, ls, 2);
    report_fig_end(f, "Cross-entropy of the probe set split by query class. The copy loss falls towards 0 once a head "
                      "attends to the token before the trigger; the Markov loss can only fall to the entropy of the "
                      "bigram chain. Compare the step where the copy loss drops with the dormant curve.");
}

/* Guo et al. 2024: attention on BOS from trigger queries (active) and from the other queries
 * (dormant) per head, and the loss of copy vs Markov positions: the copy circuit and the sink
 * appear together. */
void report_write_classes(FILE *f, const ProbeTable *p)
{
    if (!p->present[METRIC_ALPHA_BOS_ACTIVE] || !p->present[METRIC_ALPHA_BOS_DORMANT]) return;
    int LH = p->L * p->H, n_lines = LH <= 8 ? LH : p->L;
    double *y = malloc((size_t)p->n * (2 * n_lines) * sizeof *y);
    PlotSeries *s = malloc((size_t)(2 * n_lines) * sizeof *s);
    char (*lab)[48] = malloc((size_t)n_lines * 2 * sizeof *lab);
    if (!y || !s || !lab) goto out;
    fputs("<section id=\"classes\"><h2>Active and dormant heads</h2>\n<p class=\"lead\">The data marks the queries whose "
          "target must be recalled from context (bigram_backcopy: a trigger, after which the token before it is copied). "
          "Guo et al. 2024: a head that serves only those queries is <em>active</em> on them and <em>dormant</em> on the "
          "rest, parking their attention on BOS: the sink.</p>\n<div class=\"grid\">\n", f);
    report_fig_begin(f, NULL, metric_chart_title(METRIC_ALPHA_BOS_ACTIVE));
    int per_head = class_lines(y, s, lab, p);
    PlotAxes ax = { .width = 560, .height = 320, .xlabel = "step", .ylabel = metric_def(METRIC_ALPHA_BOS_ACTIVE)->ylabel,
                    .fix_y = 1, .ymin = 0, .ymax = 1 };
    plot_lines(f, &ax, s, 2 * n_lines);
    report_fig_end(f, per_head ? "Solid: mean attention on BOS from non-trigger (dormant) queries; dashed: from trigger "
                                 "(active) queries, per head. A sink head rises on the solid line while its dashed line "
                                 "stays near 0."
                               : "Solid: mean attention on BOS from non-trigger (dormant) queries; dashed: from trigger "
                                 "(active) queries, averaged over the heads of each layer.");
    if (p->present[METRIC_LOSS_COPY] && p->present[METRIC_LOSS_MARKOV]) write_class_loss(f, p);
    fputs("</div></section>\n", f);
out:
    free(y); free(s); free(lab);
}
