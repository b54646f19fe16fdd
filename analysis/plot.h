/* plot.h: self-contained SVG charts for the run report: line charts (linear or log axes, gaps where a
 * value was not measured, reference lines), heatmaps (layer x head over steps, T x T attention maps)
 * with a colour bar, and grouped bar charts. Each call writes one <svg> element with a viewBox (it
 * scales to its container), no ids, no scripts and no external references, so many can share a page.
 * A series may carry a band (lo, hi per point), shaded in its colour behind the line.
 * Missing values are NaN: a gap in a line, a hatched-grey cell in a heatmap, no bar. */
#ifndef SINKLAB_PLOT_H
#define SINKLAB_PLOT_H

#include <stdio.h>

typedef struct {
    const char *label;     /* legend entry; NULL = not in the legend */
    const double *x, *y;   /* n points; y NaN = not measured (the line breaks there) */
    int n;
    const char *color;     /* CSS colour; NULL = the palette colour of the series index */
    int dashed;
    int markers;           /* dots at the points (sparse series such as validation loss) */
    double width;          /* stroke width; 0 = 1.8 */
    const double *lo, *hi; /* optional band (an interval) shaded behind the line; NULL = none */
} PlotSeries;

typedef struct {
    double y;              /* a horizontal reference line (threshold, baseline) */
    const char *label;
    const char *color;     /* NULL = grey */
} PlotRefLine;

typedef struct {
    int width, height;     /* SVG units; 0 = 520 x 300 */
    const char *xlabel, *ylabel;
    int log_x, log_y;      /* points with x <= 0 (y <= 0) are skipped on a log axis */
    int fix_y;             /* use ymin..ymax instead of the data range */
    double ymin, ymax;
    int y_from_zero;       /* extend the data range to include 0 (ignored with fix_y or log_y) */
    const PlotRefLine *refs;
    int n_refs;
} PlotAxes;

typedef enum { PLOT_CMAP_VIRIDIS, PLOT_CMAP_BLUES, PLOT_CMAP_MAGMA } PlotColormap;
typedef enum { PLOT_SCALE_LINEAR, PLOT_SCALE_SQRT } PlotScale;

typedef struct {
    int width, height;              /* SVG units of the whole figure; 0 = 520 x 300 */
    const char *title;              /* small title above the map (small multiples), or NULL */
    const char *xlabel, *ylabel;
    double vmin, vmax;              /* colour range; values outside are clamped */
    PlotScale scale;                /* SQRT spreads small values (attention maps) */
    PlotColormap cmap;
    const double *x;                /* per-column value for x tick labels (e.g. steps); NULL = index */
    const char *const *row_labels;  /* per-row labels; NULL = row index */
    int row_group;                  /* > 0: a separator line every row_group rows ... */
    const char *const *group_labels;/* ... and these labels to the left of each group */
    int mask_upper;                 /* cells with column > row are masked (causal attention) */
    int square;                     /* square cells (the map area is centred in the figure) */
    int colorbar;                   /* draw a colour bar with ticks on the right */
    const char *colorbar_label;
    int tooltips;                   /* one <rect><title> per cell (hover shows row, column, value) */
} PlotHeatmap;

typedef struct {
    const char *label;
    const double *v;       /* one value per category; NaN = no bar */
    const char *color;     /* NULL = palette */
} PlotBarSeries;

/* The categorical palette (colour-blind-friendly Tableau 10) used when a series has no colour. */
const char *plot_palette(int i);
/* The colour of t in [0,1] under a colour map, as "#rrggbb" into out[8]. */
void plot_cmap_color(char out[8], PlotColormap cmap, double t);
/* Writes s XML-escaped (&, <, >, ", '). */
void plot_write_escaped(FILE *f, const char *s);

/* Line chart. Returns the number of points drawn (0 writes an empty frame saying "no data"). */
int plot_lines(FILE *f, const PlotAxes *ax, const PlotSeries *s, int n_series);
/* Heatmap of z[rows * cols] (row-major, row 0 at the top). Returns 0. */
int plot_heatmap(FILE *f, const PlotHeatmap *hm, const double *z, int rows, int cols);
/* Grouped bars: for each category, one bar per series. Uses ax's size, labels and y options. */
int plot_bars(FILE *f, const PlotAxes *ax, const char *const *categories, int n_cat,
              const PlotBarSeries *s, int n_series);

#endif
