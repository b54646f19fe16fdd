/* test_parity.c: sinklab against the independent PyTorch reference (tests/reference/). Every
 * fixture in tests/fixtures holds a run config, a batch, parameters and what the float64
 * reference computed: logits, loss, attention probabilities, sink mass and every gradient. This
 * test loads the config the way a run does, copies the parameters in by name, runs the float32
 * forward and backward and compares all of it; plus a directional gradient check per kind. */
#include "tests/testutil.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/transformer.h"
#include "train/config.h"

#define MIN_FIXTURES 28
#define MAX_FIXTURES 256
#define ATOL 1e-5
#define RTOL 1e-4

/* Looser tolerances, one line of justification each (none needed so far). */
static const struct { const char *fixture; double atol, rtol; const char *why; } LOOSER[] = {
    {NULL, 0, 0, NULL},
};

/* ---- the fixture file (format: tests/reference/README.md) ---- */

enum { DT_F32 = 0, DT_I32 = 1, DT_UTF8 = 2 };

typedef struct {
    char name[128];
    int dtype, ndim;
    int shape[TENSOR_MAX_DIM];
    size_t n;          /* elements (bytes for utf8) */
    void *data;        /* float, int32_t or a NUL-terminated string */
} Record;

typedef struct {
    char path[768];
    Record *recs;
    int n;
} Fixture;

static uint32_t rd_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Returns 0, or -1 with a message naming the file and what is wrong. */
static int fixture_load(Fixture *fx, const char *path, char *err, size_t n_err)
{
    memset(fx, 0, sizeof *fx);
    snprintf(fx->path, sizeof fx->path, "%s", path);
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, n_err, "%s: cannot open", path); return -1; }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(len > 0 ? (size_t)len : 1);
    size_t got = fread(buf, 1, (size_t)len, f);
    fclose(f);
    size_t off = 12;
    if (len < 12 || got != (size_t)len || memcmp(buf, "SLFX", 4) || rd_u32(buf + 4) != 1) {
        snprintf(err, n_err, "%s: not a version-1 sinklab fixture", path);
        free(buf);
        return -1;
    }
    fx->n = (int)rd_u32(buf + 8);
    fx->recs = calloc((size_t)fx->n, sizeof(Record));
#define NEED(k) do { if (off + (k) > (size_t)len) goto truncated; } while (0)
    for (int i = 0; i < fx->n; i++) {
        Record *r = &fx->recs[i];
        NEED(4);
        uint32_t nl = rd_u32(buf + off);
        NEED(4 + nl + 8);
        if (nl >= sizeof r->name) goto truncated;
        memcpy(r->name, buf + off + 4, nl);
        off += 4 + nl;
        r->dtype = (int)rd_u32(buf + off);
        r->ndim = (int)rd_u32(buf + off + 4);
        off += 8;
        if (r->ndim < 1 || r->ndim > TENSOR_MAX_DIM) goto truncated;
        NEED(4 * (size_t)r->ndim);
        r->n = 1;
        for (int d = 0; d < r->ndim; d++) {
            r->shape[d] = (int)rd_u32(buf + off + 4 * d);
            r->n *= (size_t)r->shape[d];
        }
        off += 4 * (size_t)r->ndim;
        size_t bytes = r->dtype == DT_UTF8 ? r->n : 4 * r->n;
        NEED(bytes);
        r->data = calloc(bytes + 1, 1);          /* aligned copy; +1 terminates strings */
        memcpy(r->data, buf + off, bytes);       /* little-endian, as the host */
        off += bytes;
    }
#undef NEED
    free(buf);
    return 0;
truncated:
    snprintf(err, n_err, "%s: truncated or malformed record at byte %zu", path, off);
    free(buf);
    return -1;
}

static void fixture_free(Fixture *fx)
{
    for (int i = 0; i < fx->n; i++) free(fx->recs[i].data);
    free(fx->recs);
    memset(fx, 0, sizeof *fx);
}

static const Record *fx_get(const Fixture *fx, const char *name)
{
    for (int i = 0; i < fx->n; i++)
        if (strcmp(fx->recs[i].name, name) == 0) return &fx->recs[i];
    return NULL;
}

static const Record *fx_need(const Fixture *fx, const char *name, int dtype)
{
    const Record *r = fx_get(fx, name);
    if (!r) fail_msg("%s: record '%s' missing", fx->path, name);
    if (r->dtype != dtype) fail_msg("%s: record '%s' has dtype %d, want %d", fx->path, name,
                                    r->dtype, dtype);
    return r;
}

/* ---- the fixture list ---- */

#define PATH_CAP 768
static char g_paths[MAX_FIXTURES][PATH_CAP];
static int g_n_paths;

static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

static void find_fixtures(void)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/tests/fixtures", test_src());
    g_n_paths = 0;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) && g_n_paths < MAX_FIXTURES) {
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".bin") == 0)
            snprintf(g_paths[g_n_paths++], PATH_CAP, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    qsort(g_paths, (size_t)g_n_paths, sizeof g_paths[0], cmp_str);
}

/* ---- a model and batch built from a fixture ---- */

typedef struct {
    Fixture fx;
    Config cfg;
    Transformer m;
    Batch b;
    Graph g;
    ForwardTrace tr;
} Case;

static void case_setup(Case *k, const char *path)
{
    char err[1024];
    memset(k, 0, sizeof *k);
    if (fixture_load(&k->fx, path, err, sizeof err)) fail_msg("%s", err);
    const Record *yaml = fx_need(&k->fx, "config", DT_UTF8);
    if (config_load_string(&k->cfg, yaml->data, path, err, sizeof err) ||
        config_validate(&k->cfg, err, sizeof err))
        fail_msg("%s: config rejected: %s\n%s", path, err, (const char *)yaml->data);
    if (transformer_init(&k->m, &k->cfg.model, 1, err, sizeof err))
        fail_msg("%s: transformer_init: %s", path, err);

    /* parameters by name, both ways: every model parameter in the fixture, every fixture
     * parameter in the model, shapes equal */
    ParamBlock *pb = &k->m.params;
    for (int i = 0; i < pb->n_params; i++) {
        Param *p = &pb->params[i];
        char key[160];
        snprintf(key, sizeof key, "param:%s", p->name);
        const Record *r = fx_get(&k->fx, key);
        if (!r) fail_msg("%s: sinklab has parameter '%s', the reference does not", path, p->name);
        char a[64], b[64];
        int same = r->ndim == p->t.ndim && r->n == p->t.size;
        for (int d = 0; same && d < r->ndim; d++) same = r->shape[d] == p->t.shape[d];
        if (!same) {
            Tensor rt = {0};
            rt.ndim = r->ndim;
            memcpy(rt.shape, r->shape, sizeof rt.shape);
            fail_msg("%s: parameter '%s': sinklab shape %s, reference %s", path, p->name,
                     tensor_shape_str(&p->t, a, sizeof a), tensor_shape_str(&rt, b, sizeof b));
        }
        memcpy(p->t.data, r->data, p->t.size * sizeof(float));
    }
    for (int i = 0; i < k->fx.n; i++)
        if (strncmp(k->fx.recs[i].name, "param:", 6) == 0 &&
            !params_find(pb, k->fx.recs[i].name + 6))
            fail_msg("%s: the reference has parameter '%s', sinklab does not", path,
                     k->fx.recs[i].name + 6);

    const Record *tok = fx_need(&k->fx, "tokens", DT_I32);
    int B = tok->shape[0], T = tok->shape[1];
    batch_alloc(&k->b, B, T);
    size_t n = (size_t)B * T;
    memcpy(k->b.tokens, tok->data, n * 4);
    memcpy(k->b.targets, fx_need(&k->fx, "targets", DT_I32)->data, n * 4);
    memcpy(k->b.positions, fx_need(&k->fx, "positions", DT_I32)->data, n * 4);
    memcpy(k->b.doc_ids, fx_need(&k->fx, "doc_ids", DT_I32)->data, n * 4);
    memcpy(k->b.loss_mask, fx_need(&k->fx, "loss_mask", DT_F32)->data, n * 4);
    memcpy(k->b.prefix_len, fx_need(&k->fx, "prefix_len", DT_I32)->data, (size_t)B * 4);
    k->tr.keep_attn = 1;
    graph_init(&k->g, transformer_measure_arena(&k->m, B, T, &k->tr, 1), 1 << 16);
}

static void case_free(Case *k)
{
    graph_free(&k->g);
    batch_free(&k->b);
    transformer_free(&k->m);
    fixture_free(&k->fx);
}

/* Forward (and backward when record) on the case's parameters; returns the loss. */
static float case_run(Case *k, int record)
{
    graph_reset(&k->g);
    k->g.record = record;
    params_zero_grad(&k->m.params);
    Tensor *loss = transformer_forward(&k->m, &k->g, &k->b, record ? &k->tr : NULL);
    if (record) graph_backward(&k->g, loss);
    return loss->data[0];
}

/* ---- comparison ---- */

typedef struct {
    double atol, rtol;
    double worst_ratio;           /* max over elements of |got - want| / (atol + rtol |want|) */
    double worst_abs;
    char worst[160];              /* "tensor[i]: got A, want B" at the worst ratio */
    int n_bad;                    /* tensors with an element out of tolerance */
    char first_bad[160];
} Compare;

static void compare(Compare *c, const char *name, const float *got, const float *want, size_t n)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        double tol = c->atol + c->rtol * fabs((double)want[i]);
        double ratio = isnan(d) ? INFINITY : d / tol;
        if (!isnan(d) && d > c->worst_abs) c->worst_abs = d;
        if (ratio > c->worst_ratio) {
            c->worst_ratio = ratio;
            snprintf(c->worst, sizeof c->worst, "%s[%zu]: got %.9g, want %.9g", name, i,
                     (double)got[i], (double)want[i]);
        }
        if (ratio > 1.0) bad = 1;
    }
    if (bad && !c->n_bad++) snprintf(c->first_bad, sizeof c->first_bad, "%s", name);
}

static void compare_record(Compare *c, const Case *k, const char *key, const char *label,
                           const float *got, size_t n)
{
    const Record *r = fx_need(&k->fx, key, DT_F32);
    if (r->n != n) fail_msg("%s: %s has %zu elements in the fixture, sinklab %zu", k->fx.path,
                            label, r->n, n);
    compare(c, label, got, r->data, n);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void test_fixture_matches_reference(void **state)
{
    const char *path = *state;
    Case *k = calloc(1, sizeof *k);
    case_setup(k, path);
    Compare c = {ATOL, RTOL, 0, 0, "(all exact)", 0, ""};
    for (size_t i = 0; LOOSER[i].fixture; i++)
        if (strstr(path, LOOSER[i].fixture)) { c.atol = LOOSER[i].atol; c.rtol = LOOSER[i].rtol; }
    float loss = case_run(k, 1);

    /* the resolved mask must agree exactly before any number can */
    const Record *al = fx_need(&k->fx, "allowed", DT_I32);
    const int32_t *want_al = al->data;
    for (size_t i = 0; i < al->n; i++)
        if ((int)k->tr.allowed[i] != want_al[i])
            fail_msg("%s: allowed[%zu] (b %zu, i %zu, j %zu): sinklab %d, reference %d", path, i,
                     i / ((size_t)k->b.T * k->b.T), i / k->b.T % k->b.T, i % k->b.T,
                     k->tr.allowed[i], want_al[i]);

    const ModelConfig *mc = &k->cfg.model;
    int B = k->b.B, T = k->b.T, H = mc->n_head;
    compare_record(&c, k, "loss", "loss", &loss, 1);
    compare_record(&c, k, "logits", "logits", k->tr.logits->data, k->tr.logits->size);
    char key[160];
    for (int l = 0; l < mc->n_layer; l++) {
        snprintf(key, sizeof key, "attn:%d", l);
        compare_record(&c, k, key, key, k->tr.attn_probs[l], (size_t)B * H * T * T);
        snprintf(key, sizeof key, "sink_mass:%d", l);
        compare_record(&c, k, key, key, k->tr.sink_mass[l], (size_t)B * H * T);
    }
    const ParamBlock *pb = &k->m.params;
    for (int i = 0; i < pb->n_params; i++) {
        snprintf(key, sizeof key, "grad:%s", pb->params[i].name);
        compare_record(&c, k, key, key, pb->params[i].t.grad, pb->params[i].t.size);
    }
    printf("  %-50s worst |err| %.3g, worst err/tol %.3f at %s\n", base_name(path), c.worst_abs,
           c.worst_ratio, c.worst);
    if (c.n_bad)
        fail_msg("%s: %d tensors outside atol %.3g + rtol %.3g (first: %s); worst %s "
                 "(%.2f x tolerance)", path, c.n_bad, c.atol, c.rtol, c.first_bad, c.worst,
                 c.worst_ratio);
    case_free(k);
    free(k);
}

/* ---- directional whole-model gradient check ---- */

/* Central difference of the loss along a unit direction u in parameter space against grad . u.
 * u is half random, half the gradient's own direction, so grad . u is of order |grad| (a purely
 * random u in thousands of dimensions gives a tiny derivative that hides errors). float32
 * forward: eps 1e-2 keeps rounding noise (~1e-6 / eps) and curvature (~eps^2) near 1e-4 of it. */
static void directional_check(ModelKind kind)
{
    static const char *names[] = {"causal", "bidirectional", "prefix_lm"};
    const char *path = NULL;
    for (int i = 0; i < g_n_paths && !path; i++) {
        Fixture fx;
        char err[512];
        if (fixture_load(&fx, g_paths[i], err, sizeof err)) fail_msg("%s", err);
        const char *yaml = fx_need(&fx, "config", DT_UTF8)->data;
        char want[64];
        snprintf(want, sizeof want, "kind: %s\n", names[kind]);
        if (strstr(yaml, want)) path = g_paths[i];
        fixture_free(&fx);
    }
    if (!path) fail_msg("no fixture of kind %s", names[kind]);
    Case *k = calloc(1, sizeof *k);
    case_setup(k, path);
    ParamBlock *pb = &k->m.params;
    size_t n = pb->n;
    float *theta = malloc(n * sizeof(float));
    double *u = malloc(n * sizeof(double));
    memcpy(theta, pb->data, n * sizeof(float));
    case_run(k, 1);
    TestRng r = {0x5eed + (uint64_t)kind};
    double rnorm = 0, gnorm = 0, unorm = 0, dot = 0;
    for (size_t i = 0; i < n; i++) {
        u[i] = trng_uniform(&r, -1.0f, 1.0f);
        rnorm += u[i] * u[i];
        gnorm += (double)pb->grad[i] * pb->grad[i];
    }
    rnorm = sqrt(rnorm);
    gnorm = sqrt(gnorm);
    for (size_t i = 0; i < n; i++) {
        u[i] = u[i] / rnorm + pb->grad[i] / gnorm;
        unorm += u[i] * u[i];
    }
    unorm = sqrt(unorm);
    for (size_t i = 0; i < n; i++) {
        u[i] /= unorm;
        dot += pb->grad[i] * u[i];
    }
    const double eps = 1e-2;
    for (size_t i = 0; i < n; i++) pb->data[i] = (float)(theta[i] + eps * u[i]);
    double lp = case_run(k, 0);
    for (size_t i = 0; i < n; i++) pb->data[i] = (float)(theta[i] - eps * u[i]);
    double lm = case_run(k, 0);
    double fd = (lp - lm) / (2.0 * eps);
    double tol = 1e-2 * fabs(dot) + 1e-4 * gnorm;
    printf("  %s (%s): finite difference %.6g, grad . u %.6g (|grad| %.3g, tolerance %.2g)\n",
           names[kind], base_name(path), fd, dot, gnorm, tol);
    if (!(fabs(fd - dot) <= tol))
        fail_msg("%s: directional derivative: finite difference %.6g vs grad . u %.6g "
                 "(tolerance %.3g)", path, fd, dot, tol);
    free(theta);
    free(u);
    case_free(k);
    free(k);
}

static void test_directional_gradient_causal(void **s) { directional_check(MODEL_CAUSAL); }
static void test_directional_gradient_bidirectional(void **s)
{
    directional_check(MODEL_BIDIRECTIONAL);
}
static void test_directional_gradient_prefix_lm(void **s) { directional_check(MODEL_PREFIX_LM); }

static void test_at_least_28_fixtures(void **s)
{
    if (g_n_paths < MIN_FIXTURES)
        fail_msg("found %d fixtures in %s/tests/fixtures, want at least %d (regenerate with "
                 "/usr/bin/python3 tests/reference/gen_fixtures.py)", g_n_paths, test_src(),
                 MIN_FIXTURES);
}

/* The comparison can fail: a parameter nudged by 1e-3 must show up in the logits. */
static void test_perturbed_weight_is_detected(void **s)
{
    if (!g_n_paths) fail_msg("no fixtures");
    Case *k = calloc(1, sizeof *k);
    case_setup(k, g_paths[0]);
    k->m.blocks[0].wq->data[0] += 1e-3f * 50;
    case_run(k, 1);
    Compare c = {ATOL, RTOL, 0, 0, "(all exact)", 0, ""};
    compare_record(&c, k, "logits", "logits", k->tr.logits->data, k->tr.logits->size);
    compare_record(&c, k, "attn:0", "attn:0", k->tr.attn_probs[0],
                   (size_t)k->b.B * k->cfg.model.n_head * k->b.T * k->b.T);
    printf("  perturbed q weight: worst err/tol %.1f at %s\n", c.worst_ratio, c.worst);
    assert_true(c.n_bad > 0);
    case_free(k);
    free(k);
}

int main(void)
{
    find_fixtures();
    int n = g_n_paths + 5;
    struct CMUnitTest *tests = calloc((size_t)n, sizeof *tests);
    tests[0] = (struct CMUnitTest)cmocka_unit_test(test_at_least_28_fixtures);
    tests[1] = (struct CMUnitTest)cmocka_unit_test(test_perturbed_weight_is_detected);
    tests[2] = (struct CMUnitTest)cmocka_unit_test(test_directional_gradient_causal);
    tests[3] = (struct CMUnitTest)cmocka_unit_test(test_directional_gradient_bidirectional);
    tests[4] = (struct CMUnitTest)cmocka_unit_test(test_directional_gradient_prefix_lm);
    for (int i = 0; i < g_n_paths; i++) {
        tests[5 + i].name = base_name(g_paths[i]);
        tests[5 + i].test_func = test_fixture_matches_reference;
        tests[5 + i].initial_state = g_paths[i];
    }
    int rc = _cmocka_run_group_tests("parity", tests, (size_t)n, NULL, NULL);
    free(tests);
    return rc;
}
