/* run_timings.h: the time a run has spent so far, read back from its metrics.jsonl when it is
 * resumed, so that the final line's timings and tok/s cover the whole run, not only the part
 * after the resume (and resuming a finished run keeps its timings instead of writing zeros). */
#ifndef SINKLAB_RUN_TIMINGS_H
#define SINKLAB_RUN_TIMINGS_H

#include <stdint.h>

typedef struct {
    double train, eval, checkpoint, probe;   /* seconds, as in the final line */
    int exact;   /* 1: from a final line; 0: rebuilt (eval and checkpoint unknown, left 0) */
} RunTimings;

/* Reads metrics_path up to step `step` (the checkpoint a run resumes from). A final line whose
 * step equals `step` (the run had finished there) gives every timing exactly. Otherwise train
 * is rebuilt from the step lines: each line's tok_per_s covers the tokens since the previous line
 * (the trainer's measuring window restarts at every logged line), so train = sum of
 * (tokens - previous tokens) / tok_per_s; probe = the sum of the lines' probe_seconds. A missing
 * or unreadable file gives zeros. */
void run_timings_read(RunTimings *out, const char *metrics_path, int64_t step);

#endif
