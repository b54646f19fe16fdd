/* run_timings.c: a resumed run's earlier timings, from its metrics.jsonl (run_timings.h). */
#include "train/run_timings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "analysis/json.h"

void run_timings_read(RunTimings *out, const char *metrics_path, int64_t step)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(metrics_path, "r");
    if (!f) return;
    RunTimings rebuilt = {0};
    double prev_tokens = 0.0;
    char *line = NULL, err[256];
    size_t cap = 0;
    ssize_t len;
    for (int lineno = 1; (len = getline(&line, &cap, f)) > 0; lineno++) {
        JsonDoc d;
        if (json_parse(&d, line, (size_t)len, metrics_path, lineno, err, sizeof err) != 0) continue;
        const JsonValue *fin = json_get(d.root, "final");
        if (fin) {
            if ((int64_t)json_num_or(json_get(fin, "step"), -1) == step) {
                out->train = json_num_or(json_get(fin, "train_seconds"), 0.0);
                out->eval = json_num_or(json_get(fin, "eval_seconds"), 0.0);
                out->checkpoint = json_num_or(json_get(fin, "checkpoint_seconds"), 0.0);
                out->probe = json_num_or(json_get(fin, "probe_seconds"), 0.0);
                out->exact = 1;
            }
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
