/* compare.c: compare.html (see compare.h): self-contained (inline SVG from plot.c, no scripts). */
#include "analysis/compare.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/plot.h"
#include "analysis/stats.h"

/* ---- statistics ---- */

/* A group's mean and 95% interval (stats_mean); a group of one run is its own interval. */
static void group_mean(double *mean, double *lo, double *hi, const double *x, int n)
{
    Estimate e = stats_mean(x, n, COMPARE_RESAMPLES);
    *mean = e.value;
    *lo = n == 1 ? e.value : e.lo;
    *hi = n == 1 ? e.value : e.hi;
}

/* ---- groups ---- */

typedef struct {
    char value[128];
    int n, *runs;
} Group;

typedef struct {
    const RunSet *rs;
    const char *by;             /* NULL: every run in one group */
    int n_groups;
    Group *groups;
    int *group_of;              /* per run */
} Groups;

static const char *default_key(const RunSet *rs)
{
    for (int i = 0; i < rs->n_varying; i++)
        if (strcmp(rs->varying[i], "train.seed")) return rs->varying[i];
    return NULL;
}

static int make_groups(Groups *g, const RunSet *rs, const char *by)
{
    memset(g, 0, sizeof *g);
    g->rs = rs;
    g->by = by;
    g->groups = calloc((size_t)rs->n, sizeof *g->groups);
    g->group_of = calloc((size_t)rs->n, sizeof *g->group_of);
    if (!g->groups || !g->group_of) return -1;
    for (int r = 0; r < rs->n; r++) {
        const char *v = by ? run_config(&rs->runs[r], by) : "all runs";
        if (!v) v = "?";
        int k = 0;
        while (k < g->n_groups && strcmp(g->groups[k].value, v)) k++;
        if (k == g->n_groups) {
            snprintf(g->groups[k].value, sizeof g->groups[k].value, "%s", v);
            g->groups[k].runs = calloc((size_t)rs->n, sizeof(int));
            if (!g->groups[k].runs) return -1;
            g->n_groups++;
        }
        g->groups[k].runs[g->groups[k].n++] = r;
        g->group_of[r] = k;
    }
    return 0;
}

static void free_groups(Groups *g)
{
    for (int k = 0; k < g->n_groups; k++) free(g->groups[k].runs);
    free(g->groups);
    free(g->group_of);
}

/* The value of s at exactly step, or NaN. */
static double value_at(const RunSeries *s, double step)
{
    int lo = 0, hi = s ? s->n - 1 : -1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (s->step[mid] == step) return s->value[mid];
        if (s->step[mid] < step) lo = mid + 1;
        else hi = mid - 1;
    }
    return NAN;
}

/* Mean and interval across a group's runs at each step of its first run that every run logged. */
typedef struct {
    int n;
    double *x, *mean, *lo, *hi;
} Band;

static void band_free(Band *b)
{
    free(b->x);
    free(b->mean);
    free(b->lo);
    free(b->hi);
}

static void group_band(Band *b, const RunSet *rs, const Group *g, const char *metric)
{
    memset(b, 0, sizeof *b);
    const RunSeries *first = run_series(&rs->runs[g->runs[0]], metric);
    if (!first || !first->n) return;
    b->x = malloc((size_t)first->n * sizeof(double));
    b->mean = malloc((size_t)first->n * sizeof(double));
    b->lo = malloc((size_t)first->n * sizeof(double));
    b->hi = malloc((size_t)first->n * sizeof(double));
    double *vals = malloc((size_t)g->n * sizeof(double));
    if (!b->x || !b->mean || !b->lo || !b->hi || !vals) {
        free(vals);
        return;
    }
    for (int p = 0; p < first->n; p++) {
        int ok = 1;
        for (int i = 0; i < g->n && ok; i++) {
            vals[i] = value_at(run_series(&rs->runs[g->runs[i]], metric), first->step[p]);
            ok = isfinite(vals[i]);
        }
        if (!ok) continue;
        b->x[b->n] = first->tokens[p];
        group_mean(&b->mean[b->n], &b->lo[b->n], &b->hi[b->n], vals, g->n);
        b->n++;
    }
    free(vals);
}

/* ---- page ---- */

static const char *CSS =
    "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1f2430;margin:0;background:#fafbfc}\n"
    "main{max-width:1160px;margin:0 auto;padding:20px 28px}h1{font-size:22px;margin:8px 0}\n"
    "h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid #e3e6eb;padding-bottom:4px}\n"
    "h3{font-size:14px;margin:6px 0}.lead{color:#4a5160;max-width:900px}\n"
    ".grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:18px}\n"
    "figure{margin:0;background:#fff;border:1px solid #e3e6eb;border-radius:6px;padding:10px}\n"
    "figcaption{color:#5b6270;font-size:12.5px;margin-top:4px}svg{width:100%;height:auto}\n"
    "table{border-collapse:collapse;background:#fff;font-size:13px;margin:6px 0}\n"
    "td,th{border:1px solid #e3e6eb;padding:4px 8px;text-align:left;vertical-align:top;max-width:420px;"
    "overflow-wrap:anywhere}\n"
    "th{background:#f3f5f8}td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    "code{background:#f0f2f5;padding:0 3px;border-radius:3px}\n";

static void esc(FILE *f, const char *s) { plot_write_escaped(f, s); }

static const char *group_color(const Groups *g, int r) { return plot_palette(g->group_of[r]); }

static void write_differences(FILE *f, const RunSet *rs, const char *const *diffs)
{
    fputs("<h2 id=\"config\">Runs and their config differences</h2>\n<p class=\"lead\">Only the config keys "
          "whose values differ between the runs are shown (the run folder and thread count aside); "
          "every run's full config is its <code>config.yaml</code>.</p>\n<table><tr><th>run</th>", f);
    for (int k = 0; k < rs->n_varying; k++) {
        fputs("<th><code>", f);
        esc(f, rs->varying[k]);
        fputs("</code></th>", f);
    }
    fputs("<th>status</th><th>differs from the first run</th></tr>\n", f);
    for (int r = 0; r < rs->n; r++) {
        const RunData *d = &rs->runs[r];
        fputs("<tr><td>", f);
        esc(f, d->name);
        fputs("</td>", f);
        for (int k = 0; k < rs->n_varying; k++) {
            const char *v = run_config(d, rs->varying[k]);
            fputs("<td>", f);
            esc(f, v ? v : "–");
            fputs("</td>", f);
        }
        const RunSeries *loss = run_series(d, "loss");
        fprintf(f, "<td>%s", d->complete ? "complete" : "incomplete");
        if (loss && loss->n) fprintf(f, " (step %.0f)", loss->step[loss->n - 1]);
        fputs("</td><td>", f);
        esc(f, r == 0 ? "(the first run)" : diffs && diffs[r] ? diffs[r] : "");
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void per_run_chart(FILE *f, const RunSet *rs, const Groups *g, const char *metric, const char *title,
                          const char *ylabel)
{
    PlotSeries *s = calloc((size_t)rs->n, sizeof *s);
    if (!s) return;
    int ns = 0;
    for (int r = 0; r < rs->n; r++) {
        const RunSeries *se = run_series(&rs->runs[r], metric);
        if (!se || !se->n) continue;
        /* runs of one group share its colour; every second one is dashed to tell them apart */
        int nth = 0;
        for (int q = 0; q < r; q++) nth += g->group_of[q] == g->group_of[r];
        s[ns++] = (PlotSeries){ .label = rs->n <= 12 ? rs->runs[r].name : NULL, .x = se->tokens, .y = se->value,
                                .n = se->n, .color = group_color(g, r), .width = 1.3, .dashed = nth % 2 };
    }
    PlotAxes ax = { .width = 540, .height = 320, .xlabel = "tokens", .ylabel = ylabel };
    fprintf(f, "<figure><h3>%s</h3>\n", title);
    plot_lines(f, &ax, s, ns);
    fputs("<figcaption>One line per run, coloured by group (every second run of a group dashed).</figcaption></figure>\n", f);
    free(s);
}

static void group_chart(FILE *f, const RunSet *rs, const Groups *g, const char *metric, const char *title,
                        const char *ylabel)
{
    PlotSeries *s = calloc((size_t)g->n_groups, sizeof *s);
    Band *b = calloc((size_t)g->n_groups, sizeof *b);
    char (*labels)[200] = calloc((size_t)g->n_groups, sizeof *labels);
    if (!s || !b || !labels) { free(s); free(b); free(labels); return; }
    int ns = 0;
    for (int k = 0; k < g->n_groups; k++) {
        group_band(&b[k], rs, &g->groups[k], metric);
        if (!b[k].n) continue;
        snprintf(labels[k], sizeof labels[k], "%s%s%s (n=%d)", g->by ? g->by : "", g->by ? "=" : "",
                 g->groups[k].value, g->groups[k].n);
        s[ns++] = (PlotSeries){ .label = labels[k], .x = b[k].x, .y = b[k].mean, .n = b[k].n,
                                .color = plot_palette(k), .lo = b[k].lo, .hi = b[k].hi };
    }
    PlotAxes ax = { .width = 540, .height = 320, .xlabel = "tokens", .ylabel = ylabel };
    fprintf(f, "<figure><h3>%s</h3>\n", title);
    plot_lines(f, &ax, s, ns);
    fprintf(f, "<figcaption>Line: the mean across the runs (seeds) of each group; band: the 95%% bootstrap "
               "interval of that mean (%d resamples of the runs with replacement, percentile method, fixed "
               "generator seed). With few seeds the interval is coarse; a group of one run has no band."
               "</figcaption></figure>\n", COMPARE_RESAMPLES);
    for (int k = 0; k < g->n_groups; k++) band_free(&b[k]);
    free(s);
    free(b);
    free(labels);
}

static void write_onset(FILE *f, const RunSet *rs)
{
    fputs("<h2 id=\"onset\">Onset per run</h2>\n<p class=\"lead\">A head's onset is the first probe step from "
          "which its α₀ stays above the threshold to the end of the run (from each run's "
          "<code>summary.json</code>; incomplete runs have none yet).</p>\n"
          "<table><tr><th>run</th><th>threshold</th><th>heads with an onset</th><th>first onset step</th></tr>\n", f);
    for (int r = 0; r < rs->n; r++) {
        const RunData *d = &rs->runs[r];
        int heads, first;
        fputs("<tr><td>", f);
        esc(f, d->name);
        if (run_onset(d, &heads, &first) != 0) fputs("</td><td colspan=\"3\">no summary.json (run incomplete)</td></tr>\n", f);
        else if (first < 0) fprintf(f, "</td><td class=\"num\">%.2g</td><td class=\"num\">0 of %d</td><td>never</td></tr>\n",
                                    d->onset_threshold, d->L * d->H);
        else fprintf(f, "</td><td class=\"num\">%.2g</td><td class=\"num\">%d of %d</td><td class=\"num\">%d</td></tr>\n",
                     d->onset_threshold, heads, d->L * d->H, first);
    }
    fputs("</table>\n", f);
}

static const char *FINAL_METRICS[] = {"loss", "val_loss", "alpha0_max", "alpha0_mean", "sink_rate_0.3", "sink_rate_0.5"};
enum { N_FINAL = sizeof FINAL_METRICS / sizeof FINAL_METRICS[0] };

static void write_finals(FILE *f, const RunSet *rs, const Groups *g)
{
    fputs("<h2 id=\"final\">Final metrics</h2>\n<p class=\"lead\">The last logged value of each metric: per "
          "group the mean across its runs and the 95% bootstrap interval [low, high], then each run.</p>\n"
          "<table><tr><th>group</th><th>runs</th>", f);
    for (int m = 0; m < N_FINAL; m++) fprintf(f, "<th>%s</th>", FINAL_METRICS[m]);
    fputs("<th>heads with an onset</th></tr>\n", f);
    double *vals = malloc((size_t)rs->n * sizeof *vals);
    if (!vals) return;
    for (int k = 0; k < g->n_groups; k++) {
        const Group *gr = &g->groups[k];
        fputs("<tr><td>", f);
        if (g->by) { esc(f, g->by); fputc('=', f); }
        esc(f, gr->value);
        fprintf(f, "</td><td class=\"num\">%d</td>", gr->n);
        for (int m = 0; m <= N_FINAL; m++) {
            int nv = 0;
            for (int i = 0; i < gr->n; i++) {
                const RunData *d = &rs->runs[gr->runs[i]];
                int heads, first;
                double v = m < N_FINAL ? run_last(d, FINAL_METRICS[m]) : run_onset(d, &heads, &first) == 0 ? heads : NAN;
                if (isfinite(v)) vals[nv++] = v;
            }
            double mean, lo, hi;
            group_mean(&mean, &lo, &hi, vals, nv);
            if (!nv) fputs("<td>–</td>", f);
            else if (nv == 1) fprintf(f, "<td class=\"num\">%.4g</td>", mean);
            else fprintf(f, "<td class=\"num\">%.4g [%.4g, %.4g]</td>", mean, lo, hi);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n<table><tr><th>run</th>", f);
    for (int m = 0; m < N_FINAL; m++) fprintf(f, "<th>%s</th>", FINAL_METRICS[m]);
    fputs("</tr>\n", f);
    for (int r = 0; r < rs->n; r++) {
        fputs("<tr><td>", f);
        esc(f, rs->runs[r].name);
        fputs("</td>", f);
        for (int m = 0; m < N_FINAL; m++) {
            double v = run_last(&rs->runs[r], FINAL_METRICS[m]);
            if (isfinite(v)) fprintf(f, "<td class=\"num\">%.4g</td>", v);
            else fputs("<td>–</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    free(vals);
}

static void write_page(FILE *f, const RunSet *rs, const Groups *g, const char *const *diffs)
{
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>%d runs · sinklab compare"
               "</title>\n<style>\n%s</style></head>\n<body><main>\n<h1>Comparison of %d runs</h1>\n<p class=\"lead\">",
            rs->n, CSS, rs->n);
    if (g->by) {
        fputs("Grouped by <code>", f);
        esc(f, g->by);
        fprintf(f, "</code> (%d groups); the runs within a group differ ", g->n_groups);
        fputs(rs->n_varying > 1 ? "in the other keys of the table below (normally the seed)." :
                                  "in nothing else.", f);
    } else {
        fputs("All runs form one group (no config key other than the seed differs).", f);
    }
    fputs("</p>\n", f);
    write_differences(f, rs, diffs);
    fputs("<h2 id=\"groups\">Mean across seeds with 95% intervals</h2>\n<div class=\"grid\">\n", f);
    group_chart(f, rs, g, "loss", "Training loss", "loss");
    group_chart(f, rs, g, "val_loss", "Validation loss", "val loss");
    group_chart(f, rs, g, "alpha0_max", "α₀ max over heads", "alpha0 max");
    group_chart(f, rs, g, "alpha0_mean", "α₀ mean over heads", "alpha0 mean");
    char metric[48], title[96];
    for (int k = 0; k < rs->n_heads; k++) {
        snprintf(metric, sizeof metric, "alpha0 %d.%d", rs->heads[k][0], rs->heads[k][1]);
        snprintf(title, sizeof title, "α₀ of layer %d, head %d", rs->heads[k][0], rs->heads[k][1]);
        group_chart(f, rs, g, metric, title, metric);
    }
    fputs("</div>\n<h2 id=\"runs\">Every run</h2>\n<div class=\"grid\">\n", f);
    per_run_chart(f, rs, g, "loss", "Training loss", "loss");
    per_run_chart(f, rs, g, "alpha0_max", "α₀ max over heads", "alpha0 max");
    per_run_chart(f, rs, g, "alpha0_mean", "α₀ mean over heads", "alpha0 mean");
    per_run_chart(f, rs, g, "sink_rate_0.3", "Sink rate at ε = 0.3", "sink rate");
    for (int k = 0; k < rs->n_heads; k++) {
        snprintf(metric, sizeof metric, "alpha0 %d.%d", rs->heads[k][0], rs->heads[k][1]);
        snprintf(title, sizeof title, "α₀ of layer %d, head %d", rs->heads[k][0], rs->heads[k][1]);
        per_run_chart(f, rs, g, metric, title, metric);
    }
    fputs("</div>\n", f);
    write_onset(f, rs);
    write_finals(f, rs, g);
    fprintf(f, "<footer><p class=\"lead\">Generated by sinklab %s from each run's <code>metrics.jsonl</code>, "
               "<code>summary.json</code> and <code>config.yaml</code>. Self-contained: no scripts, no external "
               "resources.</p></footer>\n</main></body></html>\n", SINKLAB_VERSION);
}

int compare_write(const RunSet *rs, const char *by, const char *const *diffs, const char *path,
                  char *err, size_t n_err)
{
    if (rs->n == 0) {
        snprintf(err, n_err, "no runs to compare");
        return -1;
    }
    Groups g;
    if (make_groups(&g, rs, by ? by : default_key(rs)) != 0) {
        free_groups(&g);
        snprintf(err, n_err, "out of memory");
        return -1;
    }
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, n_err, "%s: cannot write: %s", tmp, strerror(errno));
        free_groups(&g);
        return -1;
    }
    write_page(f, rs, &g, diffs);
    int rc = 0;
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        snprintf(err, n_err, "%s: cannot write", path);
        remove(tmp);
        rc = -1;
    }
    free_groups(&g);
    return rc;
}
