/* checkpoint.c: checkpoints as .npz-compatible ZIP files of .npy v1.0 members (see
 * checkpoint.h and the README ("Checkpoints")). Stored (uncompressed) entries keep the writer a single
 * pass with no copies; the ZIP comment carries the CRC32 of the central directory, so every byte
 * of the file except the 22-byte end record is covered by a CRC. */
#include "train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint.c writes little-endian .npy data by copying memory; port it for big-endian hosts"
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
#define MEMBER_NAME_MAX 160

static void set_err(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t n, const char *fmt, ...)
{
    if (!err || !n) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
}

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

typedef struct {
    char descr[8];
    int ndim;
    int64_t shape[8];
    const unsigned char *data;
    size_t nbytes;
} NpyView;

/* Parses a .npy member (v1.0-3.0, C order). Returns 0, or -1 with why in err. */
static int npy_parse(NpyView *v, const unsigned char *p, size_t n, char *why, size_t nwhy)
{
    if (n < 10 || memcmp(p, "\x93NUMPY", 6) != 0) {
        set_err(why, nwhy, "is not a .npy array (bad magic)");
        return -1;
    }
    size_t hl, off;
    if (p[6] == 1) { hl = get16(p + 8); off = 10; }
    else if ((p[6] == 2 || p[6] == 3) && n >= 12) { hl = get32(p + 8); off = 12; }
    else { set_err(why, nwhy, "has unsupported .npy version %d.%d", p[6], p[7]); return -1; }
    if (off + hl > n || hl > 4096) { set_err(why, nwhy, "has a truncated .npy header"); return -1; }
    char h[4097];
    memcpy(h, p + off, hl);
    h[hl] = 0;
    const char *d = strstr(h, "'descr':"), *f = strstr(h, "'fortran_order':"), *s = strstr(h, "'shape':");
    if (!d || !f || !s || sscanf(d + 8, " '%7[^']'", v->descr) != 1) {
        set_err(why, nwhy, "has an unreadable .npy header");
        return -1;
    }
    if (strncmp(f + 16 + strspn(f + 16, " "), "False", 5) != 0) {
        set_err(why, nwhy, "is stored in Fortran order (C order expected)");
        return -1;
    }
    const char *q = strchr(s, '(');
    if (!q) { set_err(why, nwhy, "has an unreadable shape"); return -1; }
    q++;
    v->ndim = 0;
    size_t elems = 1;
    for (;;) {
        q += strspn(q, " ,");
        if (*q == ')') break;
        char *e;
        long long x = strtoll(q, &e, 10);
        if (e == q || x < 0 || v->ndim == 8) { set_err(why, nwhy, "has an unreadable shape"); return -1; }
        v->shape[v->ndim++] = x;
        elems *= (size_t)x;
        q = e;
    }
    int item = v->descr[2] ? atoi(v->descr + 2) : 0;
    v->data = p + off + hl;
    v->nbytes = n - off - hl;
    if (item <= 0 || v->nbytes != elems * (size_t)item) {
        set_err(why, nwhy, "holds %zu data bytes, its header says %zu x '%s'", v->nbytes, elems,
                v->descr);
        return -1;
    }
    return 0;
}

/* ---- writing ---------------------------------------------------------------------------- */

typedef struct {
    char name[MEMBER_NAME_MAX + 8];   /* with ".npy" */
    uint32_t crc, size, offset;
} ZipEntry;

typedef struct {
    FILE *f;
    uint64_t pos;
    ZipEntry *e;
    int n, cap;
    int failed;
} ZipWriter;

static void zw_bytes(ZipWriter *z, const void *p, size_t n)
{
    if (z->failed || n == 0) return;
    if (fwrite(p, 1, n, z->f) != n) z->failed = errno ? errno : EIO;
    z->pos += n;
}

/* One stored member NAME.npy: the .npy header, then the raw array bytes. */
static void zw_member(ZipWriter *z, const char *name, const char *descr, int ndim,
                      const int64_t *shape, const void *data, size_t nbytes)
{
    char hdr[512];
    size_t hl = npy_header(hdr, sizeof hdr, descr, ndim, shape);
    SL_CHECK(z->n < z->cap, "checkpoint: more members than planned (%d)", z->cap);
    ZipEntry *e = &z->e[z->n++];
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
    zw_bytes(z, lh, sizeof lh);
    zw_bytes(z, e->name, nl);
    zw_bytes(z, hdr, hl);
    zw_bytes(z, data, nbytes);
}

static void zw_finish(ZipWriter *z)
{
    if (z->pos >= 0xffffffffu && !z->failed) z->failed = EFBIG;
    uint32_t cd_off = (uint32_t)z->pos;
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < z->n; i++) {
        const ZipEntry *e = &z->e[i];
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
        zw_bytes(z, ch, sizeof ch);
        zw_bytes(z, e->name, nl);
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
    zw_bytes(z, end, sizeof end);
    zw_bytes(z, comment, (size_t)cl);
}

static void write_members(ZipWriter *z, const ParamBlock *pb, const char *config_yaml,
                          const CkptState *st)
{
    int32_t version = CKPT_FORMAT_VERSION;
    int64_t one = 1, len = (int64_t)strlen(config_yaml), four = 4, nstate = CKPT_STATE_LEN;
    int64_t state[CKPT_STATE_LEN] = {st->step, st->tokens_seen, st->data_pos, st->data_epoch};
    memcpy(state + 4, st->extra, sizeof st->extra);
    zw_member(z, "format", "<i4", 1, &one, &version, sizeof version);
    zw_member(z, "config", "|u1", 1, &len, config_yaml, (size_t)len);
    zw_member(z, "state", "<i8", 1, &nstate, state, sizeof state);
    zw_member(z, "rng", "<u8", 1, &four, st->rng, sizeof st->rng);
    static const char *const kinds[3] = {"param", "adam_m", "adam_v"};
    const float *arrays[3] = {pb->data, pb->m, pb->v};
    for (int a = 0; a < 3; a++) {
        if (!arrays[a]) continue;   /* a weights-only checkpoint */
        for (int i = 0; i < pb->n_params; i++) {
            const Param *p = &pb->params[i];
            char name[MEMBER_NAME_MAX];
            int64_t shape[TENSOR_MAX_DIM];
            for (int d = 0; d < p->t.ndim; d++) shape[d] = p->t.shape[d];
            snprintf(name, sizeof name, "%s/%s", kinds[a], p->name);
            zw_member(z, name, "<f4", p->t.ndim, shape, arrays[a] + p->offset,
                      p->t.size * sizeof(float));
        }
    }
    zw_finish(z);
}

/* fsync of the folder holding path, so the rename itself is durable. */
static int fsync_parent(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    int fd = open(dir, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Writes PATH.tmp with fill(), fsyncs, renames over path, fsyncs the folder. */
static int write_atomic(const char *path, void (*fill)(ZipWriter *, const void *), const void *ctx,
                        int cap, char *err, size_t n)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        set_err(err, n, "%s: path too long", path);
        return -1;
    }
    ZipWriter z = {0};
    z.f = fopen(tmp, "wb");
    if (!z.f) {
        set_err(err, n, "%s: cannot create: %s", tmp, strerror(errno));
        return -1;
    }
    z.cap = cap;
    z.e = cap ? xcalloc((size_t)cap, sizeof *z.e) : NULL;
    errno = 0;
    fill(&z, ctx);
    if (!z.failed && fflush(z.f) != 0) z.failed = errno ? errno : EIO;
    if (!z.failed && fsync(fileno(z.f)) != 0) z.failed = errno;
    if (fclose(z.f) != 0 && !z.failed) z.failed = errno ? errno : EIO;
    free(z.e);
    if (z.failed) {
        set_err(err, n, "%s: write failed: %s (the previous %s is untouched)", tmp,
                strerror(z.failed), path);
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        set_err(err, n, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (fsync_parent(path) != 0) {
        set_err(err, n, "%s: cannot fsync its folder: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

typedef struct {
    const ParamBlock *pb;
    const char *config_yaml;
    const CkptState *st;
} SaveCtx;

static void fill_ckpt(ZipWriter *z, const void *ctx)
{
    const SaveCtx *c = ctx;
    write_members(z, c->pb, c->config_yaml, c->st);
}

int ckpt_save(const char *path, const ParamBlock *pb, const char *config_yaml,
              const CkptState *st, char *err, size_t n)
{
    SL_CHECK(pb->finalized, "ckpt_save: parameter block not finalized");
    SaveCtx c = {pb, config_yaml ? config_yaml : "", st};
    return write_atomic(path, fill_ckpt, &c, 4 + 3 * pb->n_params, err, n);
}

/* ---- reading ---------------------------------------------------------------------------- */

typedef struct {
    char name[MEMBER_NAME_MAX];    /* without ".npy" */
    const unsigned char *data;
    size_t size;
} Member;

typedef struct {
    unsigned char *buf;
    size_t len;
    Member *m;
    int n;
} Archive;

static void archive_free(Archive *a)
{
    free(a->buf);
    free(a->m);
    memset(a, 0, sizeof *a);
}

static const Member *archive_find(const Archive *a, const char *name)
{
    for (int i = 0; i < a->n; i++)
        if (!strcmp(a->m[i].name, name)) return &a->m[i];
    return NULL;
}

static int read_file(Archive *a, const char *path, char *err, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_err(err, n, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        set_err(err, n, "%s: not a regular file", path);
        fclose(f);
        return -1;
    }
    a->len = (size_t)sb.st_size;
    a->buf = xmalloc(a->len);
    size_t got = fread(a->buf, 1, a->len, f);
    fclose(f);
    if (got != a->len) {
        set_err(err, n, "%s: read error", path);
        return -1;
    }
    return 0;
}

/* The end record: the last ZIP_END_SIG whose comment runs exactly to the end of the file. */
static long find_end(const Archive *a)
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
static int check_member(const Archive *a, const unsigned char *ch, Member *mem, const char *path,
                        char *err, size_t n)
{
    uint32_t crc = get32(ch + 16), csize = get32(ch + 20), usize = get32(ch + 24);
    uint32_t off = get32(ch + 42), method = get16(ch + 10);
    const char *sec = mem->name;
    if (method != 0 || csize != usize) {
        set_err(err, n, "%s: section '%s' uses ZIP compression method %u (sinklab reads stored "
                "members only; re-save with numpy.savez, not savez_compressed)", path, sec, method);
        return -1;
    }
    size_t nl = get16(ch + 28);
    if ((size_t)off + ZIP_LOCAL_LEN > a->len) {
        set_err(err, n, "%s: section '%s' lies beyond the end of the file (truncated)", path, sec);
        return -1;
    }
    const unsigned char *lh = a->buf + off;
    size_t ln = get16(lh + 26), lx = get16(lh + 28);
    if (get32(lh) != ZIP_LOCAL_SIG || ln != nl || memcmp(lh + ZIP_LOCAL_LEN, ch + ZIP_CENTRAL_LEN, nl) ||
        get16(lh + 8) != method || (!(get16(lh + 6) & 8) && (get32(lh + 14) != crc ||
        get32(lh + 18) != csize || get32(lh + 22) != usize))) {
        set_err(err, n, "%s: section '%s' local header does not match the central directory "
                "(file damaged)", path, sec);
        return -1;
    }
    size_t start = (size_t)off + ZIP_LOCAL_LEN + ln + lx;
    if (start + usize > a->len) {
        set_err(err, n, "%s: section '%s' runs past the end of the file (truncated)", path, sec);
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
        set_err(err, n, "%s: section '%s' CRC mismatch (file damaged)", path, sec);
        return -1;
    }
    return 0;
}

/* Reads path and checks the end record, the central directory's CRC and every member's CRC. */
static int archive_open(Archive *a, const char *path, char *err, size_t n)
{
    memset(a, 0, sizeof *a);
    if (read_file(a, path, err, n) != 0) return -1;
    long e = find_end(a);
    if (e < 0) {
        set_err(err, n, "%s: truncated or not a checkpoint (no ZIP end-of-archive record in its "
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
        set_err(err, n, "%s: not a sinklab checkpoint (a ZIP file without the sinklab signature)", path);
        return -1;
    }
    unsigned long want = strtoul(comment + pl, NULL, 16);
    if (cd_off + cd_size != (size_t)e || get16(end + 8) != count) {
        set_err(err, n, "%s: central directory out of place (file damaged or truncated)", path);
        return -1;
    }
    if ((uint32_t)crc32(crc32(0L, Z_NULL, 0), a->buf + cd_off, (uInt)cd_size) != (uint32_t)want) {
        set_err(err, n, "%s: central directory CRC mismatch (file damaged)", path);
        return -1;
    }
    a->m = xcalloc(count ? count : 1, sizeof *a->m);
    const unsigned char *ch = a->buf + cd_off, *cd_end = ch + cd_size;
    for (size_t i = 0; i < count; i++) {
        if (ch + ZIP_CENTRAL_LEN > cd_end || get32(ch) != ZIP_CENTRAL_SIG) {
            set_err(err, n, "%s: central directory entry %zu unreadable (file damaged)", path, i);
            return -1;
        }
        size_t nl = get16(ch + 28), step = ZIP_CENTRAL_LEN + nl + get16(ch + 30) + get16(ch + 32);
        Member *m = &a->m[a->n++];
        size_t keep = nl < sizeof m->name - 1 ? nl : sizeof m->name - 1;
        memcpy(m->name, ch + ZIP_CENTRAL_LEN, keep);
        if (keep > 4 && !strcmp(m->name + keep - 4, ".npy")) m->name[keep - 4] = 0;
        if (check_member(a, ch, m, path, err, n) != 0) return -1;
        ch += step;
    }
    return 0;
}

/* A member as a .npy array of the given dtype; -1 with "PATH: section 'NAME' ..." otherwise. */
static int archive_array(NpyView *v, const Archive *a, const char *name, const char *descr,
                         const char *path, char *err, size_t n)
{
    const Member *m = archive_find(a, name);
    if (!m) {
        set_err(err, n, "%s: section '%s' missing", path, name);
        return -1;
    }
    char why[256];
    if (npy_parse(v, m->data, m->size, why, sizeof why) != 0) {
        set_err(err, n, "%s: section '%s' %s", path, name, why);
        return -1;
    }
    if (strcmp(v->descr, descr) != 0) {
        set_err(err, n, "%s: section '%s' has dtype '%s', expected '%s'", path, name, v->descr, descr);
        return -1;
    }
    return 0;
}

/* The checks every reader needs: CRCs, the version, and the non-parameter members. */
static int archive_open_checked(Archive *a, const char *path, char *err, size_t n)
{
    if (archive_open(a, path, err, n) != 0) return -1;
    NpyView v;
    if (archive_array(&v, a, "format", "<i4", path, err, n) != 0) return -1;
    int32_t version;
    if (v.nbytes < 4) {
        set_err(err, n, "%s: section 'format' is empty", path);
        return -1;
    }
    memcpy(&version, v.data, 4);
    if (version != CKPT_FORMAT_VERSION) {
        set_err(err, n, "%s: checkpoint format version %d, this sinklab reads version %d", path,
                (int)version, CKPT_FORMAT_VERSION);
        return -1;
    }
    if (archive_array(&v, a, "config", "|u1", path, err, n) != 0) return -1;
    if (archive_array(&v, a, "rng", "<u8", path, err, n) != 0) return -1;
    if (v.nbytes != 4 * sizeof(uint64_t)) {
        set_err(err, n, "%s: section 'rng' holds %zu values, expected 4", path, v.nbytes / 8);
        return -1;
    }
    if (archive_array(&v, a, "state", "<i8", path, err, n) != 0) return -1;
    if (v.nbytes < 4 * sizeof(int64_t)) {
        set_err(err, n, "%s: section 'state' holds %zu values, expected at least 4", path,
                v.nbytes / 8);
        return -1;
    }
    return 0;
}

int ckpt_verify(const char *path, char *err, size_t n)
{
    Archive a;
    int rc = archive_open_checked(&a, path, err, n);
    archive_free(&a);
    return rc;
}

int ckpt_read_config(const char *path, char **config_yaml, char *err, size_t n)
{
    Archive a;
    *config_yaml = NULL;
    NpyView v;
    if (archive_open_checked(&a, path, err, n) != 0 ||
        archive_array(&v, &a, "config", "|u1", path, err, n) != 0) {
        archive_free(&a);
        return -1;
    }
    char *s = xmalloc(v.nbytes + 1);
    memcpy(s, v.data, v.nbytes);
    s[v.nbytes] = 0;
    *config_yaml = s;
    archive_free(&a);
    return 0;
}

static const char *shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %" PRId64 : "%" PRId64, shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

/* Checks that member KIND/<name> exists for every parameter with its exact shape, and that the
 * file holds no KIND/ member the model lacks. */
static int check_kind(const Archive *a, const ParamBlock *pb, const char *kind, const char *path,
                      char *err, size_t n)
{
    for (int i = 0; i < pb->n_params; i++) {
        const Param *p = &pb->params[i];
        char name[MEMBER_NAME_MAX], want[96], got[96];
        snprintf(name, sizeof name, "%s/%s", kind, p->name);
        NpyView v;
        if (!archive_find(a, name)) {
            set_err(err, n, "%s: section '%s' missing: the model has this parameter, the "
                    "checkpoint does not (different model config?)", path, name);
            return -1;
        }
        if (archive_array(&v, a, name, "<f4", path, err, n) != 0) return -1;
        int64_t ps[TENSOR_MAX_DIM];
        int same = v.ndim == p->t.ndim;
        for (int d = 0; d < p->t.ndim; d++) {
            ps[d] = p->t.shape[d];
            if (same && v.shape[d] != ps[d]) same = 0;
        }
        if (!same) {
            set_err(err, n, "%s: section '%s' has shape %s, the model expects %s (different "
                    "model config?)", path, name, shape_str(got, sizeof got, v.ndim, v.shape),
                    shape_str(want, sizeof want, p->t.ndim, ps));
            return -1;
        }
    }
    size_t kl = strlen(kind);
    for (int i = 0; i < a->n; i++) {
        const char *mn = a->m[i].name;
        if (strncmp(mn, kind, kl) == 0 && mn[kl] == '/' && !params_find(pb, mn + kl + 1)) {
            set_err(err, n, "%s: section '%s' is not a parameter of this model (different model "
                    "config?)", path, mn);
            return -1;
        }
    }
    return 0;
}

static void copy_kind(float *dst, const Archive *a, const ParamBlock *pb, const char *kind)
{
    for (int i = 0; i < pb->n_params; i++) {
        const Param *p = &pb->params[i];
        char name[MEMBER_NAME_MAX];
        snprintf(name, sizeof name, "%s/%s", kind, p->name);
        NpyView v;
        SL_CHECK(archive_array(&v, a, name, "<f4", "", NULL, 0) == 0, "%s vanished", name);
        memcpy(dst + p->offset, v.data, v.nbytes);
    }
}

static void read_state(CkptState *st, const Archive *a)
{
    NpyView v;
    SL_CHECK(archive_array(&v, a, "state", "<i8", "", NULL, 0) == 0, "state vanished");
    int64_t s[CKPT_STATE_LEN] = {0};
    size_t k = v.nbytes < sizeof s ? v.nbytes : sizeof s;
    memcpy(s, v.data, k);
    memset(st, 0, sizeof *st);
    st->step = s[0];
    st->tokens_seen = s[1];
    st->data_pos = s[2];
    st->data_epoch = s[3];
    memcpy(st->extra, s + 4, sizeof st->extra);
    SL_CHECK(archive_array(&v, a, "rng", "<u8", "", NULL, 0) == 0, "rng vanished");
    memcpy(st->rng, v.data, sizeof st->rng);
}

int ckpt_load(const char *path, ParamBlock *pb, CkptState *st, int with_optimizer,
              char *err, size_t n)
{
    SL_CHECK(pb->finalized, "ckpt_load: parameter block not finalized");
    Archive a;
    int rc = archive_open_checked(&a, path, err, n);
    if (rc == 0) rc = check_kind(&a, pb, "param", path, err, n);
    if (rc == 0 && with_optimizer) {
        int has_moments = 0;
        for (int i = 0; i < a.n; i++) has_moments |= strncmp(a.m[i].name, "adam_", 5) == 0;
        if (!has_moments) {
            set_err(err, n, "%s: holds the weights only, without the optimizer moments that "
                    "resuming needs (checkpoint.optimizer_state: latest keeps them in the newest "
                    "checkpoint only; all keeps them in every one)", path);
            rc = -1;
        }
    }
    if (rc == 0 && with_optimizer) rc = check_kind(&a, pb, "adam_m", path, err, n);
    if (rc == 0 && with_optimizer) rc = check_kind(&a, pb, "adam_v", path, err, n);
    if (rc == 0) {
        copy_kind(pb->data, &a, pb, "param");
        if (with_optimizer) {
            copy_kind(pb->m, &a, pb, "adam_m");
            copy_kind(pb->v, &a, pb, "adam_v");
        }
        if (st) read_state(st, &a);
    }
    archive_free(&a);
    return rc;
}

/* ---- run folder ------------------------------------------------------------------------- */

void ckpt_path(char *out, size_t n, const char *run_dir, int64_t step)
{
    snprintf(out, n, "%s/checkpoints/step_%07" PRId64 ".ckpt", run_dir, step);
}

int ckpt_ensure_dir(const char *run_dir, char *err, size_t n)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        set_err(err, n, "%s: cannot create: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* `latest` reuses the atomic writer; only its byte sink is used, no ZIP structure. */
static void fill_text(ZipWriter *z, const void *ctx)
{
    zw_bytes(z, ctx, strlen(ctx));
}

int ckpt_write_latest(const char *run_dir, int64_t step, char *err, size_t n)
{
    char path[4096], line[64];
    snprintf(path, sizeof path, "%s/checkpoints/latest", run_dir);
    snprintf(line, sizeof line, "step_%07" PRId64 ".ckpt\n", step);
    return write_atomic(path, fill_text, line, 0, err, n);
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

/* Steps of all step_N.ckpt files in dir, newest first; returns the count (*steps malloc'd). */
static int list_steps(const char *dir, int64_t **steps)
{
    *steps = NULL;
    DIR *d = opendir(dir);
    if (!d) return 0;
    int cnt = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        long long s;
        int used = 0;
        if (sscanf(de->d_name, "step_%lld.ckpt%n", &s, &used) == 1 && used > 0 &&
            de->d_name[used] == 0 && s >= 0) {
            if (cnt == cap) {
                cap = cap ? 2 * cap : 64;
                int64_t *g = realloc(*steps, (size_t)cap * sizeof **steps);
                SL_CHECK(g, "out of memory listing %s", dir);
                *steps = g;
            }
            (*steps)[cnt++] = s;
        }
    }
    closedir(d);
    if (cnt) qsort(*steps, (size_t)cnt, sizeof **steps, cmp_desc);
    return cnt;
}

int ckpt_find_latest(const char *run_dir, char *path_out, size_t n_out,
                     char *note, size_t n_note, char *err, size_t n_err)
{
    char dir[4096], lpath[4096 + 16], named[4096 + 300] = "", why[1024] = "";
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    snprintf(lpath, sizeof lpath, "%s/latest", dir);
    set_err(note, n_note, "%s", "");
    FILE *f = fopen(lpath, "r");
    if (f) {
        char line[256] = "";
        if (fgets(line, sizeof line, f)) line[strcspn(line, "\r\n")] = 0;
        fclose(f);
        if (line[0] && !strchr(line, '/')) {
            snprintf(named, sizeof named, "%s/%s", dir, line);
            if (ckpt_verify(named, why, sizeof why) == 0) {
                set_err(path_out, n_out, "%s", named);
                return 0;
            }
        } else {
            set_err(why, sizeof why, "%s: does not name a checkpoint file", lpath);
        }
    } else {
        set_err(why, sizeof why, "%s: missing", lpath);
    }
    int64_t *steps;
    int cnt = list_steps(dir, &steps);
    for (int i = 0; i < cnt; i++) {
        char cand[4096 + 32], cwhy[1024];
        snprintf(cand, sizeof cand, "%s/step_%07" PRId64 ".ckpt", dir, steps[i]);
        if (!strcmp(cand, named)) continue;
        if (ckpt_verify(cand, cwhy, sizeof cwhy) == 0) {
            set_err(path_out, n_out, "%s", cand);
            set_err(note, n_note, "%s; newest intact: %s", why, strrchr(cand, '/') + 1);
            free(steps);
            return 0;
        }
    }
    free(steps);
    set_err(err, n_err, "%s: no intact checkpoint (%d file%s checked; %s)", dir, cnt,
            cnt == 1 ? "" : "s", why);
    return -1;
}

int ckpt_drop_optimizer(const char *path, const ParamBlock *pb, char *err, size_t n)
{
    if (access(path, F_OK) != 0) return 0;
    /* the model's layout over a scratch copy of the values, without moments */
    ParamBlock w = *pb;
    w.data = xmalloc(pb->n * sizeof(float));
    w.grad = w.m = w.v = NULL;
    char *yaml = NULL;
    CkptState st;
    int rc = ckpt_read_config(path, &yaml, err, n);
    if (rc == 0) rc = ckpt_load(path, &w, &st, 0, err, n);
    if (rc == 0) rc = ckpt_save(path, &w, yaml, &st, err, n);
    free(w.data);
    free(yaml);
    return rc;
}

int ckpt_scheduled(int64_t step, int64_t total_steps, int every, int log_spaced)
{
    if (step == total_steps) return 1;
    if (every > 0 && step > 0 && step % every == 0) return 1;
    if (!log_spaced) return 0;
    if (step == 0) return 1;
    /* 1-2-5 series from 10: step = d * 10^k with d in {1, 2, 5}, k >= 1. */
    int64_t s = step;
    int k = 0;
    while (s % 10 == 0) { s /= 10; k++; }
    return k >= 1 && (s == 1 || s == 2 || s == 5);
}
