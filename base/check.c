/* check.c: the checked allocators and the internal-error exit (check.h). */
#include "base/check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void sl_die(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "sinklab: internal error at %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

void sl_errf(char *err, size_t n_err, const char *fmt, ...)
{
    if (!err || !n_err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n_err, fmt, ap);
    va_end(ap);
}

void *sl_xmalloc(size_t n, const char *file, int line)
{
    void *p = malloc(n ? n : 1);
    if (!p) sl_die(file, line, "out of memory allocating %zu bytes", n);
    return p;
}

void *sl_xcalloc(size_t n, size_t size, const char *file, int line)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) sl_die(file, line, "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *sl_xrealloc(void *p, size_t n, const char *file, int line)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) sl_die(file, line, "out of memory reallocating to %zu bytes", n);
    return q;
}
