/* plot.c: SVG line charts, heatmaps and bar charts (see plot.h). Text sizes are in SVG units; the
 * report scales each figure to its column, so sizes are chosen for a ~520-unit-wide figure. */
#include "analysis/plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FONT "system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif"
#define C_GRID "#e7e9ee"
#define C_AXIS "#9aa1ad"
#define C_TICK "#5b6270"
#define C_LABEL "#2f3440"
#define C_MISSING "#cfd3da"
#define MAX_TICKS 40

static const char *PALETTE[] = { "#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1",
                                 "#76b7b2", "#edc948", "#9c755f", "#ff9da7", "#bab0ac" };

/* Colour-map stops sampled at 9 evenly spaced points (matplotlib's viridis and magma, ColorBrewer
 * Blues); linear interpolation between them is visually indistinguishable from the full tables. */
static const unsigned char CMAPS[3][9][3] = {
    { { 68, 1, 84 }, { 71, 44, 122 }, { 59, 81, 139 }, { 44, 113, 142 }, { 33, 144, 141 },
      { 39, 173, 129 }, { 92, 200, 99 }, { 170, 220, 50 }, { 253, 231, 37 } },
    { { 247, 251, 255 }, { 222, 235, 247 }, { 198, 219, 239 }, { 158, 202, 225 }, { 107, 174, 214 },
      { 66, 146, 198 }, { 33, 113, 181 }, { 8, 81, 156 }, { 8, 48, 107 } },
    { { 0, 0, 4 }, { 28, 16, 68 }, { 79, 18, 123 }, { 129, 37, 129 }, { 181, 54, 122 },
      { 229, 80, 100 }, { 251, 135, 97 }, { 254, 194, 135 }, { 252, 253, 191 } },
};

const char *plot_palette(int i)
{
    int n = (int)(sizeof PALETTE / sizeof PALETTE[0]);
    return PALETTE[((i % n) + n) % n];
}

void plot_cmap_color(char out[8], PlotColormap cmap, double t)
{
    if (!(t >= 0)) t = 0;
    if (t > 1) t = 1;
    double u = t * 8;
    int i = (int)u;
    if (i > 7) i = 7;
    double f = u - i;
    const unsigned char *a = CMAPS[cmap][i], *b = CMAPS[cmap][i + 1];
    int rgb[3];
    for (int k = 0; k < 3; k++) rgb[k] = (int)lround(a[k] + f * (b[k] - a[k]));
    snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

void plot_write_escaped(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default:
            /* XML 1.0 forbids most control characters even as references. */
            if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t') fputc('?', f);
            else fputc(*s, f);
        }
    }
}

/* ---------- numbers and ticks ---------- */

/* A tick label: k/M suffixes for large values, as many decimals as the tick step needs. */
static void format_tick(char *out, size_t n, double v, double step)
{
    double a = fabs(v), scale = 1;
    const char *suffix = "";
    if (fabs(v) < 1e-12 * (step > 0 ? step : 1)) { snprintf(out, n, "0"); return; }
    if (a >= 1e6) { scale = 1e6; suffix = "M"; }
    else if (a >= 1e4) { scale = 1e3; suffix = "k"; }
    if (step <= 0 && a >= 1e-3) {
        /* log axes (no common step): significant digits, so 1.5 and 2 stay apart */
        snprintf(out, n, "%.3g%s", v / scale, suffix);
        return;
    }
    double s = (step > 0 ? step : a) / scale;
    int dec = s >= 1 ? 0 : (int)ceil(-log10(s) - 1e-9);
    if (dec > 5 || a < 1e-3) {
        /* Compact scientific form: "8e-4", "1.5e-3" (printf's "8e-04" wastes room). */
        int e = (int)floor(log10(a) + 1e-9);
        int digits = step > 0 ? e - (int)floor(log10(step) + 1e-9) : 0;
        digits = digits < 0 ? 0 : digits > 3 ? 3 : digits;
        snprintf(out, n, "%.*fe%d", digits, v / pow(10, e), e);
        return;
    }
    snprintf(out, n, "%.*f%s", dec, v / scale, suffix);
}

static double nice_step(double range, int target)
{
    if (!(range > 0)) return 1;
    double raw = range / (target > 1 ? target : 1);
    double mag = pow(10, floor(log10(raw)));
    double r = raw / mag;
    return mag * (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10);
}

typedef struct {
    double lo, hi;      /* data-space range */
    int log;
    double p0, p1;      /* pixel positions of lo and hi */
} Scale;

static double scale_map(const Scale *s, double v)
{
    double t = s->log ? (log10(v) - log10(s->lo)) / (log10(s->hi) - log10(s->lo))
                      : (v - s->lo) / (s->hi - s->lo);
    return s->p0 + t * (s->p1 - s->p0);
}

/* Ticks inside [lo, hi]; *step receives the spacing (for label precision). */
static int make_ticks(double *t, double *step, const Scale *s, int target)
{
    int n = 0;
    if (s->log) {
        int k0 = (int)floor(log10(s->lo) + 1e-9), k1 = (int)ceil(log10(s->hi) - 1e-9);
        int span = k1 - k0;
        /* Decades; 1-2-5 within them when few decades show; every digit when even that is sparse. */
        static const double subs[3][10] = { { 1, 2, 5 }, { 1, 1.5, 2, 3, 5, 7 }, { 1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9 } };
        static const int n_subs[3] = { 3, 6, 10 };
        for (int pass = 0; pass < 3; pass++) {
            const double *sub = subs[pass];
            int n_sub = pass ? n_subs[pass] : span <= 3 ? 3 : 1;
            int every = span > 8 ? (span + 7) / 8 : 1;
            n = 0;
            for (int k = k0; k <= k1 && n < MAX_TICKS; k++) {
                if ((k - k0) % every) continue;
                for (int j = 0; j < n_sub && n < MAX_TICKS; j++) {
                    double v = sub[j] * pow(10, k);
                    if (v >= s->lo * (1 - 1e-9) && v <= s->hi * (1 + 1e-9)) t[n++] = v;
                }
            }
            if (n >= 3) break;
        }
        *step = 0;
        if (n > 8) {
            /* Too many digits of one decade: keep every k-th, always including the first. */
            int k = (n + 7) / 8, m = 0;
            for (int i = 0; i < n; i += k) t[m++] = t[i];
            n = m;
        }
        if (n >= 2) return n;
        Scale lin = *s;
        lin.log = 0;
        return make_ticks(t, step, &lin, target);
    }
    double st = nice_step(s->hi - s->lo, target);
    double v0 = ceil(s->lo / st - 1e-9) * st;
    for (double v = v0; v <= s->hi + st * 1e-9 && n < MAX_TICKS; v += st) t[n++] = fabs(v) < st * 1e-9 ? 0 : v;
    *step = st;
    return n;
}

/* Fixes a linear range: nice bounds, a non-empty span. */
static void nice_range(double *lo, double *hi, int target)
{
    if (*hi - *lo < 1e-12 * (fabs(*hi) + 1)) {
        double pad = fabs(*hi) > 0 ? fabs(*hi) * 0.1 : 1;
        *lo -= pad;
        *hi += pad;
    }
    double st = nice_step(*hi - *lo, target);
    *lo = floor(*lo / st + 1e-9) * st;
    *hi = ceil(*hi / st - 1e-9) * st;
}

/* A log range hugging the data (decade snapping wastes most of the plot on short ranges). */
static void log_range(double *lo, double *hi)
{
    if (!(*lo > 0)) *lo = *hi > 0 ? *hi / 10 : 1;
    if (!(*hi > *lo)) *hi = *lo * 2;
    double pad = pow(*hi / *lo, 0.04);
    *lo /= pad;
    *hi *= pad;
}

/* ---------- shared chart frame ---------- */

static void svg_open(FILE *f, int w, int h)
{
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" viewBox=\"0 0 %d %d\" "
               "width=\"%d\" height=\"%d\" font-family=\"%s\" font-size=\"11\" role=\"img\">\n",
            w, h, w, h, FONT);
}

static void text_at(FILE *f, double x, double y, const char *anchor, const char *fill, int size,
                    const char *extra, const char *s)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" fill=\"%s\" font-size=\"%d\"%s%s>", x, y,
            anchor, fill, size, extra ? " " : "", extra ? extra : "");
    plot_write_escaped(f, s);
    fputs("</text>\n", f);
}

typedef struct {
    int w, h;
    double l, r, t, b;  /* plot area edges */
} Frame;

/* Legend entries laid out in rows above the plot area; returns the rows used. */
static int legend_rows(const char *const *labels, int n, double width)
{
    double x = 0;
    int rows = n > 0 ? 1 : 0;
    for (int i = 0; i < n; i++) {
        if (!labels[i]) continue;
        double wi = 26 + 6.3 * (double)strlen(labels[i]) + 14;
        if (x > 0 && x + wi > width) { rows++; x = 0; }
        x += wi;
    }
    return rows;
}

static void legend_draw(FILE *f, const Frame *fr, const char *const *labels, const char *const *colors,
                        const int *dashed, int n, int as_box)
{
    double x = fr->l, y = 14, width = fr->r - fr->l;
    for (int i = 0; i < n; i++) {
        if (!labels[i]) continue;
        double wi = 26 + 6.3 * (double)strlen(labels[i]) + 14;
        if (x > fr->l && x + wi > fr->l + width) { x = fr->l; y += 16; }
        if (as_box)
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"18\" height=\"9\" rx=\"2\" fill=\"%s\"/>\n", x, y - 8, colors[i]);
        else
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.5\"%s/>\n",
                    x, y - 3.5, x + 18, y - 3.5, colors[i], dashed && dashed[i] ? " stroke-dasharray=\"5 3\"" : "");
        text_at(f, x + 24, y, "start", C_LABEL, 11, NULL, labels[i]);
        x += wi;
    }
}

static void axes_draw(FILE *f, const Frame *fr, const Scale *sx, const Scale *sy, const char *xlabel,
                      const char *ylabel)
{
    double tk[MAX_TICKS], step;
    char lab[32];
    int nx = make_ticks(tk, &step, sx, (int)((fr->r - fr->l) / 80));
    for (int i = 0; i < nx; i++) {
        double px = scale_map(sx, tk[i]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", px, fr->t, px, fr->b, C_GRID);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", px, fr->b, px, fr->b + 4, C_AXIS);
        format_tick(lab, sizeof lab, tk[i], step);
        text_at(f, px, fr->b + 16, "middle", C_TICK, 11, NULL, lab);
    }
    int ny = make_ticks(tk, &step, sy, (int)((fr->b - fr->t) / 45) + 1);
    for (int i = 0; i < ny; i++) {
        double py = scale_map(sy, tk[i]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", fr->l, py, fr->r, py, C_GRID);
        format_tick(lab, sizeof lab, tk[i], step);
        text_at(f, fr->l - 6, py + 3.5, "end", C_TICK, 11, NULL, lab);
    }
    fprintf(f, "<path d=\"M%.1f %.1fV%.1fH%.1f\" fill=\"none\" stroke=\"%s\"/>\n", fr->l, fr->t, fr->b, fr->r, C_AXIS);
    if (xlabel) text_at(f, (fr->l + fr->r) / 2, fr->h - 6, "middle", C_LABEL, 12, NULL, xlabel);
    if (ylabel) {
        char tr[64];
        double cy = (fr->t + fr->b) / 2;
        snprintf(tr, sizeof tr, "transform=\"rotate(-90 14 %.1f)\"", cy);
        text_at(f, 14, cy, "middle", C_LABEL, 12, tr, ylabel);
    }
}

static int in_domain(double v, int log)
{
    return isfinite(v) && (!log || v > 0);
}

/* ---------- line charts ---------- */

static void series_range(const PlotAxes *ax, const PlotSeries *s, int n_series, double *x0, double *x1,
                         double *y0, double *y1)
{
    *x0 = *y0 = INFINITY;
    *x1 = *y1 = -INFINITY;
    for (int k = 0; k < n_series; k++)
        for (int i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i];
            if (!in_domain(x, ax->log_x) || !in_domain(y, ax->log_y)) continue;
            if (x < *x0) *x0 = x;
            if (x > *x1) *x1 = x;
            if (y < *y0) *y0 = y;
            if (y > *y1) *y1 = y;
            for (int b = 0; b < 2; b++) {
                const double *band = b ? s[k].hi : s[k].lo;
                if (!band || !in_domain(band[i], ax->log_y)) continue;
                if (band[i] < *y0) *y0 = band[i];
                if (band[i] > *y1) *y1 = band[i];
            }
        }
    for (int k = 0; k < ax->n_refs; k++) {
        double y = ax->refs[k].y;
        if (!in_domain(y, ax->log_y) || *y0 > *y1) continue;
        if (y < *y0) *y0 = y;
        if (y > *y1) *y1 = y;
    }
}

static void frame_for(Frame *fr, const PlotAxes *ax, int legend_n)
{
    fr->w = ax->width > 0 ? ax->width : 520;
    fr->h = ax->height > 0 ? ax->height : 300;
    fr->l = 62;
    fr->r = fr->w - 18;
    fr->t = 12 + 16 * legend_n;
    fr->b = fr->h - (ax->xlabel ? 40 : 26);
}

static void draw_series(FILE *f, const PlotSeries *s, int k, const Scale *sx, const Scale *sy)
{
    const char *color = s->color ? s->color : plot_palette(k);
    fprintf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" stroke-linejoin=\"round\" "
               "stroke-linecap=\"round\"%s d=\"", color, s->width > 0 ? s->width : 1.8,
            s->dashed ? " stroke-dasharray=\"6 4\"" : "");
    int pen = 0;
    for (int i = 0; i < s->n; i++) {
        if (!in_domain(s->x[i], sx->log) || !in_domain(s->y[i], sy->log)) { pen = 0; continue; }
        fprintf(f, "%s%.1f %.1f", pen ? "L" : "M", scale_map(sx, s->x[i]), scale_map(sy, s->y[i]));
        /* A lone point between gaps would be invisible as a path: give it a tiny stroke. */
        int next_ok = i + 1 < s->n && in_domain(s->x[i + 1], sx->log) && in_domain(s->y[i + 1], sy->log);
        if (!pen && !next_ok) fputs("h0.01", f);
        pen = 1;
    }
    fputs("\"/>\n", f);
    if (!s->markers) return;
    for (int i = 0; i < s->n; i++) {
        if (!in_domain(s->x[i], sx->log) || !in_domain(s->y[i], sy->log)) continue;
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.6\" fill=\"%s\"><title>", scale_map(sx, s->x[i]),
                scale_map(sy, s->y[i]), color);
        plot_write_escaped(f, s->label ? s->label : "");
        fprintf(f, "%s%g: %.4g</title></circle>\n", s->label ? " at " : "", s->x[i], s->y[i]);
    }
}

/* The band of a series: one closed polygon (hi forwards, lo backwards) per run of valid points. */
static void draw_band(FILE *f, const PlotSeries *s, int k, const Scale *sx, const Scale *sy)
{
    if (!s->lo || !s->hi) return;
    const char *color = s->color ? s->color : plot_palette(k);
    int i = 0;
    while (i < s->n) {
        int ok = in_domain(s->x[i], sx->log) && in_domain(s->lo[i], sy->log) && in_domain(s->hi[i], sy->log);
        if (!ok) { i++; continue; }
        int j = i;
        while (j + 1 < s->n && in_domain(s->x[j + 1], sx->log) && in_domain(s->lo[j + 1], sy->log) &&
               in_domain(s->hi[j + 1], sy->log))
            j++;
        fprintf(f, "<path fill=\"%s\" fill-opacity=\"0.18\" stroke=\"none\" d=\"", color);
        for (int p = i; p <= j; p++)
            fprintf(f, "%s%.1f %.1f", p == i ? "M" : "L", scale_map(sx, s->x[p]), scale_map(sy, s->hi[p]));
        for (int p = j; p >= i; p--) fprintf(f, "L%.1f %.1f", scale_map(sx, s->x[p]), scale_map(sy, s->lo[p]));
        fputs("z\"/>\n", f);
        i = j + 1;
    }
}

static void empty_note(FILE *f, const Frame *fr, const char *msg)
{
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#f7f8fa\" stroke=\"%s\"/>\n",
            fr->l, fr->t, fr->r - fr->l, fr->b - fr->t, C_GRID);
    text_at(f, (fr->l + fr->r) / 2, (fr->t + fr->b) / 2, "middle", C_TICK, 13, NULL, msg);
}

static void draw_refs(FILE *f, const PlotAxes *ax, const Frame *fr, const Scale *sy)
{
    for (int k = 0; k < ax->n_refs; k++) {
        const PlotRefLine *r = &ax->refs[k];
        if (!in_domain(r->y, sy->log) || r->y < sy->lo || r->y > sy->hi) continue;
        double py = scale_map(sy, r->y);
        const char *c = r->color ? r->color : "#7a818c";
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.2\" stroke-dasharray=\"2 3\"/>\n",
                fr->l, py, fr->r, py, c);
        if (r->label) text_at(f, fr->r - 4, py - 4, "end", c, 10, NULL, r->label);
    }
}

int plot_lines(FILE *f, const PlotAxes *ax, const PlotSeries *s, int n_series)
{
    const char *labels[64], *colors[64];
    int dashed[64], n_leg = n_series < 64 ? n_series : 64;
    for (int k = 0; k < n_leg; k++) {
        labels[k] = s[k].label;
        colors[k] = s[k].color ? s[k].color : plot_palette(k);
        dashed[k] = s[k].dashed;
    }
    Frame fr;
    frame_for(&fr, ax, 0);
    frame_for(&fr, ax, legend_rows(labels, n_leg, fr.r - fr.l));
    svg_open(f, fr.w, fr.h);

    double x0, x1, y0, y1;
    series_range(ax, s, n_series, &x0, &x1, &y0, &y1);
    if (!(x0 <= x1)) {
        empty_note(f, &fr, "no data");
        fputs("</svg>\n", f);
        return 0;
    }
    Scale sx = { x0, x1, ax->log_x, fr.l, fr.r }, sy = { y0, y1, ax->log_y, fr.b, fr.t };
    if (ax->log_x) log_range(&sx.lo, &sx.hi);
    else if (!(sx.hi > sx.lo)) { sx.lo -= 1; sx.hi += 1; }
    if (ax->fix_y) { sy.lo = ax->ymin; sy.hi = ax->ymax; }
    else if (ax->log_y) log_range(&sy.lo, &sy.hi);
    else {
        if (ax->y_from_zero) { if (sy.lo > 0) sy.lo = 0; if (sy.hi < 0) sy.hi = 0; }
        nice_range(&sy.lo, &sy.hi, (int)((fr.b - fr.t) / 45) + 1);
    }
    axes_draw(f, &fr, &sx, &sy, ax->xlabel, ax->ylabel);
    legend_draw(f, &fr, labels, colors, dashed, n_leg, 0);

    draw_refs(f, ax, &fr, &sy);
    int drawn = 0;
    for (int k = 0; k < n_series; k++) draw_band(f, &s[k], k, &sx, &sy);
    for (int k = 0; k < n_series; k++) {
        draw_series(f, &s[k], k, &sx, &sy);
        for (int i = 0; i < s[k].n; i++) drawn += in_domain(s[k].x[i], sx.log) && in_domain(s[k].y[i], sy.log);
    }
    fputs("</svg>\n", f);
    return drawn;
}

/* ---------- heatmaps ---------- */

enum { N_LEVELS = 64 };

static double heat_t(const PlotHeatmap *hm, double v)
{
    double span = hm->vmax - hm->vmin;
    double t = span > 0 ? (v - hm->vmin) / span : 0;
    if (t < 0) t = 0;
    if (t > 1) t = 1;
    return hm->scale == PLOT_SCALE_SQRT ? sqrt(t) : t;
}

/* Cells as one path per colour level, merging equal-colour runs in a row: a 128 x 128 map stays
 * a few hundred kB where a <rect> per cell would be megabytes. */
static void heat_cells_paths(FILE *f, const PlotHeatmap *hm, const double *z, int rows, int cols)
{
    for (int level = -1; level < N_LEVELS; level++) {
        int opened = 0;
        for (int r = 0; r < rows; r++) {
            int c = 0;
            while (c < cols) {
                double v = z[(size_t)r * cols + c];
                int masked = hm->mask_upper && c > r;
                int lv = masked ? -2 : isnan(v) ? -1 : (int)(heat_t(hm, v) * (N_LEVELS - 1) + 0.5);
                int c1 = c + 1;
                while (c1 < cols) {
                    double v1 = z[(size_t)r * cols + c1];
                    int m1 = hm->mask_upper && c1 > r;
                    int l1 = m1 ? -2 : isnan(v1) ? -1 : (int)(heat_t(hm, v1) * (N_LEVELS - 1) + 0.5);
                    if (l1 != lv) break;
                    c1++;
                }
                if (lv == level) {
                    if (!opened) {
                        char col[8];
                        if (level < 0) snprintf(col, sizeof col, "%s", C_MISSING);
                        else plot_cmap_color(col, hm->cmap, (double)level / (N_LEVELS - 1));
                        fprintf(f, "<path fill=\"%s\" d=\"", col);
                        opened = 1;
                    }
                    fprintf(f, "M%d %dh%dv1h-%dz", c, r, c1 - c, c1 - c);
                }
                c = c1;
            }
        }
        if (opened) fputs("\"/>\n", f);
    }
}

static void heat_row_name(char *out, size_t n, const PlotHeatmap *hm, int r)
{
    const char *g = hm->row_group > 0 && hm->group_labels ? hm->group_labels[r / hm->row_group] : NULL;
    if (hm->row_labels) snprintf(out, n, "%s%s%s", g ? g : "", g ? " " : "", hm->row_labels[r]);
    else snprintf(out, n, "%s%srow %d", g ? g : "", g ? " " : "", r);
}

static void heat_cells_rects(FILE *f, const PlotHeatmap *hm, const double *z, int rows, int cols)
{
    for (int r = 0; r < rows; r++) {
        char name[96];
        heat_row_name(name, sizeof name, hm, r);
        for (int c = 0; c < cols; c++) {
            if (hm->mask_upper && c > r) continue;
            double v = z[(size_t)r * cols + c];
            char col[8];
            if (isnan(v)) snprintf(col, sizeof col, "%s", C_MISSING);
            else plot_cmap_color(col, hm->cmap, heat_t(hm, v));
            fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"1\" height=\"1\" fill=\"%s\"><title>", c, r, col);
            plot_write_escaped(f, name);
            if (hm->x) fprintf(f, ", step %g: ", hm->x[c]);
            else fprintf(f, ", col %d: ", c);
            if (isnan(v)) fputs("not measured", f);
            else fprintf(f, "%.3f", v);
            fputs("</title></rect>\n", f);
        }
    }
}

static void colorbar_draw(FILE *f, const PlotHeatmap *hm, double x, double top, double bottom)
{
    double h = bottom - top, w = 12;
    for (int i = 0; i < N_LEVELS; i++) {
        char col[8];
        plot_cmap_color(col, hm->cmap, (double)i / (N_LEVELS - 1));
        double y = bottom - (i + 1) * h / N_LEVELS;
        fprintf(f, "<rect x=\"%.1f\" y=\"%.2f\" width=\"%.1f\" height=\"%.2f\" fill=\"%s\"/>\n", x, y, w, h / N_LEVELS + 0.3, col);
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"%s\"/>\n", x, top, w, h, C_AXIS);
    double tk[MAX_TICKS], step;
    int n = 0;
    if (hm->scale == PLOT_SCALE_SQRT) {
        static const double fr[] = { 0, 0.01, 0.05, 0.1, 0.25, 0.5, 1 };
        step = 0.01 * (hm->vmax - hm->vmin);
        for (int i = 0; i < 7; i++) tk[n++] = hm->vmin + fr[i] * (hm->vmax - hm->vmin);
    } else {
        Scale s = { hm->vmin, hm->vmax, 0, 0, 1 };
        n = make_ticks(tk, &step, &s, 5);
    }
    for (int i = 0; i < n; i++) {
        double y = bottom - heat_t(hm, tk[i]) * h;
        char lab[32];
        format_tick(lab, sizeof lab, tk[i], step);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", x + w, y, x + w + 3, y, C_AXIS);
        text_at(f, x + w + 5, y + 3.5, "start", C_TICK, 10, NULL, lab);
    }
    if (hm->colorbar_label) {
        char tr[80];
        double cx = x + w + 46, cy = (top + bottom) / 2;
        snprintf(tr, sizeof tr, "transform=\"rotate(-90 %.1f %.1f)\"", cx, cy);
        text_at(f, cx, cy, "middle", C_LABEL, 11, tr, hm->colorbar_label);
    }
}

static void heat_ticks(FILE *f, const PlotHeatmap *hm, const Frame *fr, double cw, double ch, int rows, int cols)
{
    char lab[32];
    /* x: evenly spaced columns labelled with their value (steps), or nice indices. */
    int target = (int)((fr->r - fr->l) / 60) + 1;
    if (target < 2) target = 2;
    if (hm->x) {
        /* Nice values (0, 500, 1000, ...), each placed at the column whose x is nearest. */
        double x0 = hm->x[0], x1 = hm->x[cols - 1], st = nice_step(x1 - x0, target);
        int last = -1;
        for (double v = ceil(x0 / st - 1e-9) * st; cols > 1 && v <= x1 + 1e-9 * st; v += st) {
            int c = 0;
            for (int k = 1; k < cols; k++)
                if (fabs(hm->x[k] - v) < fabs(hm->x[c] - v)) c = k;
            if (c == last) continue;
            last = c;
            double px = fr->l + (c + 0.5) * cw;
            format_tick(lab, sizeof lab, hm->x[c], st);
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", px, fr->b, px, fr->b + 3, C_AXIS);
            text_at(f, px, fr->b + 14, "middle", C_TICK, 10, NULL, lab);
        }
        if (cols == 1) {
            format_tick(lab, sizeof lab, x0, 0);
            text_at(f, fr->l + 0.5 * cw, fr->b + 14, "middle", C_TICK, 10, NULL, lab);
        }
    } else {
        double st = nice_step(cols - 1, target);
        for (double c = 0; c <= cols - 1; c += st) {
            double px = fr->l + (c + 0.5) * cw;
            snprintf(lab, sizeof lab, "%d", (int)c);
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", px, fr->b, px, fr->b + 3, C_AXIS);
            text_at(f, px, fr->b + 14, "middle", C_TICK, 10, NULL, lab);
        }
    }
    /* y: row labels when they fit, else nice row indices. */
    if (hm->row_labels && ch >= 8) {
        for (int r = 0; r < rows; r++)
            text_at(f, fr->l - 4, fr->t + (r + 0.5) * ch + 3.2, "end", C_TICK, ch >= 11 ? 10 : 8, NULL, hm->row_labels[r]);
    } else if (!hm->group_labels) {
        double st = nice_step(rows - 1, (int)((fr->b - fr->t) / 30) + 1);
        for (double r = 0; r <= rows - 1; r += st) {
            snprintf(lab, sizeof lab, "%d", (int)r);
            text_at(f, fr->l - 4, fr->t + (r + 0.5) * ch + 3.5, "end", C_TICK, 10, NULL, lab);
        }
    }
    if (hm->row_group > 0 && hm->group_labels) {
        double gx = fr->l - (hm->row_labels && ch >= 8 ? 26 : 4);
        for (int g = 0; g * hm->row_group < rows; g++) {
            double cy = fr->t + (g * hm->row_group + 0.5 * hm->row_group) * ch;
            text_at(f, gx, cy + 4, "end", C_LABEL, 11, "font-weight=\"600\"", hm->group_labels[g]);
            if (g > 0)
                fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ffffff\" stroke-width=\"2\"/>\n",
                        fr->l - (hm->row_labels && ch >= 8 ? 24 : 0), fr->t + g * hm->row_group * ch, fr->r,
                        fr->t + g * hm->row_group * ch);
        }
    }
}

int plot_heatmap(FILE *f, const PlotHeatmap *hm, const double *z, int rows, int cols)
{
    Frame fr;
    fr.w = hm->width > 0 ? hm->width : 520;
    fr.h = hm->height > 0 ? hm->height : 300;
    double left = 8 + (hm->ylabel ? 18 : 0) + 26 + (hm->row_group > 0 && hm->group_labels ? 26 : 0);
    double right = hm->colorbar ? (hm->colorbar_label ? 80 : 56) : 8;
    fr.l = left;
    fr.r = fr.w - right;
    fr.t = hm->title ? 22 : 6;
    fr.b = fr.h - 18 - (hm->xlabel ? 16 : 0);
    if (rows < 1 || cols < 1) {
        svg_open(f, fr.w, fr.h);
        empty_note(f, &fr, "no data");
        fputs("</svg>\n", f);
        return 0;
    }
    if (hm->square) {
        double side = fmin(fr.r - fr.l, fr.b - fr.t);
        fr.r = fr.l + side;
        fr.b = fr.t + side;
    }
    double cw = (fr.r - fr.l) / cols, ch = (fr.b - fr.t) / rows;
    svg_open(f, fr.w, fr.h);
    if (hm->title) text_at(f, (fr.l + fr.r) / 2, 15, "middle", C_LABEL, 12, "font-weight=\"600\"", hm->title);
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#f4f5f7\"/>\n",
            fr.l, fr.t, fr.r - fr.l, fr.b - fr.t);
    fprintf(f, "<g transform=\"translate(%.2f %.2f) scale(%.5f %.5f)\" shape-rendering=\"crispEdges\">\n",
            fr.l, fr.t, cw, ch);
    if (hm->tooltips) heat_cells_rects(f, hm, z, rows, cols);
    else heat_cells_paths(f, hm, z, rows, cols);
    fputs("</g>\n", f);
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"%s\"/>\n",
            fr.l, fr.t, fr.r - fr.l, fr.b - fr.t, C_AXIS);
    heat_ticks(f, hm, &fr, cw, ch, rows, cols);
    if (hm->xlabel) text_at(f, (fr.l + fr.r) / 2, fr.b + 30, "middle", C_LABEL, 11, NULL, hm->xlabel);
    if (hm->ylabel) {
        char tr[64];
        double cy = (fr.t + fr.b) / 2;
        snprintf(tr, sizeof tr, "transform=\"rotate(-90 12 %.1f)\"", cy);
        text_at(f, 12, cy, "middle", C_LABEL, 11, tr, hm->ylabel);
    }
    if (hm->colorbar) colorbar_draw(f, hm, fr.r + 12, fr.t, fr.b);
    fputs("</svg>\n", f);
    return 0;
}

/* ---------- bar charts ---------- */

int plot_bars(FILE *f, const PlotAxes *ax, const char *const *categories, int n_cat,
              const PlotBarSeries *s, int n_series)
{
    const char *labels[64], *colors[64];
    int n_leg = n_series < 64 ? n_series : 64;
    for (int k = 0; k < n_leg; k++) {
        labels[k] = s[k].label;
        colors[k] = s[k].color ? s[k].color : plot_palette(k);
    }
    Frame fr;
    frame_for(&fr, ax, 0);
    frame_for(&fr, ax, legend_rows(labels, n_leg, fr.r - fr.l));
    svg_open(f, fr.w, fr.h);
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < n_series; k++)
        for (int c = 0; c < n_cat; c++) {
            double v = s[k].v[c];
            if (!isfinite(v)) continue;
            lo = fmin(lo, v);
            hi = fmax(hi, v);
        }
    if (!(lo <= hi) || n_cat < 1) {
        empty_note(f, &fr, "no data");
        fputs("</svg>\n", f);
        return 0;
    }
    Scale sy = { fmin(lo, 0), fmax(hi, 0), 0, fr.b, fr.t };
    if (ax->fix_y) { sy.lo = ax->ymin; sy.hi = ax->ymax; }
    else nice_range(&sy.lo, &sy.hi, (int)((fr.b - fr.t) / 45) + 1);
    double tk[MAX_TICKS], step;
    char lab[32];
    int ny = make_ticks(tk, &step, &sy, (int)((fr.b - fr.t) / 45) + 1);
    for (int i = 0; i < ny; i++) {
        double py = scale_map(&sy, tk[i]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", fr.l, py, fr.r, py, C_GRID);
        format_tick(lab, sizeof lab, tk[i], step);
        text_at(f, fr.l - 6, py + 3.5, "end", C_TICK, 11, NULL, lab);
    }
    double band = (fr.r - fr.l) / n_cat, bw = band * 0.8 / (n_series > 0 ? n_series : 1);
    double base = scale_map(&sy, fmax(sy.lo, fmin(0, sy.hi)));
    int label_every = band >= 28 ? 1 : (int)ceil(28 / band);
    for (int c = 0; c < n_cat; c++) {
        double x0 = fr.l + c * band + band * 0.1;
        for (int k = 0; k < n_series; k++) {
            double v = s[k].v[c];
            if (!isfinite(v)) continue;
            double py = scale_map(&sy, fmin(fmax(v, sy.lo), sy.hi));
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>",
                    x0 + k * bw, fmin(py, base), fmax(bw - 1, 0.5), fabs(base - py), colors[k < 64 ? k : 63]);
            plot_write_escaped(f, categories ? categories[c] : "");
            fputs(" ", f);
            plot_write_escaped(f, s[k].label ? s[k].label : "");
            fprintf(f, ": %.4g</title></rect>\n", v);
        }
        if (c % label_every == 0) {
            if (categories) text_at(f, fr.l + (c + 0.5) * band, fr.b + 16, "middle", C_TICK, 11, NULL, categories[c]);
        }
    }
    fprintf(f, "<path d=\"M%.1f %.1fV%.1fH%.1f\" fill=\"none\" stroke=\"%s\"/>\n", fr.l, fr.t, fr.b, fr.r, C_AXIS);
    draw_refs(f, ax, &fr, &sy);
    if (ax->xlabel) text_at(f, (fr.l + fr.r) / 2, fr.h - 6, "middle", C_LABEL, 12, NULL, ax->xlabel);
    if (ax->ylabel) {
        char tr[64];
        double cy = (fr.t + fr.b) / 2;
        snprintf(tr, sizeof tr, "transform=\"rotate(-90 14 %.1f)\"", cy);
        text_at(f, 14, cy, "middle", C_LABEL, 12, tr, ax->ylabel);
    }
    legend_draw(f, &fr, labels, colors, NULL, n_leg, 1);
    fputs("</svg>\n", f);
    return n_cat;
}
