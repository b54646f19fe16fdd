/* yaml_depth.c: the linear nesting pre-scan (see yaml_depth.h). It may over-count in exotic
 * files (brackets inside multi-line quoted scalars); it never under-counts a real nesting. */
#include "base/yaml_depth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int indent[YAML_MAX_DEPTH + 2];   /* block indentation stack */
    int n_indent;
    int flow;                         /* open [ and { */
    char quote;                       /* inside '...' or "..." (0 if not) */
} Scan;

static int too_deep(const char *name, size_t line, int depth, int max, char *err, size_t n_err)
{
    snprintf(err, n_err, "%s:%zu: nesting deeper than %d levels (%d here); a sinklab config "
             "nests 3", name, line, max, depth);
    return -1;
}

/* One line [p, e): its block depth from the indentation, then its flow brackets. */
static int scan_line(Scan *s, const char *p, const char *e, size_t line, const char *name,
                     int max, char *err, size_t n_err)
{
    const char *q = p;
    int compact = 0;
    if (!s->quote && !s->flow) {
        while (q < e && *q == ' ') q++;
        if (q == e || *q == '#') return 0;   /* blank or comment line */
        int col = (int)(q - p);
        while (s->n_indent > 0 && s->indent[s->n_indent - 1] >= col) s->n_indent--;
        if (s->n_indent <= max) s->indent[s->n_indent++] = col;
        /* "- - - x" nests one level per dash on a single line */
        while (q + 1 < e && (*q == '-' || *q == '?') && q[1] == ' ') {
            compact++;
            q += 2;
            while (q < e && *q == ' ') q++;
        }
    }
    int depth = s->n_indent + compact;
    if (depth + s->flow > max) return too_deep(name, line, depth + s->flow, max, err, n_err);
    char prev = ':';   /* last non-blank character: a quote opens a scalar only after :-[{,? */
    for (; q < e; q++) {
        char c = *q;
        if (s->quote) {
            if (c == s->quote) s->quote = 0;
            else if (c == '\\' && s->quote == '"' && q + 1 < e) q++;
            prev = c;
            continue;
        }
        if (c == ' ' || c == '\t') continue;
        if ((c == '"' || c == '\'') && strchr(":-[{,?", prev)) {
            s->quote = c;
        } else if (c == '#' && (q == p || q[-1] == ' ' || q[-1] == '\t')) {
            break;
        } else if (c == '[' || c == '{') {
            if (depth + ++s->flow > max) return too_deep(name, line, depth + s->flow, max, err, n_err);
        } else if ((c == ']' || c == '}') && s->flow > 0) {
            s->flow--;
        }
        prev = c;
    }
    /* a single-quoted scalar cannot continue a line unless it is a multi-line flow scalar;
     * a stray quote in plain text (it's) must not hide the rest of the file */
    if (s->quote == '\'' && !s->flow) s->quote = 0;
    return 0;
}

int yaml_depth_check(const char *text, size_t n, const char *name, int max_depth, char *err,
                     size_t n_err)
{
    Scan s = {.n_indent = 0};
    size_t line = 1;
    const char *p = text, *end = text + n;
    if (max_depth > YAML_MAX_DEPTH) max_depth = YAML_MAX_DEPTH;
    while (p < end) {
        const char *e = p;
        while (e < end && *e != '\n') e++;
        if (scan_line(&s, p, e, line, name, max_depth, err, n_err)) return -1;
        p = e + 1;
        line++;
    }
    return 0;
}

int yaml_read_checked(const char *path, const char *what, size_t max_mb, char **out, size_t *len,
                      char *err, size_t n_err)
{
    size_t max_bytes = max_mb << 20;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, n_err, "%s: cannot open %s: %s", path, what, strerror(errno));
        return -1;
    }
    char *buf = malloc(max_bytes + 2);
    size_t n = buf ? fread(buf, 1, max_bytes + 1, f) : 0;
    int bad = !buf || ferror(f), e = errno;
    fclose(f);
    const char *nul = buf ? memchr(buf, 0, n) : NULL;
    if (bad) snprintf(err, n_err, "%s: cannot read %s: %s", path, what, strerror(e));
    else if (n > max_bytes) snprintf(err, n_err, "%s: larger than %zu MB; expected a YAML %s", path, max_mb, what);
    else if (nul) snprintf(err, n_err, "%s: NUL byte at offset %zu; expected YAML text", path, (size_t)(nul - buf));
    if (bad || n > max_bytes || nul) {
        free(buf);
        return -1;
    }
    buf[n] = 0;
    if (yaml_depth_check(buf, n, path, YAML_MAX_DEPTH, err, n_err)) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}
