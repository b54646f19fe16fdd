/* check.h: what every layer shares for programming errors and allocation. A failed check or a
 * failed allocation is a bug or an exhausted machine, never bad user input: it stops the program
 * with the source line. User errors are reported by the layer that knows the file and key. */
#ifndef SINKLAB_CHECK_H
#define SINKLAB_CHECK_H

#include <stddef.h>

/* Never returns: prints "sinklab: internal error at FILE:LINE: ..." and exits 1. */
void sl_die(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
#define SL_CHECK(cond, ...) \
    do { if (!(cond)) sl_die(__FILE__, __LINE__, __VA_ARGS__); } while (0)

/* User-facing errors are returned, not printed: functions that can fail on input take
 * (char *err, size_t n_err) and fill it with sl_errf ("file:line: what was expected"). */
void sl_errf(char *err, size_t n_err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void *sl_xmalloc(size_t n, const char *file, int line);
void *sl_xcalloc(size_t n, size_t size, const char *file, int line);
void *sl_xrealloc(void *p, size_t n, const char *file, int line);
#define xmalloc(n) sl_xmalloc((n), __FILE__, __LINE__)
#define xcalloc(n, s) sl_xcalloc((n), (s), __FILE__, __LINE__)
#define xrealloc(p, n) sl_xrealloc((p), (n), __FILE__, __LINE__)

#endif
