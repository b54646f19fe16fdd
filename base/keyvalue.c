/* keyvalue.c: the flat key/value list (keyvalue.h). */
#include "base/keyvalue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/check.h"

void kv_put(KeyValueList *l, const char *key, const char *val)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->items = xrealloc(l->items, (size_t)l->cap * sizeof *l->items);
    }
    snprintf(l->items[l->n].key, sizeof l->items[l->n].key, "%s", key);
    snprintf(l->items[l->n].val, sizeof l->items[l->n].val, "%s", val);
    l->n++;
}

const char *kv_get(const KeyValueList *l, const char *key)
{
    if (!l) return NULL;
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->items[i].key, key) == 0) return l->items[i].val;
    return NULL;
}

void kv_free(KeyValueList *l)
{
    free(l->items);
    memset(l, 0, sizeof *l);
}
