/* testutil.h: what CMocka tests share: seeded random tensors, tolerant comparisons whose failure
 * message names the tensor, the index, both values and the tolerance, and paths to the binary. */
#ifndef SINKLAB_TESTUTIL_H
#define SINKLAB_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* A tiny deterministic generator for tests (splitmix64). */
typedef struct { uint64_t s; } TestRng;
uint64_t trng_next(TestRng *r);
float trng_uniform(TestRng *r, float lo, float hi);
int trng_int(TestRng *r, int lo, int hi_inclusive);
void trng_fill(TestRng *r, float *x, size_t n, float lo, float hi);

/* Fails the test with "NAME[i]: got A, want B (atol, rtol)" at the worst index. Returns the max
 * absolute error. */
double assert_close(const char *name, const float *got, const float *want, size_t n,
                    double atol, double rtol);
/* Path of the built sinklab binary and of the source tree (set by CTest). */
const char *test_bin(void);
const char *test_src(void);
/* Runs a shell command, captures stdout+stderr into out (may be NULL); returns the exit code. */
int test_run(const char *cmd, char *out, size_t cap);
/* A fresh temporary directory (removed by the OS/tmp cleaner; tests never reuse one). */
void test_tmpdir(char *out, size_t cap, const char *tag);

#endif
