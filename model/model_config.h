/* model_config.h: the `model:` section of a run config. The model layer owns its keys (names,
 * ranges, defaults, documentation: model_config.c) and its rules (model_config_check), which
 * both config validation and transformer_init call. */
#ifndef SINKLAB_MODEL_CONFIG_H
#define SINKLAB_MODEL_CONFIG_H

#include <stddef.h>

#include "base/keys.h"
#include "base/model_kind.h"
#include "model/attention.h"
#include "model/mask.h"

typedef enum { POS_NONE, POS_LEARNED, POS_SINUSOIDAL, POS_ROPE, POS_ALIBI } PosEncoding;
typedef enum { NORM_LAYERNORM, NORM_RMSNORM } NormKind;
typedef enum { MLP_GELU, MLP_RELU, MLP_SWIGLU } MlpKind;
/* How the parameters are drawn (transformer.c init_rule; transformer.h states both schemes). */
typedef enum { INIT_SCHEME_GPT2, INIT_SCHEME_TORCH } InitScheme;
/* Config names, indexed by the enums above (NULL-terminated). */
extern const char *const POS_ENCODING_NAMES[];
extern const char *const NORM_KIND_NAMES[];
extern const char *const MLP_KIND_NAMES[];
extern const char *const INIT_SCHEME_NAMES[];

typedef struct {
    ModelKind kind;
    int n_layer, d_model, n_head, d_ff, vocab_size, max_seq_len;
    PosEncoding pos;
    float rope_base;
    NormKind norm;
    int norm_pre;              /* 1: pre-norm (GPT-2), 0: post-norm (original/BERT) */
    MlpKind mlp;
    int bias;                  /* biases in linear layers and layernorm */
    int tie_embeddings;
    float init_std;            /* 0.02 */
    InitScheme init;           /* gpt2 (default) or torch: PyTorch nn defaults */
    AttentionSpec attention;
    MaskSpec mask;
} ModelConfig;

/* Every model.* key, in the order a resolved config is written. */
extern const KeyTable MODEL_KEYS;

/* The documented defaults (vocab_size 0 and sigmoid_bias NaN mean auto). */
void model_config_defaults(ModelConfig *m);
/* Fills the auto values that depend only on the model and the training context T. */
void model_config_resolve(ModelConfig *m, int T);
/* Every rule on a model config: ranges of its keys, shapes (head size, RoPE/sinusoidal
 * parity), the attention kernel's own rules, and, when T > 0, that the mask and positions fit a
 * context of T. Returns 0, or -1 with the first broken rule in msg. */
int model_config_check(const ModelConfig *m, int T, char *msg, size_t n);

#endif
