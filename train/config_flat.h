/* config_flat.h: a Config as flat "dotted.key" -> value pairs, the form the report takes (the
 * analysis layer may not include train/, and reads no YAML itself). */
#ifndef SINKLAB_CONFIG_FLAT_H
#define SINKLAB_CONFIG_FLAT_H

#include "base/keyvalue.h"
#include "train/config.h"

/* Appends every key config_write writes, under the name and in the order it writes it, with its
 * value as config_write prints it (strings unquoted) to out. */
void config_flatten(const Config *c, KeyValueList *out);

/* Reads a run folder's config.yaml into out for its report or a comparison (a RunConfigReader). A missing or unreadable file leaves
 * out empty (the report then says the model details are unknown) and, unless missing, returns
 * -1 with err naming the file and the problem. */
int config_flatten_run(const char *run_dir, KeyValueList *out, char *err, size_t n_err);

#endif
