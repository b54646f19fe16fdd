/* claim.c: claim files, the sweep each scale runs, and the verdict from the finished runs. */
#define _DEFAULT_SOURCE /* realpath */
#include "analysis/claim.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "analysis/json.h"
#include "base/check.h"
#include "base/yaml_doc.h"
#include "base/yaml_depth.h"

const char *const CLAIM_TEST_NAMES[] = {
    [CLAIM_TREND] = "trend", [CLAIM_DIFFERENCE] = "difference", [CLAIM_SHIFT] = "shift",
    [CLAIM_PAIRED] = "paired", [CLAIM_INTERVENTION] = "intervention", NULL,
};
const char *const VERDICT_NAMES[] = {
    [VERDICT_REPRODUCED] = "reproduced", [VERDICT_NOT_REPRODUCED] = "not reproduced",
    [VERDICT_INCONCLUSIVE] = "inconclusive", NULL,
};

/* ---------------------------------------------------------------- parsing */

static int number(YamlDoc *x, const yaml_node_t *n, const char *key, double *out)
{
    char buf[64], *end;
    if (yaml_doc_text(x, n, key, buf, sizeof buf)) return -1;
    double v = strtod(buf, &end);
    if (end == buf || *end || !isfinite(v)) return yaml_doc_fail(x, n, "%s: expected a number, got '%s'", key, buf);
    *out = v;
    return 0;
}

static int seeds(YamlDoc *x, const yaml_node_t *n, long long *out, int *count)
{
    if (n->type != YAML_SEQUENCE_NODE) return yaml_doc_fail(x, n, "seeds: expected a list such as [0, 1, 2]");
    int k = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        double v = 0;
        if (k == CLAIM_MAX_SEEDS) return yaml_doc_fail(x, yaml_doc_node(x, *it), "seeds: at most %d", CLAIM_MAX_SEEDS);
        if (number(x, yaml_doc_node(x, *it), "seeds", &v)) return -1;
        if (v < 0 || v != floor(v)) return yaml_doc_fail(x, yaml_doc_node(x, *it), "seeds: expected non-negative integers");
        out[k++] = (long long)v;
    }
    if (!k) return yaml_doc_fail(x, n, "seeds: expected at least one seed");
    *count = k;
    return 0;
}

static int sets(YamlDoc *x, const yaml_node_t *m, ClaimSet *out, int *count)
{
    if (m->type != YAML_MAPPING_NODE) return yaml_doc_fail(x, m, "set: expected a mapping of dotted.key: value");
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_doc_node(x, p->key), *v = yaml_doc_node(x, p->value);
        if (*count == CLAIM_MAX_SETS) return yaml_doc_fail(x, k, "set: at most %d keys", CLAIM_MAX_SETS);
        ClaimSet *s = &out[(*count)++];
        if (yaml_doc_text(x, k, "set", s->key, sizeof s->key) || yaml_doc_text(x, v, s->key, s->value, sizeof s->value))
            return -1;
        s->line = (int)k->start_mark.line + 1;
        s->col = (int)k->start_mark.column + 1;
    }
    return 0;
}

/* A node as flow YAML ({a: [1, 2]}), scalars quoted unless plainly safe. */
static void emit(YamlDoc *x, const yaml_node_t *n, char *out, size_t cap, size_t *k)
{
#define PUT(...) do { if (*k < cap) *k += (size_t)snprintf(out + *k, cap - *k, __VA_ARGS__); } while (0)
    if (n->type == YAML_SCALAR_NODE) {
        const char *s = (const char *)n->data.scalar.value;
        int plain = *s != 0;
        for (const char *q = s; *q; q++)
            if (!isalnum((unsigned char)*q) && !strchr("._-+/", *q)) plain = 0;
        if (plain) { PUT("%s", s); return; }
        PUT("\"");
        for (const char *q = s; *q; q++) {
            if (*q == '"' || *q == '\\') PUT("\\%c", *q);
            else PUT("%c", *q);
        }
        PUT("\"");
    } else if (n->type == YAML_SEQUENCE_NODE) {
        PUT("[");
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            if (it != n->data.sequence.items.start) PUT(", ");
            emit(x, yaml_doc_node(x, *it), out, cap, k);
        }
        PUT("]");
    } else {
        PUT("{");
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            if (p != n->data.mapping.pairs.start) PUT(", ");
            emit(x, yaml_doc_node(x, p->key), out, cap, k);
            PUT(": ");
            emit(x, yaml_doc_node(x, p->value), out, cap, k);
        }
        PUT("}");
    }
#undef PUT
}

static int expect_sign(YamlDoc *x, const yaml_node_t *v, int *sign)
{
    static const char *const up[] = {"increase", "greater", "above", NULL};
    static const char *const down[] = {"decrease", "less", "below", NULL};
    char buf[32];
    if (yaml_doc_text(x, v, "claim.expect", buf, sizeof buf)) return -1;
    for (int i = 0; up[i]; i++) {
        if (!strcmp(buf, up[i])) { *sign = 1; return 0; }
        if (!strcmp(buf, down[i])) { *sign = -1; return 0; }
    }
    return yaml_doc_fail(x, v, "claim.expect: expected one of increase, decrease, greater, less, above, "
                "below; got '%s'", buf);
}

static int parse_claim(YamlDoc *x, Claim *c, const yaml_node_t *m)
{
    if (m->type != YAML_MAPPING_NODE) return yaml_doc_fail(x, m, "claim: expected a mapping");
    int have_test = 0, have_expect = 0;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_doc_node(x, p->key), *v = yaml_doc_node(x, p->value);
        char k[64];
        if (yaml_doc_text(x, kn, "claim", k, sizeof k)) return -1;
        int rc = 0;
        if (!strcmp(k, "id")) rc = yaml_doc_text(x, v, "claim.id", c->id, sizeof c->id);
        else if (!strcmp(k, "title")) rc = yaml_doc_text(x, v, "claim.title", c->title, sizeof c->title);
        else if (!strcmp(k, "source")) rc = yaml_doc_text(x, v, "claim.source", c->source, sizeof c->source);
        else if (!strcmp(k, "paper")) rc = yaml_doc_text(x, v, "claim.paper", c->paper, sizeof c->paper);
        else if (!strcmp(k, "how")) rc = yaml_doc_text(x, v, "claim.how", c->how, sizeof c->how);
        else if (!strcmp(k, "metric")) rc = yaml_doc_text(x, v, "claim.metric", c->metric, sizeof c->metric);
        else if (!strcmp(k, "metric_b")) rc = yaml_doc_text(x, v, "claim.metric_b", c->metric_b, sizeof c->metric_b);
        else if (!strcmp(k, "key")) rc = yaml_doc_text(x, v, "claim.key", c->key, sizeof c->key);
        else if (!strcmp(k, "baseline")) rc = yaml_doc_text(x, v, "claim.baseline", c->baseline, sizeof c->baseline);
        else if (!strcmp(k, "treatment")) rc = yaml_doc_text(x, v, "claim.treatment", c->treatment, sizeof c->treatment);
        else if (!strcmp(k, "intervention"))
            rc = yaml_doc_text(x, v, "claim.intervention", c->intervention, sizeof c->intervention);
        else if (!strcmp(k, "reference"))
            rc = yaml_doc_text(x, v, "claim.reference", c->reference, sizeof c->reference);
        else if (!strcmp(k, "ref")) rc = number(x, v, "claim.ref", &c->ref);
        else if (!strcmp(k, "tolerance")) rc = number(x, v, "claim.tolerance", &c->tolerance);
        else if (!strcmp(k, "expect")) { rc = expect_sign(x, v, &c->sign); have_expect = 1; }
        else if (!strcmp(k, "requires_sink")) {
            char b[8];
            rc = yaml_doc_text(x, v, "claim.requires_sink", b, sizeof b);
            if (!rc && strcmp(b, "true") && strcmp(b, "false"))
                rc = yaml_doc_fail(x, v, "claim.requires_sink: expected true or false");
            c->requires_sink = !strcmp(b, "true");
        } else if (!strcmp(k, "test")) {
            char t[32];
            rc = yaml_doc_text(x, v, "claim.test", t, sizeof t);
            int found = -1;
            for (int i = 0; !rc && CLAIM_TEST_NAMES[i]; i++)
                if (!strcmp(t, CLAIM_TEST_NAMES[i])) found = i;
            if (!rc && found < 0)
                rc = yaml_doc_fail(x, v, "claim.test: expected one of trend, difference, shift, paired, "
                          "intervention; got '%s'", t);
            c->test = (ClaimTest)found;
            have_test = 1;
        } else {
            rc = yaml_doc_fail(x, kn, "claim.%s: unknown key (claim keys: id, title, source, paper, how, test, "
                      "metric, metric_b, key, baseline, treatment, intervention, reference, ref, "
                      "expect, requires_sink, tolerance)", k);
        }
        if (rc) return -1;
    }
    if (!c->id[0] || !have_test || !have_expect || !c->metric[0])
        return yaml_doc_fail(x, m, "claim: id, test, metric and expect are required");
    if ((c->test == CLAIM_TREND || c->test == CLAIM_DIFFERENCE) && !c->key[0])
        return yaml_doc_fail(x, m, "claim.key: a %s claim names the swept key", CLAIM_TEST_NAMES[c->test]);
    if (c->test == CLAIM_DIFFERENCE && (!c->baseline[0] || !c->treatment[0]))
        return yaml_doc_fail(x, m, "claim: a difference claim names baseline and treatment values of claim.key");
    if (c->test == CLAIM_PAIRED && !c->metric_b[0])
        return yaml_doc_fail(x, m, "claim.metric_b: a paired claim compares metric with metric_b");
    if (c->test == CLAIM_INTERVENTION && !c->intervention[0])
        return yaml_doc_fail(x, m, "claim.intervention: an intervention claim names the intervention");
    return 0;
}

static int parse_sweep(YamlDoc *x, Claim *c, const yaml_node_t *m, const char *dir)
{
    if (m->type != YAML_MAPPING_NODE) return yaml_doc_fail(x, m, "sweep: expected a mapping");
    size_t k = 0;
    char base[1024] = "";
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_doc_node(x, p->key), *v = yaml_doc_node(x, p->value);
        char key[32];
        if (yaml_doc_text(x, kn, "sweep", key, sizeof key)) return -1;
        if (!strcmp(key, "base")) {
            if (yaml_doc_text(x, v, "sweep.base", base, sizeof base)) return -1;
        } else if (!strcmp(key, "set")) {
            if (sets(x, v, c->sets, &c->n_sets)) return -1;
        } else if (!strcmp(key, "seeds")) {
            if (seeds(x, v, c->seeds, &c->n_seeds)) return -1;
        } else if (!strcmp(key, "grid") || !strcmp(key, "zip") || !strcmp(key, "slurm")) {
            if (k < sizeof c->axes_yaml) k += (size_t)snprintf(c->axes_yaml + k, sizeof c->axes_yaml - k, "%s: ", key);
            emit(x, v, c->axes_yaml, sizeof c->axes_yaml, &k);
            if (k < sizeof c->axes_yaml) k += (size_t)snprintf(c->axes_yaml + k, sizeof c->axes_yaml - k, "\n");
        } else {
            return yaml_doc_fail(x, kn, "sweep.%s: unknown key (sweep keys: base, set, grid, zip, seeds, slurm)", key);
        }
    }
    if (k >= sizeof c->axes_yaml) return yaml_doc_fail(x, m, "sweep: grid/zip too large");
    if (!base[0]) return yaml_doc_fail(x, m, "sweep.base: the base config is required");
    char joined[2048];
    if (base[0] == '/') snprintf(joined, sizeof joined, "%s", base);
    else snprintf(joined, sizeof joined, "%s/%s", dir, base);
    if (!realpath(joined, c->base)) return yaml_doc_fail(x, m, "sweep.base: %s: cannot open", joined);
    return 0;
}

static int parse_scales(YamlDoc *x, Claim *c, const yaml_node_t *m)
{
    if (m->type != YAML_MAPPING_NODE) return yaml_doc_fail(x, m, "scales: expected a mapping of scale names");
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_doc_node(x, p->key), *v = yaml_doc_node(x, p->value);
        if (c->n_scales == CLAIM_MAX_SCALES) return yaml_doc_fail(x, kn, "scales: at most %d", CLAIM_MAX_SCALES);
        ClaimScale *s = &c->scales[c->n_scales++];
        if (yaml_doc_text(x, kn, "scales", s->name, sizeof s->name)) return -1;
        if (v->type != YAML_MAPPING_NODE) return yaml_doc_fail(x, v, "scales.%s: expected {set: ..., seeds: ...}", s->name);
        for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
            yaml_node_t *qk = yaml_doc_node(x, q->key), *qv = yaml_doc_node(x, q->value);
            char key[16];
            if (yaml_doc_text(x, qk, "scale", key, sizeof key)) return -1;
            if (!strcmp(key, "set")) { if (sets(x, qv, s->sets, &s->n_sets)) return -1; }
            else if (!strcmp(key, "seeds")) { if (seeds(x, qv, s->seeds, &s->n_seeds)) return -1; }
            else return yaml_doc_fail(x, qk, "scales.%s.%s: unknown key (set, seeds)", s->name, key);
        }
    }
    return 0;
}

static unsigned long long fnv1a(const char *s, size_t n)
{
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

int claim_load(Claim *c, const char *path, char *err, size_t n_err)
{
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", path);
    char *yaml = NULL;
    size_t len = 0;
    if (yaml_read_checked(path, "claim file", 1, &yaml, &len, err, n_err)) return -1;
    c->hash = fnv1a(yaml, len);
    yaml_parser_t p;
    YamlDoc x = {.path = path, .err = err, .n_err = n_err};
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
    int rc = -1;
    if (!yaml_parser_load(&p, &x.doc)) {
        sl_errf(err, n_err, "%s:%zu:%zu: invalid YAML: %s", path, p.problem_mark.line + 1,
                p.problem_mark.column + 1, p.problem ? p.problem : "parse error");
        yaml_parser_delete(&p);
        free(yaml);
        return -1;
    }
    char dir[512];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    yaml_node_t *root = yaml_document_get_root_node(&x.doc);
    int have_claim = 0, have_sweep = 0;
    if (!root || root->type != YAML_MAPPING_NODE) {
        sl_errf(err, n_err, "%s: expected a mapping with claim, sweep and scales", path);
        goto done;
    }
    for (yaml_node_pair_t *q = root->data.mapping.pairs.start; q < root->data.mapping.pairs.top; q++) {
        yaml_node_t *kn = yaml_doc_node(&x, q->key), *v = yaml_doc_node(&x, q->value);
        char key[32];
        if (yaml_doc_text(&x, kn, "claim file", key, sizeof key)) goto done;
        if (!strcmp(key, "claim")) { if (parse_claim(&x, c, v)) goto done; have_claim = 1; }
        else if (!strcmp(key, "sweep")) { if (parse_sweep(&x, c, v, dir)) goto done; have_sweep = 1; }
        else if (!strcmp(key, "scales")) { if (parse_scales(&x, c, v)) goto done; }
        else { yaml_doc_fail(&x, kn, "%s: unknown key (a claim file has claim, sweep, scales)", key); goto done; }
    }
    if (!have_claim || !have_sweep) {
        sl_errf(err, n_err, "%s: a claim file needs both claim: and sweep:", path);
        goto done;
    }
    rc = 0;
done:
    yaml_document_delete(&x.doc);
    yaml_parser_delete(&p);
    free(yaml);
    return rc;
}

const ClaimScale *claim_scale(const Claim *c, const char *name)
{
    for (int i = 0; i < c->n_scales; i++)
        if (!strcmp(c->scales[i].name, name)) return &c->scales[i];
    return NULL;
}

static void write_value(FILE *f, const char *v)
{
    int plain = *v != 0;
    for (const char *q = v; *q; q++)
        if (!isalnum((unsigned char)*q) && !strchr("._-+/", *q)) plain = 0;
    if (plain) { fputs(v, f); return; }
    fputc('"', f);
    for (const char *q = v; *q; q++) {
        if (*q == '"' || *q == '\\') fputc('\\', f);
        fputc(*q, f);
    }
    fputc('"', f);
}

int claim_write_sweep(const Claim *c, const ClaimScale *scale, const char *run_dir, FILE *f)
{
    fprintf(f, "# written by sinklab reproduce from %s (scale %s, claim file hash %016llx);\n"
               "# the claim's settings, then the scale's. Re-run with: sinklab sweep THIS_FILE\n",
            c->path, scale ? scale->name : "default", c->hash);
    fprintf(f, "base: ");
    write_value(f, c->base);
    fprintf(f, "\nout: ");
    write_value(f, run_dir);
    fprintf(f, "\nset:\n");
    /* A scale's key replaces the claim's value for that key. */
    for (int i = 0; i < c->n_sets; i++) {
        int overridden = 0;
        for (int j = 0; scale && j < scale->n_sets; j++)
            overridden |= !strcmp(scale->sets[j].key, c->sets[i].key);
        if (overridden) continue;
        fprintf(f, "  %s: ", c->sets[i].key);
        write_value(f, c->sets[i].value);
        fputc('\n', f);
    }
    for (int j = 0; scale && j < scale->n_sets; j++) {
        fprintf(f, "  %s: ", scale->sets[j].key);
        write_value(f, scale->sets[j].value);
        fputc('\n', f);
    }
    fputs(c->axes_yaml, f);
    const long long *sd = scale && scale->n_seeds ? scale->seeds : c->seeds;
    int ns = scale && scale->n_seeds ? scale->n_seeds : c->n_seeds;
    if (ns) {
        fprintf(f, "seeds: [");
        for (int i = 0; i < ns; i++) fprintf(f, "%s%lld", i ? ", " : "", sd[i]);
        fprintf(f, "]\n");
    }
    return ferror(f) ? -1 : 0;
}

/* ---------------------------------------------------------------- deciding */

/* Flattens a probe member ([L][H], [L] or a number) into out; returns the count or -1. */
static int flatten(const JsonValue *v, double *out, int cap)
{
    if (!v) return -1;
    if (v->type == JSON_NUMBER) { if (cap < 1) return -1; out[0] = v->number; return 1; }
    if (v->type != JSON_ARRAY) return -1;
    int n = 0;
    for (int i = 0; i < v->n; i++) {
        const JsonValue *e = &v->items[i];
        if (e->type == JSON_NUMBER) { if (n < cap) out[n++] = e->number; }
        else if (e->type == JSON_ARRAY) {
            int k = flatten(e, out + n, cap - n);
            if (k < 0) return -1;
            n += k;
        } else return -1;
    }
    return n;
}

#define MAX_HEADS 4096

/* Splits a metric spec into its operation, member names and target (see claim.h). */
static int parse_spec(const char *spec, char *op, char *a, char *b, double *target)
{
    const char *colon = strchr(spec, ':'), *at = strstr(spec, "@sink");
    op[0] = a[0] = b[0] = 0;
    *target = 0;
    if (at) {
        snprintf(op, 16, "sink");
        snprintf(a, 64, "%.*s", (int)(at - spec), spec);
        snprintf(b, 64, "alpha0");
        return 0;
    }
    if (!colon) {
        snprintf(op, 16, "value");
        snprintf(a, 64, "%s", spec);
        return 0;
    }
    snprintf(op, 16, "%.*s", (int)(colon - spec), spec);
    const char *rest = colon + 1, *sep = strpbrk(rest, ",=");
    snprintf(a, 64, "%.*s", sep ? (int)(sep - rest) : (int)strlen(rest), rest);
    if (sep && *sep == ',') snprintf(b, 64, "%s", sep + 1);
    if (sep && *sep == '=') *target = strtod(sep + 1, NULL);
    return 0;
}

static double reduce(const char *op, const double *xa, int na, const double *xb, int nb, double target)
{
    double acc = 0, best = -INFINITY;
    if (na <= 0) return NAN;
    if (!strcmp(op, "value")) return na == 1 ? xa[0] : NAN;
    if (!strcmp(op, "max") || !strcmp(op, "min")) {
        acc = xa[0];
        for (int i = 1; i < na; i++) acc = !strcmp(op, "max") ? fmax(acc, xa[i]) : fmin(acc, xa[i]);
        return acc;
    }
    if (!strcmp(op, "mean")) {
        for (int i = 0; i < na; i++) acc += xa[i];
        return acc / na;
    }
    if (!strcmp(op, "frac_eq")) {
        for (int i = 0; i < na; i++) acc += xa[i] == target;
        return acc / na;
    }
    if (nb != na) return NAN;
    if (!strcmp(op, "sink")) {
        int arg = 0;
        for (int i = 0; i < nb; i++)
            if (xb[i] > best) { best = xb[i]; arg = i; }
        return xa[arg];
    }
    if (!strcmp(op, "spearman")) return stats_spearman(xa, xb, na);
    return NAN;
}

#define MAX_HEADS 4096

double claim_reduce_probe(const JsonValue *probe, const char *spec)
{
    char op[16], a[64], b[64];
    double target;
    static double xa[MAX_HEADS], xb[MAX_HEADS];
    parse_spec(spec, op, a, b, &target);
    int na = flatten(json_get(probe, a), xa, MAX_HEADS);
    int nb = b[0] ? flatten(json_get(probe, b), xb, MAX_HEADS) : 0;
    if (na <= 0 || nb < 0) return NAN;
    return reduce(op, xa, na, xb, nb, target);
}

/* The reduction a metric spec names, over the last line of metrics.jsonl whose probe holds its
 * members (heavy metrics are only on some lines). */
static double probe_reduction(const RunData *r, const char *spec)
{
    char op[16], a[64], b[64], path[1200];
    double target, v = NAN;
    parse_spec(spec, op, a, b, &target);
    snprintf(path, sizeof path, "%s/metrics.jsonl", r->dir);
    FILE *f = fopen(path, "r");
    if (!f) return NAN;
    char *line = NULL, quoted[80];
    size_t cap = 0;
    ssize_t len;
    snprintf(quoted, sizeof quoted, "\"%s\"", a);
    while ((len = getline(&line, &cap, f)) > 0) {
        if (!strstr(line, quoted)) continue;
        JsonDoc doc;
        char err[256];
        if (json_parse(&doc, line, (size_t)len, path, 1, err, sizeof err)) continue;
        double x = claim_reduce_probe(json_get(doc.root, "probe"), spec);
        if (isfinite(x)) v = x;
        json_free(&doc);
    }
    free(line);
    fclose(f);
    return v;
}

/* A run's value of a metric spec: a scalar series' last value, or a reduction of the probe. */
static double last_value(const RunData *r, const char *metric)
{
    if (strchr(metric, ':') || strstr(metric, "@sink")) return probe_reduction(r, metric);
    const RunSeries *s = run_series(r, metric);
    if (!s) return NAN;
    for (int i = s->n - 1; i >= 0; i--)
        if (isfinite(s->value[i])) return s->value[i];
    return NAN;
}

/* Numeric when both read as numbers (0.001 == 1e-3), else textual. */
static int same_value(const char *a, const char *b)
{
    char *ea, *eb;
    double x = strtod(a, &ea), y = strtod(b, &eb);
    if (ea != a && !*ea && eb != b && !*eb) return x == y;
    size_t la = strlen(a), lb = strlen(b);
    /* config.yaml quotes strings */
    if (la >= 2 && a[0] == '"') return lb == la - 2 && !strncmp(a + 1, b, lb);
    return !strcmp(a, b);
}

static int arm_index(ClaimResult *res, const char *label)
{
    for (int i = 0; i < res->n_arms; i++)
        if (same_value(res->arm_label[i], label)) return i;
    if (res->n_arms == CLAIM_MAX_ARMS) return -1;
    snprintf(res->arm_label[res->n_arms], sizeof res->arm_label[0], "%s", label);
    return res->n_arms++;
}

static int by_number(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Reorders the arms by their label's numeric value. */
static void sort_arms_by_value(ClaimResult *res)
{
    int order[CLAIM_MAX_ARMS];
    for (int i = 0; i < res->n_arms; i++) order[i] = i;
    for (int i = 1; i < res->n_arms; i++)
        for (int j = i; j > 0 && strtod(res->arm_label[order[j - 1]], NULL) >
                                     strtod(res->arm_label[order[j]], NULL); j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    ClaimResult *old = xmalloc(sizeof *old);
    *old = *res;
    for (int i = 0; i < res->n_arms; i++) {
        int o = order[i];
        memcpy(res->arm_label[i], old->arm_label[o], sizeof res->arm_label[0]);
        res->arm_mean[i] = old->arm_mean[o];
        res->arm_lo[i] = old->arm_lo[o];
        res->arm_hi[i] = old->arm_hi[o];
        res->arm_n[i] = old->arm_n[o];
        res->arm_alpha0_max[i] = old->arm_alpha0_max[o];
    }
    free(old);
}

Verdict claim_verdict(const Estimate *e, int sign, double tolerance, char *reason, size_t n)
{
    /* the interval in the predicted direction's units: positive = as predicted */
    double lo = fmin(sign * e->lo, sign * e->hi), hi = fmax(sign * e->lo, sign * e->hi);
    if (!isfinite(e->lo) || !isfinite(e->hi)) {
        snprintf(reason, n, "one run per arm: no interval");
        return VERDICT_INCONCLUSIVE;
    }
    if (lo > 0 && e->p < 0.05) {
        snprintf(reason, n, "the 95%% interval excludes 0 in the predicted direction (p = %.3g)", e->p);
        return VERDICT_REPRODUCED;
    }
    if (hi < 0) {
        snprintf(reason, n, "the effect is opposite to the prediction (95%% interval excludes 0 "
                 "on the other side)");
        return VERDICT_NOT_REPRODUCED;
    }
    if (tolerance > 0 && e->lo > -tolerance && e->hi < tolerance) {
        snprintf(reason, n, "no effect: the 95%% interval lies within +-%g", tolerance);
        return VERDICT_NOT_REPRODUCED;
    }
    /* a point interval at 0: every resample gave no effect, i.e. the runs' values do not differ */
    if (e->lo == 0 && e->hi == 0)
        snprintf(reason, n, "no variation: every resample gives exactly 0 (the runs' values are "
                 "identical where the statistic compares them)");
    else
        snprintf(reason, n, "the 95%% interval includes 0 (p = %.3g)", e->p);
    return VERDICT_INCONCLUSIVE;
}

void claim_decide(const Claim *c, const RunSet *rs, const double *deltas, int n_expected,
                  ClaimResult *res)
{
    memset(res, 0, sizeof *res);
    res->n_expected = n_expected;
    res->est = (Estimate){NAN, NAN, NAN, NAN, 0};
    int n = rs->n;
    double *value = xcalloc((size_t)n + 1, sizeof *value), *xval = xcalloc((size_t)n + 1, sizeof *xval);
    int *arm = xcalloc((size_t)n + 1, sizeof *arm);
    double *uniform = xcalloc((size_t)n + 1, sizeof *uniform);
    int m = 0, nu = 0;
    for (int i = 0; i < n; i++) {
        const RunData *r = &rs->runs[i];
        if (!r->complete) continue;
        res->n_done++;
        double v = c->test == CLAIM_INTERVENTION ? deltas[i] : last_value(r, c->metric);
        if (c->test == CLAIM_PAIRED) v -= last_value(r, c->metric_b);
        const char *label = c->key[0] && run_config(r, c->key) ? run_config(r, c->key) : "all runs";
        int a = arm_index(res, label);
        double u = last_value(r, "uniform_alpha0");
        if (isfinite(u)) uniform[nu++] = u;
        if (!isfinite(v) || a < 0) continue;
        value[m] = v;
        arm[m] = a;
        xval[m] = strtod(label, NULL);
        m++;
    }
    res->uniform_alpha0 = nu ? stats_quantile(uniform, nu, 0.5) : NAN;
    /* per arm: mean and interval of the claim's value, and the median alpha0_max */
    for (int a = 0; a < res->n_arms; a++) {
        double *v = xcalloc((size_t)m + 1, sizeof *v), *s = xcalloc((size_t)n + 1, sizeof *s);
        int k = 0, ks = 0;
        for (int j = 0; j < m; j++)
            if (arm[j] == a) v[k++] = value[j];
        for (int i = 0; i < n; i++) {
            const RunData *r = &rs->runs[i];
            const char *label = c->key[0] && run_config(r, c->key) ? run_config(r, c->key) : "all runs";
            double am = last_value(r, "alpha0_max");
            if (r->complete && same_value(label, res->arm_label[a]) && isfinite(am)) s[ks++] = am;
        }
        Estimate e = stats_shift(v, k, 0, 1);
        res->arm_mean[a] = e.value;
        res->arm_lo[a] = e.lo;
        res->arm_hi[a] = e.hi;
        res->arm_n[a] = k;
        res->arm_alpha0_max[a] = ks ? stats_quantile(s, ks, 0.5) : NAN;
        if (isfinite(res->uniform_alpha0) && res->arm_alpha0_max[a] >= 3 * res->uniform_alpha0)
            res->sink_formed = 1;
        free(v);
        free(s);
    }
    /* Trend arms in x order, so tables and figures read left to right. */
    if (c->test == CLAIM_TREND) sort_arms_by_value(res);
    switch (c->test) {
    case CLAIM_TREND:
        res->est = stats_trend(xval, value, m, c->sign);
        break;
    case CLAIM_DIFFERENCE: {
        double *a = xcalloc((size_t)m + 1, sizeof *a), *b = xcalloc((size_t)m + 1, sizeof *b);
        int na = 0, nb = 0;
        for (int j = 0; j < m; j++) {
            if (same_value(res->arm_label[arm[j]], c->baseline)) a[na++] = value[j];
            else if (same_value(res->arm_label[arm[j]], c->treatment)) b[nb++] = value[j];
        }
        res->est = stats_difference(a, na, b, nb, c->sign);
        free(a);
        free(b);
        break;
    }
    case CLAIM_SHIFT:
        res->est = stats_shift(value, m, c->ref, c->sign);
        break;
    case CLAIM_PAIRED:
    case CLAIM_INTERVENTION:
        res->est = stats_shift(value, m, 0, c->sign);
        break;
    }
    qsort(uniform, (size_t)nu, sizeof *uniform, by_number);
    free(uniform);
    free(value);
    free(xval);
    free(arm);

    /* The verdict, in order of what would make a number meaningless. */
    res->verdict = VERDICT_INCONCLUSIVE;
    if (res->n_done == 0 || res->n_done < res->n_expected) {
        snprintf(res->reason, sizeof res->reason, "%d of %d runs finished (see the sweep's logs)",
                 res->n_done, res->n_expected);
    } else if (c->requires_sink && !res->sink_formed) {
        snprintf(res->reason, sizeof res->reason,
                 "no sink formed at this scale: no arm's median alpha0_max reached 3x uniform "
                 "(%.3f)", 3 * res->uniform_alpha0);
    } else if (!isfinite(res->est.value)) {
        snprintf(res->reason, sizeof res->reason, "the statistic is undefined (constant values or "
                 "missing metric %s)", c->metric);
    } else {
        res->verdict = claim_verdict(&res->est, c->sign, c->tolerance, res->reason,
                                     sizeof res->reason);
    }
}
