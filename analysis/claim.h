/* claim.h: a published claim about attention sinks, as a file sinklab can test
 * (configs/claims/C*.yaml). A claim file holds the claim (what the paper says, its figure, the
 * statistic that decides it here and the expected direction), the sweep that tests it (a sweep
 * file's keys under `sweep:`), and named scales (micro, tiny, small) that override the sweep's
 * settings and seeds. The settings are fixed in the file before any run: a claim is never tuned
 * into passing. This file also computes the verdict from the finished runs and writes it. */
#ifndef SINKLAB_CLAIM_H
#define SINKLAB_CLAIM_H

#include <stddef.h>
#include <stdio.h>

#include "analysis/runset.h"
#include "analysis/stats.h"

#define CLAIM_MAX_SETS 64
#define CLAIM_MAX_SCALES 4
#define CLAIM_MAX_SEEDS 16
#define CLAIM_TEXT 768

typedef enum {
    CLAIM_TREND,        /* Spearman rho of metric against the swept key x */
    CLAIM_DIFFERENCE,   /* mean(metric | key = treatment) - mean(metric | key = baseline) */
    CLAIM_SHIFT,        /* mean(metric) - ref over all runs */
    CLAIM_PAIRED,       /* mean(metric - metric_b) within each run */
    CLAIM_INTERVENTION  /* mean delta of metric under an intervention, per run's final checkpoint */
} ClaimTest;
extern const char *const CLAIM_TEST_NAMES[];

typedef enum { VERDICT_REPRODUCED, VERDICT_NOT_REPRODUCED, VERDICT_INCONCLUSIVE } Verdict;
extern const char *const VERDICT_NAMES[];

typedef struct {
    char key[96];
    char value[256];
    int line, col;
} ClaimSet;

typedef struct {
    char name[16];
    int n_sets;
    ClaimSet sets[CLAIM_MAX_SETS];
    int n_seeds;                     /* 0: the sweep's seeds */
    long long seeds[CLAIM_MAX_SEEDS];
} ClaimScale;

typedef struct {
    char path[512];
    /* the claim */
    char id[16], title[CLAIM_TEXT], source[CLAIM_TEXT], paper[CLAIM_TEXT], how[CLAIM_TEXT];
    ClaimTest test;
    char metric[64], metric_b[64];   /* run metrics (their last logged value) */
    char key[96];                    /* trend: x; difference: the arm key */
    char baseline[96], treatment[96];
    char intervention[256];          /* intervention: the analyze --intervene spec */
    char reference[256];             /* compared against this spec's run instead of the baseline */
    double ref;                      /* shift: the reference value */
    int sign;                        /* +1 or -1: the direction the claim predicts */
    int requires_sink;               /* inconclusive unless some arm formed a sink */
    double tolerance;                /* an interval inside (-tolerance, tolerance): "absent" */
    /* the sweep */
    char base[1024];                 /* absolute path of the base config */
    int n_sets;
    ClaimSet sets[CLAIM_MAX_SETS];
    char axes_yaml[8192];            /* grid:/zip:/slurm: as YAML text, copied into the sweep */
    int n_seeds;
    long long seeds[CLAIM_MAX_SEEDS];
    int n_scales;
    ClaimScale scales[CLAIM_MAX_SCALES];
    unsigned long long hash;         /* FNV-1a of the file's bytes (recorded in the report) */
} Claim;

/* A metric spec over one probe object ({"alpha0": [[..]], "alpha0_max": .., ...}): a member
 * that is a number, or max:NAME, mean:NAME, min:NAME, NAME@sink (at the head with the largest
 * alpha0), frac_eq:NAME=V (share of heads equal to V), spearman:A,B (across heads). NaN when
 * the probe lacks the members. */
struct JsonValue;
double claim_reduce_probe(const struct JsonValue *probe, const char *spec);

/* Parses a claim file. Returns 0, or -1 with "file:line:col: what was expected" in err. */
int claim_load(Claim *c, const char *path, char *err, size_t n_err);
/* The scale by name, or NULL. */
const ClaimScale *claim_scale(const Claim *c, const char *name);
/* Writes the sweep file for a scale: base, the claim's sets then the scale's, the axes, seeds,
 * and out: run_dir. */
int claim_write_sweep(const Claim *c, const ClaimScale *scale, const char *run_dir, FILE *f);

/* The numbers behind a verdict. */
#define CLAIM_MAX_ARMS 16
typedef struct {
    int n_expected, n_done;          /* runs in the sweep, runs finished */
    int n_arms;
    char arm_label[CLAIM_MAX_ARMS][96];
    double arm_mean[CLAIM_MAX_ARMS], arm_lo[CLAIM_MAX_ARMS], arm_hi[CLAIM_MAX_ARMS];
    int arm_n[CLAIM_MAX_ARMS];
    double arm_alpha0_max[CLAIM_MAX_ARMS];   /* median final alpha0_max of the arm */
    double uniform_alpha0;                   /* from the runs (median) */
    int sink_formed;
    Estimate est;
    Verdict verdict;
    char reason[512];
} ClaimResult;

/* One run's value for the claim's metric(s) (intervention claims pass it in). */
typedef struct {
    const RunData *run;
    double value;                    /* NaN: missing */
} ClaimPoint;

/* The verdict of an estimate whose predicted direction is sign (+1 up, -1 down): reproduced when
 * its 95% interval lies on the predicted side of 0 and p < 0.05; not reproduced when it lies on
 * the other side, or inside (-tolerance, tolerance) when tolerance > 0; else inconclusive. The
 * reason is written to reason. */
Verdict claim_verdict(const Estimate *e, int sign, double tolerance, char *reason, size_t n);

/* Computes the statistic and the verdict from the runs of the claim's sweep folder; for
 * intervention claims, deltas[i] is run i's delta (NaN when missing). */
void claim_decide(const Claim *c, const RunSet *rs, const double *deltas, int n_expected,
                  ClaimResult *res);

#endif
