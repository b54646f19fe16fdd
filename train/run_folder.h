/* run_folder.h: the run folder's life: whether a folder exists and holds a run, and creating it
 * (replacing an earlier run on request) with the resolved config inside. */
#ifndef SINKLAB_RUN_FOLDER_H
#define SINKLAB_RUN_FOLDER_H

#include <stddef.h>
#include "train/config.h"

int run_folder_exists(const char *dir);
/* A folder a run left (config.yaml, metrics.jsonl or checkpoints/ inside) or an empty one:
 * `--out . --force` must never wipe a source tree. */
int run_folder_is_run(const char *dir);
/* mkdir -p DIR (after removing it when replace and it holds a run) and writes DIR/config.yaml
 * atomically. Returns 0, or -1 with err. */
int run_folder_prepare(const char *dir, int replace, const Config *c, char *err, size_t n);

#endif
