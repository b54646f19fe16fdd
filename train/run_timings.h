/* run_timings.h: the time a run has spent so far, read back from its metrics.jsonl when it is
 * resumed, so that the final line's timings and tok/s cover the whole run, not only the part
 * after the resume (and resuming a finished run keeps its timings instead of writing zeros). */
#ifndef SINKLAB_RUN_TIMINGS_H
#define SINKLAB_RUN_TIMINGS_H

#include <stdint.h>

typedef struct {
    double train, eval, checkpoint, probe;   /* seconds, as in the final line */
    int exact;   /* 1: from the summary; 0: rebuilt (eval and checkpoint unknown, left 0) */
} RunTimings;

/* The timings of RUN_DIR up to step `step` (the checkpoint a run resumes from). A summary whose
 * step equals `step` (RUN_DIR/summary.json, or the last {"final": ...} line of metrics.jsonl in
 * runs made before summary.json) means the run had finished there: it gives every timing exactly.
 * Otherwise train is rebuilt from the step lines of metrics.jsonl: each line's tok_per_s covers
 * the tokens since the previous line (the trainer's measuring window restarts at every logged
 * line), so train = sum of (tokens - previous tokens) / tok_per_s; probe = the sum of the lines'
 * probe_seconds. Missing or unreadable files give zeros. */
void run_timings_read(RunTimings *out, const char *run_dir, int64_t step);

#endif
