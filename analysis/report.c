/* report.c: run folder -> report.html. Reading first (metrics.jsonl into a training table and a
 * probe table, config.yaml into flat key/value pairs, a few probe/step_*.json files), then writing one
 * section at a time. Everything the page needs is inline; nothing depends on scripts. */
#include "analysis/report.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "analysis/json.h"
#include "analysis/onset.h"
#include "analysis/plot.h"

#ifndef SINKLAB_VERSION
#define SINKLAB_VERSION "dev"
#endif

#define PATH_CAP 1024

/* ---------- what metrics.jsonl holds ---------- */

enum { TK_STEP, TK_TOKENS, TK_EPOCH, TK_LOSS, TK_LR, TK_GRAD, TK_TPS, TK_VAL, N_TKEYS };
static const char *TRAIN_KEYS[N_TKEYS] = { "step", "tokens", "epoch", "loss", "lr", "grad_norm",
                                           "tok_per_s", "val_loss" };

typedef enum { MK_HEAD, MK_LAYER, MK_DEPTH, MK_SCALAR } MetricKind; /* L x H, L, L + 1, 1 */

typedef struct {
    const char *key;        /* under "probe"; "sink_rate.0.3" means probe.sink_rate["0.3"] */
    MetricKind kind;
    const char *title, *ylabel, *caption;
    int log_y;
    int mechanics;          /* drawn as a small chart in the mechanics section */
} MetricSpec;

static const MetricSpec METRICS[] = {
    { "alpha0", MK_HEAD, NULL, NULL, NULL, 0, 0 },
    { "sink_location", MK_HEAD, NULL, NULL, NULL, 0, 0 },
    { "sink_rate.0.3", MK_SCALAR, NULL, NULL, NULL, 0, 0 },
    { "sink_rate.0.5", MK_SCALAR, NULL, NULL, NULL, 0, 0 },
    { "sink_rate.0.8", MK_SCALAR, NULL, NULL, NULL, 0, 0 },
    { "alpha0_max", MK_SCALAR, NULL, NULL, NULL, 0, 0 },
    { "alpha0_mean", MK_SCALAR, NULL, NULL, NULL, 0, 0 },
    { "uniform_alpha0", MK_SCALAR, NULL, NULL, NULL, 0, 0 },
    { "sink_rate_gu.0.3", MK_SCALAR, NULL, NULL, NULL, 0, 0 },
    { "alpha_bos", MK_HEAD, "Attention on BOS", "α on BOS",
      "Mean attention that BOS tokens receive, per layer (mean over heads). Present because this "
      "probe has BOS: compare with α₀ to see whether the sink sits on BOS or on the first data token.", 0, 1 },
    { "alpha_learned_sink", MK_HEAD, "Attention on the learned sink", "α on learned sink",
      "Attention mass that goes to the learned sink (softmax1 / sink logit, k_bias, kv_bias, sink token) "
      "instead of any data key, per layer (mean over heads). It replaces α₀ as the place a head parks attention.", 0, 1 },
    { "value_norm_ratio", MK_HEAD, "Value norm of key 0", "‖v₀‖ / mean ‖vⱼ‖",
      "Norm of key 0's value vector over the mean value norm, per layer (mean over heads). Well below 1: "
      "the sink is a near no-op key, so a head can attend to it without writing much (the 'waiver').", 0, 1 },
    { "key_norm_ratio", MK_HEAD, "Key norm of key 0", "‖k₀‖ / mean ‖kⱼ‖",
      "Norm of key 0's key vector over the mean key norm, per layer. Gu et al. find the sink is driven by "
      "the query–key angle rather than by norms: read it together with cos(q, k₀).", 0, 1 },
    { "cos_qk0", MK_HEAD, "Query–key-0 alignment", "mean cos(qᵢ, k₀)",
      "Mean cosine between the queries and key 0's key, per layer (mean over heads). Queries turning "
      "towards k₀ is the mechanism by which a sink forms.", 0, 1 },
    { "entropy_norm", MK_HEAD, "Attention entropy (normalised)", "H / log(#keys)",
      "Mean entropy of each attention row divided by its maximum, log of the number of visible keys: "
      "1 = uniform, 0 = all mass on one key. Heads that become sinks fall towards 0.", 0, 1 },
    { "entropy", MK_HEAD, "Attention entropy", "entropy (nats)",
      "Mean entropy of the attention rows in nats, per layer (mean over heads). Lower = more peaked.", 0, 1 },
    { "massive_ratio", MK_LAYER, "Massive activation at position 0", "‖h₀‖ / mean ‖hₜ‖",
      "Residual-stream norm of the first token over the mean norm of the others, after each layer "
      "(Sun et al. 2024). A sink usually comes with a massive first-token state. Log scale.", 1, 1 },
    { "massive_top_median", MK_LAYER, "Largest activation / median", "max |x| / median |x|",
      "The single largest activation magnitude over the median magnitude, after each layer. Massive "
      "activations sit orders of magnitude above the median. Log scale.", 1, 1 },
    { "qk_eig_mean", MK_HEAD, "QK spectrum: mean eigenvalue", "mean Re λ(W_Q W_Kᵀ/√d)",
      "Mean of the real parts of the eigenvalues of each head's query–key form W_Q W_Kᵀ/√d, per layer "
      "(mean over heads; Bao et al. 2024). A positive mean lets a key attract every query: a sink-friendly geometry.", 0, 1 },
    { "qk_eig_var", MK_HEAD, "QK spectrum: eigenvalue variance", "var Re λ",
      "Variance of the real parts of the QK eigenvalues, per layer (mean over heads).", 0, 1 },
    { "qk_sym_mean", MK_HEAD, "QK symmetric part: mean eigenvalue", "mean λ(sym)",
      "Mean eigenvalue of the symmetric part (W + Wᵀ)/2 of the QK form, per layer (mean over heads).", 0, 1 },
    { "qk_sym_var", MK_HEAD, "QK symmetric part: eigenvalue variance", "var λ(sym)",
      "Variance of the eigenvalues of the symmetric part of the QK form, per layer (mean over heads).", 0, 1 },
    { "collapse_cos", MK_DEPTH, "Collapse: mean pairwise cosine", "mean cos(hᵢ, hⱼ)",
      "Mean cosine similarity between token states at each depth (emb = embeddings). Rising towards 1 "
      "means the tokens' states become alike (representational collapse / over-mixing).", 0, 1 },
    { "collapse_resid", MK_DEPTH, "Collapse: spread around the mean", "‖X − 1x̄ᵀ‖ / ‖X‖",
      "How far token states stay from their mean, relative to their size, at each depth. Towards 0 = collapse.", 0, 1 },
    { "eff_rank", MK_DEPTH, "Effective rank of token states", "exp(entropy of σ)",
      "Effective rank of the matrix of token states at each depth: exp of the entropy of its normalised "
      "singular values. Lower = states squeezed into fewer directions.", 0, 1 },
    { "spread", MK_DEPTH, "Perturbation spread", "mean ‖Δhⱼ‖ / ‖hⱼ‖",
      "Relative change of later tokens' states at each depth when one early token is perturbed. "
      "Lower means less over-mixing; sinks are thought to act as a brake on it. Log scale.", 1, 1 },
    { "jacobian_norm", MK_SCALAR, "Jacobian norm", "‖∂h_T / ∂h_i‖",
      "Norm of the Jacobian of the last position's final state with respect to an early input "
      "embedding: how strongly one token's information reaches the end. Log scale.", 1, 1 },
};
#define N_METRICS ((int)(sizeof METRICS / sizeof METRICS[0]))
enum { M_ALPHA0, M_SINKLOC, M_SR03, M_SR05, M_SR08, M_AMAX, M_AMEAN, M_UNIFORM, M_SRGU03 };

typedef struct {
    int n, cap;
    double *col[N_TKEYS];
} TrainTable;

typedef struct {
    int n, cap;
    int L, H;
    double *step, *tokens;
    double *col[N_METRICS];   /* n rows x width(kind); NaN = not measured */
    int present[N_METRICS];
} ProbeTable;

typedef struct {
    char key[96], val[128];
} CfgPair;

typedef struct {
    CfgPair *p;
    int n, cap;
} Cfg;

typedef struct {
    char dir[PATH_CAP], name[256];
    TrainTable tr;
    ProbeTable pr;
    Cfg cfg;
    int lines, partial_last;
    double onset_threshold;
    int *onset;               /* L x H, -1 = never; NULL until known */
    int onset_from_final;
    int *probe_steps;         /* probe/step_*.json, sorted */
    int n_probe_files;
} Run;

static int width_of(const ProbeTable *p, MetricKind k)
{
    return k == MK_HEAD ? p->L * p->H : k == MK_LAYER ? p->L : k == MK_DEPTH ? p->L + 1 : 1;
}

/* ---------- config.yaml as flat dotted keys ---------- */

static void cfg_put(Cfg *c, const char *key, const char *val)
{
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 64;
        CfgPair *p = realloc(c->p, (size_t)cap * sizeof *p);
        if (!p) return;
        c->p = p;
        c->cap = cap;
    }
    snprintf(c->p[c->n].key, sizeof c->p[c->n].key, "%s", key);
    snprintf(c->p[c->n].val, sizeof c->p[c->n].val, "%s", val);
    c->n++;
}

static const char *cfg_get(const Cfg *c, const char *key)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->p[i].key, key) == 0) return c->p[i].val;
    return NULL;
}

/* One YAML node whose first event is ev: scalars are stored under path, mappings recurse,
 * sequences are summarised as "[n items]". Returns -1 on a parse error. */
static int cfg_node(Cfg *c, yaml_parser_t *yp, yaml_event_t *ev, const char *path)
{
    if (ev->type == YAML_SCALAR_EVENT) {
        cfg_put(c, path, (const char *)ev->data.scalar.value);
        return 0;
    }
    if (ev->type == YAML_SEQUENCE_START_EVENT) {
        int depth = 1, items = 0;
        while (depth > 0) {
            yaml_event_t e;
            if (!yaml_parser_parse(yp, &e)) return -1;
            if (depth == 1 && (e.type == YAML_SCALAR_EVENT || e.type == YAML_MAPPING_START_EVENT ||
                               e.type == YAML_SEQUENCE_START_EVENT)) items++;
            if (e.type == YAML_SEQUENCE_START_EVENT || e.type == YAML_MAPPING_START_EVENT) depth++;
            if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) depth--;
            yaml_event_delete(&e);
        }
        char v[32];
        snprintf(v, sizeof v, items ? "[%d items]" : "[]", items);
        cfg_put(c, path, v);
        return 0;
    }
    if (ev->type != YAML_MAPPING_START_EVENT) return 0;
    for (;;) {
        yaml_event_t k, v;
        if (!yaml_parser_parse(yp, &k)) return -1;
        if (k.type == YAML_MAPPING_END_EVENT) { yaml_event_delete(&k); return 0; }
        char sub[256];
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "",
                 k.type == YAML_SCALAR_EVENT ? (const char *)k.data.scalar.value : "?");
        yaml_event_delete(&k);
        if (!yaml_parser_parse(yp, &v)) return -1;
        int rc = cfg_node(c, yp, &v, sub);
        yaml_event_delete(&v);
        if (rc) return -1;
    }
}

/* A missing or unreadable config only costs the header its details. */
static void cfg_load(Cfg *c, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return;
    yaml_parser_t yp;
    if (!yaml_parser_initialize(&yp)) { fclose(f); return; }
    yaml_parser_set_input_file(&yp, f);
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&yp, &ev)) break;
        int type = ev.type;
        int rc = (type == YAML_MAPPING_START_EVENT) ? cfg_node(c, &yp, &ev, "") : 0;
        yaml_event_delete(&ev);
        if (rc || type == YAML_STREAM_END_EVENT || type == YAML_MAPPING_START_EVENT) break;
    }
    yaml_parser_delete(&yp);
    fclose(f);
}

/* ---------- metrics.jsonl ---------- */

static int grow(double **col, int cap, int width)
{
    double *p = realloc(*col, (size_t)cap * (size_t)width * sizeof *p);
    if (!p) return -1;
    *col = p;
    return 0;
}

static int train_add(TrainTable *t, const JsonValue *line)
{
    double step = json_num_or(json_get(line, "step"), NAN);
    /* A resumed run logs steps again: later lines supersede earlier ones from that step on. */
    while (t->n > 0 && t->col[TK_STEP][t->n - 1] > step) t->n--;
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 1024;
        for (int k = 0; k < N_TKEYS; k++)
            if (grow(&t->col[k], cap, 1)) return -1;
        t->cap = cap;
    }
    for (int k = 0; k < N_TKEYS; k++) t->col[k][t->n] = json_num_or(json_get(line, TRAIN_KEYS[k]), NAN);
    t->n++;
    return 0;
}

static const JsonValue *probe_lookup(const JsonValue *probe, const char *key)
{
    if (strncmp(key, "sink_rate.", 10) == 0) return json_get(json_get(probe, "sink_rate"), key + 10);
    if (strncmp(key, "sink_rate_gu.", 13) == 0)
        return json_get(json_get(probe, "sink_rate_gu"), key + 13);
    return json_get(probe, key);
}

/* Learns L and H from the first probe line: alpha0's shape, else any per-head metric. */
static int probe_shape(ProbeTable *p, const JsonValue *probe)
{
    for (int m = 0; m < N_METRICS; m++) {
        if (METRICS[m].kind != MK_HEAD) continue;
        const JsonValue *v = probe_lookup(probe, METRICS[m].key);
        if (json_len(v) > 0 && json_len(json_at(v, 0)) > 0) {
            p->L = v->n;
            p->H = v->items[0].n;
            return 0;
        }
    }
    return -1;
}

static int probe_add(ProbeTable *p, const JsonValue *line, const JsonValue *probe, const char *file,
                     int lineno, char *err, size_t n_err)
{
    if (p->L == 0 && probe_shape(p, probe)) {
        snprintf(err, n_err, "%s:%d: probe: no per-head metric (alpha0: [[per head] per layer]) to learn "
                 "the number of layers and heads from", file, lineno);
        return -1;
    }
    double step = json_num_or(json_get(line, "step"), NAN);
    while (p->n > 0 && p->step[p->n - 1] > step) p->n--;
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 256;
        if (grow(&p->step, cap, 1) || grow(&p->tokens, cap, 1)) goto oom;
        for (int m = 0; m < N_METRICS; m++)
            if (grow(&p->col[m], cap, width_of(p, METRICS[m].kind))) goto oom;
        p->cap = cap;
    }
    int r = p->n;
    p->step[r] = step;
    p->tokens[r] = json_num_or(json_get(line, "tokens"), NAN);
    for (int m = 0; m < N_METRICS; m++) {
        int w = width_of(p, METRICS[m].kind);
        double *dst = p->col[m] + (size_t)r * w;
        for (int i = 0; i < w; i++) dst[i] = NAN;
        const JsonValue *v = probe_lookup(probe, METRICS[m].key);
        if (!v) continue;
        int ok;
        const char *want;
        char shape[64];
        switch (METRICS[m].kind) {
        case MK_HEAD:
            ok = json_matrix(dst, v, p->L, p->H) == 0;
            want = "[[per head] per layer]";
            snprintf(shape, sizeof shape, "%d x %d", p->L, p->H);
            break;
        case MK_SCALAR:
            ok = v->type == JSON_NUMBER;
            if (ok) dst[0] = v->number;
            want = "a number";
            snprintf(shape, sizeof shape, "1");
            break;
        default:
            ok = json_matrix(dst, &(JsonValue){ .type = JSON_ARRAY, .n = 1, .items = v }, 1, w) == 0;
            want = METRICS[m].kind == MK_LAYER ? "[per layer]" : "[per layer, embeddings first]";
            snprintf(shape, sizeof shape, "%d", w);
        }
        if (!ok) {
            for (int i = 0; i < w; i++) dst[i] = NAN;
            snprintf(err, n_err, "%s:%d: probe.%s: expected %s of %s numbers (the shape of the first probe line)",
                     file, lineno, METRICS[m].key, want, shape);
            return -1;
        }
        p->present[m] = 1;
    }
    p->n++;
    return 0;
oom:
    snprintf(err, n_err, "%s: out of memory", file);
    return -1;
}

static int final_add(Run *run, const JsonValue *fin, const char *file, int lineno, char *err, size_t n_err)
{
    const JsonValue *on = json_get(fin, "onset");
    const JsonValue *steps = json_get(on, "steps");
    if (!steps) return 0;
    ProbeTable *p = &run->pr;
    int L = p->L ? p->L : json_len(steps), H = p->H ? p->H : json_len(json_at(steps, 0));
    double *tmp = L > 0 && H > 0 ? malloc((size_t)L * H * sizeof *tmp) : NULL;
    if (!tmp || json_matrix(tmp, steps, L, H)) {
        free(tmp);
        snprintf(err, n_err, "%s:%d: final.onset.steps: expected [[step or -1 per head] per layer] of %d x %d",
                 file, lineno, L, H);
        return -1;
    }
    free(run->onset);
    run->onset = malloc((size_t)L * H * sizeof *run->onset);
    if (!run->onset) { free(tmp); return -1; }
    for (int i = 0; i < L * H; i++) run->onset[i] = (int)tmp[i];
    free(tmp);
    if (!p->L) { p->L = L; p->H = H; }
    run->onset_threshold = json_num_or(json_get(on, "threshold"), REPORT_ONSET_THRESHOLD);
    run->onset_from_final = 1;
    return 0;
}

static int read_metrics(Run *run, char *err, size_t n_err)
{
    char path[PATH_CAP + 32];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run->dir);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, n_err, "%s: cannot open: %s (is %s a sinklab run folder?)", path, strerror(errno), run->dir);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        int complete = len > 0 && line[len - 1] == '\n';
        size_t i = 0;
        while (i < (size_t)len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n')) i++;
        if (i == (size_t)len) continue;
        JsonDoc doc;
        if (json_parse(&doc, line, (size_t)len, path, lineno, err, n_err)) {
            /* A run still writing (or killed mid-write) leaves an unterminated last line. */
            if (!complete && getc(f) == EOF) { run->partial_last = 1; err[0] = 0; break; }
            rc = -1;
            break;
        }
        run->lines++;
        const JsonValue *root = doc.root, *probe = json_get(root, "probe"), *fin = json_get(root, "final");
        if (root->type != JSON_OBJECT) {
            snprintf(err, n_err, "%s:%d: expected one JSON object per line", path, lineno);
            rc = -1;
        } else if (fin) {
            rc = final_add(run, fin, path, lineno, err, n_err);
        } else if (json_get(root, "step")) {
            rc = train_add(&run->tr, root);
            if (!rc && probe && probe->type == JSON_OBJECT)
                rc = probe_add(&run->pr, root, probe, path, lineno, err, n_err);
            if (rc && !err[0]) snprintf(err, n_err, "%s: out of memory", path);
        }
        json_free(&doc);
        if (rc) break;
    }
    free(line);
    fclose(f);
    return rc;
}

/* Onset per head: from the final summary when the run wrote one, else computed here. */
static void compute_onset(Run *run)
{
    ProbeTable *p = &run->pr;
    if (run->onset_from_final || !p->present[M_ALPHA0] || p->L == 0) return;
    int LH = p->L * p->H, n = 0;
    int *steps = malloc((size_t)p->n * sizeof *steps);
    float *vals = malloc((size_t)p->n * LH * sizeof *vals);
    run->onset = malloc((size_t)LH * sizeof *run->onset);
    if (!steps || !vals || !run->onset) { free(steps); free(vals); free(run->onset); run->onset = NULL; return; }
    for (int r = 0; r < p->n; r++) {
        const double *a = p->col[M_ALPHA0] + (size_t)r * LH;
        if (isnan(a[0])) continue;
        steps[n] = (int)p->step[r];
        for (int i = 0; i < LH; i++) vals[(size_t)n * LH + i] = (float)a[i];
        n++;
    }
    run->onset_threshold = REPORT_ONSET_THRESHOLD;
    onset_find_steps(run->onset, steps, vals, n, LH, (float)run->onset_threshold);
    free(steps);
    free(vals);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void list_probe_files(Run *run)
{
    char path[PATH_CAP + 16];
    snprintf(path, sizeof path, "%s/probe", run->dir);
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *e;
    int cap = 0;
    while ((e = readdir(d))) {
        int step, used = 0;
        if (sscanf(e->d_name, "step_%d.json%n", &step, &used) != 1 || used != (int)strlen(e->d_name)) continue;
        if (run->n_probe_files == cap) {
            cap = cap ? 2 * cap : 32;
            int *s = realloc(run->probe_steps, (size_t)cap * sizeof *s);
            if (!s) break;
            run->probe_steps = s;
        }
        run->probe_steps[run->n_probe_files++] = step;
    }
    closedir(d);
    if (run->n_probe_files) qsort(run->probe_steps, (size_t)run->n_probe_files, sizeof(int), cmp_int);
}

/* ---------- small text helpers ---------- */

static void esc(FILE *f, const char *s) { plot_write_escaped(f, s); }

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

static void fig_begin(FILE *f, const char *cls, const char *title)
{
    fprintf(f, "<figure%s%s%s><h3>", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
    esc(f, title);
    fputs("</h3>\n", f);
}

/* Captions are trusted text written in this file (may hold markup). */
static void fig_end(FILE *f, const char *caption)
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
    esc(f, k);
    fputs("</b>", f);
    esc(f, v);
    fputs("</span>\n", f);
}

static void write_header(FILE *f, const Run *run)
{
    const Cfg *c = &run->cfg;
    fputs("<header><h1>", f);
    esc(f, run->name);
    fputs(" <span>· sink report</span></h1>\n<div class=\"sub\">", f);
    esc(f, run->dir);
    if (!c->n) fputs(" · config.yaml not found: model details unknown", f);
    fputs("</div>\n<div class=\"chips\">\n", f);
    char buf[512];
    chip(f, "model", cfg_get(c, "model.kind"));
    if (cfg_get(c, "model.n_layer"))
        snprintf(buf, sizeof buf, "L %s · d %s · H %s", cfg_get(c, "model.n_layer"),
                 cfg_get(c, "model.d_model") ? cfg_get(c, "model.d_model") : "?",
                 cfg_get(c, "model.n_head") ? cfg_get(c, "model.n_head") : "?");
    else
        snprintf(buf, sizeof buf, "L %d · H %d", run->pr.L, run->pr.H);
    chip(f, "size", buf);
    chip(f, "positions", cfg_get(c, "model.pos_encoding"));
    const char *norm = cfg_get(c, "model.attention.normalizer"), *sink = cfg_get(c, "model.attention.sink"),
               *gate = cfg_get(c, "model.attention.gate");
    if (norm) {
        snprintf(buf, sizeof buf, "%s%s%s%s%s", norm, sink && strcmp(sink, "none") ? " · sink " : "",
                 sink && strcmp(sink, "none") ? sink : "", gate && strcmp(gate, "none") ? " · gate " : "",
                 gate && strcmp(gate, "none") ? gate : "");
        chip(f, "attention", buf);
    }
    const char *win = cfg_get(c, "model.mask.window");
    if (win && strcmp(win, "0")) chip(f, "window", win);
    chip(f, "norm", cfg_get(c, "model.norm"));
    chip(f, "data", cfg_get(c, "data.corpus"));
    if (cfg_get(c, "data.pack")) {
        snprintf(buf, sizeof buf, "%s · bos %s", cfg_get(c, "data.pack"),
                 cfg_get(c, "data.bos") ? cfg_get(c, "data.bos") : "?");
        chip(f, "packing", buf);
    }
    chip(f, "seq len", cfg_get(c, "data.seq_len"));
    chip(f, "lr", cfg_get(c, "train.lr"));
    chip(f, "wd", cfg_get(c, "train.weight_decay"));
    int at;
    double last_step = last_finite(run->tr.col[TK_STEP], run->tr.n, &at);
    const char *steps = cfg_get(c, "train.steps");
    snprintf(buf, sizeof buf, "%.0f%s%s", isfinite(last_step) ? last_step : 0, steps ? " / " : "", steps ? steps : "");
    chip(f, "steps", buf);
    fmt_count(buf, sizeof buf, last_finite(run->tr.col[TK_TOKENS], run->tr.n, NULL));
    chip(f, "tokens", buf);
    if (cfg_get(c, "probe.seq_len")) {
        snprintf(buf, sizeof buf, "%s × T %s, every %s", cfg_get(c, "probe.n_seq") ? cfg_get(c, "probe.n_seq") : "?",
                 cfg_get(c, "probe.seq_len"), cfg_get(c, "probe.every") ? cfg_get(c, "probe.every") : "?");
        chip(f, "probe", buf);
    }
    fputs("</div></header>\n", f);
    fputs("<nav><a href=\"#training\">Training</a><a href=\"#sinks\">Sink rate</a><a href=\"#heads\">Heads</a>"
          "<a href=\"#onset\">Onset</a><a href=\"#attention\">Attention maps</a><a href=\"#positions\">Positions</a>"
          "<a href=\"#mechanics\">Mechanics</a></nav>\n", f);
}

static void card(FILE *f, const char *k, const char *v, const char *d)
{
    fputs("<div class=\"card\"><div class=\"k\">", f);
    esc(f, k);
    fputs("</div><div class=\"v\">", f);
    esc(f, v);
    fputs("</div><div class=\"d\">", f);
    esc(f, d ? d : "");
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
    if (p->present[M_ALPHA0])
        for (int i = p->n - 1; i >= 0 && r < 0; i--)
            if (!isnan(p->col[M_ALPHA0][(size_t)i * LH])) r = i;
    if (r >= 0) {
        const double *a = p->col[M_ALPHA0] + (size_t)r * LH;
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
    fig_begin(f, NULL, "Loss vs step");
    write_loss_chart(f, t, TK_STEP, 0, buf);
    fig_end(f, "Training loss per batch (when logged often: faint raw values, bold exponential moving average) and "
               "validation loss on held-out documents (dots); mean cross-entropy in nats per predicted token. "
               "A widening gap between the two is overfitting.");
    fig_begin(f, NULL, "Loss vs tokens");
    write_loss_chart(f, t, TK_TOKENS, 1, buf);
    fig_end(f, "The same curves against tokens seen, on a log axis, which stretches out the early phase where "
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
        fig_begin(f, NULL, small[k].title);
        PlotSeries s = { .x = buf, .y = buf + t->n, .n = n, .color = plot_palette(k == 1 ? 2 : k == 2 ? 3 : 4) };
        PlotAxes ax = { .width = 440, .height = 220, .xlabel = "step", .ylabel = small[k].ylabel,
                        .log_y = small[k].log_y, .y_from_zero = !small[k].log_y };
        plot_lines(f, &ax, &s, 1);
        fig_end(f, small[k].caption);
    }
    fputs("</div></section>\n", f);
    free(buf);
}

/* ---------- sink rate ---------- */

/* Why a run with probe lines has no alpha0 (probe.c leaves it out; README "Watching sinks"). */
#define ALPHA0_OMITTED \
    "<p class=\"empty\">α₀, the sink rate, α₀ max/mean and the uniform baseline are not logged for this " \
    "run: fewer than T/4 of the probe's queries may see key 0 under its mask (a short window, " \
    "<code>reset</code> edits, a blocked key), so α₀ would average over a handful of queries and say nothing " \
    "about sinks. sink_location (the most-attended key that at least T/4 queries see) and the mechanism charts " \
    "below are still measured.</p>\n"

/* Row values of a probe scalar, falling back to a statistic of alpha0 when the scalar is absent. */
static double probe_scalar(const ProbeTable *p, int m, int r)
{
    double v = p->col[m][r];
    if (isfinite(v) || m == M_UNIFORM || m == M_SRGU03) return v;
    int LH = p->L * p->H;
    const double *a = p->col[M_ALPHA0] + (size_t)r * LH;
    if (isnan(a[0])) return NAN;
    double eps = m == M_SR03 ? 0.3 : m == M_SR05 ? 0.5 : 0.8, acc = 0, mx = -INFINITY;
    int above = 0;
    for (int i = 0; i < LH; i++) {
        above += a[i] > eps;
        acc += a[i];
        mx = fmax(mx, a[i]);
    }
    if (m == M_AMAX) return mx;
    if (m == M_AMEAN) return acc / LH;
    if (m == M_SR03 || m == M_SR05 || m == M_SR08) return (double)above / LH;
    return NAN;
}

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
    if (!p->present[M_ALPHA0] && !p->present[M_SR03]) {
        fputs(ALPHA0_OMITTED "</section>\n", f);
        return;
    }
    double *y = malloc((size_t)p->n * 7 * sizeof *y);
    if (!y) { fputs("</section>\n", f); return; }
    fputs("<div class=\"grid\">\n", f);
    fig_begin(f, NULL, "Sink rate vs step");
    static const char *eps_label[] = { "ε = 0.3", "ε = 0.5", "ε = 0.8" };
    PlotSeries s[4];
    for (int k = 0; k < 3; k++) {
        for (int r = 0; r < p->n; r++) y[k * p->n + r] = probe_scalar(p, M_SR03 + k, r);
        s[k] = (PlotSeries){ .label = eps_label[k], .x = p->step, .y = y + k * p->n, .n = p->n,
                             .color = k == 0 ? "#e15759" : k == 1 ? "#f28e2b" : "#b07aa1" };
    }
    /* Gu et al.'s own Sink_1^0.3 (percent), drawn as a fraction beside sinklab's */
    for (int r = 0; r < p->n; r++) y[6 * p->n + r] = probe_scalar(p, M_SRGU03, r) / 100.0;
    s[3] = (PlotSeries){ .label = "Gu et al. ε = 0.3", .x = p->step, .y = y + 6 * p->n, .n = p->n,
                         .color = "#e15759", .dashed = 1, .width = 1.4 };
    PlotAxes ax = { .width = 560, .height = 300, .xlabel = "step", .ylabel = "fraction of heads with α₀ > ε",
                    .fix_y = 1, .ymin = 0, .ymax = 1 };
    plot_lines(f, &ax, s, p->present[M_SRGU03] ? 4 : 3);
    fig_end(f, "sinklab's sink rate: the fraction of all layer × head pairs whose α₀ (averaged over the probe "
               "sequences first) exceeds ε, at three thresholds; an untrained model scores 0. Steps go up as heads "
               "turn into sinks; the 0.8 curve shows heads that put almost all their attention on key 0. Dashed: "
               "Gu et al.'s Sink₁<sup>0.3</sup> exactly as their code computes it (sink_rate_gu, thresholded per "
               "sequence, divided by T whatever the mask), for comparison with the paper's tables.");
    fig_begin(f, NULL, "α₀ across heads");
    for (int r = 0; r < p->n; r++) {
        y[3 * p->n + r] = probe_scalar(p, M_AMAX, r);
        y[4 * p->n + r] = probe_scalar(p, M_AMEAN, r);
        y[5 * p->n + r] = probe_scalar(p, M_UNIFORM, r);
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
    plot_lines(f, &ax2, a, p->present[M_UNIFORM] ? 3 : 2);
    fig_end(f, "The largest and the mean α₀ over all heads. Dashed grey: what uniform causal attention gives "
               "(H<sub>T</sub>/T, 0.074 at T = 64), the level an untrained model sits at. Dotted red: the onset threshold "
               "used in the table below.");
    fputs("</div></section>\n", f);
    free(y);
}

/* ---------- heads: alpha0 heatmap, onset table, final alpha0 bars ---------- */

static void write_heads(FILE *f, const Run *run)
{
    const ProbeTable *p = &run->pr;
    fputs("<section id=\"heads\"><h2>Heads: how the sink spreads</h2>\n", f);
    if (!p->present[M_ALPHA0]) {
        fputs(p->n ? ALPHA0_OMITTED "</section>\n" : "<p class=\"empty\">No per-head α₀ logged.</p></section>\n", f);
        return;
    }
    int LH = p->L * p->H, nc = 0;
    double *z = malloc((size_t)LH * p->n * sizeof *z), *x = malloc((size_t)p->n * sizeof *x);
    char (*rl)[16] = malloc((size_t)LH * sizeof *rl), (*gl)[16] = malloc((size_t)p->L * sizeof *gl);
    const char **rows = malloc((size_t)LH * sizeof *rows), **groups = malloc((size_t)p->L * sizeof *groups);
    if (!z || !x || !rl || !gl || !rows || !groups) goto out;
    for (int r = 0; r < p->n; r++) {
        const double *a = p->col[M_ALPHA0] + (size_t)r * LH;
        if (isnan(a[0])) continue;
        for (int i = 0; i < LH; i++) z[(size_t)i * p->n + nc] = a[i];
        x[nc++] = p->step[r];
    }
    /* z was filled with row stride p->n; compact it to stride nc. */
    for (int i = 0; i < LH; i++) memmove(z + (size_t)i * nc, z + (size_t)i * p->n, (size_t)nc * sizeof *z);
    for (int i = 0; i < LH; i++) { snprintf(rl[i], 16, "h%d", i % p->H); rows[i] = rl[i]; }
    for (int l = 0; l < p->L; l++) { snprintf(gl[l], 16, "L%d", l); groups[l] = gl[l]; }
    fig_begin(f, NULL, "α₀ per head over training");
    int cell_h = LH <= 16 ? 18 : LH <= 48 ? 11 : LH <= 144 ? 6 : 3;
    PlotHeatmap hm = { .width = 1240, .height = LH * cell_h + 50, .xlabel = "step", .vmin = 0, .vmax = 1,
                       .cmap = PLOT_CMAP_VIRIDIS, .x = x, .row_labels = rows, .row_group = p->H,
                       .group_labels = groups, .colorbar = 1, .colorbar_label = "α₀",
                       .tooltips = (long)LH * nc <= 40000 };
    plot_heatmap(f, &hm, z, LH, nc);
    fig_end(f, "One row per head, grouped by layer (L0 = first layer, at the top); one column per probe step. Colour is "
               "α₀ on a fixed 0–1 scale, so rows can be compared. Read it left to right to see which heads become "
               "sinks first and how the sink spreads through heads and layers. Hover a cell for its exact value.");
out:
    free(z); free(x); free(rl); free(gl); free(rows); free(groups);
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
        if (p->present[M_ALPHA0] && !isnan(p->col[M_ALPHA0][(size_t)i * LH])) r = i;
    const double *a = r >= 0 ? p->col[M_ALPHA0] + (size_t)r * LH : NULL;
    const double *loc = r >= 0 && p->present[M_SINKLOC] ? p->col[M_SINKLOC] + (size_t)r * LH : NULL;
    fprintf(f, "<p class=\"lead\">The onset of a head is the first probe step from which its α₀ stays above θ = %.2g "
               "until the end of the run (a spike that falls back does not count). %s</p>\n",
            run->onset_threshold, run->onset_from_final ? "Read from the run's final summary line." :
                                                          "Computed from the probe lines.");
    fputs("<div class=\"split\"><figure><h3>Onset step per head</h3>\n<table class=\"onset\"><tr><th></th>", f);
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
            if (loc && isfinite(loc[i]) && loc[i] != 0) fprintf(f, "<span class=\"a\">argmax k=%.0f</span>", loc[i]);
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    fig_end(f, "Red cells: heads that became sinks, with the step of onset. Second line: α₀ at the last probe, and the "
               "sink location (argmax<sub>k</sub> α<sub>k</sub> over keys seen by at least T/4 queries) when it is not key 0.");
    if (a) {
        fig_begin(f, NULL, "α₀ per head at the last probe");
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
        fig_end(f, cap);
    }
    fputs("</div></section>\n", f);
}

/* ---------- probe files: attention maps and per-position norms ---------- */

typedef struct {
    int step, T, L, H;
    JsonDoc doc;
    char path[PATH_CAP + 64];
} ProbeFile;

static int probe_file_load(ProbeFile *pf, const char *dir, int step, char *err, size_t n_err)
{
    pf->step = step;
    snprintf(pf->path, sizeof pf->path, "%s/probe/step_%07d.json", dir, step);
    if (json_parse_file(&pf->doc, pf->path, err, n_err)) {
        /* Accept any zero padding the writer chose by falling back to the unpadded name. */
        snprintf(pf->path, sizeof pf->path, "%s/probe/step_%d.json", dir, step);
        if (json_parse_file(&pf->doc, pf->path, err, n_err)) return -1;
    }
    const JsonValue *root = pf->doc.root;
    pf->T = (int)json_num_or(json_get(root, "T"), -1);
    pf->L = (int)json_num_or(json_get(root, "n_layer"), -1);
    pf->H = (int)json_num_or(json_get(root, "n_head"), -1);
    if (pf->T < 1 || pf->L < 1 || pf->H < 1 || pf->T > 4096) {
        snprintf(err, n_err, "%s: expected positive integers \"T\", \"n_layer\" and \"n_head\"", pf->path);
        json_free(&pf->doc);
        return -1;
    }
    return 0;
}

/* Copies key[l][h] (an array of n numbers, or an n x n matrix when square) into out. */
static int probe_block(double *out, const ProbeFile *pf, const char *key, int l, int h, int square)
{
    const JsonValue *v = json_at(json_at(json_get(pf->doc.root, key), l), h);
    if (square) return json_matrix(out, v, pf->T, pf->T);
    return json_matrix(out, &(JsonValue){ .type = JSON_ARRAY, .n = 1, .items = v }, 1, pf->T);
}

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
        esc(f, head);
        fputs("</mark>", f);
    }
    esc(f, s + first);
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
            if (probe_block(buf, pf, "attn", l, h, 1)) {
                snprintf(err, n_err, "%s: attn[%d][%d]: expected a %d x %d matrix (attn: [[T x T per head] per layer])",
                         pf->path, l, h, pf->T, pf->T);
                return -1;
            }
            char title[64];
            double a0 = NAN;
            if (!probe_block(buf + (size_t)pf->T * pf->T, pf, "alpha", l, h, 0)) a0 = buf[(size_t)pf->T * pf->T];
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
            if (probe_block(tmp, pf, key, l, h, 0)) return -1;
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
    fig_begin(f, NULL, "Value norm per position");
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
    fig_end(f, cap);
    fig_begin(f, NULL, "Attention received per position (αₖ)");
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
    fig_end(f, cap);
    fputs("</div>\n", f);
out:
    free(y); free(tmp); free(x); free(uni); free(s); free(lab);
}

static int write_probe_sections(FILE *f, const Run *run, char *err, size_t n_err)
{
    const char *kind = cfg_get(&run->cfg, "model.kind");
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
        if (probe_file_load(&pf, run->dir, run->probe_steps[pick[i]], err, n_err)) return -1;
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

/* ---------- mechanics: the heavier metrics ---------- */

static void write_metric_chart(FILE *f, const ProbeTable *p, int m, double *buf)
{
    const MetricSpec *ms = &METRICS[m];
    int w = width_of(p, ms->kind), n_lines = ms->kind == MK_SCALAR ? 1 : ms->kind == MK_DEPTH ? p->L + 1 : p->L;
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
            int per = ms->kind == MK_HEAD ? p->H : 1;
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
        if (ms->kind == MK_DEPTH) {
            if (k == 0) snprintf(lab[k], 16, "emb");
            else snprintf(lab[k], 16, "L%d", k - 1);
        } else {
            snprintf(lab[k], 16, "L%d", k);
        }
        s[k] = (PlotSeries){ .label = ms->kind == MK_SCALAR ? NULL : lab[k], .x = x, .y = y + (size_t)k * p->n,
                             .n = nr, .markers = nr <= 30 };
    }
    PlotAxes ax = { .width = 440, .height = 250, .xlabel = "step", .ylabel = ms->ylabel, .log_y = ms->log_y };
    fig_begin(f, NULL, ms->title);
    plot_lines(f, &ax, s, n_lines);
    fig_end(f, ms->caption);
}

static void write_mechanics(FILE *f, const ProbeTable *p)
{
    fputs("<section id=\"mechanics\"><h2>Mechanics</h2>\n<p class=\"lead\">Quantities that explain why sinks form and "
          "what they do. The costlier ones are measured at checkpoints (and every <code>probe.heavy_every</code> "
          "steps), so their curves have fewer points.</p>\n", f);
    int any = 0;
    for (int m = 0; m < N_METRICS; m++) any |= METRICS[m].mechanics && p->present[m];
    if (!any || p->n == 0) {
        fputs("<p class=\"empty\">This run logged none of the mechanism metrics.</p></section>\n", f);
        return;
    }
    int max_lines = p->L + 1;
    double *buf = malloc((size_t)p->n * (max_lines + 1) * sizeof *buf);
    if (!buf) { fputs("</section>\n", f); return; }
    fputs("<div class=\"grid small\">\n", f);
    for (int m = 0; m < N_METRICS; m++) {
        if (!METRICS[m].mechanics || !p->present[m]) continue;
        /* Raw entropy only when the normalised one is missing: one entropy chart is enough. */
        if (strcmp(METRICS[m].key, "entropy") == 0) {
            int norm_present = 0;
            for (int k = 0; k < N_METRICS; k++) norm_present |= strcmp(METRICS[k].key, "entropy_norm") == 0 && p->present[k];
            if (norm_present) continue;
        }
        write_metric_chart(f, p, m, buf);
    }
    fputs("</div></section>\n", f);
    free(buf);
}

/* ---------- the page ---------- */

static void run_free(Run *run)
{
    for (int k = 0; k < N_TKEYS; k++) free(run->tr.col[k]);
    free(run->pr.step);
    free(run->pr.tokens);
    for (int m = 0; m < N_METRICS; m++) free(run->pr.col[m]);
    free(run->cfg.p);
    free(run->onset);
    free(run->probe_steps);
}

static int write_page(FILE *f, const Run *run, char *err, size_t n_err)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>", f);
    esc(f, run->name);
    fprintf(f, " · sinklab report</title>\n<style>\n%s</style></head>\n<body>\n", CSS);
    write_header(f, run);
    fputs("<main>\n", f);
    write_summary(f, run);
    write_training(f, &run->tr);
    write_sinks(f, run);
    write_heads(f, run);
    write_onset(f, run);
    if (write_probe_sections(f, run, err, n_err)) return -1;
    write_mechanics(f, &run->pr);
    int n_probe_lines = run->pr.n;
    fprintf(f, "<footer>Generated by sinklab %s from <code>metrics.jsonl</code> (%d lines, %d probe steps) and %d probe "
               "file%s. The page is self-contained: no scripts, no external resources; hover a heatmap cell or a dot "
               "for its value.</footer>\n</main>\n</body></html>\n",
            SINKLAB_VERSION, run->lines, n_probe_lines, run->n_probe_files, run->n_probe_files == 1 ? "" : "s");
    return 0;
}

int report_write(const char *run_dir, char *err, size_t n_err)
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

    char path[PATH_CAP + 32], tmp[PATH_CAP + 40];
    snprintf(path, sizeof path, "%s/config.yaml", run->dir);
    cfg_load(&run->cfg, path);
    int rc = read_metrics(run, err, n_err);
    if (!rc) {
        compute_onset(run);
        list_probe_files(run);
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
    run_free(run);
    free(run);
    return rc;
}
