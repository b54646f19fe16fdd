/* test_json.c: the strict JSON reader (valid documents, escapes, numbers, errors naming file:line)
 * and the writer (round-trip through the reader, non-finite numbers never written). */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/json.h"
#include "analysis/jsonw.h"

static void parse_ok(JsonDoc *doc, const char *text)
{
    char err[256] = "";
    if (json_parse(doc, text, strlen(text), "t.jsonl", 1, err, sizeof err) != 0)
        fail_msg("parse of %s failed: %s", text, err);
}

/* Parses text expecting failure; returns the message. */
static const char *parse_err(const char *text, const char *file, int line)
{
    static char err[256];
    JsonDoc doc;
    err[0] = 0;
    if (json_parse(&doc, text, strlen(text), file, line, err, sizeof err) == 0) {
        json_free(&doc);
        fail_msg("parse of <%s> succeeded, want an error", text);
    }
    if (doc.root != NULL) fail_msg("failed parse of <%s> left a root", text);
    return err;
}

static void test_parses_a_training_line(void **state)
{
    JsonDoc doc;
    parse_ok(&doc, "{\"step\":120,\"tokens\":491520,\"epoch\":0.25,\"loss\":2.75,\"lr\":0.001,"
                   "\"grad_norm\":1.5,\"tok_per_s\":20480.5}");
    assert_int_equal(doc.root->type, JSON_OBJECT);
    assert_int_equal(doc.root->n, 7);
    assert_true(json_num_or(json_get(doc.root, "step"), -1) == 120);
    assert_true(json_num_or(json_get(doc.root, "tokens"), -1) == 491520);
    assert_true(json_num_or(json_get(doc.root, "loss"), -1) == 2.75);
    assert_true(json_num_or(json_get(doc.root, "lr"), -1) == 0.001);
    assert_null(json_get(doc.root, "val_loss"));
    assert_true(json_num_or(json_get(doc.root, "val_loss"), -7) == -7);
    json_free(&doc);
}

static void test_parses_nested_arrays_and_objects(void **state)
{
    JsonDoc doc;
    parse_ok(&doc, " {\"probe\": {\"alpha0\": [[0.1, 0.2], [0.3, 0.4], []],\n"
                   "  \"sink_rate\": {\"0.3\": 0.5, \"0.8\": 0}, \"ok\": true, \"none\": null,"
                   " \"deep\": [[[[1]]]]}} \n");
    const JsonValue *probe = json_get(doc.root, "probe");
    const JsonValue *a = json_get(probe, "alpha0");
    assert_int_equal(json_len(a), 3);
    assert_int_equal(json_len(json_at(a, 2)), 0);
    assert_true(json_num_or(json_at(json_at(a, 1), 0), -1) == 0.3);
    double m[4];
    assert_int_equal(json_matrix(m, a, 2, 2), -1); /* 3 rows, not 2 */
    const JsonValue first_two = { .type = JSON_ARRAY, .n = 2, .items = a->items };
    assert_int_equal(json_matrix(m, &first_two, 2, 2), 0);
    assert_true(m[0] == 0.1 && m[1] == 0.2 && m[2] == 0.3 && m[3] == 0.4);
    assert_true(json_num_or(json_get(json_get(probe, "sink_rate"), "0.3"), -1) == 0.5);
    assert_int_equal(json_get(probe, "ok")->type, JSON_BOOL);
    assert_true(json_get(probe, "ok")->number == 1);
    assert_int_equal(json_get(probe, "none")->type, JSON_NULL);
    const JsonValue *d = json_get(probe, "deep");
    assert_true(json_num_or(json_at(json_at(json_at(json_at(d, 0), 0), 0), 0), -1) == 1);
    assert_null(json_at(a, 3));
    assert_null(json_at(a, -1));
    assert_null(json_get(a, "x"));
    json_free(&doc);
}

static void test_decodes_string_escapes(void **state)
{
    JsonDoc doc;
    parse_ok(&doc, "[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", \"\\u00e9\\u4e2d\", \"\\ud83d\\ude00\", \"caf\xc3\xa9\"]");
    const char *s0 = json_at(doc.root, 0)->str;
    assert_string_equal(s0, "a\"b\\c/d\b\f\n\r\t");
    assert_int_equal(json_at(doc.root, 0)->n, 12);
    assert_string_equal(json_at(doc.root, 1)->str, "\xc3\xa9\xe4\xb8\xad");
    assert_string_equal(json_at(doc.root, 2)->str, "\xf0\x9f\x98\x80"); /* U+1F600 via surrogates */
    assert_string_equal(json_at(doc.root, 3)->str, "caf\xc3\xa9");
    json_free(&doc);
}

static void test_parses_numbers_with_exponents(void **state)
{
    const char *text[] = { "0", "-0", "12", "-3.5", "1e3", "1E+3", "2.5e-3", "-7.25E-10", "6.02214076e23", "1e-320" };
    double want[] = { 0, -0.0, 12, -3.5, 1000, 1000, 2.5e-3, -7.25e-10, 6.02214076e23, 1e-320 };
    for (int i = 0; i < 10; i++) {
        JsonDoc doc;
        parse_ok(&doc, text[i]);
        if (doc.root->type != JSON_NUMBER || doc.root->number != want[i])
            fail_msg("number %s: got %.17g, want %.17g", text[i], doc.root->number, want[i]);
        json_free(&doc);
    }
}

static void test_rejects_malformed_input_naming_file_and_line(void **state)
{
    struct { const char *text, *what; } bad[] = {
        { "{\"a\":1,}", "expected a string key" },
        { "[1,2,]", "expected a value" },
        { "[1 2]", "expected ',' or ']'" },
        { "{\"a\" 1}", "expected ':'" },
        { "{\"a\":1", "expected ',' or '}'" },
        { "01", "leading zero" },
        { "1.", "digit after '.'" },
        { "1e", "digit in the exponent" },
        { "NaN", "expected a value" },
        { "-Infinity", "expected a value" },
        { "1e999", "out of range" },
        { "\"tab\there\"", "control character" },
        { "\"bad \\x escape\"", "invalid escape" },
        { "\"\\udc00\"", "unpaired low surrogate" },
        { "\"open", "unterminated string" },
        { "{\"a\":1,\"a\":2}", "duplicate key \"a\"" },
        { "{} {}", "expected end of input" },
        { "tru", "expected a value" },
        { "", "expected a value" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *e = parse_err(bad[i].text, "runs/x/metrics.jsonl", 42);
        if (strncmp(e, "runs/x/metrics.jsonl:42:", 24) != 0 || !strstr(e, bad[i].what))
            fail_msg("<%s>: message \"%s\" should start with runs/x/metrics.jsonl:42: and contain \"%s\"",
                     bad[i].text, e, bad[i].what);
    }
}

static void test_error_counts_lines_and_columns_inside_text(void **state)
{
    const char *e = parse_err("{\n  \"a\": [1,\n    2,,3]}", "probe/step_0000100.json", 1);
    if (strncmp(e, "probe/step_0000100.json:3:7:", 28) != 0)
        fail_msg("message \"%s\" should start with probe/step_0000100.json:3:7:", e);
}

static void test_rejects_nesting_deeper_than_limit(void **state)
{
    char text[2 * (JSON_MAX_DEPTH + 2) + 1];
    int n = JSON_MAX_DEPTH + 2;
    for (int i = 0; i < n; i++) { text[i] = '['; text[n + i] = ']'; }
    text[2 * n] = 0;
    const char *e = parse_err(text, "f", 1);
    assert_non_null(strstr(e, "nesting"));
}

static void test_writer_round_trips_through_the_parser(void **state)
{
    JsonWriter w;
    jsonw_init(&w);
    float alpha[2][3] = { { 0.1f, 0.25f, 1.0f / 3.0f }, { 1e-7f, 0.99999994f, 123456.789f } };
    int loc[2][3] = { { 0, 1, 2 }, { 3, 4, 5 } };
    jsonw_object_begin(&w);
    jsonw_key_int(&w, "step", 1234567890123LL);
    jsonw_key_number(&w, "loss", 2.0f / 3.0f);
    jsonw_key_string(&w, "text", "quote\" slash\\ nl\n tab\t ctl\x01 utf8 \xc3\xa9");
    jsonw_key_bool(&w, "bos", 1);
    jsonw_key_object_begin(&w, "probe");
    jsonw_key_floats(&w, "alpha0", &alpha[0][0], (int[]){ 2, 3 }, 2);
    jsonw_key_ints(&w, "sink_location", &loc[0][0], (int[]){ 2, 3 }, 2);
    jsonw_key_object_begin(&w, "sink_rate");
    jsonw_key_number(&w, "0.3", 0.5);
    jsonw_object_end(&w);
    jsonw_key_array_begin(&w, "list");
    jsonw_number(&w, -1.5e-20);
    jsonw_int(&w, -3);
    jsonw_string(&w, "x");
    jsonw_array_begin(&w);
    jsonw_array_end(&w);
    jsonw_array_end(&w);
    jsonw_object_end(&w);
    jsonw_object_end(&w);
    size_t len = 0;
    const char *text = jsonw_text(&w, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));

    JsonDoc doc;
    parse_ok(&doc, text);
    assert_true(json_get(doc.root, "step")->number == 1234567890123.0);
    assert_true((float)json_get(doc.root, "loss")->number == 2.0f / 3.0f);
    assert_string_equal(json_get(doc.root, "text")->str, "quote\" slash\\ nl\n tab\t ctl\x01 utf8 \xc3\xa9");
    const JsonValue *probe = json_get(doc.root, "probe");
    double m[6];
    assert_int_equal(json_matrix(m, json_get(probe, "alpha0"), 2, 3), 0);
    for (int i = 0; i < 6; i++)
        if ((float)m[i] != (&alpha[0][0])[i])
            fail_msg("alpha0[%d]: read back %.9g, wrote %.9g (float round trip must be exact)", i,
                     m[i], (double)(&alpha[0][0])[i]);
    assert_int_equal(json_matrix(m, json_get(probe, "sink_location"), 2, 3), 0);
    for (int i = 0; i < 6; i++) assert_true(m[i] == (&loc[0][0])[i]);
    assert_true(json_num_or(json_get(json_get(probe, "sink_rate"), "0.3"), -1) == 0.5);
    const JsonValue *list = json_get(probe, "list");
    assert_int_equal(json_len(list), 4);
    assert_true((float)json_at(list, 0)->number == -1.5e-20f);
    assert_int_equal(json_len(json_at(list, 3)), 0);
    json_free(&doc);
    jsonw_free(&w);
}

static void test_random_floats_round_trip_exactly(void **state)
{
    TestRng r = { 7 };
    JsonWriter w;
    jsonw_init(&w);
    enum { N = 2000 };
    static float x[N];
    for (int i = 0; i < N; i++) {
        float mant = trng_uniform(&r, -1, 1);
        x[i] = ldexpf(mant, trng_int(&r, -60, 60));
    }
    jsonw_object_begin(&w);
    assert_int_equal(jsonw_key_floats(&w, "x", x, (int[]){ N }, 1), 0);
    jsonw_object_end(&w);
    JsonDoc doc;
    parse_ok(&doc, jsonw_text(&w, NULL));
    const JsonValue *a = json_get(doc.root, "x");
    assert_int_equal(json_len(a), N);
    for (int i = 0; i < N; i++)
        if ((float)a->items[i].number != x[i])
            fail_msg("x[%d]: read back %.9g, wrote %.9g", i, a->items[i].number, (double)x[i]);
    json_free(&doc);
    jsonw_free(&w);
}

static void test_non_finite_numbers_are_never_written(void **state)
{
    JsonWriter w;
    jsonw_init(&w);
    float good[2] = { 1, 2 }, bad[2] = { 1, NAN };
    double badd[2] = { INFINITY, 0 };
    jsonw_object_begin(&w);
    assert_int_equal(jsonw_key_number(&w, "nan", NAN), 1);
    assert_int_equal(jsonw_key_number(&w, "inf", -INFINITY), 1);
    assert_int_equal(jsonw_key_number(&w, "ok", 1.5), 0);
    assert_int_equal(jsonw_key_floats(&w, "bad", bad, (int[]){ 2 }, 1), 1);
    assert_int_equal(jsonw_key_doubles(&w, "badd", badd, (int[]){ 1, 2 }, 2), 1);
    assert_int_equal(jsonw_key_floats(&w, "good", good, (int[]){ 2 }, 1), 0);
    jsonw_object_end(&w);
    const char *text = jsonw_text(&w, NULL);
    assert_non_null(text);
    assert_string_equal(text, "{\"ok\":1.5,\"good\":[1,2]}");
    assert_null(strstr(text, "null"));

    /* A bare non-finite element cannot be omitted without shifting indices: the document fails. */
    jsonw_reset(&w);
    jsonw_array_begin(&w);
    jsonw_number(&w, 1);
    jsonw_number(&w, NAN);
    jsonw_array_end(&w);
    assert_int_equal(jsonw_error(&w), JSONW_ERR_NONFINITE);
    assert_null(jsonw_text(&w, NULL));
    assert_int_equal(jsonw_write_line(&w, stdout), -1);
    jsonw_free(&w);
}

static void test_writer_refuses_misuse_and_incomplete_documents(void **state)
{
    JsonWriter w;
    jsonw_init(&w);
    jsonw_object_begin(&w);
    jsonw_number(&w, 1); /* a value in an object needs a key */
    assert_int_equal(jsonw_error(&w), JSONW_ERR_USAGE);

    jsonw_reset(&w);
    jsonw_array_begin(&w);
    jsonw_key_int(&w, "k", 1); /* a key in an array */
    assert_int_equal(jsonw_error(&w), JSONW_ERR_USAGE);

    jsonw_reset(&w);
    jsonw_array_begin(&w);
    jsonw_object_end(&w);
    assert_int_equal(jsonw_error(&w), JSONW_ERR_USAGE);

    jsonw_reset(&w);
    jsonw_object_begin(&w);
    assert_null(jsonw_text(&w, NULL)); /* still open */
    jsonw_object_end(&w);
    assert_string_equal(jsonw_text(&w, NULL), "{}");
    jsonw_free(&w);
}

static void test_write_line_appends_one_newline(void **state)
{
    char *mem = NULL;
    size_t memlen = 0;
    FILE *f = open_memstream(&mem, &memlen);
    assert_non_null(f);
    JsonWriter w;
    jsonw_init(&w);
    for (int step = 0; step < 3; step++) {
        jsonw_reset(&w);
        jsonw_object_begin(&w);
        jsonw_key_int(&w, "step", step);
        jsonw_object_end(&w);
        assert_int_equal(jsonw_write_line(&w, f), 0);
    }
    fclose(f);
    assert_string_equal(mem, "{\"step\":0}\n{\"step\":1}\n{\"step\":2}\n");
    assert_string_equal(jsonw_text(&w, NULL), "{\"step\":2}");
    free(mem);
    jsonw_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parses_a_training_line),
        cmocka_unit_test(test_parses_nested_arrays_and_objects),
        cmocka_unit_test(test_decodes_string_escapes),
        cmocka_unit_test(test_parses_numbers_with_exponents),
        cmocka_unit_test(test_rejects_malformed_input_naming_file_and_line),
        cmocka_unit_test(test_error_counts_lines_and_columns_inside_text),
        cmocka_unit_test(test_rejects_nesting_deeper_than_limit),
        cmocka_unit_test(test_writer_round_trips_through_the_parser),
        cmocka_unit_test(test_random_floats_round_trip_exactly),
        cmocka_unit_test(test_non_finite_numbers_are_never_written),
        cmocka_unit_test(test_writer_refuses_misuse_and_incomplete_documents),
        cmocka_unit_test(test_write_line_appends_one_newline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
