/* ops_norm.c: layernorm and rmsnorm over the last dimension, mean/rstd saved for backward. */
#include "model/autograd.h"
#include "model/fastmath.h"

#include <math.h>
#include <omp.h>

typedef struct { float *mean, *rstd; } NormSaved;

/* Row statistics are summed in double (a row of 512 floats loses ~1e-5 relative in float), one
 * serial chain per row in column order. A chain of dependent double adds is latency-bound, so
 * rows go NORM_ROWS at a time with one accumulator each: the same additions in the same order per
 * row (results identical to a row-by-row loop), NORM_ROWS chains in flight instead of one. */
#define NORM_ROWS 8

/* Row r of a group of nr rows from x (N, C); the padding rows of a short group repeat row 0. */
static const float *group_row(const float *x, int r, int nr, int C)
{
    return x + (size_t)(r < nr ? r : 0) * C;
}

/* mean (0 for rms) and rstd of the nr <= NORM_ROWS rows of x (nr, C). */
SL_VECTOR_CLONES
static void norm_stats(float *mean, float *rstd, const float *x, int nr, int C, int rms)
{
    const float *xr[NORM_ROWS];
    double m[NORM_ROWS] = {0}, var[NORM_ROWS] = {0};
    for (int r = 0; r < NORM_ROWS; r++) xr[r] = group_row(x, r, nr, C);
    if (!rms) {
        for (int c = 0; c < C; c++)
            for (int r = 0; r < NORM_ROWS; r++) m[r] += xr[r][c];
        for (int r = 0; r < NORM_ROWS; r++) m[r] /= C;
    }
    for (int c = 0; c < C; c++)
        for (int r = 0; r < NORM_ROWS; r++) {
            double d = (double)xr[r][c] - m[r];
            var[r] += d * d;
        }
    for (int r = 0; r < nr; r++) {
        mean[r] = (float)m[r];
        rstd[r] = (float)(1.0 / sqrt(var[r] / C + NORM_EPS));
    }
}

/* y = (x - m) rs gamma + beta over one row of C (beta may be NULL). */
SL_VECTOR_CLONES
static void norm_row_forward(float *restrict y, const float *restrict x, const float *gamma,
                             const float *beta, float m, float rs, int C)
{
    if (beta)
        for (int c = 0; c < C; c++) y[c] = ((x[c] - m) * rs) * gamma[c] + beta[c];
    else
        for (int c = 0; c < C; c++) y[c] = ((x[c] - m) * rs) * gamma[c] + 0.0f;
}

/* x, y: (N, C); gamma, beta: (C); mean, rstd: (N). beta may be NULL; rms skips the mean. */
static void norm_forward(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                         const float *beta, int N, int C, int rms)
{
    #pragma omp parallel for schedule(static) if (N >= 64)
    for (int n0 = 0; n0 < N; n0 += NORM_ROWS) {
        int nr = N - n0 < NORM_ROWS ? N - n0 : NORM_ROWS;
        norm_stats(mean + n0, rstd + n0, x + (size_t)n0 * C, nr, C, rms);
        for (int n = n0; n < n0 + nr; n++)
            norm_row_forward(y + (size_t)n * C, x + (size_t)n * C, gamma, beta, mean[n], rstd[n], C);
    }
}

/* sum_c dy gamma and sum_c dy gamma xhat of the nr <= NORM_ROWS rows of a group (double, in
 * column order per row, as norm_stats). */
SL_VECTOR_CLONES
static void norm_grad_sums(double *sum_g, double *sum_gx, const float *dy, const float *x,
                           const float *mean, const float *rstd, const float *gamma, int nr, int C)
{
    const float *dyr[NORM_ROWS], *xr[NORM_ROWS];
    float mn[NORM_ROWS], rs[NORM_ROWS];
    double sg[NORM_ROWS] = {0}, sgx[NORM_ROWS] = {0};
    for (int r = 0; r < NORM_ROWS; r++) {
        dyr[r] = group_row(dy, r, nr, C);
        xr[r] = group_row(x, r, nr, C);
        mn[r] = mean[r < nr ? r : 0];
        rs[r] = rstd[r < nr ? r : 0];
    }
    for (int c = 0; c < C; c++)
        for (int r = 0; r < NORM_ROWS; r++) {
            float xhat = (xr[r][c] - mn[r]) * rs[r];
            float dg = dyr[r][c] * gamma[c];
            sg[r] += dg;
            sgx[r] += dg * xhat;
        }
    for (int r = 0; r < NORM_ROWS; r++) {
        sum_g[r] = sg[r];
        sum_gx[r] = sgx[r];
    }
}

/* dx (+)= rs (dy gamma - mg - xhat mgx) over one row, xhat = (x - m) rs; write: dx holds nothing
 * yet (assign instead of add). */
SL_VECTOR_CLONES
static void norm_row_backward(float *restrict dx, const float *restrict dy,
                              const float *restrict x, const float *gamma, float m, float rs,
                              float mg, float mgx, int C, int write)
{
    if (write)
        for (int c = 0; c < C; c++) dx[c] = rs * (dy[c] * gamma[c] - mg - ((x[c] - m) * rs) * mgx);
    else
        for (int c = 0; c < C; c++) dx[c] += rs * (dy[c] * gamma[c] - mg - ((x[c] - m) * rs) * mgx);
}

/* dgamma += sum_n dy (x - mean) rstd, dbeta += sum_n dy: serial over rows so the sum order never
 * depends on threads; each column its own chain, vectorised across columns. */
SL_VECTOR_CLONES
static void norm_param_grads_cols(float *restrict dgamma, float *restrict dbeta,
                                  const float *restrict dy, const float *restrict x,
                                  const float *mean, const float *rstd, int N, int W, int C)
{
    for (int n = 0; n < N; n++) {
        const float *dyr = dy + (size_t)n * C, *xr = x + (size_t)n * C;
        float m = mean[n], rs = rstd[n];
        if (dgamma)
            for (int c = 0; c < W; c++) dgamma[c] += dyr[c] * (xr[c] - m) * rs;
        if (dbeta)
            for (int c = 0; c < W; c++) dbeta[c] += dyr[c];
    }
}

/* Columns (of width W, row stride C) split over the threads in blocks; each column's sum over
 * rows keeps its order, so the thread count changes nothing. */
#define NORM_COL_BLOCK 64
static void norm_param_grads(float *dgamma, float *dbeta, const float *dy, const float *x,
                             const float *mean, const float *rstd, int N, int C)
{
    int nb = omp_get_max_threads() > 1 ? (C + NORM_COL_BLOCK - 1) / NORM_COL_BLOCK : 1;
    int w = (C + nb - 1) / nb;
    #pragma omp parallel for schedule(static) if (nb > 1 && N >= 64)
    for (int j = 0; j < nb; j++) {
        int c0 = j * w, wj = C - c0 < w ? C - c0 : w;
        if (wj > 0)
            norm_param_grads_cols(dgamma ? dgamma + c0 : NULL, dbeta ? dbeta + c0 : NULL,
                                  dy + c0, x + c0, mean, rstd, N, wj, C);
    }
}

static void norm_backward(float *dx, int write, float *dgamma, float *dbeta, const float *dy, const float *x,
                          const float *mean, const float *rstd, const float *gamma, int N, int C,
                          int rms)
{
    if (dx) {
        /* write: dx holds nothing yet, so it is assigned instead of added to */
        #pragma omp parallel for schedule(static) if (N >= 64)
        for (int n0 = 0; n0 < N; n0 += NORM_ROWS) {
            int nr = N - n0 < NORM_ROWS ? N - n0 : NORM_ROWS;
            double sum_g[NORM_ROWS], sum_gx[NORM_ROWS];
            /* forward was: y = (x - mean) * rstd * gamma + beta; xhat = (x - mean) * rstd */
            norm_grad_sums(sum_g, sum_gx, dy + (size_t)n0 * C, x + (size_t)n0 * C, mean + n0,
                           rstd + n0, gamma, nr, C);
            for (int r = 0; r < nr; r++) {
                size_t o = (size_t)(n0 + r) * C;
                float mg = rms ? 0.0f : (float)(sum_g[r] / C), mgx = (float)(sum_gx[r] / C);
                norm_row_backward(dx + o, dy + o, x + o, gamma, mean[n0 + r], rstd[n0 + r], mg, mgx,
                                  C, write);
            }
        }
    }
    norm_param_grads(dgamma, dbeta, dy, x, mean, rstd, N, C);
}

static void layernorm_node_backward(Node *n)
{
    Tensor *y = n->out, *x = n->in[0], *gamma = n->in[1], *beta = n->in[2];
    const NormSaved *s = n->ctx;
    int write = grad_fresh(x);
    grad_clear(gamma);
    grad_clear(beta);
    norm_backward(x->grad, write, gamma->grad, beta ? beta->grad : NULL, y->grad, x->data, s->mean,
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
        n->lazy_grads = 1;
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
