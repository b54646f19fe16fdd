/* report_run.h: what the report knows about a run once it has read it (internal to report_*.c).
 * report_read.c fills a Run from metrics.jsonl and lists probe/step_*.json files; report_page.c
 * and report_probe_html.c only write HTML from it. Probe metrics are held per MetricId of the
 * metric table, so every chart names its metric through the table, never by a string. */
#ifndef SINKLAB_REPORT_RUN_H
#define SINKLAB_REPORT_RUN_H

#include <stdio.h>

#include "analysis/json.h"
#include "analysis/metric_table.h"
#include "base/keyvalue.h"

#define REPORT_PATH_CAP 1024

/* The training columns of a metrics.jsonl line. */
enum { TK_STEP, TK_TOKENS, TK_EPOCH, TK_LOSS, TK_LR, TK_GRAD, TK_TPS, TK_VAL, N_TKEYS };

/* The sink-rate thresholds the report draws (members "0.3", "0.5", "0.8" of probe.sink_rate). */
#define REPORT_N_EPS 3
extern const double REPORT_EPS[REPORT_N_EPS];

typedef struct {
    int n, cap;
    double *col[N_TKEYS];
} TrainTable;

/* A per-position metric ([T]) at the probe steps that logged it. */
typedef struct {
    int n, cap, T;
    double *step;
    double *v;                /* n rows x T */
} PositionRows;

typedef struct {
    int n, cap;
    int L, H;
    double *step, *tokens;
    double *col[METRIC_COUNT];   /* n rows x report_metric_width(); NaN = not measured */
    int present[METRIC_COUNT];
    PositionRows pos[METRIC_COUNT]; /* METRIC_SHAPE_POSITION metrics */
} ProbeTable;

typedef struct {
    char dir[REPORT_PATH_CAP], name[256];
    TrainTable tr;
    ProbeTable pr;
    const KeyValueList *cfg;  /* the run's config as flat pairs; NULL or empty when unknown */
    int lines, partial_last;
    double onset_threshold;
    int *onset;               /* L x H, -1 = never; NULL until known */
    int onset_from_final;
    int *probe_steps;         /* probe/step_*.json, sorted */
    int n_probe_files;
} Run;

/* Numbers a probe-table row holds for metric m (1 for scalars, L x H per head, ...; 0 for
 * per-position metrics, which live in ProbeTable.pos). */
int report_metric_width(const ProbeTable *p, MetricId m);

/* Reads run->dir/metrics.jsonl, computes onsets when the run did not store them and lists the
 * probe files. Returns 0, or -1 with err naming file:line and what was expected. */
int report_read_run(Run *run, char *err, size_t n_err);
void report_free_run(Run *run);

/* One probe/step_*.json file (attention maps, value norms, alpha per key of sequence 0). */
typedef struct {
    int step, T, L, H;
    JsonDoc doc;
    char path[REPORT_PATH_CAP + 64];
} ProbeFile;

int report_load_probe_file(ProbeFile *pf, const char *dir, int step, char *err, size_t n_err);
/* Copies key[l][h] (an array of T numbers, or a T x T matrix when square) into out; 0 or -1. */
int report_probe_block(double *out, const ProbeFile *pf, const char *key, int l, int h, int square);

/* HTML helpers shared by the page writers (report_page.c). */
void report_esc(FILE *f, const char *s);
void report_fig_begin(FILE *f, const char *cls, const char *title);
/* Captions are trusted text written in the report's sources (may hold markup). */
void report_fig_end(FILE *f, const char *caption);

/* report_probe_html.c: the attention-map, position and mechanics sections. */
int report_write_probe_sections(FILE *f, const Run *run, char *err, size_t n_err);
void report_write_mechanics(FILE *f, const ProbeTable *p);

#endif
