/* batch.c: allocation of the Batch buffers (batch.h). Allocated once per run, outside the step
 * loop; an allocation failure here is fatal (there is nothing sensible to train without it). */
#include "data/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *batch_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "%s:%d: out of memory allocating a batch (%zu x %zu bytes)\n", __FILE__,
                __LINE__, n, size);
        abort();
    }
    return p;
}

void batch_alloc(Batch *b, int B, int T)
{
    size_t n = (size_t)B * (size_t)T;
    memset(b, 0, sizeof *b);
    b->B = B;
    b->T = T;
    b->tokens = batch_xcalloc(n, sizeof *b->tokens);
    b->targets = batch_xcalloc(n, sizeof *b->targets);
    b->positions = batch_xcalloc(n, sizeof *b->positions);
    b->doc_ids = batch_xcalloc(n, sizeof *b->doc_ids);
    b->loss_mask = batch_xcalloc(n, sizeof *b->loss_mask);
    b->prefix_len = batch_xcalloc((size_t)B, sizeof *b->prefix_len);
    b->query_class = batch_xcalloc(n, sizeof *b->query_class);
}

void batch_free(Batch *b)
{
    free(b->tokens);
    free(b->targets);
    free(b->positions);
    free(b->doc_ids);
    free(b->loss_mask);
    free(b->prefix_len);
    free(b->query_class);
    memset(b, 0, sizeof *b);
}
