/* metrics.c: the sink metrics of SCIENCE.md as pure functions of plain arrays (see metrics.h for
 * every definition and layout). Sums run in double in a fixed order, so a probe of a checkpoint
 * reproduces the probe logged during training bit for bit (same OpenBLAS build). */
#include "analysis/metrics.h"

#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "model/tensor.h"

/* LAPACK (shipped inside libopenblas). Fortran ABI: every argument by reference, plus the hidden
 * lengths of the character arguments at the end. */
extern void dgeev_(const char *jobvl, const char *jobvr, const int *n, double *a, const int *lda,
                   double *wr, double *wi, double *vl, const int *ldvl, double *vr,
                   const int *ldvr, double *work, const int *lwork, int *info, size_t len_jobvl,
                   size_t len_jobvr);
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                   double *w, double *work, const int *lwork, int *info, size_t len_jobz,
                   size_t len_uplo);

/* Small LAPACK problems (64 x 64) run 2-4x slower with OpenBLAS threads than without on our
 * 2-core machine (measured: dsyrk + dsyev 0.30 ms at 1 thread, 1.1 ms at 2), so the LAPACK-heavy
 * metrics run single-threaded and restore the caller's setting. */
static int blas_single_thread(void)
{
    int n = openblas_get_num_threads();
    if (n > 1) openblas_set_num_threads(1);
    return n;
}

static void blas_restore_threads(int n)
{
    if (n > 1) openblas_set_num_threads(n);
}

static int is_pad(const int32_t *doc_ids, int b, int T, int t)
{
    return doc_ids && doc_ids[(size_t)b * T + t] < 0;
}

static double norm2(const float *x, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

double metrics_alpha0_uniform_causal(int T)
{
    double h = 0;
    for (int t = 1; t <= T; t++) h += 1.0 / t;
    return T > 0 ? h / T : 0;
}

/* ---- alpha and its relatives ------------------------------------------------------------- */

/* One sequence, one head: col[k] = mean over Q_k of A[i,k] w[k] * r_i, cnt[k] = |Q_k|, where
 * r_i = 1 / sum_{allowed j} A[i,j] w[j] when normalise (0 for a zero row), else 1; w NULL = 1.
 * Rows are walked in order, so the access is contiguous. A (T, T), allowed (T, T), doc (T). */
static void seq_alpha(double *col, int *cnt, const float *A, const uint8_t *allowed,
                      const int32_t *doc, const float *w, int normalise, int T)
{
    for (int k = 0; k < T; k++) { col[k] = 0; cnt[k] = 0; }
    for (int i = 0; i < T; i++) {
        if (doc && doc[i] < 0) continue;
        const float *a = A + (size_t)i * T;
        const uint8_t *m = allowed + (size_t)i * T;
        double r = 1;
        if (normalise) {
            double z = 0;
            for (int j = 0; j < T; j++)
                if (m[j]) z += (double)a[j] * (w ? w[j] : 1.0f);
            r = z > 0 ? 1 / z : 0;
        }
        for (int k = 0; k < T; k++) {
            if (!m[k]) continue;
            col[k] += (double)a[k] * (w ? w[k] : 1.0f) * r;
            cnt[k]++;
        }
    }
    for (int k = 0; k < T; k++)
        if (cnt[k]) col[k] /= cnt[k];
}

/* Per-sequence alpha averaged over the sequences where Q_k^b is non-empty. key_w (H, B*T) or
 * NULL: per-key weights (Kobayashi's ||v_j W_O||). */
static void alpha_core(float *alpha, float *n_q, const float *attn, const uint8_t *allowed,
                       const int32_t *doc_ids, const float *key_w, int normalise,
                       int B, int H, int T)
{
    double *acc = xcalloc((size_t)H * T + 2 * (size_t)T, sizeof(double));
    double *col = acc + (size_t)H * T, *nq = col + T;
    int *cnt = xcalloc((size_t)2 * T, sizeof(int)), *nseq = cnt + T;
    for (int b = 0; b < B; b++) {
        const int32_t *doc = doc_ids ? doc_ids + (size_t)b * T : NULL;
        for (int h = 0; h < H; h++) {
            const float *A = attn + ((size_t)b * H + h) * T * T;
            const float *w = key_w ? key_w + ((size_t)h * B + b) * T : NULL;
            seq_alpha(col, cnt, A, allowed + (size_t)b * T * T, doc, w, normalise, T);
            for (int k = 0; k < T; k++)
                if (cnt[k]) acc[(size_t)h * T + k] += col[k];
        }
        /* |Q_k^b| depends on the mask only, not on the head. */
        for (int k = 0; k < T; k++) { nseq[k] += cnt[k] > 0; nq[k] += cnt[k]; }
    }
    for (int h = 0; h < H; h++)
        for (int k = 0; k < T; k++)
            alpha[(size_t)h * T + k] = nseq[k] ? (float)(acc[(size_t)h * T + k] / nseq[k]) : 0;
    if (n_q)
        for (int k = 0; k < T; k++) n_q[k] = B > 0 ? (float)(nq[k] / B) : 0;
    free(acc);
    free(cnt);
}

void metrics_alpha(float *alpha, float *n_q, const float *attn, const uint8_t *allowed,
                   const int32_t *doc_ids, int proxy, int B, int H, int T)
{
    alpha_core(alpha, n_q, attn, allowed, doc_ids, NULL, proxy, B, H, T);
}

float metrics_sink_rate(const float *alpha, int n, int stride, float eps)
{
    int above = 0;
    for (int i = 0; i < n; i++) above += alpha[(size_t)i * stride] > eps;
    return n > 0 ? (float)above / n : 0;
}

float metrics_sink_rate_gu(const float *attn, const uint8_t *allowed, const int32_t *doc_ids,
                           int proxy, float eps, int B, int H, int T)
{
    int above = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const float *A = attn + ((size_t)b * H + h) * T * T;
            const uint8_t *m = allowed + (size_t)b * T * T;
            double s = 0;
            for (int i = 0; i < T; i++) {
                if (is_pad(doc_ids, b, T, i) || !m[(size_t)i * T]) continue;
                double r = 1;
                if (proxy) {
                    double z = 0;
                    for (int j = 0; j < T; j++)
                        if (m[(size_t)i * T + j]) z += A[(size_t)i * T + j];
                    r = z > 0 ? 1 / z : 0;
                }
                s += A[(size_t)i * T] * r;
            }
            /* Gu et al. divide by T - k for key k, not by the queries allowed to see it */
            above += s / T > eps;
        }
    return B * H > 0 ? 100.0f * (float)above / (float)(B * H) : 0;
}

void metrics_sink_location(int *loc, float *loc_alpha, const float *alpha, const float *n_q,
                           int H, int T)
{
    for (int h = 0; h < H; h++) {
        int best = -1;
        for (int k = 0; k < T; k++) {
            /* keys seen by few queries are excluded: a head attending to itself would report
             * alpha = 1 at the last key */
            if (n_q[k] < T / 4.0f) continue;
            if (best < 0 || alpha[(size_t)h * T + k] > alpha[(size_t)h * T + best]) best = k;
        }
        loc[h] = best;
        if (loc_alpha) loc_alpha[h] = best >= 0 ? alpha[(size_t)h * T + best] : 0;
    }
}

typedef enum { SELECT_BOS, SELECT_LAST } KeySelect;

/* Mean of alpha_k^b over the selected positions (b, k) with |Q_k^b| > 0; returns their count. */
static int alpha_selected(float *out, const float *attn, const uint8_t *allowed,
                          const int32_t *doc_ids, const int32_t *tokens, int bos_id,
                          KeySelect sel, int proxy, int B, int H, int T)
{
    double *acc = xcalloc((size_t)H + T, sizeof(double)), *col = acc + H;
    int *cnt = xcalloc((size_t)T, sizeof(int));
    int n = 0;
    for (int b = 0; b < B; b++) {
        const int32_t *doc = doc_ids ? doc_ids + (size_t)b * T : NULL;
        int last = -1;
        for (int t = 0; t < T; t++)
            if (!is_pad(doc_ids, b, T, t)) last = t;
        for (int h = 0; h < H; h++) {
            seq_alpha(col, cnt, attn + ((size_t)b * H + h) * T * T, allowed + (size_t)b * T * T,
                      doc, NULL, proxy, T);
            for (int k = 0; k < T; k++) {
                int chosen = sel == SELECT_BOS ? tokens[(size_t)b * T + k] == bos_id : k == last;
                if (!chosen || !cnt[k]) continue;
                acc[h] += col[k];
                if (h == 0) n++;
            }
        }
    }
    for (int h = 0; h < H; h++) out[h] = n ? (float)(acc[h] / n) : 0;
    free(acc);
    free(cnt);
    return n;
}

int metrics_alpha_bos(float *out, const float *attn, const uint8_t *allowed,
                      const int32_t *doc_ids, const int32_t *tokens, int bos_id, int proxy,
                      int B, int H, int T)
{
    return alpha_selected(out, attn, allowed, doc_ids, tokens, bos_id, SELECT_BOS, proxy,
                          B, H, T);
}

int metrics_alpha_last(float *out, const float *attn, const uint8_t *allowed,
                       const int32_t *doc_ids, int proxy, int B, int H, int T)
{
    return alpha_selected(out, attn, allowed, doc_ids, NULL, 0, SELECT_LAST, proxy, B, H, T);
}

void metrics_alpha_bos_by_class(float *out, int *n, const float *attn, const uint8_t *allowed,
                                const int32_t *doc_ids, const int32_t *tokens,
                                const uint8_t *query_class, int n_class, int bos_id, int proxy,
                                int B, int H, int T)
{
    double *acc = xcalloc((size_t)n_class * H, sizeof(double));
    for (int c = 0; c < n_class; c++) n[c] = 0;
    for (int b = 0; b < B; b++) {
        const int32_t *tok = tokens + (size_t)b * T;
        const uint8_t *cls = query_class + (size_t)b * T;
        for (int i = 0; i < T; i++) {
            if (is_pad(doc_ids, b, T, i) || tok[i] == bos_id || cls[i] >= n_class) continue;
            const uint8_t *m = allowed + ((size_t)b * T + i) * T;
            int sees = 0;
            for (int j = 0; j < T; j++) sees |= m[j] && tok[j] == bos_id;
            if (!sees) continue;
            n[cls[i]]++;
            for (int h = 0; h < H; h++) {
                const float *a = attn + (((size_t)b * H + h) * T + i) * T;
                double on = 0, z = 0;
                for (int j = 0; j < T; j++) {
                    if (!m[j]) continue;
                    z += a[j];
                    if (tok[j] == bos_id) on += a[j];
                }
                if (proxy) on = z > 0 ? on / z : 0;
                acc[(size_t)cls[i] * H + h] += on;
            }
        }
    }
    for (int c = 0; c < n_class; c++)
        for (int h = 0; h < H; h++)
            out[(size_t)c * H + h] = n[c] ? (float)(acc[(size_t)c * H + h] / n[c]) : 0;
    free(acc);
}

void metrics_loss_by_class(float *loss, int *n, const float *logits, const int32_t *targets,
                           const float *loss_mask, const uint8_t *query_class, int n_class,
                           int B, int T, int V)
{
    double *acc = xcalloc((size_t)n_class, sizeof(double));
    for (int c = 0; c < n_class; c++) n[c] = 0;
    for (size_t r = 0; r < (size_t)B * T; r++) {
        int c = query_class[r];
        if (loss_mask[r] == 0.0f || c >= n_class) continue;
        const float *z = logits + r * V;
        /* log-sum-exp around the max, in double */
        double mx = z[0], s = 0;
        for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        for (int v = 0; v < V; v++) s += exp((double)z[v] - mx);
        acc[c] += mx + log(s) - (double)z[targets[r]];
        n[c]++;
    }
    for (int c = 0; c < n_class; c++) loss[c] = n[c] ? (float)(acc[c] / n[c]) : 0;
    free(acc);
}

void metrics_sink_mass(float *out, const float *sink_mass, const int32_t *doc_ids,
                       int B, int H, int T)
{
    for (int h = 0; h < H; h++) {
        double s = 0;
        long n = 0;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < T; i++) {
                if (is_pad(doc_ids, b, T, i)) continue;
                s += sink_mass[((size_t)b * H + h) * T + i];
                n++;
            }
        out[h] = n ? (float)(s / n) : 0;
    }
}

/* ---- norms of values, keys and queries ------------------------------------------------- */

/* Per sequence ||x_0|| / mean_{t >= t0, non-PAD} ||x_t|| over vectors of `width` floats at
 * stride `stride` per position, averaged over the sequences where position 0 is not PAD and the
 * mean is positive (0 if none). The waiver ratio (t0 = 0) and the massive-activation ratio
 * (t0 = 1) are this one quantity. */
static float first_to_mean_norm(const float *x, int stride, int width, const int32_t *doc_ids,
                                int B, int T, int t0)
{
    double acc = 0;
    int n_seq = 0;
    for (int b = 0; b < B; b++) {
        if (is_pad(doc_ids, b, T, 0)) continue;
        double sum = 0;
        int n = 0;
        for (int t = t0; t < T; t++) {
            if (is_pad(doc_ids, b, T, t)) continue;
            sum += norm2(x + ((size_t)b * T + t) * stride, width);
            n++;
        }
        if (n == 0 || sum <= 0) continue;
        acc += norm2(x + (size_t)b * T * stride, width) / (sum / n);
        n_seq++;
    }
    return n_seq ? (float)(acc / n_seq) : 0;
}

void metrics_norm_ratio(float *ratio, float *norms, const float *x, const int32_t *doc_ids,
                        int B, int T, int H, int D)
{
    int C = H * D;
    for (int h = 0; h < H; h++) ratio[h] = first_to_mean_norm(x + (size_t)h * D, C, D, doc_ids, B, T, 0);
    if (!norms) return;
    for (int h = 0; h < H; h++)
        for (int t = 0; t < T; t++) {
            double sum = 0;
            int n = 0;
            for (int b = 0; b < B; b++) {
                if (is_pad(doc_ids, b, T, t)) continue;
                sum += norm2(x + ((size_t)b * T + t) * C + (size_t)h * D, D);
                n++;
            }
            norms[(size_t)h * T + t] = n ? (float)(sum / n) : 0;
        }
}

void metrics_qk0(float *cos_mean, float *normprod, const float *q, const float *k,
                 const uint8_t *allowed, const int32_t *doc_ids, int B, int T, int H, int D)
{
    int C = H * D;
    for (int h = 0; h < H; h++) {
        double acc_cos = 0, acc_np = 0;
        long n = 0;
        for (int b = 0; b < B; b++) {
            if (is_pad(doc_ids, b, T, 0)) continue;
            const float *k0 = k + (size_t)b * T * C + (size_t)h * D;
            double nk = norm2(k0, D);
            for (int i = 0; i < T; i++) {
                if (is_pad(doc_ids, b, T, i)) continue;
                if (allowed && !allowed[((size_t)b * T + i) * T]) continue;
                const float *qi = q + ((size_t)b * T + i) * C + (size_t)h * D;
                double nq = norm2(qi, D), dot = 0;
                for (int d = 0; d < D; d++) dot += (double)qi[d] * k0[d];
                acc_cos += nq * nk > 0 ? dot / (nq * nk) : 0;
                acc_np += nq * nk;
                n++;
            }
        }
        cos_mean[h] = n ? (float)(acc_cos / n) : 0;
        normprod[h] = n ? (float)(acc_np / n) : 0;
    }
}

void metrics_norm_attention(float *share, const float *attn, const float *v, const float *wo,
                            const uint8_t *allowed, const int32_t *doc_ids, int B, int H, int T,
                            int D)
{
    int C = H * D, BT = B * T;
    float *u = xmalloc((size_t)BT * C * sizeof(float));
    float *vn = xmalloc((size_t)H * BT * sizeof(float));
    for (int h = 0; h < H; h++) {
        /* u = v^h W_O^h^T for every position at once: (BT, D) x (D, C) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BT, C, D, 1.0f, v + (size_t)h * D,
                    C, wo + (size_t)h * D, C, 0.0f, u, C);
        for (int r = 0; r < BT; r++) vn[(size_t)h * BT + r] = (float)norm2(u + (size_t)r * C, C);
    }
    alpha_core(share, NULL, attn, allowed, doc_ids, vn, 1, B, H, T);
    free(u);
    free(vn);
}

/* ---- hidden states -------------------------------------------------------------------- */

/* Hoare/Wirth selection: afterwards a[k] is the k-th smallest and a[0..k-1] <= a[k]. */
/* |x| as bits: for the non-negative floats |x| is, the unsigned order of the bits is the order of
 * the values (NaN, whose bits exceed infinity's, sorts last). */
static inline uint32_t abs_bits(float v)
{
    union { float f; uint32_t u; } b = {.f = v};
    return b.u & 0x7fffffffu;
}

/* The k-th smallest (0-based) |x| over the non-PAD tokens of x (B, T, C), exactly, by radix
 * selection on the bits: one pass counts the high 16 bits, a second the low 16 among the values
 * in the chosen high bucket. Two linear scans and no copy of x (the sort-free median of
 * metrics_massive ran over a copy of every element and was most of a light probe's metrics). */
static float abs_kth(const float *x, const int32_t *doc_ids, int B, int T, int C, long k,
                     uint32_t *count /* 65536 */)
{
    uint32_t prefix = 0;
    for (int pass = 0; pass < 2; pass++) {
        memset(count, 0, 65536 * sizeof(uint32_t));
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                if (is_pad(doc_ids, b, T, t)) continue;
                const float *row = x + ((size_t)b * T + t) * C;
                for (int c = 0; c < C; c++) {
                    uint32_t u = abs_bits(row[c]);
                    if (pass == 0) count[u >> 16]++;
                    else if ((u >> 16) == prefix) count[u & 0xffffu]++;
                }
            }
        uint32_t d = 0;
        while ((long)count[d] <= k) k -= count[d++];
        prefix = pass == 0 ? d : (prefix << 16) | d;
    }
    union { uint32_t u; float f; } v = {.u = prefix};
    return v.f;
}

void metrics_massive(float *ratio0, float *top_median, int *top_pos, int *top_chan,
                     const float *x, const int32_t *doc_ids, int B, int T, int C)
{
    *ratio0 = first_to_mean_norm(x, C, C, doc_ids, B, T, 1);

    long n = 0;
    float top = -1;
    int tp = -1, tc = -1;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            if (is_pad(doc_ids, b, T, t)) continue;
            const float *row = x + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++) {
                float m = fabsf(row[c]);
                if (m > top) { top = m; tp = t; tc = c; }
            }
            n += C;
        }
    double med = 0;
    if (n > 0) {
        uint32_t *count = xmalloc(65536 * sizeof(uint32_t));
        med = abs_kth(x, doc_ids, B, T, C, n / 2, count);
        /* even count: the mean of the two middle values */
        if (n % 2 == 0) med = 0.5 * ((double)abs_kth(x, doc_ids, B, T, C, n / 2 - 1, count) + med);
        free(count);
    }
    *top_median = med > 0 ? (float)(top / med) : 0;
    if (top_pos) *top_pos = tp;
    if (top_chan) *top_chan = tc;
}

/* ---- attention entropy ---------------------------------------------------------------- */

void metrics_entropy(float *ent, float *ent_norm, const float *attn, const uint8_t *allowed,
                     const int32_t *doc_ids, int proxy, int B, int H, int T)
{
    for (int h = 0; h < H; h++) {
        double acc = 0, acc_n = 0;
        long n_rows = 0, n_norm = 0;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < T; i++) {
                if (is_pad(doc_ids, b, T, i)) continue;
                const float *a = attn + (((size_t)b * H + h) * T + i) * T;
                const uint8_t *m = allowed + ((size_t)b * T + i) * T;
                double r = 1;
                if (proxy) {
                    double z = 0;
                    for (int j = 0; j < T; j++)
                        if (m[j]) z += a[j];
                    r = z > 0 ? 1 / z : 0;
                }
                double e = 0;
                int n = 0;
                for (int j = 0; j < T; j++) {
                    if (!m[j]) continue;
                    n++;
                    double p = a[j] * r;
                    if (p > 0) e -= p * log(p);
                }
                acc += e;
                n_rows++;
                if (n >= 2) { acc_n += e / log((double)n); n_norm++; }
            }
        ent[h] = n_rows ? (float)(acc / n_rows) : 0;
        ent_norm[h] = n_norm ? (float)(acc_n / n_norm) : 0;
    }
}

/* ---- QK eigenspectrum ------------------------------------------------------------------ */

static void mean_var(double *mean, double *var, const double *x, int n)
{
    double m = 0, v = 0;
    for (int i = 0; i < n; i++) m += x[i];
    m /= n;
    for (int i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
    *mean = m;
    *var = v / n;
}

/* Keeps the n_keep entries of largest magnitude of w (ascending, as LAPACK returns them), by
 * taking from whichever end is larger; out gets them in that order. */
static void keep_largest(double *out, const double *w, int n, int n_keep)
{
    int lo = 0, hi = n - 1;
    for (int i = 0; i < n_keep; i++)
        out[i] = fabs(w[lo]) > fabs(w[hi]) ? w[lo++] : w[hi--];
}

/* m (D x D, column-major) = W_K^h diag(g^2) W_Q^h^T / sqrt(D); q, k: the head's D rows of C. */
static void head_qk_matrix(double *m, const float *q, const float *k, const float *gain,
                           int C, int D)
{
    double scale = 1 / sqrt((double)D);
    for (int a = 0; a < D; a++)
        for (int b = 0; b < D; b++) {
            double acc = 0;
            for (int c = 0; c < C; c++) {
                double g2 = gain ? (double)gain[c] * gain[c] : 1.0;
                acc += (double)k[(size_t)a * C + c] * g2 * q[(size_t)b * C + c];
            }
            m[a + (size_t)b * D] = acc * scale;
        }
}

/* s (C x C) = (P + P^T) / 2 with P = Q'^T K' / sqrt(D), Q' = W_Q^h diag(g), K' = W_K^h diag(g):
 * the symmetric part of the bilinear form the scores use. */
static void head_sym_matrix(double *s, const float *q, const float *k, const float *gain,
                            int C, int D)
{
    double scale = 1 / sqrt((double)D);
    for (int c1 = 0; c1 < C; c1++)
        for (int c2 = c1; c2 < C; c2++) {
            double acc = 0;
            for (int a = 0; a < D; a++)
                acc += (double)q[(size_t)a * C + c1] * k[(size_t)a * C + c2]
                     + (double)k[(size_t)a * C + c1] * q[(size_t)a * C + c2];
            double g = gain ? (double)gain[c1] * gain[c2] : 1.0;
            s[c1 + (size_t)c2 * C] = s[c2 + (size_t)c1 * C] = 0.5 * acc * g * scale;
        }
}

int metrics_qk_spectrum(float *mean, float *var, float *sym_mean, float *sym_var, float *eig_re,
                        float *eig_im, const float *wq, const float *wk, const float *gain,
                        int H, int D)
{
    int C = H * D, n_sym = 2 * D < C ? 2 * D : C, info = 0, lwork = -1, one = 1;
    double q_ev, q_sy, mu, v;
    /* workspace queries: one for the D x D general problem, one for the C x C symmetric one */
    dgeev_("N", "N", &D, NULL, &D, NULL, NULL, NULL, &one, NULL, &one, &q_ev, &lwork, &info, 1, 1);
    dsyev_("N", "U", &C, NULL, &C, NULL, &q_sy, &lwork, &info, 1, 1);
    int lw_ev = (int)q_ev + 1, lw_sy = (int)q_sy + 1;
    double *m = xmalloc(((size_t)D * D + 2 * (size_t)D + (size_t)C * C + C + n_sym
                         + (size_t)(lw_ev > lw_sy ? lw_ev : lw_sy)) * sizeof(double));
    double *wr = m + (size_t)D * D, *wi = wr + D, *s = wi + D, *ws = s + (size_t)C * C;
    double *kept = ws + C, *work = kept + n_sym;
    int status = 0, threads = blas_single_thread();
    for (int h = 0; h < H; h++) {
        const float *q = wq + (size_t)h * D * C, *k = wk + (size_t)h * D * C;
        head_qk_matrix(m, q, k, gain, C, D);
        dgeev_("N", "N", &D, m, &D, wr, wi, NULL, &one, NULL, &one, work, &lw_ev, &info, 1, 1);
        if (info != 0) { status = -1; break; }
        mean_var(&mu, &v, wr, D);
        mean[h] = (float)mu;
        var[h] = (float)v;
        for (int a = 0; a < D; a++) {
            if (eig_re) eig_re[(size_t)h * D + a] = (float)wr[a];
            if (eig_im) eig_im[(size_t)h * D + a] = (float)wi[a];
        }
        head_sym_matrix(s, q, k, gain, C, D);
        dsyev_("N", "U", &C, s, &C, ws, work, &lw_sy, &info, 1, 1);
        if (info != 0) { status = -1; break; }
        keep_largest(kept, ws, C, n_sym);
        mean_var(&mu, &v, kept, n_sym);
        sym_mean[h] = (float)mu;
        sym_var[h] = (float)v;
    }
    blas_restore_threads(threads);
    free(m);
    return status;
}

/* ---- representational collapse and over-mixing ---------------------------------------- */

/* Copies sequence b's non-PAD rows into X as the columns of a column-major C x n matrix X^T;
 * returns n. */
static int gather_rows(double *X, const float *x, const int32_t *doc_ids, int b, int T, int C)
{
    int n = 0;
    for (int t = 0; t < T; t++) {
        if (is_pad(doc_ids, b, T, t)) continue;
        const float *row = x + ((size_t)b * T + t) * C;
        for (int c = 0; c < C; c++) X[(size_t)n * C + c] = row[c];
        n++;
    }
    return n;
}

/* Mean pairwise cosine (n >= 2, else 0) and ||X - 1 xbar^T||_F^2 of n rows; returns ||X||_F^2.
 * u, mu: C doubles of scratch. */
static double rows_cosine_centred(double *cos_mean, double *cen2, const double *X, int n, int C,
                                  double *u, double *mu)
{
    double tot = 0, cen = 0, uu = 0;
    int nz = 0;
    for (int c = 0; c < C; c++) { u[c] = 0; mu[c] = 0; }
    for (int r = 0; r < n; r++) {
        const double *xr = X + (size_t)r * C;
        double s = 0;
        for (int c = 0; c < C; c++) { s += xr[c] * xr[c]; mu[c] += xr[c] / n; }
        tot += s;
        if (s <= 0) continue;
        nz++;
        for (int c = 0; c < C; c++) u[c] += xr[c] / sqrt(s);
    }
    /* sum_{i != j} cos_ij = ||sum_i x_i / ||x_i|| ||^2 - (number of non-zero rows) */
    for (int c = 0; c < C; c++) uu += u[c] * u[c];
    *cos_mean = n >= 2 ? (uu - nz) / ((double)n * (n - 1)) : 0;
    for (int r = 0; r < n; r++)
        for (int c = 0; c < C; c++) {
            double d = X[(size_t)r * C + c] - mu[c];
            cen += d * d;
        }
    *cen2 = cen;
    return tot;
}

/* exp(entropy of sigma / sum sigma) of the n rows in X. Singular values come from the eigenvalues
 * of the Gram matrix (min(n, C) square, dsyrk + dsyev), 2x cheaper than dgesdd at the default
 * probe; sigma below ~1e-8 sigma_max (its square lost to rounding) moves the result < 1e-6.
 * G: min(n, C)^2 doubles, ev: min(n, C). Returns -1 on a LAPACK failure. */
static double effective_rank(const double *X, int n, int C, double *G, double *ev, double *work,
                             int lwork)
{
    int k = n < C ? n : C, info = 0;
    /* G = X X^T (n x n) when n <= C, else X^T X (C x C): the same non-zero sigma^2 */
    cblas_dsyrk(CblasColMajor, CblasUpper, n <= C ? CblasTrans : CblasNoTrans, k,
                n <= C ? C : n, 1.0, X, C, 0.0, G, k);
    dsyev_("N", "U", &k, G, &k, ev, work, &lwork, &info, 1, 1);
    if (info != 0) return -1;
    double ssum = 0, ent = 0;
    for (int i = 0; i < k; i++) {
        ev[i] = ev[i] > 0 ? sqrt(ev[i]) : 0;
        ssum += ev[i];
    }
    for (int i = 0; i < k; i++) {
        double p = ev[i] / ssum;
        if (p > 0) ent -= p * log(p);
    }
    return exp(ent);
}

int metrics_collapse(float *cos_mean, float *centered, float *eff_rank, const float *x,
                     const int32_t *doc_ids, int B, int T, int C)
{
    int mn = T < C ? T : C, lwork = -1, info = 0;
    double q_work;
    dsyev_("N", "U", &mn, NULL, &mn, NULL, &q_work, &lwork, &info, 1, 1);
    lwork = (int)q_work + 1;
    double *X = xmalloc(((size_t)C * T + (size_t)mn * mn + mn + 2 * (size_t)C + lwork)
                        * sizeof(double));
    double *G = X + (size_t)C * T, *ev = G + (size_t)mn * mn, *u = ev + mn, *mu = u + C;
    double *work = mu + C;
    double acc_cos = 0, acc_cen = 0, acc_rank = 0;
    int n_cos = 0, n_seq = 0, status = 0, threads = blas_single_thread();
    for (int b = 0; b < B; b++) {
        int n = gather_rows(X, x, doc_ids, b, T, C);
        if (n == 0) continue;
        double cosm, cen2, tot = rows_cosine_centred(&cosm, &cen2, X, n, C, u, mu);
        if (n >= 2) { acc_cos += cosm; n_cos++; }
        if (tot <= 0) continue;
        double rank = effective_rank(X, n, C, G, ev, work, lwork);
        if (rank < 0) { status = -1; break; }
        acc_cen += sqrt(cen2 / tot);
        acc_rank += rank;
        n_seq++;
    }
    *cos_mean = n_cos ? (float)(acc_cos / n_cos) : 0;
    *centered = n_seq ? (float)(acc_cen / n_seq) : 0;
    *eff_rank = n_seq ? (float)(acc_rank / n_seq) : 0;
    blas_restore_threads(threads);
    free(X);
    return status;
}

float metrics_perturb_spread(float *by_pos, const float *h, const float *hp,
                             const int32_t *doc_ids, int pos, int B, int T, int C)
{
    double acc = 0;
    long n = 0;
    for (int t = 0; t < T; t++) {
        double acc_t = 0;
        int n_t = 0;
        for (int b = 0; b < B && t > pos; b++) {
            if (is_pad(doc_ids, b, T, t)) continue;
            const float *a = h + ((size_t)b * T + t) * C, *p = hp + ((size_t)b * T + t) * C;
            double nh = norm2(a, C), d = 0;
            if (nh <= 0) continue;
            for (int c = 0; c < C; c++) d += ((double)a[c] - p[c]) * ((double)a[c] - p[c]);
            acc_t += sqrt(d) / nh;
            n_t++;
        }
        if (by_pos) by_pos[t] = n_t ? (float)(acc_t / n_t) : 0;
        acc += acc_t;
        n += n_t;
    }
    return n ? (float)(acc / n) : 0;
}
