/* testutil.c: shared helpers for the CMocka tests (see testutil.h). */
#include "tests/testutil.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

uint64_t trng_next(TestRng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

float trng_uniform(TestRng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)((trng_next(r) >> 40) * (1.0 / 16777216.0));
}

int trng_int(TestRng *r, int lo, int hi_inclusive)
{
    return lo + (int)(trng_next(r) % (uint64_t)(hi_inclusive - lo + 1));
}

void trng_fill(TestRng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = trng_uniform(r, lo, hi);
}

double assert_close(const char *name, const float *got, const float *want, size_t n,
                    double atol, double rtol)
{
    double worst_excess = 0, max_abs = 0;
    size_t worst = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        double tol = atol + rtol * fabs((double)want[i]);
        if (d > max_abs || isnan(d)) max_abs = isnan(d) ? INFINITY : d;
        if (!(d <= tol)) {
            double excess = isnan(d) ? INFINITY : d - tol;
            if (!bad || excess > worst_excess) { worst_excess = excess; worst = i; }
            bad = 1;
        }
    }
    if (bad)
        fail_msg("%s[%zu]: got %.9g, want %.9g (atol %.3g, rtol %.3g)", name, worst,
                 (double)got[worst], (double)want[worst], atol, rtol);
    return max_abs;
}

const char *test_bin(void)
{
    const char *b = getenv("SINKLAB_BIN");
    return b ? b : "./build/sinklab";
}

const char *test_src(void)
{
    const char *s = getenv("SINKLAB_SRC");
    return s ? s : ".";
}

int test_run(const char *cmd, char *out, size_t cap)
{
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t n = 0;
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, p)) > 0) {
        if (out && n + 1 < cap) {
            size_t take = got < cap - 1 - n ? got : cap - 1 - n;
            memcpy(out + n, buf, take);
            n += take;
        }
    }
    if (out && cap) out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void test_tmpdir(char *out, size_t cap, const char *tag)
{
    snprintf(out, cap, "/tmp/sinklab_test_%s_XXXXXX", tag);
    if (!mkdtemp(out)) fail_msg("mkdtemp %s failed", out);
}

int test_sinklab(char *out, size_t cap, const char *fmt, ...)
{
    char args[4096], cmd[4400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s", test_bin(), args);
    return test_run(cmd, out, cap);
}

void test_fresh_run(char *run, size_t cap, const char *tag)
{
    char dir[512];
    test_tmpdir(dir, sizeof dir, tag);
    snprintf(run, cap, "%s/run", dir);
}

/* ---- whole files ---- */

/* The file's bytes, NUL-terminated; *got: how many were read, *size: how many it holds. NULL when
 * it cannot be opened. */
static char *read_whole(const char *path, size_t *got, long *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0) n = 0;
    char *b = malloc((size_t)n + 1);
    if (!b) fail_msg("%s: out of memory for %ld bytes", path, n);
    *got = fread(b, 1, (size_t)n, f);
    b[*got] = 0;
    fclose(f);
    *size = n;
    return b;
}

char *test_read_file(const char *path, size_t *len)
{
    size_t got = 0;
    long n = 0;
    char *b = read_whole(path, &got, &n);
    if (b && len) *len = got;
    return b;
}

char *test_slurp(const char *path, size_t *len)
{
    size_t got = 0;
    long n = 0;
    char *b = read_whole(path, &got, &n);
    if (!b) fail_msg("%s: cannot open", path);
    if (got != (size_t)n) fail_msg("%s: short read (%zu of %ld bytes)", path, got, n);
    if (len) *len = got;
    return b;
}

void test_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("%s: cannot write", path);
    size_t put = fwrite(data, 1, n, f);
    if (fclose(f) != 0 || put != n) fail_msg("%s: short write (%zu of %zu bytes)", path, put, n);
}

void test_write_text(const char *path, const char *text)
{
    test_write_file(path, text, strlen(text));
}

void test_write_in(char *path, size_t cap, const char *dir, const char *name, const char *text)
{
    char buf[2048];
    if (!path) {
        path = buf;
        cap = sizeof buf;
    }
    snprintf(path, cap, "%s/%s", dir, name);
    test_write_text(path, text);
}

int test_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int test_count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* ---- binary files ---- */

uint32_t test_le16(const unsigned char *p) { return p[0] | (uint32_t)p[1] << 8; }
uint32_t test_le32(const unsigned char *p) { return test_le16(p) | test_le16(p + 2) << 16; }

void test_put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (v >> (8 * i)) & 0xff;
}

size_t test_zip_end(const unsigned char *b, size_t len, const char *path)
{
    for (size_t i = len - 22 + 1; len >= 22 && i-- > 0;)
        if (test_le32(b + i) == 0x06054b50u) return i;
    fail_msg("%s: no ZIP end record", path ? path : "ZIP file");
    return 0;
}

int test_zip_entries(const unsigned char *b, size_t len, TestZipEntry *out, int cap, const char *path)
{
    size_t e = test_zip_end(b, len, path), p = test_le32(b + e + 16);
    int n = (int)test_le16(b + e + 10);
    assert_true(n <= cap);
    for (int i = 0; i < n; i++) {
        assert_int_equal(test_le32(b + p), 0x02014b50u);
        size_t nl = test_le16(b + p + 28);
        TestZipEntry *x = &out[i];
        assert_true(nl > 4 && nl < sizeof x->name);
        memcpy(x->name, b + p + 46, nl);
        x->name[nl - 4] = 0;   /* drop ".npy" */
        x->central = p;
        x->local = test_le32(b + p + 42);
        x->size = test_le32(b + p + 24);
        x->data = x->local + 30 + test_le16(b + x->local + 26) + test_le16(b + x->local + 28);
        p += 46 + nl + test_le16(b + p + 30) + test_le16(b + p + 32);
    }
    return n;
}

void test_zip_fix_crcs(unsigned char *b, size_t len, const char *path)
{
    TestZipEntry es[256];
    int n = test_zip_entries(b, len, es, 256, path);
    for (int i = 0; i < n; i++) {
        uint32_t c = (uint32_t)crc32(0, b + es[i].data, (uInt)es[i].size);
        test_put_le32(b + es[i].local + 14, c);
        test_put_le32(b + es[i].central + 16, c);
    }
    size_t e = test_zip_end(b, len, path), off = test_le32(b + e + 16), sz = test_le32(b + e + 12);
    uint32_t c = (uint32_t)crc32(0, b + off, (uInt)sz);
    char hex[9];
    snprintf(hex, sizeof hex, "%08" PRIx32, c);
    memcpy(b + len - 8, hex, 8);
}
