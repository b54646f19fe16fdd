/* test_data_cli.c: `sinklab data` prints batches for people and as JSON, and exits 2 naming the
 * file on bad input. */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char OUT[1 << 20];

static void write_config(char *path, size_t cap, const char *tag, const char *yaml)
{
    char dir[512];
    test_tmpdir(dir, sizeof dir, tag);
    test_write_in(path, cap, dir, "c.yaml", yaml);
}

static const char *SYNTH = "data:\n  corpus: synthetic\n  seq_len: 32\n  bos: window_start\n"
                           "  reset_positions: true\ntrain:\n  batch_size: 3\n";

static int count_lines_starting(const char *s, const char *prefix)
{
    int n = 0;
    for (const char *p = s; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        n += !strncmp(p, prefix, strlen(prefix));
    return n;
}

/* --json: one object per sequence (B x batches) with every field; BOS (256) first. */
static void test_json_has_one_object_per_sequence(void **state)
{
    (void)state;
    char cfg[600], cmd[1400];
    write_config(cfg, sizeof cfg, "cli_json", SYNTH);
    snprintf(cmd, sizeof cmd, "%s data %s --json --batches 2 2>/dev/null", test_bin(), cfg);
    int rc = test_run(cmd, OUT, sizeof OUT);
    if (rc != 0) fail_msg("'%s' exited %d: %.500s", cmd, rc, OUT);
    int n = count_lines_starting(OUT, "{\"split\":\"train\"");
    if (n != 6) fail_msg("--json: %d objects, want 6 (3 sequences x 2 batches): %.300s", n, OUT);
    const char *keys[] = {"\"tokens\":[256,", "\"targets\":[", "\"positions\":[0,", "\"doc_ids\":[0,",
                          "\"loss_mask\":[", "\"prefix_len\":0"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strstr(OUT, keys[i])) fail_msg("--json output lacks %s", keys[i]);
}

static void test_human_output_marks_bos_and_documents(void **state)
{
    (void)state;
    char cfg[600], cmd[1400];
    write_config(cfg, sizeof cfg, "cli_human", SYNTH);
    snprintf(cmd, sizeof cmd, "%s data %s --set data.bos=both", test_bin(), cfg);
    int rc = test_run(cmd, OUT, sizeof OUT);
    if (rc != 0) fail_msg("'%s' exited %d: %.500s", cmd, rc, OUT);
    if (!strstr(OUT, "<bos>") || !strstr(OUT, "doc 0") || !strstr(OUT, "pos 0..") || !strstr(OUT, "loss on"))
        fail_msg("human output lacks <bos>, doc, pos or loss lines: %.600s", OUT);
}

static void test_missing_corpus_file_exits_2_naming_it(void **state)
{
    (void)state;
    char cfg[600], cmd[1400];
    write_config(cfg, sizeof cfg, "cli_missing",
                 "data:\n  corpus: files\n  path: /nonexistent/sinklab_corpus.txt\n");
    snprintf(cmd, sizeof cmd, "%s data %s", test_bin(), cfg);
    int rc = test_run(cmd, OUT, sizeof OUT);
    if (rc != 2) fail_msg("missing corpus: exit %d, want 2: %.300s", rc, OUT);
    if (!strstr(OUT, "/nonexistent/sinklab_corpus.txt")) fail_msg("message does not name the file: %.300s", OUT);
}

static void test_bad_usage_exits_2(void **state)
{
    (void)state;
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "%s data", test_bin());
    assert_int_equal(test_run(cmd, OUT, sizeof OUT), 2);
    snprintf(cmd, sizeof cmd, "%s data /nonexistent/config.yaml", test_bin());
    assert_int_equal(test_run(cmd, OUT, sizeof OUT), 2);
    if (!strstr(OUT, "/nonexistent/config.yaml")) fail_msg("message does not name the config: %.300s", OUT);
    snprintf(cmd, sizeof cmd, "%s data --help", test_bin());
    assert_int_equal(test_run(cmd, OUT, sizeof OUT), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_has_one_object_per_sequence),
        cmocka_unit_test(test_human_output_marks_bos_and_documents),
        cmocka_unit_test(test_missing_corpus_file_exits_2_naming_it),
        cmocka_unit_test(test_bad_usage_exits_2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
