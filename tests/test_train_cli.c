/* test_train_cli.c: end to end, through the real binary: `sinklab train` is deterministic,
 * resumes bit-identically (also past damaged checkpoints), guards run folders, stops on NaN,
 * leaves a complete run folder; `sinklab analyze` reproduces the trainer's probe lines; the
 * PyTorch loader reproduces the C model's validation loss. Runs tests/configs/tiny.yaml. */
#include "tests/testutil.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "analysis/json.h"
#include "train/checkpoint.h"

static char OUT[1 << 20];
static char TINY[1024];

/* `sinklab ARGS` (printf-style), output in OUT */
#define sinklab(...) test_sinklab(OUT, sizeof OUT, __VA_ARGS__)

#define MAX_LINES 512

/* ---- running the binary ---- */

/* Trains tests/configs/tiny.yaml into run with extra arguments; fails the test unless exit 0. */
static void train_ok(const char *run, const char *extra)
{
    int rc = sinklab("train %s --out %s --quiet %s", TINY, run, extra);
    if (rc != 0) fail_msg("sinklab train --out %s %s: exit %d: %.2000s", run, extra, rc, OUT);
}

/* ---- files ---- */

/* A non-empty regular file. */
static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

static void copy_dir(const char *from, const char *to)
{
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", from, to);
    if (test_run(cmd, OUT, sizeof OUT) != 0) fail_msg("%s: %s", cmd, OUT);
}

/* ---- metrics.jsonl ---- */

typedef struct {
    int n;                      /* step lines */
    int64_t step[MAX_LINES];
    double loss[MAX_LINES];     /* NAN when the line has no "loss" (step 0) */
    double val[MAX_LINES];      /* NAN when not evaluated */
    int has_probe[MAX_LINES];
    char *text;                 /* the whole file */
} Metrics;

/* Fails unless no value anywhere under v is null (NaN would already fail the parse). */
static void assert_no_null(const JsonValue *v, const char *path, int line)
{
    if (v->type == JSON_NULL)
        fail_msg("%s:%d: member '%s' is null (unmeasured metrics must be absent)", path, line,
                 v->key ? v->key : "(array element)");
    if (v->type == JSON_ARRAY || v->type == JSON_OBJECT)
        for (int i = 0; i < v->n; i++) assert_no_null(&v->items[i], path, line);
}

/* Reads every line as strict JSON (the test fails naming file:line otherwise). */
static void read_metrics(Metrics *m, const char *run)
{
    char path[1200], err[512];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    size_t len;
    memset(m, 0, sizeof *m);
    m->text = test_slurp(path, &len);
    if (len == 0 || m->text[len - 1] != '\n') fail_msg("%s: empty or last line unterminated", path);
    int lineno = 0;
    for (char *p = m->text; *p; lineno++) {
        char *end = strchr(p, '\n');
        JsonDoc d;
        if (json_parse(&d, p, (size_t)(end - p), path, lineno + 1, err, sizeof err) != 0)
            fail_msg("not valid JSON: %s", err);
        assert_no_null(d.root, path, lineno + 1);
        {
            /* one line shape: the run's summary lives in summary.json, not in a last line */
            const JsonValue *s = json_get(d.root, "step");
            if (!s) fail_msg("%s:%d: a line without \"step\" (metrics.jsonl has one shape)", path, lineno + 1);
            assert_true(m->n < MAX_LINES);
            m->step[m->n] = (int64_t)s->number;
            m->loss[m->n] = json_num_or(json_get(d.root, "loss"), NAN);
            m->val[m->n] = json_num_or(json_get(d.root, "val_loss"), NAN);
            m->has_probe[m->n] = json_get(d.root, "probe") != NULL;
            m->n++;
        }
        json_free(&d);
        p = end + 1;
    }
}

static void free_metrics(Metrics *m)
{
    free(m->text);
    m->text = NULL;
}

static int same_double(double a, double b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

/* Same steps in the same order with bit-identical losses and validation losses. */
static void assert_same_losses(const Metrics *a, const Metrics *b, const char *what)
{
    int n = a->n < b->n ? a->n : b->n;
    for (int i = 0; i < n; i++) {
        if (a->step[i] != b->step[i])
            fail_msg("%s: metrics line %d is step %lld vs %lld", what, i + 1,
                     (long long)a->step[i], (long long)b->step[i]);
        if (!same_double(a->loss[i], b->loss[i]))
            fail_msg("%s: step %lld loss %.9g vs %.9g (want bit-identical)", what,
                     (long long)a->step[i], a->loss[i], b->loss[i]);
        if (!same_double(a->val[i], b->val[i]))
            fail_msg("%s: step %lld val_loss %.9g vs %.9g (want bit-identical)", what,
                     (long long)a->step[i], a->val[i], b->val[i]);
    }
    if (a->n != b->n) fail_msg("%s: %d vs %d step lines", what, a->n, b->n);
}

static void assert_steps_increase(const Metrics *m, const char *what)
{
    for (int i = 1; i < m->n; i++)
        if (m->step[i] <= m->step[i - 1])
            fail_msg("%s: step %lld follows step %lld (duplicated or out of order)", what,
                     (long long)m->step[i], (long long)m->step[i - 1]);
}

/* The text of the JSON object member `"key":{...}` in s (first occurrence), malloc'd. */
static char *object_member(const char *s, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":{", key);
    const char *p = strstr(s, pat);
    if (!p) return NULL;
    const char *q = p + strlen(pat) - 1;
    int depth = 0, in_str = 0;
    for (; *q; q++) {
        if (in_str) {
            if (*q == '\\' && q[1]) q++;
            else if (*q == '"') in_str = 0;
        } else if (*q == '"') {
            in_str = 1;
        } else if (*q == '{' || *q == '[') {
            depth++;
        } else if ((*q == '}' || *q == ']') && --depth == 0) {
            break;
        }
    }
    if (!*q) return NULL;
    size_t n = (size_t)(q + 1 - p);
    char *out = malloc(n + 1);
    memcpy(out, p, n);
    out[n] = 0;
    return out;
}

/* The metrics line of `step` (a malloc'd copy without the newline), or NULL. */
static char *metrics_line(const char *text, int64_t step)
{
    char pat[64];
    snprintf(pat, sizeof pat, "{\"step\":%lld,", (long long)step);
    for (const char *p = text; p && *p;) {
        const char *end = strchr(p, '\n');
        if (!strncmp(p, pat, strlen(pat))) {
            size_t n = end ? (size_t)(end - p) : strlen(p);
            char *out = malloc(n + 1);
            memcpy(out, p, n);
            out[n] = 0;
            return out;
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

/* RUN/summary.json as text, or NULL when the run wrote none. */
static char *summary_text(const char *run)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/summary.json", run);
    if (access(path, F_OK) != 0) return NULL;
    size_t len;
    return test_slurp(path, &len);
}

/* ---- checkpoints (read with testutil's ZIP walker) ---- */

/* Every member but `config` (which names the run folder) is byte-identical: parameters, Adam
 * moments, state, rng, format. A differing float is named with its index and both values. */
static void assert_same_checkpoint_state(const char *pa, const char *pb)
{
    size_t la, lb;
    unsigned char *a = (unsigned char *)test_slurp(pa, &la), *b = (unsigned char *)test_slurp(pb, &lb);
    TestZipEntry ea[256], eb[256];
    int na = test_zip_entries(a, la, ea, 256, pa), nb = test_zip_entries(b, lb, eb, 256, pb);
    if (na != nb) fail_msg("%s has %d members, %s has %d", pa, na, pb, nb);
    int n_param = 0;
    for (int i = 0; i < na; i++) {
        if (strcmp(ea[i].name, eb[i].name))
            fail_msg("member %d: '%s' in %s, '%s' in %s", i, ea[i].name, pa, eb[i].name, pb);
        if (!strcmp(ea[i].name, "config")) continue;
        n_param += !strncmp(ea[i].name, "param/", 6);
        if (ea[i].size != eb[i].size) fail_msg("member '%s': %zu vs %zu bytes", ea[i].name, ea[i].size, eb[i].size);
        const unsigned char *da = a + ea[i].data, *db = b + eb[i].data;
        if (!memcmp(da, db, ea[i].size)) continue;
        size_t hdr = 10 + test_le16(da + 8), k = hdr;
        while (k < ea[i].size && !memcmp(da + k, db + k, 4)) k += 4;
        float fa = 0, fb = 0;
        if (k + 4 <= ea[i].size) { memcpy(&fa, da + k, 4); memcpy(&fb, db + k, 4); }
        fail_msg("member '%s' differs: element %zu is %.9g in %s and %.9g in %s (want identical)",
                 ea[i].name, (k - hdr) / 4, (double)fa, pa, (double)fb, pb);
    }
    if (n_param == 0) fail_msg("%s: no param/ members", pa);
    free(a);
    free(b);
}

typedef enum { DAMAGE_FLIP, DAMAGE_TRUNCATE, DAMAGE_VERSION } Damage;

static const char *damage_name(Damage d)
{
    return d == DAMAGE_FLIP ? "flipped byte" : d == DAMAGE_TRUNCATE ? "truncated" : "wrong version";
}

/* Damages path; returns the phrase the refusal must contain. */
static const char *damage_checkpoint(const char *path, Damage d)
{
    size_t len;
    unsigned char *b = (unsigned char *)test_slurp(path, &len);
    const char *want = "";
    if (d == DAMAGE_FLIP) {
        TestZipEntry es[256];
        int n = test_zip_entries(b, len, es, 256, path);
        for (int i = 0; i < n; i++)
            if (!strcmp(es[i].name, "param/wte")) b[es[i].data + es[i].size / 2] ^= 0x40;
        want = "section 'param/wte' CRC mismatch";
    } else if (d == DAMAGE_TRUNCATE) {
        len /= 2;
        want = "truncated";
    } else {
        TestZipEntry es[256];
        int n = test_zip_entries(b, len, es, 256, path), k = -1;
        for (int i = 0; i < n; i++)
            if (!strcmp(es[i].name, "format")) k = i;
        assert_true(k >= 0);
        test_put_le32(b + es[k].data + es[k].size - 4, CKPT_FORMAT_VERSION + 1);
        test_zip_fix_crcs(b, len, path);
        want = "format version";
    }
    test_write_file(path, b, len);
    free(b);
    return want;
}

/* ---- 1. determinism ---- */

/* The same config, seed and thread count twice: bit-identical losses and final parameters. */
static void test_same_config_twice_gives_identical_losses_and_weights(void **state)
{
    (void)state;
    char a[600], b[600], ca[700], cb[700];
    test_fresh_run(a, sizeof a, "tr_det_a");
    test_fresh_run(b, sizeof b, "tr_det_b");
    train_ok(a, "");
    train_ok(b, "");
    Metrics ma, mb;
    read_metrics(&ma, a);
    read_metrics(&mb, b);
    if (ma.n != 21) fail_msg("%s: %d step lines, want 21 (log_every 1, steps 0..20)", a, ma.n);
    assert_same_losses(&ma, &mb, "two identical runs");
    snprintf(ca, sizeof ca, "%s/checkpoints/step_0000020.ckpt", a);
    snprintf(cb, sizeof cb, "%s/checkpoints/step_0000020.ckpt", b);
    assert_same_checkpoint_state(ca, cb);
    free_metrics(&ma);
    free_metrics(&mb);
}

/* ---- 2. resume ---- */

/* 10 steps then --resume to 20 (constant schedule, so the first half's learning rates do not
 * depend on train.steps) equals 20 steps straight: every loss, the final weights and moments,
 * and the onset summary (eps 0.2 puts the onset at step 0, before the resume point). The resume
 * runs at 2 threads where the rest ran at 1: the thread count never changes the arithmetic. */
static void test_resume_with_more_steps_matches_the_straight_run(void **state)
{
    (void)state;
    const char *common = "--set train.schedule=constant --set probe.eps=[0.2,0.5,0.8]";
    char straight[600], half[600], extra[600], ca[700], cb[700];
    test_fresh_run(straight, sizeof straight, "tr_res_full");
    test_fresh_run(half, sizeof half, "tr_res_half");
    train_ok(straight, common);
    snprintf(extra, sizeof extra, "%s --set train.steps=10", common);
    train_ok(half, extra);
    snprintf(extra, sizeof extra, "%s --set train.steps=20 --set train.threads=2 --resume", common);
    int rc = sinklab("train %s --out %s %s", TINY, half, extra);
    if (rc != 0) fail_msg("resume: exit %d: %.2000s", rc, OUT);
    if (!strstr(OUT, "step_0000010.ckpt") || !strstr(OUT, "at step 10"))
        fail_msg("resume does not say it resumed from step_0000010.ckpt at step 10: %.1000s", OUT);
    Metrics ms, mh;
    read_metrics(&ms, straight);
    read_metrics(&mh, half);
    assert_steps_increase(&mh, "resumed run");
    assert_same_losses(&ms, &mh, "straight vs resumed");
    snprintf(ca, sizeof ca, "%s/checkpoints/step_0000020.ckpt", straight);
    snprintf(cb, sizeof cb, "%s/checkpoints/step_0000020.ckpt", half);
    assert_same_checkpoint_state(ca, cb);
    char *fs = summary_text(straight), *fh = summary_text(half);
    assert_non_null(fs);
    assert_non_null(fh);
    char *os = object_member(fs, "onset"), *oh = object_member(fh, "onset");
    if (!os || !oh || strcmp(os, oh))
        fail_msg("onset summary: straight %s, resumed %s", os ? os : "(none)", oh ? oh : "(none)");
    /* the run folder's config now describes the whole run */
    char cfg[700];
    snprintf(cfg, sizeof cfg, "%s/config.yaml", half);
    size_t len;
    char *text = test_slurp(cfg, &len);
    if (!strstr(text, "  steps: 20\n")) fail_msg("%s does not say steps: 20 after the resume", cfg);
    free(text);
    free(os); free(oh); free(fs); free(fh);
    free_metrics(&ms);
    free_metrics(&mh);
}

/* Resume may change train.steps, train.threads, probe.* and checkpoint.* only. */
static void test_resume_with_a_different_model_is_refused(void **state)
{
    (void)state;
    char run[600];
    test_fresh_run(run, sizeof run, "tr_res_diff");
    train_ok(run, "--set train.steps=10");
    int rc = sinklab("train %s --out %s --resume --set model.d_ff=128", TINY, run);
    if (rc != 2) fail_msg("resume with model.d_ff changed: exit %d, want 2: %.1000s", rc, OUT);
    if (!strstr(OUT, "model.d_ff")) fail_msg("the refusal does not name model.d_ff: %.1000s", OUT);
    /* the batch shards are part of the arithmetic: not changeable on resume */
    rc = sinklab("train %s --out %s --resume --set train.batch_shards=4", TINY, run);
    if (rc != 2 || !strstr(OUT, "train.batch_shards"))
        fail_msg("resume with train.batch_shards changed: exit %d, want 2 naming it: %.1000s", rc, OUT);
    rc = sinklab("train %s --out %s/nothing_here --resume", TINY, run);
    if (rc != 2) fail_msg("resume of a missing run folder: exit %d, want 2: %.500s", rc, OUT);
}

/* ---- 3. run folder guard ---- */

static void test_existing_run_folder_needs_resume_or_force(void **state)
{
    (void)state;
    char run[600], metrics[700], ckpt[700];
    test_fresh_run(run, sizeof run, "tr_guard");
    train_ok(run, "--set train.steps=10");
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", run);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoints/step_0000010.ckpt", run);
    size_t lm, lc, lm2, lc2;
    unsigned char *m0 = (unsigned char *)test_slurp(metrics, &lm), *c0 = (unsigned char *)test_slurp(ckpt, &lc);
    int rc = sinklab("train %s --out %s --set train.steps=5", TINY, run);
    if (rc != 2) fail_msg("training into an existing folder: exit %d, want 2: %.1000s", rc, OUT);
    if (!strstr(OUT, run) || !strstr(OUT, "--resume") || !strstr(OUT, "--force"))
        fail_msg("the refusal should name %s and suggest --resume or --force: %.1000s", run, OUT);
    unsigned char *m1 = (unsigned char *)test_slurp(metrics, &lm2), *c1 = (unsigned char *)test_slurp(ckpt, &lc2);
    if (lm != lm2 || memcmp(m0, m1, lm)) fail_msg("%s changed although the run was refused", metrics);
    if (lc != lc2 || memcmp(c0, c1, lc)) fail_msg("%s changed although the run was refused", ckpt);

    rc = sinklab("train %s --out %s --quiet --force --set train.steps=5", TINY, run);
    if (rc != 0) fail_msg("--force: exit %d: %.1000s", rc, OUT);
    Metrics m;
    read_metrics(&m, run);
    if (m.n != 6 || m.step[m.n - 1] != 5)
        fail_msg("after --force metrics.jsonl should hold steps 0..5 only, has %d lines ending at %lld",
                 m.n, (long long)m.step[m.n - 1]);
    struct stat st;
    if (stat(ckpt, &st) == 0) fail_msg("%s survived --force", ckpt);
    free_metrics(&m);
    free(m0); free(m1); free(c0); free(c1);
}

/* --force replaces run folders only: a folder without config.yaml, metrics.jsonl or checkpoints/
 * (a source tree given as --out by mistake) is refused and left alone. */
static void test_force_does_not_remove_a_folder_that_is_not_a_run(void **state)
{
    (void)state;
    char dir[512], keep[700];
    test_tmpdir(dir, sizeof dir, "tr_force_guard");
    snprintf(keep, sizeof keep, "%s/precious.c", dir);
    test_write_file(keep, "int main(void) { return 0; }\n", 29);
    int rc = sinklab("train %s --out %s --force", TINY, dir);
    if (rc != 2) fail_msg("--force on a folder that is not a run: exit %d, want 2: %.800s", rc, OUT);
    if (!strstr(OUT, "not a run folder")) fail_msg("the refusal should say 'not a run folder': %.800s", OUT);
    if (!file_exists(keep)) fail_msg("%s was removed by --force", keep);
}

/* ---- 4. damaged checkpoints ---- */

/* For each kind of damage to the newest checkpoint: analyze refuses it with exit 2 naming the
 * file and the problem; --resume falls back to step 10 saying so, and then (same config) repeats
 * the original run bit-identically, as after a crash. Falling back needs the moments in older
 * checkpoints: checkpoint.optimizer_state all. */
static void test_damaged_checkpoint_is_refused_and_resume_falls_back(void **state)
{
    (void)state;
    char base[600];
    test_fresh_run(base, sizeof base, "tr_dmg_base");
    train_ok(base, "--set checkpoint.optimizer_state=all");
    Metrics mb;
    read_metrics(&mb, base);
    for (Damage d = DAMAGE_FLIP; d <= DAMAGE_VERSION; d++) {
        char dir[512], run[600], ckpt[700], tag[64];
        snprintf(tag, sizeof tag, "tr_dmg_%d", (int)d);
        test_tmpdir(dir, sizeof dir, tag);
        snprintf(run, sizeof run, "%s/run", dir);
        copy_dir(base, run);
        snprintf(ckpt, sizeof ckpt, "%s/checkpoints/step_0000020.ckpt", run);
        const char *want = damage_checkpoint(ckpt, d);

        int rc = sinklab("analyze %s --out %s/an", ckpt, dir);
        if (rc != 2)
            fail_msg("%s: analyze on a %s checkpoint: exit %d, want 2: %.1000s", ckpt,
                     damage_name(d), rc, OUT);
        if (!strstr(OUT, ckpt) || !strstr(OUT, want))
            fail_msg("%s: analyze on a %s checkpoint should name the file and say '%s': %.1000s",
                     ckpt, damage_name(d), want, OUT);

        rc = sinklab("train %s --out %s --resume", TINY, run);
        if (rc != 0) fail_msg("resume past a %s checkpoint: exit %d: %.2000s", damage_name(d), rc, OUT);
        if (!strstr(OUT, "step_0000020.ckpt") || !strstr(OUT, want) ||
            !strstr(OUT, "newest intact: step_0000010.ckpt"))
            fail_msg("resume past a %s checkpoint should name step_0000020.ckpt, say '%s' and "
                     "fall back to step_0000010.ckpt: %.2000s", damage_name(d), want, OUT);
        Metrics mr;
        read_metrics(&mr, run);
        assert_steps_increase(&mr, "resumed run");
        assert_same_losses(&mb, &mr, damage_name(d));
        char good[700];
        snprintf(good, sizeof good, "%s/checkpoints/step_0000020.ckpt", base);
        assert_same_checkpoint_state(good, ckpt);
        free_metrics(&mr);
    }
    free_metrics(&mb);
}

/* ---- 5. divergence ---- */

/* AdamW's first step moves every weight by about lr: lr 1e6 without clipping overflows the
 * logits at once. The run stops with exit 1 naming the problem and the last good checkpoint,
 * which stays loadable; metrics.jsonl holds no NaN. */
static void test_nonfinite_loss_stops_with_exit_1_and_keeps_the_checkpoint(void **state)
{
    (void)state;
    char run[600], ckpt[700];
    test_fresh_run(run, sizeof run, "tr_nan");
    int rc = sinklab("train %s --out %s --set train.lr=1e6 --set train.grad_clip=0 "
                     "--set train.warmup_steps=0", TINY, run);
    if (rc != 1) fail_msg("diverging run: exit %d, want 1: %.2000s", rc, OUT);
    if (!strstr(OUT, "not finite") || !strstr(OUT, "step_0000000.ckpt"))
        fail_msg("the message should say the loss is not finite and name the last good "
                 "checkpoint step_0000000.ckpt: %.2000s", OUT);
    Metrics m;
    read_metrics(&m, run);   /* fails on NaN or null */
    free_metrics(&m);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoints/step_0000000.ckpt", run);
    rc = sinklab("analyze %s --out %s/an", ckpt, run);
    if (rc != 0) fail_msg("the last good checkpoint %s does not load: exit %d: %.1000s", ckpt, rc, OUT);
}

/* ---- 6. analyze ---- */

/* `sinklab analyze step_N.ckpt` writes the step-N "probe" object of metrics.jsonl string-equal;
 * `sinklab analyze RUN` writes emergence.jsonl with one such line per checkpoint. */
static void test_analyze_reproduces_the_probe_lines_of_training(void **state)
{
    (void)state;
    char dir[512], run[600];
    test_tmpdir(dir, sizeof dir, "tr_analyze");
    snprintf(run, sizeof run, "%s/run", dir);
    train_ok(run, "");
    Metrics m;
    read_metrics(&m, run);
    const int steps[3] = {0, 10, 20};
    for (int i = 0; i < 3; i++) {
        char ckpt[700], path[800];
        snprintf(ckpt, sizeof ckpt, "%s/checkpoints/step_%07d.ckpt", run, steps[i]);
        int rc = sinklab("analyze %s --out %s/an", ckpt, dir);
        if (rc != 0) fail_msg("analyze %s: exit %d: %.1000s", ckpt, rc, OUT);
        snprintf(path, sizeof path, "%s/an/analysis_step_%07d.json", dir, steps[i]);
        size_t len;
        char *got_text = test_slurp(path, &len);
        char *line = metrics_line(m.text, steps[i]);
        if (!line) fail_msg("metrics.jsonl has no line for step %d", steps[i]);
        char *want = object_member(line, "probe"), *got = object_member(got_text, "probe");
        if (!want) fail_msg("metrics.jsonl step %d has no probe object", steps[i]);
        if (!got || strcmp(got, want)) {
            size_t k = 0;
            while (got && got[k] && got[k] == want[k]) k++;
            fail_msg("step %d: %s differs from metrics.jsonl at character %zu: got '%.80s', "
                     "want '%.80s'", steps[i], path, k, got ? got + k : "(no probe)", want + k);
        }
        free(got_text); free(line); free(want); free(got);
    }
    int rc = sinklab("analyze %s --out %s/walk", run, dir);
    if (rc != 0) fail_msg("analyze %s: exit %d: %.1000s", run, rc, OUT);
    char path[800];
    snprintf(path, sizeof path, "%s/walk/emergence.jsonl", dir);
    size_t len;
    char *em = test_slurp(path, &len);
    int n = 0;
    for (char *p = em; *p; n++) {
        char *end = strchr(p, '\n');
        if (!end) fail_msg("%s: unterminated line %d", path, n + 1);
        *end = 0;
        long long step = -1;
        if (sscanf(p, "{\"step\":%lld", &step) != 1 || n >= 3 || step != steps[n])
            fail_msg("%s line %d: step %lld, want checkpoint steps 0, 10, 20 in order", path, n + 1, step);
        char *line = metrics_line(m.text, step), *want = object_member(line, "probe"),
             *got = object_member(p, "probe");
        if (!got || strcmp(got, want)) fail_msg("%s line %d: probe differs from metrics.jsonl step %lld", path, n + 1, step);
        free(line); free(want); free(got);
        p = end + 1;
    }
    if (n != 3) fail_msg("%s: %d lines, want 3 (one per checkpoint)", path, n);
    free(em);
    free_metrics(&m);
}

/* ---- 7. the run folder ---- */

static void test_run_folder_is_complete_and_its_config_reproduces_the_run(void **state)
{
    (void)state;
    char dir[512], run[600], other[600], path[800];
    test_tmpdir(dir, sizeof dir, "tr_folder");
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(other, sizeof other, "%s/other", dir);
    train_ok(run, "");
    const char *files[] = {"config.yaml", "metrics.jsonl", "log.txt", "report.html", "run_info.json",
                           "checkpoints/latest", "checkpoints/step_0000000.ckpt",
                           "checkpoints/step_0000010.ckpt", "checkpoints/step_0000020.ckpt",
                           "probe/step_0000000.json", "probe/step_0000010.json",
                           "probe/step_0000020.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", run, files[i]);
        if (!file_exists(path)) fail_msg("the run folder lacks %s (or it is empty)", files[i]);
    }
    size_t len;
    snprintf(path, sizeof path, "%s/checkpoints/latest", run);
    char *latest = test_slurp(path, &len);
    if (strcmp(latest, "step_0000020.ckpt\n")) fail_msg("checkpoints/latest says '%s', want step_0000020.ckpt", latest);
    free(latest);
    snprintf(path, sizeof path, "%s/log.txt", run);
    char *log = test_slurp(path, &len);
    if (!strstr(log, "done: 20 steps")) fail_msg("log.txt lacks the closing 'done: 20 steps' line: %.1000s", log);
    free(log);
    /* run_info.json records the thread count and the OpenBLAS build */
    JsonDoc info;
    char err[512];
    snprintf(path, sizeof path, "%s/run_info.json", run);
    if (json_parse_file(&info, path, err, sizeof err) != 0) fail_msg("%s", err);
    if (json_num_or(json_get(info.root, "threads"), -1) != 1 || !json_get(info.root, "openblas_config"))
        fail_msg("%s lacks threads = 1 or openblas_config", path);
    json_free(&info);

    /* metrics.jsonl: strict JSON, probe lines with alpha0 [L][H] and sink_rate at 0.3/0.5/0.8 */
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    Metrics m;
    read_metrics(&m, run);
    JsonDoc sum;
    snprintf(path, sizeof path, "%s/summary.json", run);
    if (json_parse_file(&sum, path, err, sizeof err) != 0) fail_msg("%s", err);
    double on[4];
    if (json_matrix(on, json_get(json_get(sum.root, "onset"), "steps"), 2, 2) != 0)
        fail_msg("%s: onset.steps is not a 2 x 2 matrix", path);
    if (json_num_or(json_get(sum.root, "step"), -1) != 20) fail_msg("%s: step is not 20", path);
    json_free(&sum);
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    int n_probe = 0;
    for (char *p = m.text; *p;) {
        char *end = strchr(p, '\n');
        JsonDoc d;
        char err[512];
        assert_int_equal(json_parse(&d, p, (size_t)(end - p), path, 1, err, sizeof err), 0);
        const JsonValue *probe = json_get(d.root, "probe");
        if (probe) {
            double a0[4];
            long long step = (long long)json_num_or(json_get(d.root, "step"), -1);
            if (json_matrix(a0, json_get(probe, "alpha0"), 2, 2) != 0)
                fail_msg("step %lld: probe.alpha0 is not a 2 x 2 (layers x heads) matrix", step);
            for (int i = 0; i < 4; i++)
                if (!(a0[i] > 0 && a0[i] <= 1)) fail_msg("step %lld: alpha0[%d] = %g, want in (0, 1]", step, i, a0[i]);
            const JsonValue *sr = json_get(probe, "sink_rate");
            const char *keys[3] = {"0.3", "0.5", "0.8"};
            for (int k = 0; k < 3; k++) {
                double r = json_num_or(json_get(sr, keys[k]), -1);
                if (!(r >= 0 && r <= 1)) fail_msg("step %lld: probe.sink_rate[\"%s\"] = %g, want in [0, 1]", step, keys[k], r);
            }
            n_probe++;
        }
        json_free(&d);
        p = end + 1;
    }
    if (n_probe != 5) fail_msg("metrics.jsonl: %d probe lines, want 5 (steps 0, 5, 10, 15, 20)", n_probe);

    /* the resolved config.yaml reproduces the run */
    int rc = sinklab("train %s/config.yaml --out %s --quiet", run, other);
    if (rc != 0) fail_msg("train %s/config.yaml: exit %d: %.1000s", run, rc, OUT);
    Metrics mo;
    read_metrics(&mo, other);
    assert_same_losses(&m, &mo, "run vs its config.yaml rerun");
    free_metrics(&m);
    free_metrics(&mo);
}

/* ---- 8. bad usage and bad input ---- */

static void expect_exit_2(const char *what, const char *args, const char *must_say)
{
    int rc = sinklab("%s", args);
    if (rc != 2) fail_msg("%s (sinklab %s): exit %d, want 2: %.800s", what, args, rc, OUT);
    if (!strstr(OUT, must_say)) fail_msg("%s (sinklab %s): the message does not say '%s': %.800s", what, args, must_say, OUT);
}

static void test_bad_usage_and_bad_config_exit_2_naming_the_problem(void **state)
{
    (void)state;
    char dir[512], bad[700], run[700], args[2400];
    test_tmpdir(dir, sizeof dir, "tr_bad");
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(bad, sizeof bad, "%s/bad.yaml", dir);
    const char *yaml = "model:\n  n_layer: 2\n  n_haed: 2\n";
    test_write_file(bad, yaml, strlen(yaml));

    snprintf(args, sizeof args, "train %s --out %s --frobnicate", TINY, run);
    expect_exit_2("unknown option", args, "--frobnicate");
    snprintf(args, sizeof args, "train %s/missing.yaml --out %s", dir, run);
    expect_exit_2("missing config", args, "missing.yaml");
    snprintf(args, sizeof args, "train %s --out %s", bad, run);
    expect_exit_2("unknown key", args, "bad.yaml:3:3: model.n_haed: unknown key");
    snprintf(args, sizeof args, "train %s --out %s --set model.n_layer=many", TINY, run);
    expect_exit_2("bad --set value", args, "model.n_layer");
    snprintf(args, sizeof args, "train %s --out %s --set model.n_layer", TINY, run);
    expect_exit_2("--set without =", args, "key.path=value");
    snprintf(args, sizeof args, "train %s --out %s --set model.no_such=1", TINY, run);
    expect_exit_2("--set of an unknown key", args, "model.no_such");
    snprintf(args, sizeof args, "train %s --out", TINY);
    expect_exit_2("--out without a value", args, "--out");
    expect_exit_2("train without a config", "train", "usage");
    snprintf(args, sizeof args, "analyze %s/missing.ckpt", dir);
    expect_exit_2("analyze a missing checkpoint", args, "missing.ckpt");
    expect_exit_2("analyze with an unknown option", "analyze --frobnicate", "--frobnicate");
    /* nothing was created by any of the refused runs */
    struct stat st;
    if (stat(run, &st) == 0) fail_msg("%s was created by a refused command", run);
    /* the messages do not repeat themselves */
    snprintf(args, sizeof args, "train %s --out %s --set model.n_layer=many", TINY, run);
    sinklab("%s", args);
    const char *first = strstr(OUT, "--set model.n_layer=many");
    if (first && strstr(first + 1, "--set model.n_layer=many"))
        fail_msg("the --set error names the assignment twice: %.500s", OUT);
}

/* ---- 9. the PyTorch loader ---- */

/* the Python with torch (the first python3 on PATH may lack it); no __pycache__ in the tree */
static const char *PY = "PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3";

/* tools/torch_load.py puts a checkpoint into the PyTorch reference model, which then reproduces
 * the C model's val_loss (float32: summation order only; float64: the C arithmetic does not
 * drift). Test plan: tools/README.md. */
static void test_torch_loader_reproduces_the_validation_loss(void **state)
{
    (void)state;
    char cmd[2400], run[600];
    snprintf(cmd, sizeof cmd, "%s -c 'import torch, numpy'", PY);
    if (test_run(cmd, OUT, sizeof OUT) != 0)
        fail_msg("%s cannot import torch and numpy (install them: apt-get install python3-torch "
                 "python3-numpy): %.500s", PY, OUT);
    test_fresh_run(run, sizeof run, "tr_torch");
    train_ok(run, "--set probe.every=0");
    Metrics m;
    read_metrics(&m, run);
    const struct { int step; const char *flag; } cases[] = {{10, ""}, {20, ""}, {20, "--float64"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double want = NAN;
        for (int i = 0; i < m.n; i++)
            if (m.step[i] == cases[c].step) want = m.val[i];
        if (isnan(want)) fail_msg("metrics.jsonl has no val_loss at step %d", cases[c].step);
        snprintf(cmd, sizeof cmd, "%s %s/tools/torch_load.py %s/checkpoints/step_%07d.ckpt "
                 "--sinklab %s --json %s 2>&1", PY, test_src(), run, cases[c].step, test_bin(),
                 cases[c].flag);
        int rc = test_run(cmd, OUT, sizeof OUT);
        if (rc != 0) fail_msg("%s: exit %d: %.2000s", cmd, rc, OUT);
        const char *p = strstr(OUT, "\"val_loss\": ");
        if (!p) fail_msg("%s: no val_loss in %.1000s", cmd, OUT);
        double got = strtod(p + 12, NULL);
        if (!(fabs(got - want) <= 1e-4 * fabs(want)))
            fail_msg("step %d%s%s: torch val_loss %.9g, C val_loss %.9g (rtol 1e-4)", cases[c].step,
                     cases[c].flag[0] ? " " : "", cases[c].flag, got, want);
    }
    /* a damaged checkpoint is refused with exit 2 naming the section */
    char ckpt[700];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoints/step_0000010.ckpt", run);
    const char *want = damage_checkpoint(ckpt, DAMAGE_FLIP);
    snprintf(cmd, sizeof cmd, "%s %s/tools/torch_load.py %s --sinklab %s --json", PY, test_src(),
             ckpt, test_bin());
    int rc = test_run(cmd, OUT, sizeof OUT);
    if (rc != 2 || !strstr(OUT, want))
        fail_msg("torch_load.py on a damaged checkpoint: exit %d (want 2), should say '%s': %.1000s", rc, want, OUT);
    free_metrics(&m);
}

/* ---- 10. threads ---- */

/* train.threads does not change the arithmetic: bit-identical losses and validation losses at 1
 * and 2 threads, with the batch in shards (the default) and whole (op-level threads). */
static void test_one_and_two_threads_agree(void **state)
{
    (void)state;
    const char *quick = "--set train.steps=6 --set probe.every=0 --set checkpoint.every=0 "
                        "--set checkpoint.log_spaced=false --set train.eval_every=3";
    const char *shards[] = {"0", "1"};
    for (int k = 0; k < 2; k++) {
        char a[600], b[600], extra[700], what[100];
        test_fresh_run(a, sizeof a, "tr_thr1");
        test_fresh_run(b, sizeof b, "tr_thr2");
        snprintf(extra, sizeof extra, "%s --set train.batch_shards=%s --set train.threads=1", quick,
                 shards[k]);
        train_ok(a, extra);
        snprintf(extra, sizeof extra, "%s --set train.batch_shards=%s --set train.threads=2", quick,
                 shards[k]);
        train_ok(b, extra);
        Metrics ma, mb;
        read_metrics(&ma, a);
        read_metrics(&mb, b);
        if (ma.n != mb.n || ma.n != 7) fail_msg("%d and %d step lines, want 7", ma.n, mb.n);
        snprintf(what, sizeof what, "batch_shards %s, 1 vs 2 threads", shards[k]);
        assert_same_losses(&ma, &mb, what);
        free_metrics(&ma);
        free_metrics(&mb);
    }
}

/* More threads than batch shards: the run says how many the step uses and how to use them all. */
static void test_threads_beyond_the_shards_are_noted(void **state)
{
    (void)state;
    char run[600], path[700];
    test_fresh_run(run, sizeof run, "tr_idle_threads");
    train_ok(run, "--set train.steps=2 --set train.threads=4 --set probe.every=0 "
                  "--set checkpoint.every=0 --set checkpoint.log_spaced=false");
    snprintf(path, sizeof path, "%s/log.txt", run);
    char *log = test_slurp(path, NULL);
    if (!strstr(log, "note: 4 threads but the batch is in 2 shards: a training step uses 2 of them "
                     "(train.batch_shards: 4 would use them all)"))
        fail_msg("%s lacks the idle-threads note:\n%.1500s", path, log);
    free(log);
    test_fresh_run(run, sizeof run, "tr_idle_threads4");
    train_ok(run, "--set train.steps=2 --set train.threads=4 --set train.batch_shards=4 "
                  "--set probe.every=0 --set checkpoint.every=0 --set checkpoint.log_spaced=false");
    snprintf(path, sizeof path, "%s/log.txt", run);
    log = test_slurp(path, NULL);
    if (strstr(log, "note: ")) fail_msg("%s notes idle threads with 4 shards for 4 threads", path);
    free(log);
}

/* metrics.jsonl without the fields that time the run (tok_per_s, probe_seconds). */
static char *metrics_without_timings(const char *run)
{
    char path[700];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    char *text = test_slurp(path, NULL), *out = text;
    for (const char *q = text; *q;) {
        if (!strncmp(q, "\"tok_per_s\":", 12) || !strncmp(q, "\"probe_seconds\":", 16)) {
            while (*q && *q != ',' && *q != '}') q++;
            if (*q == ',') q++;
            continue;
        }
        *out++ = *q++;
    }
    *out = '\0';
    return text;
}

/* Probes do not depend on the thread count either: every metric of the light probes and of the
 * final heavy one (the Jacobian runs its samples one per thread) is bit-identical at 1 and 2. */
static void test_probes_are_identical_at_one_and_two_threads(void **state)
{
    (void)state;
    const char *quick = "--set train.steps=6 --set probe.every=3 --set checkpoint.every=6 "
                        "--set checkpoint.log_spaced=false --set train.eval_every=0";
    char a[600], b[600], extra[700];
    test_fresh_run(a, sizeof a, "tr_probe_thr1");
    test_fresh_run(b, sizeof b, "tr_probe_thr2");
    snprintf(extra, sizeof extra, "%s --set train.threads=1", quick);
    train_ok(a, extra);
    snprintf(extra, sizeof extra, "%s --set train.threads=2", quick);
    train_ok(b, extra);
    char *ma = metrics_without_timings(a), *mb = metrics_without_timings(b);
    if (!strstr(ma, "\"jacobian_norm\"")) fail_msg("no heavy probe in %s/metrics.jsonl", a);
    if (strcmp(ma, mb) != 0) {
        size_t i = 0;
        while (ma[i] && ma[i] == mb[i]) i++;
        fail_msg("metrics.jsonl differs at 1 and 2 threads from byte %zu:\n1: %.200s\n2: %.200s",
                 i, ma + i, mb + i);
    }
    free(ma);
    free(mb);
}

/* A --force whose run cannot start (here: a corpus file that does not exist) fails before it
 * touches the earlier run. */
static void test_failed_force_keeps_the_earlier_run(void **state)
{
    (void)state;
    char run[600], ckpt[700];
    test_fresh_run(run, sizeof run, "tr_force_fail");
    train_ok(run, "--set train.steps=10");
    snprintf(ckpt, sizeof ckpt, "%s/checkpoints/step_0000010.ckpt", run);
    size_t l0, l1;
    unsigned char *c0 = (unsigned char *)test_slurp(ckpt, &l0);
    int rc = sinklab("train %s --out %s --quiet --force --set data.corpus=files "
                     "--set data.paths=/nonexistent/corpus.txt", TINY, run);
    if (rc != 2) fail_msg("--force with a missing corpus: exit %d, want 2: %.1000s", rc, OUT);
    if (!strstr(OUT, "/nonexistent/corpus.txt"))
        fail_msg("the error (even with --quiet) should name the missing file: %.1000s", OUT);
    unsigned char *c1 = (unsigned char *)test_slurp(ckpt, &l1);
    if (l0 != l1 || memcmp(c0, c1, l0)) fail_msg("%s changed although the run never started", ckpt);
    free(c0);
    free(c1);
}

/* With 2 threads too, `analyze RUN` reproduces every checkpoint's probe line (the BLAS thread
 * policy is the same in both processes). */
static void test_analyze_reproduces_two_thread_runs(void **state)
{
    (void)state;
    char run[600], path[800];
    test_fresh_run(run, sizeof run, "tr_an2");
    train_ok(run, "--set train.threads=2");
    int rc = sinklab("analyze %s", run);
    if (rc != 0) fail_msg("analyze %s: exit %d: %.1000s", run, rc, OUT);
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    size_t len;
    char *metrics = test_slurp(path, &len);
    snprintf(path, sizeof path, "%s/analysis/emergence.jsonl", run);
    char *em = test_slurp(path, &len);
    int64_t steps[3] = {0, 10, 20};
    for (int i = 0; i < 3; i++) {
        char *want_line = metrics_line(metrics, steps[i]), *got_line = metrics_line(em, steps[i]);
        if (!want_line || !got_line) fail_msg("step %" PRId64 " missing from metrics or emergence", steps[i]);
        char *want = object_member(want_line, "probe"), *got = object_member(got_line, "probe");
        if (!want || !got || strcmp(want, got))
            fail_msg("step %" PRId64 ": analyze's probe differs from training's (2 threads)", steps[i]);
        free(want); free(got); free(want_line); free(got_line);
    }
    free(metrics);
    free(em);
}

/* A sink ablation (block_key 0) hides key 0 from every other query: alpha_0 then says nothing
 * and is left out rather than reported as 1. */
static void test_alpha0_is_absent_when_key_0_is_blocked(void **state)
{
    (void)state;
    char run[600];
    test_fresh_run(run, sizeof run, "tr_block0");
    train_ok(run, "--set train.steps=5 --set 'model.mask.edits=[{block_key: 0}]'");
    Metrics m;
    read_metrics(&m, run);
    if (strstr(m.text, "\"alpha0\"") || strstr(m.text, "\"sink_rate\""))
        fail_msg("alpha0/sink_rate logged although key 0 is blocked from every other query");
    if (!strstr(m.text, "\"probe\"")) fail_msg("no probe lines at all");
    free_metrics(&m);
}

/* `sinklab report RUN` rewrites the report of an existing run; a folder without metrics is
 * bad input (exit 2, named). */
static void test_report_command_rewrites_the_report(void **state)
{
    (void)state;
    char run[600], path[700];
    test_fresh_run(run, sizeof run, "tr_report");
    train_ok(run, "--set train.steps=5 --set output.report=false");
    snprintf(path, sizeof path, "%s/report.html", run);
    if (file_exists(path)) fail_msg("%s written although output.report is false", path);
    int rc = sinklab("report %s", run);
    if (rc != 0 || !file_exists(path)) fail_msg("sinklab report %s: exit %d: %.1000s", run, rc, OUT);
    rc = sinklab("report %s/none", run);
    if (rc != 2 || !strstr(OUT, "metrics.jsonl"))
        fail_msg("report on a folder without metrics: exit %d, want 2 naming metrics.jsonl: %.500s", rc, OUT);
}

int main(void)
{
    snprintf(TINY, sizeof TINY, "%s/tests/configs/tiny.yaml", test_src());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_config_twice_gives_identical_losses_and_weights),
        cmocka_unit_test(test_resume_with_more_steps_matches_the_straight_run),
        cmocka_unit_test(test_resume_with_a_different_model_is_refused),
        cmocka_unit_test(test_existing_run_folder_needs_resume_or_force),
        cmocka_unit_test(test_force_does_not_remove_a_folder_that_is_not_a_run),
        cmocka_unit_test(test_damaged_checkpoint_is_refused_and_resume_falls_back),
        cmocka_unit_test(test_nonfinite_loss_stops_with_exit_1_and_keeps_the_checkpoint),
        cmocka_unit_test(test_analyze_reproduces_the_probe_lines_of_training),
        cmocka_unit_test(test_run_folder_is_complete_and_its_config_reproduces_the_run),
        cmocka_unit_test(test_bad_usage_and_bad_config_exit_2_naming_the_problem),
        cmocka_unit_test(test_torch_loader_reproduces_the_validation_loss),
        cmocka_unit_test(test_one_and_two_threads_agree),
        cmocka_unit_test(test_probes_are_identical_at_one_and_two_threads),
        cmocka_unit_test(test_threads_beyond_the_shards_are_noted),
        cmocka_unit_test(test_failed_force_keeps_the_earlier_run),
        cmocka_unit_test(test_analyze_reproduces_two_thread_runs),
        cmocka_unit_test(test_alpha0_is_absent_when_key_0_is_blocked),
        cmocka_unit_test(test_report_command_rewrites_the_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
