/* test_data_bigram_backcopy.c: the Bigram-Backcopy task (Guo et al. 2024) as properties of
 * generated batches: BOS first, copies exactly after triggers, query classes marking them,
 * add-one-smoothed transitions of a source whose bigram counts are known, trigger selection,
 * deterministic and separate streams, and errors naming the key. */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/tokenizer.h"

enum { B = 16, T = 64 };

/* A source file of `reps` copies of `unit` (one document). */
static void write_source(char *path, size_t cap, const char *unit, int reps)
{
    char dir[400];
    test_tmpdir(dir, sizeof dir, "bb");
    snprintf(path, cap, "%s/source.txt", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < reps; i++) fputs(unit, f);
    fclose(f);
}

static DataConfig bb_cfg(const char *path)
{
    DataConfig c;
    data_config_defaults(&c);
    c.corpus = CORPUS_BIGRAM_BACKCOPY;
    c.bb_source = CORPUS_FILES;
    c.n_paths = 1;
    snprintf(c.paths[0], sizeof c.paths[0], "%.480s", path);
    c.separator = SEP_FILE;
    c.bb_n_triggers = 1;
    c.seq_len = T;
    c.eos = 0;
    data_config_resolve(&c);
    return c;
}

static Dataset *open_ok(const DataConfig *c)
{
    char err[1024] = "";
    Dataset *ds = dataset_open(c, err, sizeof err);
    if (!ds) fail_msg("dataset_open: %s", err);
    return ds;
}

/* Guo et al.: BOS, then tokens where the one after a trigger is the one before the trigger, and
 * query_class 1 exactly at the triggers (their target is that copy). */
static void check_rows(const Dataset *ds, const Batch *bt, const char *what)
{
    const BigramBackcopy *bb = ds->bb;
    for (int b = 0; b < bt->B; b++) {
        const int32_t *tok = bt->tokens + (size_t)b * T, *tgt = bt->targets + (size_t)b * T;
        const uint8_t *cls = bt->query_class + (size_t)b * T;
        if (tok[0] != TOK_BOS) fail_msg("%s row %d: position 0 is %d, want BOS", what, b, (int)tok[0]);
        for (int i = 0; i < T; i++) {
            if (i + 1 < T && tgt[i] != tok[i + 1])
                fail_msg("%s row %d: target[%d] = %d, token[%d] = %d", what, b, i, (int)tgt[i], i + 1, (int)tok[i + 1]);
            if (bt->loss_mask[(size_t)b * T + i] != 1.0f || bt->positions[(size_t)b * T + i] != i)
                fail_msg("%s row %d: position %d not in the loss or position id %d", what, b, i,
                         (int)bt->positions[(size_t)b * T + i]);
            int trig = i > 0 && bb->is_trigger[tok[i]];
            if (cls[i] != trig)
                fail_msg("%s row %d: query_class[%d] = %d, token %d trigger %d", what, b, i, cls[i], (int)tok[i], trig);
            if (trig && tgt[i] != tok[i - 1])
                fail_msg("%s row %d: after trigger %d at %d the target is %d, want the copy %d", what, b,
                         (int)tok[i], i, (int)tgt[i], (int)tok[i - 1]);
            if (i == 1 && bb->is_trigger[tok[1]]) fail_msg("%s row %d: the first byte is a trigger", what, b);
        }
    }
}

static void test_rows_copy_after_triggers_and_mark_them(void **state)
{
    char path[480];
    write_source(path, sizeof path, "the cat sat on the mat, then ate. ", 50);
    DataConfig c = bb_cfg(path);
    c.bb_n_triggers = 3;
    Dataset *ds = open_ok(&c);
    Batch bt;
    batch_alloc(&bt, B, T);
    int copies = 0;
    for (int step = 0; step < 20; step++) {
        dataset_batch(ds, step % 2 ? DATA_VAL : DATA_TRAIN, 7, step, &bt);
        check_rows(ds, &bt, step % 2 ? "val" : "train");
        for (int i = 0; i < B * T; i++) copies += bt.query_class[i];
    }
    assert_int_equal(dataset_probe_set(ds, B, T, 1, &bt), 0);
    check_rows(ds, &bt, "probe");
    if (copies < 100) fail_msg("only %d copies in 20 batches", copies);
    batch_free(&bt);
    dataset_free(ds);
}

/* Same (seed, split, step): the same batch; another step, split or seed: another batch. */
static void test_streams_are_deterministic_and_distinct(void **state)
{
    char path[480];
    write_source(path, sizeof path, "abcdefgh ijk lmnop ", 40);
    DataConfig c = bb_cfg(path);
    Dataset *ds = open_ok(&c);
    Batch a, b;
    batch_alloc(&a, B, T);
    batch_alloc(&b, B, T);
    size_t n = (size_t)B * T * sizeof(int32_t);
    dataset_batch(ds, DATA_TRAIN, 3, 5, &a);
    dataset_batch(ds, DATA_TRAIN, 3, 5, &b);
    assert_memory_equal(a.tokens, b.tokens, n);
    dataset_batch(ds, DATA_TRAIN, 3, 6, &b);
    assert_memory_not_equal(a.tokens, b.tokens, n);
    dataset_batch(ds, DATA_VAL, 3, 5, &b);
    assert_memory_not_equal(a.tokens, b.tokens, n);
    dataset_batch(ds, DATA_TRAIN, 4, 5, &b);
    assert_memory_not_equal(a.tokens, b.tokens, n);
    /* row k of a stream does not depend on the batch size it is drawn in */
    Batch one;
    batch_alloc(&one, 1, T);
    dataset_batch(ds, DATA_TRAIN, 3, 5 * B + 2, &one);
    assert_memory_equal(one.tokens, a.tokens + 2 * T, (size_t)T * sizeof(int32_t));
    batch_free(&one);
    batch_free(&a);
    batch_free(&b);
    dataset_free(ds);
}

/* Source "abc" x 1000: bigrams a->b 1000, b->c 1000, c->a 999 over the bytes {a, b, c}; with
 * trigger 'c', Markov steps leave 'a' to 'b' with probability (1000 + 1) / (1000 + 3). */
static void test_transitions_follow_add_one_smoothed_bigrams(void **state)
{
    char path[480];
    write_source(path, sizeof path, "abc", 1000);
    DataConfig c = bb_cfg(path);
    c.bb_n_explicit = 1;
    c.bb_triggers[0] = 'c';
    Dataset *ds = open_ok(&c);
    Batch bt;
    batch_alloc(&bt, B, T);
    long from_a = 0, a_to_b = 0, firsts = 0, first_a = 0;
    for (int step = 0; step < 300; step++) {
        dataset_batch(ds, DATA_TRAIN, 11, step, &bt);
        for (int r = 0; r < B; r++) {
            const int32_t *tok = bt.tokens + (size_t)r * T, *tgt = bt.targets + (size_t)r * T;
            firsts++;
            first_a += tok[1] == 'a';
            for (int i = 1; i < T; i++) {
                if (tok[i] != 'a' || bt.query_class[(size_t)r * T + i]) continue;
                from_a++;
                a_to_b += tgt[i] == 'b';
            }
        }
    }
    double p = 1001.0 / 1003.0, got = (double)a_to_b / (double)from_a;
    double se = sqrt(p * (1 - p) / (double)from_a);
    if (fabs(got - p) > 5 * se)
        fail_msg("P(b | a) = %.5f over %ld Markov steps, want %.5f +- %.5f (5 SE)", got, from_a, p, 5 * se);
    /* the first byte: unigram counts + 1 over the non-triggers a (1000) and b (1000) */
    double fa = (double)first_a / (double)firsts, se1 = sqrt(0.25 / (double)firsts);
    if (fabs(fa - 0.5) > 5 * se1) fail_msg("P(first = a) = %.4f over %ld rows, want 0.5 +- %.4f", fa, firsts, 5 * se1);
    batch_free(&bt);
    dataset_free(ds);
}

/* data.bb.n_triggers picks the most frequent bytes, ties to the smaller byte. */
static void test_triggers_are_the_most_frequent_bytes(void **state)
{
    char path[480];
    write_source(path, sizeof path, "eeeettttaaxy", 10);   /* e 4, t 4, a 2, x 1, y 1 */
    DataConfig c = bb_cfg(path);
    c.bb_n_triggers = 3;
    Dataset *ds = open_ok(&c);
    assert_int_equal(ds->bb->n_triggers, 3);
    assert_int_equal(ds->bb->triggers[0], 'e');
    assert_int_equal(ds->bb->triggers[1], 't');
    assert_int_equal(ds->bb->triggers[2], 'a');
    char desc[1024];
    dataset_describe(ds, desc, sizeof desc);
    if (!strstr(desc, "triggers 'e' (101), 't' (116), 'a' (97)")) fail_msg("describe: %s", desc);
    dataset_free(ds);
}

static void test_bad_triggers_name_the_key(void **state)
{
    char path[480], err[1024] = "";
    write_source(path, sizeof path, "abc", 10);
    DataConfig c = bb_cfg(path);
    c.bb_n_explicit = 1;
    c.bb_triggers[0] = 'z';
    assert_null(dataset_open(&c, err, sizeof err));
    if (!strstr(err, "data.bb.triggers[0]") || !strstr(err, "never occurs"))
        fail_msg("unexpected message: %s", err);
    c.bb_n_explicit = 0;
    c.bb_n_triggers = 3;   /* every byte a trigger leaves no first byte */
    assert_null(dataset_open(&c, err, sizeof err));
    if (!strstr(err, "data.bb.n_triggers")) fail_msg("unexpected message: %s", err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_copy_after_triggers_and_mark_them),
        cmocka_unit_test(test_streams_are_deterministic_and_distinct),
        cmocka_unit_test(test_transitions_follow_add_one_smoothed_bigrams),
        cmocka_unit_test(test_triggers_are_the_most_frequent_bytes),
        cmocka_unit_test(test_bad_triggers_name_the_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
