/* model_kind.h: the model's objective, which both the data pipeline (targets, loss mask, MLM
 * masking) and the model (the base attention mask) read. It lives at the bottom so neither
 * layer includes the other. */
#ifndef SINKLAB_MODEL_KIND_H
#define SINKLAB_MODEL_KIND_H

typedef enum { MODEL_CAUSAL, MODEL_BIDIRECTIONAL, MODEL_PREFIX_LM } ModelKind;

/* "causal", "bidirectional", "prefix_lm": the config names, indexed by ModelKind. */
extern const char *const MODEL_KIND_NAMES[];

#endif
