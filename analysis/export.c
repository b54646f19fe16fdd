/* export.c: scalars.csv, heads.csv and summary.jsonl lines (see export.h). */
#include "analysis/export.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/json.h"
#include "analysis/jsonw.h"

/* RFC 4180: a field with a comma, quote or newline is quoted, quotes doubled (run names hold commas). */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static int is_seed_key(const char *k) { return !strcmp(k, "train.seed"); }

static void header(FILE *f, const RunSet *rs, const char *tail)
{
    fputs("run", f);
    for (int k = 0; k < rs->n_varying; k++)
        if (!is_seed_key(rs->varying[k])) {
            fputc(',', f);
            csv_field(f, rs->varying[k]);
        }
    fprintf(f, ",seed,%s\n", tail);
}

/* "run,<values...>,seed," : the columns every row of a run starts with. */
static void row_prefix(char *out, size_t n, const RunSet *rs, const RunData *r)
{
    FILE *m = fmemopen(out, n, "w");
    if (!m) {
        out[0] = 0;
        return;
    }
    csv_field(m, r->name);
    for (int k = 0; k < rs->n_varying; k++)
        if (!is_seed_key(rs->varying[k])) {
            const char *v = run_config(r, rs->varying[k]);
            fputc(',', m);
            csv_field(m, v ? v : "");
        }
    const char *seed = run_config(r, "train.seed");
    fprintf(m, ",%s,", seed ? seed : "");
    fclose(m);
}

static void write_scalars(FILE *f, const RunSet *rs)
{
    header(f, rs, "step,tokens,metric,value");
    char prefix[4096];
    for (int i = 0; i < rs->n; i++) {
        const RunData *r = &rs->runs[i];
        row_prefix(prefix, sizeof prefix, rs, r);
        for (int s = 0; s < r->n_series; s++) {
            const RunSeries *se = &r->series[s];
            for (int p = 0; p < se->n; p++)
                fprintf(f, "%s%.0f,%.0f,%s,%.9g\n", prefix, se->step[p], se->tokens[p], se->metric, se->value[p]);
        }
    }
}

/* Every [L][H] (and [L]) numeric array of a probe line, one row per element. */
static void head_rows(FILE *f, const char *prefix, double step, const JsonValue *probe)
{
    for (int i = 0; i < probe->n; i++) {
        const JsonValue *v = &probe->items[i];
        if (v->type != JSON_ARRAY) continue;
        for (int l = 0; l < v->n; l++) {
            const JsonValue *row = &v->items[l];
            if (row->type == JSON_NUMBER) {
                fprintf(f, "%s%.0f,%d,,%s,%.9g\n", prefix, step, l, v->key, row->number);
            } else if (row->type == JSON_ARRAY) {
                for (int h = 0; h < row->n; h++)
                    if (row->items[h].type == JSON_NUMBER)
                        fprintf(f, "%s%.0f,%d,%d,%s,%.9g\n", prefix, step, l, h, v->key, row->items[h].number);
            }
        }
    }
}

static int write_heads(FILE *f, const RunSet *rs, char *err, size_t n_err)
{
    header(f, rs, "step,layer,head,metric,value");
    char prefix[4096];
    for (int i = 0; i < rs->n; i++) {
        const RunData *r = &rs->runs[i];
        row_prefix(prefix, sizeof prefix, rs, r);
        char path[1100];
        snprintf(path, sizeof path, "%s/metrics.jsonl", r->dir);
        FILE *in = fopen(path, "rb");
        if (!in) continue;
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        /* lines superseded by a resume (a step logged again) are skipped: keep only increasing steps
         * as they stand in the final file, which the trainer already truncated on resume */
        for (int lineno = 1; (len = getline(&line, &cap, in)) > 0; lineno++) {
            if (line[len - 1] != '\n') break;
            JsonDoc d;
            if (json_parse(&d, line, (size_t)len, path, lineno, err, n_err) != 0) {
                free(line);
                fclose(in);
                return -1;
            }
            const JsonValue *probe = json_get(d.root, "probe");
            double step = json_num_or(json_get(d.root, "step"), NAN);
            if (probe && probe->type == JSON_OBJECT && !isnan(step)) head_rows(f, prefix, step, probe);
            json_free(&d);
        }
        free(line);
        fclose(in);
    }
    return 0;
}

static FILE *open_tmp(const char *dir, const char *name, char *path, char *tmp, size_t n, char *err, size_t n_err)
{
    snprintf(path, n, "%s/%s", dir, name);
    snprintf(tmp, n, "%s/%s.tmp", dir, name);
    FILE *f = fopen(tmp, "w");
    if (!f) snprintf(err, n_err, "%s: cannot write: %s", tmp, strerror(errno));
    return f;
}

static int close_rename(FILE *f, const char *tmp, const char *path, int rc, char *err, size_t n_err)
{
    if (fclose(f) != 0 && !rc) {
        snprintf(err, n_err, "%s: write failed", tmp);
        rc = -1;
    }
    if (!rc && rename(tmp, path) != 0) {
        snprintf(err, n_err, "%s: cannot rename into place", path);
        rc = -1;
    }
    if (rc) remove(tmp);
    return rc;
}

int export_csv(const RunSet *rs, const char *out_dir, char *err, size_t n_err)
{
    char path[1400], tmp[1400];
    FILE *f = open_tmp(out_dir, "scalars.csv", path, tmp, sizeof path, err, n_err);
    if (!f) return -1;
    write_scalars(f, rs);
    if (close_rename(f, tmp, path, 0, err, n_err)) return -1;
    f = open_tmp(out_dir, "heads.csv", path, tmp, sizeof path, err, n_err);
    if (!f) return -1;
    int rc = write_heads(f, rs, err, n_err);
    return close_rename(f, tmp, path, rc, err, n_err);
}

/* A sweep value that reads fully as a number is written as one, so pandas gets a numeric column. */
static void value_member(JsonWriter *w, const char *key, const char *text)
{
    char *end;
    double x = strtod(text, &end);
    if (text[0] && !*end && isfinite(x)) jsonw_key_number(w, key, x);
    else jsonw_key_string(w, key, text);
}

void export_summary_line(FILE *f, const char *name, const char *dir, const char *const *keys,
                         const char *const *values, int n, long long seed, const char *status)
{
    RunSet rs;
    memset(&rs, 0, sizeof rs);
    char err[512];
    int loaded = runset_add(&rs, dir, err, sizeof err) == 0 && rs.n == 1;
    JsonWriter w;
    jsonw_init(&w);
    jsonw_object_begin(&w);
    jsonw_key_string(&w, "run", name);
    for (int i = 0; i < n; i++) value_member(&w, keys[i], values[i]);
    if (seed >= 0) jsonw_key_int(&w, "seed", seed);
    jsonw_key_string(&w, "status", status);
    if (loaded) {
        const RunData *r = &rs.runs[0];
        const RunSeries *loss = run_series(r, "loss");
        if (loss && loss->n) {
            jsonw_key_int(&w, "step", (long long)loss->step[loss->n - 1]);
            jsonw_key_int(&w, "tokens", (long long)loss->tokens[loss->n - 1]);
        }
        for (int s = 0; s < r->n_series; s++)
            if (r->series[s].n) jsonw_key_number(&w, r->series[s].metric, r->series[s].value[r->series[s].n - 1]);
        int heads, first;
        if (run_onset(r, &heads, &first) == 0) {
            jsonw_key_int(&w, "onset_heads", heads);
            if (first >= 0) jsonw_key_int(&w, "onset_first_step", first);
        }
    }
    jsonw_object_end(&w);
    jsonw_write_line(&w, f);
    jsonw_free(&w);
    runset_free(&rs);
}
