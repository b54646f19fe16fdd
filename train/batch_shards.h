/* batch_shards.h: a training batch cut into equal shards of whole sequences, each run forward
 * and backward on its own graph and its own copy of the parameter gradients, in parallel across
 * the OpenMP threads, then summed in shard order. A tiny model's step is hundreds of small
 * operations; splitting each over two threads spent a third of the time waiting at their ends,
 * while a shard per thread needs two synchronisations a step.
 *
 * The shard count is part of the arithmetic (gradients are sums over shards), never the thread
 * count: with the same shards one thread runs them one after the other and gets the same bits.
 * The loss is the batch's mean over its loss-masked positions whatever the shards: shard s's
 * backward is seeded with n_s / N (its counted positions over the batch's). */
#ifndef SINKLAB_BATCH_SHARDS_H
#define SINKLAB_BATCH_SHARDS_H

#include "model/transformer.h"

typedef struct {
    int n;                  /* shards */
    int rows;               /* sequences per shard */
    Transformer **model;    /* [n]: [0] the caller's model, the others replicas sharing its values */
    Graph *graph;           /* [n] */
    double *loss;           /* [n] each shard's mean loss of the last pass */
    double *share;          /* [n] its weight in the batch mean: n_s / N */
} BatchShards;

/* The shard count train.batch_shards asks for at this batch size: `requested`, or for 0 (auto)
 * 2 when the batch size is even and 1 otherwise. */
int batch_shards_resolve(int requested, int batch_size);

/* n shards of a (B, T) batch (n divides B) over model m; measures and allocates each shard's
 * arena for a training pass. m's gradients are shard 0's. */
void batch_shards_init(BatchShards *s, Transformer *m, int n, int B, int T);
void batch_shards_free(BatchShards *s);

/* Runs every shard of b forward and, with record, backward from its loss seeded with
 * scale n_s / N, adding into its model's gradients. Returns the batch's mean loss. */
double batch_shards_pass(BatchShards *s, const Batch *b, int record, float scale);

/* Adds the replicas' gradients into shard 0's (the caller's model), in shard order, and zeroes
 * them for the next step. */
void batch_shards_reduce(BatchShards *s);

#endif
