/* onset.c: first step from which a per-step curve stays above a threshold (see onset.h). */
#include "analysis/onset.h"

int onset_find_step(const int *steps, const float *values, int n_steps, int stride,
                    float threshold)
{
    /* Walk back from the end: the onset is where the final run above the threshold begins. */
    int n0 = n_steps;
    while (n0 > 0 && values[(long)(n0 - 1) * stride] > threshold) n0--;
    return n0 < n_steps ? steps[n0] : -1;
}

void onset_find_steps(int *onset, const int *steps, const float *values, int n_steps,
                      int n_series, float threshold)
{
    for (int s = 0; s < n_series; s++)
        onset[s] = onset_find_step(steps, values + s, n_steps, n_series, threshold);
}
