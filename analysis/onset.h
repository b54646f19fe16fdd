/* onset.h: when a sink emerges. Given a metric logged at probe steps (alpha_0 of one head, say),
 * the onset is the first step from which the curve stays strictly above a threshold to the end of
 * the run, so a transient spike that falls back does not count. */
#ifndef SINKLAB_ONSET_H
#define SINKLAB_ONSET_H

/* The step steps[n0] of the smallest n0 with values[n * stride] > threshold for every
 * n0 <= n < n_steps, or -1 when the last value is not above it (or n_steps == 0). "Strictly
 * above" is the same test as sink_rate; a NaN value is never above. stride lets one call read one
 * head out of a (n_steps, L*H) table. */
int onset_find_step(const int *steps, const float *values, int n_steps, int stride,
                    float threshold);

/* onset (n_series): onset_find_step for every column s of values (n_steps, n_series). */
void onset_find_steps(int *onset, const int *steps, const float *values, int n_steps,
                      int n_series, float threshold);

#endif
