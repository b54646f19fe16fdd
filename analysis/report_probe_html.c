/* report_probe_html.c: the report sections drawn from probe files (attention maps of the probe
 * sequence, value norm and alpha per position) and the mechanics section: one small chart for
 * every probe metric the metric table sends there (metric_table.h), over steps or positions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/plot.h"
#include "analysis/report_run.h"

static void write_probe_text(FILE *f, const ProbeFile *pf)
{
    const JsonValue *text = json_get(pf->doc.root, "text");
    if (!text || text->type != JSON_STRING) return;
    fputs("<pre class=\"probe\">", f);
    /* Highlight key 0: the first UTF-8 character of the decoded text. */
    const char *s = text->str;
    int first = s[0] ? 1 : 0;
    while (first && (s[first] & 0xc0) == 0x80) first++;
    if (first) {
        char head[8] = { 0 };
        memcpy(head, s, (size_t)(first < 7 ? first : 7));
        fputs("<mark title=\"key 0\">", f);
        report_esc(f, head);
        fputs("</mark>", f);
    }
    report_esc(f, s + first);
    fputs("</pre>\n", f);
}

static void cbar_legend(FILE *f)
{
    fputs("<div class=\"cbar\"><span>attention</span><div><div class=\"bar\" style=\"background:linear-gradient(to right", f);
    for (int i = 0; i <= 16; i++) {
        char c[8];
        plot_cmap_color(c, PLOT_CMAP_BLUES, i / 16.0);
        fprintf(f, ",%s %.2f%%", c, 100.0 * i / 16);
    }
    fputs(")\"></div><div class=\"ticks\">", f);
    static const double vals[] = { 0, 0.01, 0.05, 0.1, 0.25, 0.5, 1 };
    static const char *labs[] = { "0", ".01", ".05", ".1", ".25", ".5", "1" };
    for (int i = 0; i < 7; i++) fprintf(f, "<span style=\"left:%.1f%%\">%s</span>", 100 * sqrt(vals[i]), labs[i]);
    fputs("</div></div><span>(square-root scale; light grey = masked)</span></div>\n", f);
}

static int write_maps_for(FILE *f, const ProbeFile *pf, int causal, double *buf, char *err, size_t n_err)
{
    int layers[2] = { 0, pf->L - 1 }, n_layers = pf->L > 1 ? 2 : 1;
    fprintf(f, "<div class=\"ckpt\"><h4>step %d</h4><div class=\"maps\">\n", pf->step);
    for (int li = 0; li < n_layers; li++) {
        int l = layers[li];
        for (int h = 0; h < pf->H; h++) {
            if (report_probe_block(buf, pf, "attn", l, h, 1)) {
                snprintf(err, n_err, "%s: attn[%d][%d]: expected a %d x %d matrix (attn: [[T x T per head] per layer])",
                         pf->path, l, h, pf->T, pf->T);
                return -1;
            }
            char title[64];
            double a0 = NAN;
            if (!report_probe_block(buf + (size_t)pf->T * pf->T, pf, "alpha", l, h, 0)) a0 = buf[(size_t)pf->T * pf->T];
            if (isfinite(a0)) snprintf(title, sizeof title, "L%d h%d · α₀ %.2f", l, h, a0);
            else snprintf(title, sizeof title, "L%d h%d", l, h);
            PlotHeatmap hm = { .width = 200, .height = 214, .title = title, .xlabel = "key", .ylabel = "query",
                               .vmin = 0, .vmax = 1, .scale = PLOT_SCALE_SQRT, .cmap = PLOT_CMAP_BLUES,
                               .mask_upper = causal, .square = 1 };
            fputs("<figure>", f);
            plot_heatmap(f, &hm, buf, pf->T, pf->T);
            fputs("</figure>\n", f);
        }
    }
    fputs("</div></div>\n", f);
    return 0;
}

/* Mean over heads of key[l][h][T] for each layer: out (L, T). */
static int layer_means(double *out, double *tmp, const ProbeFile *pf, const char *key)
{
    for (int l = 0; l < pf->L; l++) {
        for (int t = 0; t < pf->T; t++) out[l * pf->T + t] = 0;
        for (int h = 0; h < pf->H; h++) {
            if (report_probe_block(tmp, pf, key, l, h, 0)) return -1;
            for (int t = 0; t < pf->T; t++) out[l * pf->T + t] += tmp[t] / pf->H;
        }
    }
    return 0;
}

static void write_positions(FILE *f, const ProbeFile *pf, int causal)
{
    int T = pf->T, L = pf->L;
    double *y = malloc((size_t)(L + 1) * T * sizeof *y), *tmp = malloc((size_t)T * sizeof *tmp);
    double *x = malloc((size_t)T * sizeof *x), *uni = malloc((size_t)T * sizeof *uni);
    PlotSeries *s = malloc((size_t)(L + 1) * sizeof *s);
    char (*lab)[16] = malloc((size_t)L * sizeof *lab);
    if (!y || !tmp || !x || !uni || !s || !lab) goto out;
    for (int t = 0; t < T; t++) x[t] = t;
    fputs("<div class=\"grid\">\n", f);
    char cap[600];
    report_fig_begin(f, NULL, "Value norm per position");
    if (!layer_means(y, tmp, pf, "value_norm")) {
        for (int l = 0; l < L; l++) {
            snprintf(lab[l], 16, "L%d", l);
            s[l] = (PlotSeries){ .label = lab[l], .x = x, .y = y + l * T, .n = T };
        }
        PlotAxes ax = { .width = 560, .height = 300, .xlabel = "position k", .ylabel = "‖vₖ‖ (mean over heads)", .y_from_zero = 1 };
        plot_lines(f, &ax, s, L);
    } else {
        fputs("<p class=\"empty\">No value_norm in this probe file.</p>", f);
    }
    snprintf(cap, sizeof cap, "Norm of the value vector at each position k, averaged over heads and probe sequences "
             "(step %d), one line per layer. A sink whose value norm at k = 0 is far below the rest is a 'no-op' key: "
             "heads can park attention there without changing their output.", pf->step);
    report_fig_end(f, cap);
    report_fig_begin(f, NULL, "Attention received per position (αₖ)");
    if (!layer_means(y, tmp, pf, "alpha")) {
        for (int l = 0; l < L; l++) s[l] = (PlotSeries){ .label = lab[l], .x = x, .y = y + l * T, .n = T };
        int ns = L;
        if (causal) {
            /* Uniform causal attention: alpha_k = (1/(T-k)) sum_{i=k}^{T-1} 1/(i+1). */
            double acc = 0;
            for (int k = T - 1; k >= 0; k--) { acc += 1.0 / (k + 1); uni[k] = acc / (T - k); }
            s[ns++] = (PlotSeries){ .label = "uniform", .x = x, .y = uni, .n = T, .color = "#7a818c", .dashed = 1, .width = 1.4 };
        }
        PlotAxes ax = { .width = 560, .height = 300, .xlabel = "key position k", .ylabel = "αₖ (mean over heads)", .log_y = 1 };
        plot_lines(f, &ax, s, ns);
    } else {
        fputs("<p class=\"empty\">No alpha in this probe file.</p>", f);
    }
    snprintf(cap, sizeof cap, "αₖ: mean attention key k receives from the queries that can see it, averaged over heads "
             "and probe sequences (step %d), log scale. A sink is a spike at k = 0 far above the dashed level that "
             "uniform causal attention would give.", pf->step);
    report_fig_end(f, cap);
    fputs("</div>\n", f);
out:
    free(y); free(tmp); free(x); free(uni); free(s); free(lab);
}

int report_write_probe_sections(FILE *f, const Run *run, char *err, size_t n_err)
{
    const char *kind = kv_get(run->cfg, "model.kind");
    int causal = !kind || strcmp(kind, "causal") == 0;
    fputs("<section id=\"attention\"><h2>Attention maps</h2>\n", f);
    if (run->n_probe_files == 0) {
        fputs("<p class=\"empty\">No probe/step_*.json files (they are written at checkpoints).</p></section>\n"
              "<section id=\"positions\"><h2>Positions</h2><p class=\"empty\">No probe files.</p></section>\n", f);
        return 0;
    }
    int pick[3], n_pick = 0, n = run->n_probe_files;
    int cand[3] = { 0, n / 2, n - 1 };
    for (int i = 0; i < 3; i++)
        if (n_pick == 0 || cand[i] != pick[n_pick - 1]) pick[n_pick++] = cand[i];
    ProbeFile pf;
    int rc = 0;
    double *buf = NULL;
    for (int i = 0; i < n_pick && !rc; i++) {
        if (report_load_probe_file(&pf, run->dir, run->probe_steps[pick[i]], err, n_err)) return -1;
        if (i == 0) {
            fputs("<p class=\"lead\">Attention of probe sequence 0 in the first and the last layer, every head, at the first, "
                  "middle and last checkpoint (rows: queries, columns: keys). A bright first column is a sink on key 0. "
                  "The sequence (key 0 highlighted):</p>\n", f);
            write_probe_text(f, &pf);
            cbar_legend(f);
        }
        buf = realloc(buf, ((size_t)pf.T * pf.T + pf.T) * sizeof *buf);
        if (!buf) { snprintf(err, n_err, "%s: out of memory", pf.path); json_free(&pf.doc); return -1; }
        rc = write_maps_for(f, &pf, causal, buf, err, n_err);
        if (i == n_pick - 1 && !rc) {
            fputs("</section>\n<section id=\"positions\"><h2>Positions</h2>\n", f);
            write_positions(f, &pf, causal);
            fputs("</section>\n", f);
        }
        json_free(&pf.doc);
    }
    free(buf);
    return rc;
}

/* ---------- mechanics: every other metric, one small chart each ---------- */

/* " (p = 1)": the last logged values of the metrics shown in m's title. */
static void title_notes(char *out, size_t n, const ProbeTable *p, MetricId m)
{
    size_t k = 0;
    out[0] = 0;
    for (int g = 0; g < METRIC_COUNT && k < n; g++) {
        const MetricDef *d = metric_def((MetricId)g);
        if (d->chart != METRIC_CHART_TITLE_OF || d->host != m || !p->present[g]) continue;
        double v = NAN;
        for (int r = p->n - 1; r >= 0 && isnan(v); r--) v = p->col[g][r];
        if (isfinite(v)) k += (size_t)snprintf(out + k, n - k, " (%s = %g)", d->ylabel, v);
    }
}

static void write_metric_chart(FILE *f, const ProbeTable *p, MetricId m, double *buf)
{
    const MetricDef *ms = metric_def(m);
    int w = report_metric_width(p, m);
    int n_lines = ms->shape == METRIC_SHAPE_SCALAR ? 1 : ms->shape == METRIC_SHAPE_DEPTH ? p->L + 1 : p->L;
    int per = ms->shape == METRIC_SHAPE_HEAD ? p->H : 1;
    /* Keep only rows where the metric was measured, so sparse (heavy) metrics draw connected lines. */
    double *x = buf, *y = buf + p->n;
    int nr = 0;
    for (int r = 0; r < p->n; r++) {
        const double *v = p->col[m] + (size_t)r * w;
        int any = 0;
        for (int i = 0; i < w; i++) any |= !isnan(v[i]);
        if (!any) continue;
        x[nr] = p->step[r];
        for (int k = 0; k < n_lines; k++) {
            double acc = 0;
            int cnt = 0;
            for (int j = 0; j < per; j++) {
                double e = v[k * per + j];
                if (isfinite(e)) { acc += e; cnt++; }
            }
            y[(size_t)k * p->n + nr] = cnt ? acc / cnt : NAN;
        }
        nr++;
    }
    PlotSeries s[130];
    char lab[130][16];
    if (n_lines > 129) n_lines = 129;
    for (int k = 0; k < n_lines; k++) {
        if (ms->shape == METRIC_SHAPE_DEPTH) {
            if (k == 0) snprintf(lab[k], 16, "emb");
            else snprintf(lab[k], 16, "L%d", k - 1);
        } else {
            snprintf(lab[k], 16, "L%d", k);
        }
        s[k] = (PlotSeries){ .label = ms->shape == METRIC_SHAPE_SCALAR ? NULL : lab[k], .x = x,
                             .y = y + (size_t)k * p->n, .n = nr, .markers = nr <= 30 };
    }
    char title[256], notes[128];
    title_notes(notes, sizeof notes, p, m);
    snprintf(title, sizeof title, "%s%s", ms->title, notes);
    PlotAxes ax = { .width = 440, .height = 250, .xlabel = "step", .ylabel = ms->ylabel, .log_y = ms->log_y };
    report_fig_begin(f, NULL, title);
    plot_lines(f, &ax, s, n_lines);
    report_fig_end(f, ms->caption);
}

/* A per-position metric at its first, middle and last logged step, one line each. */
static void write_position_chart(FILE *f, const PositionRows *pr, MetricId m)
{
    const MetricDef *ms = metric_def(m);
    int T = pr->T, pick[3], n_pick = 0;
    int cand[3] = { 0, pr->n / 2, pr->n - 1 };
    for (int i = 0; i < 3; i++)
        if (n_pick == 0 || cand[i] != pick[n_pick - 1]) pick[n_pick++] = cand[i];
    double *x = malloc((size_t)T * sizeof *x);
    if (!x) return;
    for (int t = 0; t < T; t++) x[t] = t;
    PlotSeries s[3];
    char lab[3][32];
    for (int i = 0; i < n_pick; i++) {
        snprintf(lab[i], sizeof lab[i], "step %.0f", pr->step[pick[i]]);
        s[i] = (PlotSeries){ .label = lab[i], .x = x, .y = pr->v + (size_t)pick[i] * T, .n = T,
                             .color = plot_palette(i), .markers = T <= 30 };
    }
    PlotAxes ax = { .width = 440, .height = 250, .xlabel = "input position i", .ylabel = ms->ylabel,
                    .log_y = ms->log_y };
    report_fig_begin(f, NULL, ms->title);
    plot_lines(f, &ax, s, n_pick);
    report_fig_end(f, ms->caption);
    free(x);
}

static int drawn_in_mechanics(const ProbeTable *p, MetricId m)
{
    MetricChart c = metric_def(m)->chart;
    if (c == METRIC_CHART_BY_POSITION) return p->pos[m].n > 0 && p->pos[m].T > 0;
    return c == METRIC_CHART_MECHANICS && p->present[m];
}

void report_write_mechanics(FILE *f, const ProbeTable *p)
{
    fputs("<section id=\"mechanics\"><h2>Mechanics</h2>\n<p class=\"lead\">Quantities that explain why sinks form and "
          "what they do. The costlier ones are measured at checkpoints (and every <code>probe.heavy_every</code> "
          "steps), so their curves have fewer points.</p>\n", f);
    int any = 0;
    for (int m = 0; m < METRIC_COUNT; m++) any |= drawn_in_mechanics(p, (MetricId)m);
    if (!any || p->n == 0) {
        fputs("<p class=\"empty\">This run logged none of the mechanism metrics.</p></section>\n", f);
        return;
    }
    int max_lines = p->L + 1;
    double *buf = malloc((size_t)p->n * (max_lines + 1) * sizeof *buf);
    if (!buf) { fputs("</section>\n", f); return; }
    fputs("<div class=\"grid small\">\n", f);
    for (int m = 0; m < METRIC_COUNT; m++) {
        if (!drawn_in_mechanics(p, (MetricId)m)) continue;
        if (metric_def((MetricId)m)->chart == METRIC_CHART_BY_POSITION)
            write_position_chart(f, &p->pos[m], (MetricId)m);
        else
            write_metric_chart(f, p, (MetricId)m, buf);
    }
    fputs("</div></section>\n", f);
    free(buf);
}
