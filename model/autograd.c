/* autograd.c: the tape. Ops append nodes as they run; backward walks them in reverse. */
#include "model/autograd.h"

#include <stdlib.h>
#include <string.h>

static void graph_init_tape(Graph *g, int max_nodes)
{
    g->cap_nodes = max_nodes;
    g->nodes = xcalloc((size_t)max_nodes, sizeof(Node));
    /* an op output has a gradient only if the op records a node: one entry per node suffices
     * (a full list falls back to zeroing at allocation) */
    g->cap_pending = max_nodes;
    g->pending = xcalloc((size_t)max_nodes, sizeof(Tensor *));
    g->pending_flag = xcalloc((size_t)max_nodes, sizeof(int));
    g->record = 1;
}

void graph_init(Graph *g, size_t arena_bytes, int max_nodes)
{
    memset(g, 0, sizeof *g);
    arena_init(&g->arena, arena_bytes, "step");
    graph_init_tape(g, max_nodes);
}

void graph_init_measuring(Graph *g, int max_nodes)
{
    memset(g, 0, sizeof *g);
    arena_init_measuring(&g->arena, "step (measuring)");
    graph_init_tape(g, max_nodes);
}

void graph_free(Graph *g)
{
    arena_free(&g->arena);
    free(g->nodes);
    free(g->pending);
    free(g->pending_flag);
    memset(g, 0, sizeof *g);
}

void graph_reset(Graph *g)
{
    arena_reset(&g->arena);
    g->n_nodes = 0;
    g->n_pending = 0;
}

Tensor *graph_output(Graph *g, int ndim, const int *shape, int needs_grad)
{
    int with_grad = g->record && needs_grad;
    if (!with_grad || g->n_pending == g->cap_pending)
        return tensor_new_uninit(&g->arena, ndim, shape, with_grad);
    Tensor *t = tensor_new_uninit(&g->arena, ndim, shape, 0);
    t->grad = arena_alloc_uninit(&g->arena, t->size * sizeof(float));
    t->grad_pending = &g->pending_flag[g->n_pending];
    *t->grad_pending = 1;
    g->pending[g->n_pending++] = t;
    return t;
}

int grad_fresh(Tensor *t)
{
    if (!t || !t->grad || !t->grad_pending || !*t->grad_pending) return 0;
    *t->grad_pending = 0;
    return 1;
}

void grad_clear(Tensor *t)
{
    if (grad_fresh(t)) memset(t->grad, 0, t->size * sizeof(float));
}

/* Zeroes every gradient still pending: before a node whose backward does not declare what it
 * touches, and at the end of backward (outputs no op consumed, or that backward did not reach). */
static void grads_clear_all(Graph *g)
{
    for (int i = 0; i < g->n_pending; i++) grad_clear(g->pending[i]);
}

static void node_backward(Graph *g, Node *n)
{
    grad_clear(n->out);   /* consumed by no op that ran: its gradient is zero */
    if (!n->lazy_grads) grads_clear_all(g);
    n->backward(n);
}

Tensor *graph_constant(Graph *g, int ndim, const int *shape)
{
    return tensor_new(&g->arena, ndim, shape, 0);
}

Node *graph_node(Graph *g, const char *op, BackwardFn bw, Tensor *out)
{
    SL_CHECK(g->n_nodes < g->cap_nodes, "tape overflow: more than %d nodes (op %s)",
             g->cap_nodes, op);
    Node *n = &g->nodes[g->n_nodes++];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->backward = bw;
    n->out = out;
    return n;
}

void graph_require_grad(Graph *g, Tensor *t)
{
    if (!t->grad) t->grad = arena_alloc(&g->arena, t->size * sizeof(float));
}

void graph_backward(Graph *g, Tensor *loss)
{
    SL_CHECK(loss->size == 1, "graph_backward: loss must be a scalar, has %zu elements", loss->size);
    SL_CHECK(loss->grad, "graph_backward: the loss has no gradient (nothing requires one, or "
             "the graph is not recording)");
    grad_clear(loss);
    loss->grad[0] += 1.0f;
    for (int i = g->n_nodes - 1; i >= 0; i--) node_backward(g, &g->nodes[i]);
    grads_clear_all(g);
}

void graph_backward_seeded(Graph *g, Tensor *y, const float *dy)
{
    SL_CHECK(y->grad, "graph_backward_seeded: the tensor has no gradient");
    int last = -1;
    for (int i = g->n_nodes - 1; i >= 0 && last < 0; i--)
        if (g->nodes[i].out == y || g->nodes[i].out->data == y->data) last = i;
    SL_CHECK(last >= 0, "graph_backward_seeded: the tensor was not produced on this tape");
    grad_clear(y);
    for (size_t i = 0; i < y->size; i++) y->grad[i] += dy[i];
    for (int i = last; i >= 0; i--) node_backward(g, &g->nodes[i]);
    grads_clear_all(g);
}
