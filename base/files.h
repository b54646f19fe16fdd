/* files.h: the two filesystem helpers several commands share: mkdir -p, and the path of the
 * running sinklab binary (sweeps and reproduce start copies of it). */
#ifndef SINKLAB_FILES_H
#define SINKLAB_FILES_H

#include <stddef.h>

/* mkdir -p; 0, or -1 with errno (ENAMETOOLONG past 1000 bytes). */
int files_mkdirs(const char *path);
/* The running executable's path (/proc/self/exe) into out; 0 or -1. */
int files_self_exe(char *out, size_t n);

#endif
