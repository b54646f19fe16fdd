/* report_page.c: Run -> report.html. The page frame (style, header chips from the run's config
 * pairs, summary cards) and the training, sink-rate, heads and onset sections; the probe-file and
 * mechanics sections are in report_probe_html.c. Everything the page needs is inline; nothing
 * depends on scripts. */
#include "analysis/report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analysis/metrics.h"
#include "analysis/plot.h"
#include "analysis/report_run.h"

#ifndef SINKLAB_VERSION
#define SINKLAB_VERSION "dev"
#endif

/* ---------- small text helpers ---------- */

void report_esc(FILE *f, const char *s) { plot_write_escaped(f, s); }

static void fmt_count(char *out, size_t n, double v)
{
    if (!isfinite(v)) snprintf(out, n, "–");
    else if (fabs(v) >= 1e9) snprintf(out, n, "%.2fB", v / 1e9);
    else if (fabs(v) >= 1e6) snprintf(out, n, "%.2fM", v / 1e6);
    else if (fabs(v) >= 1e4) snprintf(out, n, "%.1fk", v / 1e3);
    else snprintf(out, n, "%.0f", v);
}

static void fmt_val(char *out, size_t n, double v)
{
    if (!isfinite(v)) snprintf(out, n, "–");
    else snprintf(out, n, "%.3g", v);
}

static double last_finite(const double *x, int n, int *at)
{
    for (int i = n - 1; i >= 0; i--)
        if (isfinite(x[i])) { if (at) *at = i; return x[i]; }
    if (at) *at = -1;
    return NAN;
}

void report_fig_begin(FILE *f, const char *cls, const char *title)
{
    fprintf(f, "<figure%s%s%s><h3>", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
    report_esc(f, title);
    fputs("</h3>\n", f);
}

void report_fig_end(FILE *f, const char *caption)
{
    fprintf(f, "<figcaption>%s</figcaption></figure>\n", caption);
}

static const char CSS[] =
    ":root{--ink:#1d2330;--muted:#5d6575;--line:#e3e6ec;--bg:#f5f6f8;--accent:#4e79a7;--warm:#e15759}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif}\n"
    "header{background:linear-gradient(135deg,#1d2330,#2b3447);color:#fff;padding:26px 40px 22px}\n"
    "header h1{margin:0;font-size:27px;font-weight:650;letter-spacing:-.01em}\n"
    "header h1 span{color:#9fb3d1;font-weight:400}\n"
    ".sub{color:#aab3c3;font-size:13px;margin-top:2px}\n"
    ".chips{display:flex;flex-wrap:wrap;gap:6px;margin-top:14px}\n"
    ".chip{background:rgba(255,255,255,.07);border:1px solid rgba(255,255,255,.15);border-radius:999px;padding:2px 11px;font-size:12.5px;white-space:nowrap}\n"
    ".chip b{color:#9fb3d1;font-weight:500;margin-right:5px}\n"
    "nav{position:sticky;top:0;z-index:2;background:rgba(255,255,255,.96);border-bottom:1px solid var(--line);padding:9px 40px}\n"
    "nav a{color:var(--muted);text-decoration:none;margin-right:20px;font-size:13px;font-weight:500}\n"
    "nav a:hover{color:var(--accent)}\n"
    "main{max-width:1320px;margin:0 auto;padding:6px 32px 48px}\n"
    "section{margin-top:30px;scroll-margin-top:48px}\n"
    "h2{font-size:20px;margin:0 0 3px;letter-spacing:-.01em}\n"
    "p.lead{color:var(--muted);margin:0 0 14px;max-width:980px}\n"
    ".cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(175px,1fr));gap:12px}\n"
    ".card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:11px 14px}\n"
    ".card .k{font-size:12px;color:var(--muted)}\n"
    ".card .v{font-size:23px;font-weight:650;line-height:1.25}\n"
    ".card .d{font-size:12px;color:var(--muted)}\n"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:16px}\n"
    ".grid.small{grid-template-columns:repeat(auto-fill,minmax(390px,1fr))}\n"
    "figure{margin:0;background:#fff;border:1px solid var(--line);border-radius:10px;padding:13px 16px 11px;min-width:0}\n"
    "figure h3{margin:0 0 6px;font-size:14.5px;font-weight:600}\n"
    "figure svg{width:100%;height:auto;display:block}\n"
    "figcaption{color:var(--muted);font-size:12.5px;margin-top:7px;line-height:1.45}\n"
    ".note{background:#fff8e6;border:1px solid #f3dfa7;border-radius:8px;padding:8px 12px;color:#6b5510;font-size:13px;margin:10px 0}\n"
    ".empty{color:var(--muted);font-style:italic}\n"
    "table.onset{border-collapse:separate;border-spacing:3px;font-size:12.5px}\n"
    "table.onset th{color:var(--muted);font-weight:600;padding:3px 8px;text-align:center}\n"
    "table.onset td{min-width:78px;padding:5px 8px;text-align:center;border-radius:6px;background:#f1f2f5;line-height:1.3}\n"
    "table.onset td.sink{background:#fde3df;color:#7a1f16}\n"
    "table.onset td .a{display:block;font-size:11px;color:var(--muted)}\n"
    "table.onset td.sink .a{color:#a04a40}\n"
    ".split{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:16px;align-items:start}\n"
    ".ckpt{margin-top:14px}\n"
    ".ckpt h4{margin:0 0 4px;font-size:13.5px}\n"
    ".maps{display:grid;grid-template-columns:repeat(auto-fill,minmax(148px,1fr));gap:6px;margin-bottom:6px}\n"
    ".maps figure{padding:4px 4px 2px;border-radius:6px}\n"
    ".layer{font-size:12px;color:var(--muted);margin:6px 0 2px;font-weight:600}\n"
    ".cbar{display:flex;align-items:center;gap:10px;font-size:12px;color:var(--muted);margin:4px 0 8px}\n"
    ".cbar .bar{position:relative;width:320px;height:12px;border:1px solid #9aa1ad;border-radius:2px}\n"
    ".cbar .ticks{position:relative;width:320px;height:14px;font-size:10.5px}\n"
    ".cbar .ticks span{position:absolute;transform:translateX(-50%)}\n"
    "pre.probe{background:#fff;border:1px solid var(--line);border-radius:8px;padding:9px 12px;white-space:pre-wrap;word-break:break-all;font:12.5px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;max-height:120px;overflow:auto;margin:6px 0 10px}\n"
    "pre.probe mark{background:#fde3df;color:#7a1f16;border-radius:2px;padding:0 1px}\n"
    "footer{color:var(--muted);font-size:12px;border-top:1px solid var(--line);margin-top:36px;padding-top:12px}\n"
    "code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef0f4;padding:0 4px;border-radius:3px}\n"
    "@media (max-width:1100px){.split{grid-template-columns:1fr}.grid{grid-template-columns:1fr}}\n";

/* ---------- header and summary ---------- */

static void chip(FILE *f, const char *k, const char *v)
{
    if (!v || !*v) return;
    fputs("<span class=\"chip\"><b>", f);
    report_esc(f, k);
    fputs("</b>", f);
    report_esc(f, v);
    fputs("</span>\n", f);
}

static void write_header(FILE *f, const Run *run)
{
    const KeyValueList *c = run->cfg;
    fputs("<header><h1>", f);
    report_esc(f, run->name);
    fputs(" <span>· sink report</span></h1>\n<div class=\"sub\">", f);
    report_esc(f, run->dir);
    if (!c || !c->n) fputs(" · config.yaml not found or unreadable: model details unknown", f);
    fputs("</div>\n<div class=\"chips\">\n", f);
    char buf[512];
    chip(f, "model", kv_get(c, "model.kind"));
    if (kv_get(c, "model.n_layer"))
        snprintf(buf, sizeof buf, "L %s · d %s · H %s", kv_get(c, "model.n_layer"),
                 kv_get(c, "model.d_model") ? kv_get(c, "model.d_model") : "?",
                 kv_get(c, "model.n_head") ? kv_get(c, "model.n_head") : "?");
    else
        snprintf(buf, sizeof buf, "L %d · H %d", run->pr.L, run->pr.H);
    chip(f, "size", buf);
    chip(f, "positions", kv_get(c, "model.pos_encoding"));
    const char *norm = kv_get(c, "model.attention.normalizer"), *sink = kv_get(c, "model.attention.sink"),
               *gate = kv_get(c, "model.attention.gate");
    if (norm) {
        snprintf(buf, sizeof buf, "%s%s%s%s%s", norm, sink && strcmp(sink, "none") ? " · sink " : "",
                 sink && strcmp(sink, "none") ? sink : "", gate && strcmp(gate, "none") ? " · gate " : "",
                 gate && strcmp(gate, "none") ? gate : "");
        chip(f, "attention", buf);
    }
    const char *win = kv_get(c, "model.mask.window");
    if (win && strcmp(win, "0")) chip(f, "window", win);
    chip(f, "norm", kv_get(c, "model.norm"));
    chip(f, "data", kv_get(c, "data.corpus"));
    if (kv_get(c, "data.pack")) {
        snprintf(buf, sizeof buf, "%s · bos %s", kv_get(c, "data.pack"),
                 kv_get(c, "data.bos") ? kv_get(c, "data.bos") : "?");
        chip(f, "packing", buf);
    }
    chip(f, "seq len", kv_get(c, "data.seq_len"));
    chip(f, "lr", kv_get(c, "train.lr"));
    chip(f, "wd", kv_get(c, "train.weight_decay"));
    int at;
    double last_step = last_finite(run->tr.col[TK_STEP], run->tr.n, &at);
    const char *steps = kv_get(c, "train.steps");
    snprintf(buf, sizeof buf, "%.0f%s%s", isfinite(last_step) ? last_step : 0, steps ? " / " : "", steps ? steps : "");
    chip(f, "steps", buf);
    fmt_count(buf, sizeof buf, last_finite(run->tr.col[TK_TOKENS], run->tr.n, NULL));
    chip(f, "tokens", buf);
    if (kv_get(c, "probe.seq_len")) {
        snprintf(buf, sizeof buf, "%s × T %s, every %s", kv_get(c, "probe.n_seq") ? kv_get(c, "probe.n_seq") : "?",
                 kv_get(c, "probe.seq_len"), kv_get(c, "probe.every") ? kv_get(c, "probe.every") : "?");
        chip(f, "probe", buf);
    }
    fputs("</div></header>\n", f);
    fputs("<nav><a href=\"#training\">Training</a><a href=\"#sinks\">Sink rate</a><a href=\"#heads\">Heads</a>"
          "<a href=\"#onset\">Onset</a>", f);
    if (run->pr.present[METRIC_ALPHA_BOS_ACTIVE] && run->pr.present[METRIC_ALPHA_BOS_DORMANT])
        fputs("<a href=\"#classes\">Active/dormant</a>", f);
    fputs("<a href=\"#attention\">Attention maps</a><a href=\"#positions\">Positions</a>"
          "<a href=\"#mechanics\">Mechanics</a>", f);
    /* `sinklab analyze RUN --interventions` writes its page next to the run's; link it when there */
    char iv[REPORT_PATH_CAP + 40];
    snprintf(iv, sizeof iv, "%s/analysis/interventions.html", run->dir);
    if (access(iv, R_OK) == 0) fputs("<a href=\"analysis/interventions.html\">Interventions</a>", f);
    fputs("</nav>\n", f);
}

static void card(FILE *f, const char *k, const char *v, const char *d)
{
    fputs("<div class=\"card\"><div class=\"k\">", f);
    report_esc(f, k);
    fputs("</div><div class=\"v\">", f);
    report_esc(f, v);
    fputs("</div><div class=\"d\">", f);
    report_esc(f, d ? d : "");
    fputs("</div></div>\n", f);
}

static int count_onsets(const Run *run, int *first_step, int *first_head)
{
    int n = 0;
    *first_step = -1;
    *first_head = -1;
    if (!run->onset) return 0;
    for (int i = 0; i < run->pr.L * run->pr.H; i++) {
        if (run->onset[i] < 0) continue;
        n++;
        if (*first_step < 0 || run->onset[i] < *first_step) { *first_step = run->onset[i]; *first_head = i; }
    }
    return n;
}

static void write_summary(FILE *f, const Run *run)
{
    const TrainTable *t = &run->tr;
    const ProbeTable *p = &run->pr;
    char v[64], d[128];
    int at;
    fputs("<section id=\"summary\"><div class=\"cards\">\n", f);
    double loss = last_finite(t->col[TK_LOSS], t->n, &at);
    fmt_val(v, sizeof v, loss);
    snprintf(d, sizeof d, at >= 0 ? "at step %.0f" : "not logged", at >= 0 ? t->col[TK_STEP][at] : 0);
    card(f, "train loss", v, d);
    double val = last_finite(t->col[TK_VAL], t->n, &at);
    fmt_val(v, sizeof v, val);
    snprintf(d, sizeof d, at >= 0 ? "at step %.0f" : "not logged", at >= 0 ? t->col[TK_STEP][at] : 0);
    card(f, "validation loss", v, d);
    int LH = p->L * p->H, r = -1;
    if (p->present[METRIC_ALPHA0])
        for (int i = p->n - 1; i >= 0 && r < 0; i--)
            if (!isnan(p->col[METRIC_ALPHA0][(size_t)i * LH])) r = i;
    if (r >= 0) {
        const double *a = p->col[METRIC_ALPHA0] + (size_t)r * LH;
        int above = 0, best = 0;
        for (int i = 0; i < LH; i++) {
            above += a[i] > 0.3;
            if (a[i] > a[best]) best = i;
        }
        snprintf(v, sizeof v, "%.0f%%", 100.0 * above / LH);
        snprintf(d, sizeof d, "%d of %d heads with α₀ > 0.3", above, LH);
        card(f, "sink rate (ε = 0.3)", v, d);
        snprintf(v, sizeof v, "%.2f", a[best]);
        snprintf(d, sizeof d, "layer %d, head %d (step %.0f)", best / p->H, best % p->H, p->step[r]);
        card(f, "max α₀", v, d);
    } else {
        card(f, "sink rate (ε = 0.3)", "–", "no probe lines");
    }
    int first, head, n_on = count_onsets(run, &first, &head);
    if (run->onset) {
        snprintf(v, sizeof v, "%d / %d", n_on, LH);
        if (n_on) snprintf(d, sizeof d, "first: step %d (L%d h%d)", first, head / p->H, head % p->H);
        else snprintf(d, sizeof d, "no head stays above %.2g", run->onset_threshold);
        card(f, "heads with a sink onset", v, d);
    }
    fmt_count(v, sizeof v, last_finite(t->col[TK_TOKENS], t->n, NULL));
    card(f, "tokens seen", v, NULL);
    /* Median throughput: robust to the slow first steps and to evaluation pauses. */
    double *tps = malloc((size_t)(t->n > 0 ? t->n : 1) * sizeof *tps);
    int n_tps = 0;
    for (int i = 0; tps && i < t->n; i++)
        if (isfinite(t->col[TK_TPS][i])) tps[n_tps++] = t->col[TK_TPS][i];
    if (n_tps) {
        for (int i = 1; i < n_tps; i++)
            for (int j = i; j > 0 && tps[j - 1] > tps[j]; j--) { double x = tps[j]; tps[j] = tps[j - 1]; tps[j - 1] = x; }
        fmt_count(v, sizeof v, tps[n_tps / 2]);
        card(f, "throughput", v, "tokens / s (median)");
    }
    free(tps);
    fputs("</div>\n", f);
    if (run->partial_last)
        fputs("<div class=\"note\">The last line of metrics.jsonl is incomplete (the run may still be writing); "
              "it was skipped.</div>\n", f);
    fputs("</section>\n", f);
}

/* ---------- training ---------- */

/* Gathers (x, y) of a table's rows where both are finite. */
static int gather(double *xo, double *yo, const double *x, const double *y, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i])) { xo[k] = x[i]; yo[k] = y[i]; k++; }
    return k;
}

static void write_loss_chart(FILE *f, const TrainTable *t, int xcol, int log_x, double *buf)
{
    int n = t->n;
    double *x = buf, *y = buf + n, *ema = buf + 2 * n, *vx = buf + 3 * n, *vy = buf + 4 * n;
    int nl = gather(x, y, t->col[xcol], t->col[TK_LOSS], n);
    int nv = gather(vx, vy, t->col[xcol], t->col[TK_VAL], n);
    PlotSeries s[3];
    int ns = 0;
    if (nl > 100) {
        /* Batch losses are noisy: show them faint with an EMA over ~2% of the run on top. */
        double a = 2.0 / (nl / 50.0 + 1), m = y[0];
        for (int i = 0; i < nl; i++) ema[i] = m = m + a * (y[i] - m);
        s[ns++] = (PlotSeries){ .label = NULL, .x = x, .y = y, .n = nl, .color = "#aec3db", .width = 1 };
        s[ns++] = (PlotSeries){ .label = "train (EMA)", .x = x, .y = ema, .n = nl, .color = plot_palette(0) };
    } else if (nl) {
        s[ns++] = (PlotSeries){ .label = "train", .x = x, .y = y, .n = nl, .color = plot_palette(0), .markers = nl < 40 };
    }
    if (nv) s[ns++] = (PlotSeries){ .label = "validation", .x = vx, .y = vy, .n = nv, .color = plot_palette(1), .markers = 1 };
    PlotAxes ax = { .width = 560, .height = 300, .xlabel = xcol == TK_STEP ? "step" : "tokens seen (log scale)",
                    .ylabel = "loss (nats / token)", .log_x = log_x };
    plot_lines(f, &ax, s, ns);
}

static void write_training(FILE *f, const TrainTable *t)
{
    fputs("<section id=\"training\"><h2>Training</h2>\n<p class=\"lead\">How well the model learns. "
          "Sinks are a by-product of training, so read the sink curves below against these.</p>\n", f);
    double *buf = malloc((size_t)(t->n > 0 ? t->n : 1) * 5 * sizeof *buf);
    if (!buf) { fputs("</section>\n", f); return; }
    fputs("<div class=\"grid\">\n", f);
    report_fig_begin(f, NULL, "Loss vs step");
    write_loss_chart(f, t, TK_STEP, 0, buf);
    report_fig_end(f, "Training loss per batch (when logged often: faint raw values, bold exponential moving average) and "
               "validation loss on held-out documents (dots); mean cross-entropy in nats per predicted token. "
               "A widening gap between the two is overfitting.");
    report_fig_begin(f, NULL, "Loss vs tokens");
    write_loss_chart(f, t, TK_TOKENS, 1, buf);
    report_fig_end(f, "The same curves against tokens seen, on a log axis, which stretches out the early phase where "
               "sinks typically form. Comparable across runs with different batch sizes.");
    fputs("</div>\n<div class=\"grid small\" style=\"margin-top:16px\">\n", f);
    static const struct { int col; const char *title, *ylabel, *caption; int log_y; } small[] = {
        { TK_LR, "Learning rate", "learning rate", "The schedule actually applied at each step (warm-up, then decay).", 0 },
        { TK_GRAD, "Gradient norm", "‖g‖ (before clipping)",
          "Global L2 norm of the gradient before clipping, log scale. Spikes mark unstable steps.", 1 },
        { TK_TPS, "Throughput", "tokens / s", "Training tokens processed per second (dips: evaluation or probing).", 0 },
    };
    for (int k = 0; k < 3; k++) {
        int n = gather(buf, buf + t->n, t->col[TK_STEP], t->col[small[k].col], t->n);
        if (!n) continue;
        report_fig_begin(f, NULL, small[k].title);
        PlotSeries s = { .x = buf, .y = buf + t->n, .n = n, .color = plot_palette(k == 1 ? 2 : k == 2 ? 3 : 4) };
        PlotAxes ax = { .width = 440, .height = 220, .xlabel = "step", .ylabel = small[k].ylabel,
                        .log_y = small[k].log_y, .y_from_zero = !small[k].log_y };
        plot_lines(f, &ax, &s, 1);
        report_fig_end(f, small[k].caption);
    }
    fputs("</div></section>\n", f);
    free(buf);
}

/* ---------- sink rate ---------- */

/* alpha0's row r, or NULL when that probe did not log it. */
static const double *alpha0_row(const ProbeTable *p, int r)
{
    const double *a = p->col[METRIC_ALPHA0] + (size_t)r * p->L * p->H;
    return isnan(a[0]) ? NULL : a;
}

/* Sink rate at REPORT_EPS[e] in row r, computed from alpha0 when the run did not log it. */
static double sink_rate_at(const ProbeTable *p, int e, int r)
{
    double v = p->col[METRIC_SINK_RATE][(size_t)r * REPORT_N_EPS + e];
    const double *a = alpha0_row(p, r);
    if (isfinite(v) || !a) return v;
    int LH = p->L * p->H, above = 0;
    for (int i = 0; i < LH; i++) above += a[i] > REPORT_EPS[e];
    return (double)above / LH;
}

/* alpha0_max or alpha0_mean in row r, computed from alpha0 when absent. */
static double alpha0_stat(const ProbeTable *p, MetricId m, int r)
{
    double v = p->col[m][r];
    const double *a = alpha0_row(p, r);
    if (isfinite(v) || !a) return v;
    int LH = p->L * p->H;
    double acc = 0, mx = -INFINITY;
    for (int i = 0; i < LH; i++) {
        acc += a[i];
        mx = fmax(mx, a[i]);
    }
    return m == METRIC_ALPHA0_MAX ? mx : acc / LH;
}

/* Why a run with probe lines has no alpha0 (probe.c leaves it out; README "Watching sinks"). */
#define ALPHA0_OMITTED \
    "<p class=\"empty\">α₀, the sink rate, α₀ max/mean and the uniform baseline are not logged for this " \
    "run: fewer than T/4 of the probe's queries may see key 0 under its mask (a short window, " \
    "<code>reset</code> edits, a blocked key), so α₀ would average over a handful of queries and say nothing " \
    "about sinks. sink_location (the most-attended key that at least T/4 queries see) and the mechanism charts " \
    "below are still measured.</p>\n"

static void write_sinks(FILE *f, const Run *run)
{
    const ProbeTable *p = &run->pr;
    fputs("<section id=\"sinks\"><h2>Sink rate</h2>\n<p class=\"lead\">α₀ of a head is the mean attention that key 0 "
          "(the first token of the probe sequence) receives from the queries allowed to see it, averaged over the probe "
          "sequences. A head is a sink head when α₀ exceeds ε.</p>\n", f);
    if (p->n == 0) {
        fputs("<p class=\"empty\">No probe lines in metrics.jsonl (probe.every = 0?).</p></section>\n", f);
        return;
    }
    if (!p->present[METRIC_ALPHA0] && !p->present[METRIC_SINK_RATE]) {
        fputs(ALPHA0_OMITTED "</section>\n", f);
        return;
    }
    double *y = malloc((size_t)p->n * 7 * sizeof *y);
    if (!y) { fputs("</section>\n", f); return; }
    fputs("<div class=\"grid\">\n", f);
    report_fig_begin(f, NULL, metric_chart_title(METRIC_SINK_RATE));
    static const char *eps_label[] = { "ε = 0.3", "ε = 0.5", "ε = 0.8" };
    PlotSeries s[4];
    for (int k = 0; k < 3; k++) {
        for (int r = 0; r < p->n; r++) y[k * p->n + r] = sink_rate_at(p, k, r);
        s[k] = (PlotSeries){ .label = eps_label[k], .x = p->step, .y = y + k * p->n, .n = p->n,
                             .color = k == 0 ? "#e15759" : k == 1 ? "#f28e2b" : "#b07aa1" };
    }
    /* Gu et al.'s own Sink_1^0.3 (percent), drawn as a fraction beside sinklab's */
    for (int r = 0; r < p->n; r++)
        y[6 * p->n + r] = p->col[METRIC_SINK_RATE_GU][(size_t)r * REPORT_N_EPS] / 100.0;
    s[3] = (PlotSeries){ .label = "Gu et al. ε = 0.3", .x = p->step, .y = y + 6 * p->n, .n = p->n,
                         .color = "#e15759", .dashed = 1, .width = 1.4 };
    PlotAxes ax = { .width = 560, .height = 300, .xlabel = "step", .ylabel = "fraction of heads with α₀ > ε",
                    .fix_y = 1, .ymin = 0, .ymax = 1 };
    plot_lines(f, &ax, s, p->present[METRIC_SINK_RATE_GU] ? 4 : 3);
    report_fig_end(f, "sinklab's sink rate: the fraction of all layer × head pairs whose α₀ (averaged over the probe "
               "sequences first) exceeds ε, at three thresholds; an untrained model scores 0. Steps go up as heads "
               "turn into sinks; the 0.8 curve shows heads that put almost all their attention on key 0. Dashed: "
               "Gu et al.'s Sink₁<sup>0.3</sup> exactly as their code computes it (sink_rate_gu, thresholded per "
               "sequence, divided by T whatever the mask), for comparison with the paper's tables.");
    report_fig_begin(f, NULL, metric_chart_title(METRIC_ALPHA0_MAX));
    for (int r = 0; r < p->n; r++) {
        y[3 * p->n + r] = alpha0_stat(p, METRIC_ALPHA0_MAX, r);
        y[4 * p->n + r] = alpha0_stat(p, METRIC_ALPHA0_MEAN, r);
        y[5 * p->n + r] = p->col[METRIC_UNIFORM_ALPHA0][r];
    }
    PlotSeries a[3] = {
        { .label = "max over heads", .x = p->step, .y = y + 3 * p->n, .n = p->n, .color = "#e15759" },
        { .label = "mean over heads", .x = p->step, .y = y + 4 * p->n, .n = p->n, .color = "#4e79a7" },
        { .label = "uniform attention", .x = p->step, .y = y + 5 * p->n, .n = p->n, .color = "#7a818c", .dashed = 1, .width = 1.4 },
    };
    char thr[64];
    snprintf(thr, sizeof thr, "onset threshold %.2g", run->onset_threshold);
    PlotRefLine ref = { run->onset_threshold, thr, "#b8515a" };
    PlotAxes ax2 = { .width = 560, .height = 300, .xlabel = "step", .ylabel = "α₀", .fix_y = 1, .ymin = 0,
                     .ymax = 1, .refs = &ref, .n_refs = 1 };
    plot_lines(f, &ax2, a, p->present[METRIC_UNIFORM_ALPHA0] ? 3 : 2);
    report_fig_end(f, "The largest and the mean α₀ over all heads. Dashed grey: what uniform causal attention gives "
               "(H<sub>T</sub>/T, 0.074 at T = 64), the level an untrained model sits at. Dotted red: the onset threshold "
               "used in the table below.");
    fputs("</div></section>\n", f);
    free(y);
}

/* ---------- heads: alpha0 heatmap, onset table, final alpha0 bars ---------- */

/* Probe columns resampled onto an even step grid, so the heatmap's x axis is proportional to
 * steps (probes at log-spaced checkpoints would otherwise stretch the start). Column c covers steps
 * from x[c] and shows the latest probe at or before it. Returns the column count. */
enum { HEAT_MAX_COLS = 600 };

static int even_step_grid(double *x, int *src, const double *steps, int n)
{
    if (n < 2) {
        if (n == 1) { x[0] = steps[0]; src[0] = 0; }
        return n;
    }
    double gap = INFINITY, span = steps[n - 1] - steps[0];
    for (int i = 1; i < n; i++)
        if (steps[i] > steps[i - 1]) gap = fmin(gap, steps[i] - steps[i - 1]);
    int cols = isfinite(gap) && gap > 0 ? (int)(span / gap + 0.5) + 1 : n;
    if (cols > HEAT_MAX_COLS) cols = HEAT_MAX_COLS;
    if (cols < n && cols < 2) cols = 2;
    double w = span / (cols - 1);
    int k = 0;
    for (int c = 0; c < cols; c++) {
        x[c] = steps[0] + c * w;
        while (k + 1 < n && steps[k + 1] <= x[c] + 1e-9 * (w + 1)) k++;
        src[c] = k;
    }
    return cols;
}

static void write_heads(FILE *f, const Run *run)
{
    const ProbeTable *p = &run->pr;
    fputs("<section id=\"heads\"><h2>Heads: how the sink spreads</h2>\n", f);
    if (!p->present[METRIC_ALPHA0]) {
        fputs(p->n ? ALPHA0_OMITTED "</section>\n" : "<p class=\"empty\">No per-head α₀ logged.</p></section>\n", f);
        return;
    }
    int LH = p->L * p->H, nc = 0;
    double *steps = malloc((size_t)p->n * sizeof *steps), *x = malloc(HEAT_MAX_COLS * sizeof *x);
    double *z = malloc((size_t)LH * HEAT_MAX_COLS * sizeof *z), *marks = malloc((size_t)LH * sizeof *marks);
    int *rowof = malloc((size_t)p->n * sizeof *rowof), *src = malloc(HEAT_MAX_COLS * sizeof *src);
    char (*rl)[16] = malloc((size_t)LH * sizeof *rl), (*gl)[16] = malloc((size_t)p->L * sizeof *gl);
    const char **rows = malloc((size_t)LH * sizeof *rows), **groups = malloc((size_t)p->L * sizeof *groups);
    if (!steps || !x || !z || !marks || !rowof || !src || !rl || !gl || !rows || !groups) goto out;
    double vmax = 0, base = NAN;
    for (int r = 0; r < p->n; r++) {
        const double *a = p->col[METRIC_ALPHA0] + (size_t)r * LH;
        if (isnan(a[0])) continue;
        for (int i = 0; i < LH; i++) vmax = fmax(vmax, a[i]);
        if (isfinite(p->col[METRIC_UNIFORM_ALPHA0][r])) base = p->col[METRIC_UNIFORM_ALPHA0][r];
        rowof[nc] = r;
        steps[nc++] = p->step[r];
    }
    int cols = even_step_grid(x, src, steps, nc);
    for (int i = 0; i < LH; i++)
        for (int c = 0; c < cols; c++)
            z[(size_t)i * cols + c] = p->col[METRIC_ALPHA0][(size_t)rowof[src[c]] * LH + i];
    /* colour from the uniform-attention baseline (nothing learned) to the run's largest alpha_0,
     * so a head rising from 0.07 to 0.2 is visible; H_T/T when the probe did not log it */
    if (!isfinite(base)) base = metrics_alpha0_uniform_causal(64);
    if (vmax < base + 0.05) vmax = base + 0.05;
    for (int i = 0; i < LH; i++) {
        snprintf(rl[i], 16, "h%d", i % p->H);
        rows[i] = rl[i];
        marks[i] = run->onset && run->onset[i] >= 0 ? run->onset[i] : NAN;
    }
    for (int l = 0; l < p->L; l++) { snprintf(gl[l], 16, "L%d", l); groups[l] = gl[l]; }
    report_fig_begin(f, NULL, metric_chart_title(METRIC_ALPHA0));
    int cell_h = LH <= 16 ? 18 : LH <= 48 ? 11 : LH <= 144 ? 6 : 3;
    PlotHeatmap hm = { .width = 1240, .height = LH * cell_h + 50, .xlabel = "step", .vmin = base, .vmax = vmax,
                       .cmap = PLOT_CMAP_VIRIDIS, .x = x, .row_labels = rows, .row_group = p->H,
                       .group_labels = groups, .colorbar = 1, .colorbar_label = "α₀",
                       .tooltips = (long)LH * cols <= 40000, .row_marks = marks };
    plot_heatmap(f, &hm, z, LH, cols);
    char cap[900];
    snprintf(cap, sizeof cap, "One row per head, grouped by layer (L0 = first layer, at the top); the x axis is "
             "proportional to steps, each column showing the latest probe at or before its step. Colour runs from "
             "%.3f, the α₀ of uniform attention (nothing learned, darkest), to %.3f, this run's largest α₀ "
             "(brightest); see the colour bar. White triangles mark each head's onset (α₀ above θ = %.2g from there "
             "to the end). Hover a cell for its value.", base, vmax, run->onset_threshold);
    report_fig_end(f, cap);
out:
    free(steps); free(x); free(z); free(marks); free(rowof); free(src);
    free(rl); free(gl); free(rows); free(groups);
    fputs("</section>\n", f);
}

static void write_onset(FILE *f, const Run *run)
{
    const ProbeTable *p = &run->pr;
    fputs("<section id=\"onset\"><h2>Onset</h2>\n", f);
    if (!run->onset || !p->L) {
        fputs("<p class=\"empty\">No α₀ curves to find onsets in.</p></section>\n", f);
        return;
    }
    int LH = p->L * p->H, r = -1;
    for (int i = p->n - 1; i >= 0 && r < 0; i--)
        if (p->present[METRIC_ALPHA0] && !isnan(p->col[METRIC_ALPHA0][(size_t)i * LH])) r = i;
    const double *a = r >= 0 ? p->col[METRIC_ALPHA0] + (size_t)r * LH : NULL;
    const double *loc = r >= 0 && p->present[METRIC_SINK_LOCATION] ? p->col[METRIC_SINK_LOCATION] + (size_t)r * LH : NULL;
    const double *loc_a = r >= 0 && p->present[METRIC_SINK_LOCATION_ALPHA] ?
                          p->col[METRIC_SINK_LOCATION_ALPHA] + (size_t)r * LH : NULL;
    const double *act = r >= 0 && p->present[METRIC_ALPHA_BOS_ACTIVE] ?
                        p->col[METRIC_ALPHA_BOS_ACTIVE] + (size_t)r * LH : NULL;
    const double *dor = r >= 0 && p->present[METRIC_ALPHA_BOS_DORMANT] ?
                        p->col[METRIC_ALPHA_BOS_DORMANT] + (size_t)r * LH : NULL;
    fprintf(f, "<p class=\"lead\">The onset of a head is the first probe step from which its α₀ stays above θ = %.2g "
               "until the end of the run (a spike that falls back does not count). %s</p>\n",
            run->onset_threshold, run->onset_from_final ? "Read from the run's final summary (summary.json)." :
                                                          "Computed from the probe lines.");
    fputs("<div class=\"split\">", f);
    report_fig_begin(f, NULL, metric_chart_title(METRIC_SINK_LOCATION));
    fputs("<table class=\"onset\"><tr><th></th>", f);
    for (int h = 0; h < p->H; h++) fprintf(f, "<th>head %d</th>", h);
    fputs("</tr>\n", f);
    for (int l = 0; l < p->L; l++) {
        fprintf(f, "<tr><th>layer %d</th>", l);
        for (int h = 0; h < p->H; h++) {
            int i = l * p->H + h, on = run->onset[i];
            fprintf(f, "<td%s>", on >= 0 ? " class=\"sink\"" : "");
            if (on >= 0) fprintf(f, "step %d", on);
            else fputs("never", f);
            if (a && !isnan(a[i])) fprintf(f, "<span class=\"a\">α₀ %.2f</span>", a[i]);
            if (loc && isfinite(loc[i]) && loc[i] != 0) {
                fprintf(f, "<span class=\"a\">argmax k=%.0f", loc[i]);
                if (loc_a && isfinite(loc_a[i])) fprintf(f, " · α %.2f", loc_a[i]);
                fputs("</span>", f);
            }
            if (dor && act && isfinite(dor[i]) && isfinite(act[i]))
                fprintf(f, "<span class=\"a\">BOS: dormant %.2f · active %.2f</span>", dor[i], act[i]);
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    report_fig_end(f, "Red cells: heads that became sinks, with the step of onset. Second line: α₀ at the last probe, and the "
               "sink location (argmax<sub>k</sub> α<sub>k</sub> over keys seen by at least T/4 queries) and its α<sub>k</sub> when it is not key 0; "
               "when the data has query classes, the attention on BOS from dormant and from active queries.");
    if (a) {
        report_fig_begin(f, NULL, "α₀ per head at the last probe");
        double *v = malloc((size_t)LH * sizeof *v);
        char (*cat)[16] = malloc((size_t)p->L * sizeof *cat), (*lab)[16] = malloc((size_t)p->H * sizeof *lab);
        const char **cats = malloc((size_t)p->L * sizeof *cats);
        PlotBarSeries *s = malloc((size_t)p->H * sizeof *s);
        if (v && cat && lab && cats && s) {
            for (int l = 0; l < p->L; l++) { snprintf(cat[l], 16, "L%d", l); cats[l] = cat[l]; }
            for (int h = 0; h < p->H; h++) {
                snprintf(lab[h], 16, "h%d", h);
                for (int l = 0; l < p->L; l++) v[h * p->L + l] = a[l * p->H + h];
                s[h] = (PlotBarSeries){ .label = lab[h], .v = v + h * p->L };
            }
            char thr[48];
            snprintf(thr, sizeof thr, "θ = %.2g", run->onset_threshold);
            PlotRefLine ref = { run->onset_threshold, thr, "#b8515a" };
            PlotAxes ax = { .width = 560, .height = 280, .xlabel = "layer", .ylabel = "α₀", .fix_y = 1, .ymin = 0,
                            .ymax = 1, .refs = &ref, .n_refs = 1 };
            plot_bars(f, &ax, cats, p->L, s, p->H);
        }
        free(v); free(cat); free(lab); free(cats); free(s);
        char cap[256];
        snprintf(cap, sizeof cap, "α₀ of every head at step %.0f, grouped by layer. Bars above the dotted line count "
                 "towards the sink rate at ε = θ.", p->step[r]);
        report_fig_end(f, cap);
    }
    fputs("</div></section>\n", f);
}

/* ---------- the page ---------- */

static int write_page(FILE *f, const Run *run, char *err, size_t n_err)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>", f);
    report_esc(f, run->name);
    fprintf(f, " · sinklab report</title>\n<style>\n%s</style></head>\n<body>\n", CSS);
    write_header(f, run);
    fputs("<main>\n", f);
    write_summary(f, run);
    write_training(f, &run->tr);
    write_sinks(f, run);
    write_heads(f, run);
    write_onset(f, run);
    report_write_classes(f, &run->pr);
    if (report_write_probe_sections(f, run, err, n_err)) return -1;
    report_write_mechanics(f, &run->pr);
    int n_probe_lines = run->pr.n;
    fprintf(f, "<footer>Generated by sinklab %s from <code>metrics.jsonl</code> (%d lines, %d probe steps) and %d probe "
               "file%s. The page is self-contained: no scripts, no external resources; hover a heatmap cell or a dot "
               "for its value.</footer>\n</main>\n</body></html>\n",
            SINKLAB_VERSION, run->lines, n_probe_lines, run->n_probe_files, run->n_probe_files == 1 ? "" : "s");
    return 0;
}

int report_write(const char *run_dir, const KeyValueList *cfg, char *err, size_t n_err)
{
    static Run zero;
    Run *run = malloc(sizeof *run);
    if (!run) { snprintf(err, n_err, "out of memory"); return -1; }
    *run = zero;
    err[0] = 0;
    snprintf(run->dir, sizeof run->dir, "%s", run_dir);
    size_t dl = strlen(run->dir);
    while (dl > 1 && run->dir[dl - 1] == '/') run->dir[--dl] = 0;
    const char *base = strrchr(run->dir, '/');
    snprintf(run->name, sizeof run->name, "%.255s", base ? base + 1 : run->dir);
    run->onset_threshold = REPORT_ONSET_THRESHOLD;
    run->cfg = cfg;

    char path[REPORT_PATH_CAP + 32], tmp[REPORT_PATH_CAP + 40];
    int rc = report_read_run(run, err, n_err);
    if (!rc) {
        snprintf(path, sizeof path, "%s/report.html", run->dir);
        snprintf(tmp, sizeof tmp, "%s/report.html.tmp", run->dir);
        FILE *f = fopen(tmp, "wb");
        if (!f) {
            snprintf(err, n_err, "%s: cannot write: %s", tmp, strerror(errno));
            rc = -1;
        } else {
            rc = write_page(f, run, err, n_err);
            if (fclose(f) != 0 && !rc) { snprintf(err, n_err, "%s: write failed: %s", tmp, strerror(errno)); rc = -1; }
            if (!rc && rename(tmp, path) != 0) { snprintf(err, n_err, "%s: cannot rename into place: %s", path, strerror(errno)); rc = -1; }
            if (rc) remove(tmp);
        }
    }
    report_free_run(run);
    free(run);
    return rc;
}
