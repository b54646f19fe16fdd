/* sweep.h: a sweep file (YAML) and the runs it expands to. A sweep names a base config, fixed
 * overrides, a crossed grid over dotted config keys, zip groups whose keys vary together, and
 * seeds; every run is a normal run folder DIR/NAME, named from its values ("seq_len=64,seed=1"),
 * whose config.yaml is the fully resolved config. Also: each run's state read from its folder,
 * and the SLURM job-array script. Parsing errors name the sweep file:line:col. */
#ifndef SINKLAB_SWEEP_H
#define SINKLAB_SWEEP_H

#include <stdio.h>
#include "train/config.h"

#define SWEEP_MAX_AXES 16
#define SWEEP_MAX_ZIP_KEYS 8
#define SWEEP_MAX_VALUES 64
#define SWEEP_MAX_SETS 64
#define SWEEP_MAX_RUNS 4096
#define SWEEP_VALUE_CAP 96

/* One dimension of the grid: a single key (grid:) or several keys that move together (zip:). */
typedef struct {
    int n_keys, n_values;
    char keys[SWEEP_MAX_ZIP_KEYS][96];
    int n_named;                /* leading keys whose values name a run: the fewest that tell
                                 * the columns apart (1 for a grid axis) */
    char labels[SWEEP_MAX_ZIP_KEYS][96]; /* each key's last component in run names (full key on a clash) */
    char (*values)[SWEEP_MAX_ZIP_KEYS][SWEEP_VALUE_CAP]; /* [n_values][n_keys], as written */
    int (*where)[2];            /* [n_values * n_keys] line, column of each value */
} SweepAxis;

typedef struct {
    char cpus_per_task[16], mem[32], time[32], partition[64], array_parallel[16];
} SweepSlurm;

typedef struct {
    char path[512];             /* the sweep file */
    char base[1024];            /* base config, relative to the sweep file's folder */
    char out[1024];             /* default sweep folder (out:), else runs/<sweep file name> */
    int n_sets;
    char sets[SWEEP_MAX_SETS][256];   /* "key=value", applied over the base */
    int set_where[SWEEP_MAX_SETS][2];
    int n_axes;
    SweepAxis axes[SWEEP_MAX_AXES];
    int n_seeds;
    long long seeds[SWEEP_MAX_VALUES];
    int threads_fixed;          /* train.threads set by the sweep itself: never chosen for it */
    SweepSlurm slurm;
    int has_slurm;
} Sweep;

typedef struct {
    char name[256];
    char dir[1300];
    int value[SWEEP_MAX_AXES];  /* index into each axis's values */
    int seed_index;             /* -1 without seeds: */
} SweepRun;

typedef enum {
    SWEEP_NOT_STARTED,          /* no run folder, or only the resolved config.yaml */
    SWEEP_INTERRUPTED,          /* checkpoints but no summary.json: resumable */
    SWEEP_RUNNING,              /* its state file says a task holds it */
    SWEEP_FAILED,               /* its last attempt exited non-zero */
    SWEEP_DONE                  /* summary.json written */
} SweepState;

/* Parses path. Returns 0, or -1 with "file:line:col: what was expected" in err; keys and values
 * are checked against the config (config_set) here, so a typo fails before any run starts, and
 * so are run names: a value listed twice, identical zip columns, or two runs that would share a
 * folder are refused (they would silently reuse one run's results for another). */
int sweep_load(Sweep *s, const char *path, char *err, size_t n_err);
void sweep_free(Sweep *s);

/* Number of runs (product of the axes' value counts, times the seeds). */
int sweep_count(const Sweep *s);
/* Run i of the expansion (last axis fastest, seeds fastest of all), its folder under dir. */
void sweep_run_at(const Sweep *s, int i, const char *dir, SweepRun *r);
/* The base config with the fixed overrides (no axis values): what --dry-run diffs against. */
int sweep_resolve_base(const Sweep *s, Config *c, char *err, size_t n_err);
/* The run's full config: base, sets, its axis values, its seed, output.dir = r->dir, and
 * train.threads = threads unless the sweep sets it (or threads <= 0); validated. */
int sweep_resolve(const Sweep *s, const SweepRun *r, int threads, Config *c, char *err, size_t n_err);
/* The value the run takes on axis a's first key ("64"), and the seed as text. */
const char *sweep_value(const Sweep *s, const SweepRun *r, int a, int k);

/* The run's state from its folder and the sweep's state file DIR/logs/NAME.state. */
SweepState sweep_state(const char *sweep_dir, const SweepRun *r, long long *step_out);
const char *sweep_state_name(SweepState st);
/* Records a local or SLURM attempt's start ("running") or end ("exit N"). */
void sweep_write_state(const char *sweep_dir, const SweepRun *r, const char *text);

/* DIR/sweep.sbatch for runs[0..n) (their config.yaml already written). bin is the sinklab path
 * the tasks call. Returns 0 or -1 with err. */
int sweep_write_sbatch(const Sweep *s, const char *dir, const SweepRun *runs, int n, const char *bin,
                       char *err, size_t n_err);

#endif
