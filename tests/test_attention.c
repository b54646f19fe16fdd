/* test_attention.c: the fused attention op against a naive double-precision reference written
 * from the README ("Parameters and conventions") (every normalizer x sink x mask x ALiBi), finite-difference gradients of
 * every input and sink parameter, the invariants the sink experiments rely on, ALiBi slopes and
 * RoPE. */
#include "tests/testutil.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/attention.h"
#include "model/mask.h"

/* ---- the reference: the math of the README ("Parameters and conventions") "Attention", written directly, in double ---- */

typedef struct {
    int B, T, H, D;
    Normalizer norm;
    double scale, sig_bias;
    const uint8_t *allowed;
    const int32_t *pos;
    const float *slopes;          /* NULL: no ALiBi */
    int has_k, has_v, has_logit;
} RefCfg;

static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* out (B, T, H*D); probs (B, H, T, T) and mass (B, H, T) may be NULL.
 * sk, sv: (H, D); sl: (H). */
static void ref_attention(double *out, double *probs, double *mass, const RefCfg *r,
                          const double *q, const double *k, const double *v,
                          const double *sk, const double *sv, const double *sl)
{
    int B = r->B, T = r->T, H = r->H, D = r->D, C = H * D;
    /* w[0..T-1]: data keys, w[T]: sink key, w[T+1]: sink logit, w[T+2]: softmax1's fixed term */
    double w[512 + 3], sc[512 + 3];
    int on[512 + 3];
    assert_true(T <= 512);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                const double *qi = q + ((size_t)b * T + i) * C + h * D;
                for (int j = 0; j < T + 3; j++) on[j] = 0;
                for (int j = 0; j < T; j++) {
                    if (!r->allowed[((size_t)b * T + i) * T + j]) continue;
                    const double *kj = k + ((size_t)b * T + j) * C + h * D;
                    double s = 0;
                    for (int d = 0; d < D; d++) s += qi[d] * kj[d];
                    s /= sqrt((double)D);
                    if (r->slopes)
                        s -= r->slopes[h] * fabs((double)r->pos[b * T + i] - r->pos[b * T + j]);
                    sc[j] = s;
                    on[j] = 1;
                }
                if (r->has_k) {
                    double s = 0;
                    for (int d = 0; d < D; d++) s += qi[d] * sk[h * D + d];
                    sc[T] = s / sqrt((double)D);
                    on[T] = 1;
                }
                if (r->has_logit) { sc[T + 1] = sl[h]; on[T + 1] = 1; }
                if (r->norm == ATTN_SOFTMAX1) { sc[T + 2] = 0.0; on[T + 2] = 1; }
                double z = 0;
                int n_keys = 0;   /* relu divides by the allowed keys, sink key included */
                for (int t = 0; t <= T; t++) n_keys += on[t];
                for (int t = 0; t < T + 3; t++) {
                    w[t] = 0;
                    if (!on[t]) continue;
                    switch (r->norm) {
                    case ATTN_RELU: w[t] = sc[t] > 0 ? sc[t] : 0; break;
                    case ATTN_SIGMOID:
                    case ATTN_SIGMOID_NORM: w[t] = ref_sigmoid(sc[t] + r->sig_bias); break;
                    default: w[t] = exp(sc[t]); break;
                    }
                    z += w[t];
                }
                double f = 1.0;
                if (r->norm == ATTN_SOFTMAX || r->norm == ATTN_SOFTMAX1) f = 1.0 / z;
                if (r->norm == ATTN_SCALED) f = r->scale / z;
                if (r->norm == ATTN_SIGMOID_NORM) f = 1.0 / z;
                if (r->norm == ATTN_RELU) f = n_keys ? 1.0 / n_keys : 0.0;
                for (int t = 0; t < T + 3; t++) w[t] *= f;
                double *o = out + ((size_t)b * T + i) * C + h * D;
                for (int d = 0; d < D; d++) {
                    double acc = 0;
                    for (int j = 0; j < T; j++)
                        acc += w[j] * v[((size_t)b * T + j) * C + h * D + d];
                    if (r->has_v) acc += w[T] * sv[h * D + d];
                    o[d] = acc;
                }
                size_t row = ((size_t)b * H + h) * T + i;
                if (probs)
                    for (int j = 0; j < T; j++) probs[row * T + j] = w[j];
                if (mass) mass[row] = w[T] + w[T + 1] + w[T + 2];
            }
}

/* ---- a test case: shapes, inputs, mask, and both implementations ----------------------- */

enum { MK_CAUSAL, MK_BIDIR, MK_WINDOW, MK_DOC_PAD, MK_EDITS, MK_PREFIX, MK_RANDOM, MK_COUNT };
static const char *mk_name[] = {"causal", "bidir", "window", "doc+pad", "edits", "prefix",
                                "random"};
static const char *norm_name[] = {"softmax", "softmax1", "scaled", "sigmoid", "sigmoid_norm",
                                  "relu"};
#define N_NORMALIZERS 6
static const char *sink_name[] = {"none", "logit", "k_bias", "kv_bias", "token"};

typedef struct {
    int B, T, H, D, C;
    AttentionSpec spec;
    int mask, alibi;
    float *q, *k, *v, *sk, *sv, *sl, *proj;      /* proj: (B, T, C), the loss L = sum out*proj */
    uint8_t *allowed;
    int32_t *pos, *doc;
    float slopes[16];
} Case;

static void case_build_mask(Case *c, TestRng *rng)
{
    int B = c->B, T = c->T;
    MaskSpec ms;
    memset(&ms, 0, sizeof ms);
    ModelKind kind = MODEL_CAUSAL;
    int32_t prefix[8];
    for (int b = 0; b < B; b++) prefix[b] = trng_int(rng, 0, T);
    for (int t = 0; t < B * T; t++) c->doc[t] = t % T < T / 2 ? 0 : 1;
    switch (c->mask) {
    case MK_BIDIR: kind = MODEL_BIDIRECTIONAL; break;
    case MK_WINDOW:
        ms.window = 2 + (T % 3);
        kind = T % 2 ? MODEL_BIDIRECTIONAL : MODEL_CAUSAL;
        break;
    case MK_DOC_PAD:
        kind = MODEL_BIDIRECTIONAL;
        ms.doc_mask = 1;
        c->doc[B * T - 1] = -1;              /* the last token of the last sequence is PAD */
        break;
    case MK_EDITS:
        ms.n_edits = 3;
        ms.edits[0] = (MaskEdit){EDIT_ISOLATE, T / 2};
        ms.edits[1] = (MaskEdit){EDIT_RESET, (2 * T) / 3};
        ms.edits[2] = (MaskEdit){EDIT_BLOCK_KEY, 0};
        break;
    case MK_PREFIX: kind = MODEL_PREFIX_LM; break;
    default: break;
    }
    if (c->mask == MK_RANDOM) {
        /* Any table the kernel may be handed: random keys, every row keeps itself. */
        for (int b = 0; b < B; b++)
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++)
                    c->allowed[((size_t)b * T + i) * T + j] = i == j || trng_int(rng, 0, 2) == 0;
        return;
    }
    mask_build(c->allowed, kind, &ms, c->doc, prefix, B, T);
}

static void case_init(Case *c, TestRng *rng, int B, int T, int H, int D, Normalizer norm,
                      SinkKind sink, int mask, int alibi)
{
    memset(c, 0, sizeof *c);
    c->B = B; c->T = T; c->H = H; c->D = D; c->C = H * D;
    c->spec.normalizer = norm;
    c->spec.scale = 0.75f;
    c->spec.sigmoid_bias = -1.0f;
    c->spec.sink = sink;
    c->mask = mask;
    c->alibi = alibi;
    size_t n = (size_t)B * T * c->C;
    c->q = malloc(n * sizeof(float));
    c->k = malloc(n * sizeof(float));
    c->v = malloc(n * sizeof(float));
    c->proj = malloc(n * sizeof(float));
    c->sk = malloc((size_t)c->C * sizeof(float));
    c->sv = malloc((size_t)c->C * sizeof(float));
    c->sl = malloc((size_t)H * sizeof(float));
    c->allowed = malloc((size_t)B * T * T);
    c->pos = malloc((size_t)B * T * sizeof(int32_t));
    c->doc = malloc((size_t)B * T * sizeof(int32_t));
    /* Scores of a few units so the weights are far from uniform. */
    trng_fill(rng, c->q, n, -1.5f, 1.5f);
    trng_fill(rng, c->k, n, -1.5f, 1.5f);
    trng_fill(rng, c->v, n, -1.0f, 1.0f);
    trng_fill(rng, c->proj, n, -1.0f, 1.0f);
    trng_fill(rng, c->sk, (size_t)c->C, -1.5f, 1.5f);
    trng_fill(rng, c->sv, (size_t)c->C, -1.0f, 1.0f);
    trng_fill(rng, c->sl, (size_t)H, -1.0f, 1.0f);
    /* Non-monotone positions with resets, as packing and interventions produce. */
    for (int t = 0; t < B * T; t++) c->pos[t] = trng_int(rng, 0, 9);
    alibi_slopes(c->slopes, H);
    case_build_mask(c, rng);
}

static void case_free(Case *c)
{
    free(c->q); free(c->k); free(c->v); free(c->proj); free(c->sk); free(c->sv); free(c->sl);
    free(c->allowed); free(c->pos); free(c->doc);
}

static int has_k(const Case *c) { return c->spec.sink >= SINK_K_BIAS; }
static int has_v(const Case *c) { return c->spec.sink >= SINK_KV_BIAS; }
static int has_logit(const Case *c) { return c->spec.sink == SINK_LOGIT; }

static RefCfg case_ref_cfg(const Case *c)
{
    RefCfg r = {c->B, c->T, c->H, c->D, c->spec.normalizer, c->spec.scale, c->spec.sigmoid_bias,
                c->allowed, c->pos, c->alibi ? c->slopes : NULL, has_k(c), has_v(c),
                has_logit(c)};
    return r;
}

/* The kernel's results: out, probs, mass, and the gradients of L = sum(out * proj). */
typedef struct {
    float *out, *probs, *mass, *dq, *dk, *dv, *dsk, *dsv, *dsl;
} KernelResult;

static Tensor *tensor_from(Graph *g, int ndim, const int *shape, const float *src, int grad)
{
    Tensor *t = graph_constant(g, ndim, shape);
    memcpy(t->data, src, t->size * sizeof(float));
    if (grad) graph_require_grad(g, t);
    return t;
}

static void kernel_run(KernelResult *kr, const Case *c, int backward)
{
    Graph g;
    graph_init(&g, (size_t)4 << 20, 16);
    int shp[3] = {c->B, c->T, c->C}, hd[2] = {c->H, c->D};
    size_t n = (size_t)c->B * c->T * c->C, nr = (size_t)c->B * c->H * c->T;
    Tensor *q = tensor_from(&g, 3, shp, c->q, backward);
    Tensor *k = tensor_from(&g, 3, shp, c->k, backward);
    Tensor *v = tensor_from(&g, 3, shp, c->v, backward);
    AttentionArgs a;
    memset(&a, 0, sizeof a);
    a.spec = &c->spec;
    a.allowed = c->allowed;
    a.positions = c->pos;
    a.alibi_slopes = c->alibi ? c->slopes : NULL;
    if (has_k(c)) a.sink_k = tensor_from(&g, 2, hd, c->sk, backward);
    if (has_v(c)) a.sink_v = tensor_from(&g, 2, hd, c->sv, backward);
    if (has_logit(c)) a.sink_logit = tensor_from(&g, 1, &c->H, c->sl, backward);
    memset(kr, 0, sizeof *kr);
    kr->probs = calloc(nr * c->T, sizeof(float));
    kr->mass = calloc(nr, sizeof(float));
    a.keep_probs = kr->probs;
    a.keep_sink_mass = kr->mass;
    Tensor *out = op_attention(&g, q, k, v, c->H, &a);
    kr->out = malloc(n * sizeof(float));
    memcpy(kr->out, out->data, n * sizeof(float));
    if (backward) {
        assert_non_null(out->grad);
        assert_int_equal(g.n_nodes, 1);
        memcpy(out->grad, c->proj, n * sizeof(float));
        g.nodes[0].backward(&g.nodes[0]);
        kr->dq = malloc(n * sizeof(float)); memcpy(kr->dq, q->grad, n * sizeof(float));
        kr->dk = malloc(n * sizeof(float)); memcpy(kr->dk, k->grad, n * sizeof(float));
        kr->dv = malloc(n * sizeof(float)); memcpy(kr->dv, v->grad, n * sizeof(float));
        kr->dsk = calloc((size_t)c->C, sizeof(float));
        kr->dsv = calloc((size_t)c->C, sizeof(float));
        kr->dsl = calloc((size_t)c->H, sizeof(float));
        if (a.sink_k) memcpy(kr->dsk, a.sink_k->grad, (size_t)c->C * sizeof(float));
        if (a.sink_v) memcpy(kr->dsv, a.sink_v->grad, (size_t)c->C * sizeof(float));
        if (a.sink_logit) memcpy(kr->dsl, a.sink_logit->grad, (size_t)c->H * sizeof(float));
    }
    graph_free(&g);
}

static void kernel_result_free(KernelResult *kr)
{
    free(kr->out); free(kr->probs); free(kr->mass); free(kr->dq); free(kr->dk); free(kr->dv);
    free(kr->dsk); free(kr->dsv); free(kr->dsl);
}

/* The reference on the case's inputs promoted to double, with an optional perturbation. */
typedef struct {
    double *q, *k, *v, *sk, *sv, *sl, *out;
} RefInputs;

static double *to_double(const float *x, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static void ref_inputs_init(RefInputs *ri, const Case *c)
{
    size_t n = (size_t)c->B * c->T * c->C;
    ri->q = to_double(c->q, n);
    ri->k = to_double(c->k, n);
    ri->v = to_double(c->v, n);
    ri->sk = to_double(c->sk, (size_t)c->C);
    ri->sv = to_double(c->sv, (size_t)c->C);
    ri->sl = to_double(c->sl, (size_t)c->H);
    ri->out = malloc(n * sizeof(double));
}

static void ref_inputs_free(RefInputs *ri)
{
    free(ri->q); free(ri->k); free(ri->v); free(ri->sk); free(ri->sv); free(ri->sl); free(ri->out);
}

static double ref_loss(RefInputs *ri, const Case *c)
{
    RefCfg r = case_ref_cfg(c);
    ref_attention(ri->out, NULL, NULL, &r, ri->q, ri->k, ri->v, ri->sk, ri->sv, ri->sl);
    double L = 0;
    for (size_t i = 0; i < (size_t)c->B * c->T * c->C; i++) L += ri->out[i] * c->proj[i];
    return L;
}

/* Central differences in double on the reference: step 1e-5 gives truncation ~1e-10 and
 * round-off ~1e-11, far below the float32 kernel's error. */
static void ref_grad(float *grad, double *x, size_t n, RefInputs *ri, const Case *c)
{
    const double h = 1e-5;
    for (size_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + h;
        double lp = ref_loss(ri, c);
        x[i] = x0 - h;
        double lm = ref_loss(ri, c);
        x[i] = x0;
        grad[i] = (float)((lp - lm) / (2 * h));
    }
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || isnan(d)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

static void case_label(char *buf, size_t cap, const Case *c, const char *tensor)
{
    snprintf(buf, cap, "%s/%s/%s/%s B%d T%d H%d D%d: %s", norm_name[c->spec.normalizer],
             sink_name[c->spec.sink], mk_name[c->mask], c->alibi ? "alibi" : "noalibi", c->B,
             c->T, c->H, c->D, tensor);
}

/* Tolerances (float32 kernel vs double reference): the measured worst errors (printed by the
 * sweeps) are ~1e-7 for softmax forms and ~1e-6 for unnormalised sigmoid outputs, which are sums
 * of up to T terms of size up to 1; the tolerances leave ~10x room for float32 round-off. */
#define FWD_ATOL 2e-6
#define FWD_RTOL 1e-5
#define GRAD_ATOL 2e-6
#define GRAD_RTOL 1e-5

static int variant_valid(Normalizer norm, SinkKind sink)
{
    return !((norm == ATTN_SIGMOID || norm == ATTN_RELU) && sink == SINK_LOGIT);
}

/* Worst errors per normalizer x sink, reported at the end of each sweep. */
static double worst_fwd[N_NORMALIZERS][5], worst_grad[N_NORMALIZERS][5];

static void report_worst(const char *what, double w[N_NORMALIZERS][5])
{
    for (int n = 0; n < N_NORMALIZERS; n++)
        for (int s = 0; s < 4; s++)
            if (variant_valid((Normalizer)n, (SinkKind)s))
                print_message("  %-13s %-8s %-12s max |err| %.2e\n", what, sink_name[s],
                              norm_name[n], w[n][s]);
}

/* ---- forward against the reference ------------------------------------------------------ */

static void check_forward(const Case *c, double atol, double rtol)
{
    KernelResult kr;
    kernel_run(&kr, c, 0);
    RefInputs ri;
    ref_inputs_init(&ri, c);
    size_t n = (size_t)c->B * c->T * c->C, nr = (size_t)c->B * c->H * c->T;
    double *probs = malloc(nr * c->T * sizeof(double)), *mass = malloc(nr * sizeof(double));
    RefCfg r = case_ref_cfg(c);
    ref_attention(ri.out, probs, mass, &r, ri.q, ri.k, ri.v, ri.sk, ri.sv, ri.sl);
    float *fo = malloc(n * sizeof(float)), *fp = malloc(nr * c->T * sizeof(float));
    float *fm = malloc(nr * sizeof(float));
    for (size_t i = 0; i < n; i++) fo[i] = (float)ri.out[i];
    for (size_t i = 0; i < nr * c->T; i++) fp[i] = (float)probs[i];
    for (size_t i = 0; i < nr; i++) fm[i] = (float)mass[i];
    char lab[160];
    case_label(lab, sizeof lab, c, "out");
    assert_close(lab, kr.out, fo, n, atol, rtol);
    case_label(lab, sizeof lab, c, "keep_probs");
    assert_close(lab, kr.probs, fp, nr * c->T, atol, rtol);
    case_label(lab, sizeof lab, c, "keep_sink_mass");
    assert_close(lab, kr.mass, fm, nr, atol, rtol);
    double e = fmax(max_abs_diff(kr.out, fo, n), max_abs_diff(kr.probs, fp, nr * c->T));
    e = fmax(e, max_abs_diff(kr.mass, fm, nr));
    double *w = &worst_fwd[c->spec.normalizer][c->spec.sink];
    if (e > *w) *w = e;
    free(probs); free(mass); free(fo); free(fp); free(fm);
    ref_inputs_free(&ri);
    kernel_result_free(&kr);
}

static void test_forward_matches_reference_every_variant(void **state)
{
    (void)state;
    TestRng rng = {101};
    memset(worst_fwd, 0, sizeof worst_fwd);
    int shapes[][4] = {{1, 1, 1, 1}, {2, 7, 2, 3}, {1, 13, 3, 5}, {3, 33, 2, 16}, {2, 64, 1, 8}};
    for (int n = 0; n < N_NORMALIZERS; n++)
        for (int s = 0; s < 4; s++)
            for (int m = 0; m < MK_COUNT; m++)
                for (int al = 0; al < 2; al++) {
                    if (!variant_valid((Normalizer)n, (SinkKind)s)) continue;
                    int *sh = shapes[(n + s + m + al) % 5];
                    Case c;
                    case_init(&c, &rng, sh[0], sh[1], sh[2], sh[3], (Normalizer)n, (SinkKind)s,
                              m, al);
                    check_forward(&c, FWD_ATOL, FWD_RTOL);
                    case_free(&c);
                }
    print_message("forward vs double reference (tol atol %.0e + rtol %.0e):\n", FWD_ATOL,
                  FWD_RTOL);
    report_worst("forward", worst_fwd);
}

/* ---- gradients against finite differences of the reference ------------------------------ */

static void check_grad_tensor(const Case *c, const char *name, const float *got, double *x,
                              size_t n, RefInputs *ri, double *worst, double atol, double rtol)
{
    float *fd = malloc((n ? n : 1) * sizeof(float));
    ref_grad(fd, x, n, ri, c);
    char lab[160];
    case_label(lab, sizeof lab, c, name);
    assert_close(lab, got, fd, n, atol, rtol);
    double e = max_abs_diff(got, fd, n);
    if (e > *worst) *worst = e;
    free(fd);
}

static void check_gradients(const Case *c, double atol, double rtol)
{
    KernelResult kr;
    kernel_run(&kr, c, 1);
    RefInputs ri;
    ref_inputs_init(&ri, c);
    size_t n = (size_t)c->B * c->T * c->C;
    double *w = &worst_grad[c->spec.normalizer][c->spec.sink];
    check_grad_tensor(c, "dq", kr.dq, ri.q, n, &ri, w, atol, rtol);
    check_grad_tensor(c, "dk", kr.dk, ri.k, n, &ri, w, atol, rtol);
    check_grad_tensor(c, "dv", kr.dv, ri.v, n, &ri, w, atol, rtol);
    if (has_k(c)) check_grad_tensor(c, "dsink_k", kr.dsk, ri.sk, (size_t)c->C, &ri, w, atol, rtol);
    if (has_v(c)) check_grad_tensor(c, "dsink_v", kr.dsv, ri.sv, (size_t)c->C, &ri, w, atol, rtol);
    if (has_logit(c))
        check_grad_tensor(c, "dsink_logit", kr.dsl, ri.sl, (size_t)c->H, &ri, w, atol, rtol);
    ref_inputs_free(&ri);
    kernel_result_free(&kr);
}

static void test_gradients_match_finite_differences_every_variant(void **state)
{
    (void)state;
    TestRng rng = {202};
    memset(worst_grad, 0, sizeof worst_grad);
    /* T = 41 spans two query tiles of the kernel (ATTN_TILE 32), one of them partial. */
    int shapes[][4] = {{1, 1, 1, 2}, {2, 5, 2, 3}, {1, 11, 3, 2}, {2, 9, 2, 5}, {3, 3, 2, 1},
                       {1, 41, 2, 3}};
    for (int n = 0; n < N_NORMALIZERS; n++)
        for (int s = 0; s < 4; s++)
            for (int m = 0; m < MK_COUNT; m++)
                for (int al = 0; al < 2; al++) {
                    if (!variant_valid((Normalizer)n, (SinkKind)s)) continue;
                    int *sh = shapes[(n + 2 * s + m + al) % 6];
                    Case c;
                    case_init(&c, &rng, sh[0], sh[1], sh[2], sh[3], (Normalizer)n, (SinkKind)s,
                              m, al);
                    check_gradients(&c, GRAD_ATOL, GRAD_RTOL);
                    case_free(&c);
                }
    print_message("gradients vs central differences of the reference (tol atol %.0e + rtol "
                  "%.0e):\n", GRAD_ATOL, GRAD_RTOL);
    report_worst("gradient", worst_grad);
}

/* ---- invariants --------------------------------------------------------------------------- */

/* A zero learned key scores 0 and a zero value adds nothing: exactly softmax1's exp(0) term. */
static void test_kv_bias_zero_equals_softmax1(void **state)
{
    (void)state;
    TestRng rng = {303};
    for (int m = 0; m < MK_COUNT; m++) {
        Case a, b;
        case_init(&a, &rng, 2, 9, 2, 4, ATTN_SOFTMAX, SINK_KV_BIAS, m, m % 2);
        memset(a.sk, 0, (size_t)a.C * sizeof(float));
        memset(a.sv, 0, (size_t)a.C * sizeof(float));
        case_init(&b, &rng, 2, 9, 2, 4, ATTN_SOFTMAX1, SINK_NONE, m, m % 2);
        memcpy(b.q, a.q, (size_t)a.B * a.T * a.C * sizeof(float));
        memcpy(b.k, a.k, (size_t)a.B * a.T * a.C * sizeof(float));
        memcpy(b.v, a.v, (size_t)a.B * a.T * a.C * sizeof(float));
        memcpy(b.proj, a.proj, (size_t)a.B * a.T * a.C * sizeof(float));
        memcpy(b.allowed, a.allowed, (size_t)a.B * a.T * a.T);
        memcpy(b.pos, a.pos, (size_t)a.B * a.T * sizeof(int32_t));
        KernelResult ka, kb;
        kernel_run(&ka, &a, 1);
        kernel_run(&kb, &b, 1);
        size_t n = (size_t)a.B * a.T * a.C;
        assert_close("kv_bias(0,0) out vs softmax1", ka.out, kb.out, n, 1e-7, 1e-6);
        assert_close("kv_bias(0,0) sink mass vs softmax1", ka.mass, kb.mass,
                     (size_t)a.B * a.H * a.T, 1e-7, 1e-6);
        assert_close("kv_bias(0,0) dq vs softmax1", ka.dq, kb.dq, n, 1e-6, 1e-5);
        assert_close("kv_bias(0,0) dk vs softmax1", ka.dk, kb.dk, n, 1e-6, 1e-5);
        assert_close("kv_bias(0,0) dv vs softmax1", ka.dv, kb.dv, n, 1e-6, 1e-5);
        kernel_result_free(&ka);
        kernel_result_free(&kb);
        case_free(&a);
        case_free(&b);
    }
}

/* k_bias's key has value 0: with every value equal to u, each output is (1 - sink mass) u, and
 * the sink takes real mass (so the output is strictly shorter than u). */
static void test_k_bias_adds_no_value_mass(void **state)
{
    (void)state;
    TestRng rng = {404};
    Normalizer norms[] = {ATTN_SOFTMAX, ATTN_SOFTMAX1, ATTN_SCALED, ATTN_SIGMOID_NORM};
    for (int ni = 0; ni < 4; ni++) {
        Case c;
        case_init(&c, &rng, 2, 11, 2, 4, norms[ni], SINK_K_BIAS, MK_CAUSAL, 1);
        float u[4] = {0.5f, -1.0f, 0.25f, 2.0f};
        for (int t = 0; t < c.B * c.T * c.H; t++) memcpy(c.v + (size_t)t * 4, u, sizeof u);
        KernelResult kr;
        kernel_run(&kr, &c, 0);
        for (int b = 0; b < c.B; b++)
            for (int h = 0; h < c.H; h++)
                for (int i = 0; i < c.T; i++) {
                    size_t row = ((size_t)b * c.H + h) * c.T + i;
                    double data_mass = 0;
                    for (int j = 0; j < c.T; j++) data_mass += kr.probs[row * c.T + j];
                    double total = norms[ni] == ATTN_SCALED ? c.spec.scale : 1.0;
                    if (!(kr.mass[row] > 0.0f))
                        fail_msg("%s k_bias: sink mass[%zu] = %g, want > 0", norm_name[norms[ni]],
                                 row, (double)kr.mass[row]);
                    for (int d = 0; d < 4; d++) {
                        double got = kr.out[((size_t)b * c.T + i) * c.C + h * 4 + d];
                        double want = (total - kr.mass[row]) * u[d];
                        if (fabs(got - want) > 1e-5 || fabs(got - data_mass * u[d]) > 1e-5)
                            fail_msg("%s k_bias: out[b%d,t%d,h%d,d%d] = %g, want (1 - mass) u = "
                                     "%g (tol 1e-5)", norm_name[norms[ni]], b, i, h, d, got, want);
                    }
                }
        kernel_result_free(&kr);
        case_free(&c);
    }
}

/* Softmax variants: data probabilities plus the sink mass sum to 1 (to scale for scaled). */
static void test_probs_plus_sink_mass_sum_to_one(void **state)
{
    (void)state;
    TestRng rng = {505};
    for (int n = ATTN_SOFTMAX; n <= ATTN_SCALED; n++)
        for (int s = 0; s < 4; s++)
            for (int m = 0; m < MK_COUNT; m++) {
                Case c;
                case_init(&c, &rng, 2, 10, 2, 4, (Normalizer)n, (SinkKind)s, m, 1);
                KernelResult kr;
                kernel_run(&kr, &c, 0);
                double total = n == ATTN_SCALED ? c.spec.scale : 1.0;
                for (size_t row = 0; row < (size_t)c.B * c.H * c.T; row++) {
                    double sum = kr.mass[row];
                    for (int j = 0; j < c.T; j++) sum += kr.probs[row * c.T + j];
                    if (fabs(sum - total) > 1e-6)
                        fail_msg("%s/%s/%s row %zu: probs + sink mass = %.9g, want %g (tol 1e-6)",
                                 norm_name[n], sink_name[s], mk_name[m], row, sum, total);
                }
                kernel_result_free(&kr);
                case_free(&c);
            }
}

/* Causal rows never read the future: changing q, k, v after t leaves outputs <= t bit-identical,
 * for every normalizer and sink. */
static void test_causal_output_ignores_future_bitwise(void **state)
{
    (void)state;
    TestRng rng = {606};
    for (int n = 0; n < N_NORMALIZERS; n++)
        for (int s = 0; s < 4; s++) {
            if (!variant_valid((Normalizer)n, (SinkKind)s)) continue;
            Case c;
            case_init(&c, &rng, 2, 17, 2, 8, (Normalizer)n, (SinkKind)s, MK_CAUSAL, 1);
            KernelResult a, b;
            kernel_run(&a, &c, 0);
            int t = 6;
            for (int bb = 0; bb < c.B; bb++) {
                size_t off = ((size_t)bb * c.T + t + 1) * c.C, len = (size_t)(c.T - t - 1) * c.C;
                trng_fill(&rng, c.q + off, len, -3.0f, 3.0f);
                trng_fill(&rng, c.k + off, len, -3.0f, 3.0f);
                trng_fill(&rng, c.v + off, len, -3.0f, 3.0f);
            }
            kernel_run(&b, &c, 0);
            for (int bb = 0; bb < c.B; bb++)
                for (int i = 0; i <= t; i++)
                    for (int x = 0; x < c.C; x++) {
                        size_t at = ((size_t)bb * c.T + i) * c.C + x;
                        if (memcmp(&a.out[at], &b.out[at], sizeof(float)) != 0)
                            fail_msg("%s/%s causal out[b%d,t%d,%d] changed from %.9g to %.9g "
                                     "when only tokens > %d changed", norm_name[n], sink_name[s],
                                     bb, i, x, (double)a.out[at], (double)b.out[at], t);
                    }
            kernel_result_free(&a);
            kernel_result_free(&b);
            case_free(&c);
        }
}

/* Sequences of a batch do not mix: changing sequence 1 leaves sequence 0 bit-identical, in
 * outputs and in the gradients of sequence 0's inputs. */
static void test_batch_rows_independent(void **state)
{
    (void)state;
    TestRng rng = {707};
    Case c;
    case_init(&c, &rng, 3, 12, 2, 4, ATTN_SOFTMAX1, SINK_KV_BIAS, MK_BIDIR, 1);
    KernelResult a, b;
    kernel_run(&a, &c, 1);
    size_t seq = (size_t)c.T * c.C;
    trng_fill(&rng, c.q + seq, seq, -2.0f, 2.0f);
    trng_fill(&rng, c.k + seq, seq, -2.0f, 2.0f);
    trng_fill(&rng, c.v + seq, seq, -2.0f, 2.0f);
    kernel_run(&b, &c, 1);
    assert_memory_equal(a.out, b.out, seq * sizeof(float));
    assert_memory_equal(a.out + 2 * seq, b.out + 2 * seq, seq * sizeof(float));
    assert_memory_equal(a.dq, b.dq, seq * sizeof(float));
    assert_memory_equal(a.dk, b.dk, seq * sizeof(float));
    assert_memory_equal(a.dv, b.dv, seq * sizeof(float));
    kernel_result_free(&a);
    kernel_result_free(&b);
    case_free(&c);
}

static void assert_results_equal(const KernelResult *a, const KernelResult *b, const Case *c,
                                 double rtol, const char *what)
{
    size_t n = (size_t)c->B * c->T * c->C;
    char lab[96];
    snprintf(lab, sizeof lab, "%s out", what);
    assert_close(lab, a->out, b->out, n, 0, rtol);
    snprintf(lab, sizeof lab, "%s dq", what);
    assert_close(lab, a->dq, b->dq, n, 0, rtol);
    snprintf(lab, sizeof lab, "%s dk", what);
    assert_close(lab, a->dk, b->dk, n, 0, rtol);
    snprintf(lab, sizeof lab, "%s dv", what);
    assert_close(lab, a->dv, b->dv, n, 0, rtol);
    snprintf(lab, sizeof lab, "%s dsink_k", what);
    assert_close(lab, a->dsk, b->dsk, (size_t)c->C, 0, rtol);
    snprintf(lab, sizeof lab, "%s dsink_v", what);
    assert_close(lab, a->dsv, b->dsv, (size_t)c->C, 0, rtol);
}

/* Same thread count: bit-identical; 1 vs 2 threads: within 1e-6 relative (the kernel is in fact
 * bit-identical across thread counts: one thread per (b, h), sink gradients reduced in order). */
static void test_thread_count_determinism(void **state)
{
    (void)state;
    TestRng rng = {808};
    int saved = omp_get_max_threads();
    Normalizer norms[] = {ATTN_SOFTMAX, ATTN_SIGMOID_NORM};
    for (int ni = 0; ni < 2; ni++) {
        Case c;
        /* Large enough (B H T^2 D = 2^20) for the kernel to run in parallel. */
        case_init(&c, &rng, 4, 64, 4, 16, norms[ni], SINK_KV_BIAS, MK_EDITS, 1);
        KernelResult a, b, one;
        omp_set_num_threads(2);
        kernel_run(&a, &c, 1);
        kernel_run(&b, &c, 1);
        assert_results_equal(&a, &b, &c, 0.0, "2 threads run twice");
        assert_memory_equal(a.out, b.out, (size_t)c.B * c.T * c.C * sizeof(float));
        assert_memory_equal(a.dsk, b.dsk, (size_t)c.C * sizeof(float));
        omp_set_num_threads(1);
        kernel_run(&one, &c, 1);
        assert_results_equal(&a, &one, &c, 1e-6, "1 vs 2 threads");
        omp_set_num_threads(saved);
        kernel_result_free(&a);
        kernel_result_free(&b);
        kernel_result_free(&one);
        case_free(&c);
    }
}

/* A hand-made table with an empty row and no sink: that row outputs 0 and gradients stay finite. */
static void test_empty_row_outputs_zero(void **state)
{
    (void)state;
    TestRng rng = {909};
    for (int n = 0; n < N_NORMALIZERS; n++) {
        Case c;
        case_init(&c, &rng, 1, 4, 1, 2, (Normalizer)n, SINK_NONE, MK_BIDIR, 0);
        memset(c.allowed + 2 * 4, 0, 4);     /* query 2 sees nothing */
        KernelResult kr;
        kernel_run(&kr, &c, 1);
        for (int d = 0; d < 2; d++)
            if (kr.out[2 * 2 + d] != 0.0f)
                fail_msg("%s: empty row out[t2,%d] = %g, want 0", norm_name[n], d,
                         (double)kr.out[2 * 2 + d]);
        for (int i = 0; i < 8; i++)
            if (!isfinite(kr.dq[i]) || !isfinite(kr.dk[i]) || !isfinite(kr.dv[i]))
                fail_msg("%s: non-finite gradient at %d with an empty row", norm_name[n], i);
        kernel_result_free(&kr);
        case_free(&c);
    }
}

/* q, k, v as op outputs (gradients pending, the arena poisoned with NaN): backward writes dQ
 * and zeroes dK, dV block by block instead of adding into zeroed buffers. The gradients must
 * equal those of the run on zeroed leaf inputs, also where a whole tile has no keys. */
static void test_pending_qkv_gradients_equal_zeroed_ones(void **state)
{
    (void)state;
    TestRng rng = {4242};
    SinkKind sinks[2] = {SINK_NONE, SINK_KV_BIAS};
    for (int si = 0; si < 2; si++) {
        Case c;
        case_init(&c, &rng, 2, 40, 2, 4, ATTN_SOFTMAX, sinks[si], MK_CAUSAL, 0);
        /* sequence 1 sees nothing: both of its tiles (rows 0-31, 32-39) have no keys */
        memset(c.allowed + (size_t)c.T * c.T, 0, (size_t)c.T * c.T);
        KernelResult kr;
        kernel_run(&kr, &c, 1);
        Graph g;
        graph_init(&g, (size_t)8 << 20, 16);
        memset(g.arena.base, 0xff, g.arena.cap);
        int shp[3] = {c.B, c.T, c.C}, hd[2] = {c.H, c.D};
        const float *src[3] = {c.q, c.k, c.v}, *want[3] = {kr.dq, kr.dk, kr.dv};
        const char *name[3] = {"dq", "dk", "dv"};
        Tensor *leaf[3], *in[3];
        for (int i = 0; i < 3; i++) {
            leaf[i] = tensor_from(&g, 3, shp, src[i], 1);
            in[i] = op_scale(&g, leaf[i], 1.0f);
        }
        AttentionArgs a = {.spec = &c.spec, .allowed = c.allowed, .positions = c.pos};
        if (has_k(&c)) a.sink_k = tensor_from(&g, 2, hd, c.sk, 1);
        if (has_v(&c)) a.sink_v = tensor_from(&g, 2, hd, c.sv, 1);
        Tensor *out = op_attention(&g, in[0], in[1], in[2], c.H, &a);
        graph_backward_seeded(&g, out, c.proj);
        for (int i = 0; i < 3; i++)
            for (size_t j = 0; j < leaf[i]->size; j++)
                if (!(leaf[i]->grad[j] == want[i][j]))
                    fail_msg("sink %s: %s[%zu] = %g with pending gradients, %g with zeroed ones",
                             sink_name[sinks[si]], name[i], j, (double)leaf[i]->grad[j],
                             (double)want[i][j]);
        graph_free(&g);
        kernel_result_free(&kr);
        case_free(&c);
    }
}

/* The sink token's per-layer key and value arrive as (1, H*D) tensors: same result as kv_bias. */
static void test_token_sink_shape_matches_kv_bias(void **state)
{
    (void)state;
    TestRng rng = {1010};
    Case c;
    case_init(&c, &rng, 2, 8, 2, 4, ATTN_SOFTMAX, SINK_KV_BIAS, MK_CAUSAL, 0);
    KernelResult kr;
    kernel_run(&kr, &c, 1);
    Graph g;
    graph_init(&g, (size_t)8 << 20, 8);
    int shp[3] = {c.B, c.T, c.C}, row[2] = {1, c.C};
    Tensor *q = tensor_from(&g, 3, shp, c.q, 1), *k = tensor_from(&g, 3, shp, c.k, 1);
    Tensor *v = tensor_from(&g, 3, shp, c.v, 1);
    AttentionSpec spec = c.spec;
    spec.sink = SINK_TOKEN;
    AttentionArgs a = {.spec = &spec, .allowed = c.allowed, .positions = c.pos};
    a.sink_k = tensor_from(&g, 2, row, c.sk, 1);
    a.sink_v = tensor_from(&g, 2, row, c.sv, 1);
    Tensor *out = op_attention(&g, q, k, v, c.H, &a);
    memcpy(out->grad, c.proj, out->size * sizeof(float));
    g.nodes[0].backward(&g.nodes[0]);
    assert_memory_equal(out->data, kr.out, out->size * sizeof(float));
    assert_memory_equal(a.sink_k->grad, kr.dsk, (size_t)c.C * sizeof(float));
    assert_memory_equal(a.sink_v->grad, kr.dsv, (size_t)c.C * sizeof(float));
    graph_free(&g);
    kernel_result_free(&kr);
    case_free(&c);
}

/* Stable forms: scores near 100 and a sink logit of 95 overflow a naive float exp; the kernel
 * (max over every term, sink logit included) still matches the double reference. */
static void test_large_scores_stay_finite(void **state)
{
    (void)state;
    TestRng rng = {1414};
    for (int n = 0; n < N_NORMALIZERS; n++)
        for (int s = 0; s < 4; s++) {
            if (!variant_valid((Normalizer)n, (SinkKind)s)) continue;
            Case c;
            case_init(&c, &rng, 1, 9, 2, 4, (Normalizer)n, (SinkKind)s, MK_CAUSAL, 0);
            size_t cnt = (size_t)c.B * c.T * c.C;
            for (size_t i = 0; i < cnt; i++) c.q[i] *= 40.0f;
            for (int h = 0; h < c.H; h++) c.sl[h] = 95.0f;
            /* Scores ~100 carry float32 round-off ~1e-5 into every exponent, so relative errors
             * of ~1e-5 in weights and gradients are intrinsic: rtol 1e-4. */
            check_forward(&c, FWD_ATOL, 1e-4);
            check_gradients(&c, GRAD_ATOL, 1e-4);
            case_free(&c);
        }
}

/* Backward accumulates: running it twice doubles every gradient. */
static void test_backward_accumulates(void **state)
{
    (void)state;
    TestRng rng = {1111};
    Case c;
    case_init(&c, &rng, 2, 6, 2, 4, ATTN_SCALED, SINK_LOGIT, MK_CAUSAL, 1);
    Graph g;
    graph_init(&g, (size_t)8 << 20, 8);
    int shp[3] = {c.B, c.T, c.C};
    Tensor *q = tensor_from(&g, 3, shp, c.q, 1), *k = tensor_from(&g, 3, shp, c.k, 1);
    Tensor *v = tensor_from(&g, 3, shp, c.v, 1);
    AttentionArgs a = {.spec = &c.spec, .allowed = c.allowed, .positions = c.pos,
                       .alibi_slopes = c.slopes};
    a.sink_logit = tensor_from(&g, 1, &c.H, c.sl, 1);
    Tensor *out = op_attention(&g, q, k, v, c.H, &a);
    memcpy(out->grad, c.proj, out->size * sizeof(float));
    g.nodes[0].backward(&g.nodes[0]);
    size_t n = q->size;
    float *once = malloc(n * sizeof(float)), dl = a.sink_logit->grad[0];
    memcpy(once, q->grad, n * sizeof(float));
    g.nodes[0].backward(&g.nodes[0]);
    for (size_t i = 0; i < n; i++) once[i] *= 2.0f;
    assert_close("dq after two backwards", q->grad, once, n, 0, 1e-6);
    float dl2 = 2.0f * dl;
    assert_close("dsink_logit after two backwards", &a.sink_logit->grad[0], &dl2, 1, 0, 1e-6);
    free(once);
    graph_free(&g);
    case_free(&c);
}

/* ---- ALiBi slopes (values from Press et al.'s get_slopes, worked out by hand) -------------- */

static void test_alibi_slopes_press(void **state)
{
    (void)state;
    float got[16];
    float h8[8] = {0.5f, 0.25f, 0.125f, 0.0625f, 0.03125f, 0.015625f, 0.0078125f, 0.00390625f};
    alibi_slopes(got, 8);
    assert_close("alibi H=8", got, h8, 8, 0, 1e-7);
    float h1[1] = {0.00390625f};
    alibi_slopes(got, 1);
    assert_close("alibi H=1", got, h1, 1, 0, 1e-7);
    /* H=6: slopes of 4 (2^-2, 2^-4, 2^-6, 2^-8), then slopes of 8 at [0::2][:2] (2^-1, 2^-3). */
    float h6[6] = {0.25f, 0.0625f, 0.015625f, 0.00390625f, 0.5f, 0.125f};
    alibi_slopes(got, 6);
    assert_close("alibi H=6", got, h6, 6, 0, 1e-7);
    /* H=3: slopes of 2 (2^-4, 2^-8), then slopes of 4 at [0] (2^-2). */
    float h3[3] = {0.0625f, 0.00390625f, 0.25f};
    alibi_slopes(got, 3);
    assert_close("alibi H=3", got, h3, 3, 0, 1e-7);
    /* H=12: 2^-1..2^-8, then slopes of 16 (2^-(k+1)/2) at k = 0, 2, 4, 6. */
    float h12[12] = {0.5f, 0.25f, 0.125f, 0.0625f, 0.03125f, 0.015625f, 0.0078125f, 0.00390625f,
                     0.70710678f, 0.35355339f, 0.17677670f, 0.08838835f};
    alibi_slopes(got, 12);
    assert_close("alibi H=12", got, h12, 12, 0, 1e-6);
}

/* ---- RoPE ------------------------------------------------------------------------------- */

/* The rotation of the README ("Parameters and conventions") in double. */
static void ref_rope(double *y, const double *x, const int32_t *pos, int rows, int H, int D,
                     double base)
{
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < D / 2; i++) {
                double th = pos[r] * pow(base, -2.0 * i / D), c = cos(th), s = sin(th);
                const double *xh = x + (size_t)r * H * D + h * D;
                double *yh = y + (size_t)r * H * D + h * D;
                yh[i] = xh[i] * c - xh[i + D / 2] * s;
                yh[i + D / 2] = xh[i + D / 2] * c + xh[i] * s;
            }
}

static void test_rope_matches_reference_and_gradcheck(void **state)
{
    (void)state;
    TestRng rng = {1212};
    int B = 2, T = 5, H = 3, D = 6, n = B * T * H * D;
    int32_t pos[10] = {0, 3, 1, 500, 7, 2, 2, 0, 129, 4};
    float *x = malloc(n * sizeof(float)), *proj = malloc(n * sizeof(float));
    trng_fill(&rng, x, n, -1.0f, 1.0f);
    trng_fill(&rng, proj, n, -1.0f, 1.0f);
    Graph g;
    graph_init(&g, (size_t)4 << 20, 8);
    int shp[3] = {B, T, H * D};
    Tensor *xt = tensor_from(&g, 3, shp, x, 1);
    Tensor *y = op_rope(&g, xt, pos, H, 10000.0f);
    double *xd = malloc(n * sizeof(double)), *yd = malloc(n * sizeof(double));
    float *want = malloc(n * sizeof(float)), *fd = malloc(n * sizeof(float));
    for (int i = 0; i < n; i++) xd[i] = x[i];
    ref_rope(yd, xd, pos, B * T, H, D, 10000.0);
    for (int i = 0; i < n; i++) want[i] = (float)yd[i];
    double e = assert_close("rope out", y->data, want, n, 1e-6, 1e-6);
    memcpy(y->grad, proj, n * sizeof(float));
    g.nodes[0].backward(&g.nodes[0]);
    /* L = sum y * proj is linear in x: central differences on the double reference are exact
     * up to round-off. */
    for (int i = 0; i < n; i++) {
        double x0 = xd[i], lp = 0, lm = 0;
        xd[i] = x0 + 1e-3;
        ref_rope(yd, xd, pos, B * T, H, D, 10000.0);
        for (int j = 0; j < n; j++) lp += yd[j] * proj[j];
        xd[i] = x0 - 1e-3;
        ref_rope(yd, xd, pos, B * T, H, D, 10000.0);
        for (int j = 0; j < n; j++) lm += yd[j] * proj[j];
        xd[i] = x0;
        fd[i] = (float)((lp - lm) / 2e-3);
    }
    double eg = assert_close("rope dx", xt->grad, fd, n, 1e-6, 1e-5);
    print_message("rope: forward max |err| %.2e, gradient max |err| %.2e\n", e, eg);
    graph_free(&g);
    free(x); free(proj); free(xd); free(yd); free(want); free(fd);
}

/* Rotations preserve each head's norm, and q . k after RoPE depends only on the position
 * difference: shifting both positions by the same amount leaves every dot product unchanged. */
static void test_rope_norm_and_relative_position(void **state)
{
    (void)state;
    TestRng rng = {1313};
    int H = 2, D = 8, C = H * D;
    float q[16], k[16];
    trng_fill(&rng, q, C, -1.0f, 1.0f);
    trng_fill(&rng, k, C, -1.0f, 1.0f);
    Graph g;
    graph_init(&g, (size_t)1 << 20, 8);
    int shp[3] = {1, 1, C};
    double ref_dot[2] = {0, 0};
    int shifts[] = {0, 1, 37, 250};
    for (int si = 0; si < 4; si++) {
        int32_t pq = 5 + shifts[si], pk = 2 + shifts[si];
        Tensor *qt = tensor_from(&g, 3, shp, q, 0), *kt = tensor_from(&g, 3, shp, k, 0);
        Tensor *qr = op_rope(&g, qt, &pq, H, 10000.0f), *kr = op_rope(&g, kt, &pk, H, 10000.0f);
        for (int h = 0; h < H; h++) {
            double n0 = 0, n1 = 0, dot = 0;
            for (int d = 0; d < D; d++) {
                n0 += (double)q[h * D + d] * q[h * D + d];
                n1 += (double)qr->data[h * D + d] * qr->data[h * D + d];
                dot += (double)qr->data[h * D + d] * kr->data[h * D + d];
            }
            if (fabs(sqrt(n1) - sqrt(n0)) > 1e-6 * sqrt(n0))
                fail_msg("rope head %d at pos %d: norm %.9g, want %.9g (rtol 1e-6)", h, pq,
                         sqrt(n1), sqrt(n0));
            if (si == 0) ref_dot[h] = dot;
            else if (fabs(dot - ref_dot[h]) > 1e-5)
                fail_msg("rope head %d: q.k at positions (%d, %d) = %.9g, at (5, 2) = %.9g "
                         "(tol 1e-5)", h, pq, pk, dot, ref_dot[h]);
        }
    }
    graph_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_matches_reference_every_variant),
        cmocka_unit_test(test_gradients_match_finite_differences_every_variant),
        cmocka_unit_test(test_kv_bias_zero_equals_softmax1),
        cmocka_unit_test(test_k_bias_adds_no_value_mass),
        cmocka_unit_test(test_probs_plus_sink_mass_sum_to_one),
        cmocka_unit_test(test_causal_output_ignores_future_bitwise),
        cmocka_unit_test(test_batch_rows_independent),
        cmocka_unit_test(test_thread_count_determinism),
        cmocka_unit_test(test_empty_row_outputs_zero),
        cmocka_unit_test(test_pending_qkv_gradients_equal_zeroed_ones),
        cmocka_unit_test(test_token_sink_shape_matches_kv_bias),
        cmocka_unit_test(test_large_scores_stay_finite),
        cmocka_unit_test(test_backward_accumulates),
        cmocka_unit_test(test_alibi_slopes_press),
        cmocka_unit_test(test_rope_matches_reference_and_gradcheck),
        cmocka_unit_test(test_rope_norm_and_relative_position),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
