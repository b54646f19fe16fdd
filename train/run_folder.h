/* run_folder.h: the run folder's life: whether a folder exists and holds a run, creating it
 * with the resolved config inside, its lock (one owner per folder) and the staged replacement
 * that --force swaps in atomically (README "Reliability"). */
#ifndef SINKLAB_RUN_FOLDER_H
#define SINKLAB_RUN_FOLDER_H

#include <stddef.h>
#include "train/config.h"

int run_folder_exists(const char *dir);
/* A folder a run left (config.yaml, metrics.jsonl or checkpoints/ inside) or an empty one:
 * `--out . --force` must never wipe a source tree. */
int run_folder_is_run(const char *dir);
/* config.yaml, metrics.jsonl or checkpoints/ inside. */
int run_folder_has_marks(const char *dir);
/* mkdir -p DIR (after removing it when replace and it holds a run) and writes DIR/config.yaml
 * atomically. Returns 0, or -1 with err. */
int run_folder_prepare(const char *dir, int replace, const Config *c, char *err, size_t n);

#define RUN_LOCK_NAME ".lock"
#define RUN_STAGE_SUFFIX ".force-"

typedef struct {
    int fd;                  /* -1 when not held */
    char path[1100];
} RunLock;

/* mkdir -p DIR. 0, or -1 with errno. */
int run_folder_make(const char *dir);
/* flock(DIR/.lock) without waiting; writes our pid into it. Held until run_folder_unlock or
 * exit. -1 with err naming the holder's pid when another process owns the folder. */
int run_folder_lock(RunLock *l, const char *dir, char *err, size_t n);
void run_folder_unlock(RunLock *l);
/* Whether DIR/checkpoints holds any step_N.ckpt (damaged or not). */
int run_folder_has_checkpoint(const char *dir);
/* rm -r DIR (no symlinks followed). */
int run_folder_remove(const char *dir);
/* --force: creates and locks the sibling DIR.force-PID where the new run is built. */
int run_folder_stage(const char *dir, char *staged, size_t n_staged, RunLock *l, char *err, size_t n);
/* Exchanges staged and DIR atomically (renameat2 RENAME_EXCHANGE), then removes the old run. */
int run_folder_swap_in(const char *staged, const char *dir, char *err, size_t n);
/* Removes DIR.force-* siblings nobody holds: left by a --force that was killed. */
void run_folder_clean_stale(const char *dir);

#endif
