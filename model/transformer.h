/* transformer.h: the model family every sink experiment trains: causal (GPT-like), bidirectional
 * (BERT-like, MLM) and prefix-LM transformers, with every positional encoding, mask, attention
 * variant, norm and MLP as a switch in one code path. The parameter names and layouts listed in
 * the README ("Parameters") are a contract: checkpoints and the PyTorch reference rely on them. */
#ifndef SINKLAB_TRANSFORMER_H
#define SINKLAB_TRANSFORMER_H

#include "base/batch.h"
#include "model/autograd.h"
#include "model/model_config.h"


/* Parameters of one block, views into the model's ParamBlock (NULL when the option is off). */
typedef struct {
    Tensor *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    Tensor *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo;
    Tensor *wg, *bg;                       /* output gate */
    Tensor *sink_logit, *sink_k, *sink_v;  /* (H), (H, D), (H, D) */
    Tensor *w_fc, *b_fc, *w_up, *b_up, *w_proj, *b_proj;   /* up: swiglu's second projection */
} BlockParams;

typedef struct {
    ModelConfig cfg;
    ParamBlock params;
    Tensor *wte, *wpe, *lnf_w, *lnf_b, *lm_head;
    Tensor *mlm_w, *mlm_b, *mlm_ln_w, *mlm_ln_b;     /* bidirectional MLM head transform */
    Tensor *sink_token;                               /* sink: token, (C) */
    BlockParams *blocks;
    float *alibi_slopes;
} Transformer;

/* Inference-time edits of one layer's attention on the data stream (interventions,
 * analysis/intervene.c). Training never sets them; a NULL field changes nothing. */
typedef struct {
    const float *key_weight;    /* (H, T): passed to the kernel (AttentionArgs.key_weight) */
    const float *value_scale;   /* (T, C): multiplies v before attention, the same for every
                                   sequence (0 in head h's columns at P zeroes that value) */
} LayerEdit;

/* What a forward pass should keep for probes and analysis. Everything kept lives in the graph's
 * arena until graph_reset(). Arrays are indexed by layer; hidden has n_layer + 1 entries
 * (after the embeddings, then after each block). */
typedef struct {
    int keep_attn, keep_qkv, keep_hidden;
    int grad_input;             /* give the input embeddings h^0 a gradient */
    const float *embed_delta;   /* (B, T, C) added to h^0 (perturbation), or NULL */
    const LayerEdit *edits;     /* [l] per-layer attention edits, or NULL */
    /* outputs */
    float **attn_probs;         /* [l] -> (B, H, T, T) */
    float **sink_mass;          /* [l] -> (B, H, T) */
    Tensor **q, **k, **v;       /* [l] -> (B, T, C), after RoPE */
    Tensor **hidden;            /* [l] -> (B, T, C) */
    uint8_t *allowed;           /* (B, T, T) the resolved mask */
    Tensor *logits;             /* (B, T, V) */
} ForwardTrace;

/* Builds the parameter block and initialises it, seeded, in parameter order from one stream.
 * init gpt2: N(0, init_std), residual output projections N(0, init_std / sqrt(2 n_layer)), norms
 * 1, biases 0. init torch (PyTorch's nn defaults): every Linear weight (out, in) and its bias
 * U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform with a = sqrt(5)), embeddings (wte, wpe) N(0, 1),
 * norms 1 and 0; parameters nn has no default for (sink_k, sink_v, sink_token) N(0, init_std),
 * sink_logit 0. Returns 0, or -1 with a message in err for an inconsistent config. */
int transformer_init(Transformer *m, const ModelConfig *cfg, uint64_t seed, char *err, size_t n_err);
void transformer_free(Transformer *m);

/* r becomes a replica of m for computing gradients on another part of a batch: the same config
 * and parameter values (shared with m: m's values must not change while r runs), its own
 * parameter gradients (params_replica), so several replicas can run backward at once. Free it
 * with transformer_free before m. */
void transformer_replica(Transformer *r, const Transformer *m);

/* Forward on a batch; returns the scalar loss (mean cross-entropy over loss_mask). trace may be
 * NULL. With g->record the tape is recorded so graph_backward(g, loss) fills parameter grads. */
Tensor *transformer_forward(Transformer *m, Graph *g, const Batch *batch, ForwardTrace *trace);

/* Tape capacity of a graph that runs transformer_forward. */
#define TRANSFORMER_MAX_NODES (1 << 16)

/* Bytes of arena one pass over a (B, T) batch needs, measured by running it on a measuring
 * arena: forward with want's options (NULL: no trace; embed_delta counts only as set or not),
 * and with record a full backward from the loss (a superset of any seeded backward). Arena use
 * depends on shapes, options and the OpenMP thread count (attention keeps per-thread scratch),
 * not on values: call it after autograd_set_threads. Returns that plus a margin; parameter
 * gradients are left as they were. */
size_t transformer_measure_arena(Transformer *m, int B, int T, const ForwardTrace *want, int record);

#endif
