/* attention.c: the fused attention op (every normalizer and learned sink in one kernel), its
 * backward, and the ALiBi slopes. Queries go in tiles of ATTN_TILE rows against the union of
 * their key ranges: the four products are cblas_sgemm calls on the strided head columns, the
 * normalizers are row loops. Work is split over (b, h) blocks; each block is computed by one
 * thread in a fixed order, and per-head sink gradients are reduced serially over b, so results
 * are bit-identical for any thread count. When training, forward keeps each tile's weights for
 * backward (the tiles' spans: about half of B H T^2 floats under a causal mask; also the slopes
 * for the sigmoid forms); inference keeps nothing of size T^2 (scratch is ATTN_TILE x T per
 * thread). */
#include "model/attention.h"
#include "model/fastmath.h"

#include <cblas.h>
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
    uint8_t *row_dense;          /* (B, T): 1 if every key in [lo, hi] is allowed (causal rows) */
    Arena *arena;                /* backward scratch */
    /* Kept by forward for backward (NULL in inference): every tile's weights P (m, n) and, for
     * the sigmoid forms, slopes S, the tile of (b, h, i0) at tile_offset; each row's extra terms
     * at ((b H + h) T + i). */
    float *kept_p, *kept_s;
    struct RowExtra *kept_ex;
    size_t *block_start;         /* (B H): offset of block (b, h)'s tiles, in (b, h) order */
    size_t *tile_start;          /* (B, n_tiles): offset of tile i0 / ATTN_TILE within a block of b */
} AttnCtx;

/* Queries are processed in tiles of this many rows against the union of their key ranges: the
 * products Q K^T, P V and their gradients are then single cblas_sgemm calls straight on the
 * (B, T, H*D) tensors (ld = H*D, no head copies), and a causal mask only wastes the upper half of
 * each diagonal tile. 32 rows measured best at R1 (T 128, D 32); see docs/BENCH.md. */
#define ATTN_TILE 32

/* Below this many multiply-adds (B H T^2 D) a parallel region costs more than it saves (probes,
 * tests); results do not depend on it, since every (b, h) block is computed the same way. */
#define ATTN_PARALLEL_MIN ((size_t)1 << 18)

/* One thread's working tiles, each (ATTN_TILE, T) stored with the tile's key span as stride. */
typedef struct {
    float *S;                    /* scores (softmax family) or sigmoid'(score) (sigmoid forms) */
    float *P;                    /* weights */
    float *dP;                   /* gradients of the weights, then of the pre-scale scores */
    float *g;                    /* (ATTN_TILE): per row, the sink key's weight or score gradient */
} Scratch;

/* Rows i0 .. i0+m-1 of block (b, h) against keys k0 .. k0+n-1, the union of the rows' ranges. */
typedef struct {
    int b, h, i0, m, k0, n;
} Tile;

/* The extra (non-data) terms of one row after normalisation. */
typedef struct RowExtra {
    float key;                   /* weight of the sink key (it carries sink_v, if any) */
    float logit;                 /* weight of the learned sink logit term */
    float fixed;                 /* softmax1's exp(0) term */
    float z;                     /* sigmoid_norm: the row sum of sigmoid terms */
    float slope_key, slope_logit;  /* sigmoid forms: sigmoid'(score) of the extra terms */
} RowExtra;

extern void openblas_set_num_threads(int);

/* Row-major sgemm on the block's strided operands: C (M, N) = alpha op(A) op(B) + beta C. */
static void sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* sigmoid(x), and its slope sigmoid(x) (1 - sigmoid(x)) computed as e sigmoid^2 with e = exp(-x):
 * 1 - sigmoid(x) would cancel catastrophically for large x. */
static float sigmoid_slope(float x, float *slope)
{
    float e = expf(-x), sg = 1.0f / (1.0f + e);
    *slope = e < INFINITY ? e * sg * sg : 0.0f;
    return sg;
}

static float dotf(const float *a, const float *b, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* sum_j x[j] y[j] (y NULL: sum_j x[j]) over [lo, hi] in 8 interleaved partial sums combined in a
 * fixed order: deterministic, and 8 independent add chains instead of one serial chain. */
SL_VECTOR_CLONES
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

/* max of s[j] over allowed j in [lo, hi] (-inf if none; al NULL: every j is allowed); max is
 * exact in any order, so 8 lanes run in parallel, branch-free so the loop vectorises. */
SL_VECTOR_CLONES
static float row_max(const float *s, const uint8_t *al, int lo, int hi)
{
    float acc[8];
    for (int u = 0; u < 8; u++) acc[u] = -INFINITY;
    int j = lo;
    if (!al) {
        for (; j + 8 <= hi + 1; j += 8)
            for (int u = 0; u < 8; u++) acc[u] = s[j + u] > acc[u] ? s[j + u] : acc[u];
        for (; j <= hi; j++) acc[0] = s[j] > acc[0] ? s[j] : acc[0];
    }
    for (; j + 8 <= hi + 1; j += 8)
        for (int u = 0; u < 8; u++) {
            /* v = allowed ? s : -inf, selected on the bits (a float select would not vectorise) */
            uint32_t keep = 0u - (uint32_t)(al[j + u] != 0);
            union { float f; uint32_t u; } v = {.f = s[j + u]}, ninf = {.f = -INFINITY};
            v.u = (v.u & keep) | (ninf.u & ~keep);
            acc[u] = v.f > acc[u] ? v.f : acc[u];
        }
    float m = -INFINITY;
    for (int u = 0; u < 8; u++) m = acc[u] > m ? acc[u] : m;
    for (; j <= hi; j++)
        if (al[j] && s[j] > m) m = s[j];
    return m;
}

/* p[j] = exp(s[j] - m) where allowed, 0 elsewhere, for j in [lo, hi] (al NULL: all allowed).
 * The masked lanes are cleared on the bits (their exponent may overflow: masked keys are not in
 * the max). */
SL_VECTOR_CLONES
static void row_exp(float *p, const float *s, const uint8_t *al, float m, int lo, int hi)
{
    if (!al) {
        for (int j = lo; j <= hi; j++) p[j] = exp_nonpos(s[j] - m);
        return;
    }
    for (int j = lo; j <= hi; j++) {
        union { float f; uint32_t u; } e = {.f = exp_nonpos(s[j] - m)};
        e.u &= 0u - (uint32_t)(al[j] != 0);
        p[j] = e.f;
    }
}

SL_VECTOR_CLONES
static void row_scale(float *p, float f, int lo, int hi)
{
    for (int j = lo; j <= hi; j++) p[j] *= f;
}

/* x[j] = 0 for j in [0, n) outside [lo, hi] (lo > hi: the whole row). */
static void row_clear_outside(float *x, int lo, int hi, int n)
{
    int a = lo < n ? lo : n, z = hi + 1 > 0 ? hi + 1 : 0;
    if (a > 0) memset(x, 0, (size_t)a * sizeof(float));
    if (z < n) memset(x + z, 0, (size_t)(n - z) * sizeof(float));
}

/* Threads that may run this op's blocks: inside an enclosing parallel region (batch shards)
 * nested regions are inactive and one thread runs them all. Measured outside any region, so the
 * measured arena is an upper bound. */
static int scratch_threads(void)
{
    return omp_in_parallel() ? 1 : omp_get_max_threads();
}

static Scratch *scratch_for_threads(Arena *a, int n_threads, int T)
{
    size_t tile = (size_t)ATTN_TILE * T * sizeof(float);
    Scratch *sc = arena_alloc(a, (size_t)n_threads * sizeof(Scratch));
    for (int t = 0; t < n_threads; t++) {
        sc[t].S = arena_alloc_uninit(a, tile);
        sc[t].P = arena_alloc_uninit(a, tile);
        sc[t].dP = arena_alloc_uninit(a, tile);
        sc[t].g = arena_alloc(a, ATTN_TILE * sizeof(float));
    }
    return sc;
}

/* Row (b, t), head h of a (B, T, H*D) tensor. */
static const float *head_row(const float *x, const AttnCtx *c, int b, int h, int t)
{
    return x + ((size_t)b * c->T + t) * c->C + (size_t)h * c->D;
}

static size_t attn_work(const AttnCtx *c)
{
    return (size_t)c->B * c->H * c->T * c->T * c->D;
}

/* First and last allowed key of every query, so rows only touch their mask's support
 * (half the work for causal masks, far less for windows). lo > hi marks an empty row. */
static void rows_find_range(int *lo, int *hi, uint8_t *dense, const uint8_t *allowed, int B, int T)
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
        int n = 0;
        for (int j = a; j <= z; j++) n += al[j];
        dense[r] = n == z - a + 1;
    }
}

/* Interventions: p[j] (and the sigmoid slope s[j]) times w[j] for keys j != i (tile-relative
 * indices). A constant factor on an unnormalised weight leaves the softmax backward formula
 * unchanged. */
static void row_apply_key_weight(float *p, float *s, const float *w, int i, int lo, int hi)
{
    for (int j = lo; j <= hi; j++) {
        if (j == i) continue;
        p[j] *= w[j];
        if (s) s[j] *= w[j];
    }
}

/* The tile of rows i0 .. i0+m-1 and the union of their key ranges (n = 0 if all are empty). */
static Tile tile_make(const AttnCtx *c, int b, int h, int i0)
{
    Tile t = {b, h, i0, c->T - i0 < ATTN_TILE ? c->T - i0 : ATTN_TILE, c->T, 0};
    int khi = -1;
    for (int r = 0; r < t.m; r++) {
        int lo = c->row_lo[b * c->T + i0 + r], hi = c->row_hi[b * c->T + i0 + r];
        if (lo > hi) continue;
        if (lo < t.k0) t.k0 = lo;
        if (hi > khi) khi = hi;
    }
    t.n = khi >= t.k0 ? khi - t.k0 + 1 : 0;
    if (t.n == 0) t.k0 = 0;
    return t;
}

static int n_tiles(const AttnCtx *c) { return (c->T + ATTN_TILE - 1) / ATTN_TILE; }

/* Where forward keeps tile t's (m, n) weights: the tiles of one (b, h) block are consecutive,
 * blocks in (b, h) order. */
static size_t tile_offset(const AttnCtx *c, const Tile *t)
{
    return c->block_start[(size_t)t->b * c->H + t->h] +
           c->tile_start[(size_t)t->b * n_tiles(c) + t->i0 / ATTN_TILE];
}

static Tile tile_make(const AttnCtx *c, int b, int h, int i0);

/* Sizes the kept weights (tile spans depend on b's mask only, not on h) and allocates them, with
 * the slopes for the sigmoid forms and every row's extra terms. */
static void attn_keep_alloc(AttnCtx *c, Arena *a)
{
    int nt = n_tiles(c);
    c->tile_start = arena_alloc_uninit(a, (size_t)c->B * nt * sizeof(size_t));
    c->block_start = arena_alloc_uninit(a, (size_t)c->B * c->H * sizeof(size_t));
    size_t total = 0;
    for (int b = 0; b < c->B; b++) {
        size_t in_block = 0;
        for (int ti = 0; ti < nt; ti++) {
            Tile t = tile_make(c, b, 0, ti * ATTN_TILE);
            c->tile_start[(size_t)b * nt + ti] = in_block;
            in_block += (size_t)t.m * t.n;
        }
        for (int h = 0; h < c->H; h++) {
            c->block_start[(size_t)b * c->H + h] = total;
            total += in_block;
        }
    }
    c->kept_p = arena_alloc_uninit(a, total * sizeof(float));
    int sigmoid_form = c->norm == ATTN_SIGMOID || c->norm == ATTN_SIGMOID_NORM || c->norm == ATTN_RELU;
    c->kept_s = sigmoid_form ? arena_alloc_uninit(a, total * sizeof(float)) : NULL;
    c->kept_ex = arena_alloc_uninit(a, (size_t)c->B * c->H * c->T * sizeof(RowExtra));
}

/* S (m, n) = Q_tile K_span^T / sqrt(D): one sgemm on the strided head columns. */
static void tile_scores(float *S, const AttnCtx *c, const Tile *t)
{
    if (t->n == 0) return;
    sgemm(0, 1, t->m, t->n, c->D, c->inv_sqrt_d, head_row(c->q->data, c, t->b, t->h, t->i0), c->C,
          head_row(c->k->data, c, t->b, t->h, t->k0), c->C, 0.0f, S, t->n);
}

/* ReLU attention: p[j] = relu(s[j]) / n over allowed j, n = allowed keys (+ the sink key); s[j]
 * becomes the slope 1/n where s[j] > 0, else 0 (what backward needs, as for sigmoid). */
static void relu_row(float *p, RowExtra *ex, float *s, const uint8_t *al, int lo, int hi,
                     int has_key, float sk)
{
    int n = has_key;
    for (int j = lo; j <= hi; j++) n += al[j] != 0;
    float inv = n > 0 ? 1.0f / (float)n : 0.0f;
    for (int j = lo; j <= hi; j++) {
        int on = al[j] && s[j] > 0.0f;
        p[j] = on ? s[j] * inv : 0.0f;
        s[j] = on ? inv : 0.0f;
    }
    if (has_key) {
        ex->key = sk > 0.0f ? sk * inv : 0.0f;
        ex->slope_key = sk > 0.0f ? inv : 0.0f;
    }
}

/* Weights of row r of tile t from its scores s (n, key k0 + j at j): p[j] (0 where not allowed
 * or outside the row's range) and the extra terms in ex. On return s[j] holds sigmoid'(score)
 * (0 where not allowed) for the sigmoid forms, which is what backward needs. */
static void row_weights(float *p, RowExtra *ex, float *s, const AttnCtx *c, const Tile *t, int r)
{
    int T = c->T, D = c->D, b = t->b, h = t->h, i = t->i0 + r, n = t->n;
    int lo = c->row_lo[b * T + i] - t->k0, hi = c->row_hi[b * T + i] - t->k0;
    const uint8_t *al = c->allowed + ((size_t)b * T + i) * T + t->k0;
    const float *qi = head_row(c->q->data, c, b, h, i);
    memset(ex, 0, sizeof *ex);
    row_clear_outside(p, lo, hi, n);
    if (c->slopes) {
        const int32_t *pos = c->positions + (size_t)b * T;
        float m = c->slopes[h];
        for (int j = lo; j <= hi; j++) s[j] -= m * fabsf((float)(pos[i] - pos[t->k0 + j]));
    }
    int has_key = c->sink_k != NULL, has_logit = c->sink_logit != NULL;
    float sk = has_key ? dotf(qi, c->sink_k->data + (size_t)h * D, D) * c->inv_sqrt_d : 0.0f;
    float bl = has_logit ? c->sink_logit->data[h] : 0.0f;
    float b0 = c->sig_bias, z, f;

    switch (c->norm) {
    case ATTN_SOFTMAX:
    case ATTN_SOFTMAX1:
    case ATTN_SCALED: {
        /* Stable form: subtract the max over every term, sink terms included. */
        const uint8_t *mal = c->row_dense[b * T + i] ? NULL : al;
        float m = row_max(s, mal, lo, hi);
        if (has_key && sk > m) m = sk;
        if (has_logit && bl > m) m = bl;
        if (c->norm == ATTN_SOFTMAX1 && 0.0f > m) m = 0.0f;
        row_exp(p, s, mal, m, lo, hi);
        if (c->key_weight)
            row_apply_key_weight(p, NULL, c->key_weight + (size_t)h * T + t->k0, i - t->k0, lo, hi);
        z = row_sum(p, NULL, lo, hi);
        if (has_key) ex->key = exp_nonpos(sk - m);
        if (has_logit) ex->logit = exp_nonpos(bl - m);
        if (c->norm == ATTN_SOFTMAX1) ex->fixed = exp_nonpos(-m);
        z += ex->key + ex->logit + ex->fixed;
        /* z >= 1 unless the row has no term at all (then everything stays 0). */
        f = z > 0.0f ? (c->norm == ATTN_SCALED ? c->scale : 1.0f) / z : 0.0f;
        row_scale(p, f, lo, hi);
        ex->key *= f;
        ex->logit *= f;
        ex->fixed *= f;
        return;
    }
    case ATTN_RELU:
        relu_row(p, ex, s, al, lo, hi, has_key, sk);
        return;
    case ATTN_SIGMOID:
    case ATTN_SIGMOID_NORM:
        for (int j = lo; j <= hi; j++) {
            if (al[j]) {
                p[j] = sigmoid_slope(s[j] + b0, &s[j]);
            } else {
                p[j] = 0.0f;
                s[j] = 0.0f;
            }
        }
        /* p_j = w_j sigmoid(.) has slope w_j sigmoid'(.): scaling s[] too keeps backward exact */
        if (c->key_weight)
            row_apply_key_weight(p, s, c->key_weight + (size_t)h * T + t->k0, i - t->k0, lo, hi);
        if (has_key) ex->key = sigmoid_slope(sk + b0, &ex->slope_key);
        if (c->norm == ATTN_SIGMOID) return;
        /* sigmoid_norm: the logit sink is a virtual key with score b_h; divide by the row sum. */
        if (has_logit) ex->logit = sigmoid_slope(bl + b0, &ex->slope_logit);
        z = row_sum(p, NULL, lo, hi) + ex->key + ex->logit;
        ex->z = z;
        f = z > 0.0f ? 1.0f / z : 0.0f;
        for (int j = lo; j <= hi; j++) p[j] *= f;
        ex->key *= f;
        ex->logit *= f;
        return;
    }
}

/* ---- forward ---------------------------------------------------------------------------- */

/* out (B, T, H*D) rows of tile t; optional probes keep (B, H, T, T) and mass (B, H, T). */
static void attn_forward_tile(float *out, float *keep, float *mass, Scratch *sc, const AttnCtx *c,
                              const Tile *t)
{
    int T = c->T, D = c->D, n = t->n;
    float *P = c->kept_p ? c->kept_p + tile_offset(c, t) : sc->P;
    float *S = c->kept_s ? c->kept_s + tile_offset(c, t) : sc->S;
    tile_scores(S, c, t);
    for (int r = 0; r < t->m; r++) {
        RowExtra ex;
        row_weights(P + (size_t)r * n, &ex, S + (size_t)r * n, c, t, r);
        sc->g[r] = ex.key;
        size_t row = ((size_t)t->b * c->H + t->h) * T + t->i0 + r;
        if (c->kept_ex) c->kept_ex[row] = ex;
        if (keep) {
            float *kr = keep + row * T;
            memset(kr, 0, (size_t)T * sizeof(float));
            if (n) memcpy(kr + t->k0, P + (size_t)r * n, (size_t)n * sizeof(float));
        }
        if (mass) mass[row] = ex.key + ex.logit + ex.fixed;
    }
    /* forward: o_i = sum_j p_j v_j + p_key sink_v */
    float *o = out + ((size_t)t->b * T + t->i0) * c->C + (size_t)t->h * D;
    if (n)
        sgemm(0, 0, t->m, D, n, 1.0f, P, n, head_row(c->v->data, c, t->b, t->h, t->k0), c->C,
              0.0f, o, c->C);
    else
        for (int r = 0; r < t->m; r++) memset(o + (size_t)r * c->C, 0, (size_t)D * sizeof(float));
    if (c->sink_v) {
        const float *sv = c->sink_v->data + (size_t)t->h * D;
        for (int r = 0; r < t->m; r++)
            for (int d = 0; d < D; d++) o[(size_t)r * c->C + d] += sc->g[r] * sv[d];
    }
}

static void attn_forward_block(float *out, float *keep, float *mass, Scratch *sc,
                               const AttnCtx *c, int b, int h)
{
    for (int i0 = 0; i0 < c->T; i0 += ATTN_TILE) {
        Tile t = tile_make(c, b, h, i0);
        attn_forward_tile(out, keep, mass, sc, c, &t);
    }
}

/* ---- backward --------------------------------------------------------------------------- */

/* Sink parameter gradients of one (b, h) block, reduced over b afterwards in a fixed order. */
typedef struct {
    float *dsk, *dsv, *dlogit;   /* (B*H, D), (B*H, D), (B*H) */
} SinkPartials;

/* Score gradients of row r of tile t (the normalizer's derivative at forward's kept weights):
 * p, dp and s (the slopes; NULL for the softmax family) are the row's (n) slices of the tile;
 * dp holds dO_i . v_j on entry and the gradient of the pre-scale scores q_i . k_j on return (0
 * outside the mask). Returns the gradient of the pre-scale sink key score; dsk, dsv and *dlogit
 * are accumulated. */
SL_VECTOR_CLONES
static float row_backward(float *p, float *dp, float *s, float *dsk, float *dsv, float *dlogit,
                          const AttnCtx *c, const Tile *t, const float *doi, int r)
{
    int T = c->T, D = c->D, b = t->b, h = t->h, i = t->i0 + r, n = t->n;
    int lo = c->row_lo[b * T + i] - t->k0, hi = c->row_hi[b * T + i] - t->k0;
    const float *sv = c->sink_v ? c->sink_v->data + (size_t)h * D : NULL;
    /* p, s and the extra terms are forward's (row_weights), kept */
    RowExtra ex = c->kept_ex[((size_t)b * c->H + h) * T + i];
    /* forward was: o_i = sum_j p_j v_j + p_key sink_v */
    float dp_key = sv ? dotf(doi, sv, D) : 0.0f;
    float ds_key = 0.0f, ds_logit = 0.0f, rho, iz;
    switch (c->norm) {
    case ATTN_SOFTMAX:
    case ATTN_SOFTMAX1:
    case ATTN_SCALED: {
        /* p_u = c e_u / Z: dS_u = p_u (dP_u - sum_t p_t dP_t / c). */
        rho = ex.key * dp_key + row_sum(p, dp, lo, hi);
        float q = rho / (c->norm == ATTN_SCALED ? c->scale : 1.0f);
        for (int j = lo; j <= hi; j++) dp[j] = p[j] * (dp[j] - q);
        ds_key = ex.key * (dp_key - q);
        ds_logit = ex.logit * (0.0f - q);
        break;
    }
    case ATTN_SIGMOID:
    case ATTN_RELU:
        /* p_u = sigmoid(s_u + b): dS_u = dP_u sigmoid'(s_u + b); relu: p_u = relu(s_u) / n,
         * dS_u = dP_u [s_u > 0] / n; s[] holds the slopes. */
        for (int j = lo; j <= hi; j++) dp[j] = dp[j] * s[j];
        ds_key = dp_key * ex.slope_key;
        break;
    case ATTN_SIGMOID_NORM:
        /* p_u = sig_u / z (quotient rule): dsig_u = (dP_u - sum_t p_t dP_t) / z,
         * dS_u = dsig_u sigmoid'(s_u + b); s[] holds the slopes. */
        rho = ex.key * dp_key + row_sum(p, dp, lo, hi);
        iz = ex.z > 0.0f ? 1.0f / ex.z : 0.0f;
        for (int j = lo; j <= hi; j++) dp[j] = (dp[j] - rho) * iz * s[j];
        ds_key = (dp_key - rho) * iz * ex.slope_key;
        ds_logit = (0.0f - rho) * iz * ex.slope_logit;
        break;
    }
    /* forward was: s_ij = q_i . k_j / sqrt(D) (+ ALiBi, which has no parameters) */
    for (int j = lo; j <= hi; j++) dp[j] *= c->inv_sqrt_d;
    row_clear_outside(dp, lo, hi, n);
    float g = ds_key * c->inv_sqrt_d;
    if (c->sink_k) {
        const float *qi = head_row(c->q->data, c, b, h, i);
        for (int d = 0; d < D; d++) dsk[d] += g * qi[d];
    }
    if (sv)
        for (int d = 0; d < D; d++) dsv[d] += ex.key * doi[d];
    *dlogit += ds_logit;
    return g;
}

/* How backward starts q, k and v's gradients when they held nothing yet (grad_fresh): each tile
 * writes its query rows of dQ (beta = 0), each (b, h) block zeroes its own dK, dV columns just
 * before its tiles add into them, so no pass over the whole gradients is needed. */
typedef struct {
    int write_dq, zero_dk, zero_dv;
} GradStart;

/* rows x D block at x with row stride C set to 0 */
static void head_block_clear(float *x, int rows, int D, int C)
{
    for (int r = 0; r < rows; r++) memset(x + (size_t)r * C, 0, (size_t)D * sizeof(float));
}

/* Gradients of tile t from forward's kept P (and slopes): dP = dO V^T, the per-row derivative, then
 * dQ += dS K, dK += dS^T Q and dV += P^T dO, each one sgemm accumulating into the grads. */
static void attn_backward_tile(Scratch *sc, float *dsk, float *dsv, float *dlogit,
                               const AttnCtx *c, const GradStart *gs, const float *dout,
                               const Tile *t)
{
    int D = c->D, C = c->C, m = t->m, n = t->n, b = t->b, h = t->h;
    const float *dO = head_row(dout, c, b, h, t->i0);
    float *P = c->kept_p + tile_offset(c, t);
    float *S = c->kept_s ? c->kept_s + tile_offset(c, t) : NULL;
    if (n)
        sgemm(0, 1, m, n, D, 1.0f, dO, C, head_row(c->v->data, c, b, h, t->k0), C, 0.0f, sc->dP, n);
    for (int r = 0; r < m; r++)
        sc->g[r] = row_backward(P + (size_t)r * n, sc->dP + (size_t)r * n, S ? S + (size_t)r * n : NULL,
                                dsk, dsv, dlogit, c, t, dO + (size_t)r * C, r);
    if (c->q->grad) {
        float *dq = c->q->grad + ((size_t)b * c->T + t->i0) * C + (size_t)h * D;
        if (n)
            sgemm(0, 0, m, D, n, 1.0f, sc->dP, n, head_row(c->k->data, c, b, h, t->k0), C,
                  gs->write_dq ? 0.0f : 1.0f, dq, C);
        else if (gs->write_dq)
            head_block_clear(dq, m, D, C);
        if (c->sink_k) {
            const float *skh = c->sink_k->data + (size_t)h * D;
            for (int r = 0; r < m; r++)
                for (int d = 0; d < D; d++) dq[(size_t)r * C + d] += sc->g[r] * skh[d];
        }
    }
    if (n && c->k->grad)
        sgemm(1, 0, n, D, m, 1.0f, sc->dP, n, head_row(c->q->data, c, b, h, t->i0), C, 1.0f,
              c->k->grad + ((size_t)b * c->T + t->k0) * C + (size_t)h * D, C);
    if (n && c->v->grad)
        sgemm(1, 0, n, D, m, 1.0f, P, n, dO, C, 1.0f,
              c->v->grad + ((size_t)b * c->T + t->k0) * C + (size_t)h * D, C);
}

static void attn_backward_block(Scratch *sc, SinkPartials *sp, const AttnCtx *c,
                                const GradStart *gs, const float *dout, int b, int h)
{
    size_t bh = (size_t)b * c->H + h, head = (size_t)b * c->T * c->C + (size_t)h * c->D;
    float dlogit = 0.0f;
    memset(sp->dsk + bh * c->D, 0, (size_t)c->D * sizeof(float));
    memset(sp->dsv + bh * c->D, 0, (size_t)c->D * sizeof(float));
    if (gs->zero_dk) head_block_clear(c->k->grad + head, c->T, c->D, c->C);
    if (gs->zero_dv) head_block_clear(c->v->grad + head, c->T, c->D, c->C);
    for (int i0 = 0; i0 < c->T; i0 += ATTN_TILE) {
        Tile t = tile_make(c, b, h, i0);
        attn_backward_tile(sc, sp->dsk + bh * c->D, sp->dsv + bh * c->D, &dlogit, c, gs, dout, &t);
    }
    sp->dlogit[bh] = dlogit;
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
    int n_threads = scratch_threads();
    /* q, k, v sharing one gradient (a test may pass one tensor twice) take the plain way: zero
     * first, then every product adds */
    GradStart gs = {0};
    if (c->q->grad != c->k->grad && c->q->grad != c->v->grad && c->k->grad != c->v->grad) {
        gs.write_dq = grad_fresh(c->q);
        gs.zero_dk = grad_fresh(c->k);
        gs.zero_dv = grad_fresh(c->v);
    }
    grad_clear(c->q);
    grad_clear(c->k);
    grad_clear(c->v);
    grad_clear(c->sink_k);
    grad_clear(c->sink_v);
    grad_clear(c->sink_logit);
    Scratch *sc = scratch_for_threads(c->arena, n_threads, c->T);
    SinkPartials sp;
    sp.dsk = arena_alloc(c->arena, (size_t)BH * D * sizeof(float));
    sp.dsv = arena_alloc(c->arena, (size_t)BH * D * sizeof(float));
    sp.dlogit = arena_alloc(c->arena, (size_t)BH * sizeof(float));
    const float *dout = n->out->grad;
    int par = attn_work(c) >= ATTN_PARALLEL_MIN;
    #pragma omp parallel for schedule(static) num_threads(n_threads) if (par)
    for (int bh = 0; bh < BH; bh++)
        attn_backward_block(&sc[omp_get_thread_num()], &sp, c, &gs, dout, bh / c->H, bh % c->H);
    sink_grads_reduce(c, &sp);
}

/* ---- the op ----------------------------------------------------------------------------- */

const char *const NORMALIZER_NAMES[] = {
    [ATTN_SOFTMAX] = "softmax", [ATTN_SOFTMAX1] = "softmax1", [ATTN_SCALED] = "scaled",
    [ATTN_SIGMOID] = "sigmoid", [ATTN_SIGMOID_NORM] = "sigmoid_norm", [ATTN_RELU] = "relu",
    NULL,
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
    if ((int)s->normalizer < 0 || s->normalizer > ATTN_RELU || (int)s->sink < 0 ||
        s->sink > SINK_TOKEN || (int)s->gate < 0 || s->gate > GATE_HEADWISE) {
        snprintf(msg, n, "model.attention: unknown normalizer, sink or gate value");
        return -1;
    }
    /* sigmoid_norm takes the logit as a virtual key in its row sum; plain sigmoid and relu
     * (relu(s) / allowed keys) have no sum to join. */
    if (s->sink == SINK_LOGIT && (s->normalizer == ATTN_SIGMOID || s->normalizer == ATTN_RELU)) {
        snprintf(msg, n, "model.attention.sink: logit adds a term to the row's denominator, "
                 "which normalizer %s does not have; use %sk_bias or kv_bias",
                 NORMALIZER_NAMES[s->normalizer],
                 s->normalizer == ATTN_SIGMOID ? "sigmoid_norm, " : "");
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
    SL_CHECK(!(a->sink_logit && (a->spec->normalizer == ATTN_SIGMOID ||
                                 a->spec->normalizer == ATTN_RELU)),
             "op_attention: a sink logit has no effect without a denominator (normalizer %s)",
             NORMALIZER_NAMES[a->spec->normalizer]);
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
    c->row_dense = arena_alloc(&g->arena, (size_t)c->B * c->T);
    rows_find_range(c->row_lo, c->row_hi, c->row_dense, c->allowed, c->B, c->T);

    int needs_grad = q->grad || k->grad || v->grad || (c->sink_k && c->sink_k->grad) ||
                     (c->sink_v && c->sink_v->grad) || (c->sink_logit && c->sink_logit->grad);
    Tensor *out = graph_output(g, 3, q->shape, needs_grad);
    /* backward reads the kept weights instead of recomputing them (scores, max, exp, sum: about
     * a third of attention's cost) */
    if (out->grad) attn_keep_alloc(c, &g->arena);
    int n_threads = scratch_threads();
    Scratch *sc = scratch_for_threads(&g->arena, n_threads, c->T);
    static int blas_single;
    if (!blas_single) { /* the tile products run inside OpenMP threads: OpenBLAS stays serial */
        openblas_set_num_threads(1);
        blas_single = 1;
    }
    int BH = c->B * c->H;
    int par = attn_work(c) >= ATTN_PARALLEL_MIN;
    #pragma omp parallel for schedule(static) num_threads(n_threads) if (par)
    for (int bh = 0; bh < BH; bh++)
        attn_forward_block(out->data, args->keep_probs, args->keep_sink_mass,
                           &sc[omp_get_thread_num()], c, bh / c->H, bh % c->H);
    if (out->grad) {
        Node *n = graph_node(g, "attention", attention_backward, out);
        n->lazy_grads = 1;
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
