/* npz.c: the ZIP-of-.npy container (see npz.h and the README ("Checkpoints")). Stored
 * (uncompressed) entries keep the writer a single pass with no copies; the ZIP comment carries
 * the CRC32 of the central directory, so every byte of the file except the 22-byte end record is
 * covered by a CRC. */
#include "train/npz.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "base/check.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npz.c writes little-endian .npy data by copying memory; port it for big-endian hosts"
#endif

#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_CENTRAL_SIG 0x02014b50u
#define ZIP_END_SIG 0x06054b50u
#define ZIP_LOCAL_LEN 30
#define ZIP_CENTRAL_LEN 46
#define ZIP_END_LEN 22
/* 1980-01-01 00:00: fixed so equal states give identical files. */
#define ZIP_DOS_DATE 0x21
#define ZIP_COMMENT_FMT "sinklab checkpoint; central directory crc32=%08" PRIx32
#define ZIP_COMMENT_PREFIX "sinklab checkpoint; central directory crc32="
#define NPY_ALIGN 64

static void put16(unsigned char *p, uint32_t v) { p[0] = v & 0xff; p[1] = (v >> 8) & 0xff; }
static void put32(unsigned char *p, uint32_t v) { put16(p, v & 0xffff); put16(p + 2, v >> 16); }
static uint32_t get16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t get32(const unsigned char *p) { return get16(p) | get16(p + 2) << 16; }

/* ---- .npy headers ------------------------------------------------------------------------ */

/* A .npy v1.0 header for a C-order array; returns its length (a multiple of 64, as numpy
 * writes it). */
static size_t npy_header(char *out, size_t cap, const char *descr, int ndim, const int64_t *shape)
{
    char dict[256], dims[160] = "";
    size_t k = 0;
    for (int i = 0; i < ndim; i++)
        k += (size_t)snprintf(dims + k, sizeof dims - k, "%" PRId64 "%s", shape[i],
                              ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                       descr, dims);
    size_t total = 10 + (size_t)len + 1;
    total = (total + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    SL_CHECK(total <= cap, "npy header too long (%zu bytes)", total);
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    put16((unsigned char *)out + 8, (uint32_t)(total - 10));
    memcpy(out + 10, dict, (size_t)len);
    memset(out + 10 + len, ' ', total - 10 - (size_t)len - 1);
    out[total - 1] = '\n';
    return total;
}

/* Parses a .npy member (v1.0-3.0, C order). Returns 0, or -1 with why in err. */
static int npy_parse(NpyView *v, const unsigned char *p, size_t n, char *why, size_t nwhy)
{
    if (n < 10 || memcmp(p, "\x93NUMPY", 6) != 0) {
        sl_errf(why, nwhy, "is not a .npy array (bad magic)");
        return -1;
    }
    size_t hl, off;
    if (p[6] == 1) { hl = get16(p + 8); off = 10; }
    else if ((p[6] == 2 || p[6] == 3) && n >= 12) { hl = get32(p + 8); off = 12; }
    else { sl_errf(why, nwhy, "has unsupported .npy version %d.%d", p[6], p[7]); return -1; }
    if (off + hl > n || hl > 4096) { sl_errf(why, nwhy, "has a truncated .npy header"); return -1; }
    char h[4097];
    memcpy(h, p + off, hl);
    h[hl] = 0;
    const char *d = strstr(h, "'descr':"), *f = strstr(h, "'fortran_order':"), *s = strstr(h, "'shape':");
    if (!d || !f || !s || sscanf(d + 8, " '%7[^']'", v->descr) != 1) {
        sl_errf(why, nwhy, "has an unreadable .npy header");
        return -1;
    }
    if (strncmp(f + 16 + strspn(f + 16, " "), "False", 5) != 0) {
        sl_errf(why, nwhy, "is stored in Fortran order (C order expected)");
        return -1;
    }
    const char *q = strchr(s, '(');
    if (!q) { sl_errf(why, nwhy, "has an unreadable shape"); return -1; }
    q++;
    v->ndim = 0;
    size_t elems = 1;
    for (;;) {
        q += strspn(q, " ,");
        if (*q == ')') break;
        char *e;
        long long x = strtoll(q, &e, 10);
        if (e == q || x < 0 || v->ndim == 8) { sl_errf(why, nwhy, "has an unreadable shape"); return -1; }
        v->shape[v->ndim++] = x;
        /* a crafted shape must not wrap around to the member's real size */
        if (__builtin_mul_overflow(elems, (size_t)x, &elems)) {
            sl_errf(why, nwhy, "has a shape whose size overflows");
            return -1;
        }
        q = e;
    }
    int item = v->descr[2] ? atoi(v->descr + 2) : 0;
    v->data = p + off + hl;
    v->nbytes = n - off - hl;
    size_t want;
    if (item <= 0 || __builtin_mul_overflow(elems, (size_t)item, &want) || v->nbytes != want) {
        sl_errf(why, nwhy, "holds %zu data bytes, its header says %zu x '%s'", v->nbytes, elems,
                v->descr);
        return -1;
    }
    return 0;
}

/* ---- writing ---------------------------------------------------------------------------- */

void npz_writer_init(NpzWriter *z, FILE *f, int max_members)
{
    memset(z, 0, sizeof *z);
    z->f = f;
    z->cap = max_members;
    z->e = max_members ? xcalloc((size_t)max_members, sizeof *z->e) : NULL;
}

void npz_writer_free(NpzWriter *z)
{
    free(z->e);
    z->e = NULL;
}

static void put_bytes(NpzWriter *z, const void *p, size_t n)
{
    if (z->failed || n == 0) return;
    if (fwrite(p, 1, n, z->f) != n) z->failed = errno ? errno : EIO;
    z->pos += n;
}

/* One stored member NAME.npy: the .npy header, then the raw array bytes. */
void npz_write_array(NpzWriter *z, const char *name, const char *descr, int ndim,
                     const int64_t *shape, const void *data, size_t nbytes)
{
    char hdr[512];
    size_t hl = npy_header(hdr, sizeof hdr, descr, ndim, shape);
    SL_CHECK(z->n < z->cap, "npz: more members than planned (%d)", z->cap);
    NpzEntry *e = &z->e[z->n++];
    snprintf(e->name, sizeof e->name, "%s.npy", name);
    uint64_t size = hl + nbytes;
    if (size >= 0xffffffffu || z->pos + size >= 0xffffffffu) {
        if (!z->failed) z->failed = EFBIG;
        return;
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, (const Bytef *)hdr, (uInt)hl);
    /* crc32's length is uInt: feed large arrays in pieces. */
    for (size_t o = 0; o < nbytes; o += 1u << 30) {
        size_t k = nbytes - o < (1u << 30) ? nbytes - o : (1u << 30);
        crc = crc32(crc, (const Bytef *)data + o, (uInt)k);
    }
    e->crc = (uint32_t)crc;
    e->size = (uint32_t)size;
    e->offset = (uint32_t)z->pos;
    unsigned char lh[ZIP_LOCAL_LEN] = {0};
    size_t nl = strlen(e->name);
    put32(lh, ZIP_LOCAL_SIG);
    put16(lh + 4, 20);
    put16(lh + 12, ZIP_DOS_DATE);
    put32(lh + 14, e->crc);
    put32(lh + 18, e->size);
    put32(lh + 22, e->size);
    put16(lh + 26, (uint32_t)nl);
    put_bytes(z, lh, sizeof lh);
    put_bytes(z, e->name, nl);
    put_bytes(z, hdr, hl);
    put_bytes(z, data, nbytes);
}

void npz_write_finish(NpzWriter *z)
{
    if (z->pos >= 0xffffffffu && !z->failed) z->failed = EFBIG;
    uint32_t cd_off = (uint32_t)z->pos;
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < z->n; i++) {
        const NpzEntry *e = &z->e[i];
        unsigned char ch[ZIP_CENTRAL_LEN] = {0};
        size_t nl = strlen(e->name);
        put32(ch, ZIP_CENTRAL_SIG);
        put16(ch + 4, 3u << 8 | 20);      /* made by: unix, 2.0 */
        put16(ch + 6, 20);
        put16(ch + 14, ZIP_DOS_DATE);
        put32(ch + 16, e->crc);
        put32(ch + 20, e->size);
        put32(ch + 24, e->size);
        put16(ch + 28, (uint32_t)nl);
        put32(ch + 38, 0100644u << 16);  /* a regular file, rw-r--r-- */
        put32(ch + 42, e->offset);
        crc = crc32(crc, ch, sizeof ch);
        crc = crc32(crc, (const Bytef *)e->name, (uInt)nl);
        put_bytes(z, ch, sizeof ch);
        put_bytes(z, e->name, nl);
    }
    char comment[96];
    int cl = snprintf(comment, sizeof comment, ZIP_COMMENT_FMT, (uint32_t)crc);
    unsigned char end[ZIP_END_LEN] = {0};
    put32(end, ZIP_END_SIG);
    put16(end + 8, (uint32_t)z->n);
    put16(end + 10, (uint32_t)z->n);
    put32(end + 12, (uint32_t)(z->pos - cd_off));
    put32(end + 16, cd_off);
    put16(end + 20, (uint32_t)cl);
    put_bytes(z, end, sizeof end);
    put_bytes(z, comment, (size_t)cl);
}

/* ---- reading ---------------------------------------------------------------------------- */

void npz_close(NpzArchive *a)
{
    free(a->buf);
    free(a->m);
    memset(a, 0, sizeof *a);
}

const NpzMember *npz_find(const NpzArchive *a, const char *name)
{
    for (int i = 0; i < a->n; i++)
        if (!strcmp(a->m[i].name, name)) return &a->m[i];
    return NULL;
}

static int read_file(NpzArchive *a, const char *path, char *err, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sl_errf(err, n, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        sl_errf(err, n, "%s: not a regular file", path);
        fclose(f);
        return -1;
    }
    a->len = (size_t)sb.st_size;
    a->buf = xmalloc(a->len);
    size_t got = fread(a->buf, 1, a->len, f);
    fclose(f);
    if (got != a->len) {
        sl_errf(err, n, "%s: read error", path);
        return -1;
    }
    return 0;
}

/* The end record: the last ZIP_END_SIG whose comment runs exactly to the end of the file. */
static long find_end(const NpzArchive *a)
{
    if (a->len < ZIP_END_LEN) return -1;
    size_t lo = a->len > ZIP_END_LEN + 0xffff ? a->len - ZIP_END_LEN - 0xffff : 0;
    for (size_t i = a->len - ZIP_END_LEN + 1; i-- > lo;) {
        const unsigned char *p = a->buf + i;
        if (get32(p) == ZIP_END_SIG && i + ZIP_END_LEN + get16(p + 20) == a->len) return (long)i;
    }
    return -1;
}

/* Checks one central entry against its local header and its CRC; fills mem. */
static int check_member(const NpzArchive *a, const unsigned char *ch, NpzMember *mem,
                        const char *path, char *err, size_t n)
{
    uint32_t crc = get32(ch + 16), csize = get32(ch + 20), usize = get32(ch + 24);
    uint32_t off = get32(ch + 42), method = get16(ch + 10);
    const char *sec = mem->name;
    if (method != 0 || csize != usize) {
        sl_errf(err, n, "%s: section '%s' uses ZIP compression method %u (sinklab reads stored "
                "members only; re-save with numpy.savez, not savez_compressed)", path, sec, method);
        return -1;
    }
    size_t nl = get16(ch + 28);
    if ((size_t)off + ZIP_LOCAL_LEN > a->len) {
        sl_errf(err, n, "%s: section '%s' lies beyond the end of the file (truncated)", path, sec);
        return -1;
    }
    const unsigned char *lh = a->buf + off;
    size_t ln = get16(lh + 26), lx = get16(lh + 28);
    /* every local header byte after the signature repeats the (CRC-covered) central entry:
     * version, flags, method, time, date, crc, sizes, name and extra lengths, then the name */
    if (get32(lh) != ZIP_LOCAL_SIG || ln != nl || memcmp(lh + 4, ch + 6, 26) != 0 ||
        memcmp(lh + ZIP_LOCAL_LEN, ch + ZIP_CENTRAL_LEN, nl) || lx != 0) {
        sl_errf(err, n, "%s: section '%s' local header does not match the central directory "
                "(file damaged)", path, sec);
        return -1;
    }
    size_t start = (size_t)off + ZIP_LOCAL_LEN + ln + lx;
    if (start + usize > a->len) {
        sl_errf(err, n, "%s: section '%s' runs past the end of the file (truncated)", path, sec);
        return -1;
    }
    mem->data = a->buf + start;
    mem->size = usize;
    uLong c = crc32(0L, Z_NULL, 0);
    for (size_t o = 0; o < usize; o += 1u << 30) {
        size_t k = usize - o < (1u << 30) ? usize - o : (1u << 30);
        c = crc32(c, mem->data + o, (uInt)k);
    }
    if ((uint32_t)c != crc) {
        sl_errf(err, n, "%s: section '%s' CRC mismatch (file damaged)", path, sec);
        return -1;
    }
    return 0;
}

int npz_open(NpzArchive *a, const char *path, char *err, size_t n)
{
    memset(a, 0, sizeof *a);
    if (read_file(a, path, err, n) != 0) return -1;
    long e = find_end(a);
    if (e < 0) {
        sl_errf(err, n, "%s: truncated or not a checkpoint (no ZIP end-of-archive record in its "
                "%zu bytes)", path, a->len);
        return -1;
    }
    const unsigned char *end = a->buf + e;
    size_t cl = get16(end + 20), cd_size = get32(end + 12), cd_off = get32(end + 16);
    size_t count = get16(end + 10);
    char comment[128] = "";
    if (cl < sizeof comment) memcpy(comment, end + ZIP_END_LEN, cl), comment[cl] = 0;
    size_t pl = strlen(ZIP_COMMENT_PREFIX);
    if (strncmp(comment, ZIP_COMMENT_PREFIX, pl) != 0) {
        sl_errf(err, n, "%s: not a sinklab checkpoint (a ZIP file without the sinklab signature)", path);
        return -1;
    }
    char *hex_end;
    unsigned long want = strtoul(comment + pl, &hex_end, 16);
    /* the end record's other fields: one disk (numbers 0), the entry counts agree, the comment
     * is exactly the prefix and 8 hex digits */
    int lower_hex = 1;
    for (size_t i = pl; i < pl + 8 && lower_hex; i++)
        lower_hex = isdigit((unsigned char)comment[i]) || (comment[i] >= 'a' && comment[i] <= 'f');
    if (!lower_hex || hex_end != comment + pl + 8 || *hex_end) {
        sl_errf(err, n, "%s: end record comment damaged (file damaged)", path);
        return -1;
    }
    if (cd_off + cd_size != (size_t)e || get16(end + 8) != count || get16(end + 4) != 0 ||
        get16(end + 6) != 0) {
        sl_errf(err, n, "%s: central directory out of place (file damaged or truncated)", path);
        return -1;
    }
    if ((uint32_t)crc32(crc32(0L, Z_NULL, 0), a->buf + cd_off, (uInt)cd_size) != (uint32_t)want) {
        sl_errf(err, n, "%s: central directory CRC mismatch (file damaged)", path);
        return -1;
    }
    a->m = xcalloc(count ? count : 1, sizeof *a->m);
    const unsigned char *ch = a->buf + cd_off, *cd_end = ch + cd_size;
    for (size_t i = 0; i < count; i++) {
        if (ch + ZIP_CENTRAL_LEN > cd_end || get32(ch) != ZIP_CENTRAL_SIG) {
            sl_errf(err, n, "%s: central directory entry %zu unreadable (file damaged)", path, i);
            return -1;
        }
        size_t nl = get16(ch + 28), step = ZIP_CENTRAL_LEN + nl + get16(ch + 30) + get16(ch + 32);
        NpzMember *m = &a->m[a->n++];
        size_t keep = nl < sizeof m->name - 1 ? nl : sizeof m->name - 1;
        memcpy(m->name, ch + ZIP_CENTRAL_LEN, keep);
        if (keep > 4 && !strcmp(m->name + keep - 4, ".npy")) m->name[keep - 4] = 0;
        if (check_member(a, ch, m, path, err, n) != 0) return -1;
        ch += step;
    }
    return 0;
}

int npz_array(NpyView *v, const NpzArchive *a, const char *name, const char *descr,
              const char *path, char *err, size_t n)
{
    const NpzMember *m = npz_find(a, name);
    if (!m) {
        sl_errf(err, n, "%s: section '%s' missing", path, name);
        return -1;
    }
    char why[256];
    if (npy_parse(v, m->data, m->size, why, sizeof why) != 0) {
        sl_errf(err, n, "%s: section '%s' %s", path, name, why);
        return -1;
    }
    if (strcmp(v->descr, descr) != 0) {
        sl_errf(err, n, "%s: section '%s' has dtype '%s', expected '%s'", path, name, v->descr, descr);
        return -1;
    }
    return 0;
}
