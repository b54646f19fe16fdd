/* test_fidelity.c: what a researcher comparing with a paper, and a newcomer taking the first
 * steps, rely on (issue 16), end to end through the real binary: scaled attention at scale 1
 * reports what softmax reports; `sinklab data --probe` prints the trainer's probe set for every
 * data.bos; a probe longer than training warns; the Brown corpus is found from anywhere;
 * timings survive a resume; the live progress line; weights-only checkpoints. */
#include "tests/testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "analysis/json.h"
#include "analysis/probe.h"
#include "data/dataset.h"
#include "model/transformer.h"
#include "train/checkpoint.h"
#include "train/config.h"

static char OUT[1 << 21];
static char TINY[1024];

/* `sinklab ARGS` (printf-style), output in OUT */
#define sinklab(...) test_sinklab(OUT, sizeof OUT, __VA_ARGS__)

static void train_ok(const char *run, const char *extra)
{
    int rc = sinklab("train %s --out %s --quiet %s", TINY, run, extra);
    if (rc != 0) fail_msg("sinklab train --out %s %s: exit %d: %.2000s", run, extra, rc, OUT);
}

/* The JSON text of member `key` of a one-line object (a crude but exact textual cut: the
 * writer's output is canonical), malloc'd; NULL when absent. */
static char *member_text(const char *line, const char *key)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p) return NULL;
    p += strlen(pat);
    int depth = 0, in_str = 0;
    const char *q = p;
    for (; *q; q++) {
        if (in_str) {
            if (*q == '\\') q++;
            else if (*q == '"') in_str = 0;
            continue;
        }
        if (*q == '"') in_str = 1;
        else if (*q == '{' || *q == '[') depth++;
        else if (*q == '}' || *q == ']') {
            if (depth == 0) break;
            depth--;
        } else if (*q == ',' && depth == 0) break;
    }
    char *out = malloc((size_t)(q - p) + 1);
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = 0;
    return out;
}

/* Line number n (0-based) of text whose first key is "step", malloc'd copy; NULL past the end. */
static char *step_line(const char *text, int n)
{
    const char *p = text;
    for (int i = 0; *p;) {
        const char *end = strchr(p, '\n');
        if (!end) end = p + strlen(p);
        if (!strncmp(p, "{\"step\":", 8)) {
            if (i == n) {
                char *s = malloc((size_t)(end - p) + 1);
                memcpy(s, p, (size_t)(end - p));
                s[end - p] = 0;
                return s;
            }
            i++;
        }
        p = *end ? end + 1 : end;
    }
    return NULL;
}

/* ---- (c) scaled attention ------------------------------------------------------------------ */

/* scaled with scale 1 is softmax: with a kv_bias sink both runs have bit-identical losses, and
 * every probe metric (alpha, sink rates, entropy, the learned sink's share) is the same, because
 * scaled rows are divided by their scale, keeping the sink's share, instead of renormalised over
 * the data keys. */
static void test_scaled_at_scale_1_reports_what_softmax_reports(void **state)
{
    (void)state;
    char a[600], b[600], pa[700], pb[700];
    test_fresh_run(a, sizeof a, "fid_softmax");
    test_fresh_run(b, sizeof b, "fid_scaled");
    const char *common = "--set model.attention.sink=kv_bias --set train.steps=10 --set train.lr=0.01";
    char extra[600];
    train_ok(a, common);
    snprintf(extra, sizeof extra, "%s --set model.attention.normalizer=scaled --set model.attention.scale=1", common);
    train_ok(b, extra);
    snprintf(pa, sizeof pa, "%s/metrics.jsonl", a);
    snprintf(pb, sizeof pb, "%s/metrics.jsonl", b);
    char *ta = test_slurp(pa, NULL), *tb = test_slurp(pb, NULL);
    int n_probe = 0;
    for (int i = 0;; i++) {
        char *la = step_line(ta, i), *lb = step_line(tb, i);
        if (!la || !lb) {
            if (la || lb) fail_msg("%s and %s have different numbers of step lines", pa, pb);
            break;
        }
        const char *keys[] = {"loss", "val_loss", "probe"};
        for (int k = 0; k < 3; k++) {
            char *ma = member_text(la, keys[k]), *mb = member_text(lb, keys[k]);
            if ((ma == NULL) != (mb == NULL) || (ma && strcmp(ma, mb)))
                fail_msg("line %d: '%s' differs between softmax and scaled (scale 1):\n%.600s\n%.600s",
                         i, keys[k], ma ? ma : "(absent)", mb ? mb : "(absent)");
            n_probe += k == 2 && ma != NULL;
            free(ma);
            free(mb);
        }
        free(la);
        free(lb);
    }
    if (n_probe < 3) fail_msg("only %d probe lines compared", n_probe);
    /* the sink's share is logged, so the comparison covered a model whose rows do not sum to 1 */
    if (!strstr(tb, "\"alpha_learned_sink\"")) fail_msg("%s: no alpha_learned_sink", pb);
    free(ta);
    free(tb);
}

/* scaled rows and their sink sum to `scale`: the probe divides by it, so the shares do not depend
 * on it. One layer at step 0 (same initial weights, so the same scores; the weights differ by the
 * factor 2 exactly): scale 2 reports the same alpha, sink rates, learned-sink share and entropy as
 * scale 1. (Renormalising the data keys instead would report a learned-sink share twice as big.) */
static void test_scaled_metrics_do_not_depend_on_the_scale(void **state)
{
    (void)state;
    char a[600], b[600], pa[700], pb[700];
    test_fresh_run(a, sizeof a, "fid_scale1");
    test_fresh_run(b, sizeof b, "fid_scale2");
    const char *common = "--set model.attention.sink=kv_bias --set model.attention.normalizer=scaled "
                         "--set model.n_layer=1 --set train.steps=1";
    char extra[600];
    snprintf(extra, sizeof extra, "%s --set model.attention.scale=1", common);
    train_ok(a, extra);
    snprintf(extra, sizeof extra, "%s --set model.attention.scale=2", common);
    train_ok(b, extra);
    snprintf(pa, sizeof pa, "%s/metrics.jsonl", a);
    snprintf(pb, sizeof pb, "%s/metrics.jsonl", b);
    char *ta = test_slurp(pa, NULL), *tb = test_slurp(pb, NULL);
    char *la = step_line(ta, 0), *lb = step_line(tb, 0);
    if (!la || !lb) fail_msg("no step-0 line");
    char *qa = member_text(la, "probe"), *qb = member_text(lb, "probe");
    if (!qa || !qb) fail_msg("no step-0 probe");
    const char *keys[] = {"alpha0", "sink_rate", "sink_rate_gu", "alpha_learned_sink", "entropy",
                          "entropy_norm", "sink_location_alpha"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        char *ma = member_text(qa, keys[k]), *mb = member_text(qb, keys[k]);
        if (!ma || !mb || strcmp(ma, mb))
            fail_msg("step 0: probe.%s is %s at scale 1 and %s at scale 2 (want the same shares)",
                     keys[k], ma ? ma : "(absent)", mb ? mb : "(absent)");
        free(ma);
        free(mb);
    }
    free(qa); free(qb); free(la); free(lb); free(ta); free(tb);
}

/* ---- (d) the probe set that `data --probe` prints ----------------------------------------- */

static void load_tiny(Config *c, const char *set)
{
    char err[2048];
    config_defaults(c);
    if (config_load(c, TINY, err, sizeof err) || config_set(c, set, err, sizeof err) ||
        config_validate(c, err, sizeof err))
        fail_msg("%s: %s", TINY, err);
}

static void expect_row(const JsonValue *obj, const char *key, const int32_t *want, int T,
                       const char *bos, int seq)
{
    const JsonValue *v = json_get(obj, key);
    if (json_len(v) != T) fail_msg("data.bos %s: sequence %d: '%s' has %d values, want %d", bos, seq, key, json_len(v), T);
    for (int t = 0; t < T; t++)
        if ((int32_t)json_at(v, t)->number != want[t])
            fail_msg("data.bos %s: sequence %d: %s[%d] is %d in `data --probe`, %d in the "
                     "trainer's probe", bos, seq, key, t, (int)json_at(v, t)->number, (int)want[t]);
}

/* For every data.bos (probe.bos auto), `sinklab data --probe --json` prints exactly the batch
 * probe_init builds for the trainer: tokens, targets, positions, doc ids and loss mask. */
static void test_data_probe_prints_the_trainers_probe_set(void **state)
{
    (void)state;
    const char *modes[] = {"none", "window_start", "doc_start", "both"};
    for (int m = 0; m < 4; m++) {
        char set[64], err[2048];
        snprintf(set, sizeof set, "data.bos=%s", modes[m]);
        Config c;
        load_tiny(&c, set);
        Transformer model;
        if (transformer_init(&model, &c.model, c.train.seed, err, sizeof err)) fail_msg("%s", err);
        Dataset *ds = dataset_open(&c.data, err, sizeof err);
        if (!ds) fail_msg("%s", err);
        Probe p;
        if (probe_init(&p, &model, ds, &c.probe, err, sizeof err)) fail_msg("%s", err);
        int rc = sinklab("data %s --probe --json --set %s 2>/dev/null", TINY, set);
        if (rc != 0) fail_msg("data --probe --set %s: exit %d: %.500s", set, rc, OUT);
        int T = p.T, n = 0;
        for (char *line = OUT; *line; n++) {
            char *end = strchr(line, '\n');
            if (!end) fail_msg("unterminated line in `data --probe --json`");
            if (n >= p.B) fail_msg("data.bos %s: more than %d probe sequences printed", modes[m], p.B);
            JsonDoc d;
            if (json_parse(&d, line, (size_t)(end - line), "data --probe", n + 1, err, sizeof err))
                fail_msg("%s", err);
            size_t o = (size_t)n * T;
            expect_row(d.root, "tokens", p.batch.tokens + o, T, modes[m], n);
            expect_row(d.root, "targets", p.batch.targets + o, T, modes[m], n);
            expect_row(d.root, "positions", p.batch.positions + o, T, modes[m], n);
            expect_row(d.root, "doc_ids", p.batch.doc_ids + o, T, modes[m], n);
            int32_t lm[1024];
            for (int t = 0; t < T; t++) lm[t] = p.batch.loss_mask[o + t] != 0.0f;
            expect_row(d.root, "loss_mask", lm, T, modes[m], n);
            json_free(&d);
            line = end + 1;
        }
        if (n != p.B) fail_msg("data.bos %s: %d probe sequences printed, want %d", modes[m], n, p.B);
        /* auto follows the training data: a BOS at position 0 unless data.bos is none */
        if ((p.batch.tokens[0] == 256) != (m != 0))
            fail_msg("data.bos %s: probe sequence 0 starts with token %d", modes[m], (int)p.batch.tokens[0]);
        probe_free(&p);
        dataset_free(ds);
        transformer_free(&model);
    }
}

/* ---- (e) a probe longer than the training sequences ------------------------------------- */

/* probe.seq_len > data.seq_len with learned positions: train, analyze and data --probe all warn,
 * naming both lengths and the untrained positions; at equal lengths nothing is said. */
static void test_probe_longer_than_training_warns(void **state)
{
    (void)state;
    char run[600];
    test_fresh_run(run, sizeof run, "fid_long_probe");
    const char *set = "--set data.seq_len=16 --set probe.seq_len=32 --set train.steps=2 --set model.pos_encoding=learned";
    int rc = sinklab("train %s --out %s %s", TINY, run, set);
    if (rc != 0) fail_msg("train: exit %d: %.1500s", rc, OUT);
    const char *want = "probe.seq_len (32) is longer than data.seq_len (16)";
    if (!strstr(OUT, want) || !strstr(OUT, "16..31") || !strstr(OUT, "never trained"))
        fail_msg("train does not warn '%s' naming positions 16..31 as never trained: %.1500s", want, OUT);
    char log[700];
    snprintf(log, sizeof log, "%s/log.txt", run);
    char *text = test_slurp(log, NULL);
    if (!strstr(text, want)) fail_msg("%s lacks the warning", log);
    free(text);
    rc = sinklab("analyze %s/checkpoints/step_0000002.ckpt --out %s/an", run, run);
    if (rc != 0 || !strstr(OUT, want)) fail_msg("analyze: exit %d, no warning: %.1500s", rc, OUT);
    rc = sinklab("data %s --probe %s", TINY, set);
    if (rc != 0 || !strstr(OUT, want)) fail_msg("data --probe: exit %d, no warning: %.1500s", rc, OUT);
    rc = sinklab("data %s --probe --set data.seq_len=32 --set probe.seq_len=32", TINY);
    if (rc != 0 || strstr(OUT, "warning")) fail_msg("data --probe at equal lengths: exit %d: %.800s", rc, OUT);
}

/* ---- (b) omitted metrics: the report says why ---------------------------------------------- */

/* Key 0 blocked from every other query: alpha0 and its summaries are omitted, so the report's
 * sink-rate and heads sections state the T/4 rule instead of drawing empty charts. A normal run
 * draws Gu et al.'s curve beside sinklab's and never calls sinklab's sink rate Gu's. */
static void test_report_says_why_alpha0_is_missing(void **state)
{
    (void)state;
    char run[600], path[700];
    test_fresh_run(run, sizeof run, "fid_block0");
    train_ok(run, "--set train.steps=5 --set 'model.mask.edits=[{block_key: 0}]'");
    snprintf(path, sizeof path, "%s/report.html", run);
    char *html = test_slurp(path, NULL);
    const char *want = "fewer than T/4 of the probe's queries may see key 0";
    int n = 0;
    for (const char *p = html; (p = strstr(p, want)); p++) n++;
    if (n != 2) fail_msg("%s: the omission reason appears %d times, want 2 (sink rate, heads)", path, n);
    if (strstr(html, "No per-head α₀ logged")) fail_msg("%s: still says 'No per-head α₀ logged'", path);
    free(html);
    test_fresh_run(run, sizeof run, "fid_gu_report");
    train_ok(run, "--set train.steps=5");
    snprintf(path, sizeof path, "%s/report.html", run);
    html = test_slurp(path, NULL);
    if (!strstr(html, "Gu et al. ε = 0.3") || strstr(html, "Sink rate Sink₀"))
        fail_msg("%s: the sink-rate chart should draw Gu et al.'s curve as its own series", path);
    if (strstr(html, want)) fail_msg("%s: the omission reason shown for a run that logs alpha0", path);
    free(html);
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    char *m = test_slurp(path, NULL);
    if (!strstr(m, "\"sink_rate_gu\":{\"0.3\":")) fail_msg("%s: no sink_rate_gu object", path);
    free(m);
}

/* ---- (g, k) the Brown corpus from anywhere; "(1 file)" ------------------------------------ */

/* A copy of the binary in INST/bin with the Brown texts in INST/data_cache/brown, run from "/"
 * with SINKLAB_DATA_DIR unset, finds them; without them it names INST/data_cache/brown and says
 * where it looked; SINKLAB_DATA_DIR overrides. One file is "(1 file)". */
static void test_brown_is_found_beside_the_installation(void **state)
{
    (void)state;
    char dir[512], cmd[3000], path[900], cfg[700];
    test_tmpdir(dir, sizeof dir, "fid_brown");
    snprintf(cmd, sizeof cmd, "mkdir -p %s/inst/bin %s/inst/data_cache/brown %s/other/brown && cp %s %s/inst/bin/sinklab",
             dir, dir, dir, test_bin(), dir);
    if (test_run(cmd, OUT, sizeof OUT)) fail_msg("%s: %s", cmd, OUT);
    snprintf(cfg, sizeof cfg, "%s/brown.yaml", dir);
    test_write_text(cfg, "data:\n  corpus: brown\n  seq_len: 32\n  val_fraction: 0.25\n");
    char doc[4096] = "";
    for (int i = 0; i < 60; i++) strcat(doc, "The/at jury/nn said/vbd it/pps was/bedz fine/jj ./.\n");
    for (int i = 0; i < 12; i++) {
        snprintf(path, sizeof path, "%s/inst/data_cache/brown/ca%02d", dir, i + 1);
        test_write_text(path, doc);
    }
    snprintf(cmd, sizeof cmd, "cd / && env -u SINKLAB_DATA_DIR %s/inst/bin/sinklab data %s", dir, cfg);
    int rc = test_run(cmd, OUT, sizeof OUT);
    char want[900];
    snprintf(want, sizeof want, "brown: %s/inst/data_cache/brown (12 files)", dir);
    if (rc != 0 || !strstr(OUT, want)) fail_msg("`%s`: exit %d, want '%s': %.800s", cmd, rc, want, OUT);
    /* SINKLAB_DATA_DIR wins, and its absence of texts is named with where it looked */
    snprintf(cmd, sizeof cmd, "cd / && SINKLAB_DATA_DIR=%s/other/none %s/inst/bin/sinklab data %s", dir, dir, cfg);
    rc = test_run(cmd, OUT, sizeof OUT);
    snprintf(want, sizeof want, "%s/other/none/brown", dir);
    if (rc != 2 || !strstr(OUT, want) || !strstr(OUT, "$SINKLAB_DATA_DIR"))
        fail_msg("`%s`: exit %d, want 2 naming %s and $SINKLAB_DATA_DIR: %.800s", cmd, rc, want, OUT);
    snprintf(cmd, sizeof cmd, "rm -r %s/inst/data_cache && cd / && env -u SINKLAB_DATA_DIR %s/inst/bin/sinklab data %s",
             dir, dir, cfg);
    rc = test_run(cmd, OUT, sizeof OUT);
    snprintf(want, sizeof want, "%s/inst/data_cache/brown", dir);
    if (rc != 2 || !strstr(OUT, want) || !strstr(OUT, "looked in"))
        fail_msg("`%s`: exit %d, want 2 naming %s and where it looked: %.800s", cmd, rc, want, OUT);
    /* one file */
    snprintf(path, sizeof path, "%s/one.txt", dir);
    test_write_text(path, doc);
    snprintf(cfg, sizeof cfg, "%s/one.yaml", dir);
    char yaml[1200];
    snprintf(yaml, sizeof yaml, "data:\n  corpus: files\n  path: %s\n  separator: line\n  seq_len: 16\n", path);
    test_write_text(cfg, yaml);
    rc = sinklab("data %s", cfg);
    if (rc != 0 || !strstr(OUT, "(1 file)")) fail_msg("one corpus file: exit %d, want '(1 file)': %.800s", rc, OUT);
}

/* ---- (i) timings across a resume ---------------------------------------------------------- */

typedef struct { double train, eval, ckpt, probe, resumed_at, windows; } Timings;

/* summary.json's timings, and the sum over the step lines of metrics.jsonl of (tokens since the
 * previous line) / tok_per_s: the training time each line's throughput was measured over. */
static Timings read_timings(const char *run)
{
    char path[700], err[512];
    snprintf(path, sizeof path, "%s/summary.json", run);
    JsonDoc sd;
    if (json_parse_file(&sd, path, err, sizeof err)) fail_msg("%s", err);
    Timings t = {0};
    t.train = json_num_or(json_get(sd.root, "train_seconds"), NAN);
    t.eval = json_num_or(json_get(sd.root, "eval_seconds"), NAN);
    t.ckpt = json_num_or(json_get(sd.root, "checkpoint_seconds"), NAN);
    t.probe = json_num_or(json_get(sd.root, "probe_seconds"), NAN);
    t.resumed_at = json_num_or(json_get(sd.root, "resumed_at"), -1);
    json_free(&sd);
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    char *text = test_slurp(path, NULL);
    double prev = 0;
    for (char *p = text; *p;) {
        char *end = strchr(p, '\n');
        JsonDoc d;
        if (json_parse(&d, p, (size_t)(end - p), path, 1, err, sizeof err)) fail_msg("%s", err);
        double tok = json_num_or(json_get(d.root, "tokens"), NAN);
        double tps = json_num_or(json_get(d.root, "tok_per_s"), 0);
        if (tps > 0) t.windows += (tok - prev) / tps;
        prev = tok;
        json_free(&d);
        p = end + 1;
    }
    free(text);
    return t;
}

/* Resuming a finished run keeps its timings (no zeros); resuming after a crash at step 20 (its
 * checkpoint and summary lost) from step 10 gives a train_seconds that covers all 20 steps:
 * the sum of every line's measuring window, the resumed part's and the earlier one's. */
static void test_resume_keeps_the_timings_of_the_whole_run(void **state)
{
    (void)state;
    char run[600], cmd[2000];
    test_fresh_run(run, sizeof run, "fid_timings");
    /* all: the crash below loses step 20, and the resume needs step 10's moments */
    train_ok(run, "--set checkpoint.optimizer_state=all");
    Timings a = read_timings(run);
    if (!(a.train > 0 && a.eval > 0 && a.ckpt > 0 && a.probe > 0))
        fail_msg("fresh run: train %g eval %g checkpoint %g probe %g seconds, want all > 0", a.train, a.eval, a.ckpt, a.probe);
    if (a.resumed_at != -1) fail_msg("a run never resumed says resumed_at %g", a.resumed_at);
    int rc = sinklab("train %s --out %s --resume --set checkpoint.optimizer_state=all", TINY, run);
    if (rc != 0) fail_msg("resume of a finished run: exit %d: %.1500s", rc, OUT);
    Timings b = read_timings(run);
    if (b.train != a.train || b.eval != a.eval || b.ckpt != a.ckpt || b.probe != a.probe)
        fail_msg("resuming a finished run changed its timings: train %g -> %g, eval %g -> %g, "
                 "checkpoint %g -> %g, probe %g -> %g", a.train, b.train, a.eval, b.eval, a.ckpt,
                 b.ckpt, a.probe, b.probe);
    if (b.resumed_at != 20) fail_msg("resumed_at %g, want 20", b.resumed_at);
    /* a crash after step 20's line: its checkpoint, `latest` and the summary are gone */
    snprintf(cmd, sizeof cmd, "cd %s && rm checkpoints/step_0000020.ckpt checkpoints/latest summary.json", run);
    if (test_run(cmd, OUT, sizeof OUT)) fail_msg("%s: %s", cmd, OUT);
    rc = sinklab("train %s --out %s --resume", TINY, run);
    if (rc != 0) fail_msg("resume after a crash: exit %d: %.1500s", rc, OUT);
    Timings c = read_timings(run);
    if (c.resumed_at != 10) fail_msg("resumed_at %g, want 10", c.resumed_at);
    if (fabs(c.train - c.windows) > 1e-3 * c.windows)
        fail_msg("after a resume from step 10, train_seconds %.6g should cover the whole run: the "
                 "lines' windows add up to %.6g", c.train, c.windows);
    const char *done = strstr(OUT, "done: 20 steps, 2560 tokens, ");
    double secs = 0, tps = 0;
    if (!done || sscanf(done, "done: 20 steps, 2560 tokens, %lf s training (%lf tok/s)", &secs, &tps) != 2)
        fail_msg("no done line for 20 steps and 2560 tokens: %.1500s", OUT);
    if (fabs(tps - 2560 / c.train) > 0.01 * tps + 1)
        fail_msg("done line: %g tok/s, want the whole run's 2560 tokens / %g s", tps, c.train);
}

/* ---- (j) the live progress line ----------------------------------------------------------- */

/* On a terminal (script(1) gives one) the progress line at step 17 shows the validation loss of
 * step 10 and the alpha0 max of the probe at step 15, each with its step, matching metrics.jsonl. */
static void test_progress_line_shows_latest_val_and_alpha0_max_with_steps(void **state)
{
    (void)state;
    char run[600], cmd[2400];
    test_fresh_run(run, sizeof run, "fid_progress");
    snprintf(cmd, sizeof cmd, "script -qec '%s train %s --out %s' /dev/null", test_bin(), TINY, run);
    int rc = test_run(cmd, OUT, sizeof OUT);
    if (rc != 0) fail_msg("%s: exit %d: %.1500s", cmd, rc, OUT);
    const char *p = strstr(OUT, "step 17/20 | loss ");
    if (!p) fail_msg("no progress line for step 17: %.1500s", OUT);
    char line[400];
    snprintf(line, sizeof line, "%.*s", (int)strcspn(p, "\r\n"), p);
    char path[700];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    char *text = test_slurp(path, NULL);
    char *l10 = NULL, *l15 = NULL;
    for (int i = 0; !l15; i++) {
        char *l = step_line(text, i);
        if (!l) break;
        if (!strncmp(l, "{\"step\":10,", 11)) l10 = l;
        else if (!strncmp(l, "{\"step\":15,", 11)) l15 = l;
        else free(l);
    }
    if (!l10 || !l15) fail_msg("%s: no lines for steps 10 and 15", path);
    char *val = member_text(l10, "val_loss"), *mx = member_text(l15, "alpha0_max");
    if (!val || !mx) fail_msg("%s: step 10 has no val_loss or step 15 no alpha0_max", path);
    char want_val[64], want_mx[64];
    snprintf(want_val, sizeof want_val, "val %.4f (step 10)", atof(val));
    snprintf(want_mx, sizeof want_mx, "alpha0 max %.3f", atof(mx));
    if (!strstr(line, want_val) || !strstr(line, want_mx) || !strstr(line, "(step 15)"))
        fail_msg("progress line '%s' should hold '%s' and '%s ... (step 15)'", line, want_val, want_mx);
    free(val); free(mx); free(l10); free(l15); free(text);
}

/* ---- (h) checkpoint.optimizer_state ----------------------------------------------------- */

static long file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st)) fail_msg("%s: missing", path);
    return (long)st.st_size;
}

/* Whether path holds the Adam moments: a load with the optimizer succeeds, or is refused saying
 * the file holds the weights only. The weights load either way. */
static int holds_moments(Transformer *m, const char *path)
{
    char err[2048];
    if (ckpt_load(path, &m->params, NULL, 0, err, sizeof err)) fail_msg("weights of %s: %s", path, err);
    if (ckpt_load(path, &m->params, NULL, 1, err, sizeof err) == 0) return 1;
    if (!strstr(err, path) || !strstr(err, "holds the weights only"))
        fail_msg("%s: refused for another reason than missing moments: %s", path, err);
    return 0;
}

/* latest (the default): only the newest checkpoint keeps the moments, the others are about a
 * third of its size; after a resume from step 10 to 20 the moments moved to step 20; analyze
 * reads every checkpoint. all: every checkpoint keeps them. (Bit-identical resume under the
 * default: test_train_cli's test_resume_with_more_steps_matches_the_straight_run.) */
static void test_optimizer_state_latest_keeps_moments_in_the_newest_only(void **state)
{
    (void)state;
    char run[600], path[3][700], err[2048];
    Config c;
    load_tiny(&c, "train.steps=20");
    Transformer m;
    if (transformer_init(&m, &c.model, c.train.seed, err, sizeof err)) fail_msg("%s", err);
    test_fresh_run(run, sizeof run, "fid_optstate");
    train_ok(run, "--set train.steps=10");
    for (int i = 0; i < 3; i++) ckpt_path(path[i], sizeof path[i], run, 10 * i);
    if (holds_moments(&m, path[0]) || !holds_moments(&m, path[1]))
        fail_msg("after 10 steps: step 0 should be weights-only and step 10 (the newest) hold the moments");
    int rc = sinklab("train %s --out %s --quiet --resume --set train.steps=20", TINY, run);
    if (rc != 0) fail_msg("resume: exit %d: %.1500s", rc, OUT);
    int want[3] = {0, 0, 1};
    for (int i = 0; i < 3; i++)
        if (holds_moments(&m, path[i]) != want[i])
            fail_msg("%s: %s the moments, want %s", path[i], want[i] ? "lacks" : "holds", want[i] ? "them" : "weights only");
    long small = file_size(path[0]), big = file_size(path[2]);
    if (!(small * 2 < big)) fail_msg("weights-only %ld bytes vs %ld with moments: want under half", small, big);
    rc = sinklab("analyze %s --out %s/an", run, run);
    if (rc != 0) fail_msg("analyze on weights-only and full checkpoints: exit %d: %.1500s", rc, OUT);
    char em[800];
    snprintf(em, sizeof em, "%s/an/emergence.jsonl", run);
    char *text = test_slurp(em, NULL);
    int lines = 0;
    for (const char *q = text; (q = strchr(q, '\n')); q++) lines++;
    if (lines != 3) fail_msg("%s: %d lines, want 3 (steps 0, 10, 20)", em, lines);
    free(text);
    /* the newest damaged: falling back to a weights-only checkpoint is refused, saying why */
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "printf x | dd of=%s bs=1 seek=%ld conv=notrunc 2>/dev/null", path[2], big / 2);
    if (test_run(cmd, OUT, sizeof OUT)) fail_msg("%s: %s", cmd, OUT);
    rc = sinklab("train %s --out %s --resume --set train.steps=30", TINY, run);
    if (rc != 2 || !strstr(OUT, path[1]) || !strstr(OUT, "holds the weights only") ||
        !strstr(OUT, "optimizer_state"))
        fail_msg("resume past a damaged newest checkpoint under latest: exit %d, want 2 naming %s "
                 "as weights-only: %.1500s", rc, path[1], OUT);
    if (file_size(path[1]) != small) fail_msg("%s changed although the resume was refused", path[1]);
    test_fresh_run(run, sizeof run, "fid_optstate_all");
    train_ok(run, "--set checkpoint.optimizer_state=all");
    for (int i = 0; i < 3; i++) {
        ckpt_path(path[i], sizeof path[i], run, 10 * i);
        if (!holds_moments(&m, path[i])) fail_msg("optimizer_state all: %s lacks the moments", path[i]);
    }
    transformer_free(&m);
}

/* ---- (f) the quick start installs what the next documented step needs ---------------------- */

/* tools/sinklab_ckpt.py needs numpy: scripts/quickstart.sh runs setup.sh --with-tools, whose
 * package list holds python3-numpy (the plain list does not need it). */
static void test_quickstart_installs_numpy_for_the_tools(void **state)
{
    (void)state;
    char cmd[1400], path[1100];
    snprintf(cmd, sizeof cmd, "sh %s/scripts/setup.sh --with-tools --print-packages", test_src());
    if (test_run(cmd, OUT, sizeof OUT) != 0) fail_msg("%s: %s", cmd, OUT);
    if (!strstr(OUT, "python3-numpy\n")) fail_msg("%s does not list python3-numpy: %s", cmd, OUT);
    snprintf(path, sizeof path, "%s/scripts/quickstart.sh", test_src());
    char *qs = test_slurp(path, NULL);
    if (!strstr(qs, "\nscripts/setup.sh --with-tools\n"))
        fail_msg("%s does not run 'scripts/setup.sh --with-tools'", path);
    free(qs);
    snprintf(path, sizeof path, "%s/tools/sinklab_ckpt.py", test_src());
    char *py = test_slurp(path, NULL);
    if (!strstr(py, "import numpy")) fail_msg("%s: expected to need numpy (update this test)", path);
    free(py);
}

int main(void)
{
    snprintf(TINY, sizeof TINY, "%s/tests/configs/tiny.yaml", test_src());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scaled_at_scale_1_reports_what_softmax_reports),
        cmocka_unit_test(test_scaled_metrics_do_not_depend_on_the_scale),
        cmocka_unit_test(test_data_probe_prints_the_trainers_probe_set),
        cmocka_unit_test(test_probe_longer_than_training_warns),
        cmocka_unit_test(test_report_says_why_alpha0_is_missing),
        cmocka_unit_test(test_brown_is_found_beside_the_installation),
        cmocka_unit_test(test_resume_keeps_the_timings_of_the_whole_run),
        cmocka_unit_test(test_progress_line_shows_latest_val_and_alpha0_max_with_steps),
        cmocka_unit_test(test_optimizer_state_latest_keeps_moments_in_the_newest_only),
        cmocka_unit_test(test_quickstart_installs_numpy_for_the_tools),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
