/* test_compare.c: the tidy CSV export's shape, the comparison page's groups, bands and
 * final-metrics intervals, and how a run's config reads, on run folders the test writes itself.
 * The statistic behind the bands (stats_mean) is tested in test_stats.c. */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "analysis/compare.h"
#include "analysis/export.h"
#include "analysis/runset.h"
#include "train/config_flat.h"

/* ---- run folders written by the test ---- */

/* A run with lr and seed; three metrics lines (step 0 probe, step 1 loss, step 2 loss+probe),
 * final loss `last`, and a summary.json with one onset at step 2. */
static void make_run(const char *sweep, const char *name, const char *lr, int seed, double last)
{
    char dir[1000], text[2048];
    snprintf(dir, sizeof dir, "%s/%s", sweep, name);
    mkdir(dir, 0777);
    snprintf(text, sizeof text,
             "model:\n  n_layer: 2\n  n_head: 2\ntrain:\n  lr: %s\n  seed: %d\n  threads: %d\noutput:\n  dir: %s\n",
             lr, seed, seed + 1, dir);
    test_write_in(NULL, 0, dir, "config.yaml", text);
    snprintf(text, sizeof text,
             "{\"step\":0,\"tokens\":0,\"val_loss\":5,\"probe\":{\"alpha0\":[[0.1,0.2],[0.3,0.4]],\"alpha0_max\":0.4,"
             "\"sink_rate\":{\"0.3\":0.5}}}\n"
             "{\"step\":1,\"tokens\":64,\"loss\":4.5}\n"
             "{\"step\":2,\"tokens\":128,\"loss\":%g,\"probe\":{\"alpha0\":[[0.5,0.6],[0.7,0.8]],\"alpha0_max\":0.8,"
             "\"sink_rate\":{\"0.3\":1},\"massive_ratio\":[1.5,2.5]}}\n", last);
    test_write_in(NULL, 0, dir, "metrics.jsonl", text);
    test_write_in(NULL, 0, dir, "summary.json", "{\"step\":2,\"onset\":{\"threshold\":0.3,\"steps\":[[-1,2],[2,2]]}}\n");
}

static void make_sweep(char *dir, size_t cap, const char *tag)
{
    test_tmpdir(dir, cap, tag);
    test_write_in(NULL, 0, dir, "sweep.json", "{\"sweep\":\"s.yaml\",\"keys\":[\"train.lr\",\"train.seed\"],\"runs\":3}\n");
    make_run(dir, "lr=0.001,seed=0", "0.001", 0, 2.0);
    make_run(dir, "lr=0.001,seed=1", "0.001", 1, 3.0);
    make_run(dir, "lr=0.002,seed=0", "0.002", 0, 1.0);
}

/* An empty set that reads configs the way the CLI does. */
static void init_set(RunSet *rs)
{
    memset(rs, 0, sizeof *rs);
    rs->read_config = config_flatten_run;
}

static void load_set(RunSet *rs, const char *dir)
{
    char err[512];
    if (runset_add(rs, dir, err, sizeof err) != 0) fail_msg("runset_add: %s", err);
    runset_finish(rs);
}

/* The varying keys are the swept ones (threads and the folder differ too, but are not the
 * experiment); rows are tidy: one metric value each. */
static void test_csv_has_one_value_per_row(void **state)
{
    char dir[512], err[512], path[700];
    make_sweep(dir, sizeof dir, "cmp_csv");
    RunSet rs;
    init_set(&rs);
    load_set(&rs, dir);
    assert_int_equal(rs.n, 3);
    assert_int_equal(rs.n_varying, 2);
    assert_string_equal(rs.varying[0], "train.lr");
    assert_string_equal(rs.varying[1], "train.seed");
    if (export_csv(&rs, dir, err, sizeof err) != 0) fail_msg("export_csv: %s", err);

    snprintf(path, sizeof path, "%s/scalars.csv", dir);
    char *sc = test_slurp(path, NULL);
    const char *head = "run,train.lr,seed,step,tokens,metric,value\n";
    if (strncmp(sc, head, strlen(head))) fail_msg("scalars.csv header: %.200s", sc);
    /* per run: val_loss, alpha0_max (x2), sink_rate_0.3 (x2), loss (x2) = 7 rows */
    if (test_count(sc, "\n") != 1 + 3 * 7) fail_msg("scalars.csv: %d lines, want 22:\n%s", test_count(sc, "\n"), sc);
    if (!strstr(sc, "\"lr=0.001,seed=1\",0.001,1,2,128,loss,3\n"))
        fail_msg("scalars.csv lacks the quoted row of run lr=0.001,seed=1's last loss:\n%s", sc);
    if (!strstr(sc, ",0,0,sink_rate_0.3,0.5\n")) fail_msg("scalars.csv lacks sink_rate_0.3 at step 0:\n%s", sc);
    free(sc);

    snprintf(path, sizeof path, "%s/heads.csv", dir);
    char *hc = test_slurp(path, NULL);
    head = "run,train.lr,seed,step,layer,head,metric,value\n";
    if (strncmp(hc, head, strlen(head))) fail_msg("heads.csv header: %.200s", hc);
    /* per run: alpha0 2 x 2 at two steps (8) + massive_ratio per layer at step 2 (2) = 10 rows */
    if (test_count(hc, "\n") != 1 + 3 * 10) fail_msg("heads.csv: %d lines, want 31:\n%s", test_count(hc, "\n"), hc);
    if (!strstr(hc, "\"lr=0.002,seed=0\",0.002,0,2,1,0,alpha0,0.7\n") ||
        !strstr(hc, "\"lr=0.002,seed=0\",0.002,0,2,1,,massive_ratio,2.5\n"))
        fail_msg("heads.csv lacks layer 1 head 0's alpha0 or layer 1's massive_ratio:\n%s", hc);
    free(hc);
    runset_free(&rs);
}

/* Grouped by lr: the two-seed group has a band and the final loss 2.5 [2, 3]; the config table
 * shows only the keys that differ; the caption states the bootstrap; a chosen head gets charts. */
static void test_compare_page_groups_with_intervals(void **state)
{
    char dir[512], err[512], path[700];
    make_sweep(dir, sizeof dir, "cmp_page");
    RunSet rs;
    init_set(&rs);
    assert_int_equal(runset_choose_head(&rs, 1, 0), 0);
    load_set(&rs, dir);
    const RunSeries *h = run_series(&rs.runs[0], "alpha0 1.0");
    if (!h || h->n != 2 || h->value[0] != 0.3 || h->value[1] != 0.7)
        fail_msg("alpha0 of head 1.0 should be the series 0.3, 0.7");
    snprintf(path, sizeof path, "%s/compare.html", dir);
    if (compare_write(&rs, NULL, NULL, path, err, sizeof err) != 0) fail_msg("compare_write: %s", err);
    char *html = test_slurp(path, NULL);
    if (!strstr(html, "Grouped by <code>train.lr</code> (2 groups)")) fail_msg("the page should group by train.lr");
    if (!strstr(html, "95% bootstrap interval") || !strstr(html, "2000 resamples"))
        fail_msg("the band caption should state the bootstrap");
    if (!strstr(html, "fill-opacity=\"0.18\"")) fail_msg("no band drawn for the two-seed group");
    if (!strstr(html, "<td class=\"num\">2.5 [2, 3]</td>")) fail_msg("final loss of lr=0.001 should read 2.5 [2, 3]");
    if (!strstr(html, "<td class=\"num\">3 of 4</td>")) fail_msg("onset table should say 3 of 4 heads");
    if (strstr(html, "<code>train.threads</code>") || strstr(html, "<code>output.dir</code>") ||
        strstr(html, "<code>model.n_layer</code>"))
        fail_msg("the config table should show only the differing keys");
    if (test_count(html, "<svg") != 10) fail_msg("%d charts, want 10 (5 grouped, 5 per run)", test_count(html, "<svg"));
    if (test_count(html, "α₀ of layer 1, head 0") != 2) fail_msg("the chosen head should have a grouped and a per-run chart");
    if (strstr(html, "<script")) fail_msg("the page must be self-contained (no scripts)");
    free(html);
    runset_free(&rs);
}

/* A sweep folder's runs come in natural order: n=9 before n=10 (numbers compare as numbers). */
static void test_sweep_runs_in_natural_order(void **state)
{
    char dir[512], err[512];
    test_tmpdir(dir, sizeof dir, "cmp_order");
    make_run(dir, "n=10", "0.001", 0, 1.0);
    make_run(dir, "n=9", "0.001", 1, 1.0);
    make_run(dir, "n=100", "0.001", 2, 1.0);
    RunSet rs;
    init_set(&rs);
    if (runset_add(&rs, dir, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(rs.n, 3);
    if (strcmp(rs.runs[0].name, "n=9") || strcmp(rs.runs[1].name, "n=10") || strcmp(rs.runs[2].name, "n=100"))
        fail_msg("order %s, %s, %s; want n=9, n=10, n=100", rs.runs[0].name, rs.runs[1].name, rs.runs[2].name);
    runset_free(&rs);
}

/* A folder that is neither a run nor a sweep is refused with its name. */
static void test_not_a_run_folder_is_refused(void **state)
{
    char dir[512], err[512];
    test_tmpdir(dir, sizeof dir, "cmp_empty");
    RunSet rs;
    init_set(&rs);
    assert_int_equal(runset_add(&rs, dir, err, sizeof err), -1);
    if (!strstr(err, dir) || !strstr(err, "neither a run folder")) fail_msg("error: %s", err);
    runset_free(&rs);
}

/* Values read as config.yaml writes them: a list of maps as [{isolate: 8}] (the arm label a claim
 * file names), one data path under data.path, unquoted; runs differing in the edits vary in it. */
static void test_config_values_read_as_config_yaml_writes_them(void **state)
{
    char dir[512], sub[700];
    test_tmpdir(dir, sizeof dir, "cmp_values");
    const char *edits[2] = {"[]", "[{isolate: 8}]"};
    for (int i = 0; i < 2; i++) {
        char text[512];
        snprintf(sub, sizeof sub, "%s/edits=%d", dir, i);
        mkdir(sub, 0777);
        snprintf(text, sizeof text, "model:\n  mask:\n    edits: %s\ndata:\n  corpus: files\n  path: \"a b.txt\"\n",
                 edits[i]);
        test_write_in(NULL, 0, sub, "config.yaml", text);
    }
    RunSet rs;
    init_set(&rs);
    load_set(&rs, dir);
    assert_int_equal(rs.n, 2);
    for (int i = 0; i < 2; i++) {
        const char *e = run_config(&rs.runs[i], "model.mask.edits"), *p = run_config(&rs.runs[i], "data.path");
        if (!e || strcmp(e, edits[i])) fail_msg("run %d: model.mask.edits '%s', want '%s'", i, e ? e : "(none)", edits[i]);
        if (!p || strcmp(p, "a b.txt")) fail_msg("run %d: data.path '%s', want 'a b.txt'", i, p ? p : "(none)");
    }
    if (rs.n_varying != 1 || strcmp(rs.varying[0], "model.mask.edits"))
        fail_msg("varying: %d keys, first '%s'; want only model.mask.edits", rs.n_varying,
                 rs.n_varying ? rs.varying[0] : "");
    runset_free(&rs);
}

/* The parts of a range key stay readable on their own (runs can be compared by
 * data.prefix_len.max); aliases (data.paths for data.path) do not double the keys. */
static void test_parts_of_a_range_key_are_readable(void **state)
{
    char dir[512];
    test_tmpdir(dir, sizeof dir, "cmp_parts");
    test_write_in(NULL, 0, dir, "config.yaml", "model:\n  kind: prefix_lm\ndata:\n  prefix_len: {min: 2, max: 9}\n");
    RunSet rs;
    init_set(&rs);
    load_set(&rs, dir);
    const char *lo = run_config(&rs.runs[0], "data.prefix_len.min"), *hi = run_config(&rs.runs[0], "data.prefix_len.max");
    if (!lo || !hi || strcmp(lo, "2") || strcmp(hi, "9"))
        fail_msg("data.prefix_len.min '%s', .max '%s'; want 2 and 9", lo ? lo : "(none)", hi ? hi : "(none)");
    assert_null(run_config(&rs.runs[0], "data.path"));
    runset_free(&rs);
}

/* A config.yaml with an unknown key is refused naming the file, line, column and key. */
static void test_unknown_config_key_is_refused_with_its_place(void **state)
{
    char dir[512], err[512], want[700];
    test_tmpdir(dir, sizeof dir, "cmp_badkey");
    test_write_in(NULL, 0, dir, "config.yaml", "model:\n  n_layer: 2\n  n_haed: 2\n");
    RunSet rs;
    init_set(&rs);
    assert_int_equal(runset_add(&rs, dir, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s/config.yaml:3:3: model.n_haed: unknown key", dir);
    if (strncmp(err, want, strlen(want))) fail_msg("error '%s', want it to start '%s'", err, want);
    runset_free(&rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_has_one_value_per_row),
        cmocka_unit_test(test_compare_page_groups_with_intervals),
        cmocka_unit_test(test_sweep_runs_in_natural_order),
        cmocka_unit_test(test_not_a_run_folder_is_refused),
        cmocka_unit_test(test_config_values_read_as_config_yaml_writes_them),
        cmocka_unit_test(test_parts_of_a_range_key_are_readable),
        cmocka_unit_test(test_unknown_config_key_is_refused_with_its_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
