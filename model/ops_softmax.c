/* ops_softmax.c: softmax over the last dim, and cross-entropy fused with its softmax. */
#include "model/autograd.h"

#include <math.h>
#include <string.h>

static void softmax_rows(float *y, const float *x, size_t rows, int C)
{
    #pragma omp parallel for schedule(static) if (rows >= 64)
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        /* max subtraction keeps exp() finite for any logits */
        float m = -INFINITY;
        for (int c = 0; c < C; c++) m = xr[c] > m ? xr[c] : m;
        double z = 0.0;
        for (int c = 0; c < C; c++) {
            yr[c] = expf(xr[c] - m);
            z += yr[c];
        }
        float inv = (float)(1.0 / z);
        for (int c = 0; c < C; c++) yr[c] *= inv;
    }
}

static void softmax_backward(Node *n)
{
    Tensor *y = n->out, *x = n->in[0];
    int C = y->shape[y->ndim - 1];
    size_t rows = y->size / (size_t)C;
    #pragma omp parallel for schedule(static) if (rows >= 64)
    for (size_t r = 0; r < rows; r++) {
        const float *yr = y->data + r * C, *dy = y->grad + r * C;
        /* forward was: y = exp(x) / sum exp(x); dx = y * (dy - sum(dy * y)) */
        double dot = 0.0;
        for (int c = 0; c < C; c++) dot += dy[c] * yr[c];
        for (int c = 0; c < C; c++) x->grad[r * C + c] += yr[c] * (dy[c] - (float)dot);
    }
}

Tensor *op_softmax(Graph *g, Tensor *x)
{
    int C = x->shape[x->ndim - 1];
    Tensor *y = graph_output(g, x->ndim, x->shape, x->grad != NULL);
    softmax_rows(y->data, x->data, x->size / (size_t)C, C);
    if (y->grad) {
        Node *n = graph_node(g, "softmax", softmax_backward, y);
        n->in[0] = x;
    }
    return y;
}

/* ---- cross-entropy: loss = sum_n mask_n * -log p[n, t_n] / sum_n mask_n ---- */

typedef struct { float *probs; const int32_t *targets; const float *mask; double count; } CeSaved;

static void cross_entropy_backward(Node *n)
{
    Tensor *loss = n->out, *logits = n->in[0];
    const CeSaved *s = n->ctx;
    int N = n->iarg[0], V = n->iarg[1];
    if (s->count == 0.0 || !logits->grad) {
        grad_clear(logits);
        return;
    }
    float scale = (float)(loss->grad[0] / s->count);
    /* write: nothing is in the gradient yet, so rows are assigned (masked rows zeroed) */
    int write = grad_fresh(logits);
    #pragma omp parallel for schedule(static) if (N >= 64)
    for (int r = 0; r < N; r++) {
        float w = s->mask ? s->mask[r] : 1.0f;
        float *dl = logits->grad + (size_t)r * V;
        if (w == 0.0f) {
            if (write) memset(dl, 0, (size_t)V * sizeof(float));
            continue;
        }
        const float *p = s->probs + (size_t)r * V;
        /* forward was: l = -log softmax(z)[t]; dl/dz = p - onehot(t) */
        if (write)
            for (int v = 0; v < V; v++) dl[v] = scale * w * p[v];
        else
            for (int v = 0; v < V; v++) dl[v] += scale * w * p[v];
        dl[s->targets[r]] -= scale * w;
    }
}

Tensor *op_cross_entropy(Graph *g, Tensor *logits, const int32_t *targets, const float *mask)
{
    int V = logits->shape[logits->ndim - 1];
    int N = (int)(logits->size / (size_t)V);
    CeSaved *s = arena_alloc(&g->arena, sizeof *s);
    s->probs = arena_alloc_uninit(&g->arena, logits->size * sizeof(float));   /* every row written */
    s->targets = targets;
    s->mask = mask;
    softmax_rows(s->probs, logits->data, (size_t)N, V);
    float *row_loss = arena_alloc(&g->arena, (size_t)N * sizeof(float));
    for (int r = 0; r < N; r++) {
        float w = mask ? mask[r] : 1.0f;
        if (w == 0.0f) continue;
        SL_CHECK(targets[r] >= 0 && targets[r] < V, "cross_entropy: target %d at row %d outside "
                 "vocabulary of %d", targets[r], r, V);
        /* log of the probability, floored so a vanishing probability gives a large finite loss */
        double p = s->probs[(size_t)r * V + targets[r]];
        row_loss[r] = (float)(-w * log(p > 1e-30 ? p : 1e-30));
        s->count += w;
    }
    /* serial sum: the loss is bit-identical whatever the thread count */
    double total = 0.0;
    for (int r = 0; r < N; r++) total += row_loss[r];
    int one = 1;
    Tensor *loss = graph_output(g, 1, &one, logits->grad != NULL);
    loss->data[0] = s->count > 0.0 ? (float)(total / s->count) : 0.0f;
    if (loss->grad) {
        Node *n = graph_node(g, "cross_entropy", cross_entropy_backward, loss);
        n->lazy_grads = 1;
        n->in[0] = logits;
        n->iarg[0] = N; n->iarg[1] = V;
        n->ctx = s;
    }
    return loss;
}
