/* sweep.c: sweep files (libyaml document API, so every value keeps its line:column), the grid
 * expansion and run names, resolving a run's config, run states, and the SLURM array script. */
#define _DEFAULT_SOURCE /* realpath */
#include "train/sweep.h"

#include "base/check.h"
#include "base/yaml_depth.h"
#include "base/yaml_doc.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* ---- YAML helpers ---- */

static int line_of(const yaml_node_t *n) { return (int)n->start_mark.line + 1; }
static int col_of(const yaml_node_t *n) { return (int)n->start_mark.column + 1; }
static const char *scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

/* Checks "key=value" against a default config, so a typo or a bad value fails at load time. */
static int check_assignment(YamlDoc *c, const yaml_node_t *at, const char *key, const char *value)
{
    static Config probe;
    char a[512], e[768];
    config_defaults(&probe);
    snprintf(a, sizeof a, "%s=%s", key, value);
    if (config_set(&probe, a, e, sizeof e) != 0) {
        /* config_set names the assignment as "--set k=v: ..."; the sweep file is the place here */
        const char *msg = strncmp(e, "--set ", 6) == 0 ? e + 6 : e;
        return yaml_doc_fail(c, at, "%s", msg);
    }
    return 0;
}

/* ---- sections ---- */

static int parse_sets(YamlDoc *c, Sweep *s, yaml_node_t *m)
{
    if (m->type != YAML_MAPPING_NODE) return yaml_doc_fail(c, m, "set: expected a mapping of dotted.key: value");
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_doc_node(c, p->key), *v = yaml_doc_node(c, p->value);
        char key[128], val[SWEEP_VALUE_CAP];
        if (yaml_doc_text(c, k, "set", key, sizeof key) || yaml_doc_text(c, v, key, val, sizeof val)) return -1;
        if (s->n_sets == SWEEP_MAX_SETS) return yaml_doc_fail(c, k, "set: more than %d keys", SWEEP_MAX_SETS);
        if (check_assignment(c, v, key, val)) return -1;
        snprintf(s->sets[s->n_sets], sizeof s->sets[0], "%s=%s", key, val);
        s->set_where[s->n_sets][0] = line_of(v);
        s->set_where[s->n_sets][1] = col_of(v);
        s->n_sets++;
        if (!strcmp(key, "train.threads")) s->threads_fixed = 1;
    }
    return 0;
}

static int axis_has_key(const Sweep *s, const char *key)
{
    for (int a = 0; a < s->n_axes; a++)
        for (int k = 0; k < s->axes[a].n_keys; k++)
            if (!strcmp(s->axes[a].keys[k], key)) return 1;
    return 0;
}

/* Adds key with its list of values to axis ax (a new axis for grid:, a zip group's next key). */
static int axis_add_key(YamlDoc *c, Sweep *s, SweepAxis *ax, yaml_node_t *k, yaml_node_t *list)
{
    char key[96];
    if (yaml_doc_text(c, k, "sweep key", key, sizeof key)) return -1;
    if (list->type != YAML_SEQUENCE_NODE)
        return yaml_doc_fail(c, list, "%s: expected a list of values, e.g. [64, 256]", key);
    int n = (int)(list->data.sequence.items.top - list->data.sequence.items.start);
    if (n < 1 || n > SWEEP_MAX_VALUES) return yaml_doc_fail(c, list, "%s: expected 1 to %d values, got %d", key, SWEEP_MAX_VALUES, n);
    if (axis_has_key(s, key)) return yaml_doc_fail(c, k, "%s: swept twice", key);
    if (!strcmp(key, "train.seed") && s->n_seeds) return yaml_doc_fail(c, k, "train.seed: use seeds: instead");
    if (!strcmp(key, "output.dir")) return yaml_doc_fail(c, k, "output.dir: runs are placed by the sweep");
    if (ax->n_keys == SWEEP_MAX_ZIP_KEYS) return yaml_doc_fail(c, k, "zip: more than %d keys in one group", SWEEP_MAX_ZIP_KEYS);
    if (ax->n_keys == 0) {
        ax->n_values = n;
        ax->values = calloc((size_t)n, sizeof *ax->values);
        ax->where = calloc((size_t)n * SWEEP_MAX_ZIP_KEYS, sizeof *ax->where);
        if (!ax->values || !ax->where) return yaml_doc_fail(c, k, "out of memory");
    } else if (n != ax->n_values) {
        return yaml_doc_fail(c, list, "%s: %d values, but %s in the same zip group has %d (zipped keys move "
                    "together, so their lists must be equally long)", key, n, ax->keys[0], ax->n_values);
    }
    int kk = ax->n_keys++;
    snprintf(ax->keys[kk], sizeof ax->keys[kk], "%s", key);
    for (int i = 0; i < n; i++) {
        yaml_node_t *v = yaml_doc_node(c, list->data.sequence.items.start[i]);
        if (yaml_doc_text(c, v, key, ax->values[i][kk], SWEEP_VALUE_CAP)) return -1;
        if (check_assignment(c, v, key, ax->values[i][kk])) return -1;
        ax->where[i * SWEEP_MAX_ZIP_KEYS + kk][0] = line_of(v);
        ax->where[i * SWEEP_MAX_ZIP_KEYS + kk][1] = col_of(v);
    }
    if (!strcmp(key, "train.threads")) s->threads_fixed = 1;
    return 0;
}

static SweepAxis *new_axis(YamlDoc *c, Sweep *s, yaml_node_t *at)
{
    if (s->n_axes == SWEEP_MAX_AXES) {
        yaml_doc_fail(c, at, "more than %d swept dimensions", SWEEP_MAX_AXES);
        return NULL;
    }
    return &s->axes[s->n_axes++];
}

static int parse_grid(YamlDoc *c, Sweep *s, yaml_node_t *m)
{
    if (m->type != YAML_MAPPING_NODE) return yaml_doc_fail(c, m, "grid: expected a mapping of dotted.key: [values]");
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        SweepAxis *ax = new_axis(c, s, yaml_doc_node(c, p->key));
        if (!ax || axis_add_key(c, s, ax, yaml_doc_node(c, p->key), yaml_doc_node(c, p->value))) return -1;
    }
    return 0;
}

static int parse_zip_group(YamlDoc *c, Sweep *s, yaml_node_t *m)
{
    if (m->type != YAML_MAPPING_NODE || m->data.mapping.pairs.top == m->data.mapping.pairs.start)
        return yaml_doc_fail(c, m, "zip: expected a group of dotted.key: [values] that vary together");
    SweepAxis *ax = new_axis(c, s, m);
    if (!ax) return -1;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++)
        if (axis_add_key(c, s, ax, yaml_doc_node(c, p->key), yaml_doc_node(c, p->value))) return -1;
    return 0;
}

static int parse_zip(YamlDoc *c, Sweep *s, yaml_node_t *n)
{
    if (n->type == YAML_MAPPING_NODE) return parse_zip_group(c, s, n);
    if (n->type != YAML_SEQUENCE_NODE) return yaml_doc_fail(c, n, "zip: expected a group (mapping) or a list of groups");
    for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++)
        if (parse_zip_group(c, s, yaml_doc_node(c, *i))) return -1;
    return 0;
}

static int parse_seeds(YamlDoc *c, Sweep *s, yaml_node_t *n)
{
    if (n->type != YAML_SEQUENCE_NODE) return yaml_doc_fail(c, n, "seeds: expected a list of integers, e.g. [0, 1, 2]");
    if (axis_has_key(s, "train.seed")) return yaml_doc_fail(c, n, "seeds: train.seed is already swept");
    for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
        yaml_node_t *v = yaml_doc_node(c, *i);
        char *end;
        errno = 0;
        long long x = v->type == YAML_SCALAR_NODE ? strtoll(scalar(v), &end, 10) : -1;
        if (v->type != YAML_SCALAR_NODE || !scalar(v)[0] || *end || errno || x < 0)
            return yaml_doc_fail(c, v, "seeds: expected a non-negative integer");
        if (s->n_seeds == SWEEP_MAX_VALUES) return yaml_doc_fail(c, v, "seeds: more than %d", SWEEP_MAX_VALUES);
        for (int j = 0; j < s->n_seeds; j++)
            if (s->seeds[j] == x) return yaml_doc_fail(c, v, "seeds: %lld listed twice", x);
        s->seeds[s->n_seeds++] = x;
    }
    if (!s->n_seeds) return yaml_doc_fail(c, n, "seeds: expected at least one seed");
    return 0;
}

static int parse_slurm(YamlDoc *c, Sweep *s, yaml_node_t *m)
{
    if (m->type != YAML_MAPPING_NODE) return yaml_doc_fail(c, m, "slurm: expected a mapping (cpus_per_task, mem, time, partition, array_parallel)");
    s->has_slurm = 1;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_doc_node(c, p->key), *v = yaml_doc_node(c, p->value);
        char key[64], val[64];
        if (yaml_doc_text(c, k, "slurm", key, sizeof key) || yaml_doc_text(c, v, key, val, sizeof val)) return -1;
        for (const char *q = val; *q; q++)
            if (isspace((unsigned char)*q) || *q == '\'' || *q == '"' || *q == '\\' || *q == '$' || *q == '`')
                return yaml_doc_fail(c, v, "slurm.%s: '%s' contains a space or shell character", key, val);
        char *dst = NULL;
        size_t cap = 0;
        int numeric = 0;
        if (!strcmp(key, "cpus_per_task")) { dst = s->slurm.cpus_per_task; cap = sizeof s->slurm.cpus_per_task; numeric = 1; }
        else if (!strcmp(key, "array_parallel")) { dst = s->slurm.array_parallel; cap = sizeof s->slurm.array_parallel; numeric = 1; }
        else if (!strcmp(key, "mem")) { dst = s->slurm.mem; cap = sizeof s->slurm.mem; }
        else if (!strcmp(key, "time")) { dst = s->slurm.time; cap = sizeof s->slurm.time; }
        else if (!strcmp(key, "partition")) { dst = s->slurm.partition; cap = sizeof s->slurm.partition; }
        else return yaml_doc_fail(c, k, "slurm.%s: unknown key (expected cpus_per_task, mem, time, partition or array_parallel)", key);
        if (numeric && (atoi(val) < 1 || strspn(val, "0123456789") != strlen(val)))
            return yaml_doc_fail(c, v, "slurm.%s: expected a positive integer, got '%s'", key, val);
        if (strlen(val) >= cap) return yaml_doc_fail(c, v, "slurm.%s: value too long", key);
        snprintf(dst, cap, "%s", val);
    }
    return 0;
}

/* The folder part of path ("" for a bare name), to resolve base: relative to the sweep file. */
static void dir_of(const char *path, char *out, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (!slash) out[0] = 0;
    else snprintf(out, n, "%.*s/", (int)(slash - path + 1) - 1, path);
}

static int parse_top(YamlDoc *c, Sweep *s, yaml_node_t *root)
{
    if (!root || root->type != YAML_MAPPING_NODE) {
        sl_errf(c->err, c->n_err, "%s:1:1: expected a mapping with base:, grid:, zip:, seeds:, set:, out:, slurm:", c->path);
        return -1;
    }
    yaml_node_t *seeds = NULL;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_doc_node(c, p->key), *v = yaml_doc_node(c, p->value);
        char key[64], val[480];
        if (yaml_doc_text(c, k, "sweep", key, sizeof key)) return -1;
        int rc = 0;
        if (!strcmp(key, "base") || !strcmp(key, "out")) {
            if (yaml_doc_text(c, v, key, val, sizeof val)) return -1;
            char dir[512];
            dir_of(s->path, dir, sizeof dir);
            if (!strcmp(key, "base")) snprintf(s->base, sizeof s->base, "%s%s", val[0] == '/' ? "" : dir, val);
            else snprintf(s->out, sizeof s->out, "%s", val);
        } else if (!strcmp(key, "set")) rc = parse_sets(c, s, v);
        else if (!strcmp(key, "grid")) rc = parse_grid(c, s, v);
        else if (!strcmp(key, "zip")) rc = parse_zip(c, s, v);
        else if (!strcmp(key, "seeds")) seeds = v;
        else if (!strcmp(key, "slurm")) rc = parse_slurm(c, s, v);
        else rc = yaml_doc_fail(c, k, "%s: unknown key (expected base, out, set, grid, zip, seeds or slurm)", key);
        if (rc) return -1;
    }
    if (seeds && parse_seeds(c, s, seeds)) return -1;
    if (!s->base[0]) {
        sl_errf(c->err, c->n_err, "%s:%d:%d: base: missing (the config every run starts from, relative to the sweep file)",
                c->path, line_of(root), col_of(root));
        return -1;
    }
    return 0;
}

/* Two columns of axis a agree on its first m keys. */
/* The character a folder name holds for c: outside [A-Za-z0-9._+=,-] it is '_' (append_clean). */
static char folder_char(char c)
{
    return isalnum((unsigned char)c) || strchr("._+=,-", c) ? c : '_';
}

/* Two values give the same text in a folder name ("a/b" and "a_b" do). */
static int same_in_folder(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (folder_char(*a) != folder_char(*b)) return 0;
    return *a == *b;
}

/* Two columns of axis a name their runs alike on its first m keys. */
static int columns_agree(const SweepAxis *ax, int i, int j, int m)
{
    for (int k = 0; k < m; k++)
        if (!same_in_folder(ax->values[i][k], ax->values[j][k])) return 0;
    return 1;
}

/* How many leading keys name axis a's runs: the fewest whose values tell every two columns
 * apart in a folder name (a zip group whose first key repeats a value, e.g. [true, false,
 * false], needs more). */
static int count_named_keys(const Sweep *s, const SweepAxis *ax, char *err, size_t n_err)
{
    for (int m = 1; m <= ax->n_keys; m++) {
        int clash = 0;
        for (int i = 0; i < ax->n_values && !clash; i++)
            for (int j = i + 1; j < ax->n_values && !clash; j++) clash = columns_agree(ax, i, j, m);
        if (!clash) return m;
    }
    for (int i = 0; i < ax->n_values; i++)
        for (int j = i + 1; j < ax->n_values; j++)
            if (columns_agree(ax, i, j, ax->n_keys)) {
                const int *w = ax->where[j * SWEEP_MAX_ZIP_KEYS];
                if (ax->n_keys > 1)
                    sl_errf(err, n_err, "%s:%d:%d: zip: columns %d and %d give the same run name in every key "
                            "(both runs would share one folder)", s->path, w[0], w[1], i + 1, j + 1);
                else if (!strcmp(ax->values[i][0], ax->values[j][0]))
                    sl_errf(err, n_err, "%s:%d:%d: %s: value '%s' listed twice (both runs would share one folder)",
                            s->path, w[0], w[1], ax->keys[0], ax->values[j][0]);
                else
                    sl_errf(err, n_err, "%s:%d:%d: %s: values '%s' and '%s' give the same folder name (characters "
                            "outside [A-Za-z0-9._+=,-] become '_')", s->path, w[0], w[1], ax->keys[0],
                            ax->values[i][0], ax->values[j][0]);
                return -1;
            }
    return -1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const SweepRun *)a)->name, ((const SweepRun *)b)->name);
}

/* Run names use each key's last component; two keys with the same one use their full keys. A
 * zip group names as many of its keys as it takes to tell its columns apart. Refuses a sweep in
 * which two runs would share a folder (a repeated value, or values that clean to one name). */
static int name_axes(Sweep *s, char *err, size_t n_err)
{
    for (int a = 0; a < s->n_axes; a++) {
        s->axes[a].n_named = count_named_keys(s, &s->axes[a], err, n_err);
        if (s->axes[a].n_named < 0) return -1;
    }
    for (int a = 0; a < s->n_axes; a++)
        for (int k = 0; k < s->axes[a].n_keys; k++) {
            const char *key = s->axes[a].keys[k], *dot = strrchr(key, '.'), *tail = dot ? dot + 1 : key;
            int clash = s->n_seeds && !strcmp(tail, "seed");
            /* only keys that appear in run names can clash */
            for (int b = 0; b < s->n_axes; b++)
                for (int j = 0; j < s->axes[b].n_named; j++) {
                    const char *other = s->axes[b].keys[j], *od = strrchr(other, '.');
                    clash |= (a != b || k != j) && !strcmp(tail, od ? od + 1 : other);
                }
            snprintf(s->axes[a].labels[k], sizeof s->axes[a].labels[k], "%s", clash ? key : tail);
        }
    int n = sweep_count(s);
    SweepRun *runs = xcalloc((size_t)n, sizeof *runs);
    for (int i = 0; i < n; i++) sweep_run_at(s, i, "", &runs[i]);
    qsort(runs, (size_t)n, sizeof *runs, by_name);
    int rc = 0;
    for (int i = 1; i < n && !rc; i++)
        if (!strcmp(runs[i - 1].name, runs[i].name)) {
            sl_errf(err, n_err, "%s: two runs would share the folder '%s' (values that differ only in "
                    "characters a folder name cannot hold, or a name longer than %zu characters)",
                    s->path, runs[i].name, sizeof runs[i].name - 1);
            rc = -1;
        }
    free(runs);
    return rc;
}

int sweep_load(Sweep *s, const char *path, char *err, size_t n_err)
{
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s", path);
    char *text = NULL;
    size_t len = 0;
    if (yaml_read_checked(path, "sweep file", 1, &text, &len, err, n_err)) return -1;
    yaml_parser_t p;
    YamlDoc c = {.path = path, .err = err, .n_err = n_err};
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, &c.doc)) {
        sl_errf(err, n_err, "%s:%d:%d: invalid YAML: %s", path, (int)p.problem_mark.line + 1,
                (int)p.problem_mark.column + 1, p.problem ? p.problem : "parse error");
        yaml_parser_delete(&p);
        free(text);
        return -1;
    }
    int rc = parse_top(&c, s, yaml_document_get_root_node(&c.doc));
    yaml_document_delete(&c.doc);
    yaml_parser_delete(&p);
    free(text);
    if (rc == 0 && sweep_count(s) > SWEEP_MAX_RUNS) {
        sl_errf(err, n_err, "%s: %d runs; at most %d per sweep", path, sweep_count(s), SWEEP_MAX_RUNS);
        rc = -1;
    }
    if (rc == 0 && !s->out[0]) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        size_t len = strlen(base);
        if (len > 5 && !strcmp(base + len - 5, ".yaml")) len -= 5;
        else if (len > 4 && !strcmp(base + len - 4, ".yml")) len -= 4;
        snprintf(s->out, sizeof s->out, "runs/%.*s", (int)len, base);
    }
    if (rc == 0) rc = name_axes(s, err, n_err);
    if (rc) sweep_free(s);
    return rc;
}

void sweep_free(Sweep *s)
{
    for (int a = 0; a < s->n_axes; a++) {
        free(s->axes[a].values);
        free(s->axes[a].where);
        s->axes[a].values = NULL;
        s->axes[a].where = NULL;
    }
    s->n_axes = 0;
}

/* ---- expansion ---- */

int sweep_count(const Sweep *s)
{
    long long n = s->n_seeds ? s->n_seeds : 1;
    for (int a = 0; a < s->n_axes && n <= SWEEP_MAX_RUNS; a++) n *= s->axes[a].n_values;
    return n > SWEEP_MAX_RUNS ? SWEEP_MAX_RUNS + 1 : (int)n;
}

const char *sweep_value(const Sweep *s, const SweepRun *r, int a, int k)
{
    return s->axes[a].values[r->value[a]][k];
}

/* Folder-safe: characters outside [A-Za-z0-9._+=,-] become '_' (a value such as "a/b"). */
static void append_clean(char *out, size_t cap, const char *text)
{
    size_t len = strlen(out);
    for (const char *p = text; *p && len + 1 < cap; p++) out[len++] = folder_char(*p);
    out[len] = 0;
}

void sweep_run_at(const Sweep *s, int i, const char *dir, SweepRun *r)
{
    memset(r, 0, sizeof *r);
    int rest = i;
    r->seed_index = -1;
    if (s->n_seeds) {
        r->seed_index = rest % s->n_seeds;
        rest /= s->n_seeds;
    }
    for (int a = s->n_axes - 1; a >= 0; a--) {
        r->value[a] = rest % s->axes[a].n_values;
        rest /= s->axes[a].n_values;
    }
    for (int a = 0; a < s->n_axes; a++)
        for (int k = 0; k < s->axes[a].n_named; k++) {
            if (r->name[0]) append_clean(r->name, sizeof r->name, ",");
            append_clean(r->name, sizeof r->name, s->axes[a].labels[k]);
            append_clean(r->name, sizeof r->name, "=");
            append_clean(r->name, sizeof r->name, sweep_value(s, r, a, k));
        }
    if (s->n_seeds) {
        char seed[48];
        snprintf(seed, sizeof seed, "%sseed=%lld", s->n_axes ? "," : "", s->seeds[r->seed_index]);
        append_clean(r->name, sizeof r->name, seed);
    }
    if (!r->name[0]) snprintf(r->name, sizeof r->name, "base");
    snprintf(r->dir, sizeof r->dir, "%s/%s", dir, r->name);
}

/* ---- resolving ---- */

static int apply(Config *c, const char *file, int line, int col, const char *assignment, char *err, size_t n_err)
{
    char e[768];
    if (config_set(c, assignment, e, sizeof e) == 0) return 0;
    sl_errf(err, n_err, "%s:%d:%d: %s", file, line, col, strncmp(e, "--set ", 6) ? e : e + 6);
    return -1;
}

int sweep_resolve_base(const Sweep *s, Config *c, char *err, size_t n_err)
{
    config_defaults(c);
    if (config_load(c, s->base, err, n_err) != 0) return -1;
    for (int i = 0; i < s->n_sets; i++)
        if (apply(c, s->path, s->set_where[i][0], s->set_where[i][1], s->sets[i], err, n_err)) return -1;
    return 0;
}

int sweep_resolve(const Sweep *s, const SweepRun *r, int threads, Config *c, char *err, size_t n_err)
{
    if (sweep_resolve_base(s, c, err, n_err)) return -1;
    char a[512];
    for (int ax = 0; ax < s->n_axes; ax++)
        for (int k = 0; k < s->axes[ax].n_keys; k++) {
            const int *w = s->axes[ax].where[r->value[ax] * SWEEP_MAX_ZIP_KEYS + k];
            snprintf(a, sizeof a, "%s=%s", s->axes[ax].keys[k], sweep_value(s, r, ax, k));
            if (apply(c, s->path, w[0], w[1], a, err, n_err)) return -1;
        }
    if (s->n_seeds) c->train.seed = (uint64_t)s->seeds[r->seed_index];
    /* the thread count never changes results, so a started run may resume with this one */
    if (!s->threads_fixed && threads > 0) c->train.threads = threads;
    if (strlen(r->dir) >= sizeof c->output.dir) {
        sl_errf(err, n_err, "%s: run folder %s: path longer than %zu characters", s->path, r->dir,
                sizeof c->output.dir - 1);
        return -1;
    }
    memcpy(c->output.dir, r->dir, strlen(r->dir) + 1);
    char e[768];
    if (config_validate(c, e, sizeof e) != 0) {
        sl_errf(err, n_err, "%s: run %s: %s", s->path, r->name, e);
        return -1;
    }
    return 0;
}

/* ---- states ---- */

static int exists(const char *dir, const char *name)
{
    char path[1500];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void state_path(char *out, size_t n, const char *sweep_dir, const SweepRun *r)
{
    snprintf(out, n, "%s/logs/%s.state", sweep_dir, r->name);
}

/* The step the run's newest checkpoint holds ("step_0000500.ckpt" in checkpoints/latest). */
static long long latest_step(const char *dir)
{
    char path[1400], line[128];
    long long step = -1;
    snprintf(path, sizeof path, "%s/checkpoints/latest", dir);
    FILE *f = fopen(path, "r");
    if (f && fgets(line, sizeof line, f)) sscanf(line, "step_%lld", &step);
    if (f) fclose(f);
    return step;
}

SweepState sweep_state(const char *sweep_dir, const SweepRun *r, long long *step_out)
{
    *step_out = latest_step(r->dir);
    if (exists(r->dir, "summary.json")) return SWEEP_DONE;
    char path[1600], text[256] = "";
    state_path(path, sizeof path, sweep_dir, r);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(text, sizeof text, f)) text[0] = 0;
        fclose(f);
    }
    int code = 0, pid = 0;
    if (sscanf(text, "exit %d", &code) == 1 && code != 0) return SWEEP_FAILED;
    /* a local attempt names its pid: a dead pid means the sweep was stopped, not running */
    if (sscanf(text, "running local %d", &pid) == 1) {
        if (pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)) return SWEEP_RUNNING;
    } else if (!strncmp(text, "running", 7)) {
        return SWEEP_RUNNING;
    }
    return *step_out >= 0 ? SWEEP_INTERRUPTED : SWEEP_NOT_STARTED;
}

const char *sweep_state_name(SweepState st)
{
    switch (st) {
    case SWEEP_NOT_STARTED: return "not started";
    case SWEEP_INTERRUPTED: return "interrupted";
    case SWEEP_RUNNING: return "running";
    case SWEEP_FAILED: return "failed";
    case SWEEP_DONE: return "done";
    }
    return "?";
}

void sweep_write_state(const char *sweep_dir, const SweepRun *r, const char *text)
{
    char path[1600], tmp[1620];
    state_path(path, sizeof path, sweep_dir, r);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f, "%s\n", text);
    if (fclose(f) == 0) rename(tmp, path);
}

/* ---- SLURM ---- */

/* Single-quoted for bash (a run name or path with a quote stays one word). */
static void sh_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputs("'\\''", f);
        else fputc(*s, f);
    }
    fputc('\'', f);
}

int sweep_write_sbatch(const Sweep *s, const char *dir, const SweepRun *runs, int n, const char *bin,
                       char *err, size_t n_err)
{
    char abs_dir[PATH_MAX], path[PATH_MAX + 32], tmp[PATH_MAX + 48];
    if (!realpath(dir, abs_dir)) {
        sl_errf(err, n_err, "%s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/sweep.sbatch", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        sl_errf(err, n_err, "%s: cannot write: %s", tmp, strerror(errno));
        return -1;
    }
    const char *base = strrchr(abs_dir, '/');
    const SweepSlurm *sl = &s->slurm;
    fprintf(f, "#!/bin/bash\n");
    fprintf(f, "# Written by `sinklab sweep %s --emit slurm`: one array task per run. Each task trains\n"
               "# its run's resolved config with --resume, so a requeued or preempted task continues from\n"
               "# the run's newest checkpoint, and a run that already finished is left alone.\n", s->path);
    fprintf(f, "#SBATCH --job-name=sinklab-%s\n", base ? base + 1 : "sweep");
    if (sl->array_parallel[0]) fprintf(f, "#SBATCH --array=0-%d%%%s\n", n - 1, sl->array_parallel);
    else fprintf(f, "#SBATCH --array=0-%d\n", n - 1);
    fprintf(f, "#SBATCH --ntasks=1\n");
    if (sl->cpus_per_task[0]) fprintf(f, "#SBATCH --cpus-per-task=%s\n", sl->cpus_per_task);
    if (sl->mem[0]) fprintf(f, "#SBATCH --mem=%s\n", sl->mem);
    if (sl->time[0]) fprintf(f, "#SBATCH --time=%s\n", sl->time);
    if (sl->partition[0]) fprintf(f, "#SBATCH --partition=%s\n", sl->partition);
    fprintf(f, "#SBATCH --output=%s/logs/slurm-%%A_%%a.out\n", abs_dir);
    fprintf(f, "#SBATCH --open-mode=append\n#SBATCH --requeue\n\n");
    fprintf(f, "SINKLAB=");
    sh_quote(f, bin);
    fprintf(f, "\nSWEEP=");
    sh_quote(f, abs_dir);
    fprintf(f, "\nRUNS=(\n");
    for (int i = 0; i < n; i++) {
        fputs("  ", f);
        sh_quote(f, runs[i].name);
        fputc('\n', f);
    }
    fprintf(f, ")\n"
        "NAME=\"${RUNS[$SLURM_ARRAY_TASK_ID]}\"\n"
        "RUN=\"$SWEEP/$NAME\"\n"
        "STATE=\"$SWEEP/logs/$NAME.state\"\n"
        "exec >>\"$SWEEP/logs/$NAME.log\" 2>&1\n"
        "echo \"== task $SLURM_ARRAY_JOB_ID.$SLURM_ARRAY_TASK_ID (job $SLURM_JOB_ID) on $(hostname) at $(date -u +%%FT%%TZ)\"\n"
        "if [ -f \"$RUN/summary.json\" ]; then\n"
        "  echo \"$NAME is complete\"; echo \"exit 0\" >\"$STATE\"; exit 0\n"
        "fi\n"
        "echo \"running slurm $SLURM_ARRAY_JOB_ID.$SLURM_ARRAY_TASK_ID $(hostname)\" >\"$STATE\"\n"
        "# a time limit, preemption or scancel signals the trainer too: wait for it, record its exit\n"
        "trap 'echo \"== SIGTERM at $(date -u +%%FT%%TZ)\"' TERM\n"
        "\"$SINKLAB\" train \"$RUN/config.yaml\" --out \"$RUN\" --resume --quiet\n"
        "rc=$?\n"
        "echo \"exit $rc\" >\"$STATE\"\n"
        "echo \"== exit $rc at $(date -u +%%FT%%TZ)\"\n"
        "exit $rc\n");
    if (fclose(f) != 0 || chmod(tmp, 0755) != 0 || rename(tmp, path) != 0) {
        sl_errf(err, n_err, "%s: cannot write", path);
        return -1;
    }
    return 0;
}
