/* mask.h: which key each query may attend to. The model kind (causal, bidirectional, prefix-LM),
 * the window, document masking, padding and edits resolve into one table allowed[b][i][j] that the
 * attention kernel, the probes and the interventions all read, so they cannot disagree. */
#ifndef SINKLAB_MASK_H
#define SINKLAB_MASK_H

#include <stdint.h>

#include "base/model_kind.h"


typedef enum { EDIT_ISOLATE, EDIT_RESET, EDIT_BLOCK_KEY } MaskEditKind;
extern const char *const MASK_EDIT_NAMES[];   /* config names, indexed by MaskEditKind */
typedef struct {
    MaskEditKind kind;
    int pos;       /* sequence index (0 = first data token) */
} MaskEdit;

#define MASK_MAX_EDITS 16
typedef struct {
    int window;            /* 0 = off; causal: i - j < window; bidirectional: |i - j| < window */
    int doc_mask;          /* attention stays inside a document (same doc id) */
    int n_edits;
    MaskEdit edits[MASK_MAX_EDITS];
} MaskSpec;

/* Rules, applied in this order, all data-driven:
 *  base:     causal j <= i; bidirectional all; prefix-LM j <= i or j < prefix_len[b]
 *  window, doc_mask (doc_ids[b,i] == doc_ids[b,j])
 *  padding:  doc_ids < 0 marks PAD; PAD keys are never allowed, a PAD query sees only itself
 *  edits:    isolate p: row p sees only itself (others may still see key p: it is never mixed)
 *            reset p:   queries i >= p see no key j < p (p starts a new sequence)
 *            block_key p: no query sees key p except p itself (a sink ablation)
 *  safety:   a query left with no key keeps itself, so every row has at least one key.
 * allowed is (B, T, T) bytes; prefix_len may be NULL unless kind is prefix-LM; doc_ids may be
 * NULL (one document, no padding). */
void mask_build(uint8_t *allowed, ModelKind kind, const MaskSpec *spec,
                const int32_t *doc_ids, const int32_t *prefix_len, int B, int T);

#endif
