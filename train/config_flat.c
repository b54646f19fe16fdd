/* config_flat.c: Config -> flat key/value pairs, through the config table (config_value), so
 * the report's header and the comparison of runs (analysis/runset.h) see exactly the keys and
 * values config.yaml holds without a second YAML reader. */
#include "train/config_flat.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* A part of a written key (data.prefix_len.max of data.prefix_len), as opposed to an alias:
 * parts stay readable on their own, so runs can be compared by them. */
static int is_part_of_written_key(const char *key)
{
    char parent[128];
    const char *dot = strrchr(key, '.');
    if (!dot || (size_t)(dot - key) >= sizeof parent) return 0;
    snprintf(parent, sizeof parent, "%.*s", (int)(dot - key), key);
    return config_key_written(parent);
}

void config_flatten(const Config *c, KeyValueList *out)
{
    char val[20000];
    const char *key;
    for (size_t i = 0; (key = config_key_name(i)); i++) {
        if (!config_key_written(key) && !is_part_of_written_key(key)) continue;
        /* config_write names a single path data.path, so a sweep over data.path finds its key */
        if (!strcmp(key, "data.paths") && c->data.n_paths == 1) kv_put(out, "data.path", c->data.paths[0]);
        else if (config_value(c, key, val, sizeof val) == 0) kv_put(out, key, val);
    }
}

int config_flatten_run(const char *run_dir, KeyValueList *out, char *err, size_t n_err)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/config.yaml", run_dir);
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT ? 0 : (snprintf(err, n_err, "%s: %s", path, strerror(errno)), -1);
    fclose(f);
    /* config.yaml is written fully resolved (derived values included): loading it is enough */
    Config c;
    if (config_load(&c, path, err, n_err) != 0) return -1;
    config_flatten(&c, out);
    return 0;
}
