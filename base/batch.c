/* batch.c: allocation of the Batch buffers (batch.h). Allocated once per run, outside the step
 * loop; an allocation failure here is fatal (there is nothing sensible to train without it). */
#include "base/batch.h"

#include "base/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void batch_alloc(Batch *b, int B, int T)
{
    size_t n = (size_t)B * (size_t)T;
    memset(b, 0, sizeof *b);
    b->B = B;
    b->T = T;
    b->tokens = xcalloc(n, sizeof *b->tokens);
    b->targets = xcalloc(n, sizeof *b->targets);
    b->positions = xcalloc(n, sizeof *b->positions);
    b->doc_ids = xcalloc(n, sizeof *b->doc_ids);
    b->loss_mask = xcalloc(n, sizeof *b->loss_mask);
    b->prefix_len = xcalloc((size_t)B, sizeof *b->prefix_len);
    b->query_class = xcalloc(n, sizeof *b->query_class);
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
