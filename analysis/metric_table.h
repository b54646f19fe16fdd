/* metric_table.h: the one list of probe metrics. Each entry names a key under "probe" in
 * metrics.jsonl, its shape, what it measures and where the report draws it. probe.c writes the
 * keys from here, report_*.c reads and draws them through the same ids, and the README's metric
 * tables are generated from it (metric_write_reference), so a rename moves all three at once. */
#ifndef SINKLAB_METRIC_TABLE_H
#define SINKLAB_METRIC_TABLE_H

#include <stdio.h>

typedef enum {
    METRIC_LOSS,
    METRIC_ALPHA0,
    METRIC_SINK_RATE,
    METRIC_SINK_RATE_GU,
    METRIC_ALPHA0_MAX,
    METRIC_ALPHA0_MEAN,
    METRIC_UNIFORM_ALPHA0,
    METRIC_SINK_LOCATION,
    METRIC_SINK_LOCATION_ALPHA,
    METRIC_ALPHA_BOS,
    METRIC_ALPHA_LAST,
    METRIC_ALPHA_LEARNED_SINK,
    METRIC_VALUE_NORM_RATIO,
    METRIC_KEY_NORM_RATIO,
    METRIC_COS_QK0,
    METRIC_QK0_NORMPROD,
    METRIC_ENTROPY_NORM,
    METRIC_ENTROPY,
    METRIC_MASSIVE_RATIO,
    METRIC_MASSIVE_TOP_MEDIAN,
    METRIC_ALPHA_BOS_DORMANT,
    METRIC_ALPHA_BOS_ACTIVE,
    METRIC_LOSS_MARKOV,
    METRIC_LOSS_COPY,
    METRIC_QK_EIG_MEAN,
    METRIC_QK_EIG_VAR,
    METRIC_QK_SYM_MEAN,
    METRIC_QK_SYM_VAR,
    METRIC_NORM_ATTN0,
    METRIC_COLLAPSE_COS,
    METRIC_COLLAPSE_RESID,
    METRIC_EFF_RANK,
    METRIC_SPREAD,
    METRIC_SPREAD_POS,
    METRIC_JACOBIAN_NORM,
    METRIC_JACOBIAN_BY_POS,
    METRIC_COUNT
} MetricId;

typedef enum {
    METRIC_SHAPE_SCALAR,   /* one number */
    METRIC_SHAPE_HEAD,     /* [L][H] */
    METRIC_SHAPE_LAYER,    /* [L], after each block */
    METRIC_SHAPE_DEPTH,    /* [L+1], embeddings first */
    METRIC_SHAPE_EPS,      /* {"eps": number} for each probe.eps threshold */
    METRIC_SHAPE_POSITION  /* [T], one per input position of the probe sequences */
} MetricShape;

typedef enum {
    METRIC_TIER_LIGHT,     /* every probe */
    METRIC_TIER_HEAVY      /* at checkpoints and every probe.heavy_every steps */
} MetricTier;

/* Where the report draws a metric. */
typedef enum {
    METRIC_CHART_NONE,           /* never valid in the table: the test fails on it */
    METRIC_CHART_SINK_RATE,      /* "Sink rate vs step", one line per threshold */
    METRIC_CHART_ALPHA0_SUMMARY, /* "α₀ across heads": max, mean, uniform baseline */
    METRIC_CHART_HEADS,          /* the head x step heatmap, the onset table and the final bars */
    METRIC_CHART_ONSET_CELL,     /* a second line in each cell of the onset table */
    METRIC_CHART_MECHANICS,      /* its own small chart over steps (title, ylabel, caption) */
    METRIC_CHART_TITLE_OF,       /* a value shown in the title of another metric's chart (host) */
    METRIC_CHART_BY_POSITION,    /* its own chart over positions at a few probe steps */
    METRIC_CHART_CLASSES         /* "Active and dormant heads": a chart over steps shared by a
                                    class-0 and a class-1 metric (runs whose data has classes) */
} MetricChart;

typedef struct {
    const char *name;        /* the key under "probe" */
    MetricShape shape;
    MetricTier tier;
    const char *doc;         /* README: what it measures (when it is absent, say so here) */
    MetricChart chart;
    const char *title;       /* the title of the figure that draws it (NULL: METRIC_CHART_TITLE_OF) */
    const char *ylabel;      /* the chart's y axis; METRIC_CHART_TITLE_OF: its label in the host's title */
    const char *caption;     /* METRIC_CHART_MECHANICS / _BY_POSITION: the chart's own */
    int log_y;
    MetricId host;           /* METRIC_CHART_TITLE_OF: whose chart title shows it */
} MetricDef;

const MetricDef *metric_def(MetricId id);
const char *metric_name(MetricId id);
/* The id of the metric logged as name, or METRIC_COUNT when the table has none. */
MetricId metric_find(const char *name);
/* "scalar", "[L][H]", ... as the README writes shapes. */
const char *metric_shape_doc(MetricShape s);
/* The title of the report figure that draws id (the host's for METRIC_CHART_TITLE_OF). */
const char *metric_chart_title(MetricId id);
/* Where the report draws id, for the README ("Mechanics: Jacobian norm"). */
void metric_chart_doc(char *out, size_t n, MetricId id);
/* The README's table of one tier's metrics (key, shape, what it measures, report chart). */
void metric_write_reference(FILE *f, MetricTier tier);

#endif
