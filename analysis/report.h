/* report.h: the run report a person looks at. Reads a run folder (metrics.jsonl, probe/step_*.json
 * files) and writes run_dir/report.html: one self-contained page (inline SVG and CSS, no scripts,
 * no external resources) with the loss curves, sink-rate curves, the layer x head alpha_0 heatmap
 * over steps, the onset table, attention maps and per-position norms of the probe sequence, and
 * a chart for every other probe metric the run logged (analysis/metric_table.h). The sources:
 * report_read.c (reading), report_page.c and report_probe_html.c (writing). */
#ifndef SINKLAB_REPORT_H
#define SINKLAB_REPORT_H

#include <stddef.h>

#include "base/keyvalue.h"

/* Threshold for onset when metrics.jsonl has no final {"final": {"onset": ...}} line. */
#define REPORT_ONSET_THRESHOLD 0.3

/* Writes run_dir/report.html (atomically: a temporary file renamed into place). cfg is the run's
 * configuration as flat "model.n_layer" -> "4" pairs for the header (the caller reads config.yaml:
 * analysis/ has no YAML reader of its own); NULL or empty means unknown and the page says so.
 * Returns 0, or -1 with err saying what is wrong and where ("runs/a/metrics.jsonl:12:5: expected
 * ..."), for a missing or malformed metrics.jsonl, a malformed probe file, or an unwritable
 * folder. A partial last line (a run still writing) is skipped and noted in the page; unknown keys
 * are ignored. */
int report_write(const char *run_dir, const KeyValueList *cfg, char *err, size_t n_err);

#endif
