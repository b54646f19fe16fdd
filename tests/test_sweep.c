#define _DEFAULT_SOURCE /* realpath */
/* test_sweep.c: sweep files and `sinklab sweep`: the crossed grid, zip groups, seeds and run
 * names; errors naming file:line:col; --dry-run writing nothing; a failing run counted in the exit
 * code without stopping the others; complete runs skipped and an interrupted one resumed to the
 * same losses as a straight run (through the real binary on tests/configs/tiny.yaml). */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train/config.h"
#include "train/sweep.h"

static char OUT[1 << 18];
static char TINY[1024];

/* `sinklab ARGS` (printf-style), output in OUT */
#define sinklab(...) test_sinklab(OUT, sizeof OUT, __VA_ARGS__)

/* Loads a sweep written from text; fails the test on an error. */
static void load_ok(Sweep *s, const char *tag, const char *body)
{
    char dir[512], path[600], text[4096];
    test_tmpdir(dir, sizeof dir, tag);
    snprintf(text, sizeof text, "base: %s\n%s", TINY, body);
    test_write_in(path, sizeof path, dir, "s.yaml", text);
    char err[1024];
    if (sweep_load(s, path, err, sizeof err) != 0) fail_msg("sweep_load: %s", err);
}

/* The error text of a sweep that must not load. */
static void load_err(char *err, size_t cap, const char *tag, const char *body)
{
    char dir[512], path[600], text[4096];
    test_tmpdir(dir, sizeof dir, tag);
    snprintf(text, sizeof text, "base: %s\n%s", TINY, body);
    test_write_in(path, sizeof path, dir, "s.yaml", text);
    static Sweep s;
    if (sweep_load(&s, path, err, cap) == 0) fail_msg("a sweep with\n%s\nloaded; it must be refused", body);
}

/* ---- expansion ---- */

/* Two grid keys of 2 and 3 values with 2 seeds: 12 runs, the last key varying fastest and the
 * seed fastest of all, named key=value in file order. */
static void test_grid_is_crossed_in_file_order(void **state)
{
    static Sweep s;
    load_ok(&s, "sw_grid", "grid:\n  train.lr: [0.001, 0.003]\n  model.n_layer: [1, 2, 3]\nseeds: [0, 7]\n");
    assert_int_equal(sweep_count(&s), 12);
    const char *want[12] = {
        "lr=0.001,n_layer=1,seed=0", "lr=0.001,n_layer=1,seed=7", "lr=0.001,n_layer=2,seed=0",
        "lr=0.001,n_layer=2,seed=7", "lr=0.001,n_layer=3,seed=0", "lr=0.001,n_layer=3,seed=7",
        "lr=0.003,n_layer=1,seed=0", "lr=0.003,n_layer=1,seed=7", "lr=0.003,n_layer=2,seed=0",
        "lr=0.003,n_layer=2,seed=7", "lr=0.003,n_layer=3,seed=0", "lr=0.003,n_layer=3,seed=7"};
    for (int i = 0; i < 12; i++) {
        SweepRun r;
        sweep_run_at(&s, i, "D", &r);
        if (strcmp(r.name, want[i])) fail_msg("run %d: named '%s', want '%s'", i, r.name, want[i]);
        char dir[300];
        snprintf(dir, sizeof dir, "D/%s", want[i]);
        assert_string_equal(r.dir, dir);
    }
    /* the resolved config carries the values and the seed */
    SweepRun r;
    sweep_run_at(&s, 9, "D", &r);
    static Config c;
    char err[1024];
    if (sweep_resolve(&s, &r, 3, &c, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(c.model.n_layer, 2);
    assert_true(c.train.lr == 0.003f);
    assert_int_equal((int)c.train.seed, 7);
    assert_int_equal(c.train.threads, 3);
    assert_string_equal(c.output.dir, "D/lr=0.003,n_layer=2,seed=7");
    sweep_free(&s);
}

/* Zipped keys move together: 3 runs (not 9), each with matching seq_len and max_seq_len; the
 * base's other keys (tiny.yaml's n_head 2) stay. */
static void test_zip_keys_move_together(void **state)
{
    static Sweep s;
    load_ok(&s, "sw_zip", "zip:\n  data.seq_len: [16, 24, 32]\n  model.max_seq_len: [16, 24, 32]\n"
                          "set:\n  train.steps: 3\n");
    assert_int_equal(sweep_count(&s), 3);
    int want[3] = {16, 24, 32};
    for (int i = 0; i < 3; i++) {
        SweepRun r;
        static Config c;
        char err[1024];
        sweep_run_at(&s, i, "D", &r);
        if (sweep_resolve(&s, &r, 0, &c, err, sizeof err) != 0) fail_msg("%s", err);
        if (c.data.seq_len != want[i] || c.model.max_seq_len != want[i])
            fail_msg("run %s: seq_len %d, max_seq_len %d, want both %d", r.name, c.data.seq_len,
                     c.model.max_seq_len, want[i]);
        assert_int_equal(c.model.n_head, 2);
        assert_int_equal(c.train.steps, 3);
        assert_int_equal(c.train.threads, 1);   /* tiny.yaml's own: threads 0 keeps it */
    }
    SweepRun r;
    sweep_run_at(&s, 1, "D", &r);
    assert_string_equal(r.name, "seq_len=24");
    sweep_free(&s);
}

/* Two axes whose keys end the same are told apart by their full keys. */
static void test_names_use_full_keys_on_a_clash(void **state)
{
    static Sweep s;
    load_ok(&s, "sw_clash", "grid:\n  data.seq_len: [32]\n  probe.seq_len: [8, 16]\n");
    SweepRun r;
    sweep_run_at(&s, 1, "D", &r);
    assert_string_equal(r.name, "data.seq_len=32,probe.seq_len=16");
    sweep_free(&s);
}

/* A zip group whose first key repeats a value is named by as many keys as tell its columns
 * apart, so no two runs share a folder (they once did: the second silently reused the first). */
static void test_zip_names_tell_every_column_apart(void **state)
{
    static Sweep s;
    load_ok(&s, "sw_zipname", "zip:\n  model.tie_embeddings: [true, false, false]\n"
                              "  train.lr: [0.1, 0.1, 0.2]\n  train.steps: [3, 3, 3]\n");
    const char *want[3] = {"tie_embeddings=true,lr=0.1", "tie_embeddings=false,lr=0.1", "tie_embeddings=false,lr=0.2"};
    for (int i = 0; i < 3; i++) {
        SweepRun r;
        sweep_run_at(&s, i, "D", &r);
        assert_string_equal(r.name, want[i]);
    }
    sweep_free(&s);
    /* a value listed twice, identical columns, and values that clean to one folder name */
    char err[1024];
    load_err(err, sizeof err, "sw_dup1", "grid:\n  train.lr: [0.1, 0.2, 0.1]\n");
    if (!strstr(err, "s.yaml:3:24:") || !strstr(err, "'0.1' listed twice")) fail_msg("error: %s", err);
    load_err(err, sizeof err, "sw_dup2", "zip:\n  train.lr: [0.1, 0.1]\n  train.steps: [3, 3]\n");
    if (!strstr(err, "columns 1 and 2 give the same run name")) fail_msg("error: %s", err);
    load_err(err, sizeof err, "sw_dup3", "grid:\n  data.paths: [x/y, x_y]\n");
    if (!strstr(err, "values 'x/y' and 'x_y' give the same folder name")) fail_msg("error: %s", err);
    /* ... but a zip group names a further key when that tells such values apart */
    load_ok(&s, "sw_zipclean", "zip:\n  data.paths: [x/y, x_y]\n  train.lr: [0.1, 0.2]\n");
    SweepRun r;
    sweep_run_at(&s, 1, "D", &r);
    assert_string_equal(r.name, "paths=x_y,lr=0.2");
    sweep_free(&s);
    /* a zip key that never names a run does not force full keys on one that does */
    load_ok(&s, "sw_zipclash", "zip:\n  data.seq_len: [16, 32]\n  probe.seq_len: [16, 32]\nseeds: [0]\n");
    sweep_run_at(&s, 1, "D", &r);
    assert_string_equal(r.name, "seq_len=32,seed=0");
    sweep_free(&s);
}

/* A sweep that sets train.threads keeps it whatever --jobs asks. */
static void test_threads_set_by_the_sweep_are_kept(void **state)
{
    static Sweep s;
    load_ok(&s, "sw_thr", "set:\n  train.threads: 2\nseeds: [4]\n");
    SweepRun r;
    static Config c;
    char err[1024];
    sweep_run_at(&s, 0, "D", &r);
    assert_string_equal(r.name, "seed=4");
    if (sweep_resolve(&s, &r, 1, &c, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(c.train.threads, 2);
    sweep_free(&s);
}

/* ---- errors name file:line:col ---- */

static void assert_err(const char *err, const char *where, const char *what)
{
    if (!strstr(err, where) || !strstr(err, what))
        fail_msg("error '%s' should name '%s' and say '%s'", err, where, what);
}

static void test_errors_name_the_place(void **state)
{
    char err[1024];
    load_err(err, sizeof err, "sw_e1", "zip:\n  data.seq_len: [16, 32]\n  model.max_seq_len: [32]\n");
    assert_err(err, "s.yaml:4:22:", "equally long");
    load_err(err, sizeof err, "sw_e2", "grid:\n  model.n_haed: [1, 2]\n");
    assert_err(err, "s.yaml:3:18:", "did you mean model.n_head");
    load_err(err, sizeof err, "sw_e3", "grid:\n  model.n_head: [1, two]\n");
    assert_err(err, "s.yaml:3:21:", "expected a positive integer");
    load_err(err, sizeof err, "sw_e4", "seeds: [0, -1]\n");
    assert_err(err, "s.yaml:2:12:", "non-negative integer");
    load_err(err, sizeof err, "sw_e5", "grdi:\n  train.lr: [1]\n");
    assert_err(err, "s.yaml:2:1:", "unknown key");
    load_err(err, sizeof err, "sw_e6", "slurm:\n  cpus: 2\n");
    assert_err(err, "s.yaml:3:3:", "slurm.cpus: unknown key");
    load_err(err, sizeof err, "sw_e7", "grid:\n  train.lr: 0.1\n");
    assert_err(err, "s.yaml:3:13:", "expected a list of values");
    /* and through the CLI: exit 2 before anything starts */
    char dir[512], path[600];
    test_tmpdir(dir, sizeof dir, "sw_e8");
    test_write_in(path, sizeof path, dir, "bad.yaml", "grid:\n  train.lr: [0.1]\n");
    int rc = sinklab("sweep %s --out %s/out", path, dir);
    if (rc != 2 || !strstr(OUT, "bad.yaml:1:1:") || !strstr(OUT, "base: missing"))
        fail_msg("a sweep without base: exit %d (want 2), output: %.500s", rc, OUT);
}

/* ---- the binary ---- */

/* --dry-run lists every run with its state and differences and creates nothing. */
static void test_dry_run_lists_runs_and_writes_nothing(void **state)
{
    char dir[512], path[600], text[2048];
    test_tmpdir(dir, sizeof dir, "sw_dry");
    snprintf(text, sizeof text, "base: %s\ngrid:\n  train.lr: [0.001, 0.002]\nseeds: [0, 1]\n", TINY);
    test_write_in(path, sizeof path, dir, "s.yaml", text);
    int rc = sinklab("sweep %s --out %s/out --dry-run", path, dir);
    if (rc != 0) fail_msg("--dry-run: exit %d: %.1000s", rc, OUT);
    const char *names[4] = {"lr=0.001,seed=0", "lr=0.001,seed=1", "lr=0.002,seed=0", "lr=0.002,seed=1"};
    for (int i = 0; i < 4; i++)
        if (!strstr(OUT, names[i])) fail_msg("--dry-run does not list %s: %.1000s", names[i], OUT);
    if (!strstr(OUT, "4 runs") || !strstr(OUT, "not started") || !strstr(OUT, "train.seed: 0 vs 1") ||
        !strstr(OUT, "train.lr:"))
        fail_msg("--dry-run should give the count, states and differences: %.1500s", OUT);
    char out[600];
    snprintf(out, sizeof out, "%s/out", dir);
    if (test_exists(out)) fail_msg("--dry-run created %s", out);
}

/* Three runs that cannot start (a missing corpus file) and three that can: the good ones
 * complete, the exit code is 3, and each failure names its log. */
static void test_failing_runs_are_counted_and_do_not_stop_the_others(void **state)
{
    char dir[512], path[600], text[2048];
    test_tmpdir(dir, sizeof dir, "sw_fail");
    snprintf(text, sizeof text,
             "base: %s\nset:\n  train.steps: 3\n  probe.every: 0\n  checkpoint.log_spaced: false\n"
             "grid:\n  data.corpus: [synthetic, files]\n  data.path: [/nonexistent/a.txt, /nonexistent/b.txt, /nonexistent/c.txt]\n",
             TINY);
    test_write_in(path, sizeof path, dir, "s.yaml", text);
    int rc = sinklab("sweep %s --out %s/out --jobs 2", path, dir);
    if (rc != 3) fail_msg("3 of 6 runs fail: exit %d, want 3: %.2000s", rc, OUT);
    if (!strstr(OUT, "3 of 6 runs complete, 3 failed") || !strstr(OUT, "FAILED (exit 2; see"))
        fail_msg("the summary should count the failures and name the logs: %.2000s", OUT);
    const char *good[3] = {"corpus=synthetic,path=_nonexistent_a.txt", "corpus=synthetic,path=_nonexistent_b.txt",
                           "corpus=synthetic,path=_nonexistent_c.txt"};
    char p[1200];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/out/%s/summary.json", dir, good[i]);
        if (!test_exists(p)) fail_msg("%s missing: the good runs must complete", p);
    }
    snprintf(p, sizeof p, "%s/out/corpus=files,path=_nonexistent_b.txt.log", dir);
    snprintf(p, sizeof p, "%s/out/logs/corpus=files,path=_nonexistent_b.txt.log", dir);
    char *log = test_read_file(p, NULL);
    if (!log || !strstr(log, "/nonexistent/b.txt")) fail_msg("%s should say what failed: %s", p, log ? log : "(none)");
    free(log);
    rc = sinklab("sweep %s --out %s/out --status", path, dir);
    if (rc != 0 || !strstr(OUT, "6 runs: 3 done, 0 running, 3 failed"))
        fail_msg("--status after the failures: exit %d: %.1500s", rc, OUT);
    /* summary.jsonl: one line per run, failed ones included with their status */
    snprintf(p, sizeof p, "%s/out/summary.jsonl", dir);
    char *sum = test_read_file(p, NULL);
    int lines = 0;
    for (char *q = sum; q && *q; q++) lines += *q == '\n';
    if (lines != 6 || !strstr(sum, "\"status\":\"failed\"") || !strstr(sum, "\"data.path\":\"/nonexistent/c.txt\""))
        fail_msg("%s: want 6 lines with statuses and swept values: %s", p, sum ? sum : "(none)");
    free(sum);
}

/* The loss column of a run's metrics.jsonl, one "step loss" per line, as text. */
static char *losses(const char *run)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    char *text = test_read_file(path, NULL);
    if (!text) fail_msg("%s: missing", path);
    char *out = calloc(strlen(text) + 1, 1);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        long long step;
        char *l = strstr(line, "\"loss\":");
        if (sscanf(line, "{\"step\":%lld", &step) != 1 || !l) continue;
        if (strstr(line, "\"probe\":") && strstr(line, "\"probe\":") < l) continue;
        sprintf(out + strlen(out), "%lld %.*s\n", step, (int)strcspn(l + 7, ",}"), l + 7);
    }
    free(text);
    return out;
}

/* An interrupted run (checkpoint at step 10, no summary) is resumed and ends with the losses of
 * a straight run; a complete one is left alone; a second sweep finds everything complete. */
static void test_complete_skipped_interrupted_resumed(void **state)
{
    char dir[512], path[600], text[2048], a[1200], b[1200], cfg[1300], ref[700];
    test_tmpdir(dir, sizeof dir, "sw_resume");
    snprintf(text, sizeof text,
             "base: %s\nset:\n  train.steps: 20\n  train.schedule: constant\n  checkpoint.every: 10\n"
             "grid:\n  train.lr: [0.001, 0.002]\n", TINY);
    test_write_in(path, sizeof path, dir, "s.yaml", text);
    /* --emit slurm writes the run folders' resolved configs without training */
    int rc = sinklab("sweep %s --out %s/out --emit slurm", path, dir);
    if (rc != 0) fail_msg("--emit slurm: exit %d: %.1000s", rc, OUT);
    snprintf(a, sizeof a, "%s/out/lr=0.001", dir);
    snprintf(b, sizeof b, "%s/out/lr=0.002", dir);
    /* the straight reference of run b, from its resolved config */
    snprintf(cfg, sizeof cfg, "%s/config.yaml", b);
    snprintf(ref, sizeof ref, "%s/ref", dir);
    rc = sinklab("train %s --out %s --quiet", cfg, ref);
    if (rc != 0) fail_msg("reference run: exit %d: %.1000s", rc, OUT);
    /* run b stops after its step-10 checkpoint: as a killed run leaves it, without a summary */
    rc = sinklab("train %s --out %s --resume --set train.steps=10 --quiet", cfg, b);
    if (rc != 0) fail_msg("the first half of run b: exit %d: %.1000s", rc, OUT);
    char sum[1300];
    snprintf(sum, sizeof sum, "%s/summary.json", b);
    remove(sum);
    rc = sinklab("sweep %s --out %s/out --status", path, dir);
    if (rc != 0 || !strstr(OUT, "interrupted") || !strstr(OUT, "checkpoint at step 10 of 20") ||
        !strstr(OUT, "1 interrupted, 1 not started"))
        fail_msg("--status before the sweep: exit %d: %.1500s", rc, OUT);

    rc = sinklab("sweep %s --out %s/out --jobs 2", path, dir);
    if (rc != 0) fail_msg("sweep: exit %d: %.2000s", rc, OUT);
    if (!strstr(OUT, "lr=0.002: resuming from step 10")) fail_msg("the sweep should resume lr=0.002: %.1500s", OUT);
    char *got = losses(b), *want = losses(ref);
    if (strcmp(got, want)) fail_msg("resumed run's losses differ from the straight run:\n%s\nvs\n%s", got, want);
    free(got);
    free(want);

    /* all complete: nothing runs again, metrics untouched */
    char metrics[1300];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", a);
    struct stat before, after;
    assert_int_equal(stat(metrics, &before), 0);
    rc = sinklab("sweep %s --out %s/out", path, dir);
    if (rc != 0 || !strstr(OUT, "2 runs, all complete")) fail_msg("second sweep: exit %d: %.1000s", rc, OUT);
    assert_int_equal(stat(metrics, &after), 0);
    if (before.st_mtim.tv_sec != after.st_mtim.tv_sec || before.st_mtim.tv_nsec != after.st_mtim.tv_nsec ||
        before.st_size != after.st_size)
        fail_msg("%s was rewritten although its run was complete", metrics);

    /* the finished sweep through compare, report with several runs, and export */
    rc = sinklab("compare %s/out --by train.lr", dir);
    char page[1300];
    snprintf(page, sizeof page, "%s/out/compare.html", dir);
    if (rc != 0 || !test_exists(page)) fail_msg("compare: exit %d: %.1000s", rc, OUT);
    rc = sinklab("report %s %s --out %s", a, b, dir);
    snprintf(page, sizeof page, "%s/compare.html", dir);
    if (rc != 0 || !test_exists(page)) fail_msg("report with two runs: exit %d, %s: %.1000s", rc, page, OUT);
    rc = sinklab("compare %s/out --by train.lrr", dir);
    if (rc != 2 || !strstr(OUT, "train.lrr")) fail_msg("compare --by an unknown key: exit %d: %.500s", rc, OUT);
    rc = sinklab("export %s/out", dir);
    if (rc != 2) fail_msg("export without a format: exit %d, want 2", rc);
    rc = sinklab("export %s/out --csv", dir);
    snprintf(page, sizeof page, "%s/out/scalars.csv", dir);
    char *csv = test_read_file(page, NULL);
    if (rc != 0 || !csv || strncmp(csv, "run,train.lr,seed,step,tokens,metric,value\n", 43))
        fail_msg("export --csv: exit %d, scalars.csv starts: %.200s", rc, csv ? csv : "(none)");
    free(csv);
}

/* The emitted job array: one task per run, resources from slurm:, logs per task, --resume. */
static void test_emitted_sbatch_is_a_job_array(void **state)
{
    char dir[512], path[600], text[2048], p[700];
    test_tmpdir(dir, sizeof dir, "sw_sbatch");
    snprintf(text, sizeof text,
             "base: %s\ngrid:\n  train.lr: [0.001, 0.002, 0.003]\nslurm:\n  cpus_per_task: 4\n  mem: 2G\n"
             "  time: \"01:00:00\"\n  partition: gpu\n  array_parallel: 2\n", TINY);
    test_write_in(path, sizeof path, dir, "s.yaml", text);
    int rc = sinklab("sweep %s --out %s/out --emit slurm", path, dir);
    if (rc != 0) fail_msg("--emit slurm: exit %d: %.1000s", rc, OUT);
    snprintf(p, sizeof p, "%s/out/sweep.sbatch", dir);
    char *sb = test_read_file(p, NULL);
    const char *want[] = {"#SBATCH --array=0-2%2\n", "#SBATCH --cpus-per-task=4\n", "#SBATCH --mem=2G\n",
                          "#SBATCH --time=01:00:00\n", "#SBATCH --partition=gpu\n", "#SBATCH --requeue\n",
                          "'lr=0.003'\n", "--resume", "/logs/$NAME.log", "summary.json"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!sb || !strstr(sb, want[i])) fail_msg("%s lacks '%s':\n%s", p, want[i], sb ? sb : "(none)");
    free(sb);
    /* each run's config.yaml is resolved, with threads = cpus_per_task */
    snprintf(p, sizeof p, "%s/out/lr=0.002/config.yaml", dir);
    static Config c;
    char err[512];
    config_defaults(&c);
    if (config_load(&c, p, err, sizeof err) != 0) fail_msg("%s", err);
    assert_true(c.train.lr == 0.002f);
    assert_int_equal(c.train.threads, 4);
}

/* Sweep files may sit anywhere, so tiny.yaml is named by its absolute path. */
static int setup(void **state)
{
    char rel[1024];
    snprintf(rel, sizeof rel, "%s/tests/configs/tiny.yaml", test_src());
    if (!realpath(rel, TINY)) snprintf(TINY, sizeof TINY, "%s", rel);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid_is_crossed_in_file_order),
        cmocka_unit_test(test_zip_keys_move_together),
        cmocka_unit_test(test_names_use_full_keys_on_a_clash),
        cmocka_unit_test(test_zip_names_tell_every_column_apart),
        cmocka_unit_test(test_threads_set_by_the_sweep_are_kept),
        cmocka_unit_test(test_errors_name_the_place),
        cmocka_unit_test(test_dry_run_lists_runs_and_writes_nothing),
        cmocka_unit_test(test_failing_runs_are_counted_and_do_not_stop_the_others),
        cmocka_unit_test(test_complete_skipped_interrupted_resumed),
        cmocka_unit_test(test_emitted_sbatch_is_a_job_array),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
