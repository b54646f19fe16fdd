/* jsonw.c: the JSON writer (see jsonw.h for the non-finite policy). */
#include "analysis/jsonw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void jsonw_init(JsonWriter *w)
{
    memset(w, 0, sizeof *w);
}

void jsonw_reset(JsonWriter *w)
{
    w->len = 0;
    if (w->buf) w->buf[0] = 0;
    w->depth = 0;
    w->started = 0;
    w->error = JSONW_OK;
}

void jsonw_free(JsonWriter *w)
{
    free(w->buf);
    memset(w, 0, sizeof *w);
}

static void set_error(JsonWriter *w, JsonwError e)
{
    if (w->error == JSONW_OK) w->error = e;
}

static void put(JsonWriter *w, const char *s, size_t n)
{
    if (w->error) return;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 1024;
        while (cap < w->len + n + 1) cap *= 2;
        char *b = realloc(w->buf, cap);
        if (!b) { set_error(w, JSONW_ERR_MEMORY); return; }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = 0;
}

static void puts_(JsonWriter *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_string(JsonWriter *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    put(w, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        put(w, run, (size_t)(s - run));
        run = s + 1;
        char esc[7] = { '\\', 0 };
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
        }
        puts_(w, esc);
    }
    put(w, run, (size_t)(s - run));
    put(w, "\"", 1);
}

/* Shortest %.Ng (6..9) that reads back to the same float: 9 digits always suffice for float32,
 * fewer keep metrics.jsonl readable. Values beyond float range keep double precision. */
static void format_number(char out[40], double x)
{
    float f = (float)x;
    if (isfinite(f)) {
        for (int prec = 6; prec <= 9; prec++) {
            snprintf(out, 40, "%.*g", prec, (double)f);
            if ((float)strtod(out, NULL) == f) return;
        }
    }
    snprintf(out, 40, "%.17g", x);
}

/* Prepares a value position: the top level once, or the next element of an array. */
static int begin_value(JsonWriter *w)
{
    if (w->error) return -1;
    if (w->depth == 0) {
        if (w->started) { set_error(w, JSONW_ERR_USAGE); return -1; }
        w->started = 1;
        return 0;
    }
    int d = w->depth - 1;
    if (w->is_object[d]) { set_error(w, JSONW_ERR_USAGE); return -1; }
    if (w->has_items[d]) put(w, ",", 1);
    w->has_items[d] = 1;
    return 0;
}

static int begin_member(JsonWriter *w, const char *key)
{
    if (w->error) return -1;
    int d = w->depth - 1;
    if (d < 0 || !w->is_object[d] || !key) { set_error(w, JSONW_ERR_USAGE); return -1; }
    if (w->has_items[d]) put(w, ",", 1);
    w->has_items[d] = 1;
    put_string(w, key);
    put(w, ":", 1);
    return 0;
}

static void open_container(JsonWriter *w, int is_object)
{
    if (w->depth >= JSONW_MAX_DEPTH) { set_error(w, JSONW_ERR_USAGE); return; }
    w->is_object[w->depth] = (unsigned char)is_object;
    w->has_items[w->depth] = 0;
    w->depth++;
    put(w, is_object ? "{" : "[", 1);
}

static void close_container(JsonWriter *w, int is_object)
{
    if (w->error) return;
    if (w->depth == 0 || w->is_object[w->depth - 1] != is_object) {
        set_error(w, JSONW_ERR_USAGE);
        return;
    }
    w->depth--;
    put(w, is_object ? "}" : "]", 1);
}

void jsonw_object_begin(JsonWriter *w) { if (!begin_value(w)) open_container(w, 1); }
void jsonw_object_end(JsonWriter *w) { close_container(w, 1); }
void jsonw_array_begin(JsonWriter *w) { if (!begin_value(w)) open_container(w, 0); }
void jsonw_array_end(JsonWriter *w) { close_container(w, 0); }
void jsonw_key_object_begin(JsonWriter *w, const char *key) { if (!begin_member(w, key)) open_container(w, 1); }
void jsonw_key_array_begin(JsonWriter *w, const char *key) { if (!begin_member(w, key)) open_container(w, 0); }

int jsonw_key_number(JsonWriter *w, const char *key, double x)
{
    if (!isfinite(x)) return 1;
    if (begin_member(w, key)) return 0;
    char s[40];
    format_number(s, x);
    puts_(w, s);
    return 0;
}

void jsonw_key_int(JsonWriter *w, const char *key, long long x)
{
    if (begin_member(w, key)) return;
    char s[32];
    snprintf(s, sizeof s, "%lld", x);
    puts_(w, s);
}

void jsonw_key_string(JsonWriter *w, const char *key, const char *s)
{
    if (!begin_member(w, key)) put_string(w, s ? s : "");
}

void jsonw_key_bool(JsonWriter *w, const char *key, int b)
{
    if (!begin_member(w, key)) puts_(w, b ? "true" : "false");
}

static size_t shape_count(const int *shape, int ndim)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i] > 0 ? (size_t)shape[i] : 0;
    return n;
}

/* Writes x as nested arrays; kind 'f' float, 'd' double, 'i' int. */
static void put_nested(JsonWriter *w, const void *x, char kind, size_t *at, const int *shape, int ndim)
{
    put(w, "[", 1);
    for (int i = 0; i < shape[0]; i++) {
        if (i) put(w, ",", 1);
        if (ndim > 1) { put_nested(w, x, kind, at, shape + 1, ndim - 1); continue; }
        char s[40];
        size_t k = (*at)++;
        if (kind == 'i') snprintf(s, sizeof s, "%d", ((const int *)x)[k]);
        else format_number(s, kind == 'f' ? (double)((const float *)x)[k] : ((const double *)x)[k]);
        puts_(w, s);
    }
    put(w, "]", 1);
}

static int key_array(JsonWriter *w, const char *key, const void *x, char kind, const int *shape, int ndim)
{
    if (ndim < 1) { set_error(w, JSONW_ERR_USAGE); return 0; }
    size_t n = shape_count(shape, ndim);
    for (size_t i = 0; i < n; i++) {
        double v = kind == 'f' ? (double)((const float *)x)[i] : kind == 'd' ? ((const double *)x)[i] : 0;
        if (!isfinite(v)) return 1;
    }
    if (begin_member(w, key)) return 0;
    size_t at = 0;
    put_nested(w, x, kind, &at, shape, ndim);
    return 0;
}

int jsonw_key_floats(JsonWriter *w, const char *key, const float *x, const int *shape, int ndim)
{
    return key_array(w, key, x, 'f', shape, ndim);
}

int jsonw_key_doubles(JsonWriter *w, const char *key, const double *x, const int *shape, int ndim)
{
    return key_array(w, key, x, 'd', shape, ndim);
}

void jsonw_key_ints(JsonWriter *w, const char *key, const int *x, const int *shape, int ndim)
{
    key_array(w, key, x, 'i', shape, ndim);
}

void jsonw_number(JsonWriter *w, double x)
{
    if (!isfinite(x)) { set_error(w, JSONW_ERR_NONFINITE); return; }
    if (begin_value(w)) return;
    char s[40];
    format_number(s, x);
    puts_(w, s);
}

void jsonw_int(JsonWriter *w, long long x)
{
    if (begin_value(w)) return;
    char s[32];
    snprintf(s, sizeof s, "%lld", x);
    puts_(w, s);
}

void jsonw_string(JsonWriter *w, const char *s)
{
    if (!begin_value(w)) put_string(w, s ? s : "");
}

JsonwError jsonw_error(const JsonWriter *w)
{
    return w->error;
}

const char *jsonw_text(const JsonWriter *w, size_t *len)
{
    if (w->error || w->depth != 0 || !w->started || !w->buf) return NULL;
    if (len) *len = w->len;
    return w->buf;
}

int jsonw_write_line(const JsonWriter *w, FILE *f)
{
    size_t len;
    const char *text = jsonw_text(w, &len);
    if (!text) return -1;
    /* One fwrite of line + newline: a reader never sees half a line from a crash between calls. */
    char *line = (char *)w->buf;
    line[len] = '\n';
    size_t put_n = fwrite(line, 1, len + 1, f);
    line[len] = 0;
    return put_n == len + 1 && fflush(f) == 0 ? 0 : -1;
}
