/* ops_elementwise.c: add/sub/mul with row broadcasting, scale, activations, the head gate. */
#include "model/autograd.h"
#include "model/fastmath.h"

#include <math.h>

/* Big enough that an OpenMP fork pays for itself. */
#define PAR_MIN 32768
/* Elementwise loops split over threads in chunks of this many elements (no result depends on it). */
#define SPAN_CHUNK 4096

static int is_row_of(const Tensor *b, const Tensor *a)
{
    return b->size == (size_t)a->shape[a->ndim - 1] && !tensor_same_shape(a, b);
}

static void check_binary(const char *op, const Tensor *a, const Tensor *b)
{
    char s1[64], s2[64];
    SL_CHECK(tensor_same_shape(a, b) || is_row_of(b, a),
             "%s: shapes %s and %s: b must match a or be one row of its last dim", op,
             tensor_shape_str(a, s1, sizeof s1), tensor_shape_str(b, s2, sizeof s2));
}

/* db += sum over rows of (coef * x); x (rows, C). Serial over rows: deterministic. */
static void accumulate_rows(float *db, const float *x, const float *w, size_t rows, size_t C)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < C; c++) db[c] += x[r * C + c] * (w ? w[r * C + c] : 1.0f);
}

/* ---- add / sub ---- */

/* y (+)= s x over n elements; write: y holds nothing yet (assign instead of add). */
SL_VECTOR_CLONES
static void span_axpy(float *restrict y, const float *restrict x, float s, size_t n, int write)
{
    if (write)
        for (size_t i = 0; i < n; i++) y[i] = s * x[i];
    else
        for (size_t i = 0; i < n; i++) y[i] += s * x[i];
}

static void addsub_backward(Node *n)
{
    Tensor *y = n->out, *a = n->in[0], *b = n->in[1];
    float sign = n->farg[0];
    /* a first contribution is written; a and b may share one gradient (then b adds) */
    if (a->grad) {
        int write = grad_fresh(a);
        size_t len = a->size, n_chunks = (len + SPAN_CHUNK - 1) / SPAN_CHUNK;
        #pragma omp parallel for schedule(static) if (len > PAR_MIN)
        for (size_t ch = 0; ch < n_chunks; ch++) {
            size_t o = ch * SPAN_CHUNK, w = len - o < SPAN_CHUNK ? len - o : SPAN_CHUNK;
            span_axpy(a->grad + o, y->grad + o, 1.0f, w, write);
        }
    }
    if (b->grad) {
        if (b->size == y->size) {
            int write = grad_fresh(b);
            size_t len = b->size, n_chunks = (len + SPAN_CHUNK - 1) / SPAN_CHUNK;
            #pragma omp parallel for schedule(static) if (len > PAR_MIN)
            for (size_t ch = 0; ch < n_chunks; ch++) {
                size_t o = ch * SPAN_CHUNK, w = len - o < SPAN_CHUNK ? len - o : SPAN_CHUNK;
                span_axpy(b->grad + o, y->grad + o, sign, w, write);
            }
        } else {
            grad_clear(b);
            size_t C = b->size;
            for (size_t r = 0; r < y->size / C; r++)
                for (size_t c = 0; c < C; c++) b->grad[c] += sign * y->grad[r * C + c];
        }
    }
}

static Tensor *addsub(Graph *g, Tensor *a, Tensor *b, float sign, const char *name)
{
    check_binary(name, a, b);
    Tensor *y = graph_output(g, a->ndim, a->shape, a->grad || b->grad);
    size_t C = b->size;
    if (C == a->size) {
        #pragma omp parallel for schedule(static) if (a->size > PAR_MIN)
        for (size_t i = 0; i < a->size; i++) y->data[i] = a->data[i] + sign * b->data[i];
    } else {
        #pragma omp parallel for schedule(static) if (a->size > PAR_MIN)
        for (size_t r = 0; r < a->size / C; r++)
            for (size_t c = 0; c < C; c++)
                y->data[r * C + c] = a->data[r * C + c] + sign * b->data[c];
    }
    if (y->grad) {
        Node *n = graph_node(g, name, addsub_backward, y);
        n->lazy_grads = 1;
        n->in[0] = a; n->in[1] = b; n->farg[0] = sign;
    }
    return y;
}

Tensor *op_add(Graph *g, Tensor *a, Tensor *b) { return addsub(g, a, b, 1.0f, "add"); }
Tensor *op_sub(Graph *g, Tensor *a, Tensor *b) { return addsub(g, a, b, -1.0f, "sub"); }

/* ---- mul ---- */

static void mul_backward(Node *n)
{
    Tensor *y = n->out, *a = n->in[0], *b = n->in[1];
    size_t C = b->size;
    int row = C != a->size;
    grad_clear(a);
    grad_clear(b);
    /* forward was: y = a * b (b broadcast over rows when row) */
    if (a->grad)
        for (size_t i = 0; i < a->size; i++) a->grad[i] += y->grad[i] * b->data[row ? i % C : i];
    if (b->grad) {
        if (!row)
            for (size_t i = 0; i < b->size; i++) b->grad[i] += y->grad[i] * a->data[i];
        else
            accumulate_rows(b->grad, y->grad, a->data, a->size / C, C);
    }
}

Tensor *op_mul(Graph *g, Tensor *a, Tensor *b)
{
    check_binary("mul", a, b);
    Tensor *y = graph_output(g, a->ndim, a->shape, a->grad || b->grad);
    size_t C = b->size;
    if (C == a->size) {
        #pragma omp parallel for schedule(static) if (a->size > PAR_MIN)
        for (size_t i = 0; i < a->size; i++) y->data[i] = a->data[i] * b->data[i];
    } else {
        #pragma omp parallel for schedule(static) if (a->size > PAR_MIN)
        for (size_t r = 0; r < a->size / C; r++)
            for (size_t c = 0; c < C; c++) y->data[r * C + c] = a->data[r * C + c] * b->data[c];
    }
    if (y->grad) {
        Node *n = graph_node(g, "mul", mul_backward, y);
        n->lazy_grads = 1;
        n->in[0] = a; n->in[1] = b;
    }
    return y;
}

/* ---- scale ---- */

static void scale_backward(Node *n)
{
    Tensor *y = n->out, *a = n->in[0];
    if (grad_fresh(a))
        for (size_t i = 0; i < a->size; i++) a->grad[i] = n->farg[0] * y->grad[i];
    else
        for (size_t i = 0; i < a->size; i++) a->grad[i] += n->farg[0] * y->grad[i];
}

Tensor *op_scale(Graph *g, Tensor *a, float s)
{
    Tensor *y = graph_output(g, a->ndim, a->shape, a->grad != NULL);
    for (size_t i = 0; i < a->size; i++) y->data[i] = s * a->data[i];
    if (y->grad) {
        Node *n = graph_node(g, "scale", scale_backward, y);
        n->lazy_grads = 1;
        n->in[0] = a; n->farg[0] = s;
    }
    return y;
}

/* ---- unary activations: one forward/derivative pair each, one driver ---- */

typedef enum { ACT_GELU, ACT_RELU, ACT_SILU, ACT_SIGMOID } Activation;

#define GELU_SCALE 0.7978845608028654f   /* sqrt(2 / pi) */

static inline float act_forward(Activation k, float x)
{
    switch (k) {
    case ACT_GELU: return 0.5f * x * (1.0f + tanh_fast(GELU_SCALE * (x + 0.044715f * x * x * x)));
    case ACT_RELU: return x > 0.0f ? x : 0.0f;
    case ACT_SILU: return x / (1.0f + expf(-x));
    case ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    }
    return 0.0f;
}

/* GELU runs over chunks of this many elements, each one call of a span function compiled for
 * AVX2 and the baseline (SL_VECTOR_CLONES): element-wise, so the chunking changes no result. */
#define GELU_CHUNK 4096

/* y = 0.5 x (1 + tanh u), u = s (x + 0.044715 x^3); t = tanh u, kept for backward. */
SL_VECTOR_CLONES
static void gelu_forward_span(float *restrict y, float *restrict t, const float *restrict x,
                              size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float xi = x[i];
        t[i] = tanh_fast(GELU_SCALE * (xi + 0.044715f * xi * xi * xi));
        y[i] = 0.5f * xi * (1.0f + t[i]);
    }
}

/* forward was: y = 0.5 x (1 + tanh u), u = s (x + 0.044715 x^3) */
static inline float gelu_slope(float x, float t)
{
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_SCALE * (1.0f + 0.134145f * x * x);
}

/* dx (+)= dy gelu'(x); write: dx holds nothing yet (assign instead of add). */
SL_VECTOR_CLONES
static void gelu_backward_span(float *restrict dx, const float *restrict dy,
                               const float *restrict x, const float *restrict t, size_t n,
                               int write)
{
    if (write)
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * gelu_slope(x[i], t[i]);
    else
        for (size_t i = 0; i < n; i++) dx[i] += dy[i] * gelu_slope(x[i], t[i]);
}

/* d act / dx at x, given y = act(x). */
static inline float act_derivative(Activation k, float x, float y)
{
    switch (k) {
    case ACT_GELU: return 0.0f;   /* handled with the saved tanh in activation_backward */
    case ACT_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case ACT_SILU: {
        float s = 1.0f / (1.0f + expf(-x));
        return s * (1.0f + x * (1.0f - s));
    }
    case ACT_SIGMOID: return y * (1.0f - y);
    }
    return 0.0f;
}

static void activation_backward(Node *n)
{
    Tensor *y = n->out, *a = n->in[0];
    Activation k = (Activation)n->iarg[0];
    const float *t = n->ctx;   /* GELU: tanh(u) saved by the forward pass */
    if (k == ACT_GELU) {
        size_t n = a->size, n_chunks = (n + GELU_CHUNK - 1) / GELU_CHUNK;
        int write = grad_fresh(a);
        #pragma omp parallel for schedule(static) if (n > PAR_MIN)
        for (size_t ch = 0; ch < n_chunks; ch++) {
            size_t o = ch * GELU_CHUNK, w = n - o < GELU_CHUNK ? n - o : GELU_CHUNK;
            gelu_backward_span(a->grad + o, y->grad + o, a->data + o, t + o, w, write);
        }
        return;
    }
    grad_clear(a);
    #pragma omp parallel for schedule(static) if (a->size > PAR_MIN)
    for (size_t i = 0; i < a->size; i++)
        a->grad[i] += y->grad[i] * act_derivative(k, a->data[i], y->data[i]);
}

static Tensor *activation(Graph *g, Tensor *a, Activation k, const char *name)
{
    Tensor *y = graph_output(g, a->ndim, a->shape, a->grad != NULL);
    float *t = NULL;
    if (k == ACT_GELU) {
        /* tanh(u) is kept for backward (recomputing it was half of GELU's cost). One loop with no
         * switch and no branch, so it vectorises, in inference too (probes, evaluation: the
         * per-element switch made inference GELU 10x slower). */
        t = arena_alloc_uninit(&g->arena, a->size * sizeof(float));
        size_t n = a->size, n_chunks = (n + GELU_CHUNK - 1) / GELU_CHUNK;
        #pragma omp parallel for schedule(static) if (n > PAR_MIN)
        for (size_t ch = 0; ch < n_chunks; ch++) {
            size_t o = ch * GELU_CHUNK, w = n - o < GELU_CHUNK ? n - o : GELU_CHUNK;
            gelu_forward_span(y->data + o, t + o, a->data + o, w);
        }
    } else {
        #pragma omp parallel for schedule(static) if (a->size > PAR_MIN)
        for (size_t i = 0; i < a->size; i++) y->data[i] = act_forward(k, a->data[i]);
    }
    if (y->grad) {
        Node *n = graph_node(g, name, activation_backward, y);
        n->lazy_grads = 1;
        n->in[0] = a; n->iarg[0] = (int)k; n->ctx = t;
    }
    return y;
}

Tensor *op_gelu(Graph *g, Tensor *a) { return activation(g, a, ACT_GELU, "gelu"); }
Tensor *op_relu(Graph *g, Tensor *a) { return activation(g, a, ACT_RELU, "relu"); }
Tensor *op_silu(Graph *g, Tensor *a) { return activation(g, a, ACT_SILU, "silu"); }
Tensor *op_sigmoid(Graph *g, Tensor *a) { return activation(g, a, ACT_SIGMOID, "sigmoid"); }

/* ---- head gate: x (rows, H*D) * gate (rows, H) ---- */

static void mul_heads_backward(Node *n)
{
    Tensor *y = n->out, *x = n->in[0], *gate = n->in[1];
    int H = n->iarg[0], C = n->iarg[1], D = C / H;
    size_t rows = x->size / (size_t)C;
    grad_clear(x);
    grad_clear(gate);
    for (size_t r = 0; r < rows; r++)
        for (int h = 0; h < H; h++) {
            /* forward was: y[r, h*D + d] = x[r, h*D + d] * gate[r, h] */
            const float *dy = y->grad + r * C + h * D, *xv = x->data + r * C + h * D;
            float gv = gate->data[r * H + h], dg = 0.0f;
            for (int d = 0; d < D; d++) {
                if (x->grad) x->grad[r * C + h * D + d] += dy[d] * gv;
                dg += dy[d] * xv[d];
            }
            if (gate->grad) gate->grad[r * H + h] += dg;
        }
}

Tensor *op_mul_heads(Graph *g, Tensor *x, Tensor *gate, int n_head)
{
    char s1[64], s2[64];
    int C = x->shape[x->ndim - 1];
    SL_CHECK(n_head > 0 && C % n_head == 0 && gate->shape[gate->ndim - 1] == n_head &&
             gate->size / n_head == x->size / C,
             "op_mul_heads: x %s, gate %s, %d heads", tensor_shape_str(x, s1, sizeof s1),
             tensor_shape_str(gate, s2, sizeof s2), n_head);
    Tensor *y = graph_output(g, x->ndim, x->shape, x->grad || gate->grad);
    int D = C / n_head;
    size_t rows = x->size / (size_t)C;
    for (size_t r = 0; r < rows; r++)
        for (int h = 0; h < n_head; h++)
            for (int d = 0; d < D; d++)
                y->data[r * C + h * D + d] = x->data[r * C + h * D + d] * gate->data[r * n_head + h];
    if (y->grad) {
        Node *n = graph_node(g, "mul_heads", mul_heads_backward, y);
        n->lazy_grads = 1;
        n->in[0] = x; n->in[1] = gate; n->iarg[0] = n_head; n->iarg[1] = C;
    }
    return y;
}
