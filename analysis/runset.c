/* runset.c: loading run folders and sweep folders for comparison and export (see runset.h). */
#include "analysis/runset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "analysis/json.h"

/* ---- config.yaml, through the caller's reader ---- */

const char *run_config(const RunData *r, const char *key)
{
    return kv_get(&r->cfg, key);
}

/* ---- metrics.jsonl ---- */

static RunSeries *series_for(RunData *r, const char *metric)
{
    for (int i = 0; i < r->n_series; i++)
        if (!strcmp(r->series[i].metric, metric)) return &r->series[i];
    if (r->n_series == RUNSET_MAX_SERIES) return NULL;
    RunSeries *s = &r->series[r->n_series++];
    memset(s, 0, sizeof *s);
    snprintf(s->metric, sizeof s->metric, "%s", metric);
    return s;
}

static void series_push(RunData *r, const char *metric, double step, double tokens, double v)
{
    RunSeries *s = series_for(r, metric);
    if (!s) return;
    /* a resumed run logs steps again: the later lines supersede the earlier ones */
    while (s->n > 0 && s->step[s->n - 1] >= step) s->n--;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 256;
        double *a = realloc(s->step, (size_t)cap * sizeof *a);
        if (a) s->step = a;
        double *b = realloc(s->tokens, (size_t)cap * sizeof *b);
        if (b) s->tokens = b;
        double *c = realloc(s->value, (size_t)cap * sizeof *c);
        if (c) s->value = c;
        if (!a || !b || !c) return;
        s->cap = cap;
    }
    s->step[s->n] = step;
    s->tokens[s->n] = tokens;
    s->value[s->n] = v;
    s->n++;
}

static void add_line(const RunSet *rs, RunData *r, const JsonValue *root)
{
    double step = json_num_or(json_get(root, "step"), NAN), tokens = json_num_or(json_get(root, "tokens"), NAN);
    if (isnan(step)) return;
    for (int i = 0; i < root->n; i++) {
        const JsonValue *v = &root->items[i];
        if (v->type == JSON_NUMBER && strcmp(v->key, "step") && strcmp(v->key, "tokens"))
            series_push(r, v->key, step, tokens, v->number);
    }
    const JsonValue *probe = json_get(root, "probe");
    for (int k = 0; k < rs->n_heads; k++) {
        const JsonValue *a = json_at(json_at(json_get(probe, "alpha0"), rs->heads[k][0]), rs->heads[k][1]);
        char name[48];
        snprintf(name, sizeof name, "alpha0 %d.%d", rs->heads[k][0], rs->heads[k][1]);
        if (a && a->type == JSON_NUMBER) series_push(r, name, step, tokens, a->number);
    }
    for (int i = 0; probe && probe->type == JSON_OBJECT && i < probe->n; i++) {
        const JsonValue *v = &probe->items[i];
        char name[48];
        if (v->type == JSON_NUMBER) {
            snprintf(name, sizeof name, "%s", strcmp(v->key, "loss") ? v->key : "probe_loss");
            series_push(r, name, step, tokens, v->number);
        } else if (v->type == JSON_OBJECT) {
            for (int j = 0; j < v->n; j++)
                if (v->items[j].type == JSON_NUMBER) {
                    snprintf(name, sizeof name, "%.20s_%.20s", v->key, v->items[j].key);
                    series_push(r, name, step, tokens, v->items[j].number);
                }
        }
    }
}

static int load_metrics(const RunSet *rs, RunData *r, char *err, size_t n_err)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/metrics.jsonl", r->dir);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;   /* a run that has not started: no points yet */
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    for (int lineno = 1; (len = getline(&line, &cap, f)) > 0; lineno++) {
        if (line[len - 1] != '\n') break;   /* a run still writing its last line */
        JsonDoc d;
        if (json_parse(&d, line, (size_t)len, path, lineno, err, n_err) != 0) {
            rc = -1;
            break;
        }
        if (d.root->type == JSON_OBJECT) add_line(rs, r, d.root);
        json_free(&d);
    }
    free(line);
    fclose(f);
    return rc;
}

static int load_summary(RunData *r, char *err, size_t n_err)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/summary.json", r->dir);
    if (access(path, F_OK) != 0) return 0;
    JsonDoc d;
    if (json_parse_file(&d, path, err, n_err) != 0) return -1;
    r->complete = 1;
    const JsonValue *on = json_get(d.root, "onset"), *steps = json_get(on, "steps");
    int L = json_len(steps), H = json_len(json_at(steps, 0));
    if (L > 0 && H > 0) {
        double *tmp = malloc((size_t)L * H * sizeof *tmp);
        r->onset = malloc((size_t)L * H * sizeof *r->onset);
        if (tmp && r->onset && json_matrix(tmp, steps, L, H) == 0) {
            for (int i = 0; i < L * H; i++) r->onset[i] = (int)tmp[i];
            r->L = L;
            r->H = H;
            r->onset_threshold = json_num_or(json_get(on, "threshold"), NAN);
        } else {
            free(r->onset);
            r->onset = NULL;
        }
        free(tmp);
    }
    json_free(&d);
    return 0;
}

/* ---- folders ---- */

static int is_file(const char *dir, const char *name)
{
    char path[2100];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int add_run(RunSet *rs, const char *dir, char *err, size_t n_err)
{
    if (rs->n == rs->cap) {
        int cap = rs->cap ? 2 * rs->cap : 16;
        RunData *p = realloc(rs->runs, (size_t)cap * sizeof *p);
        if (!p) {
            snprintf(err, n_err, "out of memory");
            return -1;
        }
        rs->runs = p;
        rs->cap = cap;
    }
    RunData *r = &rs->runs[rs->n];
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    size_t len = strlen(r->dir);
    while (len > 1 && r->dir[len - 1] == '/') r->dir[--len] = 0;
    const char *base = strrchr(r->dir, '/');
    snprintf(r->name, sizeof r->name, "%.255s", base ? base + 1 : r->dir);
    rs->n++;
    if ((rs->read_config && rs->read_config(r->dir, &r->cfg, err, n_err)) || load_metrics(rs, r, err, n_err) ||
        load_summary(r, err, n_err))
        return -1;
    return 0;
}

/* Natural order: digit runs compare as numbers, so seq_len=64 comes before seq_len=256. */
static int cmp_natural(const void *pa, const void *pb)
{
    const char *a = *(char *const *)pa, *b = *(char *const *)pb;
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            while (*a == '0') a++;
            while (*b == '0') b++;
            size_t na = strspn(a, "0123456789"), nb = strspn(b, "0123456789");
            if (na != nb) return na < nb ? -1 : 1;
            int c = strncmp(a, b, na);
            if (c) return c;
            a += na;
            b += nb;
        } else {
            if (*a != *b) return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
            a++;
            b++;
        }
    }
    return (unsigned char)*a - (unsigned char)*b;
}

/* The swept keys a sweep folder's sweep.json lists (written by `sinklab sweep`). */
static void read_manifest(RunSet *rs, const char *dir)
{
    char path[1400], err[256];
    snprintf(path, sizeof path, "%s/sweep.json", dir);
    JsonDoc d;
    if (access(path, F_OK) != 0 || json_parse_file(&d, path, err, sizeof err) != 0) return;
    const JsonValue *keys = json_get(d.root, "keys");
    for (int i = 0; i < json_len(keys) && rs->n_swept < RUNSET_MAX_VARYING; i++) {
        const JsonValue *k = json_at(keys, i);
        if (k->type != JSON_STRING) continue;
        int seen = 0;
        for (int j = 0; j < rs->n_swept; j++) seen |= !strcmp(rs->swept[j], k->str);
        if (!seen) snprintf(rs->swept[rs->n_swept++], sizeof rs->swept[0], "%s", k->str);
    }
    json_free(&d);
}

int runset_choose_head(RunSet *rs, int layer, int head)
{
    if (rs->n_heads == RUNSET_MAX_HEADS) return -1;
    rs->heads[rs->n_heads][0] = layer;
    rs->heads[rs->n_heads][1] = head;
    rs->n_heads++;
    return 0;
}

int runset_add(RunSet *rs, const char *path, char *err, size_t n_err)
{
    if (is_file(path, "config.yaml")) return add_run(rs, path, err, n_err);
    read_manifest(rs, path);
    DIR *d = opendir(path);
    if (!d) {
        snprintf(err, n_err, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char **names = NULL;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char sub[1600];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        if (e->d_name[0] == '.' || !is_file(sub, "config.yaml")) continue;
        char **p = realloc(names, (size_t)(n + 1) * sizeof *p);
        if (!p) break;
        names = p;
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    int rc = 0;
    if (n == 0) {
        snprintf(err, n_err, "%s: neither a run folder (no config.yaml) nor a sweep folder (no run folders inside)", path);
        rc = -1;
    }
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_natural);
    for (int i = 0; i < n; i++) {
        char sub[1600];
        snprintf(sub, sizeof sub, "%s/%s", path, names[i]);
        if (!rc) rc = add_run(rs, sub, err, n_err);
        free(names[i]);
    }
    free(names);
    return rc;
}

static int key_differs(const RunSet *rs, const char *key)
{
    const char *a = run_config(&rs->runs[0], key);
    for (int r = 1; r < rs->n; r++) {
        const char *v = run_config(&rs->runs[r], key);
        if (!a != !v || (a && strcmp(a, v))) return 1;
    }
    return 0;
}

static void add_varying(RunSet *rs, const char *key)
{
    for (int i = 0; i < rs->n_varying; i++)
        if (!strcmp(rs->varying[i], key)) return;
    if (rs->n_varying < RUNSET_MAX_VARYING)
        snprintf(rs->varying[rs->n_varying++], sizeof rs->varying[0], "%s", key);
}

void runset_finish(RunSet *rs)
{
    rs->n_varying = 0;
    if (rs->n < 2) return;
    /* the swept keys lead: they are the experiment, other differences (derived values) follow */
    for (int i = 0; i < rs->n_swept; i++)
        if (key_differs(rs, rs->swept[i])) add_varying(rs, rs->swept[i]);
    const RunData *a = &rs->runs[0];
    for (int i = 0; i < a->cfg.n; i++) {
        const char *key = a->cfg.items[i].key;
        /* where a run lives and how many threads it used are not part of the experiment */
        if (!strcmp(key, "output.dir") || !strcmp(key, "train.threads")) continue;
        if (key_differs(rs, key)) add_varying(rs, key);
    }
}

void runset_free(RunSet *rs)
{
    for (int i = 0; i < rs->n; i++) {
        RunData *r = &rs->runs[i];
        kv_free(&r->cfg);
        free(r->onset);
        for (int s = 0; s < r->n_series; s++) {
            free(r->series[s].step);
            free(r->series[s].tokens);
            free(r->series[s].value);
        }
    }
    free(rs->runs);
    memset(rs, 0, sizeof *rs);
}

const RunSeries *run_series(const RunData *r, const char *metric)
{
    for (int i = 0; i < r->n_series; i++)
        if (!strcmp(r->series[i].metric, metric)) return &r->series[i];
    return NULL;
}

double run_last(const RunData *r, const char *metric)
{
    const RunSeries *s = run_series(r, metric);
    return s && s->n ? s->value[s->n - 1] : NAN;
}

int run_onset(const RunData *r, int *n_heads, int *first_step)
{
    *n_heads = 0;
    *first_step = -1;
    if (!r->onset) return -1;
    for (int i = 0; i < r->L * r->H; i++) {
        if (r->onset[i] < 0) continue;
        (*n_heads)++;
        if (*first_step < 0 || r->onset[i] < *first_step) *first_step = r->onset[i];
    }
    return 0;
}
