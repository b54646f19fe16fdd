/* intervene_report.c: what `sinklab analyze --intervene` shows: the console table,
 * interventions.json (exact probe settings, specs, every run's metrics and deltas) and
 * interventions.html (charts drawn by plot.c). Files are written to NAME.tmp and renamed. */
#include "analysis/intervene_run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/jsonw.h"
#include "analysis/plot.h"
#include "base/check.h"

/* The most common sink location over heads (-1 when no head has one) and how many heads. */
static int location_mode(const IvResult *r, int n, int T, int *count)
{
    int *hist = xcalloc((size_t)T + 1, sizeof(int)), best = -1, bc = 0;
    for (int i = 0; i < n; i++)
        if (r->loc[i] >= 0 && r->loc[i] < T) hist[r->loc[i]]++;
    for (int t = 0; t < T; t++)
        if (hist[t] > bc) { bc = hist[t]; best = t; }
    free(hist);
    *count = bc;
    return best;
}

static void fmt_loc(char *out, size_t n, const IvResult *r, int LH)
{
    int cnt, at = location_mode(r, LH, r->T, &cnt);
    if (at < 0) snprintf(out, n, "none");
    else snprintf(out, n, "%d (%d/%d heads)", at, cnt, LH);
}

static void fmt_num(char *out, size_t n, double v, const char *f)
{
    if (isfinite(v)) snprintf(out, n, f, v);
    else snprintf(out, n, "-");
}

void intervene_print_table(FILE *f, const IvCheckpoint *c, const Intervention *ivs)
{
    int LH = c->L * c->H;
    char loss[32], base[32], delta[32], rate[32], loc[48], loc0[48];
    fmt_loc(loc0, sizeof loc0, &c->base, LH);
    fprintf(f, "step %lld: %s\n", (long long)c->step, c->checkpoint);
    char rate_col[32];
    snprintf(rate_col, sizeof rate_col, "sink@%g", (double)c->eps0);
    fprintf(f, "%-34s %8s %8s %8s %9s %9s  %s\n", "intervention", "targets", "loss", "base",
            "d_loss", rate_col, "sink at (mode) baseline -> intervention");
    fmt_num(loss, sizeof loss, c->base.loss, "%.4f");
    fmt_num(rate, sizeof rate, c->base.sink_rate[0], "%.3f");
    fprintf(f, "%-34s %8d %8s %8s %9s %9s  %s\n", "baseline", c->base.n_targets, loss, "-", "-",
            rate, loc0);
    for (int i = 0; i < c->n; i++) {
        const IvResult *r = &c->res[i];
        fmt_num(loss, sizeof loss, r->loss, "%.4f");
        fmt_num(base, sizeof base, r->base_loss, "%.4f");
        fmt_num(delta, sizeof delta, r->loss - r->base_loss, "%+.4f");
        fmt_num(rate, sizeof rate, r->sink_rate[0], "%.3f");
        fmt_loc(loc, sizeof loc, r, LH);
        fprintf(f, "%-34s %8d %8s %8s %9s %9s  %s -> %s\n", ivs[i].text, r->n_targets,
                loss, base, delta, rate, loc0, loc);
    }
}

/* ---- interventions.json ---- */

static void write_rates(JsonWriter *w, const char *key, const float *rate, const float *base,
                        const ProbeConfig *pc)
{
    if (!isfinite(rate[0])) return;
    jsonw_key_object_begin(w, key);
    for (int e = 0; e < 3; e++) {
        char k[32];
        snprintf(k, sizeof k, "%g", (double)pc->eps[e]);
        jsonw_key_number(w, k, base ? rate[e] - base[e] : rate[e]);
    }
    jsonw_object_end(w);
}

/* One run's summary members (the probe object is appended by the caller). */
static void write_result(JsonWriter *w, const IvResult *r, const IvResult *base, int L, int H,
                         const ProbeConfig *pc)
{
    int LH[2] = {L, H}, L1 = L + 1;
    jsonw_key_int(w, "T", r->T);
    jsonw_key_int(w, "n_targets", r->n_targets);
    jsonw_key_number(w, "loss", r->loss);
    if (base) {
        jsonw_key_number(w, "baseline_loss", r->base_loss);
        jsonw_key_number(w, "delta_loss", r->loss - r->base_loss);
    }
    if (r->alpha0_valid) jsonw_key_floats(w, "alpha0", r->alpha0, LH, 2);
    if (base && r->alpha0_valid && base->alpha0_valid) {
        float *d = xmalloc((size_t)L * H * sizeof(float));
        for (int i = 0; i < L * H; i++) d[i] = r->alpha0[i] - base->alpha0[i];
        jsonw_key_floats(w, "delta_alpha0", d, LH, 2);
        free(d);
    }
    write_rates(w, "sink_rate", r->sink_rate, NULL, pc);
    if (base && isfinite(base->sink_rate[0])) write_rates(w, "delta_sink_rate", r->sink_rate, base->sink_rate, pc);
    jsonw_key_ints(w, "sink_location", r->loc, LH, 2);
    jsonw_key_floats(w, "sink_location_alpha", r->loc_alpha, LH, 2);
    if (r->target_alpha) {
        jsonw_key_int(w, "target_pos", r->target_pos);
        jsonw_key_floats(w, "alpha_target", r->target_alpha, LH, 2);
    }
    jsonw_key_number(w, "jacobian_norm", r->jacobian_norm);
    if (r->spread) jsonw_key_floats(w, "spread", r->spread, &L1, 1);
    if (base) {
        int n = IV_TOP_HEADS;
        jsonw_key_ints(w, "most_changed_heads", r->top, &n, 1);
    }
    if (r->note[0]) jsonw_key_string(w, "note", r->note);
}

/* {summary..., "probe": {...}}: the summary object without its closing brace, then the probe
 * member from the probe's own writer. */
static void put_run(FILE *f, JsonWriter *w, const IvResult *r, const IvResult *base,
                    const char *spec, int L, int H, const ProbeConfig *pc)
{
    jsonw_reset(w);
    jsonw_object_begin(w);
    jsonw_key_string(w, "spec", spec);
    write_result(w, r, base, L, H, pc);
    jsonw_object_end(w);
    size_t len;
    const char *t = jsonw_text(w, &len);
    fwrite(t, 1, len - 1, f);
    fputc(',', f);
    fputs(r->probe_json + 1, f);
}

static void put_settings(FILE *f, JsonWriter *w, const ProbeConfig *pc, const char *source)
{
    jsonw_reset(w);
    jsonw_object_begin(w);
    jsonw_key_string(w, "source", source);
    jsonw_key_object_begin(w, "probe_settings");
    jsonw_key_int(w, "n_seq", pc->n_seq);
    jsonw_key_int(w, "seq_len", pc->seq_len);
    jsonw_key_string(w, "bos", pc->bos < 0 ? "auto" : pc->bos ? "true" : "false");
    int three = 3;
    jsonw_key_floats(w, "eps", pc->eps, &three, 1);
    jsonw_key_int(w, "perturb_pos", pc->perturb_pos);
    jsonw_key_number(w, "perturb_scale", pc->perturb_scale);
    jsonw_key_int(w, "jacobian_seq", pc->jacobian_seq);
    jsonw_key_int(w, "jacobian_samples", pc->jacobian_samples);
    jsonw_object_end(w);
    jsonw_object_end(w);
    size_t len;
    const char *t = jsonw_text(w, &len);
    fwrite(t, 1, len - 1, f);
}

/* The probe sequences every run starts from, so any run can be reproduced elsewhere
 * (tools/torch_load.py replays the specs on them). */
static void write_batch(JsonWriter *w, const Batch *b)
{
    int shape[2] = {b->B, b->T};
    jsonw_key_object_begin(w, "probe_batch");
    jsonw_key_ints(w, "tokens", b->tokens, shape, 2);
    jsonw_key_ints(w, "targets", b->targets, shape, 2);
    jsonw_key_ints(w, "positions", b->positions, shape, 2);
    jsonw_key_ints(w, "doc_ids", b->doc_ids, shape, 2);
    jsonw_key_floats(w, "loss_mask", b->loss_mask, shape, 2);
    jsonw_key_ints(w, "prefix_len", b->prefix_len, &b->B, 1);
    jsonw_object_end(w);
}

static FILE *open_tmp(const char *path, char *tmp, size_t n, char *err, size_t n_err)
{
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) snprintf(err, n_err, "%s: cannot write", tmp);
    return f;
}

static int close_rename(FILE *f, const char *tmp, const char *path, char *err, size_t n_err)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        remove(tmp);
        snprintf(err, n_err, "%s: write failed", path);
        return -1;
    }
    return 0;
}

int intervene_write_json(const char *path, const IvCheckpoint *cks, int n_ck,
                         const Intervention *ivs, int n_iv, const ProbeConfig *pc,
                         const char *source, char *err, size_t n_err)
{
    char tmp[1200];
    FILE *f = open_tmp(path, tmp, sizeof tmp, err, n_err);
    if (!f) return -1;
    JsonWriter w;
    jsonw_init(&w);
    put_settings(f, &w, pc, source);
    fputs(",\"specs\":[", f);
    for (int i = 0; i < n_iv; i++) {
        jsonw_reset(&w);
        jsonw_string(&w, ivs[i].text);
        size_t len;
        const char *t = jsonw_text(&w, &len);
        fprintf(f, "%s%.*s", i ? "," : "", (int)len, t);
    }
    fputs("],\"checkpoints\":[", f);
    for (int c = 0; c < n_ck; c++) {
        const IvCheckpoint *ck = &cks[c];
        jsonw_reset(&w);
        jsonw_object_begin(&w);
        jsonw_key_int(&w, "step", ck->step);
        jsonw_key_string(&w, "checkpoint", ck->checkpoint);
        if (ck->mlm_masked) jsonw_key_int(&w, "mlm_masked_positions", ck->mlm_masked);
        write_batch(&w, &ck->batch);
        jsonw_object_end(&w);
        size_t len;
        const char *t = jsonw_text(&w, &len);
        fprintf(f, "%s%.*s,\"baseline\":", c ? "," : "", (int)len - 1, t);
        put_run(f, &w, &ck->base, NULL, "baseline", ck->L, ck->H, pc);
        fputs(",\"interventions\":[", f);
        for (int i = 0; i < ck->n; i++) {
            if (i) fputc(',', f);
            put_run(f, &w, &ck->res[i], &ck->base, ivs[i].text, ck->L, ck->H, pc);
        }
        fputs("]}", f);
    }
    fputs("]}\n", f);
    jsonw_free(&w);
    return close_rename(f, tmp, path, err, n_err);
}

/* ---- interventions.html ---- */

static const char CSS[] =
    "body{margin:0;background:#f5f6f8;color:#1d2330;font:14px/1.5 system-ui,sans-serif}\n"
    "header{background:#1d2330;color:#fff;padding:20px 36px}header h1{margin:0;font-size:24px}\n"
    ".sub{color:#aab3c3;font-size:13px}main{max-width:1320px;margin:0 auto;padding:6px 32px 40px}\n"
    "section{margin-top:26px}h2{font-size:19px;margin:0 0 4px}p.lead{color:#5d6575;margin:0 0 12px}\n"
    ".grid{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:14px}\n"
    ".wide{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:14px}\n"
    "figure{margin:0;background:#fff;border:1px solid #e3e6ec;border-radius:10px;padding:12px 14px}\n"
    "figure h3{margin:0 0 6px;font-size:14px}figure svg{width:100%;height:auto;display:block}\n"
    "figcaption{color:#5d6575;font-size:12.5px;margin-top:6px}\n"
    "table{border-collapse:collapse;background:#fff;font-size:13px;margin-bottom:14px}td,th{border:1px solid #e3e6ec;"
    "padding:4px 9px;text-align:right}th{background:#eef0f4}td:first-child{color:#5d6575}td:nth-child(2){text-align:left;font-family:ui-monospace,"
    "monospace}\n";

static void head_label(char *out, size_t n, int lh, int H)
{
    snprintf(out, n, "L%d.H%d", lh / H, lh % H);
}

static void write_map(FILE *f, const float *A, int T, int causal, const char *title)
{
    double *z = xmalloc((size_t)T * T * sizeof(double));
    for (int i = 0; i < T * T; i++) z[i] = A[i];
    PlotHeatmap hm = {.width = 300, .height = 300, .title = title, .xlabel = "key",
                      .ylabel = "query", .vmin = 0, .vmax = 1, .scale = PLOT_SCALE_SQRT,
                      .cmap = PLOT_CMAP_VIRIDIS, .mask_upper = causal, .square = 1};
    plot_heatmap(f, &hm, z, T, T);
    free(z);
}

static void write_delta_bars(FILE *f, const IvCheckpoint *ck, const Intervention *ivs)
{
    /* specs are long: the bars carry their row number in the table above */
    char **cats = xcalloc((size_t)ck->n + 1, sizeof *cats);
    double *v = xcalloc((size_t)ck->n + 1, sizeof(double));
    for (int i = 0; i < ck->n; i++) {
        cats[i] = xmalloc(16);
        snprintf(cats[i], 16, "#%d", i + 1);
        v[i] = ck->res[i].loss - ck->res[i].base_loss;
    }
    PlotBarSeries s = {.label = "loss - baseline loss (identical targets)", .v = v};
    PlotAxes ax = {.width = 900, .height = 320, .ylabel = "delta loss (nats)", .y_from_zero = 1};
    fputs("<figure><h3>Delta loss per intervention</h3>", f);
    plot_bars(f, &ax, (const char *const *)cats, ck->n, &s, 1);
    fputs("<figcaption>Mean cross-entropy with the intervention minus the unmodified model's, "
          "over the identical set of predicted tokens; #N is row N of the table.</figcaption>"
          "</figure>\n", f);
    for (int i = 0; i < ck->n; i++) free(cats[i]);
    free(cats);
    free(v);
}

static void write_alpha0_bars(FILE *f, const IvCheckpoint *ck, const IvResult *r, const char *spec)
{
    int LH = ck->L * ck->H;
    char **labels = xcalloc((size_t)LH, sizeof *labels);
    double *before = xmalloc((size_t)LH * sizeof(double)), *after = xmalloc((size_t)LH * sizeof(double));
    for (int i = 0; i < LH; i++) {
        labels[i] = xmalloc(32);
        head_label(labels[i], 32, i, ck->H);
        before[i] = ck->base.alpha0_valid ? ck->base.alpha0[i] : NAN;
        after[i] = r->alpha0_valid ? r->alpha0[i] : NAN;
    }
    PlotBarSeries s[2] = {{.label = "baseline", .v = before}, {.label = spec, .v = after}};
    PlotAxes ax = {.width = 560, .height = 260, .ylabel = "alpha0", .y_from_zero = 1};
    fputs("<figure><h3>alpha0 per head, before / after</h3>", f);
    plot_bars(f, &ax, (const char *const *)labels, LH, s, 2);
    fprintf(f, "<figcaption>%s</figcaption></figure>\n", r->alpha0_valid ? "Mean attention on "
            "key 0 per head." : "Key 0 is hidden from most queries in this run: alpha0 is not "
            "defined (no bars).");
    for (int i = 0; i < LH; i++) free(labels[i]);
    free(labels);
    free(before);
    free(after);
}

static void write_intervention(FILE *f, const IvCheckpoint *ck, int i, const Intervention *iv)
{
    const IvResult *r = &ck->res[i];
    int T0 = ck->base.T, H = ck->H;
    fputs("<section><h2>", f);
    plot_write_escaped(f, iv->text);
    fprintf(f, "</h2><p class=\"lead\">delta loss %+.4f over %d targets; ", r->loss - r->base_loss,
            r->n_targets);
    if (isfinite(r->jacobian_norm)) fprintf(f, "Jacobian norm %.4g; ", r->jacobian_norm);
    fputs("most changed heads (sequence 0) before and after.</p>\n<div class=\"wide\">", f);
    write_alpha0_bars(f, ck, r, iv->text);
    fputs("</div><div class=\"grid\">", f);
    for (int k = 0; k < IV_TOP_HEADS; k++) {
        int lh = r->top[k];
        if (lh < 0) continue;
        char lab[32], title[64];
        head_label(lab, sizeof lab, lh, H);
        snprintf(title, sizeof title, "%s baseline", lab);
        fprintf(f, "<figure><h3>%s</h3>", title);
        write_map(f, ck->base.maps + (size_t)lh * T0 * T0, T0, ck->causal, NULL);
        fputs("</figure>", f);
        snprintf(title, sizeof title, "%s intervention", lab);
        fprintf(f, "<figure><h3>%s</h3>", title);
        write_map(f, r->maps + (size_t)k * r->T * r->T, r->T, ck->causal, NULL);
        fputs("</figure>", f);
    }
    fputs("</div></section>\n", f);
}

/* Several checkpoints: each intervention's delta loss against the training step. */
static void write_over_steps(FILE *f, const IvCheckpoint *cks, int n_ck, const Intervention *ivs,
                             int n_iv)
{
    double *x = xmalloc((size_t)n_ck * sizeof(double)), *y = xmalloc((size_t)n_ck * n_iv * sizeof(double));
    PlotSeries *s = xcalloc((size_t)n_iv, sizeof *s);
    for (int c = 0; c < n_ck; c++) {
        x[c] = (double)cks[c].step;
        for (int i = 0; i < n_iv; i++)
            y[(size_t)i * n_ck + c] = cks[c].res[i].loss - cks[c].res[i].base_loss;
    }
    for (int i = 0; i < n_iv; i++)
        s[i] = (PlotSeries){.label = ivs[i].text, .x = x, .y = y + (size_t)i * n_ck, .n = n_ck,
                            .markers = 1};
    /* log-spaced checkpoints crowd the left of a linear axis */
    double lo = 0.0, hi = 0.0;
    for (int c = 0; c < n_ck; c++)
        if (x[c] > 0) { lo = lo > 0 && lo < x[c] ? lo : x[c]; hi = hi > x[c] ? hi : x[c]; }
    int log_x = lo > 0 && hi / lo >= 20.0;
    PlotRefLine zero = {.y = 0, .label = "no effect"};
    PlotAxes ax = {.width = 900, .height = 340, .xlabel = log_x ? "training step (log; step 0 "
                   "not drawn)" : "training step", .ylabel = "delta loss (nats)", .log_x = log_x,
                   .refs = &zero, .n_refs = 1};
    fputs("<section><h2>When the model starts to depend on its sink</h2><p class=\"lead\">Each "
          "intervention on every checkpoint of the run: a delta loss that grows with training "
          "means the model has come to rely on what the intervention removes.</p>"
          "<figure><h3>Delta loss against training step</h3>", f);
    plot_lines(f, &ax, s, n_iv);
    fputs("</figure></section>\n", f);
    free(x);
    free(y);
    free(s);
}

static void write_table(FILE *f, const IvCheckpoint *ck, const Intervention *ivs)
{
    char a[32], b[32], c[32], d[32];
    fputs("<table><tr><th>#</th><th>intervention</th><th>targets</th><th>loss</th><th>baseline loss</th>"
          "<th>delta loss</th><th>sink rate @ eps[0]</th></tr>\n", f);
    fmt_num(a, sizeof a, ck->base.loss, "%.4f");
    fmt_num(d, sizeof d, ck->base.sink_rate[0], "%.3f");
    fprintf(f, "<tr><td></td><td>baseline</td><td>%d</td><td>%s</td><td>-</td><td>-</td><td>%s</td></tr>\n",
            ck->base.n_targets, a, d);
    for (int i = 0; i < ck->n; i++) {
        const IvResult *r = &ck->res[i];
        fmt_num(a, sizeof a, r->loss, "%.4f");
        fmt_num(b, sizeof b, r->base_loss, "%.4f");
        fmt_num(c, sizeof c, r->loss - r->base_loss, "%+.4f");
        fmt_num(d, sizeof d, r->sink_rate[0], "%.3f");
        fprintf(f, "<tr><td>#%d</td><td>", i + 1);
        plot_write_escaped(f, ivs[i].text);
        fprintf(f, "</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
                r->n_targets, a, b, c, d);
    }
    fputs("</table>\n", f);
}

int intervene_write_html(const char *path, const IvCheckpoint *cks, int n_ck,
                         const Intervention *ivs, int n_iv, const ProbeConfig *pc,
                         const char *source, char *err, size_t n_err)
{
    char tmp[1200];
    FILE *f = open_tmp(path, tmp, sizeof tmp, err, n_err);
    if (!f) return -1;
    const IvCheckpoint *last = &cks[n_ck - 1];
    fprintf(f, "<!doctype html><html><head><meta charset=\"utf-8\"><title>sinklab interventions"
            "</title><style>%s</style></head><body><header><h1>Interventions</h1><div class=\"sub\">",
            CSS);
    plot_write_escaped(f, source);
    fprintf(f, " &middot; %d probe sequences of %d tokens &middot; %d checkpoint%s</div></header><main>\n",
            pc->n_seq, pc->seq_len, n_ck, n_ck == 1 ? "" : "s");
    if (n_ck > 1) write_over_steps(f, cks, n_ck, ivs, n_iv);
    fprintf(f, "<section><h2>Step %lld</h2><p class=\"lead\">", (long long)last->step);
    plot_write_escaped(f, last->checkpoint);
    fputs("</p>", f);
    write_table(f, last, ivs);
    write_delta_bars(f, last, ivs);
    fputs("</section>\n", f);
    for (int i = 0; i < last->n; i++) write_intervention(f, last, i, &ivs[i]);
    fputs("</main></body></html>\n", f);
    return close_rename(f, tmp, path, err, n_err);
}
