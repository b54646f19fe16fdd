/* jsonw.h: a tiny JSON writer for metrics.jsonl lines and probe files. It builds one document in a
 * growable buffer that is reused across documents (no allocation once warm).
 *
 * The metrics contract is "a metric not measured is absent, never 0, NaN or null", so the writer
 * never emits a non-finite number: the keyed writers (jsonw_key_number, jsonw_key_floats, ...)
 * omit the whole member and return 1, which the caller may ignore (absent = not measured) or act
 * on. A bare number inside an array cannot be omitted without shifting indices, so a non-finite one
 * writes nothing and marks the document failed (JSONW_ERR_NONFINITE): write numeric arrays with
 * the keyed array writers, which check every element before writing any.
 *
 * Numbers are float32 quantities: each is written as the shortest of %.6g .. %.9g that reads back to
 * the same float (so floats round-trip exactly); counts use jsonw_key_int / jsonw_int. */
#ifndef SINKLAB_JSONW_H
#define SINKLAB_JSONW_H

#include <stddef.h>
#include <stdio.h>

#define JSONW_MAX_DEPTH 32

typedef enum {
    JSONW_OK = 0,
    JSONW_ERR_NONFINITE, /* a bare non-finite number in an array */
    JSONW_ERR_USAGE,     /* key outside an object, value inside one without a key, bad nesting */
    JSONW_ERR_MEMORY
} JsonwError;

typedef struct {
    char *buf;
    size_t len, cap;
    int depth;
    int started;                          /* a top-level value has been begun */
    unsigned char is_object[JSONW_MAX_DEPTH];
    unsigned char has_items[JSONW_MAX_DEPTH];
    JsonwError error;                     /* sticky until jsonw_reset */
} JsonWriter;

void jsonw_init(JsonWriter *w);
/* Starts a new document, keeping the buffer. */
void jsonw_reset(JsonWriter *w);
void jsonw_free(JsonWriter *w);

/* Containers as values (the top-level value, or an array element). */
void jsonw_object_begin(JsonWriter *w);
void jsonw_object_end(JsonWriter *w);
void jsonw_array_begin(JsonWriter *w);
void jsonw_array_end(JsonWriter *w);
/* Containers as members of the current object. */
void jsonw_key_object_begin(JsonWriter *w, const char *key);
void jsonw_key_array_begin(JsonWriter *w, const char *key);

/* Members of the current object. Number writers return 0 if written, 1 if omitted (non-finite). */
int jsonw_key_number(JsonWriter *w, const char *key, double x);
void jsonw_key_int(JsonWriter *w, const char *key, long long x);
void jsonw_key_string(JsonWriter *w, const char *key, const char *s);
void jsonw_key_bool(JsonWriter *w, const char *key, int b);
/* A numeric array member of any rank: x holds prod(shape) values row-major and is written as
 * nested arrays of shape[0] x ... x shape[ndim-1]. If any value is non-finite nothing is written
 * and 1 is returned. */
int jsonw_key_floats(JsonWriter *w, const char *key, const float *x, const int *shape, int ndim);
int jsonw_key_doubles(JsonWriter *w, const char *key, const double *x, const int *shape, int ndim);
void jsonw_key_ints(JsonWriter *w, const char *key, const int *x, const int *shape, int ndim);

/* Array elements. A non-finite x writes nothing and sets JSONW_ERR_NONFINITE. */
void jsonw_number(JsonWriter *w, double x);
void jsonw_int(JsonWriter *w, long long x);
void jsonw_string(JsonWriter *w, const char *s);

JsonwError jsonw_error(const JsonWriter *w);
/* The finished document (NUL-terminated) and its length, or NULL if it is incomplete (open
 * containers) or failed. */
const char *jsonw_text(const JsonWriter *w, size_t *len);
/* Writes the finished document and a '\n' with one fwrite (a metrics.jsonl line stays whole) and
 * flushes. Returns 0, or -1 if the document is incomplete/failed or the write failed. */
int jsonw_write_line(const JsonWriter *w, FILE *f);

#endif
