/* compare.h: the comparison page of several runs (compare.html) and the statistic behind its
 * bands: the mean across seeds with a 95% percentile-bootstrap interval, resampling runs with a
 * fixed-seed generator so the same runs always give the same page. */
#ifndef SINKLAB_COMPARE_H
#define SINKLAB_COMPARE_H

#include <stddef.h>
#include <stdint.h>
#include "analysis/runset.h"

#define COMPARE_RESAMPLES 2000
#define COMPARE_BOOT_SEED 20261201u

/* Mean of x[0..n) and the 2.5% / 97.5% percentiles of the means of n_resamples resamples of x
 * with replacement (generator seeded with seed). n == 1: lo = hi = mean. n == 0: all NaN. */
void compare_bootstrap(double *mean, double *lo, double *hi, const double *x, int n, int n_resamples,
                       uint64_t seed);

/* Writes path: per-run curves, groups by the config key `by` (NULL: the first key that differs
 * between runs other than train.seed) with mean and interval bands, onset per run, final
 * metrics with intervals, and the config differences (diffs[i]: how run i's config differs from
 * run 0's, e.g. from config_diff; may be NULL). Returns 0 or -1 with err. */
int compare_write(const RunSet *rs, const char *by, const char *const *diffs, const char *path,
                  char *err, size_t n_err);

#endif
