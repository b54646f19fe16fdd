/* test_report.c: report.html from a synthetic run folder (written with jsonw, as the trainer does):
 * every section present, onsets right, SVG well-formed with no NaN coordinates, bad input named by
 * file:line, and the page rendered by headless Chromium without errors. */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "analysis/jsonw.h"
#include "analysis/report.h"
#include "train/config_flat.h"

enum { L = 3, H = 4, T = 32, LAST_STEP = 3000, PROBE_EVERY = 50 };

/* alpha_0 of head (l, h) at step s: a third of the heads rise to ~0.85 (later in deeper layers),
 * head (1, 1) spikes above 0.3 and falls back (no onset), the rest stay near uniform. */
static double synth_alpha0(int l, int h, int step)
{
    double uniform = 0.12;
    if ((l * H + h) % 3 == 0) {
        double mid = 600 + 500 * l;
        return uniform + 0.75 / (1 + exp(-(step - mid) / 120.0));
    }
    if (l == 1 && h == 1) return uniform + 0.4 * exp(-pow((step - 1200) / 200.0, 2));
    return uniform + 0.01 * sin(step * 0.01 + h);
}

/* The onset by its definition, from the test's own curves: first probe step after which alpha_0
 * stays strictly above the threshold; -1 when the last value is not above it. */
static int expected_onset(int l, int h, double thr)
{
    int onset = -1;
    for (int s = 0; s <= LAST_STEP; s += PROBE_EVERY) {
        if (synth_alpha0(l, h, s) > thr) { if (onset < 0) onset = s; }
        else onset = -1;
    }
    return onset;
}

static void write_probe_line(JsonWriter *w, int step, int heavy)
{
    float a0[L][H], vnr[L][H], ent[L][H];
    int locs[L][H];
    int above[3] = { 0 };
    float mx = 0, mean = 0;
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) {
            a0[l][h] = (float)synth_alpha0(l, h, step);
            locs[l][h] = a0[l][h] > 0.3f ? 0 : (l == 2 && h == 2 ? 5 : 0);
            vnr[l][h] = 1.0f - 0.8f * (a0[l][h] - 0.12f);
            ent[l][h] = 1.0f - a0[l][h];
            above[0] += a0[l][h] > 0.3f;
            above[1] += a0[l][h] > 0.5f;
            above[2] += a0[l][h] > 0.8f;
            mx = fmaxf(mx, a0[l][h]);
            mean += a0[l][h] / (L * H);
        }
    int shape[2] = { L, H };
    jsonw_key_object_begin(w, "probe");
    jsonw_key_floats(w, "alpha0", &a0[0][0], shape, 2);
    jsonw_key_object_begin(w, "sink_rate");
    jsonw_key_number(w, "0.3", above[0] / (double)(L * H));
    jsonw_key_number(w, "0.5", above[1] / (double)(L * H));
    jsonw_key_number(w, "0.8", above[2] / (double)(L * H));
    jsonw_object_end(w);
    jsonw_key_number(w, "alpha0_max", mx);
    jsonw_key_number(w, "alpha0_mean", mean);
    jsonw_key_number(w, "uniform_alpha0", 0.1267);
    jsonw_key_ints(w, "sink_location", &locs[0][0], shape, 2);
    jsonw_key_floats(w, "value_norm_ratio", &vnr[0][0], shape, 2);
    jsonw_key_floats(w, "entropy_norm", &ent[0][0], shape, 2);
    float massive[L];
    for (int l = 0; l < L; l++) massive[l] = 1.0f + 40.0f * a0[l][0];
    jsonw_key_floats(w, "massive_ratio", massive, (int[]){ L }, 1);
    jsonw_key_number(w, "future_metric_nobody_knows", 1.0); /* unknown keys are ignored */
    /* query classes (bigram_backcopy): dormant queries follow alpha_0, active ones stay low */
    float act[L][H], dor[L][H];
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) {
            dor[l][h] = fminf(1.0f, a0[l][h] + 0.1f);
            act[l][h] = 0.02f;
        }
    jsonw_key_floats(w, "alpha_bos_active", &act[0][0], shape, 2);
    jsonw_key_floats(w, "alpha_bos_dormant", &dor[0][0], shape, 2);
    jsonw_key_number(w, "loss_copy", 3.0 * exp(-step / 400.0));
    jsonw_key_number(w, "loss_markov", 2.4 + exp(-step / 300.0));
    if (heavy) {
        float coll[L + 1], qk[L][H];
        for (int l = 0; l <= L; l++) coll[l] = 0.2f + 0.1f * l + step * 1e-4f;
        for (int l = 0; l < L; l++)
            for (int h = 0; h < H; h++) qk[l][h] = 0.1f * h - 0.05f * l + step * 1e-5f;
        jsonw_key_floats(w, "collapse_cos", coll, (int[]){ L + 1 }, 1);
        jsonw_key_floats(w, "qk_eig_mean", &qk[0][0], shape, 2);
        jsonw_key_number(w, "jacobian_norm", 3.0 + step * 1e-3);
    }
    jsonw_object_end(w);
}

static void write_metrics(const char *dir, const char *final_line)
{
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    JsonWriter w;
    jsonw_init(&w);
    for (int step = 0; step <= LAST_STEP; step += 10) {
        jsonw_reset(&w);
        jsonw_object_begin(&w);
        jsonw_key_int(&w, "step", step);
        jsonw_key_int(&w, "tokens", (long long)step * 4096 + 4096);
        jsonw_key_number(&w, "epoch", step / 1500.0);
        jsonw_key_number(&w, "loss", 5.5 * exp(-step / 600.0) + 1.6 + 0.05 * sin(step * 0.37));
        jsonw_key_number(&w, "lr", step < 100 ? 1e-3 * step / 100 : 1e-3 * (0.55 + 0.45 * cos(3.14159265358979 * step / LAST_STEP)));
        jsonw_key_number(&w, "grad_norm", 0.8 + 2.0 * exp(-step / 300.0));
        jsonw_key_number(&w, "tok_per_s", step == 0 ? NAN : 21000 + 500 * sin(step)); /* NaN: omitted */
        if (step % 250 == 0) jsonw_key_number(&w, "val_loss", 5.4 * exp(-step / 620.0) + 1.75);
        if (step % PROBE_EVERY == 0) write_probe_line(&w, step, step % 500 == 0);
        jsonw_object_end(&w);
        assert_int_equal(jsonw_write_line(&w, f), 0);
    }
    if (final_line) fprintf(f, "%s\n", final_line);
    jsonw_free(&w);
    fclose(f);
}

/* Causal attention of sequence 0 with sink strength s on key 0 (rows sum to 1). */
static void synth_attn(float *a, double s)
{
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            double rest = (1 - s) / (i + 1);
            a[i * T + j] = j > i ? 0.0f : (float)(rest + (j == 0 ? s : 0) + (j == i ? 0 : 0));
        }
}

static void write_probe_file(const char *dir, int step)
{
    static float attn[L][H][T][T], alpha[L][H][T], vnorm[L][H][T];
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) {
            double a0 = synth_alpha0(l, h, step), s = (a0 - 0.12) / 0.88;
            synth_attn(&attn[l][h][0][0], s > 0 ? s : 0);
            for (int k = 0; k < T; k++) {
                double acc = 0;
                for (int i = k; i < T; i++) acc += attn[l][h][i][k];
                alpha[l][h][k] = (float)(acc / (T - k));
                vnorm[l][h][k] = (float)(k == 0 ? 2.0 - 1.5 * s : 2.0 + 0.2 * sin(k + h));
            }
        }
    JsonWriter w;
    jsonw_init(&w);
    jsonw_object_begin(&w);
    jsonw_key_int(&w, "step", step);
    jsonw_key_int(&w, "T", T);
    jsonw_key_int(&w, "n_layer", L);
    jsonw_key_int(&w, "n_head", H);
    int tokens[T];
    char text[T + 1];
    for (int t = 0; t < T; t++) { text[t] = "Q: <why> & \"sinks\" form early.\n"[t % 31]; tokens[t] = (unsigned char)text[t]; }
    text[T] = 0;
    jsonw_key_ints(&w, "tokens", tokens, (int[]){ T }, 1);
    jsonw_key_string(&w, "text", text);
    jsonw_key_floats(&w, "attn", &attn[0][0][0][0], (int[]){ L, H, T, T }, 4);
    jsonw_key_floats(&w, "value_norm", &vnorm[0][0][0], (int[]){ L, H, T }, 3);
    jsonw_key_floats(&w, "alpha", &alpha[0][0][0], (int[]){ L, H, T }, 3);
    jsonw_object_end(&w);
    char path[512];
    snprintf(path, sizeof path, "%s/probe/step_%07d.json", dir, step);
    test_write_text(path, jsonw_text(&w, NULL));
    jsonw_free(&w);
}

static const char CONFIG[] =
    "model:\n  kind: causal\n  n_layer: 3\n  d_model: 64\n  n_head: 4\n  pos_encoding: rope\n"
    "  attention:\n    normalizer: softmax\n    sink: none\n    gate: none\n  mask:\n    window: 0\n    edits: []\n"
    "data:\n  corpus: fortunes\n  pack: concat\n  bos: none\n  seq_len: 128\n"
    "train:\n  steps: 3000\n  lr: 1.0e-3\n  weight_decay: 0.1\n"
    "probe:\n  every: 50\n  n_seq: 100\n  seq_len: 32\n";

static void make_run(char *dir, size_t cap, const char *tag, const char *final_line)
{
    test_tmpdir(dir, cap, tag);
    char path[600];
    snprintf(path, sizeof path, "%s/probe", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    test_write_text(path, CONFIG);
    write_metrics(dir, final_line);
    static const int ckpts[] = { 0, 500, 1000, 2000, 3000 };
    for (int i = 0; i < 5; i++) write_probe_file(dir, ckpts[i]);
}

/* The report as `sinklab report` writes it: config.yaml read by the config engine, then the page. */
static int report_of(const char *dir, char *err, size_t n_err)
{
    KeyValueList cfg = { 0 };
    if (config_flatten_run(dir, &cfg, err, n_err) != 0) fail_msg("%s/config.yaml: %s", dir, err);
    int rc = report_write(dir, &cfg, err, n_err);
    kv_free(&cfg);
    return rc;
}

static char *make_report(const char *dir, size_t *len)
{
    char err[512] = "";
    if (report_of(dir, err, sizeof err) != 0) fail_msg("report_write(%s) failed: %s", dir, err);
    char path[600];
    snprintf(path, sizeof path, "%s/report.html", dir);
    char *html = test_read_file(path, len);
    if (!html) fail_msg("%s was not written", path);
    return html;
}

/* The text of the section with this id (up to the next "<section"), NUL-terminated copy. */
static char *section(const char *html, const char *id)
{
    char key[64];
    snprintf(key, sizeof key, "<section id=\"%s\"", id);
    const char *a = strstr(html, key);
    if (!a) fail_msg("report.html has no section id=\"%s\"", id);
    const char *b = strstr(a + strlen(key), "<section");
    size_t n = b ? (size_t)(b - a) : strlen(a);
    char *s = malloc(n + 1);
    memcpy(s, a, n);
    s[n] = 0;
    return s;
}

/* Every <svg>...</svg> has balanced, properly nested tags and no NaN/inf in it. Returns the count. */
static int check_svgs(const char *html)
{
    int n_svg = 0;
    for (const char *p = html; (p = strstr(p, "<svg")); ) {
        const char *end = strstr(p, "</svg>");
        if (!end) fail_msg("<svg> number %d has no </svg>", n_svg);
        end += 6;
        char stack[64][16];
        int depth = 0;
        for (const char *q = p; q < end; q++) {
            if (*q != '<') continue;
            const char *close = memchr(q, '>', (size_t)(end - q));
            if (!close) fail_msg("svg %d: unterminated tag at offset %ld", n_svg, (long)(q - html));
            char name[16] = { 0 };
            int is_end = q[1] == '/', self = close[-1] == '/';
            const char *nm = q + 1 + is_end;
            int k = 0;
            while (k < 15 && nm[k] && nm[k] != ' ' && nm[k] != '>' && nm[k] != '/' && nm[k] != '\n') { name[k] = nm[k]; k++; }
            if (is_end) {
                if (depth == 0 || strcmp(stack[depth - 1], name) != 0)
                    fail_msg("svg %d: </%s> closes <%s> at offset %ld", n_svg, name, depth ? stack[depth - 1] : "(nothing)",
                             (long)(q - html));
                depth--;
            } else if (!self) {
                if (depth == 64) fail_msg("svg %d: nesting deeper than 64", n_svg);
                snprintf(stack[depth++], 16, "%s", name);
            }
            q = close;
        }
        if (depth != 0) fail_msg("svg %d: %d unclosed tags, innermost <%s>", n_svg, depth, stack[depth - 1]);
        for (const char *q = p; q < end - 3; q++)
            if ((!strncmp(q, "nan", 3) || !strncmp(q, "inf", 3)) && !(q > p && ((q[-1] >= 'a' && q[-1] <= 'z') ||
                                                                               (q[-1] >= 'A' && q[-1] <= 'Z'))) &&
                !(q[3] >= 'a' && q[3] <= 'z'))
                fail_msg("svg %d: non-finite number near \"%.40s\"", n_svg, q > p + 20 ? q - 20 : p);
        n_svg++;
        p = end;
    }
    assert_int_equal(n_svg, test_count(html, "</svg>"));
    return n_svg;
}

static void test_report_has_every_section_and_wellformed_svg(void **state)
{
    char dir[512];
    make_run(dir, sizeof dir, "report_sections", NULL);
    size_t len;
    char *html = make_report(dir, &len);
    static const char *ids[] = { "summary", "training", "sinks", "heads", "onset", "attention", "positions", "mechanics" };
    for (int i = 0; i < 8; i++) free(section(html, ids[i]));
    static const char *must[] = { "<!DOCTYPE html>", "</html>", "Loss vs step", "Sink rate vs step", "α₀ per head over training",
                                  "Onset step per head", "Value norm per position", "Attention received per position",
                                  "Value norm of key 0", "Massive activation at position 0", "Collapse: mean pairwise cosine",
                                  "QK spectrum: mean eigenvalue", "Jacobian norm", "Attention entropy (normalised)",
                                  "L 3 · d 64 · H 4", "rope", "step 3000", "&lt;why&gt; &amp; &quot;sinks&quot;" };
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
        if (!strstr(html, must[i])) fail_msg("report.html lacks \"%s\"", must[i]);
    /* Self-contained: no scripts, no external fetches. */
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "src=\"http"));
    assert_null(strstr(html, "href=\"http"));
    int n_svg = check_svgs(html);
    if (n_svg < 20) fail_msg("only %d SVG figures, want >= 20 (charts + 3 checkpoints x 2 layers x 4 heads)", n_svg);
    /* Attention maps: first, middle and last checkpoint; first and last layer; all heads. */
    char *att = section(html, "attention");
    for (int i = 0; i < 3; i++) {
        static const int steps[] = { 0, 1000, 3000 };
        char h4[64];
        snprintf(h4, sizeof h4, "<h4>step %d</h4>", steps[i]);
        if (!strstr(att, h4)) fail_msg("attention section lacks checkpoint %s", h4);
    }
    /* every layer: L x H = 12 heads is within MAPS_EVERY_LAYER_MAX */
    assert_int_equal(test_count(att, "<svg"), 3 * L * H);
    assert_non_null(strstr(att, "L2 h3"));
    assert_non_null(strstr(att, "L1 h0"));
    assert_non_null(strstr(att, "in every layer"));
    free(att);
    free(html);
}

static void test_onset_table_matches_the_definition(void **state)
{
    char dir[512];
    make_run(dir, sizeof dir, "report_onset", NULL);
    char *html = make_report(dir, NULL);
    char *on = section(html, "onset");
    int never = 0;
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) {
            int want = expected_onset(l, h, REPORT_ONSET_THRESHOLD);
            never += want < 0;
            if (want >= 0) {
                char cell[64];
                snprintf(cell, sizeof cell, "<td class=\"sink\">step %d<", want);
                if (!strstr(on, cell)) fail_msg("onset of L%d h%d: no cell \"%s\" in the onset table", l, h, cell);
            }
        }
    assert_int_equal(expected_onset(1, 1, REPORT_ONSET_THRESHOLD), -1); /* the transient spike */
    if (test_count(on, ">never<") != never) fail_msg("onset table: %d 'never' cells, want %d", test_count(on, ">never<"), never);
    assert_non_null(strstr(on, "Computed from the probe lines"));
    assert_non_null(strstr(on, "argmax k=5")); /* L2 h2 sink location is not key 0 */
    free(on);
    free(html);
}

/* The heatmap's colour runs from the uniform baseline to the run's largest alpha_0, and each
 * head with an onset carries one onset mark. */
static void test_heatmap_scale_and_onset_marks(void **state)
{
    char dir[512];
    make_run(dir, sizeof dir, "report_heat", NULL);
    char *html = make_report(dir, NULL);
    char *heads = section(html, "heads");
    double mx = 0;
    int onsets = 0;
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) {
            for (int st = 0; st <= LAST_STEP; st += PROBE_EVERY) mx = fmax(mx, (float)synth_alpha0(l, h, st));
            onsets += expected_onset(l, h, REPORT_ONSET_THRESHOLD) >= 0;
        }
    char want[160];
    snprintf(want, sizeof want, "Colour runs from %.3f, the α₀ of uniform attention", 0.1267);
    if (!strstr(heads, want)) fail_msg("heads section lacks \"%s\"", want);
    snprintf(want, sizeof want, "to %.3f, this run's largest α₀", mx);
    if (!strstr(heads, want)) fail_msg("heads section lacks \"%s\"", want);
    assert_int_equal(test_count(heads, "<title>onset</title>"), onsets);
    free(heads);
    free(html);
}

/* Runs whose probe logged query-class metrics get the active/dormant section and a BOS line in
 * the onset table; runs without them do not. */
static void test_active_dormant_section_when_classes_logged(void **state)
{
    char dir[512];
    make_run(dir, sizeof dir, "report_classes", NULL);
    char *html = make_report(dir, NULL);
    char *cls = section(html, "classes");
    assert_non_null(strstr(cls, "Attention on BOS: dormant vs active queries"));
    assert_non_null(strstr(cls, "Loss by query class"));
    assert_int_equal(test_count(cls, "<svg"), 2);
    free(cls);
    assert_non_null(strstr(html, "<a href=\"#classes\">"));   /* the nav links to it */
    char *on = section(html, "onset");
    assert_non_null(strstr(on, "BOS: dormant"));
    free(on);
    free(html);
}

/* The nav links an intervention analysis (RUN/analysis/interventions.html) only when there is one. */
static void test_interventions_page_is_linked_when_present(void **state)
{
    (void)state;
    char dir[512], path[700];
    make_run(dir, sizeof dir, "report_iv", NULL);
    char *html = make_report(dir, NULL);
    if (strstr(html, "analysis/interventions.html")) fail_msg("%s links an analysis that does not exist", dir);
    free(html);
    snprintf(path, sizeof path, "%s/analysis", dir);
    if (mkdir(path, 0755) != 0) fail_msg("cannot create %s", path);
    test_write_in(NULL, 0, path, "interventions.html", "<!DOCTYPE html><title>iv</title>");
    html = make_report(dir, NULL);
    assert_non_null(strstr(html, "<a href=\"analysis/interventions.html\">Interventions</a>"));
    free(html);
}

/* Runs made before summary.json kept the summary as a last {"final": ...} line; still read. */
static void test_onset_from_final_line_wins(void **state)
{
    char dir[512];
    make_run(dir, sizeof dir, "report_final",
             "{\"final\": {\"onset\": {\"threshold\": 0.5, \"steps\": [[777,-1,-1,-1],[-1,-1,-1,-1],[-1,-1,-1,4242]]}}}");
    char *html = make_report(dir, NULL);
    char *on = section(html, "onset");
    assert_non_null(strstr(on, "step 777<"));
    assert_non_null(strstr(on, "step 4242<"));
    assert_int_equal(test_count(on, ">never<"), L * H - 2);
    assert_non_null(strstr(on, "θ = 0.5"));
    assert_non_null(strstr(on, "final summary"));
    free(on);
    free(html);
}

/* A run writes its onset table into summary.json when it completes; the report reads it there. */
static void test_onset_from_summary_json_wins(void **state)
{
    char dir[512], path[600];
    make_run(dir, sizeof dir, "report_summary", NULL);
    snprintf(path, sizeof path, "%s/summary.json", dir);
    test_write_text(path, "{\"step\": 3000, \"onset\": {\"threshold\": 0.4, \"steps\": [[-1,-1,-1,-1],[-1,-1,555,-1],[-1,-1,-1,-1]]}}\n");
    char *html = make_report(dir, NULL);
    char *on = section(html, "onset");
    assert_non_null(strstr(on, "step 555<"));
    assert_int_equal(test_count(on, ">never<"), L * H - 1);
    assert_non_null(strstr(on, "θ = 0.4"));
    assert_non_null(strstr(on, "summary.json"));
    free(on);
    free(html);
}

static void test_malformed_line_error_names_file_and_line(void **state)
{
    char dir[512], path[600], err[512] = "";
    make_run(dir, sizeof dir, "report_bad", NULL);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "a");
    fputs("{\"step\": 3010, \"loss\": NaN}\n{\"step\": 3020}\n", f);
    fclose(f);
    assert_int_equal(report_of(dir, err, sizeof err), -1);
    char want[640];
    snprintf(want, sizeof want, "%s:%d:", path, LAST_STEP / 10 + 2);
    if (!strstr(err, want)) fail_msg("error \"%s\" should name %s", err, want);

    /* A probe metric with the wrong shape is named with its key. */
    make_run(dir, sizeof dir, "report_badshape", NULL);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    f = fopen(path, "a");
    fputs("{\"step\": 3050, \"probe\": {\"alpha0\": [[0.1, 0.2]]}}\n", f);
    fclose(f);
    assert_int_equal(report_of(dir, err, sizeof err), -1);
    if (!strstr(err, "probe.alpha0") || !strstr(err, "3 x 4")) fail_msg("error \"%s\" should name probe.alpha0 and 3 x 4", err);

    assert_int_equal(report_of("/nonexistent/run", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/run/metrics.jsonl"));
}

static void test_partial_last_line_is_skipped_and_noted(void **state)
{
    char dir[512], path[600];
    make_run(dir, sizeof dir, "report_partial", NULL);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "a");
    fputs("{\"step\": 3010, \"loss\": 1.7, \"pro", f);
    fclose(f);
    char *html = make_report(dir, NULL);
    assert_non_null(strstr(html, "last line of metrics.jsonl is incomplete"));
    free(html);
}

static void test_minimal_run_without_probes_still_renders(void **state)
{
    char dir[512], path[600];
    test_tmpdir(dir, sizeof dir, "report_minimal");
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    test_write_text(path, "{\"step\":0,\"loss\":5.5}\n{\"step\":1,\"loss\":5.2,\"val_loss\":5.3}\n");
    char *html = make_report(dir, NULL);
    check_svgs(html);
    assert_non_null(strstr(html, "No probe lines"));
    assert_non_null(strstr(html, "config.yaml not found"));
    assert_null(strstr(html, "<section id=\"classes\""));   /* no query classes logged */
    assert_null(strstr(html, "<a href=\"#classes\">"));
    free(html);
}

/* More probe lines than the reader's first allocation (256), with a per-position metric on some of
 * them: every row is kept and the per-position chart drawn from the logged steps. */
static void test_many_probe_lines_with_a_per_position_metric(void **state)
{
    char dir[512], path[600];
    test_tmpdir(dir, sizeof dir, "report_many");
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int step = 0; step < 600; step++) {
        fprintf(f, "{\"step\": %d, \"loss\": 2.0, \"probe\": {\"alpha0\": [[0.1, 0.2]]", step);
        if (step % 100 == 0) fprintf(f, ", \"jacobian_by_pos\": [1.0, 2.0, %d.5]", step / 100 + 3);
        fputs("}}\n", f);
    }
    fclose(f);
    char *html = make_report(dir, NULL);
    check_svgs(html);
    char *mech = section(html, "mechanics");
    assert_non_null(strstr(mech, "Jacobian norm per input position"));
    assert_non_null(strstr(mech, "step 0"));
    assert_non_null(strstr(mech, "step 500"));
    free(mech);
    free(html);
}

/* Headless Chromium renders the page: a non-trivial screenshot, the DOM complete, no console errors. */
static void test_chromium_renders_the_report(void **state)
{
    char out[8192];
    if (test_run("command -v chromium", out, sizeof out) != 0)
        fail_msg("chromium not found: the report test needs it. Install it with: apt-get install chromium");
    char dir[512];
    make_run(dir, sizeof dir, "report_chromium", NULL);
    free(make_report(dir, NULL));
    char profile[512], cmd[4096], png[700];
    test_tmpdir(profile, sizeof profile, "chromium_profile");
    snprintf(png, sizeof png, "%s/report.png", dir);
    const char *flags = "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
                        "--disable-background-networking --disable-component-update --disable-sync "
                        "--disable-dev-shm-usage --hide-scrollbars";
    snprintf(cmd, sizeof cmd, "timeout 120 chromium %s --user-data-dir=%s --screenshot=%s --window-size=1400,4000 "
             "file://%s/report.html", flags, profile, png, dir);
    int rc = test_run(cmd, out, sizeof out);
    struct stat st;
    if (rc != 0 || stat(png, &st) != 0) fail_msg("chromium screenshot failed (exit %d): %s", rc, out);
    if (st.st_size < 100000) fail_msg("screenshot %s is only %ld bytes: the page looks empty", png, (long)st.st_size);

    static char dom[1 << 21];
    snprintf(cmd, sizeof cmd, "timeout 120 chromium %s --user-data-dir=%s --enable-logging=stderr --v=0 --dump-dom "
             "file://%s/report.html", flags, profile, dir);
    rc = test_run(cmd, dom, sizeof dom);
    if (rc != 0) fail_msg("chromium --dump-dom failed (exit %d)", rc);
    if (!strstr(dom, "id=\"mechanics\"") || !strstr(dom, "</footer>"))
        fail_msg("chromium's DOM lacks the last section/footer: the page did not load completely");
    static const char *bad[] = { "Uncaught", "CONSOLE", "Failed to load", "ERR_FILE_NOT_FOUND" };
    for (int i = 0; i < 4; i++)
        if (strstr(dom, bad[i])) fail_msg("chromium reported \"%s\" while loading the report", bad[i]);
    printf("screenshot: %s (%ld bytes)\n", png, (long)st.st_size);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_has_every_section_and_wellformed_svg),
        cmocka_unit_test(test_onset_table_matches_the_definition),
        cmocka_unit_test(test_heatmap_scale_and_onset_marks),
        cmocka_unit_test(test_active_dormant_section_when_classes_logged),
        cmocka_unit_test(test_interventions_page_is_linked_when_present),
        cmocka_unit_test(test_onset_from_final_line_wins),
        cmocka_unit_test(test_onset_from_summary_json_wins),
        cmocka_unit_test(test_malformed_line_error_names_file_and_line),
        cmocka_unit_test(test_partial_last_line_is_skipped_and_noted),
        cmocka_unit_test(test_minimal_run_without_probes_still_renders),
        cmocka_unit_test(test_many_probe_lines_with_a_per_position_metric),
        cmocka_unit_test(test_chromium_renders_the_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
