/* fuzz_util.h: shared by the libFuzzer harnesses (README "Reliability"): the input written to a
 * scratch file for readers that take a path. */
#ifndef SINKLAB_FUZZ_UTIL_H
#define SINKLAB_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* A per-process path in /dev/shm (or /tmp) ending in suffix, holding data. */
static inline const char *fuzz_write_file(const uint8_t *data, size_t n, const char *suffix)
{
    static char path[256];
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, sizeof path, "%s/sinklab-fuzz-%ld%s", dir, (long)getpid(), suffix);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(data, 1, n, f) != n) abort();
    if (fclose(f) != 0) abort();
    return path;
}

/* data as a NUL-terminated string, cut at its first NUL. */
static inline char *fuzz_string(const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) abort();
    for (size_t i = 0; i < n; i++) s[i] = (char)data[i];
    s[n] = 0;
    return s;
}

#endif
