/* yaml_depth.h: a nesting-depth limit checked on the raw text before libyaml sees it. libyaml's
 * scanner is quadratic in the nesting depth (a 100,000-deep file took 23-64 s before it was
 * refused), so the depth is measured by a linear pre-scan: flow brackets outside quotes and
 * comments, plus block nesting from the indentation stack and compact "- " entries. */
#ifndef SINKLAB_YAML_DEPTH_H
#define SINKLAB_YAML_DEPTH_H

#include <stddef.h>

#define YAML_MAX_DEPTH 64

/* 0 when text nests at most max_depth levels; else -1 with "name:line: ..." in err. */
int yaml_depth_check(const char *text, size_t n, const char *name, int max_depth, char *err,
                     size_t n_err);

/* Reads a whole YAML file (what: "config", "sweep file", ...) for a parser: refused when over
 * max_mb MB, holding a NUL byte, or
 * nesting deeper than YAML_MAX_DEPTH, so libyaml never sees a device, a binary, a huge input or
 * a nesting bomb. *out is malloc'd and NUL-terminated. 0, or -1 with "path: why" in err. */
int yaml_read_checked(const char *path, const char *what, size_t max_mb, char **out, size_t *len,
                      char *err, size_t n_err);

#endif
