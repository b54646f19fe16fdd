/* ops_rope.c: rotary position embedding with rotate-half pairing (GPT-NeoX / Llama): in each
 * head, dims i and i + D/2 rotate by positions[b,t] * base^(-2i/D). Angles, cosines and sines are
 * computed in double and rounded once, so large positions lose no precision; backward is the
 * inverse (transposed) rotation. */
#include "model/autograd.h"

#include <math.h>

typedef struct {
    const float *cos, *sin;      /* (B*T, D/2) */
    int n_head, D;
} RopeCtx;

/* x' = R x per head; sign = -1 applies R^T (the inverse rotation), used by backward:
 * forward  x'_i = x_i c - x_{i+D/2} s,  x'_{i+D/2} = x_{i+D/2} c + x_i s. */
static void rope_rotate(float *y, const float *x, const float *cs, const float *sn, int rows,
                        int n_head, int D, float sign, int accumulate)
{
    int half = D / 2, C = n_head * D;
    for (int r = 0; r < rows; r++) {
        const float *c = cs + (size_t)r * half, *s = sn + (size_t)r * half;
        for (int h = 0; h < n_head; h++) {
            const float *xh = x + (size_t)r * C + (size_t)h * D;
            float *yh = y + (size_t)r * C + (size_t)h * D;
            for (int i = 0; i < half; i++) {
                float a = xh[i], b = xh[i + half], si = sign * s[i];
                float ya = a * c[i] - b * si, yb = b * c[i] + a * si;
                if (accumulate) {
                    yh[i] += ya;
                    yh[i + half] += yb;
                } else {
                    yh[i] = ya;
                    yh[i + half] = yb;
                }
            }
        }
    }
}

static void rope_backward(Node *n)
{
    const RopeCtx *c = n->ctx;
    Tensor *x = n->in[0];
    if (!x->grad) return;
    grad_clear(x);
    int rows = (int)(x->size / ((size_t)c->n_head * c->D));
    /* forward was y = R x, so dx += R^T dy. */
    rope_rotate(x->grad, n->out->grad, c->cos, c->sin, rows, c->n_head, c->D, -1.0f, 1);
}

Tensor *op_rope(Graph *g, Tensor *x, const int32_t *positions, int n_head, float base)
{
    char sx[64];
    SL_CHECK(x->ndim == 3 && n_head > 0 && x->shape[2] % n_head == 0 &&
             (x->shape[2] / n_head) % 2 == 0,
             "op_rope: x must be (B, T, H*D) with even D, got %s and n_head %d",
             tensor_shape_str(x, sx, sizeof sx), n_head);
    int rows = x->shape[0] * x->shape[1], D = x->shape[2] / n_head, half = D / 2;
    RopeCtx *c = arena_alloc(&g->arena, sizeof *c);
    float *cs = arena_alloc(&g->arena, (size_t)rows * half * sizeof(float));
    float *sn = arena_alloc(&g->arena, (size_t)rows * half * sizeof(float));
    for (int i = 0; i < half; i++) {
        double freq = pow((double)base, -2.0 * i / D);
        for (int r = 0; r < rows; r++) {
            double a = (double)positions[r] * freq;
            cs[(size_t)r * half + i] = (float)cos(a);
            sn[(size_t)r * half + i] = (float)sin(a);
        }
    }
    c->cos = cs;
    c->sin = sn;
    c->n_head = n_head;
    c->D = D;
    Tensor *out = graph_output(g, 3, x->shape, x->grad != NULL);
    rope_rotate(out->data, x->data, cs, sn, rows, n_head, D, 1.0f, 0);
    if (out->grad) {
        Node *n = graph_node(g, "rope", rope_backward, out);
        n->lazy_grads = 1;
        n->in[0] = x;
        n->iarg[0] = n_head;
        n->ctx = c;
    }
    return out;
}
