/* config.c: the generic config engine. Each layer declares its keys in a table (base/keys.h);
 * this file composes those tables into the whole config and walks them for loading, --set,
 * writing, diffing and the README reference, so a key cannot be parsed but not written, or
 * written but not documented. Loading is strict: every problem names file:line:column and the
 * dotted key, and one pass reports every independent problem. */
#include "train/config.h"

#include "base/check.h"
#include "base/yaml_depth.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ---------------------------------------------------------------- the sections */

/* Each layer's table and where its struct sits in Config. Order = the written config's order. */
typedef struct {
    const KeyTable *table;
    size_t off;
} Section;

static const Section SECTIONS[] = {
    {&MODEL_KEYS, offsetof(Config, model)},
    {&DATA_KEYS, offsetof(Config, data)},
    {&TRAIN_KEYS, offsetof(Config, train)},
    {&PROBE_KEYS, offsetof(Config, probe)},
    {&CHECKPOINT_KEYS, offsetof(Config, checkpoint)},
    {&OUTPUT_KEYS, offsetof(Config, output)},
};
#define N_SECTIONS (sizeof SECTIONS / sizeof SECTIONS[0])

/* Visits every row with the section struct it lives in. */
#define FOR_EACH_KEY(sec, d)                                                         \
    for (const Section *sec = SECTIONS; sec < SECTIONS + N_SECTIONS; sec++)          \
        for (const KeyDef *d = sec->table->keys; d < sec->table->keys + sec->table->n_keys; d++)

static void *section_of(const Section *sec, Config *c) { return (char *)c + sec->off; }
static const void *csection_of(const Section *sec, const Config *c)
{
    return (const char *)c + sec->off;
}

static const KeyDef *find_key(const char *key, const Section **where)
{
    FOR_EACH_KEY(sec, d)
        if (!strcmp(d->key, key)) {
            if (where) *where = sec;
            return d;
        }
    return NULL;
}

/* A section is any proper dotted prefix of a key: model, model.attention, data.prefix_len. */
static int is_section(const char *key)
{
    size_t n = strlen(key);
    FOR_EACH_KEY(sec, d)
        if (!strncmp(d->key, key, n) && d->key[n] == '.') return 1;
    return 0;
}

/* ---------------------------------------------------------------- defaults */

void config_defaults(Config *c)
{
    /* Zero first so unused array slots and padding compare equal after a round trip. */
    memset(c, 0, sizeof *c);
    model_config_defaults(&c->model);
    data_config_defaults(&c->data);
    train_config_defaults(&c->train);
    probe_config_defaults(&c->probe);
    checkpoint_config_defaults(&c->checkpoint);
    output_config_defaults(&c->output);
}

/* ---------------------------------------------------------------- errors and helpers */

typedef struct {
    KeyCtx k;                /* what layers' parsers report into */
    Config *c;
    int seen_batch, seen_tps;
    KeyParseFn seen_special[8];   /* aliases (data.path / data.paths) share a parse function */
    int n_seen_special;
    yaml_mark_t batch_mark;
} Ctx;

static const char *last_part(const char *key)
{
    const char *dot = strrchr(key, '.');
    return dot ? dot + 1 : key;
}

/* The closest known key or section, or NULL when nothing is close. */
static const char *suggest_key(const char *key)
{
    static char best_section[128];
    const char *best = NULL;
    int best_d = 99;
    FOR_EACH_KEY(sec, d) {
        int dist = key_edit_distance(key, d->key);
        if (dist < best_d) { best_d = dist; best = d->key; }
        /* every section prefix of this key */
        for (const char *dot = strchr(d->key, '.'); dot; dot = strchr(dot + 1, '.')) {
            char pre[128];
            size_t n = (size_t)(dot - d->key);
            if (n >= sizeof pre) break;
            memcpy(pre, d->key, n);
            pre[n] = 0;
            int ds = key_edit_distance(key, pre);
            if (ds < best_d) {
                best_d = ds;
                memcpy(best_section, pre, n + 1);
                best = best_section;
            }
        }
    }
    int limit = (int)strlen(last_part(key)) / 3;
    if (limit < 2) limit = 2;
    if (best_d <= limit) return best;
    /* Right name in the wrong section (train.seq_len -> data.seq_len). */
    FOR_EACH_KEY(sec, d)
        if (!strcmp(last_part(d->key), last_part(key))) return d->key;
    return NULL;
}

static int unknown_key(Ctx *x, const yaml_node_t *node, const char *key)
{
    const char *s = suggest_key(key);
    if (s)
        key_error(&x->k, node, key, "unknown key (did you mean %s?)", s);
    else
        key_error(&x->k, node, key, "unknown key (see the config reference in the README)");
    return -1;
}

/* ---------------------------------------------------------------- loading */

static int walk_map(Ctx *x, const char *prefix, yaml_node_t *map);

/* An alias (data.path of data.paths) given next to the key it names. */
static int check_alias(Ctx *x, const KeyDef *d, const yaml_node_t *knode, const char *full)
{
    if (d->type != KT_SPECIAL) return 0;
    for (int i = 0; i < x->n_seen_special; i++)
        if (x->seen_special[i] == d->parse) {
            const char *other = NULL;
            FOR_EACH_KEY(sec, e)
                if (e != d && e->parse == d->parse && !other) other = e->key;
            key_error(&x->k, knode, full, "%s and %s are the same key; give one",
                      d->flags & KEY_NOWRITE ? full : other, d->flags & KEY_NOWRITE ? other : full);
            return -1;
        }
    if (x->n_seen_special < (int)(sizeof x->seen_special / sizeof x->seen_special[0]))
        x->seen_special[x->n_seen_special++] = d->parse;
    return 0;
}

static int apply_key(Ctx *x, const char *full, yaml_node_t *knode, yaml_node_t *v)
{
    const Section *sec = NULL;
    const KeyDef *d = find_key(full, &sec);
    int is_sec = is_section(full);
    char buf[256];
    if (is_sec && v->type == YAML_MAPPING_NODE) return walk_map(x, full, v);
    if (d) {
        if (check_alias(x, d, knode, full)) return -1;
        if (key_apply(&x->k, d, v, section_of(sec, x->c))) return -1;
        if (!strcmp(full, "train.batch_size")) {
            x->seen_batch = 1;
            x->batch_mark = v->start_mark;
            /* An explicit batch size on the command line replaces tokens_per_step. */
            if (x->k.set_arg) x->c->train.tokens_per_step = 0;
        }
        if (!strcmp(full, "train.tokens_per_step")) x->seen_tps = 1;
        return 0;
    }
    if (is_sec) {
        if (key_is_null(v)) return 0;
        key_error(&x->k, v, full, "expected a mapping of keys, got %s",
                  key_shown(v, buf, sizeof buf));
        return -1;
    }
    return unknown_key(x, knode, full);
}

/* Walks every pair; a bad pair is reported and the walk goes on, so one pass finds them all. */
static int walk_map(Ctx *x, const char *prefix, yaml_node_t *map)
{
    int rc = 0;
    yaml_node_pair_t *start = map->data.mapping.pairs.start;
    for (yaml_node_pair_t *p = start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = key_node(&x->k, p->key);
        yaml_node_t *v = key_node(&x->k, p->value);
        char full[256], buf[256];
        const char *ks = key_scalar(k);
        if (!ks) {
            key_error(&x->k, k, prefix ? prefix : "config", "expected a key name, got %s",
                      key_shown(k, buf, sizeof buf));
            rc = -1;
            continue;
        }
        snprintf(full, sizeof full, "%s%s%s", prefix ? prefix : "", prefix ? "." : "", ks);
        int dup = 0;
        for (yaml_node_pair_t *q = start; q < p && !dup; q++) {
            const char *prev = key_scalar(key_node(&x->k, q->key));
            if (prev && !strcmp(prev, ks)) {
                key_error(&x->k, k, full, "duplicate key (first given at line %zu)",
                          key_node(&x->k, q->key)->start_mark.line + 1);
                dup = 1;
            }
        }
        if (dup || apply_key(x, full, k, v)) rc = -1;
    }
    return rc;
}

/* Checks that need the whole file: batch_size given next to tokens_per_step must agree. */
static int check_file(Ctx *x)
{
    const TrainConfig *t = &x->c->train;
    long long per = (long long)x->c->data.seq_len * t->grad_accum;
    if (x->seen_batch && x->seen_tps && t->tokens_per_step > 0 &&
        (long long)t->batch_size * per != t->tokens_per_step) {
        yaml_node_t at;
        memset(&at, 0, sizeof at);
        at.start_mark = x->batch_mark;
        key_error(&x->k, &at, "train.batch_size",
                  "%d disagrees with train.tokens_per_step %d = batch_size * data.seq_len %d * "
                  "train.grad_accum %d; give only one of batch_size and tokens_per_step",
                  t->batch_size, t->tokens_per_step, x->c->data.seq_len, t->grad_accum);
        return -1;
    }
    return 0;
}

static void yaml_problem(char *err, size_t n_err, const char *name, const yaml_parser_t *p)
{
    char ctx[256] = "";
    if (p->context)
        snprintf(ctx, sizeof ctx, " (%s at line %zu)", p->context, p->context_mark.line + 1);
    if (p->error == YAML_READER_ERROR)
        sl_errf(err, n_err, "%s: invalid YAML: %s at byte %zu", name,
                p->problem ? p->problem : "unreadable input", p->problem_offset);
    else
        sl_errf(err, n_err, "%s:%zu:%zu: invalid YAML: %s%s", name, p->problem_mark.line + 1,
                p->problem_mark.column + 1, p->problem ? p->problem : "parse error", ctx);
}

static void ctx_init(Ctx *x, Config *c, yaml_document_t *doc, const char *name,
                     const char *set_arg, char *err, size_t n_err)
{
    memset(x, 0, sizeof *x);
    x->c = c;
    x->k.doc = doc;
    x->k.name = name;
    x->k.set_arg = set_arg;
    x->k.err = err;
    x->k.n_err = n_err;
}

/* Parses one YAML document from the parser onto c (not reset). */
static int load_parser(Config *c, yaml_parser_t *p, const char *name, char *err, size_t n_err)
{
    yaml_document_t doc;
    if (!yaml_parser_load(p, &doc)) {
        yaml_problem(err, n_err, name, p);
        return -1;
    }
    Ctx x;
    ctx_init(&x, c, &doc, name, NULL, err, n_err);
    int rc = 0;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && !key_is_null(root)) {
        if (root->type != YAML_MAPPING_NODE) {
            sl_errf(err, n_err, "%s:%zu:%zu: expected a mapping of sections (model, data, train, "
                    "probe, checkpoint, output)", name, root->start_mark.line + 1,
                    root->start_mark.column + 1);
            rc = -1;
        } else {
            rc = walk_map(&x, NULL, root);
        }
        if (!rc) rc = check_file(&x);
    }
    if (!rc && root) {
        yaml_document_t next;
        if (!yaml_parser_load(p, &next)) {
            yaml_problem(err, n_err, name, p);
            rc = -1;
        } else {
            yaml_node_t *r2 = yaml_document_get_root_node(&next);
            if (r2) {
                sl_errf(err, n_err, "%s:%zu:%zu: expected one YAML document, found a second one",
                        name, r2->start_mark.line + 1, r2->start_mark.column + 1);
                rc = -1;
            }
            yaml_document_delete(&next);
        }
    }
    if (rc && x.k.n_errors > KEY_MAX_ERRORS && err && n_err) {
        size_t used = strlen(err);
        snprintf(err + used, n_err - used, "\n%s: ... and %d more problems", name,
                 x.k.n_errors - KEY_MAX_ERRORS);
    }
    yaml_document_delete(&doc);
    return rc;
}

/* Loads into a copy of c so a failed load leaves c untouched. */
static int load_common(Config *c, FILE *f, const char *yaml, const char *name, int reset,
                       char *err, size_t n_err)
{
    Config *tmp = malloc(sizeof *tmp);
    if (!tmp) {
        sl_errf(err, n_err, "%s: out of memory", name);
        return -1;
    }
    if (reset) config_defaults(tmp);
    else *tmp = *c;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        sl_errf(err, n_err, "%s: cannot initialise the YAML parser", name);
        free(tmp);
        return -1;
    }
    if (f) yaml_parser_set_input_file(&p, f);
    else yaml_parser_set_input_string(&p, (const unsigned char *)yaml, strlen(yaml));
    int rc = load_parser(tmp, &p, name, err, n_err);
    yaml_parser_delete(&p);
    if (!rc) {
        tmp->data.kind = tmp->model.kind;   /* a copy, never written */
        if (reset || !tmp->source[0]) {
            memset(tmp->source, 0, sizeof tmp->source);
            strncpy(tmp->source, name, sizeof tmp->source - 1);
        }
        *c = *tmp;
    }
    free(tmp);
    return rc;
}

static int load_file(Config *c, const char *path, int reset, char *err, size_t n_err)
{
    char *text = NULL;
    size_t len = 0;
    /* a config is a few kB: over 1 MB it is not one */
    if (yaml_read_checked(path, "config", 1, &text, &len, err, n_err)) return -1;
    int rc = load_common(c, NULL, text, path, reset, err, n_err);
    free(text);
    return rc;
}

int config_load(Config *c, const char *path, char *err, size_t n_err)
{
    return load_file(c, path, 1, err, n_err);
}

int config_merge_file(Config *c, const char *path, char *err, size_t n_err)
{
    return load_file(c, path, 0, err, n_err);
}

int config_load_string(Config *c, const char *yaml, const char *name, char *err, size_t n_err)
{
    if (yaml_depth_check(yaml, strlen(yaml), name ? name : "config", YAML_MAX_DEPTH, err, n_err))
        return -1;
    return load_common(c, NULL, yaml, name ? name : "config", 1, err, n_err);
}

int config_set(Config *c, const char *assignment, char *err, size_t n_err)
{
    const char *eq = strchr(assignment, '=');
    char key[256];
    if (!eq || eq == assignment || (size_t)(eq - assignment) >= sizeof key) {
        sl_errf(err, n_err, "--set %s: expected key.path=value (e.g. model.n_layer=6)",
                assignment);
        return -1;
    }
    memcpy(key, assignment, (size_t)(eq - assignment));
    key[eq - assignment] = 0;
    const char *value = eq + 1;

    yaml_parser_t p;
    yaml_document_t doc;
    char derr[256];
    if (yaml_depth_check(value, strlen(value), "value", YAML_MAX_DEPTH, derr, sizeof derr)) {
        sl_errf(err, n_err, "--set %s: %s", assignment, derr);
        return -1;
    }
    if (!yaml_parser_initialize(&p)) {
        sl_errf(err, n_err, "--set %s: cannot initialise the YAML parser", assignment);
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)value, strlen(value));
    if (!yaml_parser_load(&p, &doc)) {
        sl_errf(err, n_err, "--set %s: %s: invalid YAML value: %s", assignment, key,
                p.problem ? p.problem : "parse error");
        yaml_parser_delete(&p);
        return -1;
    }
    yaml_node_t empty;
    memset(&empty, 0, sizeof empty);
    empty.type = YAML_SCALAR_NODE;
    empty.data.scalar.value = (yaml_char_t *)"";
    empty.data.scalar.style = YAML_PLAIN_SCALAR_STYLE;
    yaml_node_t *root = yaml_document_get_root_node(&doc);

    Config *tmp = malloc(sizeof *tmp);
    int rc = -1;
    if (tmp) {
        *tmp = *c;
        Ctx x;
        ctx_init(&x, tmp, &doc, NULL, assignment, err, n_err);
        rc = apply_key(&x, key, NULL, root ? root : &empty);
        tmp->data.kind = tmp->model.kind;
        if (!rc) *c = *tmp;
        free(tmp);
    } else {
        sl_errf(err, n_err, "--set %s: out of memory", assignment);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    return rc;
}

/* ---------------------------------------------------------------- validation */

int config_validate(Config *c, char *err, size_t n_err)
{
    char msg[1024];
    const char *src = c->source[0] ? c->source : "config";
    /* Derived values first, so the checks see what will run. */
    c->data.kind = c->model.kind;
    data_config_resolve(&c->data);
    if (c->model.vocab_size == 0) c->model.vocab_size = data_vocab_size(&c->data);
    model_config_resolve(&c->model, c->data.seq_len);
    int rc = train_config_resolve(&c->train, c->data.seq_len, msg, sizeof msg);
    /* Ranges of every section first (as parsed), then each layer's rules. */
    FOR_EACH_KEY(sec, d)
        if (!rc && key_check_range(d, csection_of(sec, c), msg, sizeof msg)) rc = -1;
    if (!rc) rc = model_config_check(&c->model, c->data.seq_len, msg, sizeof msg);
    if (!rc) rc = data_config_check(&c->data, c->model.vocab_size, msg, sizeof msg);
    if (!rc) rc = train_config_check(&c->train, msg, sizeof msg);
    if (!rc) rc = probe_config_check(&c->probe, c->model.max_seq_len, msg, sizeof msg);
    if (rc) {
        sl_errf(err, n_err, "%s: %s", src, msg);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- writing */

static int n_parts(const char *s)
{
    int k = *s ? 1 : 0;
    for (; *s; s++) k += *s == '.';
    return k;
}

/* The i-th dot-separated part of s into out. */
static void part(char *out, size_t n, const char *s, int i)
{
    for (; i > 0 && s; i--) {
        s = strchr(s, '.');
        if (s) s++;
    }
    size_t len = s ? strcspn(s, ".") : 0;
    if (len >= n) len = n - 1;
    if (s) memcpy(out, s, len);
    out[len] = 0;
}

static void write_choices(FILE *f, const KeyDef *d)
{
    if (d->type != KT_ENUM) return;
    fprintf(f, "   #");
    for (int i = 0; d->names[i]; i++) fprintf(f, "%s %s", i ? " |" : "", d->names[i]);
}

void config_write(const Config *c, FILE *f)
{
    char cur[128] = "", secname[128], val[20000], a[64], b[64];
    fprintf(f, "# sinklab run config, fully resolved: every key is written "
               "(reference: README, \"Config reference\").\n");
    FOR_EACH_KEY(sec, d) {
        if (d->flags & KEY_NOWRITE) continue;
        const char *dot = strrchr(d->key, '.');
        size_t sl = (size_t)(dot - d->key);
        memcpy(secname, d->key, sl);
        secname[sl] = 0;
        int depth = n_parts(secname);
        if (strcmp(secname, cur)) {
            int common = 0, nc = n_parts(cur);
            while (common < nc && common < depth) {
                part(a, sizeof a, cur, common);
                part(b, sizeof b, secname, common);
                if (strcmp(a, b)) break;
                common++;
            }
            for (int j = common; j < depth; j++) {
                part(a, sizeof a, secname, j);
                fprintf(f, "%s%*s%s:\n", j == 0 ? "\n" : "", 2 * j, "", a);
            }
            strcpy(cur, secname);
        }
        key_format(val, sizeof val, d, csection_of(sec, c));
        const char *name = last_part(d->key);
        if (!strcmp(d->key, "train.batch_size") && c->train.tokens_per_step > 0) {
            /* Derived (as config_validate does), so the file agrees with itself when read. */
            long long per = (long long)c->data.seq_len * c->train.grad_accum;
            if (per > 0 && c->train.tokens_per_step % per == 0)
                snprintf(val, sizeof val, "%lld", c->train.tokens_per_step / per);
            fprintf(f, "%*sbatch_size: %s   # = tokens_per_step / (data.seq_len * grad_accum)\n",
                    2 * depth, "", val);
            continue;
        }
        if (!strcmp(d->key, "data.paths") && c->data.n_paths == 1) {
            key_format_string(val, sizeof val, c->data.paths[0]);
            name = "path";
        }
        fprintf(f, "%*s%s: %s", 2 * depth, "", name, val);
        write_choices(f, d);
        fputc('\n', f);
    }
}

char *config_to_string(const Config *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    config_write(c, f);
    if (fclose(f)) {
        free(buf);
        return NULL;
    }
    return buf;
}

int config_diff(const Config *a, const Config *b, char *out, size_t n)
{
    char va[20000], vb[20000];
    int count = 0;
    size_t k = 0;
    if (out && n) out[0] = 0;
    FOR_EACH_KEY(sec, d) {
        if (d->flags & KEY_NOWRITE) continue;
        key_format(va, sizeof va, d, csection_of(sec, a));
        key_format(vb, sizeof vb, d, csection_of(sec, b));
        if (!strcmp(va, vb)) continue;
        if (out && k < n)
            k += (size_t)snprintf(out + k, n - k, "%s%s: %.100s vs %.100s", count ? "; " : "",
                                  d->key, va, vb);
        count++;
    }
    return count;
}

int config_value(const Config *c, const char *key, char *out, size_t n)
{
    const Section *sec = NULL;
    const KeyDef *d = find_key(key, &sec);
    if (!d) return -1;
    const void *section = csection_of(sec, c);
    /* a string as its text, not as the quoted YAML scalar config_write prints */
    if (d->type == KT_STRING) snprintf(out, n, "%s", (const char *)section + d->off);
    else key_format(out, n, d, section);
    return 0;
}

const char *config_key_name(size_t i)
{
    size_t k = 0;
    FOR_EACH_KEY(sec, d)
        if (k++ == i) return d->key;
    return NULL;
}

int config_key_written(const char *key)
{
    const KeyDef *d = find_key(key, NULL);
    return d && !(d->flags & KEY_NOWRITE);
}

void config_run_dir(const Config *c, char *out, size_t n)
{
    if (c->output.dir[0]) {
        snprintf(out, n, "%s", c->output.dir);
        return;
    }
    const char *base = strrchr(c->source, '/');
    base = base ? base + 1 : c->source;
    char stem[sizeof c->source];
    snprintf(stem, sizeof stem, "%s", *base ? base : "run");
    char *ext = strrchr(stem, '.');
    if (ext && (!strcmp(ext, ".yaml") || !strcmp(ext, ".yml")) && ext != stem) *ext = 0;
    snprintf(out, n, "runs/%s", stem);
}

void config_write_reference(FILE *f)
{
    Config def;
    config_defaults(&def);
    char type[512], val[2048];
    fprintf(f, "| key | type | default | meaning |\n|---|---|---|---|\n");
    FOR_EACH_KEY(sec, d) {
        key_describe(type, sizeof type, d);
        key_format(val, sizeof val, d, csection_of(sec, &def));
        fprintf(f, "| `%s` | %s | `%s` | ", d->key, type, val);
        for (const char *q = d->doc; *q; q++) {
            if (*q == '|') fputc('\\', f);   /* a bar would end the Markdown cell */
            fputc(*q, f);
        }
        fprintf(f, " |\n");
    }
}
