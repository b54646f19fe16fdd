/* optim.c: learning-rate schedules, global-norm clipping, AdamW and SGD (see optim.h).
 * The update loops are elementwise, so OpenMP splits them without changing a single bit; the
 * one reduction (the gradient norm) sums fixed chunks in a fixed order. */
#include "train/optim.h"
#include "model/fastmath.h"

#include <math.h>

/* The norm reduction always uses this many chunks, whatever the thread count. */
#define CLIP_CHUNKS 256
/* Below this many elements a parameter is updated without spawning threads. */
#define OMP_MIN 8192
#define OPTIM_PI 3.14159265358979323846

float optim_lr(const TrainConfig *tc, int64_t step)
{
    double lr = tc->lr, lo = tc->min_lr;
    int64_t w = tc->warmup_steps > 0 ? tc->warmup_steps : 0;
    if (step < 0) step = 0;
    if (step < w) return (float)(lr * (double)(step + 1) / (double)w);
    if (tc->schedule == SCHED_CONSTANT) return (float)lr;
    int64_t span = (int64_t)tc->steps - w;
    if (span <= 0 || step >= tc->steps) return (float)lo;
    double r = (double)(step - w) / (double)span;
    if (tc->schedule == SCHED_LINEAR) return (float)(lr + (lo - lr) * r);
    return (float)(lo + (lr - lo) * 0.5 * (1.0 + cos(OPTIM_PI * r)));
}

/* part[c] = sum of g[i]^2 over chunk c (elements [c chunk, (c + 1) chunk) of n), in order, for
 * CLIP_GROUP consecutive chunks c0 .. at once: the same serial sum per chunk, CLIP_GROUP
 * independent chains in flight instead of one latency-bound chain. */
#define CLIP_GROUP 8
_Static_assert(CLIP_CHUNKS % CLIP_GROUP == 0, "chunks come in whole groups");
static void clip_chunk_sums(double *part, const float *g, size_t n, size_t chunk, int c0)
{
    double s[CLIP_GROUP] = {0};
    for (size_t i = 0; i < chunk; i++)
        for (int u = 0; u < CLIP_GROUP; u++) {
            size_t j = (size_t)(c0 + u) * chunk + i;
            double x = j < n ? (double)g[j] : 0.0;
            s[u] += x * x;
        }
    for (int u = 0; u < CLIP_GROUP; u++) part[c0 + u] = s[u];
}

float optim_clip_grad(ParamBlock *pb, float max_norm)
{
    double part[CLIP_CHUNKS];
    size_t n = pb->n, chunk = (n + CLIP_CHUNKS - 1) / CLIP_CHUNKS;
    const float *g = pb->grad;
    #pragma omp parallel for schedule(static) if (n >= OMP_MIN)
    for (int c = 0; c < CLIP_CHUNKS; c += CLIP_GROUP) clip_chunk_sums(part, g, n, chunk, c);
    double sum = 0;
    for (int c = 0; c < CLIP_CHUNKS; c++) sum += part[c];
    double norm = sqrt(sum);
    if (max_norm > 0 && isfinite(norm) && norm > (double)max_norm) {
        float scale = (float)((double)max_norm / norm);
        float *gw = pb->grad;
        #pragma omp parallel for schedule(static) if (n >= OMP_MIN)
        for (size_t i = 0; i < n; i++) gw[i] *= scale;
    }
    return (float)norm;
}

int optim_decays(DecayGroups d, ParamGroup g)
{
    switch (d) {
    case DECAY_MATRICES: return g == PARAM_MATRIX;
    case DECAY_MATRICES_EMBEDDINGS: return g == PARAM_MATRIX || g == PARAM_EMBEDDING;
    case DECAY_ALL_BUT_SINKS: return g != PARAM_SINK;
    case DECAY_ALL: return 1;
    }
    return 0;
}

/* AdamW over n elements. Scalars are cast to float exactly where torch casts them, so the
 * result matches torch.optim.AdamW (foreach=False) to about an ulp. Called inside optim_step's
 * parallel region: the orphaned `omp for nowait` splits each parameter without a barrier.
 * Built without errno for sqrtf (CMakeLists.txt; v >= 0 here) the loop vectorises, and
 * SL_VECTOR_CLONES gives it 8 or 16 lanes: sqrt and division are correctly rounded in every
 * lane, so no bit changes (the scalar loop was ~2% of an R1 step). */
SL_VECTOR_CLONES
static void adamw_update(float *p, float *m, float *v, const float *g, size_t n,
                         float lr, float wd, float b1, float b2, float eps, int64_t t)
{
    float decay = (float)(1.0 - (double)lr * (double)wd);
    float a1 = (float)(1.0 - (double)b1), a2 = (float)(1.0 - (double)b2);
    double bc1 = 1.0 - pow((double)b1, (double)t);
    double bc2 = 1.0 - pow((double)b2, (double)t);
    float step_size = (float)((double)lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    #pragma omp for schedule(static) nowait
    for (size_t i = 0; i < n; i++) {
        float pi = wd != 0.0f ? p[i] * decay : p[i];
        float mi = m[i] * b1 + g[i] * a1;
        float vi = v[i] * b2 + a2 * g[i] * g[i];
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi + (-step_size) * (mi / denom);
    }
}

/* torch.optim.SGD with dampening 0 and nesterov off; buf is the momentum buffer. */
static void sgd_update(float *p, float *buf, const float *g, size_t n,
                       float lr, float wd, float momentum)
{
    #pragma omp for schedule(static) nowait
    for (size_t i = 0; i < n; i++) {
        float d = wd != 0.0f ? g[i] + wd * p[i] : g[i];
        if (momentum != 0.0f) {
            buf[i] = buf[i] * momentum + d;
            d = buf[i];
        }
        p[i] = p[i] + (-lr) * d;
    }
}

void optim_step(ParamBlock *pb, const TrainConfig *tc, int64_t t, float lr)
{
    SL_CHECK(t >= 1, "optim_step: update count t must be 1-based, got %lld", (long long)t);
    /* One parallel region per step: a fork/join per parameter costs milliseconds on a busy
     * machine. */
    #pragma omp parallel if (pb->n >= OMP_MIN)
    for (int k = 0; k < pb->n_params; k++) {
        const Param *q = &pb->params[k];
        size_t o = q->offset, n = q->t.size;
        float wd = optim_decays(tc->decay, q->group) ? tc->weight_decay : 0.0f;
        if (tc->optimizer == OPT_SGD)
            sgd_update(pb->data + o, pb->m + o, pb->grad + o, n, lr, wd, tc->momentum);
        else
            adamw_update(pb->data + o, pb->m + o, pb->v + o, pb->grad + o, n, lr, wd,
                         tc->beta1, tc->beta2, tc->eps, t);
    }
}
