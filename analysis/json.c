/* json.c: a strict recursive-descent JSON reader. Children are collected on one scratch stack and
 * copied into the document arena when their container closes, so a parse does a handful of mallocs
 * however many values it holds. */
#include "analysis/json.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct JsonBlock {
    struct JsonBlock *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

typedef struct {
    const char *p, *end;
    const char *file;
    int line;
    const char *line_start;
    char *err;
    size_t n_err;
    int failed;
    JsonDoc *doc;
    JsonValue *stack; /* scratch: children of the containers being parsed */
    size_t sp, cap;
    char *sbuf;       /* scratch: the string being decoded */
    size_t slen, scap;
} Parser;

static void *arena_alloc(JsonDoc *doc, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct JsonBlock *b = doc->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = doc->blocks;
        doc->blocks = b;
    }
    void *r = b->data + b->used;
    b->used += n;
    return r;
}

static int fail(Parser *P, const char *what)
{
    if (P->failed) return -1;
    P->failed = 1;
    char found[32];
    if (P->p >= P->end) snprintf(found, sizeof found, "end of input");
    else if ((unsigned char)*P->p < 0x20) snprintf(found, sizeof found, "byte 0x%02x", (unsigned char)*P->p);
    else snprintf(found, sizeof found, "'%c'", *P->p);
    snprintf(P->err, P->n_err, "%s:%d:%d: %s (found %s)", P->file, P->line,
             (int)(P->p - P->line_start) + 1, what, found);
    return -1;
}

static int fail_oom(Parser *P)
{
    if (!P->failed) snprintf(P->err, P->n_err, "%s:%d: out of memory", P->file, P->line);
    P->failed = 1;
    return -1;
}

static void skip_ws(Parser *P)
{
    while (P->p < P->end) {
        char c = *P->p;
        if (c == '\n') { P->line++; P->line_start = P->p + 1; }
        else if (c != ' ' && c != '\t' && c != '\r') return;
        P->p++;
    }
}

static int push(Parser *P, const JsonValue *v)
{
    if (P->sp == P->cap) {
        size_t cap = P->cap ? 2 * P->cap : 256;
        JsonValue *s = realloc(P->stack, cap * sizeof *s);
        if (!s) return fail_oom(P);
        P->stack = s;
        P->cap = cap;
    }
    P->stack[P->sp++] = *v;
    return 0;
}

static int sbuf_put(Parser *P, char c)
{
    if (P->slen + 1 >= P->scap) {
        size_t cap = P->scap ? 2 * P->scap : 256;
        char *s = realloc(P->sbuf, cap);
        if (!s) return fail_oom(P);
        P->sbuf = s;
        P->scap = cap;
    }
    P->sbuf[P->slen++] = c;
    return 0;
}

static int put_utf8(Parser *P, uint32_t cp)
{
    int rc = 0;
    if (cp < 0x80) {
        rc |= sbuf_put(P, (char)cp);
    } else if (cp < 0x800) {
        rc |= sbuf_put(P, (char)(0xc0 | (cp >> 6)));
        rc |= sbuf_put(P, (char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        rc |= sbuf_put(P, (char)(0xe0 | (cp >> 12)));
        rc |= sbuf_put(P, (char)(0x80 | ((cp >> 6) & 0x3f)));
        rc |= sbuf_put(P, (char)(0x80 | (cp & 0x3f)));
    } else {
        rc |= sbuf_put(P, (char)(0xf0 | (cp >> 18)));
        rc |= sbuf_put(P, (char)(0x80 | ((cp >> 12) & 0x3f)));
        rc |= sbuf_put(P, (char)(0x80 | ((cp >> 6) & 0x3f)));
        rc |= sbuf_put(P, (char)(0x80 | (cp & 0x3f)));
    }
    return rc;
}

static int hex4(Parser *P, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        if (P->p >= P->end) return fail(P, "expected 4 hex digits after \\u");
        char c = *P->p;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return fail(P, "expected 4 hex digits after \\u");
        v = v * 16 + (uint32_t)d;
        P->p++;
    }
    *out = v;
    return 0;
}

static int parse_escape(Parser *P)
{
    char c = *P->p;
    const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
    const char *hit = c ? strchr(from, c) : NULL;
    if (hit) { P->p++; return sbuf_put(P, to[hit - from]); }
    if (c != 'u') return fail(P, "invalid escape: expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u");
    P->p++;
    uint32_t cp;
    if (hex4(P, &cp)) return -1;
    /* UTF-16 surrogate pairs encode code points above U+FFFF as two escapes. */
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (P->end - P->p < 2 || P->p[0] != '\\' || P->p[1] != 'u')
            return fail(P, "expected a low surrogate \\uDC00-\\uDFFF after a high surrogate");
        P->p += 2;
        uint32_t lo;
        if (hex4(P, &lo)) return -1;
        if (lo < 0xdc00 || lo > 0xdfff) return fail(P, "expected a low surrogate \\uDC00-\\uDFFF");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    } else if (cp >= 0xdc00 && cp <= 0xdfff) {
        return fail(P, "unpaired low surrogate in \\u escape");
    }
    return put_utf8(P, cp);
}

/* Decodes a string starting at the opening quote into arena memory. */
static int parse_string(Parser *P, const char **out, int *out_len)
{
    P->p++;
    P->slen = 0;
    for (;;) {
        if (P->p >= P->end) return fail(P, "unterminated string: expected '\"'");
        unsigned char c = (unsigned char)*P->p;
        if (c == '"') break;
        if (c < 0x20) return fail(P, "control character in string: expected it escaped");
        if (c == '\\') {
            P->p++;
            if (P->p >= P->end) return fail(P, "unterminated escape in string");
            if (parse_escape(P)) return -1;
            continue;
        }
        if (sbuf_put(P, (char)c)) return -1;
        P->p++;
    }
    P->p++;
    char *s = arena_alloc(P->doc, P->slen + 1);
    if (!s) return fail_oom(P);
    if (P->slen) memcpy(s, P->sbuf, P->slen);
    s[P->slen] = 0;
    *out = s;
    *out_len = (int)P->slen;
    return 0;
}

static int is_digit(const Parser *P, const char *q)
{
    return q < P->end && *q >= '0' && *q <= '9';
}

static int parse_number(Parser *P, JsonValue *v)
{
    const char *q = P->p;
    if (q < P->end && *q == '-') q++;
    if (!is_digit(P, q)) return fail(P, "expected a value (number, string, object, array, true, false or null)");
    if (*q == '0') {
        q++;
        if (is_digit(P, q)) { P->p = q; return fail(P, "leading zero in number"); }
    } else {
        while (is_digit(P, q)) q++;
    }
    if (q < P->end && *q == '.') {
        q++;
        if (!is_digit(P, q)) { P->p = q; return fail(P, "expected a digit after '.'"); }
        while (is_digit(P, q)) q++;
    }
    if (q < P->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < P->end && (*q == '+' || *q == '-')) q++;
        if (!is_digit(P, q)) { P->p = q; return fail(P, "expected a digit in the exponent"); }
        while (is_digit(P, q)) q++;
    }
    /* strtod needs a NUL-terminated copy: text need not be terminated after the number. */
    size_t len = (size_t)(q - P->p);
    char small[64], *buf = small;
    if (len >= sizeof small && !(buf = malloc(len + 1))) return fail_oom(P);
    memcpy(buf, P->p, len);
    buf[len] = 0;
    double x = strtod(buf, NULL);
    if (buf != small) free(buf);
    if (isinf(x)) return fail(P, "number out of range for a double");
    v->type = JSON_NUMBER;
    v->number = x;
    P->p = q;
    return 0;
}

static int parse_value(Parser *P, JsonValue *v, int depth);

static int literal(Parser *P, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(P->end - P->p) < n || memcmp(P->p, word, n) != 0)
        return fail(P, "expected a value (number, string, object, array, true, false or null)");
    P->p += n;
    return 0;
}

/* Moves the children pushed since mark into the arena as v's items. */
static int close_container(Parser *P, JsonValue *v, size_t mark)
{
    size_t n = P->sp - mark;
    if (n > (size_t)INT32_MAX) return fail_oom(P);
    v->n = (int)n;
    v->items = NULL;
    if (n) {
        JsonValue *items = arena_alloc(P->doc, n * sizeof *items);
        if (!items) return fail_oom(P);
        memcpy(items, P->stack + mark, n * sizeof *items);
        v->items = items;
    }
    P->sp = mark;
    return 0;
}

static int parse_array(Parser *P, JsonValue *v, int depth)
{
    size_t mark = P->sp;
    v->type = JSON_ARRAY;
    P->p++;
    skip_ws(P);
    if (P->p < P->end && *P->p == ']') { P->p++; return close_container(P, v, mark); }
    for (;;) {
        JsonValue item;
        skip_ws(P);
        if (parse_value(P, &item, depth + 1) || push(P, &item)) return -1;
        skip_ws(P);
        if (P->p < P->end && *P->p == ',') { P->p++; continue; }
        if (P->p < P->end && *P->p == ']') { P->p++; break; }
        return fail(P, "expected ',' or ']' after an array element");
    }
    return close_container(P, v, mark);
}

static int has_key(const Parser *P, size_t mark, const char *key)
{
    for (size_t i = mark; i < P->sp; i++)
        if (P->stack[i].key && strcmp(P->stack[i].key, key) == 0) return 1;
    return 0;
}

static int parse_object(Parser *P, JsonValue *v, int depth)
{
    size_t mark = P->sp;
    v->type = JSON_OBJECT;
    P->p++;
    skip_ws(P);
    if (P->p < P->end && *P->p == '}') { P->p++; return close_container(P, v, mark); }
    for (;;) {
        skip_ws(P);
        if (P->p >= P->end || *P->p != '"') return fail(P, "expected a string key in an object");
        const char *key_at = P->p;
        const char *key;
        int key_len;
        if (parse_string(P, &key, &key_len)) return -1;
        if (has_key(P, mark, key)) {
            P->p = key_at;
            char msg[160];
            snprintf(msg, sizeof msg, "duplicate key \"%.100s\"", key);
            return fail(P, msg);
        }
        skip_ws(P);
        if (P->p >= P->end || *P->p != ':') return fail(P, "expected ':' after an object key");
        P->p++;
        skip_ws(P);
        JsonValue item;
        if (parse_value(P, &item, depth + 1)) return -1;
        item.key = key;
        if (push(P, &item)) return -1;
        skip_ws(P);
        if (P->p < P->end && *P->p == ',') { P->p++; continue; }
        if (P->p < P->end && *P->p == '}') { P->p++; break; }
        return fail(P, "expected ',' or '}' after an object member");
    }
    return close_container(P, v, mark);
}

static int parse_value(Parser *P, JsonValue *v, int depth)
{
    memset(v, 0, sizeof *v);
    if (depth > JSON_MAX_DEPTH) return fail(P, "nesting deeper than JSON_MAX_DEPTH (64)");
    if (P->p >= P->end) return fail(P, "expected a value");
    switch (*P->p) {
    case '{': return parse_object(P, v, depth);
    case '[': return parse_array(P, v, depth);
    case '"': v->type = JSON_STRING; return parse_string(P, &v->str, &v->n);
    case 't': v->type = JSON_BOOL; v->number = 1; return literal(P, "true");
    case 'f': v->type = JSON_BOOL; v->number = 0; return literal(P, "false");
    case 'n': v->type = JSON_NULL; return literal(P, "null");
    default: return parse_number(P, v);
    }
}

int json_parse(JsonDoc *doc, const char *text, size_t len, const char *file, int first_line,
               char *err, size_t n_err)
{
    static char dummy[1];
    Parser P = { .p = text, .end = text + len, .file = file ? file : "<json>", .line = first_line,
                 .line_start = text, .err = err ? err : dummy, .n_err = err ? n_err : 1, .doc = doc };
    doc->root = NULL;
    doc->blocks = NULL;
    JsonValue root;
    skip_ws(&P);
    int rc = parse_value(&P, &root, 0);
    if (!rc) {
        skip_ws(&P);
        if (P.p < P.end) rc = fail(&P, "expected end of input after the JSON value");
    }
    JsonValue *r = rc ? NULL : arena_alloc(doc, sizeof *r);
    if (!rc && !r) rc = fail_oom(&P);
    free(P.stack);
    free(P.sbuf);
    if (rc) { json_free(doc); return -1; }
    *r = root;
    doc->root = r;
    return 0;
}

int json_parse_file(JsonDoc *doc, const char *path, char *err, size_t n_err)
{
    doc->root = NULL;
    doc->blocks = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, n_err, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
    }
    int read_err = ferror(f);
    fclose(f);
    if (!buf || read_err) {
        snprintf(err, n_err, "%s: %s", path, buf ? "read error" : "out of memory");
        free(buf);
        return -1;
    }
    int rc = json_parse(doc, buf, len, path, 1, err, n_err);
    free(buf);
    return rc;
}

void json_free(JsonDoc *doc)
{
    struct JsonBlock *b = doc->blocks;
    while (b) {
        struct JsonBlock *next = b->next;
        free(b);
        b = next;
    }
    doc->blocks = NULL;
    doc->root = NULL;
}

const JsonValue *json_get(const JsonValue *v, const char *key)
{
    if (!v || v->type != JSON_OBJECT) return NULL;
    for (int i = 0; i < v->n; i++)
        if (strcmp(v->items[i].key, key) == 0) return &v->items[i];
    return NULL;
}

const JsonValue *json_at(const JsonValue *v, int i)
{
    if (!v || v->type != JSON_ARRAY || i < 0 || i >= v->n) return NULL;
    return &v->items[i];
}

int json_len(const JsonValue *v)
{
    return v && v->type == JSON_ARRAY ? v->n : -1;
}

double json_num_or(const JsonValue *v, double fallback)
{
    return v && v->type == JSON_NUMBER ? v->number : fallback;
}

int json_matrix(double *out, const JsonValue *v, int rows, int cols)
{
    if (json_len(v) != rows) return -1;
    for (int r = 0; r < rows; r++) {
        const JsonValue *row = &v->items[r];
        if (json_len(row) != cols) return -1;
        for (int c = 0; c < cols; c++) {
            if (row->items[c].type != JSON_NUMBER) return -1;
            out[r * cols + c] = row->items[c].number;
        }
    }
    return 0;
}
