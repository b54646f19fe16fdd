/* tensor.c: arena, tensors and the parameter block (see tensor.h). */
#include "model/tensor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"

/* model.n_layer reaches 256 with up to 26 tensors a layer (swiglu, gate, kv sinks, biases,
 * norms) plus the embeddings and head */
#define PARAMS_MAX 8192

void arena_init(Arena *a, size_t cap, const char *name)
{
    memset(a, 0, sizeof *a);
    a->name = name;
    a->cap = cap;
    if (posix_memalign((void **)&a->base, 64, cap ? cap : 64) != 0)
        sl_die(__FILE__, __LINE__, "arena '%s': cannot allocate %zu bytes", name, cap);
}

/* A block of a measuring arena; memory follows the header. */
struct ArenaChunk {
    ArenaChunk *next;
    size_t cap, used;
};

#define ARENA_CHUNK_BYTES ((size_t)16 << 20)

void arena_init_measuring(Arena *a, const char *name)
{
    memset(a, 0, sizeof *a);
    a->name = name;
    a->cap = SIZE_MAX;
}

void arena_free(Arena *a)
{
    free(a->base);
    for (ArenaChunk *c = a->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    memset(a, 0, sizeof *a);
}

void arena_reset(Arena *a) { a->used = 0; }

/* The measuring arena's memory: 64-byte aligned from the newest block, or a new block. Blocks
 * are only freed with the arena, so pointers from before a reset stay valid. */
static void *chunk_alloc(Arena *a, size_t bytes)
{
    ArenaChunk *c = a->chunks;
    /* header padded to 64 bytes so block memory keeps the arena's alignment */
    size_t head = (sizeof *c + 63) & ~(size_t)63;
    size_t start = c ? (c->used + 63) & ~(size_t)63 : 0;
    if (!c || start + bytes > c->cap) {
        size_t cap = bytes > ARENA_CHUNK_BYTES ? bytes : ARENA_CHUNK_BYTES;
        if (posix_memalign((void **)&c, 64, head + cap) != 0)
            sl_die(__FILE__, __LINE__, "arena '%s': cannot allocate %zu bytes", a->name, head + cap);
        c->next = a->chunks;
        c->cap = cap;
        a->chunks = c;
        start = 0;
    }
    c->used = start + bytes;
    return (char *)c + head + start;
}

void *arena_alloc_uninit(Arena *a, size_t bytes)
{
    size_t start = (a->used + 63) & ~(size_t)63;
    if (start + bytes > a->cap)
        sl_die(__FILE__, __LINE__, "arena '%s' overflow: need %zu bytes, capacity %zu",
               a->name, start + bytes, a->cap);
    a->used = start + bytes;
    if (a->used > a->high_water) a->high_water = a->used;
    return a->base ? a->base + start : chunk_alloc(a, bytes);
}

void *arena_alloc(Arena *a, size_t bytes)
{
    void *p = arena_alloc_uninit(a, bytes);
    memset(p, 0, bytes);
    return p;
}

static Tensor *tensor_make(Arena *a, int ndim, const int *shape, int with_grad, int zero)
{
    SL_CHECK(ndim >= 1 && ndim <= TENSOR_MAX_DIM, "tensor_new: ndim %d out of range", ndim);
    Tensor *t = arena_alloc(a, sizeof *t);
    t->ndim = ndim;
    t->size = 1;
    for (int i = 0; i < ndim; i++) {
        SL_CHECK(shape[i] >= 0, "tensor_new: negative dim %d", shape[i]);
        t->shape[i] = shape[i];
        t->size *= (size_t)shape[i];
    }
    t->data = zero ? arena_alloc(a, t->size * sizeof(float)) : arena_alloc_uninit(a, t->size * sizeof(float));
    if (with_grad) t->grad = arena_alloc(a, t->size * sizeof(float));
    return t;
}

Tensor *tensor_new(Arena *a, int ndim, const int *shape, int with_grad)
{
    return tensor_make(a, ndim, shape, with_grad, 1);
}

Tensor *tensor_new_uninit(Arena *a, int ndim, const int *shape, int with_grad)
{
    return tensor_make(a, ndim, shape, with_grad, 0);
}

Tensor *tensor_new2(Arena *a, int d0, int d1, int with_grad)
{
    int s[2] = {d0, d1};
    return tensor_new(a, 2, s, with_grad);
}

Tensor *tensor_new3(Arena *a, int d0, int d1, int d2, int with_grad)
{
    int s[3] = {d0, d1, d2};
    return tensor_new(a, 3, s, with_grad);
}

Tensor *tensor_view(Arena *a, const Tensor *t, int ndim, const int *shape)
{
    Tensor *v = arena_alloc(a, sizeof *v);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    char buf[64];
    SL_CHECK(ndim >= 1 && ndim <= TENSOR_MAX_DIM && n == t->size,
             "tensor_view: cannot view %s as %d dims with %zu elements",
             tensor_shape_str(t, buf, sizeof buf), ndim, n);
    *v = *t;
    v->ndim = ndim;
    for (int i = 0; i < TENSOR_MAX_DIM; i++) v->shape[i] = i < ndim ? shape[i] : 0;
    return v;
}

int tensor_same_shape(const Tensor *a, const Tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

const char *tensor_shape_str(const Tensor *t, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %d" : "%d", t->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

/* ---- parameter block ---- */

void params_init(ParamBlock *pb)
{
    memset(pb, 0, sizeof *pb);
    /* Fixed capacity so Param pointers handed out by params_add stay valid. */
    pb->cap_params = PARAMS_MAX;
    pb->params = xcalloc(PARAMS_MAX, sizeof(Param));
}

Param *params_add(ParamBlock *pb, const char *name, ParamGroup group, int ndim, const int *shape)
{
    SL_CHECK(!pb->finalized, "params_add('%s') after params_finalize", name);
    SL_CHECK(pb->n_params < pb->cap_params, "more than %d parameters", pb->cap_params);
    SL_CHECK(strlen(name) < sizeof pb->params[0].name, "parameter name too long: %s", name);
    SL_CHECK(ndim >= 1 && ndim <= TENSOR_MAX_DIM, "params_add('%s'): ndim %d", name, ndim);
    Param *p = &pb->params[pb->n_params++];
    strcpy(p->name, name);
    p->group = group;
    p->offset = pb->n;
    p->t.ndim = ndim;
    p->t.size = 1;
    for (int i = 0; i < ndim; i++) {
        p->t.shape[i] = shape[i];
        p->t.size *= (size_t)shape[i];
    }
    pb->n += p->t.size;
    return p;
}

void params_finalize(ParamBlock *pb)
{
    SL_CHECK(!pb->finalized, "params_finalize called twice");
    pb->data = xcalloc(pb->n, sizeof(float));
    pb->grad = xcalloc(pb->n, sizeof(float));
    pb->m = xcalloc(pb->n, sizeof(float));
    pb->v = xcalloc(pb->n, sizeof(float));
    for (int i = 0; i < pb->n_params; i++) {
        Param *p = &pb->params[i];
        p->t.data = pb->data + p->offset;
        p->t.grad = pb->grad + p->offset;
    }
    pb->finalized = 1;
}

void params_init_values(ParamBlock *pb, uint64_t seed)
{
    SL_CHECK(pb->finalized, "params_init_values before params_finalize");
    Rng rng;
    rng_seed(&rng, seed);
    for (int i = 0; i < pb->n_params; i++) {
        Param *p = &pb->params[i];
        float *x = p->t.data, s = p->init.scale;
        switch (p->init.kind) {
        case INIT_ZEROS: memset(x, 0, p->t.size * sizeof(float)); break;
        case INIT_ONES: for (size_t j = 0; j < p->t.size; j++) x[j] = 1.0f; break;
        case INIT_NORMAL: for (size_t j = 0; j < p->t.size; j++) x[j] = s * rng_normal(&rng); break;
        case INIT_UNIFORM:
            for (size_t j = 0; j < p->t.size; j++) x[j] = s * (2.0f * rng_uniform(&rng) - 1.0f);
            break;
        }
    }
}

void params_replica(ParamBlock *dst, const ParamBlock *src)
{
    SL_CHECK(src->finalized, "params_replica of a block that is not finalized");
    *dst = *src;
    dst->params = xmalloc((size_t)src->cap_params * sizeof(Param));
    memcpy(dst->params, src->params, (size_t)src->n_params * sizeof(Param));
    dst->grad = xcalloc(src->n, sizeof(float));
    dst->m = dst->v = NULL;
    dst->shares_data = 1;
    for (int i = 0; i < dst->n_params; i++)
        dst->params[i].t.grad = dst->grad + dst->params[i].offset;
}

void params_free(ParamBlock *pb)
{
    if (!pb->shares_data) free(pb->data);
    free(pb->grad);
    free(pb->m);
    free(pb->v);
    free(pb->params);
    memset(pb, 0, sizeof *pb);
}

Param *params_find(const ParamBlock *pb, const char *name)
{
    for (int i = 0; i < pb->n_params; i++)
        if (strcmp(pb->params[i].name, name) == 0) return &pb->params[i];
    return NULL;
}

void params_zero_grad(ParamBlock *pb)
{
    memset(pb->grad, 0, pb->n * sizeof(float));
}
