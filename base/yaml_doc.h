/* yaml_doc.h: reading a parsed YAML document (libyaml's document API) with errors that name
 * file:line:column, for the small YAML formats that are not run configs (sweep files, claim
 * files). Run configs go through the key tables (base/keys.h). */
#ifndef SINKLAB_YAML_DOC_H
#define SINKLAB_YAML_DOC_H

#include <stddef.h>
#include <yaml.h>

typedef struct {
    yaml_document_t doc;
    const char *path;
    char *err;
    size_t n_err;
} YamlDoc;

/* Records "path:line:col: message" in x->err; returns -1. */
int yaml_doc_fail(YamlDoc *x, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
yaml_node_t *yaml_doc_node(YamlDoc *x, int id);
/* A scalar that fits cap bytes into out ("what: expected a single value" otherwise). */
int yaml_doc_text(YamlDoc *x, const yaml_node_t *n, const char *what, char *out, size_t cap);

#endif
