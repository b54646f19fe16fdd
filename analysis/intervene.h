/* intervene.h: causal interventions on a trained model at inference (`sinklab analyze
 * --intervene SPEC`): the spec language, and how one spec turns the probe batch, the mask and
 * the per-layer attention edits into the inputs of an edited forward pass. Every intervention
 * runs through the same transformer_forward that training uses; nothing here touches weights.
 *
 * Spec grammar (README "Interventions"):  SPEC = OP ('+' OP)*,  OP = NAME[:ARGS][@L[.H]]...
 * Token and position edits (drop_bos, add_bos, replace_first, randomize_first, fixed_token,
 * pos_*) apply first, in the order written; mask edits, head edits and perturb then apply to the
 * edited sequence, so a position P always indexes the sequence the model actually sees. */
#ifndef SINKLAB_INTERVENE_H
#define SINKLAB_INTERVENE_H

#include <stddef.h>
#include <stdint.h>

#include "base/batch.h"
#include "model/model_config.h"
#include "model/transformer.h"

typedef enum {
    IV_DROP_BOS, IV_ADD_BOS, IV_REPLACE_FIRST, IV_RANDOMIZE_FIRST, IV_FIXED_TOKEN,
    IV_ISOLATE, IV_RESET, IV_WINDOW, IV_BLOCK_KEY, IV_ZERO_VALUE, IV_SCALE_ATTN,
    IV_POS_SWAP, IV_POS_SHIFT, IV_POS_AS, IV_PERTURB,
} IvKind;
extern const char *const IV_KIND_NAMES[];   /* spec names, indexed by IvKind (NULL-terminated) */

#define IV_MAX_TARGETS 16
#define IV_MAX_OPS 8
#define IV_SPEC_LEN 128

typedef struct {
    int layer, head;           /* head -1: every head of the layer */
} IvTarget;

typedef struct {
    IvKind kind;
    int pos, pos2;             /* P; pos_swap/pos_as: I, J; window: W; randomize_first: N;
                                  pos_shift: K */
    int id;                    /* token id (replace_first, fixed_token, perturb id=), else -1 */
    float factor;              /* scale_attn: F; perturb: noise S (NaN: probe.perturb_scale) */
    int n_targets;             /* 0: every layer and head */
    IvTarget targets[IV_MAX_TARGETS];
} IvOp;

typedef struct {
    char text[IV_SPEC_LEN];    /* the spec as written */
    int n_ops;
    IvOp ops[IV_MAX_OPS];
} Intervention;

/* Parses spec; 0, or -1 with "'SPEC': OP: expected ..., got ..." in err. Only the syntax is
 * checked here; intervene_apply checks it against the model and the probe set. */
int intervene_parse(Intervention *iv, const char *spec, char *err, size_t n);

/* Gives every head edit (block_key, zero_value, scale_attn) written without @ these targets
 * (`--heads`); n = 0 leaves them on every head. */
void intervene_default_targets(Intervention *iv, const IvTarget *t, int n);

/* Parses "L.H,L.H,..." (or "L" for a whole layer); 0 or -1 with err. */
int intervene_parse_heads(IvTarget *t, int *n, int cap, const char *s, char *err, size_t n_err);

/* The edited inputs of one intervention on one probe batch (owned; intervene_applied_free). */
typedef struct {
    Batch batch;               /* the edited probe batch (T may differ: drop_bos) */
    int32_t *orig;             /* (B, T) flat index of each position in the original batch, -1
                                  for an added one: the loss compares identical targets */
    MaskSpec mask;             /* the model's mask with this intervention's mask edits */
    LayerEdit *edits;          /* [L] head edits, or NULL when there are none */
    float *key_weight;         /* (L, H, T) storage behind edits */
    float *value_scale;        /* (L, T, C) */
    int has_perturb, perturb_pos, perturb_by_id, perturb_id;
    float perturb_noise;       /* NaN: the probe's perturb_scale */
    int target_pos;            /* the position the spec acts on, -1 when it has none */
    int target_layer, target_head;   /* the first head target, -1 when untargeted */
    char note[256];            /* a warning for the user ("model.pos none: positions are unused") */
} IvApplied;

/* Builds the edited inputs of iv on base for a model mc: 0, or -1 with err naming the spec and
 * what was expected (a position outside the probe, a layer or head the model lacks, a token id
 * outside the vocabulary, a position the learned table has no row for, drop_bos on sequences
 * without BOS). */
int intervene_apply(IvApplied *a, const Intervention *iv, const Batch *base,
                    const ModelConfig *mc, char *err, size_t n);
void intervene_applied_free(IvApplied *a);

/* Per-position cross-entropy of logits (B*T, V) against targets, in double; ce is (B*T). */
void intervene_token_losses(double *ce, const float *logits, const Batch *b, int V);

/* Mean loss of an intervention and of the baseline over the identical scored targets: positions
 * i of the edited batch with loss_mask != 0 whose original orig[i] is scored in base too.
 * Returns how many targets counted (0: no loss, e.g. MLM probe sets). */
int intervene_paired_loss(double *loss, double *base_loss, const double *ce, const IvApplied *a,
                          const Batch *base, const double *base_ce);

#endif
