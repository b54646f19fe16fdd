/* test_data_corpus.c: corpora load from text, gzip, directories, fortunes, Brown and the synthetic
 * generator; every kind of bad input is refused with a message naming the file. */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/corpus.h"
#include "data/dataset.h"
#include "data/synthetic.h"

static DataConfig files_cfg(const char *path, Separator sep)
{
    DataConfig c;
    memset(&c, 0, sizeof c);
    c.corpus = CORPUS_FILES;
    c.n_paths = path ? 1 : 0;
    if (path) snprintf(c.paths[0], sizeof c.paths[0], "%.500s", path);
    c.separator = sep;
    c.seq_len = 16;
    c.eos = 1;
    c.fixed_token_id = -1;
    c.mlm_prob = 0.15f;
    c.prefix_min = c.prefix_max = 4;
    return c;
}

static void write_gz(const char *path, const char *text)
{
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, text, (unsigned)strlen(text)), (int)strlen(text));
    gzclose(g);
}

static char *doc_str(const Corpus *c, int64_t d)
{
    static char buf[4096];
    int64_t n = corpus_doc_len(c, d);
    memcpy(buf, c->text + c->doc_off[d], (size_t)n);
    buf[n] = '\0';
    return buf;
}

static void expect_docs(const Corpus *c, const char *const *want, int n)
{
    if (c->n_docs != n) fail_msg("n_docs: got %lld, want %d", (long long)c->n_docs, n);
    for (int i = 0; i < n; i++)
        if (strcmp(doc_str(c, i), want[i])) fail_msg("doc %d: got '%s', want '%s'", i, doc_str(c, i), want[i]);
}

static void load_ok(Corpus *c, const DataConfig *cfg)
{
    char err[1024] = "";
    if (corpus_load(c, cfg, err, sizeof err)) fail_msg("corpus_load failed: %s", err);
}

/* The message names the file (substring must) and what went wrong (substring what). */
static void expect_open_error(const DataConfig *cfg, const char *must, const char *what)
{
    char err[2048] = "";
    Dataset *ds = dataset_open(cfg, err, sizeof err);
    if (ds) {
        dataset_free(ds);
        fail_msg("dataset_open accepted bad input; expected an error naming '%s'", must);
    }
    if (!strstr(err, must)) fail_msg("error '%s' does not name '%s'", err, must);
    if (what && !strstr(err, what)) fail_msg("error '%s' does not say '%s'", err, what);
}

static void test_separators_split_documents(void **state)
{
    (void)state;
    char dir[512], path[600];
    test_tmpdir(dir, sizeof dir, "sep");
    snprintf(path, sizeof path, "%s/t.txt", dir);
    const char *text = "one\r\ntwo a\n\n\nthree\n%\nfour\n  \nfive\n";
    test_write_text(path, text);
    struct { Separator sep; int n; const char *docs[6]; } cases[] = {
        {SEP_LINE, 6, {"one", "two a", "three", "%", "four", "five"}},
        {SEP_BLANK_LINE, 3, {"one\r\ntwo a", "three\n%\nfour", "five"}},
        {SEP_PERCENT_LINE, 2, {"one\r\ntwo a\n\n\nthree", "four\n  \nfive"}},
        {SEP_FILE, 1, {"one\r\ntwo a\n\n\nthree\n%\nfour\n  \nfive"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        DataConfig cfg = files_cfg(path, cases[i].sep);
        Corpus c;
        load_ok(&c, &cfg);
        expect_docs(&c, cases[i].docs, cases[i].n);
        corpus_free(&c);
    }
}

/* A gzip file streams through zlib to the same documents as its plain text. */
static void test_gzip_matches_plain(void **state)
{
    (void)state;
    char dir[512], plain[600], gz[600];
    test_tmpdir(dir, sizeof dir, "gz");
    snprintf(plain, sizeof plain, "%s/a.txt", dir);
    snprintf(gz, sizeof gz, "%s/a.txt.gz", dir);
    char text[70000];
    size_t n = 0;
    for (int i = 0; n < sizeof text - 64; i++) n += (size_t)snprintf(text + n, 64, "fortune %d says hi\n%%\n", i);
    test_write_file(plain, text, n);
    write_gz(gz, text);
    DataConfig a = files_cfg(plain, SEP_PERCENT_LINE), b = files_cfg(gz, SEP_PERCENT_LINE);
    Corpus ca, cb;
    load_ok(&ca, &a);
    load_ok(&cb, &b);
    assert_true(ca.n_docs > 1000);
    assert_int_equal(ca.n_docs, cb.n_docs);
    assert_int_equal(ca.n_text, cb.n_text);
    assert_memory_equal(ca.text, cb.text, (size_t)ca.n_text);
    corpus_free(&ca);
    corpus_free(&cb);
}

/* A directory loads its files in name order, skipping hidden files, recursing into folders. */
static void test_directory_in_name_order(void **state)
{
    (void)state;
    char dir[512], p[700];
    test_tmpdir(dir, sizeof dir, "dir");
    snprintf(p, sizeof p, "%s/b.txt", dir);
    test_write_file(p, "bee\n", 4);
    snprintf(p, sizeof p, "%s/a.txt.gz", dir);
    write_gz(p, "ay\n");
    snprintf(p, sizeof p, "%s/.hidden", dir);
    test_write_file(p, "no\n", 3);
    snprintf(p, sizeof p, "%s/sub", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/sub/c.txt", dir);
    test_write_file(p, "sea\n", 4);
    DataConfig cfg = files_cfg(dir, SEP_FILE);
    Corpus c;
    load_ok(&c, &cfg);
    const char *want[] = {"ay", "bee", "sea"};
    expect_docs(&c, want, 3);
    corpus_free(&c);
}

static void test_missing_file_is_named(void **state)
{
    (void)state;
    DataConfig cfg = files_cfg("/nonexistent/sinklab/corpus.txt", SEP_LINE);
    expect_open_error(&cfg, "/nonexistent/sinklab/corpus.txt", "cannot open");
}

static void test_corrupt_gzip_is_named(void **state)
{
    (void)state;
    char dir[512], path[600];
    test_tmpdir(dir, sizeof dir, "badgz");
    snprintf(path, sizeof path, "%s/bad.txt.gz", dir);
    char text[20000];
    TestRng r = {7};
    for (size_t i = 0; i < sizeof text - 1; i++) text[i] = (char)('a' + trng_int(&r, 0, 25));
    text[sizeof text - 1] = '\0';
    write_gz(path, text);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 40, SEEK_SET);
    for (int i = 0; i < 200; i++) fputc(0xA5 ^ i, f);   /* damage the deflate stream */
    fclose(f);
    DataConfig cfg = files_cfg(path, SEP_FILE);
    expect_open_error(&cfg, path, "gzip");
}

static void test_truncated_gzip_is_named(void **state)
{
    (void)state;
    char dir[512], path[600];
    test_tmpdir(dir, sizeof dir, "truncgz");
    snprintf(path, sizeof path, "%s/cut.gz", dir);
    char text[20000];
    TestRng r = {9};
    for (size_t i = 0; i < sizeof text - 1; i++) text[i] = (char)('a' + trng_int(&r, 0, 25));
    text[sizeof text - 1] = '\0';
    write_gz(path, text);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    DataConfig cfg = files_cfg(path, SEP_FILE);
    expect_open_error(&cfg, path, "gzip");
}

static void test_plain_text_named_gz_is_refused(void **state)
{
    (void)state;
    char dir[512], path[600];
    test_tmpdir(dir, sizeof dir, "fakegz");
    snprintf(path, sizeof path, "%s/fake.gz", dir);
    test_write_file(path, "hello\n", 6);
    DataConfig cfg = files_cfg(path, SEP_LINE);
    expect_open_error(&cfg, path, "not a gzip");
}

static void test_empty_file_is_named(void **state)
{
    (void)state;
    char dir[512], path[600];
    test_tmpdir(dir, sizeof dir, "empty");
    snprintf(path, sizeof path, "%s/empty.txt", dir);
    test_write_file(path, "", 0);
    DataConfig cfg = files_cfg(path, SEP_LINE);
    expect_open_error(&cfg, path, "empty");
}

static void test_empty_directory_is_named(void **state)
{
    (void)state;
    char dir[512];
    test_tmpdir(dir, sizeof dir, "emptydir");
    DataConfig cfg = files_cfg(dir, SEP_LINE);
    expect_open_error(&cfg, dir, "no corpus files");
}

static void test_separator_without_documents_is_named(void **state)
{
    (void)state;
    char dir[512], path[600];
    test_tmpdir(dir, sizeof dir, "nodoc");
    snprintf(path, sizeof path, "%s/only_seps.txt", dir);
    test_write_file(path, "%\n%\n  \n%\n", 9);
    DataConfig cfg = files_cfg(path, SEP_PERCENT_LINE);
    expect_open_error(&cfg, path, "percent_line yields no document");
}

/* pack: pad with long_docs: error names the file and the line of the long document. */
static void test_long_document_error_names_file_and_line(void **state)
{
    (void)state;
    char dir[512], path[600], want[700];
    test_tmpdir(dir, sizeof dir, "longdoc");
    snprintf(path, sizeof path, "%s/long.txt", dir);
    char text[400];
    int n = snprintf(text, sizeof text, "short\nalso short\n");
    memset(text + n, 'x', 100);
    n += 100;
    text[n++] = '\n';
    for (int i = 0; i < 10; i++) n += snprintf(text + n, sizeof text - (size_t)n, "s%d\n", i);
    test_write_file(path, text, (size_t)n);
    DataConfig cfg = files_cfg(path, SEP_LINE);
    cfg.pack = PACK_PAD;
    cfg.long_docs = LONG_ERROR;
    snprintf(want, sizeof want, "%s:3", path);
    expect_open_error(&cfg, want, "long_docs: error");
    cfg.long_docs = LONG_SPLIT;
    char err[1024] = "";
    Dataset *ds = dataset_open(&cfg, err, sizeof err);
    if (!ds) fail_msg("long_docs: split refused the file: %s", err);
    dataset_free(ds);
}

static void test_token_id_out_of_range_is_refused(void **state)
{
    (void)state;
    DataConfig cfg = files_cfg(NULL, SEP_LINE);
    cfg.corpus = CORPUS_SYNTHETIC;
    cfg.fixed_token_id = 262;
    expect_open_error(&cfg, "data.fixed_token.id", "out of range");
}

static void test_files_corpus_without_path_is_refused(void **state)
{
    (void)state;
    DataConfig cfg = files_cfg(NULL, SEP_LINE);
    expect_open_error(&cfg, "data.path", NULL);
}

/* Hand-checked: tags go, `` '' become quotes, punctuation attaches, blank lines end paragraphs. */
static void test_brown_detag_rebuilds_text(void **state)
{
    (void)state;
    const char *in = "\n\n\tThe/at jury/nn said/vbd ``/`` no/at ''/'' ,/, (/( 1/2/cd )/) it/pps ./.\n"
                     "It/pps ran/vbd ./.\n\n\n\tNext/ap para/nn ;/. ok/uh !/. Mr./np Jr./np ./.\n";
    uint8_t out[256];
    int64_t n = brown_detag(out, (const uint8_t *)in, (int64_t)strlen(in));
    out[n] = '\0';
    assert_string_equal((char *)out, "The jury said \"no\", (1/2) it. It ran.\nNext para; ok! Mr. Jr.");
}

static void test_brown_missing_names_its_folder(void **state)
{
    (void)state;
    char dir[512], want[600];
    test_tmpdir(dir, sizeof dir, "nobrown");
    setenv("SINKLAB_DATA_DIR", dir, 1);
    DataConfig cfg = files_cfg(NULL, SEP_LINE);
    cfg.corpus = CORPUS_BROWN;
    snprintf(want, sizeof want, "%s/brown", dir);
    expect_open_error(&cfg, want, "get_corpora.sh");
    unsetenv("SINKLAB_DATA_DIR");
}

/* The real Brown corpus when scripts/get_corpora.sh has run; otherwise its absence is named. */
static void test_brown_corpus_loads_or_is_named(void **state)
{
    (void)state;
    char dir[600];
    corpus_brown_dir(dir, sizeof dir);
    DataConfig cfg = files_cfg(NULL, SEP_LINE);
    cfg.corpus = CORPUS_BROWN;
    struct stat st;
    if (stat(dir, &st)) {
        expect_open_error(&cfg, dir, "get_corpora.sh");
        return;
    }
    Corpus c;
    load_ok(&c, &cfg);
    if (c.n_docs != 500) fail_msg("brown: got %lld documents, want 500", (long long)c.n_docs);
    double mean = (double)c.n_text / (double)c.n_docs;
    if (mean < 8000 || mean > 16000) fail_msg("brown: mean document %.0f bytes, want about 11000", mean);
    /* No tag survives: the commonest tags would show as "/at " and "/nn ". */
    for (int64_t i = 0; i + 4 < c.n_text; i++)
        if (c.text[i] == '/' && ((c.text[i + 1] == 'a' && c.text[i + 2] == 't' && c.text[i + 3] == ' ') ||
                                 (c.text[i + 1] == 'n' && c.text[i + 2] == 'n' && c.text[i + 3] == ' ')))
            fail_msg("brown: tag left at byte %lld", (long long)i);
    corpus_free(&c);
}

static int has_separator_line(const uint8_t *t, int64_t n)
{
    for (int64_t i = 0; i + 2 < n; i++)
        if (t[i] == '\n' && t[i + 1] == '%' && t[i + 2] == '\n') return 1;
    return 0;
}

/* The installed fortunes load (about 15k short documents, no '%' separators, no .dat index);
 * without the package, the error names the folder. */
static void test_fortunes_load_or_are_named(void **state)
{
    (void)state;
    DataConfig cfg = files_cfg(NULL, SEP_LINE);
    cfg.corpus = CORPUS_FORTUNES;
    struct stat st;
    if (stat(CORPUS_FORTUNES_DIR, &st)) {
        expect_open_error(&cfg, CORPUS_FORTUNES_DIR, "fortunes");
        return;
    }
    Corpus c;
    load_ok(&c, &cfg);
    if (c.n_docs < 10000 || c.n_docs > 30000) fail_msg("fortunes: %lld documents, want about 15000", (long long)c.n_docs);
    double mean = (double)c.n_text / (double)c.n_docs;
    if (mean < 50 || mean > 400) fail_msg("fortunes: mean %.0f bytes per document, want about 170", mean);
    for (int i = 0; i < c.n_files; i++)
        if (strstr(c.files[i], ".dat") || strstr(c.files[i], ".u8")) fail_msg("fortunes: loaded index %s", c.files[i]);
    for (int64_t d = 0; d < c.n_docs; d++) {
        int64_t n = corpus_doc_len(&c, d);
        const uint8_t *t = c.text + c.doc_off[d];
        if (n == 1 && t[0] == '%') fail_msg("fortunes: document %lld is a separator", (long long)d);
        if (has_separator_line(t, n)) fail_msg("fortunes: document %lld holds a separator line", (long long)d);
    }
    corpus_free(&c);
}

/* Same seed, same text; documents open with "Title: Adj Name" and close with "-- Name". */
static void test_synthetic_deterministic_and_structured(void **state)
{
    (void)state;
    Corpus a, b, c;
    corpus_init(&a);
    corpus_init(&b);
    corpus_init(&c);
    synthetic_generate(&a, 300, 5);
    synthetic_generate(&b, 300, 5);
    synthetic_generate(&c, 300, 6);
    assert_int_equal(a.n_text, b.n_text);
    assert_memory_equal(a.text, b.text, (size_t)a.n_text);
    assert_true(a.n_text != c.n_text || memcmp(a.text, c.text, (size_t)a.n_text));
    for (int64_t d = 0; d < a.n_docs; d++) {
        char *s = doc_str(&a, d);
        if (strncmp(s, "Title: ", 7)) fail_msg("synthetic doc %lld does not open with a title: %.40s", (long long)d, s);
        const char *name = strchr(s + 7, ' ') + 1;
        size_t len = strcspn(name, "\n");
        const char *sig = strstr(s, "\n-- ");
        if (!sig || strncmp(sig + 4, name, len) || sig[4 + len]) fail_msg("synthetic doc %lld: signature does not repeat the title name", (long long)d);
    }
    corpus_free(&a);
    corpus_free(&b);
    corpus_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_separators_split_documents),
        cmocka_unit_test(test_gzip_matches_plain),
        cmocka_unit_test(test_directory_in_name_order),
        cmocka_unit_test(test_missing_file_is_named),
        cmocka_unit_test(test_corrupt_gzip_is_named),
        cmocka_unit_test(test_truncated_gzip_is_named),
        cmocka_unit_test(test_plain_text_named_gz_is_refused),
        cmocka_unit_test(test_empty_file_is_named),
        cmocka_unit_test(test_empty_directory_is_named),
        cmocka_unit_test(test_separator_without_documents_is_named),
        cmocka_unit_test(test_long_document_error_names_file_and_line),
        cmocka_unit_test(test_token_id_out_of_range_is_refused),
        cmocka_unit_test(test_files_corpus_without_path_is_refused),
        cmocka_unit_test(test_brown_detag_rebuilds_text),
        cmocka_unit_test(test_brown_missing_names_its_folder),
        cmocka_unit_test(test_brown_corpus_loads_or_is_named),
        cmocka_unit_test(test_fortunes_load_or_are_named),
        cmocka_unit_test(test_synthetic_deterministic_and_structured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
