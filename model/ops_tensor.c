/* ops_tensor.c: embedding lookup, reductions, and the ops that only move data (head split and
 * merge, reshape, concat, column slices). */
#include "model/autograd.h"

#include <string.h>

/* ---- embedding: out (N, C) = table[ids] ---- */

static void embedding_backward(Node *n)
{
    Tensor *out = n->out, *table = n->in[0];
    const int32_t *ids = n->ctx;
    int N = n->iarg[0], C = n->iarg[1];
    grad_clear(table);
    /* forward was: out[i] = table[ids[i]]; serial scatter-add keeps the order fixed */
    for (int i = 0; i < N; i++) {
        float *dt = table->grad + (size_t)ids[i] * C;
        const float *dy = out->grad + (size_t)i * C;
        for (int c = 0; c < C; c++) dt[c] += dy[c];
    }
}

Tensor *op_embedding(Graph *g, Tensor *table, const int32_t *ids, int n)
{
    SL_CHECK(table->ndim == 2, "op_embedding: table must be 2D");
    int V = table->shape[0], C = table->shape[1];
    int shape[2] = {n, C};
    Tensor *out = graph_output(g, 2, shape, table->grad != NULL);
    for (int i = 0; i < n; i++) {
        SL_CHECK(ids[i] >= 0 && ids[i] < V, "op_embedding: id %d at %d outside [0, %d)", ids[i], i, V);
        memcpy(out->data + (size_t)i * C, table->data + (size_t)ids[i] * C, (size_t)C * sizeof(float));
    }
    if (out->grad) {
        Node *nd = graph_node(g, "embedding", embedding_backward, out);
        nd->lazy_grads = 1;
        nd->in[0] = table;
        nd->iarg[0] = n; nd->iarg[1] = C;
        int32_t *saved = arena_alloc(&g->arena, (size_t)n * sizeof(int32_t));
        memcpy(saved, ids, (size_t)n * sizeof(int32_t));
        nd->ctx = saved;
    }
    return out;
}

/* ---- sum / mean to a scalar ---- */

static void reduce_backward(Node *n)
{
    Tensor *a = n->in[0];
    float d = n->out->grad[0] * n->farg[0];
    grad_clear(a);
    for (size_t i = 0; i < a->size; i++) a->grad[i] += d;
}

static Tensor *reduce(Graph *g, Tensor *a, int mean)
{
    double s = 0.0;
    for (size_t i = 0; i < a->size; i++) s += a->data[i];
    float scale = mean ? 1.0f / (float)a->size : 1.0f;
    int one = 1;
    Tensor *y = graph_output(g, 1, &one, a->grad != NULL);
    y->data[0] = (float)(mean ? s / (double)a->size : s);
    if (y->grad) {
        Node *n = graph_node(g, mean ? "mean" : "sum", reduce_backward, y);
        n->lazy_grads = 1;
        n->in[0] = a; n->farg[0] = scale;
    }
    return y;
}

Tensor *op_sum(Graph *g, Tensor *a) { return reduce(g, a, 0); }
Tensor *op_mean(Graph *g, Tensor *a) { return reduce(g, a, 1); }

/* ---- (B, T, H, D) <-> (B, H, T, D): one permutation, used both ways ---- */

/* src (B, X, Y, D) -> dst (B, Y, X, D); accumulate adds instead of assigning. */
static void swap_middle(float *dst, const float *src, int B, int X, int Y, int D, int accumulate)
{
    for (int b = 0; b < B; b++)
        for (int x = 0; x < X; x++)
            for (int y = 0; y < Y; y++) {
                const float *s = src + (((size_t)b * X + x) * Y + y) * D;
                float *d = dst + (((size_t)b * Y + y) * X + x) * D;
                for (int i = 0; i < D; i++) d[i] = accumulate ? d[i] + s[i] : s[i];
            }
}

static void swap_backward(Node *n)
{
    /* forward moved (B, X, Y, D) -> (B, Y, X, D); the gradient moves back */
    swap_middle(n->in[0]->grad, n->out->grad, n->iarg[0], n->iarg[2], n->iarg[1], n->iarg[3], 1);
}

static Tensor *swap_op(Graph *g, Tensor *x, int B, int X, int Y, int D, const char *name)
{
    int shape[4] = {B, Y, X, D};
    Tensor *y = graph_output(g, 4, shape, x->grad != NULL);
    swap_middle(y->data, x->data, B, X, Y, D, 0);
    if (y->grad) {
        Node *n = graph_node(g, name, swap_backward, y);
        n->in[0] = x;
        n->iarg[0] = B; n->iarg[1] = X; n->iarg[2] = Y; n->iarg[3] = D;
    }
    return y;
}

Tensor *op_split_heads(Graph *g, Tensor *x, int n_head)
{
    char s[64];
    SL_CHECK(x->ndim == 3 && n_head > 0 && x->shape[2] % n_head == 0,
             "op_split_heads: x %s with %d heads", tensor_shape_str(x, s, sizeof s), n_head);
    return swap_op(g, x, x->shape[0], x->shape[1], n_head, x->shape[2] / n_head, "split_heads");
}

Tensor *op_merge_heads(Graph *g, Tensor *x)
{
    char s[64];
    SL_CHECK(x->ndim == 4, "op_merge_heads: x %s must be (B, H, T, D)", tensor_shape_str(x, s, sizeof s));
    Tensor *y = swap_op(g, x, x->shape[0], x->shape[1], x->shape[2], x->shape[3], "merge_heads");
    int shape[3] = {x->shape[0], x->shape[2], x->shape[1] * x->shape[3]};
    return tensor_view(&g->arena, y, 3, shape);
}

Tensor *op_reshape(Graph *g, Tensor *x, int ndim, const int *shape)
{
    /* contiguous storage: a view shares data and gradient, so no node is needed */
    return tensor_view(&g->arena, x, ndim, shape);
}

/* ---- concat / slice along the last dim ---- */

static void concat_backward(Node *n)
{
    Tensor *y = n->out, *a = n->in[0], *b = n->in[1];
    int Ca = n->iarg[0], Cb = n->iarg[1];
    size_t rows = y->size / (size_t)(Ca + Cb);
    for (size_t r = 0; r < rows; r++) {
        const float *dy = y->grad + r * (Ca + Cb);
        if (a->grad)
            for (int c = 0; c < Ca; c++) a->grad[r * Ca + c] += dy[c];
        if (b->grad)
            for (int c = 0; c < Cb; c++) b->grad[r * Cb + c] += dy[Ca + c];
    }
}

Tensor *op_concat(Graph *g, Tensor *a, Tensor *b)
{
    char s1[64], s2[64];
    int Ca = a->shape[a->ndim - 1], Cb = b->shape[b->ndim - 1];
    int ok = a->ndim == b->ndim;
    for (int i = 0; ok && i < a->ndim - 1; i++) ok = a->shape[i] == b->shape[i];
    SL_CHECK(ok, "op_concat: %s and %s differ before the last dim",
             tensor_shape_str(a, s1, sizeof s1), tensor_shape_str(b, s2, sizeof s2));
    int shape[TENSOR_MAX_DIM];
    for (int i = 0; i < a->ndim; i++) shape[i] = a->shape[i];
    shape[a->ndim - 1] = Ca + Cb;
    Tensor *y = graph_output(g, a->ndim, shape, a->grad || b->grad);
    size_t rows = a->size / (size_t)Ca;
    for (size_t r = 0; r < rows; r++) {
        memcpy(y->data + r * (Ca + Cb), a->data + r * Ca, (size_t)Ca * sizeof(float));
        memcpy(y->data + r * (Ca + Cb) + Ca, b->data + r * Cb, (size_t)Cb * sizeof(float));
    }
    if (y->grad) {
        Node *n = graph_node(g, "concat", concat_backward, y);
        n->in[0] = a; n->in[1] = b; n->iarg[0] = Ca; n->iarg[1] = Cb;
    }
    return y;
}

static void slice_backward(Node *n)
{
    Tensor *y = n->out, *x = n->in[0];
    int C = n->iarg[0], start = n->iarg[1], W = n->iarg[2];
    size_t rows = x->size / (size_t)C;
    for (size_t r = 0; r < rows; r++)
        for (int c = 0; c < W; c++) x->grad[r * C + start + c] += y->grad[r * W + c];
}

Tensor *op_slice_cols(Graph *g, Tensor *x, int start, int width)
{
    int C = x->shape[x->ndim - 1];
    SL_CHECK(start >= 0 && width > 0 && start + width <= C,
             "op_slice_cols: columns [%d, %d) outside %d", start, start + width, C);
    int shape[TENSOR_MAX_DIM];
    for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
    shape[x->ndim - 1] = width;
    Tensor *y = graph_output(g, x->ndim, shape, x->grad != NULL);
    size_t rows = x->size / (size_t)C;
    for (size_t r = 0; r < rows; r++)
        memcpy(y->data + r * width, x->data + r * C + start, (size_t)width * sizeof(float));
    if (y->grad) {
        Node *n = graph_node(g, "slice_cols", slice_backward, y);
        n->in[0] = x; n->iarg[0] = C; n->iarg[1] = start; n->iarg[2] = width;
    }
    return y;
}
