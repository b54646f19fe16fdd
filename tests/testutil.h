/* testutil.h: what CMocka tests share: seeded random tensors, tolerant comparisons whose failure
 * message names the tensor, the index, both values and the tolerance, paths to the binary,
 * running it, and reading and writing whole files (failures name the file). */
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
/* Runs `sinklab ARGS` (printf-style, the binary test_bin()) with stdout+stderr captured into out
 * (as test_run); returns the exit code. */
int test_sinklab(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A fresh temporary directory (removed by the OS/tmp cleaner; tests never reuse one). */
void test_tmpdir(char *out, size_t cap, const char *tag);
/* DIR/run in a fresh temporary directory DIR; the run folder itself does not exist yet. */
void test_fresh_run(char *run, size_t cap, const char *tag);

/* The whole file, malloc'd and NUL-terminated; *len (when len is not NULL) gets its size without
 * the NUL. NULL when the file cannot be opened. */
char *test_read_file(const char *path, size_t *len);
/* The same, but a file that cannot be opened or read fails the test naming it. */
char *test_slurp(const char *path, size_t *len);
/* Writes n bytes to path (replacing it); fails the test naming path when it cannot. */
void test_write_file(const char *path, const void *data, size_t n);
/* Writes text to path (as test_write_file). */
void test_write_text(const char *path, const char *text);
/* Writes text to dir/name and puts that path in path (cap bytes; path may be NULL). */
void test_write_in(char *path, size_t cap, const char *dir, const char *name, const char *text);
/* Little-endian fields of a binary file. */
uint32_t test_le16(const unsigned char *p);
uint32_t test_le32(const unsigned char *p);
void test_put_le32(unsigned char *p, uint32_t v);

/* One member of a ZIP file (a checkpoint's .npz), read from the spec by the tests themselves:
 * its name without ".npy", the offsets of its central and local headers and of its data, and
 * its stored size. */
typedef struct { char name[200]; size_t central, local, data, size; } TestZipEntry;
/* Offset of the end-of-central-directory record of the ZIP file b[0..len); fails the test naming
 * path (NULL: "ZIP file") when there is none. */
size_t test_zip_end(const unsigned char *b, size_t len, const char *path);
/* Lists its members into out (at most cap, else the test fails); returns how many. */
int test_zip_entries(const unsigned char *b, size_t len, TestZipEntry *out, int cap, const char *path);
/* Recomputes every member CRC and the central-directory CRC in the ZIP comment (its last 8 hex
 * digits), so a deliberate edit is seen as intact by the CRC checks and only the edit itself can
 * be refused. */
void test_zip_fix_crcs(unsigned char *b, size_t len, const char *path);

/* Whether something exists at path. */
int test_exists(const char *path);
/* How many times needle occurs in text (without overlaps). */
int test_count(const char *text, const char *needle);

#endif
