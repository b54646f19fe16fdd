/* attention.c: the fused attention op (every normalizer and learned sink in one kernel), its
 * backward, and the ALiBi slopes. Work is split over (b, h) blocks; each block is computed by one
 * thread in a fixed order, and per-head sink gradients are reduced serially over b, so results are
 * bit-identical for any thread count. Backward recomputes each row's probabilities with the same
 * code as forward, so nothing of size T^2 is saved. */
#include "model/attention.h"
#include "model/fastmath.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

/* Everything forward and backward share (lives in the graph arena). */
typedef struct {
    Normalizer norm;
    float scale, sig_bias, inv_sqrt_d;
    int B, T, H, D, C;
    const uint8_t *allowed;
    const int32_t *positions;
    const float *slopes;
    Tensor *q, *k, *v, *sink_k, *sink_v, *sink_logit;
    const float *key_weight;     /* (H, T) or NULL: interventions only */
    int *row_lo, *row_hi;        /* (B, T): first and last allowed key of each query */
    Arena *arena;                /* backward scratch */
} AttnCtx;

/* Backward updates dK and dV from this many query rows at once, so each key row is loaded and
 * stored once per group instead of once per query (backward 1.5x faster at T = 128). */
#define ROW_GROUP 4

/* Below this many multiply-adds (B H T^2 D) a parallel region costs more than it saves (probes,
 * tests); results do not depend on it, since every (b, h) block is computed the same way. */
#define ATTN_PARALLEL_MIN ((size_t)1 << 18)

/* One thread's working copies of a (b, h) block, all contiguous so inner loops vectorise. */
typedef struct {
    float *Q, *K, *V, *KT, *VT;  /* (T, D) and transposed (D, T) */
    float *dO, *dQ, *dK, *dV;    /* (T, D) */
    float *s;                    /* (T) row buffer */
    float *p, *dp;               /* (ROW_GROUP, T): weights and score gradients of a row group */
} Scratch;

/* The extra (non-data) terms of one row after normalisation. */
typedef struct {
    float key;                   /* weight of the sink key (it carries sink_v, if any) */
    float logit;                 /* weight of the learned sink logit term */
    float fixed;                 /* softmax1's exp(0) term */
    float z;                     /* sigmoid_norm: the row sum of sigmoid terms */
    float slope_key, slope_logit;  /* sigmoid forms: sigmoid'(score) of the extra terms */
} RowExtra;

/* sigmoid(x), and its slope sigmoid(x) (1 - sigmoid(x)) computed as e sigmoid^2 with e = exp(-x):
 * 1 - sigmoid(x) would cancel catastrophically for large x. */
static float sigmoid_slope(float x, float *slope)
{
    float e = expf(-x), sg = 1.0f / (1.0f + e);
    *slope = e < INFINITY ? e * sg * sg : 0.0f;
    return sg;
}

static int is_softmax_family(Normalizer n)
{
    return n == ATTN_SOFTMAX || n == ATTN_SOFTMAX1 || n == ATTN_SCALED;
}

static float dotf(const float *a, const float *b, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* s[j] = x . M[:, j] for j in [lo, hi], M (D, T) transposed keys or values. Blocks of W columns
 * accumulate in registers over d (W = 32 gives 8 independent SSE chains, hiding add latency; a
 * plain d-outer axpy reloads s[] every step and was 2x slower). Every s[j] sums d = 0..D-1 in
 * order whichever block computes it, so a row's result never depends on where its range starts. */
#define ROW_DOTS_BLOCK(W)                                                            \
    for (; j + (W) <= hi + 1; j += (W)) {                                            \
        float acc[W] = {0};                                                          \
        for (int d = 0; d < D; d++) {                                                \
            float xd = x[d];                                                         \
            const float *md = M + (size_t)d * T + j;                                 \
            for (int u = 0; u < (W); u++) acc[u] += xd * md[u];                      \
        }                                                                            \
        for (int u = 0; u < (W); u++) s[j + u] = acc[u];                             \
    }

static void row_dots(float *s, const float *x, const float *M, int T, int D, int lo, int hi)
{
    int j = lo;
    ROW_DOTS_BLOCK(32)
    ROW_DOTS_BLOCK(8)
    ROW_DOTS_BLOCK(1)
}

/* o[d] += sum_j w[j] R[j][d] over j in [lo, hi], R (T, D) row-major: blocks of output dims in
 * registers, j summed in order in every block. */
#define ROW_MIX_BLOCK(W)                                                             \
    for (; d0 + (W) <= D; d0 += (W)) {                                               \
        float acc[W];                                                                \
        for (int u = 0; u < (W); u++) acc[u] = o[d0 + u];                            \
        for (int j = lo; j <= hi; j++) {                                             \
            float wj = w[j];                                                         \
            const float *r = R + (size_t)j * D + d0;                                 \
            for (int u = 0; u < (W); u++) acc[u] += wj * r[u];                       \
        }                                                                            \
        for (int u = 0; u < (W); u++) o[d0 + u] = acc[u];                            \
    }

static void row_mix(float *o, const float *w, const float *R, int D, int lo, int hi)
{
    int d0 = 0;
    ROW_MIX_BLOCK(32)
    ROW_MIX_BLOCK(8)
    ROW_MIX_BLOCK(1)
}

/* sum_j x[j] y[j] (y NULL: sum_j x[j]) over [lo, hi] in 8 interleaved partial sums combined in a
 * fixed order: deterministic, and 8 independent add chains instead of one serial chain. */
static float row_sum(const float *x, const float *y, int lo, int hi)
{
    float acc[8] = {0};
    int j = lo;
    if (y)
        for (; j + 8 <= hi + 1; j += 8)
            for (int u = 0; u < 8; u++) acc[u] += x[j + u] * y[j + u];
    else
        for (; j + 8 <= hi + 1; j += 8)
            for (int u = 0; u < 8; u++) acc[u] += x[j + u];
    float t = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; j <= hi; j++) t += y ? x[j] * y[j] : x[j];
    return t;
}

/* max of s[j] over allowed j in [lo, hi] (-inf if none); max is exact in any order, so 8 lanes
 * run in parallel. */
static float row_max(const float *s, const uint8_t *al, int lo, int hi)
{
    float acc[8];
    for (int u = 0; u < 8; u++) acc[u] = -INFINITY;
    int j = lo;
    for (; j + 8 <= hi + 1; j += 8)
        for (int u = 0; u < 8; u++)
            if (al[j + u] && s[j + u] > acc[u]) acc[u] = s[j + u];
    float m = -INFINITY;
    for (int u = 0; u < 8; u++) m = acc[u] > m ? acc[u] : m;
    for (; j <= hi; j++)
        if (al[j] && s[j] > m) m = s[j];
    return m;
}

static void scratch_alloc(Scratch *sc, Arena *a, int T, int D)
{
    size_t td = (size_t)T * D;
    sc->Q = arena_alloc(a, td * sizeof(float));
    sc->K = arena_alloc(a, td * sizeof(float));
    sc->V = arena_alloc(a, td * sizeof(float));
    sc->KT = arena_alloc(a, td * sizeof(float));
    sc->VT = arena_alloc(a, td * sizeof(float));
    sc->dO = arena_alloc(a, td * sizeof(float));
    sc->dQ = arena_alloc(a, td * sizeof(float));
    sc->dK = arena_alloc(a, td * sizeof(float));
    sc->dV = arena_alloc(a, td * sizeof(float));
    sc->s = arena_alloc(a, (size_t)T * sizeof(float));
    sc->p = arena_alloc(a, (size_t)ROW_GROUP * T * sizeof(float));
    sc->dp = arena_alloc(a, (size_t)ROW_GROUP * T * sizeof(float));
}

static Scratch *scratch_for_threads(Arena *a, int n_threads, int T, int D)
{
    Scratch *sc = arena_alloc(a, (size_t)n_threads * sizeof(Scratch));
    for (int t = 0; t < n_threads; t++) scratch_alloc(&sc[t], a, T, D);
    return sc;
}

/* Copies head h of batch b from a (B, T, H*D) tensor into dst (T, D) and, if dstT, (D, T). */
static void block_load(float *dst, float *dstT, const float *src, const AttnCtx *c, int b, int h)
{
    int T = c->T, D = c->D;
    for (int t = 0; t < T; t++) {
        const float *row = src + ((size_t)b * T + t) * c->C + (size_t)h * D;
        memcpy(dst + (size_t)t * D, row, (size_t)D * sizeof(float));
        if (dstT)
            for (int d = 0; d < D; d++) dstT[(size_t)d * T + t] = row[d];
    }
}

/* grad (B, T, H*D) head h of batch b += src (T, D). */
static void block_accumulate(float *grad, const float *src, const AttnCtx *c, int b, int h)
{
    int T = c->T, D = c->D;
    for (int t = 0; t < T; t++) {
        float *row = grad + ((size_t)b * T + t) * c->C + (size_t)h * D;
        const float *s = src + (size_t)t * D;
        for (int d = 0; d < D; d++) row[d] += s[d];
    }
}

static size_t attn_work(const AttnCtx *c)
{
    return (size_t)c->B * c->H * c->T * c->T * c->D;
}

/* First and last allowed key of every query, so rows only touch their mask's support
 * (half the work for causal masks, far less for windows). lo > hi marks an empty row. */
static void rows_find_range(int *lo, int *hi, const uint8_t *allowed, int B, int T)
{
    int par = (size_t)B * T * T >= ATTN_PARALLEL_MIN;
    #pragma omp parallel for schedule(static) if (par)
    for (int r = 0; r < B * T; r++) {
        const uint8_t *al = allowed + (size_t)r * T;
        int a = 0, z = T - 1;
        while (a < T && !al[a]) a++;
        while (z >= 0 && !al[z]) z--;
        lo[r] = a;
        hi[r] = z;
    }
}

/* Interventions: p[j] (and the sigmoid slope s[j]) times w[j] for keys j != i. A constant factor
 * on an unnormalised weight leaves the softmax backward formula unchanged. */
static void row_apply_key_weight(float *p, float *s, const float *w, int i, int lo, int hi)
{
    for (int j = lo; j <= hi; j++) {
        if (j == i) continue;
        p[j] *= w[j];
        if (s) s[j] *= w[j];
    }
}

/* Weights of query i in block (b, h): p[j] for j in [lo, hi] (0 where not allowed) and the extra
 * terms in ex. qi (D) is the query, sc->KT the block's keys. On return s[j] holds the scores for
 * the softmax family and sigmoid'(score) (0 where not allowed) for the sigmoid forms, which is
 * what backward needs. */
static void row_weights(float *p, RowExtra *ex, float *s, const AttnCtx *c, const Scratch *sc,
                        const float *qi, int b, int h, int i)
{
    int T = c->T, D = c->D;
    int lo = c->row_lo[b * T + i], hi = c->row_hi[b * T + i];
    const uint8_t *al = c->allowed + ((size_t)b * T + i) * T;
    memset(ex, 0, sizeof *ex);
    row_dots(s, qi, sc->KT, T, D, lo, hi);
    for (int j = lo; j <= hi; j++) s[j] *= c->inv_sqrt_d;
    if (c->slopes) {
        const int32_t *pos = c->positions + (size_t)b * T;
        float m = c->slopes[h];
        for (int j = lo; j <= hi; j++) s[j] -= m * fabsf((float)(pos[i] - pos[j]));
    }
    int has_key = c->sink_k != NULL, has_logit = c->sink_logit != NULL;
    float sk = has_key ? dotf(qi, c->sink_k->data + (size_t)h * D, D) * c->inv_sqrt_d : 0.0f;
    float bl = has_logit ? c->sink_logit->data[h] : 0.0f;

    if (is_softmax_family(c->norm)) {
        /* Stable form: subtract the max over every term, sink terms included. */
        float m = row_max(s, al, lo, hi);
        if (has_key && sk > m) m = sk;
        if (has_logit && bl > m) m = bl;
        if (c->norm == ATTN_SOFTMAX1 && 0.0f > m) m = 0.0f;
        /* Exponentiate everything (a pure float loop vectorises), then zero the masked keys. */
        for (int j = lo; j <= hi; j++) p[j] = exp_nonpos(s[j] - m);
        for (int j = lo; j <= hi; j++)
            if (!al[j]) p[j] = 0.0f;
        if (c->key_weight) row_apply_key_weight(p, NULL, c->key_weight + (size_t)h * T, i, lo, hi);
        float z = row_sum(p, NULL, lo, hi);
        if (has_key) ex->key = exp_nonpos(sk - m);
        if (has_logit) ex->logit = exp_nonpos(bl - m);
        if (c->norm == ATTN_SOFTMAX1) ex->fixed = exp_nonpos(-m);
        z += ex->key + ex->logit + ex->fixed;
        /* z >= 1 unless the row has no term at all (then everything stays 0). */
        float f = z > 0.0f ? (c->norm == ATTN_SCALED ? c->scale : 1.0f) / z : 0.0f;
        for (int j = lo; j <= hi; j++) p[j] *= f;
        ex->key *= f;
        ex->logit *= f;
        ex->fixed *= f;
        return;
    }
    float b0 = c->sig_bias;
    for (int j = lo; j <= hi; j++) {
        if (al[j]) {
            p[j] = sigmoid_slope(s[j] + b0, &s[j]);
        } else {
            p[j] = 0.0f;
            s[j] = 0.0f;
        }
    }
    /* p_j = w_j sigmoid(.) has slope w_j sigmoid'(.): scaling s[] too keeps backward exact */
    if (c->key_weight) row_apply_key_weight(p, s, c->key_weight + (size_t)h * T, i, lo, hi);
    if (has_key) ex->key = sigmoid_slope(sk + b0, &ex->slope_key);
    if (c->norm == ATTN_SIGMOID) return;
    /* sigmoid_norm: the logit sink is a virtual key with score b_h; divide by the row sum. */
    if (has_logit) ex->logit = sigmoid_slope(bl + b0, &ex->slope_logit);
    float z = row_sum(p, NULL, lo, hi) + ex->key + ex->logit;
    ex->z = z;
    float f = z > 0.0f ? 1.0f / z : 0.0f;
    for (int j = lo; j <= hi; j++) p[j] *= f;
    ex->key *= f;
    ex->logit *= f;
}

/* ---- forward ---------------------------------------------------------------------------- */

/* out (B, T, H*D) head h of batch b; optional probes keep (B, H, T, T) and mass (B, H, T). */
static void attn_forward_block(float *out, float *keep, float *mass, Scratch *sc,
                               const AttnCtx *c, int b, int h)
{
    int T = c->T, D = c->D;
    block_load(sc->Q, NULL, c->q->data, c, b, h);
    block_load(sc->K, sc->KT, c->k->data, c, b, h);
    block_load(sc->V, NULL, c->v->data, c, b, h);
    const float *sv = c->sink_v ? c->sink_v->data + (size_t)h * D : NULL;
    for (int i = 0; i < T; i++) {
        int lo = c->row_lo[b * T + i], hi = c->row_hi[b * T + i];
        RowExtra ex;
        row_weights(sc->p, &ex, sc->s, c, sc, sc->Q + (size_t)i * D, b, h, i);
        float *o = out + ((size_t)b * T + i) * c->C + (size_t)h * D;
        for (int d = 0; d < D; d++) o[d] = 0.0f;
        row_mix(o, sc->p, sc->V, D, lo, hi);
        if (sv)
            for (int d = 0; d < D; d++) o[d] += ex.key * sv[d];
        size_t row = ((size_t)b * c->H + h) * T + i;
        if (keep) {
            float *kr = keep + row * T;
            memset(kr, 0, (size_t)T * sizeof(float));
            for (int j = lo; j <= hi; j++) kr[j] = sc->p[j];
        }
        if (mass) mass[row] = ex.key + ex.logit + ex.fixed;
    }
}

/* ---- backward --------------------------------------------------------------------------- */

/* Sink parameter gradients of one (b, h) block, reduced over b afterwards in a fixed order. */
typedef struct {
    float *dsk, *dsv, *dlogit;   /* (B*H, D), (B*H, D), (B*H) */
} SinkPartials;

/* Score gradients of query i (forward row_weights, then the normalizer's derivative): on
 * return p holds the weights, dp the gradient of the pre-scale scores q_i . k_j (0 outside the
 * mask); dQ row i, dsk, dsv and *dlogit are accumulated. */
static void row_backward(float *p, float *dp, float *dsk, float *dsv, float *dlogit, Scratch *sc,
                         const AttnCtx *c, int b, int h, int i)
{
    int T = c->T, D = c->D;
    int lo = c->row_lo[b * T + i], hi = c->row_hi[b * T + i];
    const float *qi = sc->Q + (size_t)i * D, *doi = sc->dO + (size_t)i * D;
    const float *skh = c->sink_k ? c->sink_k->data + (size_t)h * D : NULL;
    const float *sv = c->sink_v ? c->sink_v->data + (size_t)h * D : NULL;
    float *s = sc->s;
    RowExtra ex;
    row_weights(p, &ex, s, c, sc, qi, b, h, i);
    /* forward was: o_i = sum_j p_j v_j + p_key sink_v */
    row_dots(dp, doi, sc->VT, T, D, lo, hi);
    float dp_key = sv ? dotf(doi, sv, D) : 0.0f;
    float ds_key = 0.0f, ds_logit = 0.0f;
    if (is_softmax_family(c->norm)) {
        /* p_u = c e_u / Z: dS_u = p_u (dP_u - sum_t p_t dP_t / c). */
        float rho = ex.key * dp_key + row_sum(p, dp, lo, hi);
        float r = rho / (c->norm == ATTN_SCALED ? c->scale : 1.0f);
        for (int j = lo; j <= hi; j++) dp[j] = p[j] * (dp[j] - r);
        ds_key = ex.key * (dp_key - r);
        ds_logit = ex.logit * (0.0f - r);
    } else if (c->norm == ATTN_SIGMOID) {
        /* p_u = sigmoid(s_u + b): dS_u = dP_u sigmoid'(s_u + b); s[] holds the slopes. */
        for (int j = lo; j <= hi; j++) dp[j] = dp[j] * s[j];
        ds_key = dp_key * ex.slope_key;
    } else {
        /* p_u = sig_u / z (quotient rule): dsig_u = (dP_u - sum_t p_t dP_t) / z,
         * dS_u = dsig_u sigmoid'(s_u + b); s[] holds the slopes. */
        float rho = ex.key * dp_key + row_sum(p, dp, lo, hi);
        float iz = ex.z > 0.0f ? 1.0f / ex.z : 0.0f;
        for (int j = lo; j <= hi; j++) dp[j] = (dp[j] - rho) * iz * s[j];
        ds_key = (dp_key - rho) * iz * ex.slope_key;
        ds_logit = (0.0f - rho) * iz * ex.slope_logit;
    }
    /* forward was: s_ij = q_i . k_j / sqrt(D) (+ ALiBi, which has no parameters) */
    for (int j = lo; j <= hi; j++) dp[j] *= c->inv_sqrt_d;
    float *dqi = sc->dQ + (size_t)i * D;
    row_mix(dqi, dp, sc->K, D, lo, hi);
    if (skh) {
        float g = ds_key * c->inv_sqrt_d;
        for (int d = 0; d < D; d++) dqi[d] += g * skh[d];
        for (int d = 0; d < D; d++) dsk[d] += g * qi[d];
    }
    if (sv)
        for (int d = 0; d < D; d++) dsv[d] += ex.key * doi[d];
    *dlogit += ds_logit;
}

/* dst[j] += sum_r w[r][j] x_r for j in [lo, hi] and the ROW_GROUP rows r (w rows of stride T,
 * zero where a row does not reach j): dK += dS^T Q and dV += P^T dO for one row group. */
static void group_rank_update(float *dst, const float *w, const float *const *x, int T, int D,
                              int lo, int hi)
{
    for (int j = lo; j <= hi; j++) {
        float g0 = w[j], g1 = w[T + j], g2 = w[2 * T + j], g3 = w[3 * T + j];
        if (g0 == 0.0f && g1 == 0.0f && g2 == 0.0f && g3 == 0.0f) continue;
        float *dj = dst + (size_t)j * D;
        for (int d = 0; d < D; d++)
            dj[d] += g0 * x[0][d] + g1 * x[1][d] + g2 * x[2][d] + g3 * x[3][d];
    }
}

static void attn_backward_block(Scratch *sc, SinkPartials *sp, const AttnCtx *c,
                                const float *dout, int b, int h)
{
    int T = c->T, D = c->D;
    size_t td = (size_t)T * D;
    block_load(sc->Q, NULL, c->q->data, c, b, h);
    block_load(sc->K, sc->KT, c->k->data, c, b, h);
    block_load(sc->V, sc->VT, c->v->data, c, b, h);
    block_load(sc->dO, NULL, dout, c, b, h);
    memset(sc->dQ, 0, td * sizeof(float));
    memset(sc->dK, 0, td * sizeof(float));
    memset(sc->dV, 0, td * sizeof(float));
    size_t bh = (size_t)b * c->H + h;
    float *dsk = sp->dsk + bh * D, *dsv = sp->dsv + bh * D;
    float dlogit = 0.0f;
    for (int i0 = 0; i0 < T; i0 += ROW_GROUP) {
        int ulo = T, uhi = -1;
        const float *qs[ROW_GROUP], *dos[ROW_GROUP];
        for (int r = 0; r < ROW_GROUP; r++) {
            int i = i0 + r < T ? i0 + r : i0;    /* a short last group repeats row i0 ... */
            qs[r] = sc->Q + (size_t)i * D;
            dos[r] = sc->dO + (size_t)i * D;
            if (i0 + r < T) {
                int lo = c->row_lo[b * T + i], hi = c->row_hi[b * T + i];
                row_backward(sc->p + (size_t)r * T, sc->dp + (size_t)r * T, dsk, dsv, &dlogit,
                             sc, c, b, h, i);
                if (lo < ulo) ulo = lo;
                if (hi > uhi) uhi = hi;
            }
        }
        /* ... with zero weights; every row is zero outside its own range in the union. */
        for (int r = 0; r < ROW_GROUP; r++) {
            int lo = i0 + r < T ? c->row_lo[b * T + i0 + r] : T;
            int hi = i0 + r < T ? c->row_hi[b * T + i0 + r] : -1;
            float *pr = sc->p + (size_t)r * T, *dr = sc->dp + (size_t)r * T;
            for (int j = ulo; j <= uhi; j++)
                if (j < lo || j > hi) pr[j] = dr[j] = 0.0f;
        }
        group_rank_update(sc->dK, sc->dp, qs, T, D, ulo, uhi);
        group_rank_update(sc->dV, sc->p, dos, T, D, ulo, uhi);
    }
    sp->dlogit[bh] = dlogit;
    if (c->q->grad) block_accumulate(c->q->grad, sc->dQ, c, b, h);
    if (c->k->grad) block_accumulate(c->k->grad, sc->dK, c, b, h);
    if (c->v->grad) block_accumulate(c->v->grad, sc->dV, c, b, h);
}

/* Per-head sink gradients: partial sums over b added in order b = 0..B-1. */
static void sink_grads_reduce(const AttnCtx *c, const SinkPartials *sp)
{
    int H = c->H, D = c->D;
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < H; h++) {
            size_t bh = (size_t)b * H + h;
            if (c->sink_k && c->sink_k->grad)
                for (int d = 0; d < D; d++) c->sink_k->grad[h * D + d] += sp->dsk[bh * D + d];
            if (c->sink_v && c->sink_v->grad)
                for (int d = 0; d < D; d++) c->sink_v->grad[h * D + d] += sp->dsv[bh * D + d];
            if (c->sink_logit && c->sink_logit->grad) c->sink_logit->grad[h] += sp->dlogit[bh];
        }
}

static void attention_backward(Node *n)
{
    const AttnCtx *c = n->ctx;
    int BH = c->B * c->H, D = c->D;
    int n_threads = omp_get_max_threads();
    Scratch *sc = scratch_for_threads(c->arena, n_threads, c->T, D);
    SinkPartials sp;
    sp.dsk = arena_alloc(c->arena, (size_t)BH * D * sizeof(float));
    sp.dsv = arena_alloc(c->arena, (size_t)BH * D * sizeof(float));
    sp.dlogit = arena_alloc(c->arena, (size_t)BH * sizeof(float));
    const float *dout = n->out->grad;
    int par = attn_work(c) >= ATTN_PARALLEL_MIN;
    #pragma omp parallel for schedule(static) num_threads(n_threads) if (par)
    for (int bh = 0; bh < BH; bh++)
        attn_backward_block(&sc[omp_get_thread_num()], &sp, c, dout, bh / c->H, bh % c->H);
    sink_grads_reduce(c, &sp);
}

/* ---- the op ----------------------------------------------------------------------------- */

const char *const NORMALIZER_NAMES[] = {
    [ATTN_SOFTMAX] = "softmax", [ATTN_SOFTMAX1] = "softmax1", [ATTN_SCALED] = "scaled",
    [ATTN_SIGMOID] = "sigmoid", [ATTN_SIGMOID_NORM] = "sigmoid_norm", NULL,
};
const char *const SINK_NAMES[] = {
    [SINK_NONE] = "none", [SINK_LOGIT] = "logit", [SINK_K_BIAS] = "k_bias",
    [SINK_KV_BIAS] = "kv_bias", [SINK_TOKEN] = "token", NULL,
};
const char *const GATE_NAMES[] = {
    [GATE_NONE] = "none", [GATE_ELEMENTWISE] = "elementwise", [GATE_HEADWISE] = "headwise", NULL,
};

int attention_spec_check(const AttentionSpec *s, char *msg, size_t n)
{
    if ((int)s->normalizer < 0 || s->normalizer > ATTN_SIGMOID_NORM || (int)s->sink < 0 ||
        s->sink > SINK_TOKEN || (int)s->gate < 0 || s->gate > GATE_HEADWISE) {
        snprintf(msg, n, "model.attention: unknown normalizer, sink or gate value");
        return -1;
    }
    /* sigmoid_norm takes the logit as a virtual key in its row sum; plain sigmoid has no sum. */
    if (s->sink == SINK_LOGIT && s->normalizer == ATTN_SIGMOID) {
        snprintf(msg, n, "model.attention.sink: logit adds a term to the row's denominator, "
                 "which normalizer sigmoid does not have; use sigmoid_norm, k_bias or kv_bias");
        return -1;
    }
    if (!(s->scale > 0.0f) || !isfinite(s->scale)) {
        snprintf(msg, n, "model.attention.scale: expected a positive number, got %g",
                 (double)s->scale);
        return -1;
    }
    if ((s->normalizer == ATTN_SIGMOID || s->normalizer == ATTN_SIGMOID_NORM) &&
        !isfinite(s->sigmoid_bias)) {
        snprintf(msg, n, "model.attention.sigmoid_bias: expected a finite number");
        return -1;
    }
    return 0;
}

static void attention_check(const Tensor *q, const Tensor *k, const Tensor *v, int n_head,
                            const AttentionArgs *a)
{
    char sq[64], sk[64], sv[64];
    SL_CHECK(q->ndim == 3 && tensor_same_shape(q, k) && tensor_same_shape(q, v),
             "op_attention: q, k, v must be (B, T, H*D) and equal: q %s, k %s, v %s",
             tensor_shape_str(q, sq, sizeof sq), tensor_shape_str(k, sk, sizeof sk),
             tensor_shape_str(v, sv, sizeof sv));
    SL_CHECK(n_head > 0 && q->shape[2] % n_head == 0,
             "op_attention: width %d is not a multiple of n_head %d", q->shape[2], n_head);
    SL_CHECK(a && a->spec && a->allowed, "op_attention: args, spec and allowed are required");
    SL_CHECK(!a->alibi_slopes || a->positions, "op_attention: ALiBi needs positions");
    size_t hd = (size_t)q->shape[2];
    SL_CHECK(!a->sink_k || a->sink_k->size == hd, "op_attention: sink_k has %zu elements, want "
             "H*D = %zu", a->sink_k ? a->sink_k->size : 0, hd);
    SL_CHECK(!a->sink_v || a->sink_v->size == hd, "op_attention: sink_v has %zu elements, want "
             "H*D = %zu", a->sink_v ? a->sink_v->size : 0, hd);
    SL_CHECK(!a->sink_v || a->sink_k, "op_attention: sink_v without sink_k");
    SL_CHECK(!a->sink_logit || a->sink_logit->size == (size_t)n_head,
             "op_attention: sink_logit has %zu elements, want H = %d",
             a->sink_logit ? a->sink_logit->size : 0, n_head);
    char msg[256];
    SL_CHECK(attention_spec_check(a->spec, msg, sizeof msg) == 0, "op_attention: %s", msg);
    SL_CHECK(!(a->sink_logit && a->spec->normalizer == ATTN_SIGMOID),
             "op_attention: a sink logit has no effect without a denominator (normalizer sigmoid)");
}

Tensor *op_attention(Graph *g, Tensor *q, Tensor *k, Tensor *v, int n_head,
                     const AttentionArgs *args)
{
    attention_check(q, k, v, n_head, args);
    AttnCtx *c = arena_alloc(&g->arena, sizeof *c);
    const AttentionSpec *sp = args->spec;
    c->norm = sp->normalizer;
    c->scale = sp->scale;
    c->sig_bias = sp->sigmoid_bias;
    c->B = q->shape[0];
    c->T = q->shape[1];
    c->C = q->shape[2];
    c->H = n_head;
    c->D = c->C / n_head;
    c->inv_sqrt_d = 1.0f / sqrtf((float)c->D);
    c->allowed = args->allowed;
    c->positions = args->positions;
    c->slopes = args->alibi_slopes;
    c->q = q;
    c->k = k;
    c->v = v;
    c->sink_k = args->sink_k;
    c->sink_v = args->sink_v;
    c->sink_logit = args->sink_logit;
    c->key_weight = args->key_weight;
    c->arena = &g->arena;
    c->row_lo = arena_alloc(&g->arena, (size_t)c->B * c->T * sizeof(int));
    c->row_hi = arena_alloc(&g->arena, (size_t)c->B * c->T * sizeof(int));
    rows_find_range(c->row_lo, c->row_hi, c->allowed, c->B, c->T);

    int needs_grad = q->grad || k->grad || v->grad || (c->sink_k && c->sink_k->grad) ||
                     (c->sink_v && c->sink_v->grad) || (c->sink_logit && c->sink_logit->grad);
    Tensor *out = graph_output(g, 3, q->shape, needs_grad);
    int n_threads = omp_get_max_threads();
    Scratch *sc = scratch_for_threads(&g->arena, n_threads, c->T, c->D);
    int BH = c->B * c->H;
    int par = attn_work(c) >= ATTN_PARALLEL_MIN;
    #pragma omp parallel for schedule(static) num_threads(n_threads) if (par)
    for (int bh = 0; bh < BH; bh++)
        attn_forward_block(out->data, args->keep_probs, args->keep_sink_mass,
                           &sc[omp_get_thread_num()], c, bh / c->H, bh % c->H);
    if (out->grad) {
        Node *n = graph_node(g, "attention", attention_backward, out);
        n->in[0] = q;
        n->in[1] = k;
        n->in[2] = v;
        n->in[3] = c->sink_k;
        n->iarg[0] = n_head;
        n->ctx = c;
    }
    return out;
}

/* ---- ALiBi ------------------------------------------------------------------------------ */

/* Press et al.'s get_slopes: for n a power of two, 2^(-8 (h+1) / n); otherwise the slopes of the
 * closest lower power of two, then every other slope of twice that (the odd ones). */
void alibi_slopes(float *slopes, int n_head)
{
    int n = 1;
    while (n * 2 <= n_head) n *= 2;
    for (int h = 0; h < n && h < n_head; h++) slopes[h] = (float)pow(2.0, -8.0 * (h + 1) / n);
    for (int h = n; h < n_head; h++) {
        int idx = 2 * (h - n);   /* index into the 2n-head slopes, taking [0::2] */
        slopes[h] = (float)pow(2.0, -8.0 * (idx + 1) / (2.0 * n));
    }
}
