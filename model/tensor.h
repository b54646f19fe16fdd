/* tensor.h: float32 row-major tensors, the arena that holds a step's activations, and the
 * parameter block that owns parameters, gradients and optimizer state.
 * Guarantees: arena memory is 64-byte aligned and zeroed on allocation; an overflow or a shape
 * mismatch stops the program with a message naming the source line, the sizes and the shapes. */
#ifndef SINKLAB_TENSOR_H
#define SINKLAB_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "base/check.h"

#define TENSOR_MAX_DIM 4

typedef struct Tensor {
    float *data;
    float *grad;                 /* same shape as data; NULL when no gradient flows here */
    int ndim;
    int shape[TENSOR_MAX_DIM];
    size_t size;                 /* product of shape */
    /* Non-NULL for op outputs: *grad_pending is 1 while backward has written nothing into grad
     * (its contents are then undefined and mean zero; see graph_output). Views share it. */
    int *grad_pending;
} Tensor;

/* A bump allocator: a step allocates forward activations, the tape and gradients from it, and
 * arena_reset() frees them all at once, so the step loop never calls malloc. */
typedef struct ArenaChunk ArenaChunk;
typedef struct {
    char *base;
    size_t cap, used, high_water;
    const char *name;
    ArenaChunk *chunks;          /* a measuring arena's memory (see arena_init_measuring) */
} Arena;

void arena_init(Arena *a, size_t cap_bytes, const char *name);
/* An arena without a capacity, for sizing a real one: it hands out memory from blocks it
 * mallocs as needed, while used and high_water count exactly what an arena_init arena would
 * (same alignment), so high_water after a pass is the capacity that pass needs. */
void arena_init_measuring(Arena *a, const char *name);
void arena_free(Arena *a);
void arena_reset(Arena *a);
/* 64-byte aligned, zeroed. Dies with "arena 'NAME' overflow: need N bytes, capacity C". */
void *arena_alloc(Arena *a, size_t bytes);
/* The same without zeroing, for buffers the caller overwrites completely (op outputs). */
void *arena_alloc_uninit(Arena *a, size_t bytes);

/* A tensor (and optionally a zeroed gradient) allocated from the arena, data zeroed. */
Tensor *tensor_new(Arena *a, int ndim, const int *shape, int with_grad);
/* Data left uninitialised (the gradient, if any, is still zeroed): for op outputs. */
Tensor *tensor_new_uninit(Arena *a, int ndim, const int *shape, int with_grad);
Tensor *tensor_new2(Arena *a, int d0, int d1, int with_grad);
Tensor *tensor_new3(Arena *a, int d0, int d1, int d2, int with_grad);
/* A view with a different shape over the same data and grad (reshape is free: tensors are
 * contiguous). The element counts must agree. */
Tensor *tensor_view(Arena *a, const Tensor *t, int ndim, const int *shape);
int tensor_same_shape(const Tensor *a, const Tensor *b);
/* "[2, 3, 4]" into buf; returns buf. */
const char *tensor_shape_str(const Tensor *t, char *buf, size_t n);


/* ---- the parameter block ---------------------------------------------------------------- */

/* Which optimizer group a parameter belongs to: weight decay applies to GROUP_MATRIX by default,
 * never to GROUP_SINK (learned sink logits, biases, tokens). */
typedef enum { PARAM_MATRIX, PARAM_VECTOR, PARAM_EMBEDDING, PARAM_SINK } ParamGroup;

/* How a parameter's initial values are drawn. The model picks a rule per parameter when it
 * declares it (its initialisation scheme decides); params_init_values applies them all. */
typedef enum {
    INIT_ZEROS,                  /* the default: no random draws */
    INIT_ONES,
    INIT_NORMAL,                 /* N(0, scale^2) */
    INIT_UNIFORM                 /* U(-scale, scale) */
} ParamInitKind;

typedef struct {
    ParamInitKind kind;
    float scale;
} ParamInit;

typedef struct {
    char name[64];
    Tensor t;                    /* data/grad point into the block */
    ParamGroup group;
    ParamInit init;
    size_t offset;               /* element offset into the block */
} Param;

/* One allocation each for values, gradients and the two Adam moments, so the optimizer, the
 * checkpoint and gradient zeroing are single loops over n floats. */
typedef struct {
    float *data, *grad, *m, *v;
    size_t n;
    Param *params;
    int n_params, cap_params;
    int finalized;
    int shares_data;             /* a replica: data belongs to another block (params_replica) */
} ParamBlock;

void params_init(ParamBlock *pb);
/* Declares a parameter (init INIT_ZEROS; set p->init to change it). The returned Param, and so
 * &p->t, stays valid for the block's lifetime: the layer keeps that pointer; its data and grad
 * are usable after params_finalize(). */
Param *params_add(ParamBlock *pb, const char *name, ParamGroup group, int ndim, const int *shape);
void params_finalize(ParamBlock *pb);       /* allocates and zeroes all four arrays */
/* Draws every parameter's values by its init rule, in declaration order from one stream seeded
 * with seed, so the values depend only on the declarations and the seed. */
void params_init_values(ParamBlock *pb, uint64_t seed);
void params_free(ParamBlock *pb);
/* A replica of a finalized block for computing gradients on part of a batch: the same
 * parameters with the same data (shared, read-only while the replica is used), its own zeroed
 * gradients and no optimizer moments. params_free releases only what the replica owns. */
void params_replica(ParamBlock *dst, const ParamBlock *src);
/* By name, for checkpoint loading and tools; the model binds by pointer, never by name. */
Param *params_find(const ParamBlock *pb, const char *name);
void params_zero_grad(ParamBlock *pb);

#endif
