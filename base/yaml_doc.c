/* yaml_doc.c: errors and scalar access for parsed YAML documents (yaml_doc.h). */
#include "base/yaml_doc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/check.h"

int yaml_doc_fail(YamlDoc *x, const yaml_node_t *n, const char *fmt, ...)
{
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    sl_errf(x->err, x->n_err, "%s:%zu:%zu: %s", x->path, n->start_mark.line + 1,
            n->start_mark.column + 1, what);
    return -1;
}

yaml_node_t *yaml_doc_node(YamlDoc *x, int id) { return yaml_document_get_node(&x->doc, id); }

int yaml_doc_text(YamlDoc *x, const yaml_node_t *n, const char *what, char *out, size_t cap)
{
    if (n->type != YAML_SCALAR_NODE) return yaml_doc_fail(x, n, "%s: expected a single value", what);
    const char *s = (const char *)n->data.scalar.value;
    if (strlen(s) >= cap) return yaml_doc_fail(x, n, "%s: value longer than %zu characters", what, cap - 1);
    snprintf(out, cap, "%s", s);
    return 0;
}
