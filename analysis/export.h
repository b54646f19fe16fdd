/* export.h: tidy files a pandas user loads without unpacking nested lists.
 *   scalars.csv  run, <varying config keys...>, seed, step, tokens, metric, value
 *   heads.csv    run, <varying config keys...>, seed, step, layer, head, metric, value
 *                (per-head [L][H] probe metrics; per-layer ones with an empty head column)
 *   summary.jsonl (a sweep folder) one flat object per run: run, its swept values, seed,
 *                status and the last value of every scalar metric, onset_heads, onset_first_step. */
#ifndef SINKLAB_EXPORT_H
#define SINKLAB_EXPORT_H

#include <stdio.h>
#include "analysis/runset.h"

/* Writes out_dir/scalars.csv and out_dir/heads.csv for every run of rs. Returns 0 or -1 with err. */
int export_csv(const RunSet *rs, const char *out_dir, char *err, size_t n_err);
/* One summary.jsonl line for the run in dir (values[i] is keys[i]'s value as written in the
 * sweep; numbers are written as numbers). seed < 0: none. */
void export_summary_line(FILE *f, const char *name, const char *dir, const char *const *keys,
                         const char *const *values, int n, long long seed, const char *status);

#endif
