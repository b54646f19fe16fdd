/* ops_norm.c: layernorm and rmsnorm over the last dimension, mean/rstd saved for backward. */
#include "model/autograd.h"

#include <math.h>

typedef struct { float *mean, *rstd; } NormSaved;

/* x, y: (N, C); gamma, beta: (C); mean, rstd: (N). beta may be NULL; rms skips the mean. */
static void norm_forward(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                         const float *beta, int N, int C, int rms)
{
    #pragma omp parallel for schedule(static) if (N >= 64)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C;
        float *yr = y + (size_t)n * C;
        /* double accumulators: a row of 512 floats loses ~1e-5 relative in float */
        double m = 0.0;
        if (!rms) {
            for (int c = 0; c < C; c++) m += xr[c];
            m /= C;
        }
        double var = 0.0;
        for (int c = 0; c < C; c++) var += ((double)xr[c] - m) * ((double)xr[c] - m);
        var /= C;
        float rs = (float)(1.0 / sqrt(var + NORM_EPS));
        for (int c = 0; c < C; c++)
            yr[c] = ((xr[c] - (float)m) * rs) * gamma[c] + (beta ? beta[c] : 0.0f);
        mean[n] = (float)m;
        rstd[n] = rs;
    }
}

static void norm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                          const float *mean, const float *rstd, const float *gamma, int N, int C,
                          int rms)
{
    if (dx) {
        #pragma omp parallel for schedule(static) if (N >= 64)
        for (int n = 0; n < N; n++) {
            const float *dyr = dy + (size_t)n * C, *xr = x + (size_t)n * C;
            float *dxr = dx + (size_t)n * C;
            /* forward was: y = (x - mean) * rstd * gamma + beta; xhat = (x - mean) * rstd */
            double sum_g = 0.0, sum_gx = 0.0;
            for (int c = 0; c < C; c++) {
                float xhat = (xr[c] - mean[n]) * rstd[n];
                float dg = dyr[c] * gamma[c];
                sum_g += dg;
                sum_gx += dg * xhat;
            }
            float mg = rms ? 0.0f : (float)(sum_g / C), mgx = (float)(sum_gx / C);
            for (int c = 0; c < C; c++) {
                float xhat = (xr[c] - mean[n]) * rstd[n];
                dxr[c] += rstd[n] * (dyr[c] * gamma[c] - mg - xhat * mgx);
            }
        }
    }
    /* parameter gradients: serial over rows so the sum order never depends on threads */
    for (int n = 0; n < N; n++) {
        const float *dyr = dy + (size_t)n * C, *xr = x + (size_t)n * C;
        for (int c = 0; c < C; c++) {
            if (dgamma) dgamma[c] += dyr[c] * (xr[c] - mean[n]) * rstd[n];
            if (dbeta) dbeta[c] += dyr[c];
        }
    }
}

static void layernorm_node_backward(Node *n)
{
    Tensor *y = n->out, *x = n->in[0], *gamma = n->in[1], *beta = n->in[2];
    const NormSaved *s = n->ctx;
    norm_backward(x->grad, gamma->grad, beta ? beta->grad : NULL, y->grad, x->data, s->mean,
                  s->rstd, gamma->data, n->iarg[0], n->iarg[1], n->iarg[2]);
}

static Tensor *norm_op(Graph *g, Tensor *x, Tensor *gamma, Tensor *beta, int rms)
{
    char s1[64], s2[64];
    int C = x->shape[x->ndim - 1];
    SL_CHECK(gamma->size == (size_t)C && (!beta || beta->size == (size_t)C),
             "%s: x %s does not fit gamma %s", rms ? "rmsnorm" : "layernorm",
             tensor_shape_str(x, s1, sizeof s1), tensor_shape_str(gamma, s2, sizeof s2));
    int N = (int)(x->size / (size_t)C);
    int needs = x->grad || gamma->grad || (beta && beta->grad);
    Tensor *y = graph_output(g, x->ndim, x->shape, needs);
    NormSaved *s = arena_alloc(&g->arena, sizeof *s);
    s->mean = arena_alloc(&g->arena, (size_t)N * sizeof(float));
    s->rstd = arena_alloc(&g->arena, (size_t)N * sizeof(float));
    norm_forward(y->data, s->mean, s->rstd, x->data, gamma->data, beta ? beta->data : NULL, N, C, rms);
    if (y->grad) {
        Node *n = graph_node(g, rms ? "rmsnorm" : "layernorm", layernorm_node_backward, y);
        n->in[0] = x; n->in[1] = gamma; n->in[2] = beta;
        n->iarg[0] = N; n->iarg[1] = C; n->iarg[2] = rms;
        n->ctx = s;
    }
    return y;
}

Tensor *op_layernorm(Graph *g, Tensor *x, Tensor *gamma, Tensor *beta)
{
    return norm_op(g, x, gamma, beta, 0);
}

Tensor *op_rmsnorm(Graph *g, Tensor *x, Tensor *gamma) { return norm_op(g, x, gamma, NULL, 1); }
