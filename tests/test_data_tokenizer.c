/* test_data_tokenizer.c: the byte tokenizer round-trips any byte string and renders specials and
 * unprintable bytes readably. */
#include "tests/testutil.h"

#include <string.h>

#include "data/tokenizer.h"

/* Every byte value, in a random string of every length up to 300, survives encode -> decode. */
static void test_roundtrip_any_bytes(void **state)
{
    (void)state;
    TestRng r = {42};
    unsigned char in[300], out[300];
    int32_t ids[300];
    for (int n = 0; n <= 300; n++) {
        for (int i = 0; i < n; i++) in[i] = (unsigned char)(n == 256 ? i : trng_int(&r, 0, 255));
        assert_int_equal(tok_encode(in, (size_t)n, ids), n);
        for (int i = 0; i < n; i++)
            if (ids[i] != in[i]) fail_msg("ids[%d]: got %d, want byte %d", i, ids[i], in[i]);
        assert_int_equal(tok_decode_bytes(ids, (size_t)n, out), n);
        if (memcmp(in, out, (size_t)n)) fail_msg("round trip of %d bytes differs", n);
    }
}

static void test_special_ids_are_documented_values(void **state)
{
    (void)state;
    assert_int_equal(TOK_BOS, 256);
    assert_int_equal(TOK_EOS, 257);
    assert_int_equal(TOK_PAD, 258);
    assert_int_equal(TOK_MASK, 259);
    assert_int_equal(TOK_CLS, 260);
    assert_int_equal(TOK_SEP, 261);
    assert_int_equal(TOK_VOCAB_SIZE, 262);
    assert_null(tok_special_name('a'));
    assert_string_equal(tok_special_name(TOK_MASK), "<mask>");
}

static void test_decode_renders_specials_and_escapes(void **state)
{
    (void)state;
    const int32_t ids[] = {TOK_BOS, 'H', 'i', '\n', 0x01, TOK_EOS, TOK_PAD, TOK_CLS, TOK_SEP, TOK_MASK,
                           0xC3, 0xA9, 0xFF, 999};
    char out[128];
    size_t n = tok_decode(ids, sizeof ids / sizeof ids[0], out, sizeof out);
    assert_string_equal(out, "<bos>Hi\n\\x01<eos><pad><cls><sep><mask>\xC3\xA9\\xFF<?999>");
    assert_int_equal(n, strlen(out));
}

static void test_decode_bytes_refuses_specials(void **state)
{
    (void)state;
    const int32_t ids[] = {'a', TOK_BOS};
    unsigned char out[2];
    assert_int_equal(tok_decode_bytes(ids, 2, out), -1);
}

/* A small buffer truncates at a token boundary and stays NUL-terminated. */
static void test_decode_truncates_whole_tokens(void **state)
{
    (void)state;
    const int32_t ids[] = {'a', 'b', TOK_BOS, 'c'};
    char out[6];
    size_t n = tok_decode(ids, 4, out, sizeof out);
    assert_string_equal(out, "ab");
    assert_int_equal(n, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_any_bytes),
        cmocka_unit_test(test_special_ids_are_documented_values),
        cmocka_unit_test(test_decode_renders_specials_and_escapes),
        cmocka_unit_test(test_decode_bytes_refuses_specials),
        cmocka_unit_test(test_decode_truncates_whole_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
