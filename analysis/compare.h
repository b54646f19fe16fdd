/* compare.h: the comparison page of several runs (compare.html). Its bands and final metrics are
 * the mean across a group's runs (its seeds) with a 95% percentile-bootstrap interval,
 * stats_mean (analysis/stats.h) over COMPARE_RESAMPLES resamples of the runs: fixed-seed, so the
 * same runs always give the same page. */
#ifndef SINKLAB_COMPARE_H
#define SINKLAB_COMPARE_H

#include <stddef.h>
#include "analysis/runset.h"

#define COMPARE_RESAMPLES 2000

/* Writes path: per-run curves, groups by the config key `by` (NULL: the first key that differs
 * between runs other than train.seed) with mean and interval bands, onset per run, final
 * metrics with intervals, and the config differences (diffs[i]: how run i's config differs from
 * run 0's, e.g. from config_diff; may be NULL). Returns 0 or -1 with err. */
int compare_write(const RunSet *rs, const char *by, const char *const *diffs, const char *path,
                  char *err, size_t n_err);

#endif
