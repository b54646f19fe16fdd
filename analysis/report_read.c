/* report_read.c: a run folder -> Run (report_run.h). metrics.jsonl becomes a training table and a
 * probe table with one column per metric of the metric table; the onset per head comes from the
 * final line or is computed here; probe/step_*.json files are listed and loaded on demand. Every
 * malformed input is reported as file:line and what was expected. */
#include "analysis/report_run.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analysis/onset.h"
#include "analysis/report.h"

static const char *TRAIN_KEYS[N_TKEYS] = { "step", "tokens", "epoch", "loss", "lr", "grad_norm",
                                           "tok_per_s", "val_loss" };

const double REPORT_EPS[REPORT_N_EPS] = { 0.3, 0.5, 0.8 };

int report_metric_width(const ProbeTable *p, MetricId m)
{
    switch (metric_def(m)->shape) {
    case METRIC_SHAPE_HEAD: return p->L * p->H;
    case METRIC_SHAPE_LAYER: return p->L;
    case METRIC_SHAPE_DEPTH: return p->L + 1;
    case METRIC_SHAPE_EPS: return REPORT_N_EPS;
    case METRIC_SHAPE_SCALAR: return 1;
    case METRIC_SHAPE_POSITION: return 0;
    }
    return 1;
}

/* ---------- metrics.jsonl ---------- */

static int grow(double **col, int cap, int width)
{
    /* width 0 (per-position metrics keep their own rows): realloc to 0 bytes may free and fail */
    if (width < 1) width = 1;
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

/* Learns L and H from the first probe line: alpha0's shape, else any per-head metric. */
static int probe_shape(ProbeTable *p, const JsonValue *probe)
{
    for (int m = 0; m < METRIC_COUNT; m++) {
        if (metric_def((MetricId)m)->shape != METRIC_SHAPE_HEAD) continue;
        const JsonValue *v = json_get(probe, metric_name((MetricId)m));
        if (json_len(v) > 0 && json_len(json_at(v, 0)) > 0) {
            p->L = v->n;
            p->H = v->items[0].n;
            return 0;
        }
    }
    return -1;
}

/* Appends a per-position row; T is fixed by the first row that has one. */
static int position_add(PositionRows *pr, double step, const JsonValue *v, char *want, size_t n_want)
{
    if (pr->T == 0) pr->T = json_len(v) > 0 ? json_len(v) : 0;
    snprintf(want, n_want, "[per position] of %d numbers", pr->T);
    if (pr->T == 0) return -1;
    while (pr->n > 0 && pr->step[pr->n - 1] >= step) pr->n--;
    if (pr->n == pr->cap) {
        int cap = pr->cap ? 2 * pr->cap : 16;
        if (grow(&pr->step, cap, 1) || grow(&pr->v, cap, pr->T)) return -2;
        pr->cap = cap;
    }
    if (json_matrix(pr->v + (size_t)pr->n * pr->T, &(JsonValue){ .type = JSON_ARRAY, .n = 1, .items = v }, 1,
                    pr->T))
        return -1;
    pr->step[pr->n++] = step;
    return 0;
}

/* Copies probe member v of metric m into dst (width numbers); on a shape mismatch returns -1 with
 * want saying what the first probe line established. */
static int read_metric(double *dst, const ProbeTable *p, MetricId m, const JsonValue *v, char *want,
                       size_t n_want)
{
    int w = report_metric_width(p, m);
    switch (metric_def(m)->shape) {
    case METRIC_SHAPE_HEAD:
        snprintf(want, n_want, "[[per head] per layer] of %d x %d numbers", p->L, p->H);
        return json_matrix(dst, v, p->L, p->H);
    case METRIC_SHAPE_SCALAR:
        snprintf(want, n_want, "a number");
        if (v->type != JSON_NUMBER) return -1;
        dst[0] = v->number;
        return 0;
    case METRIC_SHAPE_EPS:
        snprintf(want, n_want, "an object of numbers keyed by threshold");
        if (v->type != JSON_OBJECT) return -1;
        for (int e = 0; e < REPORT_N_EPS; e++) {
            char key[32];
            snprintf(key, sizeof key, "%g", REPORT_EPS[e]);
            const JsonValue *x = json_get(v, key);
            if (x && x->type != JSON_NUMBER) return -1;
            if (x) dst[e] = x->number;
        }
        return 0;
    case METRIC_SHAPE_LAYER:
    case METRIC_SHAPE_DEPTH:
        snprintf(want, n_want, "%s of %d numbers", metric_def(m)->shape == METRIC_SHAPE_LAYER ?
                 "[per layer]" : "[per layer, embeddings first]", w);
        return json_matrix(dst, &(JsonValue){ .type = JSON_ARRAY, .n = 1, .items = v }, 1, w);
    case METRIC_SHAPE_POSITION:
        return 0;
    }
    return -1;
}

static int probe_add(ProbeTable *p, const JsonValue *line, const JsonValue *probe, const char *file,
                     int lineno, char *err, size_t n_err)
{
    if (p->L == 0 && probe_shape(p, probe)) {
        snprintf(err, n_err, "%s:%d: probe: no per-head metric (%s: [[per head] per layer]) to learn "
                 "the number of layers and heads from", file, lineno, metric_name(METRIC_ALPHA0));
        return -1;
    }
    double step = json_num_or(json_get(line, "step"), NAN);
    while (p->n > 0 && p->step[p->n - 1] > step) p->n--;
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 256;
        if (grow(&p->step, cap, 1) || grow(&p->tokens, cap, 1)) goto oom;
        for (int m = 0; m < METRIC_COUNT; m++)
            if (grow(&p->col[m], cap, report_metric_width(p, (MetricId)m))) goto oom;
        p->cap = cap;
    }
    int r = p->n;
    p->step[r] = step;
    p->tokens[r] = json_num_or(json_get(line, "tokens"), NAN);
    for (int m = 0; m < METRIC_COUNT; m++) {
        int w = report_metric_width(p, (MetricId)m);
        double *dst = p->col[m] + (size_t)r * w;
        for (int i = 0; i < w; i++) dst[i] = NAN;
        const JsonValue *v = json_get(probe, metric_name((MetricId)m));
        if (!v) continue;
        char want[96];
        int rc = metric_def((MetricId)m)->shape == METRIC_SHAPE_POSITION ?
                 position_add(&p->pos[m], step, v, want, sizeof want) :
                 read_metric(dst, p, (MetricId)m, v, want, sizeof want);
        if (rc == -2) goto oom;
        if (rc) {
            for (int i = 0; i < w; i++) dst[i] = NAN;
            snprintf(err, n_err, "%s:%d: probe.%s: expected %s (the shape of the first probe line)",
                     file, lineno, metric_name((MetricId)m), want);
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
        snprintf(err, n_err, "%s:%d: onset.steps: expected [[step or -1 per head] per layer] of %d x %d",
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

static int read_metrics_file(Run *run, char *err, size_t n_err)
{
    char path[REPORT_PATH_CAP + 32];
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

/* RUN/summary.json (written when a run completes): its onset table wins over recomputing. */
static int read_summary(Run *run, char *err, size_t n_err)
{
    char path[REPORT_PATH_CAP + 32];
    snprintf(path, sizeof path, "%s/summary.json", run->dir);
    if (access(path, F_OK) != 0) return 0;
    JsonDoc doc;
    if (json_parse_file(&doc, path, err, n_err) != 0) return -1;
    int rc = final_add(run, doc.root, path, 1, err, n_err);
    json_free(&doc);
    return rc;
}

/* Onset per head: from the final summary when the run wrote one, else computed here. */
static void compute_onset(Run *run)
{
    ProbeTable *p = &run->pr;
    if (run->onset_from_final || !p->present[METRIC_ALPHA0] || p->L == 0) return;
    int LH = p->L * p->H, n = 0;
    int *steps = malloc((size_t)p->n * sizeof *steps);
    float *vals = malloc((size_t)p->n * LH * sizeof *vals);
    run->onset = malloc((size_t)LH * sizeof *run->onset);
    if (!steps || !vals || !run->onset) { free(steps); free(vals); free(run->onset); run->onset = NULL; return; }
    for (int r = 0; r < p->n; r++) {
        const double *a = p->col[METRIC_ALPHA0] + (size_t)r * LH;
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
    char path[REPORT_PATH_CAP + 16];
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

/* ---------- probe files: attention maps and per-position norms ---------- */

int report_load_probe_file(ProbeFile *pf, const char *dir, int step, char *err, size_t n_err)
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
int report_probe_block(double *out, const ProbeFile *pf, const char *key, int l, int h, int square)
{
    const JsonValue *v = json_at(json_at(json_get(pf->doc.root, key), l), h);
    if (square) return json_matrix(out, v, pf->T, pf->T);
    return json_matrix(out, &(JsonValue){ .type = JSON_ARRAY, .n = 1, .items = v }, 1, pf->T);
}


int report_read_run(Run *run, char *err, size_t n_err)
{
    int rc = read_metrics_file(run, err, n_err);
    if (!rc) rc = read_summary(run, err, n_err);
    if (rc) return rc;
    compute_onset(run);
    list_probe_files(run);
    return 0;
}

void report_free_run(Run *run)
{
    for (int k = 0; k < N_TKEYS; k++) free(run->tr.col[k]);
    free(run->pr.step);
    free(run->pr.tokens);
    for (int m = 0; m < METRIC_COUNT; m++) {
        free(run->pr.col[m]);
        free(run->pr.pos[m].step);
        free(run->pr.pos[m].v);
    }
    free(run->onset);
    free(run->probe_steps);
}
