/* test_mask.c: each masking rule of model/mask.h on small cases whose expected tables are
 * written out by hand (row i = query i, column j = key j, '1' = allowed). */
#include "tests/testutil.h"

#include <stdio.h>
#include <string.h>

#include "model/mask.h"

/* Compares sequence b of allowed (B, T, T) with rows written as "1100" strings. */
static void assert_table(const char *what, const uint8_t *allowed, int b, int T,
                         const char *const *rows)
{
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            int want = rows[i][j] == '1', got = allowed[((size_t)b * T + i) * T + j];
            if (got != want)
                fail_msg("%s: allowed[b%d][q%d][k%d] = %d, want %d (row %d should be %s)", what, b,
                         i, j, got, want, i, rows[i]);
        }
}

static MaskSpec spec_none(void)
{
    MaskSpec s;
    memset(&s, 0, sizeof s);
    return s;
}

static void test_causal_is_lower_triangular(void **state)
{
    (void)state;
    uint8_t m[16];
    MaskSpec s = spec_none();
    mask_build(m, MODEL_CAUSAL, &s, NULL, NULL, 1, 4);
    const char *want[] = {"1000", "1100", "1110", "1111"};
    assert_table("causal", m, 0, 4, want);
}

static void test_bidirectional_sees_everything(void **state)
{
    (void)state;
    uint8_t m[9];
    mask_build(m, MODEL_BIDIRECTIONAL, NULL, NULL, NULL, 1, 3);
    const char *want[] = {"111", "111", "111"};
    assert_table("bidirectional", m, 0, 3, want);
}

/* Prefix-LM: bidirectional over the first prefix_len[b] keys, causal after; per sequence. */
static void test_prefix_lm_per_sequence(void **state)
{
    (void)state;
    uint8_t m[2 * 25];
    int32_t prefix[2] = {2, 0};
    MaskSpec s = spec_none();
    mask_build(m, MODEL_PREFIX_LM, &s, NULL, prefix, 2, 5);
    const char *want0[] = {"11000", "11000", "11100", "11110", "11111"};
    const char *want1[] = {"10000", "11000", "11100", "11110", "11111"};
    assert_table("prefix_lm prefix 2", m, 0, 5, want0);
    assert_table("prefix_lm prefix 0", m, 1, 5, want1);
}

static void test_window_causal_and_bidirectional(void **state)
{
    (void)state;
    uint8_t m[25];
    MaskSpec s = spec_none();
    s.window = 2;
    mask_build(m, MODEL_CAUSAL, &s, NULL, NULL, 1, 5);
    const char *causal[] = {"10000", "11000", "01100", "00110", "00011"};
    assert_table("causal window 2", m, 0, 5, causal);
    mask_build(m, MODEL_BIDIRECTIONAL, &s, NULL, NULL, 1, 5);
    const char *bidir[] = {"11000", "11100", "01110", "00111", "00011"};
    assert_table("bidirectional window 2", m, 0, 5, bidir);
}

static void test_doc_mask_keeps_documents_apart(void **state)
{
    (void)state;
    uint8_t m[25];
    int32_t doc[5] = {0, 0, 1, 1, 1};
    MaskSpec s = spec_none();
    s.doc_mask = 1;
    mask_build(m, MODEL_BIDIRECTIONAL, &s, doc, NULL, 1, 5);
    const char *bidir[] = {"11000", "11000", "00111", "00111", "00111"};
    assert_table("bidirectional doc_mask", m, 0, 5, bidir);
    mask_build(m, MODEL_CAUSAL, &s, doc, NULL, 1, 5);
    const char *causal[] = {"10000", "11000", "00100", "00110", "00111"};
    assert_table("causal doc_mask", m, 0, 5, causal);
    /* Without doc_mask the same doc ids change nothing. */
    s.doc_mask = 0;
    mask_build(m, MODEL_CAUSAL, &s, doc, NULL, 1, 5);
    const char *plain[] = {"10000", "11000", "11100", "11110", "11111"};
    assert_table("causal, doc ids but no doc_mask", m, 0, 5, plain);
}

/* PAD (doc id < 0): never a key; a PAD query sees only itself, even under a full mask. */
static void test_pad_rows_see_only_themselves(void **state)
{
    (void)state;
    uint8_t m[2 * 16];
    int32_t doc[8] = {0, 0, -1, -1, -1, 3, 3, 3};
    MaskSpec s = spec_none();
    mask_build(m, MODEL_BIDIRECTIONAL, &s, doc, NULL, 2, 4);
    const char *want0[] = {"1100", "1100", "0010", "0001"};
    const char *want1[] = {"1000", "0111", "0111", "0111"};
    assert_table("bidirectional with PAD, seq 0", m, 0, 4, want0);
    assert_table("bidirectional with PAD, seq 1", m, 1, 4, want1);
}

static void test_isolate_row_sees_only_itself(void **state)
{
    (void)state;
    uint8_t m[16];
    MaskSpec s = spec_none();
    s.n_edits = 1;
    s.edits[0] = (MaskEdit){EDIT_ISOLATE, 2};
    mask_build(m, MODEL_CAUSAL, &s, NULL, NULL, 1, 4);
    /* Row 2 is alone; later rows still see key 2 (it is never mixed, but visible). */
    const char *want[] = {"1000", "1100", "0010", "1111"};
    assert_table("causal isolate 2", m, 0, 4, want);
}

static void test_reset_starts_a_new_sequence(void **state)
{
    (void)state;
    uint8_t m[25];
    MaskSpec s = spec_none();
    s.n_edits = 1;
    s.edits[0] = (MaskEdit){EDIT_RESET, 2};
    mask_build(m, MODEL_CAUSAL, &s, NULL, NULL, 1, 5);
    const char *causal[] = {"10000", "11000", "00100", "00110", "00111"};
    assert_table("causal reset 2", m, 0, 5, causal);
    mask_build(m, MODEL_BIDIRECTIONAL, &s, NULL, NULL, 1, 5);
    /* Only queries >= p lose keys < p; earlier queries still see everything. */
    const char *bidir[] = {"11111", "11111", "00111", "00111", "00111"};
    assert_table("bidirectional reset 2", m, 0, 5, bidir);
}

static void test_block_key_hides_key_from_others(void **state)
{
    (void)state;
    uint8_t m[16];
    MaskSpec s = spec_none();
    s.n_edits = 1;
    s.edits[0] = (MaskEdit){EDIT_BLOCK_KEY, 0};
    mask_build(m, MODEL_CAUSAL, &s, NULL, NULL, 1, 4);
    const char *want[] = {"1000", "0100", "0110", "0111"};
    assert_table("causal block_key 0", m, 0, 4, want);
}

/* Rules compose in the documented order: prefix + window + doc mask + PAD + two edits. */
static void test_rules_compose(void **state)
{
    (void)state;
    uint8_t m[36];
    int32_t doc[6] = {0, 0, 0, 1, 1, -1};
    int32_t prefix[1] = {3};
    MaskSpec s = spec_none();
    s.window = 3;
    s.doc_mask = 1;
    s.n_edits = 2;
    s.edits[0] = (MaskEdit){EDIT_BLOCK_KEY, 1};
    s.edits[1] = (MaskEdit){EDIT_RESET, 4};
    mask_build(m, MODEL_PREFIX_LM, &s, doc, prefix, 1, 6);
    /* prefix 3 within doc 0 (|i-j| < 3), key 1 blocked for others; doc 1 causal with reset at
     * 4 (query 4 loses key 3); the PAD query 5 sees itself. */
    const char *want[] = {"101000", "111000", "101000", "000100", "000010", "000001"};
    assert_table("prefix+window+doc+pad+edits", m, 0, 6, want);
}

/* Edits outside [0, T) do nothing (a probe may be shorter than the edit's target). */
static void test_out_of_range_edits_ignored(void **state)
{
    (void)state;
    uint8_t m[9];
    MaskSpec s = spec_none();
    s.n_edits = 3;
    s.edits[0] = (MaskEdit){EDIT_ISOLATE, 3};
    s.edits[1] = (MaskEdit){EDIT_RESET, -1};
    s.edits[2] = (MaskEdit){EDIT_BLOCK_KEY, 7};
    mask_build(m, MODEL_CAUSAL, &s, NULL, NULL, 1, 3);
    const char *want[] = {"100", "110", "111"};
    assert_table("causal, edits out of range", m, 0, 3, want);
}

/* Safety: under random combinations of every rule, every row keeps itself, and so is never
 * empty, and no row sees a PAD key other than itself. */
static void test_no_row_is_ever_empty(void **state)
{
    (void)state;
    TestRng rng = {77};
    enum { B = 3, T = 9 };
    uint8_t m[B * T * T];
    int32_t doc[B * T], prefix[B];
    for (int trial = 0; trial < 300; trial++) {
        MaskSpec s = spec_none();
        ModelKind kind = (ModelKind)trng_int(&rng, 0, 2);
        s.window = trng_int(&rng, 0, 4);
        s.doc_mask = trng_int(&rng, 0, 1);
        s.n_edits = trng_int(&rng, 0, 4);
        for (int e = 0; e < s.n_edits; e++)
            s.edits[e] = (MaskEdit){(MaskEditKind)trng_int(&rng, 0, 2), trng_int(&rng, -1, T)};
        for (int t = 0; t < B * T; t++) doc[t] = trng_int(&rng, -1, 2);
        for (int b = 0; b < B; b++) prefix[b] = trng_int(&rng, 0, T);
        mask_build(m, kind, &s, doc, prefix, B, T);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < T; i++) {
                const uint8_t *row = m + ((size_t)b * T + i) * T;
                if (!row[i])
                    fail_msg("trial %d: allowed[b%d][q%d][k%d] = 0, every row must keep itself",
                             trial, b, i, i);
                for (int j = 0; j < T; j++)
                    if (j != i && row[j] && (doc[b * T + j] < 0 || doc[b * T + i] < 0))
                        fail_msg("trial %d: allowed[b%d][q%d][k%d] = 1 with a PAD token", trial,
                                 b, i, j);
            }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_causal_is_lower_triangular),
        cmocka_unit_test(test_bidirectional_sees_everything),
        cmocka_unit_test(test_prefix_lm_per_sequence),
        cmocka_unit_test(test_window_causal_and_bidirectional),
        cmocka_unit_test(test_doc_mask_keeps_documents_apart),
        cmocka_unit_test(test_pad_rows_see_only_themselves),
        cmocka_unit_test(test_isolate_row_sees_only_itself),
        cmocka_unit_test(test_reset_starts_a_new_sequence),
        cmocka_unit_test(test_block_key_hides_key_from_others),
        cmocka_unit_test(test_rules_compose),
        cmocka_unit_test(test_out_of_range_edits_ignored),
        cmocka_unit_test(test_no_row_is_ever_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
