/* batch_shards.c: data-parallel shards of a training batch (batch_shards.h). */
#include "train/batch_shards.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

int batch_shards_resolve(int requested, int batch_size)
{
    if (requested > 0) return requested;
    return batch_size % 2 == 0 ? 2 : 1;
}

void batch_shards_init(BatchShards *s, Transformer *m, int n, int B, int T)
{
    SL_CHECK(n >= 1 && B % n == 0, "batch_shards_init: %d shards of a batch of %d", n, B);
    memset(s, 0, sizeof *s);
    s->n = n;
    s->rows = B / n;
    s->model = xcalloc((size_t)n, sizeof(Transformer *));
    s->graph = xcalloc((size_t)n, sizeof(Graph));
    s->loss = xcalloc((size_t)n, sizeof(double));
    s->share = xcalloc((size_t)n, sizeof(double));
    s->model[0] = m;
    for (int i = 1; i < n; i++) {
        s->model[i] = xcalloc(1, sizeof(Transformer));
        transformer_replica(s->model[i], m);
    }
    /* every shard has the same shapes, so one measuring pass sizes them all */
    size_t bytes = transformer_measure_arena(m, s->rows, T, NULL, 1);
    for (int i = 0; i < n; i++) graph_init(&s->graph[i], bytes, TRANSFORMER_MAX_NODES);
}

void batch_shards_free(BatchShards *s)
{
    for (int i = 0; i < s->n; i++) {
        graph_free(&s->graph[i]);
        if (i > 0) {
            transformer_free(s->model[i]);
            free(s->model[i]);
        }
    }
    free(s->model);
    free(s->graph);
    free(s->loss);
    free(s->share);
    memset(s, 0, sizeof *s);
}

/* Rows [first, first + rows) of b, as a batch of its own (views, no copies): every (B, T) array
 * of Batch starts at row first, the (B) ones at first. A new Batch field belongs here too. */
static Batch batch_rows(const Batch *b, int first, int rows)
{
    size_t o = (size_t)first * b->T;
    return (Batch){
        .B = rows, .T = b->T,
        .tokens = b->tokens + o, .targets = b->targets + o, .positions = b->positions + o,
        .doc_ids = b->doc_ids + o, .loss_mask = b->loss_mask + o,
        .prefix_len = b->prefix_len + first, .query_class = b->query_class + o,
    };
}

/* The loss weight of rows [first, first + rows) of b: the sum of their loss_mask, which is what
 * op_cross_entropy divides by (a count of positions for the 0/1 masks batches carry). */
static double counted_positions(const Batch *b, int first, int rows)
{
    double n = 0.0;
    size_t end = (size_t)(first + rows) * b->T;
    for (size_t i = (size_t)first * b->T; i < end; i++) n += b->loss_mask[i];
    return n;
}

static void shard_pass(BatchShards *s, int i, const Batch *b, int record, float scale)
{
    Batch part = batch_rows(b, i * s->rows, s->rows);
    Graph *g = &s->graph[i];
    graph_reset(g);
    g->record = record;
    Tensor *loss = transformer_forward(s->model[i], g, &part, NULL);
    s->loss[i] = loss->data[0];
    float seed = (float)(s->share[i] * scale);
    if (record) graph_backward_seeded(g, loss, &seed);
}

double batch_shards_pass(BatchShards *s, const Batch *b, int record, float scale)
{
    SL_CHECK(b->B == s->n * s->rows, "batch_shards_pass: a batch of %d for %d shards of %d",
             b->B, s->n, s->rows);
    /* each shard's share of the batch mean: its counted positions over the batch's (a shard
     * with none has loss 0 and share 0; so has a batch with none; one shard has share 1) */
    double total = 0.0;
    for (int i = 0; i < s->n; i++) total += s->share[i] = counted_positions(b, i * s->rows, s->rows);
    for (int i = 0; i < s->n; i++) s->share[i] = total > 0 ? s->share[i] / total : 0.0;
    /* one shard per thread; the operations inside a shard then run on that thread alone, so
     * with several shards (whatever the thread count) products stay whole */
    int threads = omp_get_max_threads() < s->n ? omp_get_max_threads() : s->n;
    int split = autograd_split_products(s->n == 1);
    #pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int i = 0; i < s->n; i++) shard_pass(s, i, b, record, scale);
    autograd_split_products(split);
    double loss = 0.0;
    for (int i = 0; i < s->n; i++) loss += s->share[i] * s->loss[i];
    return loss;
}

void batch_shards_reduce(BatchShards *s)
{
    if (s->n == 1) return;
    float *into = s->model[0]->params.grad;
    size_t n = s->model[0]->params.n;
    for (int r = 1; r < s->n; r++) {
        float *from = s->model[r]->params.grad;
        #pragma omp parallel for schedule(static) if (n >= 65536)
        for (size_t j = 0; j < n; j++) {
            into[j] += from[j];
            from[j] = 0.0f;
        }
    }
}
