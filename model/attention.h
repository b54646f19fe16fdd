/* attention.h: the one fused scaled-dot-product attention op that every model variant, the
 * probes and the interventions use. q, k, v stay in (B, T, H*D) layout (head h = columns
 * h*D .. h*D+D-1), so no head split/merge copies are needed. */
#ifndef SINKLAB_ATTENTION_H
#define SINKLAB_ATTENTION_H

#include "model/autograd.h"

typedef enum { ATTN_SOFTMAX, ATTN_SOFTMAX1, ATTN_SCALED, ATTN_SIGMOID, ATTN_SIGMOID_NORM, ATTN_RELU } Normalizer;
typedef enum { SINK_NONE, SINK_LOGIT, SINK_K_BIAS, SINK_KV_BIAS, SINK_TOKEN } SinkKind;
typedef enum { GATE_NONE, GATE_ELEMENTWISE, GATE_HEADWISE } GateKind;
/* Config names, indexed by the enums above (NULL-terminated). */
extern const char *const NORMALIZER_NAMES[];
extern const char *const SINK_NAMES[];
extern const char *const GATE_NAMES[];

/* model.attention in the config. */
typedef struct {
    Normalizer normalizer;
    float scale;           /* ATTN_SCALED: rows sum to this */
    float sigmoid_bias;    /* ATTN_SIGMOID(_NORM): b in sigmoid(s + b); default -log(train seq_len) */
    SinkKind sink;
    GateKind gate;
} AttentionSpec;

/* Everything the kernel needs besides q, k, v. Scores are s_ij = q_i . k_j / sqrt(D)
 * + alibi_bias(i, j) over allowed keys j, plus an optional extra key (the learned sink):
 *   sink_k (H, D): an extra key visible to every query, zero ALiBi distance, never rotated;
 *   sink_v (H, D): its value (NULL: value 0, as with k_bias);
 *   sink_logit (H): an extra denominator term exp(b_h) with no value (sink: logit).
 * softmax1 adds a fixed extra term exp(0). Stable form: m = max over all terms, rows are not
 * renormalised when extra terms exist. sigmoid: A = sigmoid(s + sigmoid_bias) per allowed key
 * (and the sink key); sigmoid_norm divides by the row sum of those.
 * Details of the contract:
 *  - scaled multiplies every term (sink terms too) by spec->scale (> 0), so a row plus its sink
 *    mass sums to scale;
 *  - sigmoid_norm treats sink_logit as a virtual key of score b_h: sigmoid(b_h + sigmoid_bias)
 *    joins the row sum; plain sigmoid with a sink_logit is an error (no denominator to join);
 *  - relu (Guo et al. 2024): A = relu(s) / n_i per allowed key, n_i = the keys the mask allows
 *    query i (plus 1 for a sink key, which gets relu(s_key) / n_i); rows do not sum to one; a
 *    sink_logit is an error (no denominator), and the kink's derivative at s = 0 is taken as 0;
 *  - sink_k / sink_v / sink_logit only need H*D (resp. H) elements, any shape, so the sink
 *    token's per-layer (1, H*D) key and value can be passed directly; they are shared by the
 *    batch and their gradients are reduced over b in a fixed order;
 *  - a row with no allowed key and no extra term outputs 0 (mask_build never makes one);
 *  - allowed, positions and alibi_slopes are read again by backward: keep them alive until
 *    graph_backward has run;
 *  - results are bit-identical for any OpenMP thread count (one thread per (b, h) block). */
typedef struct {
    const AttentionSpec *spec;
    const uint8_t *allowed;        /* (B, T, T) from mask_build */
    const int32_t *positions;      /* (B, T); needed for ALiBi */
    const float *alibi_slopes;     /* (H) or NULL for no ALiBi */
    Tensor *sink_k, *sink_v, *sink_logit;   /* each may be NULL */
    /* Optional per-head key weights for inference-time interventions (analysis/intervene.c),
     * (H, T) or NULL: key j's unnormalised weight in head h (exp(s) for the softmax family,
     * sigmoid(s + b) for the sigmoid forms) is multiplied by key_weight[h*T + j] for every query
     * but j itself, before the row is normalised. 0 hides key j from the head (a per-head
     * block_key), F scales its attention and the row renormalises. Training passes NULL and
     * runs exactly the code it ran without it. */
    const float *key_weight;
    /* Optional outputs for probes, written during forward, (B, H, T, T) and (B, H, T):
     * the probabilities of data keys, and the mass on the learned sink (extra key, logit and
     * softmax1's fixed term combined). keep_probs rows are zero outside the mask. */
    float *keep_probs;
    float *keep_sink_mass;
} AttentionArgs;

/* The kernel's own rules on a spec (a sink logit needs a denominator, so not plain sigmoid or
 * relu; scale > 0; a finite sigmoid bias): 0, or -1 with the reason in msg. Config validation and
 * the kernel both call it, so a combination cannot be accepted by one and refused by the other. */
int attention_spec_check(const AttentionSpec *spec, char *msg, size_t n);

/* q, k, v (B, T, H*D) -> out (B, T, H*D). */
Tensor *op_attention(Graph *g, Tensor *q, Tensor *k, Tensor *v, int n_head,
                     const AttentionArgs *args);

/* Standard ALiBi slopes for H heads (Press et al.: geometric 2^(-8/H ...), with the
 * interpolation for H not a power of two). */
void alibi_slopes(float *slopes, int n_head);

#endif
