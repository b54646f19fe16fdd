/* test_checkpoint.c: checkpoints round-trip bit for bit, numpy (and tools/sinklab_ckpt.py) read
 * them, every kind of damage is refused with a message naming the section, a failed save never
 * harms the previous file, and the run-folder helpers (latest, fallback, schedule) behave. The
 * ZIP walking below is written from the format spec (the README ("Checkpoints")), independently of
 * train/checkpoint.c. */
#include "tests/testutil.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "train/checkpoint.h"

static const char *CONFIG = "model:\n  n_layer: 1\n  d_model: 8\n  # unicode \xc3\xa9 and 'quotes'\n"
                            "train:\n  lr: 0.001\n";

/* A small model-shaped block: names as the README ("Parameters and conventions"), one 3-d tensor for shape handling.
 * alt_shape changes one shape, extra adds a parameter the file lacks, skip drops one. */
typedef struct { int alt_shape, extra, skip; } Variant;

static void make_block(ParamBlock *pb, Variant v, uint64_t seed)
{
    int wte[2] = {16, 8}, q[2] = {8, v.alt_shape ? 4 : 8}, ln[1] = {8}, sk[2] = {2, 4};
    int odd[3] = {2, 3, 5}, lo[1] = {2};
    params_init(pb);
    params_add(pb, "wte", PARAM_EMBEDDING, 2, wte);
    params_add(pb, "blocks.0.attn.q.weight", PARAM_MATRIX, 2, q);
    params_add(pb, "blocks.0.attn.sink_k", PARAM_SINK, 2, sk);
    params_add(pb, "blocks.0.attn.sink_logit", PARAM_SINK, 1, lo);
    params_add(pb, "blocks.0.odd", PARAM_MATRIX, 3, odd);
    if (!v.skip) params_add(pb, "lnf.weight", PARAM_VECTOR, 1, ln);
    if (v.extra) params_add(pb, "lnf.bias", PARAM_VECTOR, 1, ln);
    params_finalize(pb);
    TestRng r = {seed};
    trng_fill(&r, pb->data, pb->n, -1, 1);
    trng_fill(&r, pb->m, pb->n, -1e-3f, 1e-3f);
    trng_fill(&r, pb->v, pb->n, 0, 1e-4f);
    pb->data[0] = -0.0f;   /* signed zero survives */
}

static CkptState make_state(void)
{
    CkptState st = {.step = 500, .tokens_seen = 1234567890123LL, .data_pos = -77, .data_epoch = 3,
                    .rng = {0xffffffffffffffffULL, 1, 0x8000000000000000ULL, 42}};
    for (int i = 0; i < CKPT_STATE_EXTRA; i++) st.extra[i] = 1000 + i;
    return st;
}

static void save_ok(const char *path, const ParamBlock *pb, const CkptState *st)
{
    char err[1024] = "";
    if (ckpt_save(path, pb, CONFIG, st, err, sizeof err) != 0) fail_msg("ckpt_save: %s", err);
}

/* Loads into a fresh default-variant block and asserts failure with `want` in the message. */
static void expect_load_error(const char *path, Variant v, const char *want)
{
    ParamBlock pb;
    make_block(&pb, v, 99);
    char err[1024] = "";
    CkptState st;
    int rc = ckpt_load(path, &pb, &st, 1, err, sizeof err);
    params_free(&pb);
    if (rc == 0) fail_msg("%s: loaded, want an error containing \"%s\"", path, want);
    if (!strstr(err, want)) fail_msg("error \"%s\" lacks \"%s\"", err, want);
    if (strncmp(err, path, strlen(path)) != 0) fail_msg("error \"%s\" does not start with the path", err);
}

/* ---- tests ---- */

static void test_roundtrip_is_bit_identical(void **state)
{
    char dir[256], path[512], path2[512], err[1024] = "";
    test_tmpdir(dir, sizeof dir, "ckpt_rt");
    snprintf(path, sizeof path, "%s/a.ckpt", dir);
    snprintf(path2, sizeof path2, "%s/b.ckpt", dir);
    ParamBlock a, b;
    Variant v = {0};
    make_block(&a, v, 1);
    make_block(&b, v, 2);
    CkptState st = make_state(), got;
    memset(&got, 0xab, sizeof got);
    save_ok(path, &a, &st);
    if (ckpt_load(path, &b, &got, 1, err, sizeof err) != 0) fail_msg("ckpt_load: %s", err);
    assert_memory_equal(a.data, b.data, a.n * sizeof(float));
    assert_memory_equal(a.m, b.m, a.n * sizeof(float));
    assert_memory_equal(a.v, b.v, a.n * sizeof(float));
    assert_memory_equal(&st, &got, sizeof st);
    char *cfg = NULL;
    if (ckpt_read_config(path, &cfg, err, sizeof err) != 0) fail_msg("ckpt_read_config: %s", err);
    assert_string_equal(cfg, CONFIG);
    free(cfg);
    /* same state, same bytes: files can be compared and deduplicated */
    save_ok(path2, &a, &st);
    size_t l1, l2;
    unsigned char *b1 = (unsigned char *)test_slurp(path, &l1), *b2 = (unsigned char *)test_slurp(path2, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    free(b1);
    free(b2);
    params_free(&a);
    params_free(&b);
}

static void test_load_without_optimizer_leaves_moments(void **state)
{
    char dir[256], path[512], err[1024] = "";
    test_tmpdir(dir, sizeof dir, "ckpt_noopt");
    snprintf(path, sizeof path, "%s/a.ckpt", dir);
    ParamBlock a, b;
    Variant v = {0};
    make_block(&a, v, 1);
    make_block(&b, v, 2);
    CkptState st = make_state();
    save_ok(path, &a, &st);
    float m0 = b.m[5], v0 = b.v[5];
    if (ckpt_load(path, &b, NULL, 0, err, sizeof err) != 0) fail_msg("ckpt_load: %s", err);
    assert_memory_equal(a.data, b.data, a.n * sizeof(float));
    assert_true(b.m[5] == m0 && b.v[5] == v0);
    params_free(&a);
    params_free(&b);
}

static void test_numpy_and_reader_read_it(void **state)
{
    char dir[256], path[512], cmd[8192], out[16384];
    if (test_run("/usr/bin/python3 -c 'import numpy'", NULL, 0) != 0)
        fail_msg("numpy is not importable by /usr/bin/python3 (apt-get install python3-numpy): "
                 "cannot check that numpy reads checkpoints");
    test_tmpdir(dir, sizeof dir, "ckpt_np");
    snprintf(path, sizeof path, "%s/step_0000500.ckpt", dir);
    ParamBlock a;
    Variant v = {0};
    make_block(&a, v, 3);
    CkptState st = make_state();
    save_ok(path, &a, &st);
    /* numpy prints name, shape and the CRC32 of each array's bytes; C compares exactly */
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"\nimport numpy as np, zlib, sys\n"
             "z = np.load(sys.argv[1])\n"
             "for k in sorted(z.files):\n"
             "    a = z[k]\n"
             "    print(k, a.dtype.str, tuple(a.shape), '%%08x' %% zlib.crc32(a.tobytes()))\n"
             "print('config', repr(bytes(z['config']).decode()))\n\" %s", path);
    int rc = test_run(cmd, out, sizeof out);
    if (rc != 0) fail_msg("numpy.load failed (exit %d): %s", rc, out);
    for (int i = 0; i < a.n_params; i++) {
        const Param *p = &a.params[i];
        static const char *const kinds[3] = {"param", "adam_m", "adam_v"};
        const float *arr[3] = {a.data, a.m, a.v};
        for (int k = 0; k < 3; k++) {
            char want[256], shape[64];
            size_t o = 0;
            for (int d = 0; d < p->t.ndim; d++)
                o += (size_t)snprintf(shape + o, sizeof shape - o, p->t.ndim == 1 ? "%d," :
                                      (d ? ", %d" : "%d"), p->t.shape[d]);
            snprintf(want, sizeof want, "%s/%s <f4 (%s) %08lx", kinds[k], p->name, shape,
                     crc32(0, (const Bytef *)(arr[k] + p->offset), (uInt)(p->t.size * 4)));
            if (!strstr(out, want)) fail_msg("numpy output lacks \"%s\":\n%s", want, out);
        }
    }
    uint32_t fmt = CKPT_FORMAT_VERSION;
    char want[128];
    snprintf(want, sizeof want, "format <i4 (1,) %08lx", crc32(0, (const Bytef *)&fmt, 4));
    if (!strstr(out, want)) fail_msg("numpy output lacks \"%s\":\n%s", want, out);
    snprintf(want, sizeof want, "rng <u8 (4,) %08lx", crc32(0, (const Bytef *)st.rng, 32));
    if (!strstr(out, want)) fail_msg("numpy output lacks \"%s\":\n%s", want, out);
    if (!strstr(out, "state <i8 (12,)")) fail_msg("numpy output lacks the state:\n%s", out);
    if (!strstr(out, "n_layer: 1")) fail_msg("numpy output lacks the config text:\n%s", out);
    /* the documented reader agrees (it checks the central-directory CRC as well) */
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tools/sinklab_ckpt.py %s", test_src(), path);
    rc = test_run(cmd, out, sizeof out);
    if (rc != 0 || !strstr(out, "step 500") || !strstr(out, "blocks.0.attn.q.weight"))
        fail_msg("tools/sinklab_ckpt.py (exit %d) summary lacks step 500 / a parameter:\n%s", rc, out);
    params_free(&a);
}

static void test_damage_in_any_section_names_it(void **state)
{
    char dir[256], path[512];
    test_tmpdir(dir, sizeof dir, "ckpt_crc");
    snprintf(path, sizeof path, "%s/a.ckpt", dir);
    ParamBlock a;
    Variant v = {0};
    make_block(&a, v, 4);
    CkptState st = make_state();
    save_ok(path, &a, &st);
    size_t len;
    unsigned char *b = (unsigned char *)test_slurp(path, &len);
    TestZipEntry es[64];
    int n = test_zip_entries(b, len, es, 64, NULL);
    assert_int_equal(n, 4 + 3 * a.n_params);
    for (int i = 0; i < n; i++) {
        size_t at = es[i].data + es[i].size - 1;   /* the last data byte (header bytes too below) */
        for (int pass = 0; pass < 2; pass++) {
            if (pass) at = es[i].data + 20;        /* inside the .npy header */
            b[at] ^= 0x10;
            test_write_file(path, b, len);
            char want[256];
            snprintf(want, sizeof want, "section '%.190s' CRC mismatch (file damaged)", es[i].name);
            expect_load_error(path, v, want);
            b[at] ^= 0x10;
        }
    }
    /* the central directory and a local header are covered too */
    b[es[3].central + 20] ^= 1;
    test_write_file(path, b, len);
    expect_load_error(path, v, "central directory CRC mismatch (file damaged)");
    b[es[3].central + 20] ^= 1;
    b[es[5].local + 31] ^= 1;   /* a byte of the member's name in its local header */
    test_write_file(path, b, len);
    char want[256];
    snprintf(want, sizeof want, "section '%.190s' local header does not match", es[5].name);
    expect_load_error(path, v, want);
    free(b);
    params_free(&a);
}

static void test_truncated_file_is_refused(void **state)
{
    char dir[256], path[512], cut[512];
    test_tmpdir(dir, sizeof dir, "ckpt_trunc");
    snprintf(path, sizeof path, "%s/a.ckpt", dir);
    snprintf(cut, sizeof cut, "%s/cut.ckpt", dir);
    ParamBlock a;
    Variant v = {0};
    make_block(&a, v, 5);
    CkptState st = make_state();
    save_ok(path, &a, &st);
    size_t len;
    unsigned char *b = (unsigned char *)test_slurp(path, &len);
    size_t keep[5] = {len - 1, len - 30, len / 2, 10, 0};
    for (int i = 0; i < 5; i++) {
        test_write_file(cut, b, keep[i]);
        expect_load_error(cut, v, "truncated");
    }
    free(b);
    params_free(&a);
}

static void test_wrong_version_is_refused(void **state)
{
    char dir[256], path[512];
    test_tmpdir(dir, sizeof dir, "ckpt_ver");
    snprintf(path, sizeof path, "%s/a.ckpt", dir);
    ParamBlock a;
    Variant v = {0};
    make_block(&a, v, 6);
    CkptState st = make_state();
    save_ok(path, &a, &st);
    size_t len;
    unsigned char *b = (unsigned char *)test_slurp(path, &len);
    TestZipEntry es[64];
    int n = test_zip_entries(b, len, es, 64, NULL), k = -1;
    for (int i = 0; i < n; i++)
        if (!strcmp(es[i].name, "format")) k = i;
    assert_true(k >= 0);
    test_put_le32(b + es[k].data + es[k].size - 4, CKPT_FORMAT_VERSION + 1);
    test_zip_fix_crcs(b, len, NULL);
    test_write_file(path, b, len);
    char want[128];
    snprintf(want, sizeof want, "format version %d, this sinklab reads version %d",
             CKPT_FORMAT_VERSION + 1, CKPT_FORMAT_VERSION);
    expect_load_error(path, v, want);
    free(b);
    params_free(&a);
}

static void test_missing_section_is_named(void **state)
{
    char dir[256], path[512];
    test_tmpdir(dir, sizeof dir, "ckpt_miss");
    snprintf(path, sizeof path, "%s/a.ckpt", dir);
    ParamBlock a;
    Variant v = {0};
    make_block(&a, v, 7);
    CkptState st = make_state();
    save_ok(path, &a, &st);
    size_t len;
    unsigned char *b = (unsigned char *)test_slurp(path, &len);
    TestZipEntry es[64];
    int n = test_zip_entries(b, len, es, 64, NULL);
    for (int i = 0; i < n; i++)
        if (!strcmp(es[i].name, "rng")) {   /* rename rng.npy -> rnX.npy in both headers */
            b[es[i].local + 30 + 2] = 'X';
            b[es[i].central + 46 + 2] = 'X';
        }
    test_zip_fix_crcs(b, len, NULL);
    test_write_file(path, b, len);
    expect_load_error(path, v, "section 'rng' missing");
    free(b);
    params_free(&a);
}

static void test_shape_and_name_mismatch_are_refused(void **state)
{
    char dir[256], path[512];
    test_tmpdir(dir, sizeof dir, "ckpt_shape");
    snprintf(path, sizeof path, "%s/a.ckpt", dir);
    ParamBlock a;
    Variant v = {0};
    make_block(&a, v, 8);
    CkptState st = make_state();
    save_ok(path, &a, &st);
    expect_load_error(path, (Variant){.alt_shape = 1},
                      "section 'param/blocks.0.attn.q.weight' has shape [8, 8], the model expects [8, 4]");
    expect_load_error(path, (Variant){.extra = 1}, "section 'param/lnf.bias' missing");
    expect_load_error(path, (Variant){.skip = 1},
                      "section 'param/lnf.weight' is not a parameter of this model");
    /* a refused load leaves the caller's parameters untouched */
    ParamBlock c;
    make_block(&c, (Variant){.extra = 1}, 9);
    float before = c.data[0];
    char err[512];
    assert_int_equal(ckpt_load(path, &c, NULL, 1, err, sizeof err), -1);
    assert_true(c.data[0] == before);
    params_free(&c);
    params_free(&a);
}

static void test_failed_save_keeps_previous_checkpoint(void **state)
{
    char dir[256], path[512], tmp[600], err[1024] = "";
    test_tmpdir(dir, sizeof dir, "ckpt_crash");
    snprintf(path, sizeof path, "%s/a.ckpt", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ParamBlock a, b;
    Variant v = {0};
    make_block(&a, v, 10);
    make_block(&b, v, 11);
    CkptState st = make_state();
    save_ok(path, &a, &st);
    size_t len;
    unsigned char *orig = (unsigned char *)test_slurp(path, &len);

    /* 1: the temporary file cannot be created */
    assert_int_equal(mkdir(tmp, 0755), 0);
    if (ckpt_save(path, &b, CONFIG, &st, err, sizeof err) == 0) fail_msg("save into a blocked tmp succeeded");
    if (!strstr(err, tmp)) fail_msg("error \"%s\" does not name %s", err, tmp);
    rmdir(tmp);

    /* 2: the disk fills up midway (a file-size limit of half the checkpoint) */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = len / 2;
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    int rc = ckpt_save(path, &b, CONFIG, &st, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    if (rc == 0) fail_msg("save under a %zu-byte file limit succeeded", len / 2);
    if (!strstr(err, "write failed")) fail_msg("error \"%s\" lacks \"write failed\"", err);
    if (access(tmp, F_OK) == 0) fail_msg("%s left behind after a failed save", tmp);

    size_t len2;
    unsigned char *now = (unsigned char *)test_slurp(path, &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(orig, now, len);
    if (ckpt_load(path, &b, NULL, 1, err, sizeof err) != 0) fail_msg("previous checkpoint: %s", err);
    assert_memory_equal(a.data, b.data, a.n * sizeof(float));
    free(orig);
    free(now);
    params_free(&a);
    params_free(&b);
}

static void test_schedule_is_log_spaced_every_and_final(void **state)
{
    int64_t want_log[] = {0, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 12000};
    int64_t want_every[] = {3000, 6000, 9000};
    for (int64_t s = 0; s <= 12000; s++) {
        int in_log = 0, in_every = 0;
        for (size_t i = 0; i < sizeof want_log / sizeof *want_log; i++) in_log |= s == want_log[i];
        for (size_t i = 0; i < sizeof want_every / sizeof *want_every; i++) in_every |= s == want_every[i];
        int got = ckpt_scheduled(s, 12000, 0, 1);
        if (got != in_log) fail_msg("log-spaced: step %" PRId64 " scheduled=%d, want %d", s, got, in_log);
        got = ckpt_scheduled(s, 12000, 3000, 1);
        if (got != (in_log || in_every))
            fail_msg("every 3000 + log: step %" PRId64 " scheduled=%d, want %d", s, got, in_log || in_every);
        got = ckpt_scheduled(s, 12000, 0, 0);
        if (got != (s == 12000)) fail_msg("final only: step %" PRId64 " scheduled=%d", s, got);
    }
}

static void test_latest_and_fallback_to_newest_intact(void **state)
{
    char run[256], p10[512], p20[512], p30[512], got[1024], note[1024], err[1024] = "";
    test_tmpdir(run, sizeof run, "ckpt_run");
    assert_int_equal(ckpt_ensure_dir(run, err, sizeof err), 0);
    ckpt_path(p10, sizeof p10, run, 10);
    ckpt_path(p20, sizeof p20, run, 20);
    ckpt_path(p30, sizeof p30, run, 30);
    char want[600];
    snprintf(want, sizeof want, "%s/checkpoints/step_0000010.ckpt", run);
    assert_string_equal(p10, want);
    /* no checkpoint at all */
    if (ckpt_find_latest(run, got, sizeof got, note, sizeof note, err, sizeof err) == 0)
        fail_msg("found %s in an empty run", got);
    ParamBlock a;
    Variant v = {0};
    make_block(&a, v, 12);
    CkptState st = make_state();
    save_ok(p10, &a, &st);
    save_ok(p20, &a, &st);
    assert_int_equal(ckpt_write_latest(run, 20, err, sizeof err), 0);
    save_ok(p30, &a, &st);   /* written but `latest` not yet updated (a crash in between) */
    if (ckpt_find_latest(run, got, sizeof got, note, sizeof note, err, sizeof err) != 0)
        fail_msg("find_latest: %s", err);
    assert_string_equal(got, p20);
    assert_string_equal(note, "");
    /* damage the file `latest` names: fall back to the newest intact one, and say why */
    size_t len;
    unsigned char *b = (unsigned char *)test_slurp(p20, &len);
    b[len / 2] ^= 0xff;
    test_write_file(p20, b, len);
    free(b);
    if (ckpt_find_latest(run, got, sizeof got, note, sizeof note, err, sizeof err) != 0)
        fail_msg("find_latest after damage: %s", err);
    assert_string_equal(got, p30);
    if (!strstr(note, "step_0000020.ckpt: section") || !strstr(note, "newest intact: step_0000030.ckpt"))
        fail_msg("fallback note \"%s\" lacks the damaged file's error and the fallback", note);
    /* damage all: a clear error */
    assert_int_equal(truncate(p30, 100), 0);
    assert_int_equal(truncate(p10, 0), 0);
    if (ckpt_find_latest(run, got, sizeof got, note, sizeof note, err, sizeof err) == 0)
        fail_msg("found %s though all checkpoints are damaged", got);
    if (!strstr(err, "no intact checkpoint")) fail_msg("error \"%s\" lacks \"no intact checkpoint\"", err);
    params_free(&a);
}

/* A crafted shape whose element count wraps around 2^64 to the member's real size ((2^57 + 1) x 128
 * = 2^64 + 128 = 128 mod 2^64, the 16 x 8 of wte) is refused, not read as 128 floats. */
static void test_overflowing_shape_is_refused(void **state)
{
    (void)state;
    char dir[512], path[600];
    test_tmpdir(dir, sizeof dir, "ckpt_shape");
    snprintf(path, sizeof path, "%s/a.ckpt", dir);
    ParamBlock pb;
    make_block(&pb, (Variant){0}, 3);
    CkptState st = make_state();
    save_ok(path, &pb, &st);
    params_free(&pb);
    size_t len;
    unsigned char *b = (unsigned char *)test_slurp(path, &len);
    TestZipEntry es[64];
    int n = test_zip_entries(b, len, es, 64, NULL), found = 0;
    for (int i = 0; i < n && !found; i++) {
        if (strcmp(es[i].name, "param/wte")) continue;
        /* the .npy v1.0 header text starts after its 10-byte preamble */
        char *h = (char *)b + es[i].data + 10, *shape = strstr(h, "(16, 8)"), *nl = memchr(h, '\n', 512);
        const char *big = "(144115188075855873, 128)";
        size_t grow = strlen(big) - 7;
        assert_non_null(shape);
        assert_non_null(nl);
        /* the .npy header is space-padded: take the room from the padding */
        for (size_t k = 1; k <= grow; k++) assert_int_equal(nl[-(long)k], ' ');
        memmove(shape + strlen(big), shape + 7, (size_t)(nl - grow - (shape + 7)));
        memcpy(shape, big, strlen(big));
        found = 1;
    }
    assert_true(found);
    test_zip_fix_crcs(b, len, NULL);
    test_write_file(path, b, len);
    free(b);
    expect_load_error(path, (Variant){0}, "section 'param/wte' has a shape whose size overflows");
}

/* README "Integrity": every byte is covered, headers included (the CRCs cover the data and the
 * central directory; local headers must repeat the central entries; the end record is checked
 * field by field). So every single-bit flip anywhere in the file is refused. */
static void test_every_single_bit_flip_is_refused(void **state)
{
    (void)state;
    char dir[512], path[600], bad[600], err[1024];
    test_tmpdir(dir, sizeof dir, "ckpt_flip");
    snprintf(path, sizeof path, "%s/a.ckpt", dir);
    /* 80k rewrites of the damaged copy: in memory when /dev/shm exists */
    if (access("/dev/shm", W_OK) == 0) snprintf(bad, sizeof bad, "/dev/shm/sinklab-flip-%ld.ckpt", (long)getpid());
    else snprintf(bad, sizeof bad, "%s/b.ckpt", dir);
    ParamBlock pb;
    make_block(&pb, (Variant){0}, 7);
    CkptState st = make_state();
    save_ok(path, &pb, &st);
    params_free(&pb);
    size_t len;
    unsigned char *b = (unsigned char *)test_slurp(path, &len);
    int accepted = 0;
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (unsigned char)(1u << bit);
            test_write_file(bad, b, len);
            if (ckpt_verify(bad, err, sizeof err) == 0) {
                if (accepted++ < 5) print_message("accepted: byte %zu bit %d\n", i, bit);
            }
            b[i] ^= (unsigned char)(1u << bit);
        }
    free(b);
    remove(bad);
    if (accepted) fail_msg("%d of %zu single-bit flips were accepted", accepted, 8 * len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_is_bit_identical),
        cmocka_unit_test(test_load_without_optimizer_leaves_moments),
        cmocka_unit_test(test_numpy_and_reader_read_it),
        cmocka_unit_test(test_damage_in_any_section_names_it),
        cmocka_unit_test(test_truncated_file_is_refused),
        cmocka_unit_test(test_wrong_version_is_refused),
        cmocka_unit_test(test_missing_section_is_named),
        cmocka_unit_test(test_shape_and_name_mismatch_are_refused),
        cmocka_unit_test(test_failed_save_keeps_previous_checkpoint),
        cmocka_unit_test(test_schedule_is_log_spaced_every_and_final),
        cmocka_unit_test(test_latest_and_fallback_to_newest_intact),
        cmocka_unit_test(test_every_single_bit_flip_is_refused),
        cmocka_unit_test(test_overflowing_shape_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
