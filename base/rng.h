/* rng.h: xoshiro256** seeded through splitmix64, the one random stream sinklab uses for
 * initialisation, data and probes. Its whole state is four words, saved in checkpoints. */
#ifndef SINKLAB_RNG_H
#define SINKLAB_RNG_H

#include <stdint.h>

typedef struct { uint64_t s[4]; } Rng;

void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_next(Rng *r);
/* Uniform in [0, 1) with 24 random bits (exact in float). */
float rng_uniform(Rng *r);
/* Uniform integer in [0, n), unbiased. */
uint64_t rng_below(Rng *r, uint64_t n);
/* Standard normal by Box-Muller; exactly two draws per call, so the stream position is a simple
 * function of the number of calls. */
float rng_normal(Rng *r);
/* A well-mixed seed for a sub-stream, e.g. rng_derive(seed, step). */
uint64_t rng_derive(uint64_t seed, uint64_t stream);

#endif
