/* fastmath.h: branch-free float functions that vectorise (glibc's expf and tanhf do not without
 * -ffast-math, which sinklab does not use), for the hot loops of attention and GELU. */
#ifndef SINKLAB_FASTMATH_H
#define SINKLAB_FASTMATH_H

#include <math.h>
#include <stdint.h>

/* Hot elementwise loops are compiled three times, for AVX-512F, AVX2 and the x86-64 baseline,
 * and the dynamic loader picks one (GCC target_clones): 16 or 8 float lanes instead of 4 where
 * the CPU has them, without -march=native. C11 mode keeps -ffp-contract=off (no FMA contraction),
 * so every clone rounds every element identically: results do not depend on the clone. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SL_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SL_VECTOR_CLONES
#endif

/* exp(x) for x <= 0 (softmax after max subtraction, tanh), branch-free so the loop vectorises
 * (glibc expf does not). Cephes' expf: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial; relative
 * error ~2e-7. Inputs below -87 give ~1e-38 instead of 0. */
static inline float exp_nonpos(float x)
{
    /* Clamp to -87 on the bits (for x <= 0 they grow with |x|): a float compare-and-select
     * would block vectorisation under -ftrapping-math. */
    union { float f; uint32_t u; } v = {.f = x};
    v.u = v.u > 0xC2AE0000u ? 0xC2AE0000u : v.u;
    x = v.f;
    float t = x * 1.44269504088896341f;
    int n = (int)(t - 0.5f);             /* round to nearest for t <= 0 (truncation toward 0) */
    float fn = (float)n;
    float r = x - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float pl = 1.9875691500e-4f;
    pl = pl * r + 1.3981999507e-3f;
    pl = pl * r + 8.3334519073e-3f;
    pl = pl * r + 4.1665795894e-2f;
    pl = pl * r + 1.6666665459e-1f;
    pl = pl * r + 5.0000001201e-1f;
    pl = pl * r * r + r + 1.0f;
    union { int32_t i; float f; } two_n = {.i = (n + 127) << 23};
    return pl * two_n.f;
}

/* tanh(u) = sign(u) (1 - e) / (1 + e) with e = exp(-2|u|) in (0, 1]: absolute error ~2e-7,
 * which is all GELU's 0.5 x (1 + tanh) can see. */
static inline float tanh_fast(float u)
{
    float e = exp_nonpos(-2.0f * fabsf(u));
    return copysignf((1.0f - e) / (1.0f + e), u);
}

#endif
