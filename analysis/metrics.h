/* metrics.h: the sink metrics of SCIENCE.md ("Metrics") as pure functions of plain arrays, in the
 * layouts a forward pass keeps (ForwardTrace). One call measures one layer; the probe loops.
 *
 * Shared layouts and conventions:
 *   attn      (B, H, T, T)  attention probabilities of data keys, rows = queries
 *   sink_mass (B, H, T)     mass on learned sinks / softmax1's fixed term, per query
 *   allowed   (B, T, T)     the resolved mask table of mask_build (required where taken)
 *   doc_ids   (B, T)        -1 marks PAD; NULL means no PAD. PAD queries never count.
 *   q, k, v   (B, T, H*D)   head h = columns h*D .. h*D+D-1
 *   hidden    (B, T, C)     one layer's states
 *   weights   (C, C)        PyTorch Linear layout (out, in)
 * Q_k^b = the non-PAD queries i of sequence b with allowed[b,i,k]. "Per-sequence, then averaged"
 * means: the quantity is computed in each sequence b, then averaged over the sequences where it
 * is defined (SCIENCE: average over probe sequences first, then threshold).
 * proxy != 0 (sigmoid attention, whose rows do not sum to 1): A is replaced by
 * A'[i,j] = A[i,j] / sum_{allowed j'} A[i,j'] (a zero row stays zero).
 * Deterministic (fixed loop order, double accumulators). Scratch is malloc'ed per call: these
 * run at probe time, never in the training step. Functions returning int return 0, or -1 when
 * LAPACK reports a failure. metrics_qk_spectrum and metrics_collapse switch OpenBLAS to one thread
 * while they run (small LAPACK problems are slower threaded) and restore the caller's count, so
 * call them from one thread at a time.
 * Layouts are batch-major, so passing a smaller B measures the first B sequences only: the
 * costlier metrics can run on a subset of the probe batch. */
#ifndef SINKLAB_METRICS_H
#define SINKLAB_METRICS_H

#include <stdint.h>

/* H_T / T = (1 + 1/2 + ... + 1/T) / T: alpha_0 of uniform causal attention (0.074 at T = 64). */
double metrics_alpha0_uniform_causal(int T);

/* alpha_k per head: alpha_k^b = mean of A[i,k] over Q_k^b, then the mean over the sequences with
 * |Q_k^b| > 0 (0 if there are none). alpha (H, T); n_q (T) or NULL: the mean over all B
 * sequences of |Q_k^b| (causal, no PAD: T - k; bidirectional: T). */
void metrics_alpha(float *alpha, float *n_q, const float *attn, const uint8_t *allowed,
                   const int32_t *doc_ids, int proxy, int B, int H, int T);

/* Sink^eps: the fraction of the n values alpha[0], alpha[stride], ... strictly above eps. With
 * alpha stored (L, H, T) as metrics_alpha writes it, stride = T and n = L * H reads alpha_0. */
float metrics_sink_rate(const float *alpha, int n, int stride, float eps);

/* Gu et al.'s Sink_1^eps exactly as their compute_attention_sink (sail-sg/Attention-Sink,
 * eval_sink_open_source.py) computes it, for one layer, in percent: for each sequence b and head h
 * the score s_bh = sum_i A'[b,h,i,0] / T (the divisor is T - k with k = 0, whatever the mask),
 * then 100 * |{(b, h): s_bh > eps}| / (B * H). PAD queries add nothing (Gu's probe has none); A'
 * is A, or with proxy the row-normalised A of metrics_alpha. A model's value is the mean over its
 * layers (each layer has the same B * H). sinklab's own sink_rate thresholds alpha_0 after
 * averaging over sequences instead, and divides by the queries that see key 0. */
float metrics_sink_rate_gu(const float *attn, const uint8_t *allowed, const int32_t *doc_ids,
                           int proxy, float eps, int B, int H, int T);

/* Sink location per head: loc (H) = argmax_k alpha[h,k] over keys with n_q[k] >= T/4 (the first
 * on ties; -1 if no key qualifies), loc_alpha (H, or NULL) = that alpha. */
void metrics_sink_location(int *loc, float *loc_alpha, const float *alpha, const float *n_q,
                           int H, int T);

/* alpha on BOS tokens wherever they are: out (H) = mean over the positions (b, k) with
 * tokens[b,k] == bos_id and |Q_k^b| > 0 of alpha_k^b. Returns how many positions counted; out is 0
 * when none did (the probe then omits the metric). */
int metrics_alpha_bos(float *out, const float *attn, const uint8_t *allowed,
                      const int32_t *doc_ids, const int32_t *tokens, int bos_id, int proxy,
                      int B, int H, int T);

/* alpha on the last non-PAD position of each sequence (the second sink of bidirectional models):
 * out (H) as metrics_alpha_bos. Returns how many sequences counted. */
int metrics_alpha_last(float *out, const float *attn, const uint8_t *allowed,
                       const int32_t *doc_ids, int proxy, int B, int H, int T);

/* Active/dormant attention on BOS (Guo et al. 2024): for each query class c < n_class, out
 * (n_class, H) = mean over the non-PAD, non-BOS queries (b, i) with query_class[b,i] == c that see
 * a BOS key of the attention they put on BOS keys (summed over allowed BOS keys, proxy as above),
 * pooled over sequences; n (n_class) = how many queries counted (out is 0 where none did). */
void metrics_alpha_bos_by_class(float *out, int *n, const float *attn, const uint8_t *allowed,
                                const int32_t *doc_ids, const int32_t *tokens,
                                const uint8_t *query_class, int n_class, int bos_id, int proxy,
                                int B, int H, int T);

/* Cross-entropy by query class: loss (n_class) = mean over positions with loss_mask != 0 and
 * query_class == c of -log softmax(logits)[target]; n (n_class) = positions counted (loss 0
 * where none). logits (B, T, V). */
void metrics_loss_by_class(float *loss, int *n, const float *logits, const int32_t *targets,
                           const float *loss_mask, const uint8_t *query_class, int n_class,
                           int B, int T, int V);

/* alpha_learned_sink: out (H) = mean of sink_mass[b,h,i] over all non-PAD queries (b, i). */
void metrics_sink_mass(float *out, const float *sink_mass, const int32_t *doc_ids,
                       int B, int H, int T);

/* Waiver norm ratio per head: ratio (H) = per-sequence ||x_0^h|| / mean_j ||x_j^h||, averaged
 * over sequences whose position 0 is not PAD; mean_j runs over ALL non-PAD positions, j = 0
 * included (SCIENCE writes mean_j), so uniform norms give exactly 1. Pass v for the value-norm
 * ratio, k for the key-norm ratio. norms (H, T) or NULL: ||x_t^h|| averaged over the sequences
 * where t is not PAD (0 where none), for the value-norm-per-position plot. */
void metrics_norm_ratio(float *ratio, float *norms, const float *x, const int32_t *doc_ids,
                        int B, int T, int H, int D);

/* Gu et al. Fig. 2: cos_mean (H) = mean of cos(q_i^h, k_0^h) and normprod (H) = mean of
 * ||q_i^h|| ||k_0^h||, both over all queries i in Q_0^b pooled over sequences (allowed NULL: every
 * non-PAD query, when position 0 is not PAD). A zero vector has cosine 0. */
void metrics_qk0(float *cos_mean, float *normprod, const float *q, const float *k,
                 const uint8_t *allowed, const int32_t *doc_ids, int B, int T, int H, int D);

/* Norm-based attention (Kobayashi et al. 2020): key j contributes f_ij = A[i,j] ||v_j^h W_O^h||
 * to query i, with W_O^h = columns h*D .. h*D+D-1 of wo (C, C), C = H*D. share (H, T) = for each
 * key k, f_ik / sum_{allowed j} f_ij averaged over Q_k^b, then over sequences (as alpha);
 * share[h*T + 0] is key 0's share. Data keys only: the output gate, the output bias and a learned
 * sink value are not included. */
void metrics_norm_attention(float *share, const float *attn, const float *v, const float *wo,
                            const uint8_t *allowed, const int32_t *doc_ids, int B, int H, int T,
                            int D);

/* Massive activations (Sun et al. 2024) of one layer's x (B, T, C): ratio0 = per-sequence
 * ||h_0|| / mean_{t>0, non-PAD} ||h_t||, averaged over sequences where both exist;
 * top_median = max |x| / median |x| over every element of every non-PAD token (median of an even
 * count = mean of the two middle values; 0 when the median is 0); top_pos / top_chan (or NULL):
 * the sequence position and channel of that maximum (first in memory order on ties). */
void metrics_massive(float *ratio0, float *top_median, int *top_pos, int *top_chan,
                     const float *x, const int32_t *doc_ids, int B, int T, int C);

/* Attention entropy per head: ent (H) = mean over non-PAD queries (pooled over sequences) of
 * -sum_{allowed j, A > 0} A[i,j] log A[i,j] (natural log); ent_norm (H) = mean of the same divided
 * by log n_i, n_i = allowed keys of row i, over rows with n_i >= 2 (0 if none). */
void metrics_entropy(float *ent, float *ent_norm, const float *attn, const uint8_t *allowed,
                     const int32_t *doc_ids, int proxy, int B, int H, int T);

/* QK eigenspectrum per head (Bao et al. 2024), C = H*D, W^h = rows h*D .. h*D+D-1 of wq / wk:
 *   mean, var (H): mean and population variance of the real parts of the D eigenvalues of
 *     M = W_K^h diag(g^2) W_Q^h^T / sqrt(D) (D x D), which are the non-zero eigenvalues of the
 *     bilinear form x^T W_Q^h^T W_K^h y / sqrt(D) that scores use (g = gain or all ones);
 *   sym_mean, sym_var (H): the same for its symmetric part (W + W^T)/2 taken in the C x C model
 *     space, where it is invariant to any reparametrisation of the head (the D x D symmetric part
 *     is not); its rank is at most 2D, so the min(2D, C) eigenvalues of largest magnitude count;
 *   eig_re, eig_im (H, D) or NULL: the eigenvalues of M, in LAPACK's order.
 * gain (C) or NULL: the pre-attention norm gain folded into the input dimension of both W_Q and
 * W_K (q = W_Q (g * xhat)). */
int metrics_qk_spectrum(float *mean, float *var, float *sym_mean, float *sym_var, float *eig_re,
                        float *eig_im, const float *wq, const float *wk, const float *gain,
                        int H, int D);

/* Representational collapse of one layer's x (B, T, C), per sequence over its n non-PAD tokens,
 * then averaged over sequences: cos_mean = mean of cos(x_i, x_j) over pairs i != j (n >= 2);
 * centered = ||X - 1 xbar^T||_F / ||X||_F (||X|| > 0); eff_rank = exp(-sum p log p) with
 * p = sigma / sum sigma over X's singular values (Roy & Vetterli 2007; ||X|| > 0). */
int metrics_collapse(float *cos_mean, float *centered, float *eff_rank, const float *x,
                     const int32_t *doc_ids, int B, int T, int C);

/* Perturbation spread (over-mixing, Barbero et al. 2025) at one layer, after perturbing
 * position pos: the mean over sequences b and non-PAD positions j > pos (pooled) of
 * ||h_j - h'_j|| / ||h_j||, positions with ||h_j|| = 0 skipped. h = clean, hp = perturbed run,
 * both (B, T, C). by_pos (T) or NULL: the same mean per position (0 for j <= pos). */
float metrics_perturb_spread(float *by_pos, const float *h, const float *hp,
                             const int32_t *doc_ids, int pos, int B, int T, int C);

#endif
