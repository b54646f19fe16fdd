/* test_reliability.c: the pieces of README "Reliability" that are checked in-process: the YAML
 * nesting pre-scan, the memory budget and the run folder lock (the end-to-end behaviour is in
 * tests/campaign, run by test_campaign_quick). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testutil.h"
#include "train/batch_shards.h"
#include "train/budget.h"
#include "train/config.h"
#include "train/run_folder.h"
#include "base/yaml_depth.h"

static int depth_ok(const char *text)
{
    char err[256];
    return yaml_depth_check(text, strlen(text), "t.yaml", YAML_MAX_DEPTH, err, sizeof err) == 0;
}

/* n nested flow lists around a scalar */
static char *nested(int n)
{
    char *s = malloc((size_t)2 * n + 8);
    int k = sprintf(s, "a: ");
    for (int i = 0; i < n; i++) s[k++] = '[';
    s[k++] = '1';
    for (int i = 0; i < n; i++) s[k++] = ']';
    s[k] = 0;
    return s;
}

static void test_depth_limit_is_exact_for_flow_nesting(void **state)
{
    (void)state;
    /* "a:" is one block level, so 63 brackets reach 64 */
    char *ok = nested(63), *deep = nested(64);
    assert_true(depth_ok(ok));
    assert_false(depth_ok(deep));
    free(ok);
    free(deep);
}

static void test_depth_ignores_quotes_comments_and_plain_text(void **state)
{
    (void)state;
    char *brackets = nested(100);
    char buf[1024];
    /* the same brackets inside quotes, after a comment mark, or a quote inside plain text */
    snprintf(buf, sizeof buf, "a: \"%s\"\nb: '%s'\n# %s\nc: it's 5\" wide\nd: [1, 2]\n",
             brackets + 3, brackets + 3, brackets + 3);
    assert_true(depth_ok(buf));
    free(brackets);
}

static void test_depth_counts_indentation_and_compact_dashes(void **state)
{
    (void)state;
    char buf[20000];
    size_t k = 0;
    for (int i = 0; i < 70; i++) k += (size_t)sprintf(buf + k, "%*sk%d:\n", i, "", i);
    assert_false(depth_ok(buf));
    k = 0;
    for (int i = 0; i < 70; i++) k += (size_t)sprintf(buf + k, "- ");
    sprintf(buf + k, "x\n");
    assert_false(depth_ok(buf));
    assert_true(depth_ok("model:\n  n_layer: 2\ndata:\n  path:\n  - a.txt\n  - b.txt\n"));
}

static void test_shipped_configs_pass_the_depth_check(void **state)
{
    (void)state;
    const char *names[] = {"configs/quickstart.yaml", "configs/bert_tiny.yaml",
                           "configs/prefix_lm.yaml", "tests/configs/tiny.yaml"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[1024], err[512];
        snprintf(path, sizeof path, "%s/%s", test_src(), names[i]);
        Config c;
        config_defaults(&c);
        if (config_load(&c, path, err, sizeof err) != 0) fail_msg("%s", err);
    }
}

static void tiny(Config *c)
{
    char err[512];
    config_defaults(c);
    const char *sets[] = {"model.n_layer=2", "model.d_model=32", "model.n_head=2", "model.d_ff=64",
                          "model.max_seq_len=64", "data.corpus=synthetic", "data.seq_len=64",
                          "probe.seq_len=16"};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        if (config_set(c, sets[i], err, sizeof err) != 0) fail_msg("%s", err);
    if (config_validate(c, err, sizeof err) != 0) fail_msg("%s", err);
}

static void test_budget_grows_with_the_keys_it_names(void **state)
{
    (void)state;
    static Config c;
    tiny(&c);
    Budget a, b;
    budget_compute(&a, &c);
    c.train.batch_size *= 4;
    budget_compute(&b, &c);
    /* the step arenas (beyond their fixed 16 MB each, one per batch shard) scale with the batch;
     * the parameters do not */
    assert_int_equal(batch_shards_resolve(c.train.batch_shards, c.train.batch_size), 2);
    double fixed = 2 * 16.0 * (1 << 20);
    assert_true(b.item[1].bytes - fixed > 3.9 * (a.item[1].bytes - fixed));
    assert_true(b.item[0].bytes == a.item[0].bytes);
    /* 16 bytes per parameter (data, grad, m, v) at least */
    double params = 2 * (32.0 * 32 * 4 + 2 * 32.0 * 64) + 2 * 259.0 * 32;
    assert_true(a.item[0].bytes >= 16 * params);
}

static void test_budget_refusal_names_keys_and_bytes(void **state)
{
    (void)state;
    static Config c;
    char err[1024];
    tiny(&c);
    c.train.memory_limit = 1000;
    Budget b;
    budget_compute(&b, &c);
    assert_int_equal(budget_check(&b, err, sizeof err), -1);
    assert_non_null(strstr(err, "train.memory_limit allows 1000 bytes"));
    assert_non_null(strstr(err, "set by"));
    c.train.memory_limit = 0;   /* auto: a tiny config fits any machine */
    budget_compute(&b, &c);
    assert_int_equal(budget_check(&b, err, sizeof err), 0);
    /* an overflow-sized config is refused, never wrapped */
    c.train.batch_size = 2147483647;
    c.data.synthetic_docs = 2147483647;
    budget_compute(&b, &c);
    assert_int_equal(budget_check(&b, err, sizeof err), -1);
    assert_true(b.total > 1e15);
}

static void test_lock_refuses_a_second_owner_and_names_the_pid(void **state)
{
    (void)state;
    char dir[512], err[1400], want[64];
    test_tmpdir(dir, sizeof dir, "lock");
    RunLock a, b;
    assert_int_equal(run_folder_lock(&a, dir, err, sizeof err), 0);
    /* flock is per open file description: a second open in this process is refused too */
    assert_int_equal(run_folder_lock(&b, dir, err, sizeof err), -1);
    snprintf(want, sizeof want, "in use by process %ld", (long)getpid());
    if (!strstr(err, want)) fail_msg("\"%s\" lacks \"%s\"", err, want);
    run_folder_unlock(&a);
    assert_int_equal(run_folder_lock(&b, dir, err, sizeof err), 0);
    run_folder_unlock(&b);
}

static void test_swap_in_exchanges_folders_atomically(void **state)
{
    (void)state;
    char dir[512], run[600], staged[700], err[1400], path[800];
    test_tmpdir(dir, sizeof dir, "swap");
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(staged, sizeof staged, "%s/run.force-1", dir);
    mkdir(run, 0777);
    mkdir(staged, 0777);
    snprintf(path, sizeof path, "%s/new", staged);
    FILE *f = fopen(path, "w");
    fclose(f);
    assert_int_equal(run_folder_swap_in(staged, run, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/new", run);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_not_equal(access(staged, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_depth_limit_is_exact_for_flow_nesting),
        cmocka_unit_test(test_depth_ignores_quotes_comments_and_plain_text),
        cmocka_unit_test(test_depth_counts_indentation_and_compact_dashes),
        cmocka_unit_test(test_shipped_configs_pass_the_depth_check),
        cmocka_unit_test(test_budget_grows_with_the_keys_it_names),
        cmocka_unit_test(test_budget_refusal_names_keys_and_bytes),
        cmocka_unit_test(test_lock_refuses_a_second_owner_and_names_the_pid),
        cmocka_unit_test(test_swap_in_exchanges_folders_atomically),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
