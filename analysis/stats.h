/* stats.h: the statistics that decide a claim across seeds. Small samples (3-5 seeds per arm)
 * rule out normal approximations, so everything here is exact or resampling-based: Spearman's
 * rank correlation with a permutation p-value, differences of means with permutation p-values,
 * and percentile-bootstrap intervals: a difference resamples runs within each arm (stratified,
 * so every resample keeps both arms); a trend resamples whole runs (a run's x with its y, since
 * resampling within each x biases rho upward). All resampling uses a fixed-seed generator: the same runs always
 * give the same numbers. */
#ifndef SINKLAB_STATS_H
#define SINKLAB_STATS_H

#include <stdint.h>

#define STATS_RESAMPLES 4000
#define STATS_SEED 20261201u

/* An estimate with its 95% interval and a one-sided p-value for the expected direction. */
typedef struct {
    double value, lo, hi;   /* NaN when undefined (too few runs) */
    double p;               /* P(statistic at least as extreme in the expected direction | no
                             * effect); NaN when there is nothing to permute */
    int n;                  /* runs used */
} Estimate;

/* Spearman's rho of y against x (average ranks for ties). NaN when either is constant. */
double stats_spearman(const double *x, const double *y, int n);
/* rho with a bootstrap interval (whole runs resampled: x with its y) and the permutation
 * p-value of rho >= observed (sign = +1) or rho <= observed (sign = -1). */
Estimate stats_trend(const double *x, const double *y, int n, int sign);
/* mean(b) - mean(a) with a stratified bootstrap interval and the permutation p-value of a
 * difference at least as large in the direction sign (+1: b > a). */
Estimate stats_difference(const double *a, int na, const double *b, int nb, int sign);
/* mean(d) - ref with a bootstrap interval and the sign-flip permutation p-value of
 * (d - ref) having mean at least as far from 0 in direction sign. For paired differences pass
 * d[i] = b[i] - a[i] and ref 0. */
Estimate stats_shift(const double *d, int n, double ref, int sign);
/* mean(x) with the 95% percentile interval of the means of n_resamples resamples of x with
 * replacement (the generator seeded with STATS_SEED); lo = hi = NaN for fewer than two values,
 * p = NaN. The comparison page's bands and final metrics (analysis/compare.h). */
Estimate stats_mean(const double *x, int n, int n_resamples);
/* The q-quantile (0..1) of x[0..n) (sorted copy, nearest rank). */
double stats_quantile(const double *x, int n, double q);

#endif
