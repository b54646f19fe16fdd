/* run_timings.c: a resumed run's earlier timings, from its summary or metrics.jsonl (run_timings.h). */
#include "train/run_timings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "analysis/json.h"

/* Every timing from a summary object whose step is `step`; 1 if it was that summary. */
static int from_summary(RunTimings *out, const JsonValue *sum, int64_t step)
{
    if (!sum || (int64_t)json_num_or(json_get(sum, "step"), -1) != step) return 0;
    out->train = json_num_or(json_get(sum, "train_seconds"), 0.0);
    out->eval = json_num_or(json_get(sum, "eval_seconds"), 0.0);
    out->checkpoint = json_num_or(json_get(sum, "checkpoint_seconds"), 0.0);
    out->probe = json_num_or(json_get(sum, "probe_seconds"), 0.0);
    out->exact = 1;
    return 1;
}

void run_timings_read(RunTimings *out, const char *run_dir, int64_t step)
{
    memset(out, 0, sizeof *out);
    char path[1200], err[256];
    snprintf(path, sizeof path, "%s/summary.json", run_dir);
    JsonDoc sd;
    if (json_parse_file(&sd, path, err, sizeof err) == 0) {
        int done = from_summary(out, sd.root, step);
        json_free(&sd);
        if (done) return;
    }
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    const char *metrics_path = path;
    FILE *f = fopen(metrics_path, "r");
    if (!f) return;
    RunTimings rebuilt = {0};
    double prev_tokens = 0.0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    for (int lineno = 1; (len = getline(&line, &cap, f)) > 0; lineno++) {
        JsonDoc d;
        if (json_parse(&d, line, (size_t)len, metrics_path, lineno, err, sizeof err) != 0) continue;
        const JsonValue *fin = json_get(d.root, "final");
        if (fin) {
            from_summary(out, fin, step);
        } else {
            int64_t s = (int64_t)json_num_or(json_get(d.root, "step"), -1);
            double tokens = json_num_or(json_get(d.root, "tokens"), prev_tokens);
            double tps = json_num_or(json_get(d.root, "tok_per_s"), 0.0);
            if (s >= 0 && s <= step) {
                if (tps > 0 && tokens > prev_tokens) rebuilt.train += (tokens - prev_tokens) / tps;
                rebuilt.probe += json_num_or(json_get(d.root, "probe_seconds"), 0.0);
                prev_tokens = tokens;
            }
        }
        json_free(&d);
    }
    free(line);
    fclose(f);
    if (!out->exact) *out = rebuilt;
}
