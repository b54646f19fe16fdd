/* claim_report.c: REPORT.md and report.html of a reproduction (claim_report.h). */
#include "analysis/claim_report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/plot.h"
#include "base/check.h"

static void fmt_num(char *out, size_t n, double v)
{
    if (!isfinite(v)) snprintf(out, n, "n/a");
    else if (fabs(v) >= 100 || (fabs(v) < 0.01 && v != 0)) snprintf(out, n, "%.3g", v);
    else snprintf(out, n, "%.3f", v);
}

/* "0.214 [0.102, 0.330], p = 0.012" */
static void fmt_estimate(char *out, size_t n, const Estimate *e)
{
    char v[32], lo[32], hi[32];
    fmt_num(v, sizeof v, e->value);
    fmt_num(lo, sizeof lo, e->lo);
    fmt_num(hi, sizeof hi, e->hi);
    if (!isfinite(e->lo)) snprintf(out, n, "%s (no interval)", v);
    else if (isfinite(e->p)) snprintf(out, n, "%s [%s, %s], p = %.3g", v, lo, hi, e->p);
    else snprintf(out, n, "%s [%s, %s]", v, lo, hi);
}

static const char *statistic_name(const Claim *c)
{
    switch (c->test) {
    case CLAIM_TREND: return "Spearman rho";
    case CLAIM_DIFFERENCE: return "difference of means";
    case CLAIM_SHIFT: return "mean minus reference";
    case CLAIM_PAIRED: return "mean paired difference";
    case CLAIM_INTERVENTION: return "mean delta under the intervention";
    }
    return "";
}

static void describe_test(char *out, size_t n, const Claim *c)
{
    const char *dir = c->sign > 0 ? "positive" : "negative";
    switch (c->test) {
    case CLAIM_TREND:
        snprintf(out, n, "Spearman rho of final `%s` against `%s`, expected %s", c->metric, c->key, dir);
        break;
    case CLAIM_DIFFERENCE:
        snprintf(out, n, "mean final `%s` at `%s = %s` minus at `%s = %s`, expected %s", c->metric,
                 c->key, c->treatment, c->key, c->baseline, dir);
        break;
    case CLAIM_SHIFT:
        snprintf(out, n, "mean final `%s` minus %g, expected %s", c->metric, c->ref, dir);
        break;
    case CLAIM_PAIRED:
        snprintf(out, n, "mean of `%s` - `%s` within each run, expected %s", c->metric, c->metric_b, dir);
        break;
    case CLAIM_INTERVENTION:
        snprintf(out, n, "mean change of `%s` under `%s` on each run's final checkpoint, expected %s",
                 c->metric, c->intervention, dir);
        break;
    }
}

static void write_md(FILE *f, const ReproduceInfo *in, const Claim *cl, const ClaimResult *rs, int n)
{
    char est[160], buf[512];
    fprintf(f, "# sinklab reproduction report (scale %s)\n\n", in->scale);
    fprintf(f, "%s, commit %s, %s. Command: `%s`\n\n", in->date, in->commit, in->machine, in->command);
    fprintf(f, "Verdicts: **reproduced** (95%% interval excludes 0 in the predicted direction, p < 0.05), "
               "**not reproduced** (the effect is opposite, or absent with a tight interval), "
               "**inconclusive** (with the reason). Intervals are 95%% percentile bootstraps over seeds; "
               "p-values are one-sided permutation tests. Definitions: docs/SCIENCE.md.\n\n");
    fprintf(f, "| claim | verdict | statistic | ours | runs | reason |\n|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        fmt_estimate(est, sizeof est, &rs[i].est);
        fprintf(f, "| %s %s | %s | %s | %s | %d/%d | %s |\n", cl[i].id, cl[i].title,
                VERDICT_NAMES[rs[i].verdict], statistic_name(&cl[i]), est, rs[i].n_done,
                rs[i].n_expected, rs[i].reason);
    }
    for (int i = 0; i < n; i++) {
        const Claim *c = &cl[i];
        const ClaimResult *r = &rs[i];
        fprintf(f, "\n## %s: %s\n\n", c->id, c->title);
        fprintf(f, "- Source: %s\n- The paper: %s\n", c->source, c->paper[0] ? c->paper : "qualitative");
        if (c->how[0]) fprintf(f, "- How sinklab tests it: %s\n", c->how);
        describe_test(buf, sizeof buf, c);
        fprintf(f, "- Statistic: %s\n", buf);
        fprintf(f, "- Claim file: `%s` (hash %016llx)\n", c->path, c->hash);
        fmt_estimate(est, sizeof est, &r->est);
        fprintf(f, "- Result: %s = %s over %d runs\n", statistic_name(c), est, r->est.n);
        fprintf(f, "- Verdict: **%s**: %s\n\n", VERDICT_NAMES[r->verdict], r->reason);
        fprintf(f, "| %s | runs | mean %s | 95%% interval | median alpha0_max |\n|---|---|---|---|---|\n",
                c->key[0] ? c->key : "arm",
                c->test == CLAIM_PAIRED ? "paired difference"
                : c->test == CLAIM_INTERVENTION ? "delta" : c->metric);
        for (int a = 0; a < r->n_arms; a++) {
            char m[32], lo[32], hi[32], am[32];
            fmt_num(m, sizeof m, r->arm_mean[a]);
            fmt_num(lo, sizeof lo, r->arm_lo[a]);
            fmt_num(hi, sizeof hi, r->arm_hi[a]);
            fmt_num(am, sizeof am, r->arm_alpha0_max[a]);
            fprintf(f, "| %s | %d | %s | [%s, %s] | %s |\n", r->arm_label[a], r->arm_n[a], m, lo, hi, am);
        }
        char u[32];
        fmt_num(u, sizeof u, r->uniform_alpha0);
        fprintf(f, "\nUniform attention gives alpha0 = %s; a sink counts as formed when an arm's median "
                   "alpha0_max reaches 3x that.\n", u);
    }
}

static void esc(FILE *f, const char *s) { plot_write_escaped(f, s); }

static void write_figure(FILE *f, const Claim *c, const ClaimResult *r)
{
    double x[CLAIM_MAX_ARMS], y[CLAIM_MAX_ARMS], lo[CLAIM_MAX_ARMS], hi[CLAIM_MAX_ARMS];
    int numeric = c->test == CLAIM_TREND;
    for (int a = 0; a < r->n_arms; a++) {
        x[a] = numeric ? strtod(r->arm_label[a], NULL) : a;
        y[a] = r->arm_mean[a];
        lo[a] = isfinite(r->arm_lo[a]) ? r->arm_lo[a] : r->arm_mean[a];
        hi[a] = isfinite(r->arm_hi[a]) ? r->arm_hi[a] : r->arm_mean[a];
    }
    PlotSeries s = {.label = "mean over seeds (band: 95% bootstrap)", .x = x, .y = y, .n = r->n_arms,
                    .markers = 1, .lo = lo, .hi = hi};
    char xl[160];
    snprintf(xl, sizeof xl, "%s%s", c->key[0] ? c->key : "arm", numeric ? "" : " (arms in the table's order)");
    PlotRefLine zero = {0, "0", NULL};
    PlotAxes ax = {.xlabel = xl, .ylabel = c->test == CLAIM_INTERVENTION ? "delta" : c->metric,
                   .y_from_zero = 1, .refs = &zero, .n_refs = 1, .log_x = numeric && x[0] > 0 &&
                   r->n_arms > 1 && x[r->n_arms - 1] / x[0] >= 8};
    plot_lines(f, &ax, &s, 1);
}

static void write_html(FILE *f, const ReproduceInfo *in, const Claim *cl, const ClaimResult *rs, int n)
{
    char est[160], buf[512];
    fprintf(f, "<!doctype html><html><head><meta charset=\"utf-8\"><title>sinklab reproduction (%s)</title>"
               "<style>body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}"
               "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;font-size:14px}"
               ".reproduced{background:#d9f2d9}.not{background:#f8d7d7}.inconclusive{background:#eee}"
               "svg{max-width:640px}</style></head><body>\n", in->scale);
    fprintf(f, "<h1>sinklab reproduction report, scale %s</h1><p>", in->scale);
    esc(f, in->date);
    fprintf(f, ", commit ");
    esc(f, in->commit);
    fprintf(f, ", ");
    esc(f, in->machine);
    fprintf(f, ". Command: <code>");
    esc(f, in->command);
    fprintf(f, "</code></p><table><tr><th>claim</th><th>verdict</th><th>ours</th><th>runs</th><th>reason</th></tr>\n");
    for (int i = 0; i < n; i++) {
        const char *cls = rs[i].verdict == VERDICT_REPRODUCED ? "reproduced"
                          : rs[i].verdict == VERDICT_NOT_REPRODUCED ? "not" : "inconclusive";
        fmt_estimate(est, sizeof est, &rs[i].est);
        fprintf(f, "<tr class=\"%s\"><td><a href=\"#%s\">%s</a> ", cls, cl[i].id, cl[i].id);
        esc(f, cl[i].title);
        fprintf(f, "</td><td>%s</td><td>%s: ", VERDICT_NAMES[rs[i].verdict], statistic_name(&cl[i]));
        esc(f, est);
        fprintf(f, "</td><td>%d/%d</td><td>", rs[i].n_done, rs[i].n_expected);
        esc(f, rs[i].reason);
        fprintf(f, "</td></tr>\n");
    }
    fprintf(f, "</table>\n");
    for (int i = 0; i < n; i++) {
        const Claim *c = &cl[i];
        fprintf(f, "<h2 id=\"%s\">%s: ", c->id, c->id);
        esc(f, c->title);
        fprintf(f, "</h2><p><b>Source:</b> ");
        esc(f, c->source);
        fprintf(f, "<br><b>The paper:</b> ");
        esc(f, c->paper[0] ? c->paper : "qualitative");
        describe_test(buf, sizeof buf, c);
        fprintf(f, "<br><b>Statistic:</b> ");
        esc(f, buf);
        fmt_estimate(est, sizeof est, &rs[i].est);
        fprintf(f, "<br><b>Ours:</b> ");
        esc(f, est);
        fprintf(f, "<br><b>Verdict:</b> %s: ", VERDICT_NAMES[rs[i].verdict]);
        esc(f, rs[i].reason);
        fprintf(f, "</p>\n");
        write_figure(f, c, &rs[i]);
    }
    fprintf(f, "</body></html>\n");
}

static int write_atomic(const char *dir, const char *name, int html, const ReproduceInfo *in,
                        const Claim *cl, const ClaimResult *rs, int n, char *err, size_t n_err)
{
    char path[1200], tmp[1220];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        sl_errf(err, n_err, "%s: cannot write: %s", tmp, strerror(errno));
        return -1;
    }
    if (html) write_html(f, in, cl, rs, n);
    else write_md(f, in, cl, rs, n);
    if (fclose(f) || rename(tmp, path)) {
        sl_errf(err, n_err, "%s: write failed: %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

int claim_report_write(const char *dir, const ReproduceInfo *info, const Claim *claims,
                       const ClaimResult *results, int n, char *err, size_t n_err)
{
    if (write_atomic(dir, "REPORT.md", 0, info, claims, results, n, err, n_err)) return -1;
    return write_atomic(dir, "report.html", 1, info, claims, results, n, err, n_err);
}
