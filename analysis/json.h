/* json.h: a small, strict JSON reader (RFC 8259) for metrics.jsonl lines and probe files.
 * A parse builds a read-only tree in one arena owned by a JsonDoc; errors name file:line:col and
 * what was expected. Strict: no NaN/Infinity, no trailing commas, no leading zeros, no control
 * characters in strings, no duplicate keys, nesting at most JSON_MAX_DEPTH. */
#ifndef SINKLAB_JSON_H
#define SINKLAB_JSON_H

#include <stddef.h>

#define JSON_MAX_DEPTH 64

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } JsonType;

typedef struct JsonValue JsonValue;
struct JsonValue {
    JsonType type;
    int n;                  /* array/object: element count; string: byte length */
    double number;          /* JSON_NUMBER; JSON_BOOL: 0 or 1 */
    const char *str;        /* JSON_STRING: UTF-8, NUL-terminated (may hold \u0000 escapes) */
    const JsonValue *items; /* JSON_ARRAY / JSON_OBJECT: n elements in document order */
    const char *key;        /* the key of this element when it is an object member, else NULL */
};

struct JsonBlock;
typedef struct {
    const JsonValue *root;
    struct JsonBlock *blocks; /* arena: freed as a whole by json_free */
} JsonDoc;

/* Parses text[0..len) as exactly one JSON value (surrounding whitespace allowed). file and
 * first_line only name the place in error messages ("metrics.jsonl:12:34: expected ..."); lines
 * inside text are counted from first_line. Returns 0, or -1 with err set (doc left empty). */
int json_parse(JsonDoc *doc, const char *text, size_t len, const char *file, int first_line,
               char *err, size_t n_err);
/* Reads and parses a whole file. Returns 0 or -1 with err naming the file. */
int json_parse_file(JsonDoc *doc, const char *path, char *err, size_t n_err);
void json_free(JsonDoc *doc);

/* Member of an object by key; NULL when v is NULL, not an object, or has no such key. */
const JsonValue *json_get(const JsonValue *v, const char *key);
/* Element i of an array; NULL when v is NULL, not an array, or i is out of range. */
const JsonValue *json_at(const JsonValue *v, int i);
/* Array length, or -1 when v is not an array. */
int json_len(const JsonValue *v);
/* The number held by v, or fallback when v is NULL or not a number. */
double json_num_or(const JsonValue *v, double fallback);
/* Copies a numeric array of shape (rows, cols) (an array of arrays) into out[rows*cols];
 * returns 0, or -1 if v does not have exactly that shape with numbers only. */
int json_matrix(double *out, const JsonValue *v, int rows, int cols);

#endif
