/* batch.h: one training or probe batch, the only thing the data pipeline hands the model.
 * Positions, document ids and prefix lengths are data, so per-document position resets, document
 * masks and position swaps need no special code path in the model. */
#ifndef SINKLAB_BATCH_H
#define SINKLAB_BATCH_H

#include <stdint.h>

typedef struct {
    int B, T;
    int32_t *tokens;      /* (B, T) input ids */
    int32_t *targets;     /* (B, T) id to predict at each position (next token, or the original
                             token under an MLM mask); any valid id where loss_mask is 0 */
    int32_t *positions;   /* (B, T) position ids read by every positional encoding */
    int32_t *doc_ids;     /* (B, T) document index within the sequence; -1 marks PAD */
    float *loss_mask;     /* (B, T) 1 where the position counts in the loss */
    int32_t *prefix_len;  /* (B) bidirectional prefix length (prefix-LM); 0 otherwise */
    uint8_t *query_class; /* (B, T) what predicting targets[i] asks of position i, for metrics
                             split by query: 0 = ordinary (e.g. a Markov step), 1 = the target
                             is recalled from context (e.g. bigram_backcopy's copy after a
                             trigger); tasks without classes leave every position 0 */
} Batch;

/* Buffers for B x T, owned by the batch (allocated once, outside the step loop). */
void batch_alloc(Batch *b, int B, int T);
void batch_free(Batch *b);

#endif
