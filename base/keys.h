/* keys.h: the vocabulary every layer uses to declare its config keys. A layer owns a table of
 * KeyDef rows (one per key: type, range, default's meaning, offset in the layer's own struct);
 * train/config.c composes the tables into the whole config and does the YAML walking, --set,
 * writing, diffing and the README reference. Adding a key = one struct field + one row.
 * The value parsers and error formatting here are shared, so every layer's special keys report
 * errors the same way ("file:line:col: key: what was expected, got what"). */
#ifndef SINKLAB_KEYS_H
#define SINKLAB_KEYS_H

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <yaml.h>

typedef enum { KT_INT, KT_U64, KT_FLOAT, KT_BOOL, KT_ENUM, KT_STRING, KT_SPECIAL } KeyType;

enum {
    KEY_AUTO = 1,       /* accepts `auto` (the sentinel: int 0, float NaN; specials decide) */
    KEY_NOWRITE = 2,    /* an alias or a part of another key: never written on its own */
    KEY_LO_OPEN = 4,    /* float range excludes lo */
    KEY_HI_OPEN = 8,    /* float range excludes hi */
};
#define KEY_BIG INT_MAX  /* "unbounded" for integer ranges */

/* The loading context a parser reports into. Errors accumulate (up to KEY_MAX_ERRORS), so one
 * pass reports every independent problem; err holds them one per line. */
#define KEY_MAX_ERRORS 20
typedef struct {
    yaml_document_t *doc;
    const char *name;         /* file name for file:line:col, or NULL */
    const char *set_arg;      /* the --set argument, or NULL */
    char *err;
    size_t n_err;
    int n_errors;
} KeyCtx;

typedef struct KeyDef KeyDef;
/* Special keys parse the node into their section struct; they return 0 or -1 after key_error. */
typedef int (*KeyParseFn)(KeyCtx *x, const KeyDef *d, yaml_node_t *v, void *section);
typedef void (*KeyFormatFn)(char *out, size_t n, const void *section);

struct KeyDef {
    const char *key;             /* full dotted name, e.g. "model.n_layer" */
    KeyType type;
    size_t off;                  /* offset in the layer's struct (its section) */
    double lo, hi;               /* inclusive unless KEY_*_OPEN; KEY_BIG / INFINITY unbounded */
    int flags;
    const char *const *names;    /* KT_ENUM: NULL-terminated, indexed by the enum's value */
    KeyParseFn parse;            /* KT_SPECIAL */
    KeyFormatFn format;          /* KT_SPECIAL */
    size_t cap;                  /* KT_STRING buffer size */
    const char *type_doc;        /* KT_SPECIAL: the type column of the reference */
    const char *doc;
};

/* One layer's keys: they all live in one struct of that layer. */
typedef struct {
    const KeyDef *keys;
    size_t n_keys;
} KeyTable;

/* Row constructors; S is the layer's struct type. */
#define KEY_OFF(S, f) offsetof(S, f)
#define KEY_INT(S, k, f, lo, hi, doc) {k, KT_INT, KEY_OFF(S, f), lo, hi, 0, NULL, NULL, NULL, 0, NULL, doc}
#define KEY_INT_AUTO(S, k, f, lo, hi, doc) {k, KT_INT, KEY_OFF(S, f), lo, hi, KEY_AUTO, NULL, NULL, NULL, 0, NULL, doc}
#define KEY_U64(S, k, f, doc) {k, KT_U64, KEY_OFF(S, f), 0, 0, 0, NULL, NULL, NULL, 0, NULL, doc}
#define KEY_FLOAT(S, k, f, lo, hi, fl, doc) {k, KT_FLOAT, KEY_OFF(S, f), lo, hi, fl, NULL, NULL, NULL, 0, NULL, doc}
#define KEY_BOOL(S, k, f, doc) {k, KT_BOOL, KEY_OFF(S, f), 0, 1, 0, NULL, NULL, NULL, 0, NULL, doc}
#define KEY_ENUM(S, k, f, names, doc) {k, KT_ENUM, KEY_OFF(S, f), 0, 0, 0, names, NULL, NULL, 0, NULL, doc}
#define KEY_STRING(S, k, f, doc) {k, KT_STRING, KEY_OFF(S, f), 0, 0, 0, NULL, NULL, NULL, sizeof(((S *)0)->f), NULL, doc}
#define KEY_SPECIAL(k, fl, p, fm, type, doc) {k, KT_SPECIAL, 0, 0, 0, fl, NULL, p, fm, 0, type, doc}
#define KEY_TABLE(rows) {rows, sizeof rows / sizeof rows[0]}

/* Records "file:line:col: key: msg" (or "--set ARG: key: msg") in x. */
void key_error(KeyCtx *x, const yaml_node_t *node, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Node helpers: null/~/empty plain scalars are "nothing"; scalar() is NULL for non-scalars. */
int key_is_null(const yaml_node_t *v);
const char *key_scalar(const yaml_node_t *v);
const char *key_shown(const yaml_node_t *v, char *buf, size_t n);   /* 'text' or its kind */
int key_is_auto(const yaml_node_t *v, const KeyDef *d);
yaml_node_t *key_node(KeyCtx *x, int index);                         /* a child node */
/* The items of list node v into items[] (at most max; one more is an error "at most MAX WHAT"
 * at that item). Returns the count, or -1. */
int key_list(KeyCtx *x, const char *key, yaml_node_t *v, yaml_node_t **items, int max,
             const char *what);

/* Value parsers that report through x; 0 or -1. Integers accept integral floats (1e4). */
int key_parse_int(KeyCtx *x, const char *key, yaml_node_t *v, double lo, double hi, int flags,
                  int *out);
int key_parse_float(KeyCtx *x, const char *key, yaml_node_t *v, double lo, double hi, int flags,
                    float *out);
int key_parse_bool_text(const char *s, int *out);
/* One of names (by index) into *out, with a "did you mean" for near misses. */
int key_parse_enum(KeyCtx *x, const char *key, yaml_node_t *v, const char *const *names, int *out);

/* Applies any row to its section struct (specials through their parse function). */
int key_apply(KeyCtx *x, const KeyDef *d, yaml_node_t *v, void *section);
/* The value as written in a config file ("auto", "1.0e-08", "[0.3, 0.5, 0.8]", ...). */
void key_format(char *out, size_t n, const KeyDef *d, const void *section);
void key_format_float(char *out, size_t n, float f);
void key_format_string(char *out, size_t n, const char *s);
/* The type column of the reference ("a positive integer", "`a` \| `b`", ...). */
void key_describe(char *out, size_t n, const KeyDef *d);
void key_describe_enum(char *out, size_t n, const char *const *names);
/* A row's range check for structs built in code: 0, or -1 with "key: expected .., got .." */
int key_check_range(const KeyDef *d, const void *section, char *msg, size_t n);

/* Optimal string alignment distance (a transposition counts 1): n_haed -> n_head is 1. */
int key_edit_distance(const char *a, const char *b);
/* Number of names in a NULL-terminated list. */
int key_count_names(const char *const *names);

#endif
