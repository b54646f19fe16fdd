/* autograd.h: a define-by-run tape and every differentiable op sinklab's models are built from.
 * Each op computes its output now and, when the graph records and some input carries a gradient,
 * appends a node whose backward accumulates (+=) into the inputs' gradients, or writes the first
 * contribution into a gradient that holds nothing yet (grad_fresh, below). Forward and backward
 * of an op live side by side in one ops_*.c file. */
#ifndef SINKLAB_AUTOGRAD_H
#define SINKLAB_AUTOGRAD_H

#include "model/tensor.h"

typedef struct Graph Graph;
typedef struct Node Node;
typedef void (*BackwardFn)(Node *n);

/* Saved context: up to 4 tensor inputs, a few ints and floats, and a pointer for anything else
 * (allocated from the graph's arena). */
struct Node {
    BackwardFn backward;
    const char *op;
    /* 1: backward calls grad_fresh or grad_clear on every gradient it touches (see below);
     * 0 (the default): every pending gradient is zeroed before it runs. */
    int lazy_grads;
    Tensor *out;
    Tensor *in[4];
    int iarg[8];
    float farg[4];
    void *ctx;
};

struct Graph {
    Arena arena;                 /* activations, gradients, saved context of this step */
    Node *nodes;
    int n_nodes, cap_nodes;
    int record;                  /* 0: inference, no nodes and no activation gradients */
    Tensor **pending;            /* op outputs whose gradient may still be pending */
    int *pending_flag;           /* their grad_pending flags */
    int n_pending, cap_pending;
};

/* The one thread pool: OpenMP with n threads for every kernel and every matrix product (split
 * into fixed blocks); OpenBLAS itself always runs single-threaded, so no second pool spins. */
void autograd_set_threads(int n);
/* Whether large matrix products are cut into blocks for the OpenMP threads (on by default). A
 * caller that runs whole passes one per thread (train/batch_shards.c) turns it off around them:
 * there blocks would only repack the other operand. It is part of the arithmetic (OpenBLAS may
 * round a block differently from the whole product), so it must never follow the thread count.
 * Returns the previous setting, for restoring it. */
int autograd_split_products(int on);

void graph_init(Graph *g, size_t arena_bytes, int max_nodes);
/* A graph on a measuring arena (arena_init_measuring): run a pass on it, then
 * g->arena.high_water is the arena that pass needs. */
void graph_init_measuring(Graph *g, int max_nodes);
void graph_free(Graph *g);
/* Forget the tape and every activation; parameters are untouched. */
void graph_reset(Graph *g);
/* loss must be a scalar: seeds d loss = 1 and runs every node's backward in reverse order. */
void graph_backward(Graph *g, Tensor *loss);

/* Backward from any recorded tensor y with seed dy (y->size floats): runs the nodes up to and
 * including y's producer, in reverse. Used for Jacobian-vector products (d h_T / d h_0). */
void graph_backward_seeded(Graph *g, Tensor *y, const float *dy);

/* New output tensor of an op (data uninitialised: the op writes all of it); it gets a gradient
 * iff the graph records and needs_grad. That gradient is not zeroed here but left pending: the
 * first backward to reach it may write instead of adding (zeroing every gradient at allocation
 * was ~4% of a training step), and graph_backward zeroes whatever is still pending before any
 * other use, so every gradient reads as if it had been zeroed at allocation. */
Tensor *graph_output(Graph *g, int ndim, const int *shape, int needs_grad);
/* For an op's backward (its node has lazy_grads = 1), before it touches t's gradient:
 * grad_fresh returns 1 if t's gradient is pending (the caller then writes every element instead
 * of adding, and the gradient counts as written), 0 if the caller must add (also for t NULL,
 * tensors without a gradient, parameters and inputs); grad_clear zeroes a pending gradient, for
 * a backward that only adds. Call both outside parallel regions. */
int grad_fresh(Tensor *t);
void grad_clear(Tensor *t);
/* Appends a node (only call when the output has a gradient). */
Node *graph_node(Graph *g, const char *op, BackwardFn bw, Tensor *out);
/* Gives a tensor (e.g. input embeddings) a zeroed gradient so backward reaches it. */
void graph_require_grad(Graph *g, Tensor *t);
/* A tensor that holds data but no gradient (inputs, constants). */
Tensor *graph_constant(Graph *g, int ndim, const int *shape);

/* ---- ops. Shapes: N rows, C channels, B batch, T time, H heads, D head size, V vocab. ---- */

/* y[..., N] = x[..., K] W^T + b with W (N, K) in PyTorch Linear layout; b may be NULL.
 * x is treated as (rows, K) with rows = product of leading dims. */
Tensor *op_linear(Graph *g, Tensor *x, Tensor *W, Tensor *b);
/* Batched matmul over a leading dim: a (Bt, M, K) or (M, K) [ta: (K, M)], b likewise. */
Tensor *op_matmul(Graph *g, Tensor *a, Tensor *b, int trans_a, int trans_b);

/* Elementwise; b is either the same shape as a or a row (last dim of a) broadcast over rows. */
Tensor *op_add(Graph *g, Tensor *a, Tensor *b);
Tensor *op_sub(Graph *g, Tensor *a, Tensor *b);
Tensor *op_mul(Graph *g, Tensor *a, Tensor *b);
Tensor *op_scale(Graph *g, Tensor *a, float s);
Tensor *op_gelu(Graph *g, Tensor *a);          /* tanh approximation (GPT-2) */
Tensor *op_relu(Graph *g, Tensor *a);
Tensor *op_silu(Graph *g, Tensor *a);
Tensor *op_sigmoid(Graph *g, Tensor *a);
/* x (rows, H*D) times gate (rows, H): every element of head h scaled by gate[row, h]. */
Tensor *op_mul_heads(Graph *g, Tensor *x, Tensor *gate, int n_head);

/* Reductions to a scalar (shape [1]). */
Tensor *op_sum(Graph *g, Tensor *a);
Tensor *op_mean(Graph *g, Tensor *a);

/* Over the last dim C; gamma/beta (C); beta may be NULL. eps 1e-5. */
Tensor *op_layernorm(Graph *g, Tensor *x, Tensor *gamma, Tensor *beta);
Tensor *op_rmsnorm(Graph *g, Tensor *x, Tensor *gamma);
#define NORM_EPS 1e-5f

Tensor *op_softmax(Graph *g, Tensor *x);       /* over the last dim */
/* Mean over rows with mask != 0 of -log softmax(logits)[target]; logits (N, V). Rows with mask
 * 0 contribute nothing; if no row counts the loss is 0. A scalar. */
Tensor *op_cross_entropy(Graph *g, Tensor *logits, const int32_t *targets, const float *mask);

/* out (N, C) = table[ids[n]]; ids checked against V. */
Tensor *op_embedding(Graph *g, Tensor *table, const int32_t *ids, int n);

/* (B, T, H, D) <-> (B, H, T, D). */
Tensor *op_split_heads(Graph *g, Tensor *x, int n_head);     /* x (B, T, H*D) -> (B, H, T, D) */
Tensor *op_merge_heads(Graph *g, Tensor *x);                 /* (B, H, T, D) -> (B, T, H*D) */
Tensor *op_reshape(Graph *g, Tensor *x, int ndim, const int *shape);
/* Along the last dim. */
Tensor *op_concat(Graph *g, Tensor *a, Tensor *b);
/* Columns [start, start+width) of the last dim. */
Tensor *op_slice_cols(Graph *g, Tensor *x, int start, int width);

/* RoPE on x (B, T, H*D), rotate-half pairing: dims (i, i + D/2) of each head rotate by
 * positions[b,t] * base^(-2i/D). D must be even. */
Tensor *op_rope(Graph *g, Tensor *x, const int32_t *positions, int n_head, float base);

#endif
