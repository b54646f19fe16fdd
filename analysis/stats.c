/* stats.c: rank correlation, permutation tests and bootstrap intervals (stats.h). */
#include "analysis/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/check.h"
#include "base/rng.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double stats_quantile(const double *x, int n, double q)
{
    if (n <= 0) return NAN;
    double *s = xmalloc((size_t)n * sizeof *s);
    memcpy(s, x, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    int i = (int)floor(q * (n - 1) + 0.5);
    double v = s[i < 0 ? 0 : i >= n ? n - 1 : i];
    free(s);
    return v;
}

/* Average ranks (1-based), ties sharing the mean of their positions. */
static void ranks(double *r, const double *x, int n)
{
    int *idx = xmalloc((size_t)n * sizeof *idx);
    for (int i = 0; i < n; i++) idx[i] = i;
    /* insertion sort by value: n is a handful of runs */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && x[idx[j - 1]] > x[idx[j]]; j--) {
            int t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && x[idx[j + 1]] == x[idx[i]]) j++;
        for (int k = i; k <= j; k++) r[idx[k]] = 0.5 * (i + j) + 1.0;
        i = j + 1;
    }
    free(idx);
}

static double pearson(const double *x, const double *y, int n)
{
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
    mx /= n;
    my /= n;
    for (int i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

double stats_spearman(const double *x, const double *y, int n)
{
    if (n < 2) return NAN;
    double *rx = xmalloc((size_t)n * sizeof *rx), *ry = xmalloc((size_t)n * sizeof *ry);
    ranks(rx, x, n);
    ranks(ry, y, n);
    double rho = pearson(rx, ry, n);
    free(rx);
    free(ry);
    return rho;
}

static void interval(Estimate *e, double *boot, int nb)
{
    int m = 0;
    for (int b = 0; b < nb; b++)
        if (isfinite(boot[b])) boot[m++] = boot[b];
    /* An interval needs most resamples defined; otherwise it would describe a biased subset. */
    if (m < nb / 2) { e->lo = e->hi = NAN; return; }
    e->lo = stats_quantile(boot, m, 0.025);
    e->hi = stats_quantile(boot, m, 0.975);
}

Estimate stats_trend(const double *x, const double *y, int n, int sign)
{
    Estimate e = {stats_spearman(x, y, n), NAN, NAN, NAN, n};
    if (!isfinite(e.value)) return e;
    Rng rng;
    rng_seed(&rng, STATS_SEED);
    double *bx = xmalloc((size_t)n * sizeof *bx), *by = xmalloc((size_t)n * sizeof *by);
    double *boot = xmalloc(STATS_RESAMPLES * sizeof *boot);
    /* Pairs: resample whole runs (x with its y). Resampling y within each x instead (the seeds of
     * one setting) biased rho upward: duplicated seeds shrink the spread within a setting, so the
     * interval could lie entirely above the estimate it was meant to bracket. */
    for (int b = 0; b < STATS_RESAMPLES; b++) {
        for (int i = 0; i < n; i++) {
            int pick = (int)rng_below(&rng, (uint64_t)n);
            bx[i] = x[pick];
            by[i] = y[pick];
        }
        boot[b] = stats_spearman(bx, by, n);
    }
    interval(&e, boot, STATS_RESAMPLES);
    /* Permutation: shuffle y over x. */
    int hits = 0;
    for (int b = 0; b < STATS_RESAMPLES; b++) {
        memcpy(by, y, (size_t)n * sizeof *by);
        for (int i = n - 1; i > 0; i--) {
            int j = (int)rng_below(&rng, (uint64_t)i + 1);
            double t = by[i]; by[i] = by[j]; by[j] = t;
        }
        double r = stats_spearman(x, by, n);
        if (isfinite(r) && sign * r >= sign * e.value - 1e-12) hits++;
    }
    e.p = (hits + 1.0) / (STATS_RESAMPLES + 1.0);
    free(bx);
    free(by);
    free(boot);
    return e;
}

static double mean(const double *x, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return n ? s / n : NAN;
}

Estimate stats_difference(const double *a, int na, const double *b, int nb, int sign)
{
    Estimate e = {NAN, NAN, NAN, NAN, na + nb};
    if (na < 1 || nb < 1) return e;
    e.value = mean(b, nb) - mean(a, na);
    if (na < 2 && nb < 2) return e;
    Rng rng;
    rng_seed(&rng, STATS_SEED);
    double *boot = xmalloc(STATS_RESAMPLES * sizeof *boot);
    for (int r = 0; r < STATS_RESAMPLES; r++) {
        double sa = 0, sb = 0;
        for (int i = 0; i < na; i++) sa += a[rng_below(&rng, (uint64_t)na)];
        for (int i = 0; i < nb; i++) sb += b[rng_below(&rng, (uint64_t)nb)];
        boot[r] = sb / nb - sa / na;
    }
    interval(&e, boot, STATS_RESAMPLES);
    /* Permutation of arm labels. */
    int n = na + nb, hits = 0;
    double *pool = xmalloc((size_t)n * sizeof *pool);
    for (int r = 0; r < STATS_RESAMPLES; r++) {
        memcpy(pool, a, (size_t)na * sizeof *pool);
        memcpy(pool + na, b, (size_t)nb * sizeof *pool);
        for (int i = n - 1; i > 0; i--) {
            int j = (int)rng_below(&rng, (uint64_t)i + 1);
            double t = pool[i]; pool[i] = pool[j]; pool[j] = t;
        }
        double d = mean(pool + na, nb) - mean(pool, na);
        if (sign * d >= sign * e.value - 1e-12) hits++;
    }
    e.p = (hits + 1.0) / (STATS_RESAMPLES + 1.0);
    free(pool);
    free(boot);
    return e;
}

/* boot[r] = the mean of resample r of x[0..n) (with replacement) minus ref, for r < nb. */
static void resample_means(double *boot, int nb, const double *x, int n, double ref, Rng *rng)
{
    for (int r = 0; r < nb; r++) {
        double s = 0;
        for (int i = 0; i < n; i++) s += x[rng_below(rng, (uint64_t)n)];
        boot[r] = s / n - ref;
    }
}

Estimate stats_mean(const double *x, int n, int n_resamples)
{
    Estimate e = {NAN, NAN, NAN, NAN, n};
    if (n < 1) return e;
    e.value = mean(x, n);
    if (n < 2 || n_resamples < 1) return e;
    Rng rng;
    rng_seed(&rng, STATS_SEED);
    double *boot = xmalloc((size_t)n_resamples * sizeof *boot);
    resample_means(boot, n_resamples, x, n, 0, &rng);
    interval(&e, boot, n_resamples);
    free(boot);
    return e;
}

Estimate stats_shift(const double *d, int n, double ref, int sign)
{
    Estimate e = {NAN, NAN, NAN, NAN, n};
    if (n < 1) return e;
    e.value = mean(d, n) - ref;
    if (n < 2) return e;
    Rng rng;
    rng_seed(&rng, STATS_SEED);
    double *boot = xmalloc(STATS_RESAMPLES * sizeof *boot);
    resample_means(boot, STATS_RESAMPLES, d, n, ref, &rng);
    interval(&e, boot, STATS_RESAMPLES);
    /* Sign flips: under no effect, d - ref is symmetric around 0. Exact for small n. */
    int hits = 0, total = 0;
    if (n <= 16) {
        for (int mask = 0; mask < (1 << n); mask++, total++) {
            double s = 0;
            for (int i = 0; i < n; i++) s += (mask >> i & 1 ? -1 : 1) * (d[i] - ref);
            if (sign * s / n >= sign * e.value - 1e-12) hits++;
        }
        e.p = (double)hits / total;
    } else {
        for (int r = 0; r < STATS_RESAMPLES; r++) {
            double s = 0;
            for (int i = 0; i < n; i++) s += (rng_next(&rng) & 1 ? -1 : 1) * (d[i] - ref);
            if (sign * s / n >= sign * e.value - 1e-12) hits++;
        }
        e.p = (hits + 1.0) / (STATS_RESAMPLES + 1.0);
    }
    free(boot);
    return e;
}
