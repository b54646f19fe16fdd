/* keyvalue.h: a flat list of "dotted.key" -> "value" text pairs, the form in which a layer hands
 * a run's configuration to a layer that may not include the one that parsed it (the report gets
 * the config from train/ without reading YAML itself). Values are short display text. */
#ifndef SINKLAB_KEYVALUE_H
#define SINKLAB_KEYVALUE_H

typedef struct {
    char key[96], val[128];
} KeyValue;

typedef struct {
    KeyValue *items;
    int n, cap;
} KeyValueList;

/* Appends (key, val), both truncated to their fields; the list grows as needed. */
void kv_put(KeyValueList *l, const char *key, const char *val);
/* The value of the first pair with this key, or NULL (also when l is NULL). */
const char *kv_get(const KeyValueList *l, const char *key);
void kv_free(KeyValueList *l);

#endif
