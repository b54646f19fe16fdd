/* keys.c: value parsing, formatting and error reporting for config key tables (keys.h). */
#include "base/keys.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- errors */

void key_error(KeyCtx *x, const yaml_node_t *node, const char *key, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    x->n_errors++;
    if (!x->err || !x->n_err || x->n_errors > KEY_MAX_ERRORS) return;
    size_t used = x->n_errors > 1 ? strlen(x->err) : 0;
    if (used + 2 >= x->n_err) return;
    char *out = x->err + used;
    size_t room = x->n_err - used;
    const char *nl = x->n_errors > 1 ? "\n" : "";
    if (x->set_arg)
        snprintf(out, room, "%s--set %s: %s: %s", nl, x->set_arg, key, msg);
    else
        snprintf(out, room, "%s%s:%zu:%zu: %s: %s", nl, x->name ? x->name : "config",
                 node ? node->start_mark.line + 1 : 1, node ? node->start_mark.column + 1 : 1,
                 key, msg);
}

/* ---------------------------------------------------------------- nodes */

int key_is_null(const yaml_node_t *v)
{
    if (v->type != YAML_SCALAR_NODE || v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *s = (const char *)v->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

const char *key_scalar(const yaml_node_t *v)
{
    return v->type == YAML_SCALAR_NODE && !key_is_null(v) ? (const char *)v->data.scalar.value
                                                          : NULL;
}

const char *key_shown(const yaml_node_t *v, char *buf, size_t n)
{
    if (v->type == YAML_MAPPING_NODE) return "a mapping";
    if (v->type == YAML_SEQUENCE_NODE) {
        snprintf(buf, n, "a list of %d", (int)(v->data.sequence.items.top -
                                               v->data.sequence.items.start));
        return buf;
    }
    if (key_is_null(v)) return "nothing";
    snprintf(buf, n, "'%.200s'", (const char *)v->data.scalar.value);
    return buf;
}

int key_is_auto(const yaml_node_t *v, const KeyDef *d)
{
    const char *s = key_scalar(v);
    return (d->flags & KEY_AUTO) && s && !strcmp(s, "auto");
}

yaml_node_t *key_node(KeyCtx *x, int index) { return yaml_document_get_node(x->doc, index); }

int key_list(KeyCtx *x, const char *key, yaml_node_t *v, yaml_node_t **items, int max,
             const char *what)
{
    int n = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, n++) {
        yaml_node_t *e = key_node(x, *it);
        if (n >= max) {
            char item_key[160];
            snprintf(item_key, sizeof item_key, "%s[%d]", key, n);
            key_error(x, e, item_key, "at most %d %s", max, what);
            return -1;
        }
        items[n] = e;
    }
    return n;
}

int key_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    int d[64][64];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

int key_count_names(const char *const *names)
{
    int n = 0;
    while (names[n]) n++;
    return n;
}

/* ---------------------------------------------------------------- scalars */

static int parse_ll(const char *s, long long *out)
{
    if (!s || !(isdigit((unsigned char)s[0]) || ((s[0] == '-' || s[0] == '+') &&
                                                 isdigit((unsigned char)s[1]))))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    if (!s || !*s || isspace((unsigned char)s[0])) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int key_parse_bool_text(const char *s, int *out)
{
    if (!s) return -1;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) { *out = 1; return 0; }
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) { *out = 0; return 0; }
    return -1;
}

static void describe_int(char *out, size_t n, double lo, double hi, int flags)
{
    const char *a = (flags & KEY_AUTO) ? " or auto" : "";
    if (hi >= KEY_BIG && lo == 1) snprintf(out, n, "a positive integer%s", a);
    else if (hi >= KEY_BIG && lo == 0) snprintf(out, n, "a non-negative integer%s", a);
    else if (hi >= KEY_BIG) snprintf(out, n, "an integer >= %.0f%s", lo, a);
    else if (lo == 1) snprintf(out, n, "a positive integer (at most %.0f)%s", hi, a);
    else snprintf(out, n, "an integer in [%.0f, %.0f]%s", lo, hi, a);
}

static void describe_float(char *out, size_t n, double lo, double hi, int flags)
{
    const char *a = (flags & KEY_AUTO) ? " or auto" : "";
    if (isinf(lo) && isinf(hi)) snprintf(out, n, "a number%s", a);
    else if (isinf(hi) && lo == 0) snprintf(out, n, "a %s number%s",
                                            (flags & KEY_LO_OPEN) ? "positive" : "non-negative", a);
    else if (isinf(hi)) snprintf(out, n, "a number %s %g%s", (flags & KEY_LO_OPEN) ? ">" : ">=", lo, a);
    else snprintf(out, n, "a number in %c%g, %g%c%s", (flags & KEY_LO_OPEN) ? '(' : '[', lo, hi,
                  (flags & KEY_HI_OPEN) ? ')' : ']', a);
}

void key_describe_enum(char *out, size_t n, const char *const *names)
{
    size_t k = 0;
    out[0] = 0;
    for (int i = 0; names[i] && k < n; i++)
        k += (size_t)snprintf(out + k, n - k, "%s%s", i ? ", " : "", names[i]);
}

int key_parse_int(KeyCtx *x, const char *key, yaml_node_t *v, double lo, double hi, int flags,
                  int *out)
{
    long long val;
    double dv;
    const char *s = key_scalar(v);
    int ok = !parse_ll(s, &val);
    /* 1e4 or 2000.0: an integral number written as a float is the integer it names. */
    if (!ok && !parse_double(s, &dv) && dv == floor(dv) && fabs(dv) < 9e18) {
        val = (long long)dv;
        ok = 1;
    }
    if (!ok || val < lo || val > hi) {
        char want[128], buf[256];
        describe_int(want, sizeof want, lo, hi, flags);
        key_error(x, v, key, "expected %s, got %s", want, key_shown(v, buf, sizeof buf));
        return -1;
    }
    *out = (int)val;
    return 0;
}

int key_parse_float(KeyCtx *x, const char *key, yaml_node_t *v, double lo, double hi, int flags,
                    float *out)
{
    double val;
    int ok = !parse_double(key_scalar(v), &val);
    if (ok) ok = (flags & KEY_LO_OPEN) ? val > lo : val >= lo;
    if (ok) ok = (flags & KEY_HI_OPEN) ? val < hi : val <= hi;
    if (ok) ok = isfinite((float)val);
    if (!ok) {
        char want[128], buf[256];
        describe_float(want, sizeof want, lo, hi, flags);
        key_error(x, v, key, "expected %s, got %s", want, key_shown(v, buf, sizeof buf));
        return -1;
    }
    *out = strtof(key_scalar(v), NULL);
    return 0;
}

int key_parse_enum(KeyCtx *x, const char *key, yaml_node_t *v, const char *const *names, int *out)
{
    char want[512], buf[256];
    const char *s = key_scalar(v);
    for (int i = 0; s && names[i]; i++)
        if (!strcmp(s, names[i])) { *out = i; return 0; }
    key_describe_enum(want, sizeof want, names);
    const char *close = NULL;
    for (int i = 0; s && names[i]; i++)
        if (key_edit_distance(s, names[i]) <= 2) { close = names[i]; break; }
    if (close)
        key_error(x, v, key, "expected one of %s; got %s (did you mean %s?)", want,
                  key_shown(v, buf, sizeof buf), close);
    else
        key_error(x, v, key, "expected one of %s; got %s", want, key_shown(v, buf, sizeof buf));
    return -1;
}

/* ---------------------------------------------------------------- rows */

int key_apply(KeyCtx *x, const KeyDef *d, yaml_node_t *v, void *section)
{
    void *p = (char *)section + d->off;
    char buf[256];
    if (d->type == KT_SPECIAL) return d->parse(x, d, v, section);
    if (key_is_auto(v, d)) {
        if (d->type == KT_INT) *(int *)p = 0;
        else if (d->type == KT_U64) *(uint64_t *)p = 0;
        else *(float *)p = NAN;
        return 0;
    }
    switch (d->type) {
    case KT_INT:
        return key_parse_int(x, d->key, v, d->lo, d->hi, d->flags, (int *)p);
    case KT_FLOAT:
        return key_parse_float(x, d->key, v, d->lo, d->hi, d->flags, (float *)p);
    case KT_U64: {
        const char *s = key_scalar(v);
        char *end;
        errno = 0;
        unsigned long long val = s && isdigit((unsigned char)s[0]) ? strtoull(s, &end, 10) : 0;
        if (!s || !isdigit((unsigned char)s[0]) || *end || errno) {
            key_error(x, v, d->key, "expected a non-negative integer (64-bit), got %s",
                      key_shown(v, buf, sizeof buf));
            return -1;
        }
        *(uint64_t *)p = (uint64_t)val;
        return 0;
    }
    case KT_BOOL:
        if (key_parse_bool_text(key_scalar(v), (int *)p)) {
            key_error(x, v, d->key, "expected true or false, got %s", key_shown(v, buf, sizeof buf));
            return -1;
        }
        return 0;
    case KT_ENUM:
        return key_parse_enum(x, d->key, v, d->names, (int *)p);
    case KT_STRING: {
        if (v->type != YAML_SCALAR_NODE) {
            key_error(x, v, d->key, "expected a string, got %s", key_shown(v, buf, sizeof buf));
            return -1;
        }
        const char *s = key_is_null(v) ? "" : (const char *)v->data.scalar.value;
        if (strlen(s) >= d->cap) {
            key_error(x, v, d->key, "longer than %zu characters", d->cap - 1);
            return -1;
        }
        strncpy((char *)p, s, d->cap);   /* zero-fills the rest: round trips compare equal */
        return 0;
    }
    default:
        return -1;
    }
}

/* The shortest text that reads back to the same float, in a form YAML 1.1 readers (PyYAML)
 * also take for a float: 1.0e-08, never 1e-08. */
void key_format_float(char *out, size_t n, float f)
{
    if (isnan(f)) {
        snprintf(out, n, "auto");
        return;
    }
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(out, n, "%.*g", prec, (double)f);
        if (strtof(out, NULL) == f) break;
    }
    /* Integral values read better in full: 10000.0, not 1e+04. */
    if (strchr(out, 'e') && fabsf(f) < 1e9f && f == truncf(f)) snprintf(out, n, "%.0f", (double)f);
    char *e = strchr(out, 'e');
    if (!e && !strchr(out, '.') && strlen(out) + 3 < n) strcat(out, ".0");
    if (e && !strchr(out, '.') && strlen(out) + 3 < n) {
        memmove(e + 2, e, strlen(e) + 1);
        e[0] = '.';
        e[1] = '0';
    }
}

void key_format_string(char *out, size_t n, const char *s)
{
    size_t k = 0;
    if (n < 3) return;
    out[k++] = '"';
    for (; *s && k + 6 < n; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') { out[k++] = '\\'; out[k++] = (char)ch; }
        else if (ch == '\n') { out[k++] = '\\'; out[k++] = 'n'; }
        else if (ch == '\t') { out[k++] = '\\'; out[k++] = 't'; }
        else if (ch < 0x20 || ch == 0x7f) k += (size_t)snprintf(out + k, n - k, "\\x%02x", ch);
        else out[k++] = (char)ch;
    }
    out[k++] = '"';
    out[k] = 0;
}

void key_format(char *out, size_t n, const KeyDef *d, const void *section)
{
    const void *p = (const char *)section + d->off;
    switch (d->type) {
    case KT_INT:
        if ((d->flags & KEY_AUTO) && *(const int *)p == 0) snprintf(out, n, "auto");
        else snprintf(out, n, "%d", *(const int *)p);
        break;
    case KT_U64:
        if ((d->flags & KEY_AUTO) && *(const uint64_t *)p == 0) snprintf(out, n, "auto");
        else snprintf(out, n, "%" PRIu64, *(const uint64_t *)p);
        break;
    case KT_FLOAT: key_format_float(out, n, *(const float *)p); break;
    case KT_BOOL: snprintf(out, n, "%s", *(const int *)p ? "true" : "false"); break;
    case KT_ENUM: {
        int v = *(const int *)p;
        snprintf(out, n, "%s", v >= 0 && v < key_count_names(d->names) ? d->names[v] : "invalid");
        break;
    }
    case KT_STRING: key_format_string(out, n, (const char *)p); break;
    case KT_SPECIAL: d->format(out, n, section); break;
    }
}

void key_describe(char *out, size_t n, const KeyDef *d)
{
    switch (d->type) {
    case KT_INT: describe_int(out, n, d->lo, d->hi, d->flags); break;
    case KT_U64:
        snprintf(out, n, "a non-negative integer (64-bit)%s", (d->flags & KEY_AUTO) ? " or auto" : "");
        break;
    case KT_FLOAT: describe_float(out, n, d->lo, d->hi, d->flags); break;
    case KT_BOOL: snprintf(out, n, "true or false"); break;
    case KT_STRING: snprintf(out, n, "string"); break;
    case KT_SPECIAL: snprintf(out, n, "%s", d->type_doc); break;
    case KT_ENUM: {
        size_t k = 0;
        out[0] = 0;
        for (int j = 0; d->names[j] && k < n; j++)
            k += (size_t)snprintf(out + k, n - k, "%s`%s`", j ? " \\| " : "", d->names[j]);
        break;
    }
    }
}

int key_check_range(const KeyDef *d, const void *section, char *msg, size_t n)
{
    const void *p = (const char *)section + d->off;
    char want[512], got[256];
    int bad = 0;
    if (d->type == KT_INT) {
        int v = *(const int *)p;
        bad = v < d->lo || v > d->hi;
        describe_int(want, sizeof want, d->lo, d->hi, 0);
    } else if (d->type == KT_FLOAT) {
        float v = *(const float *)p;
        bad = !isfinite(v) || ((d->flags & KEY_LO_OPEN) ? v <= d->lo : v < d->lo) ||
              ((d->flags & KEY_HI_OPEN) ? v >= d->hi : v > d->hi);
        describe_float(want, sizeof want, d->lo, d->hi, 0);
    } else if (d->type == KT_BOOL) {
        int v = *(const int *)p;
        bad = v != 0 && v != 1;
        snprintf(want, sizeof want, "true or false");
    } else if (d->type == KT_ENUM) {
        int v = *(const int *)p;
        if (v < 0 || v >= key_count_names(d->names)) {
            key_describe_enum(want, sizeof want, d->names);
            snprintf(msg, n, "%s: expected one of %s, got %d", d->key, want, v);
            return -1;
        }
    }
    if (bad) {
        key_format(got, sizeof got, d, section);
        snprintf(msg, n, "%s: expected %s, got %s", d->key, want, got);
        return -1;
    }
    return 0;
}
