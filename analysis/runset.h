/* runset.h: several run folders in memory for comparison and export. A path is a run folder
 * (config.yaml + metrics.jsonl) or a sweep folder (its run subfolders, in natural name order:
 * numbers compare as numbers). Each run
 * keeps its flat config (dotted key -> value text, read from config.yaml by the caller's reader:
 * the analysis layer has no YAML reader of its own), every scalar metric of
 * metrics.jsonl as a series over steps (probe scalars by their own names, "probe_loss" for the
 * probe's loss, "sink_rate_0.3" for the sink-rate object), and its summary.json onset table.
 * The set knows which config keys differ between its runs: those are what a comparison shows. */
#ifndef SINKLAB_RUNSET_H
#define SINKLAB_RUNSET_H

#include <stddef.h>

#include "base/keyvalue.h"

#define RUNSET_MAX_SERIES 48
#define RUNSET_MAX_VARYING 32

typedef struct {
    char metric[48];
    int n, cap;
    double *step, *tokens, *value;  /* n points in step order */
} RunSeries;

typedef struct {
    char dir[1024], name[256];
    KeyValueList cfg;           /* config.yaml as flat pairs, in the order it is written */
    int n_series;
    RunSeries series[RUNSET_MAX_SERIES];
    int complete;               /* summary.json present */
    int L, H;                   /* from the onset table (0 when unknown) */
    int *onset;                 /* L x H onset steps, -1 = none; NULL without summary.json */
    double onset_threshold;
} RunData;

#define RUNSET_MAX_HEADS 4

/* Reads run_dir/config.yaml into out as flat "model.n_layer" -> "4" pairs; returns 0 or -1 with
 * err naming the file, line and key. The train layer's config_flatten_run is one. */
typedef int (*RunConfigReader)(const char *run_dir, KeyValueList *out, char *err, size_t n_err);

typedef struct {
    RunConfigReader read_config; /* set before runset_add; NULL: configs are not read (no keys) */
    int n, cap;
    RunData *runs;
    int n_heads;                /* chosen heads: their alpha0 becomes the series "alpha0 L.H" */
    int heads[RUNSET_MAX_HEADS][2];
    int n_swept;
    char swept[RUNSET_MAX_VARYING][96];   /* a sweep folder's swept keys (its sweep.json), in order */
    int n_varying;
    char varying[RUNSET_MAX_VARYING][96]; /* keys that differ (output.dir and train.threads aside):
                                           * swept keys first, then the others in config order */
} RunSet;

/* Chooses a head (layer, head) whose alpha0 is kept as a series; call before runset_add.
 * Returns -1 when RUNSET_MAX_HEADS are already chosen. */
int runset_choose_head(RunSet *rs, int layer, int head);
/* Adds the run folder or every run in the sweep folder at path. Returns 0 or -1 with err. */
int runset_add(RunSet *rs, const char *path, char *err, size_t n_err);
/* Fills rs->varying; call after the last runset_add. */
void runset_finish(RunSet *rs);
void runset_free(RunSet *rs);

/* The run's value for a dotted config key, or NULL. */
const char *run_config(const RunData *r, const char *key);
/* The series of a metric, or NULL when the run never logged it. */
const RunSeries *run_series(const RunData *r, const char *metric);
/* The last logged value of a metric, or NaN. */
double run_last(const RunData *r, const char *metric);
/* Number of heads with an onset, the earliest onset step (-1 if none). Returns -1 without a table. */
int run_onset(const RunData *r, int *n_heads, int *first_step);

#endif
