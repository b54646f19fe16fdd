/* ops_matmul.c: every matrix product goes through OpenBLAS cblas_sgemm. OpenBLAS runs
 * single-threaded and sinklab splits each large product into fixed blocks over its own OpenMP
 * threads: one thread pool instead of two. (With OpenBLAS's pthread pool next to OpenMP's, idle
 * workers of each spin while the other works; on 2 cores 2 threads ran 3x slower than 1.) */
#include "model/autograd.h"
#include "model/fastmath.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

extern void openblas_set_num_threads(int);

void autograd_set_threads(int n)
{
    omp_set_num_threads(n > 0 ? n : 1);
    openblas_set_num_threads(1);
}

static int split_products = 1;

int autograd_split_products(int on)
{
    int was = split_products;
    split_products = on;
    return was;
}

/* Products below this many multiply-adds are not worth a parallel region. */
#define GEMM_PAR_MIN (1 << 20)
/* The larger of M and N is cut into at most GEMM_MAX_BLOCKS blocks of at least GEMM_MIN_BLOCK
 * (multiples of 16), chosen from the shape alone: every block is the same cblas_sgemm call
 * whatever the thread count, so results are bit-identical across thread counts. Few large
 * blocks matter: each call packs the whole other operand again (with 128-row blocks at R1,
 * OpenBLAS's packing copies were 14% of a 1-thread step). */
#define GEMM_MIN_BLOCK 128
#define GEMM_MAX_BLOCKS 2

static int gemm_block(int extent)
{
    int n = extent / GEMM_MIN_BLOCK;
    n = n < 1 ? 1 : n > GEMM_MAX_BLOCKS ? GEMM_MAX_BLOCKS : n;
    int w = (extent + n - 1) / n;
    return (w + 15) / 16 * 16;
}

/* C (M, N) = alpha op(A) op(B) + beta C, row-major. The larger of M and N is cut into blocks of
 * gemm_block(extent), one cblas_sgemm per block, blocks shared among the OpenMP threads. */
static void gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    static int blas_single;
    if (!blas_single) { /* callers that never set threads (tests) get the same policy */
        openblas_set_num_threads(1);
        blas_single = 1;
    }
    CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
    int by_rows = M >= N, extent = by_rows ? M : N;
    int block = gemm_block(extent), n_blocks = (extent + block - 1) / block;
    if (!split_products || n_blocks <= 1 || (double)M * N * K < GEMM_PAR_MIN) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    #pragma omp parallel for schedule(static) if (!omp_in_parallel())
    for (int i = 0; i < n_blocks; i++) {
        int o = i * block, w = extent - o < block ? extent - o : block;
        if (by_rows) {
            /* row o of op(A): a row of A, or a column when A is stored transposed (K, M) */
            const float *a = trans_a ? A + o : A + (size_t)o * lda;
            cblas_sgemm(CblasRowMajor, ta, tb, w, N, K, alpha, a, lda, B, ldb, beta,
                        C + (size_t)o * ldc, ldc);
        } else {
            /* column o of op(B): a column of B, or a row when B is stored transposed (N, K) */
            const float *b = trans_b ? B + (size_t)o * ldb : B + o;
            cblas_sgemm(CblasRowMajor, ta, tb, M, w, K, alpha, A, lda, b, ldb, beta, C + o, ldc);
        }
    }
}

static size_t rows_of(const Tensor *x) { return x->size / (size_t)x->shape[x->ndim - 1]; }

/* ---- linear: y (N, O) = x (N, K) W^T + b, W (O, K) ---- */

/* db (W) += sum over the N rows of dy (N, W; row stride ld), rows in order (each column its own
 * chain, so the loop vectorises across columns with the serial loop's sums). */
SL_VECTOR_CLONES
static void bias_grad_cols(float *restrict db, const float *restrict dy, int N, int W, int ld)
{
    for (int r = 0; r < N; r++)
        for (int o = 0; o < W; o++) db[o] += dy[(size_t)r * ld + o];
}

/* The bias gradient with its columns split over the threads in blocks: each column still sums
 * its rows in order, so results do not depend on the thread count. */
#define BIAS_COL_BLOCK 64
static void bias_grad(float *db, const float *dy, int N, int O)
{
    int nb = omp_get_max_threads() > 1 ? (O + BIAS_COL_BLOCK - 1) / BIAS_COL_BLOCK : 1;
    int w = (O + nb - 1) / nb;
    #pragma omp parallel for schedule(static) if (nb > 1 && (size_t)N * O > 65536)
    for (int j = 0; j < nb; j++) {
        int o0 = j * w, wj = O - o0 < w ? O - o0 : w;
        if (wj > 0) bias_grad_cols(db + o0, dy + o0, N, wj, O);
    }
}

static void linear_backward(Node *n)
{
    Tensor *y = n->out, *x = n->in[0], *W = n->in[1], *b = n->in[2];
    int N = n->iarg[0], K = n->iarg[1], O = n->iarg[2];
    /* forward was: y = x W^T + b; the first contribution to dx is written (beta = 0) */
    if (x->grad)
        gemm(0, 0, N, K, O, 1.0f, y->grad, O,
                    W->data, K, grad_fresh(x) ? 0.0f : 1.0f, x->grad, K);
    grad_clear(W);
    grad_clear(b);
    if (W->grad)
        gemm(1, 0, O, K, N, 1.0f, y->grad, O,
                    x->data, K, 1.0f, W->grad, K);
    if (b && b->grad) bias_grad(b->grad, y->grad, N, O);
}

Tensor *op_linear(Graph *g, Tensor *x, Tensor *W, Tensor *b)
{
    char s1[64], s2[64];
    int K = x->shape[x->ndim - 1];
    SL_CHECK(W->ndim == 2 && W->shape[1] == K, "op_linear: x %s does not fit W %s",
             tensor_shape_str(x, s1, sizeof s1), tensor_shape_str(W, s2, sizeof s2));
    int O = W->shape[0];
    SL_CHECK(!b || (b->size == (size_t)O), "op_linear: bias has %zu elements, want %d",
             b ? b->size : 0, O);
    int N = (int)rows_of(x);
    int shape[TENSOR_MAX_DIM];
    for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
    shape[x->ndim - 1] = O;
    Tensor *y = graph_output(g, x->ndim, shape, x->grad || W->grad || (b && b->grad));
    /* The bias is written first and the product accumulated onto it (beta = 1): one pass over
     * y fewer than OpenBLAS zeroing y for beta = 0 and then adding the bias. */
    if (b) {
        #pragma omp parallel for schedule(static) if ((size_t)N * O > 65536)
        for (int r = 0; r < N; r++)
            memcpy(y->data + (size_t)r * O, b->data, (size_t)O * sizeof(float));
    }
    if (N > 0)
        gemm(0, 1, N, O, K, 1.0f, x->data, K, W->data, K, b ? 1.0f : 0.0f, y->data, O);
    if (y->grad) {
        Node *n = graph_node(g, "linear", linear_backward, y);
        n->lazy_grads = 1;
        n->in[0] = x; n->in[1] = W; n->in[2] = b;
        n->iarg[0] = N; n->iarg[1] = K; n->iarg[2] = O;
    }
    return y;
}

/* ---- batched matmul: c (Bt, M, N) = op(a) (Bt, M, K) op(b) (Bt, K, N); a 2D operand is shared
 * across the batch ---- */

typedef struct { int Bt, M, N, K, ta, tb, a_batched, b_batched; } MatmulDims;

static void matmul_backward(Node *n)
{
    const MatmulDims *d = n->ctx;
    Tensor *c = n->out, *a = n->in[0], *b = n->in[1];
    int lda = d->ta ? d->M : d->K, ldb = d->tb ? d->K : d->N;
    size_t sa = d->a_batched ? (size_t)d->M * d->K : 0, sb = d->b_batched ? (size_t)d->K * d->N : 0;
    for (int i = 0; i < d->Bt; i++) {
        const float *dc = c->grad + (size_t)i * d->M * d->N;
        /* forward was: C = op(A) op(B); dop(A) = dC op(B)^T, dop(B) = op(A)^T dC */
        if (a->grad) {
            if (!d->ta)
                gemm(0, d->tb ? 0 : 1,
                            d->M, d->K, d->N, 1.0f, dc, d->N, b->data + i * sb, ldb, 1.0f,
                            a->grad + i * sa, lda);
            else /* A stored (K, M): dA = op(B) dC^T */
                gemm(d->tb ? 1 : 0, 1,
                            d->K, d->M, d->N, 1.0f, b->data + i * sb, ldb, dc, d->N, 1.0f,
                            a->grad + i * sa, lda);
        }
        if (b->grad) {
            if (!d->tb)
                gemm(d->ta ? 0 : 1, 0,
                            d->K, d->N, d->M, 1.0f, a->data + i * sa, lda, dc, d->N, 1.0f,
                            b->grad + i * sb, ldb);
            else /* B stored (N, K): dB = dC^T op(A) */
                gemm(1, d->ta ? 1 : 0,
                            d->N, d->K, d->M, 1.0f, dc, d->N, a->data + i * sa, lda, 1.0f,
                            b->grad + i * sb, ldb);
        }
    }
}

Tensor *op_matmul(Graph *g, Tensor *a, Tensor *b, int trans_a, int trans_b)
{
    char s1[64], s2[64];
    SL_CHECK((a->ndim == 2 || a->ndim == 3) && (b->ndim == 2 || b->ndim == 3),
             "op_matmul: operands must be 2D or 3D, got %s and %s",
             tensor_shape_str(a, s1, sizeof s1), tensor_shape_str(b, s2, sizeof s2));
    MatmulDims d = {0};
    d.ta = trans_a; d.tb = trans_b;
    d.a_batched = a->ndim == 3; d.b_batched = b->ndim == 3;
    int ar = a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
    int br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
    d.M = trans_a ? ac : ar;
    d.K = trans_a ? ar : ac;
    int kb = trans_b ? bc : br;
    d.N = trans_b ? br : bc;
    d.Bt = d.a_batched ? a->shape[0] : (d.b_batched ? b->shape[0] : 1);
    SL_CHECK(kb == d.K && (!d.a_batched || !d.b_batched || a->shape[0] == b->shape[0]),
             "op_matmul: shapes %s%s and %s%s do not multiply",
             tensor_shape_str(a, s1, sizeof s1), trans_a ? "^T" : "",
             tensor_shape_str(b, s2, sizeof s2), trans_b ? "^T" : "");
    int shape[3] = {d.Bt, d.M, d.N};
    int batched = d.a_batched || d.b_batched;
    Tensor *c = graph_output(g, batched ? 3 : 2, batched ? shape : shape + 1, a->grad || b->grad);
    int lda = trans_a ? d.M : d.K, ldb = trans_b ? d.K : d.N;
    size_t sa = d.a_batched ? (size_t)d.M * d.K : 0, sb = d.b_batched ? (size_t)d.K * d.N : 0;
    for (int i = 0; i < d.Bt; i++)
        gemm(trans_a ? 1 : 0,
                    trans_b ? 1 : 0, d.M, d.N, d.K, 1.0f, a->data + i * sa,
                    lda, b->data + i * sb, ldb, 0.0f, c->data + (size_t)i * d.M * d.N, d.N);
    if (c->grad) {
        Node *n = graph_node(g, "matmul", matmul_backward, c);
        n->in[0] = a; n->in[1] = b;
        MatmulDims *saved = arena_alloc(&g->arena, sizeof *saved);
        *saved = d;
        n->ctx = saved;
    }
    return c;
}
