/* test_config.c: the run config is strict (every user error names file:line:column and the key),
 * its defaults are the documented ones, and the fully resolved YAML it writes reads back to the
 * identical Config, field by field. */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/transformer.h"
#include "train/config.h"

/* ---------------------------------------------------------------- helpers */

static char tmpdir[512];

static int setup(void **state)
{
    test_tmpdir(tmpdir, sizeof tmpdir, "config");
    return 0;
}

/* Loads YAML text from a file called name; returns config_load's code and its message. */
static int load_text(Config *c, const char *name, const char *text, char *err, size_t n,
                     char *path, size_t np)
{
    test_write_in(path, np, tmpdir, name, text);
    return config_load(c, path, err, n);
}

/* Fails unless err is exactly "PATH:LINE:COL: rest". */
static void expect_error(const char *err, const char *path, int line, int col, const char *rest)
{
    char want[2048];
    snprintf(want, sizeof want, "%s:%d:%d: %s", path, line, col, rest);
    if (strcmp(err, want))
        fail_msg("error message:\n  got  '%s'\n  want '%s'", err, want);
}

static void expect_contains(const char *err, const char *part)
{
    if (!strstr(err, part)) fail_msg("error message '%s' does not contain '%s'", err, part);
}

/* Field-by-field comparison written out by hand (independent of the key table in config.c).
 * Returns the number of differing fields; *total gets the number of fields compared; the first
 * difference goes to first. Floats compare bitwise, so NaN sentinels compare too. */
typedef struct { int diff, total; char first[1200]; } Cmp;

static void cmp_note(Cmp *r, int differs, const char *field, const char *a, const char *b)
{
    r->total++;
    if (!differs) return;
    if (!r->diff) snprintf(r->first, sizeof r->first, "%s: %s vs %s", field, a, b);
    r->diff++;
}

static void cmp_i(Cmp *r, const char *f, long long a, long long b)
{
    char x[32], y[32];
    snprintf(x, sizeof x, "%lld", a);
    snprintf(y, sizeof y, "%lld", b);
    cmp_note(r, a != b, f, x, y);
}

static void cmp_u(Cmp *r, const char *f, uint64_t a, uint64_t b)
{
    char x[32], y[32];
    snprintf(x, sizeof x, "%llu", (unsigned long long)a);
    snprintf(y, sizeof y, "%llu", (unsigned long long)b);
    cmp_note(r, a != b, f, x, y);
}

static void cmp_f(Cmp *r, const char *f, float a, float b)
{
    char x[32], y[32];
    snprintf(x, sizeof x, "%.9g", (double)a);
    snprintf(y, sizeof y, "%.9g", (double)b);
    cmp_note(r, memcmp(&a, &b, sizeof a) != 0, f, x, y);
}

static void cmp_s(Cmp *r, const char *f, const char *a, const char *b)
{
    cmp_note(r, strcmp(a, b) != 0, f, a, b);
}

static Cmp compare_configs(const Config *a, const Config *b)
{
    Cmp r;
    memset(&r, 0, sizeof r);
    char name[64];
    const ModelConfig *ma = &a->model, *mb = &b->model;
    cmp_i(&r, "model.kind", ma->kind, mb->kind);
    cmp_i(&r, "model.n_layer", ma->n_layer, mb->n_layer);
    cmp_i(&r, "model.d_model", ma->d_model, mb->d_model);
    cmp_i(&r, "model.n_head", ma->n_head, mb->n_head);
    cmp_i(&r, "model.d_ff", ma->d_ff, mb->d_ff);
    cmp_i(&r, "model.vocab_size", ma->vocab_size, mb->vocab_size);
    cmp_i(&r, "model.max_seq_len", ma->max_seq_len, mb->max_seq_len);
    cmp_i(&r, "model.pos", ma->pos, mb->pos);
    cmp_f(&r, "model.rope_base", ma->rope_base, mb->rope_base);
    cmp_i(&r, "model.norm", ma->norm, mb->norm);
    cmp_i(&r, "model.norm_pre", ma->norm_pre, mb->norm_pre);
    cmp_i(&r, "model.mlp", ma->mlp, mb->mlp);
    cmp_i(&r, "model.bias", ma->bias, mb->bias);
    cmp_i(&r, "model.tie_embeddings", ma->tie_embeddings, mb->tie_embeddings);
    cmp_f(&r, "model.init_std", ma->init_std, mb->init_std);
    cmp_i(&r, "model.init", ma->init, mb->init);
    cmp_i(&r, "attention.normalizer", ma->attention.normalizer, mb->attention.normalizer);
    cmp_f(&r, "attention.scale", ma->attention.scale, mb->attention.scale);
    cmp_f(&r, "attention.sigmoid_bias", ma->attention.sigmoid_bias, mb->attention.sigmoid_bias);
    cmp_i(&r, "attention.sink", ma->attention.sink, mb->attention.sink);
    cmp_i(&r, "attention.gate", ma->attention.gate, mb->attention.gate);
    cmp_i(&r, "mask.window", ma->mask.window, mb->mask.window);
    cmp_i(&r, "mask.doc_mask", ma->mask.doc_mask, mb->mask.doc_mask);
    cmp_i(&r, "mask.n_edits", ma->mask.n_edits, mb->mask.n_edits);
    for (int i = 0; i < MASK_MAX_EDITS; i++) {
        snprintf(name, sizeof name, "mask.edits[%d].kind", i);
        cmp_i(&r, name, ma->mask.edits[i].kind, mb->mask.edits[i].kind);
        snprintf(name, sizeof name, "mask.edits[%d].pos", i);
        cmp_i(&r, name, ma->mask.edits[i].pos, mb->mask.edits[i].pos);
    }
    const DataConfig *da = &a->data, *db = &b->data;
    cmp_i(&r, "data.corpus", da->corpus, db->corpus);
    cmp_i(&r, "data.n_paths", da->n_paths, db->n_paths);
    for (int i = 0; i < DATA_MAX_PATHS; i++) {
        snprintf(name, sizeof name, "data.paths[%d]", i);
        cmp_s(&r, name, da->paths[i], db->paths[i]);
    }
    cmp_i(&r, "data.separator", da->separator, db->separator);
    cmp_i(&r, "data.seq_len", da->seq_len, db->seq_len);
    cmp_i(&r, "data.pack", da->pack, db->pack);
    cmp_i(&r, "data.bos", da->bos, db->bos);
    cmp_i(&r, "data.eos", da->eos, db->eos);
    cmp_i(&r, "data.reset_positions", da->reset_positions, db->reset_positions);
    cmp_i(&r, "data.long_docs", da->long_docs, db->long_docs);
    cmp_u(&r, "data.split_seed", da->split_seed, db->split_seed);
    cmp_f(&r, "data.val_fraction", da->val_fraction, db->val_fraction);
    cmp_i(&r, "data.prefix_min", da->prefix_min, db->prefix_min);
    cmp_i(&r, "data.prefix_max", da->prefix_max, db->prefix_max);
    cmp_i(&r, "data.randomize_first", da->randomize_first, db->randomize_first);
    cmp_i(&r, "data.fixed_token_id", da->fixed_token_id, db->fixed_token_id);
    cmp_i(&r, "data.fixed_token_pos", da->fixed_token_pos, db->fixed_token_pos);
    cmp_f(&r, "data.mlm_prob", da->mlm_prob, db->mlm_prob);
    cmp_i(&r, "data.synthetic_docs", da->synthetic_docs, db->synthetic_docs);
    cmp_u(&r, "data.synthetic_seed", da->synthetic_seed, db->synthetic_seed);
    cmp_i(&r, "data.bb_source", da->bb_source, db->bb_source);
    cmp_i(&r, "data.bb_n_triggers", da->bb_n_triggers, db->bb_n_triggers);
    cmp_i(&r, "data.bb_n_explicit", da->bb_n_explicit, db->bb_n_explicit);
    for (int i = 0; i < DATA_BB_MAX_TRIGGERS; i++) {
        snprintf(name, sizeof name, "data.bb_triggers[%d]", i);
        cmp_i(&r, name, da->bb_triggers[i], db->bb_triggers[i]);
    }
    cmp_i(&r, "data.kind", da->kind, db->kind);
    const TrainConfig *ta = &a->train, *tb = &b->train;
    cmp_i(&r, "train.steps", ta->steps, tb->steps);
    cmp_i(&r, "train.batch_size", ta->batch_size, tb->batch_size);
    cmp_i(&r, "train.tokens_per_step", ta->tokens_per_step, tb->tokens_per_step);
    cmp_i(&r, "train.grad_accum", ta->grad_accum, tb->grad_accum);
    cmp_i(&r, "train.optimizer", ta->optimizer, tb->optimizer);
    cmp_f(&r, "train.lr", ta->lr, tb->lr);
    cmp_f(&r, "train.min_lr", ta->min_lr, tb->min_lr);
    cmp_i(&r, "train.warmup_steps", ta->warmup_steps, tb->warmup_steps);
    cmp_i(&r, "train.schedule", ta->schedule, tb->schedule);
    cmp_f(&r, "train.beta1", ta->beta1, tb->beta1);
    cmp_f(&r, "train.beta2", ta->beta2, tb->beta2);
    cmp_f(&r, "train.eps", ta->eps, tb->eps);
    cmp_f(&r, "train.weight_decay", ta->weight_decay, tb->weight_decay);
    cmp_f(&r, "train.momentum", ta->momentum, tb->momentum);
    cmp_i(&r, "train.decay", ta->decay, tb->decay);
    cmp_f(&r, "train.grad_clip", ta->grad_clip, tb->grad_clip);
    cmp_i(&r, "train.eval_every", ta->eval_every, tb->eval_every);
    cmp_i(&r, "train.eval_batches", ta->eval_batches, tb->eval_batches);
    cmp_u(&r, "train.seed", ta->seed, tb->seed);
    cmp_i(&r, "train.threads", ta->threads, tb->threads);
    cmp_i(&r, "train.log_every", ta->log_every, tb->log_every);
    cmp_i(&r, "train.memory_limit", (long long)ta->memory_limit, (long long)tb->memory_limit);
    const ProbeConfig *pa = &a->probe, *pb = &b->probe;
    cmp_i(&r, "probe.every", pa->every, pb->every);
    cmp_i(&r, "probe.n_seq", pa->n_seq, pb->n_seq);
    cmp_i(&r, "probe.seq_len", pa->seq_len, pb->seq_len);
    cmp_i(&r, "probe.bos", pa->bos, pb->bos);
    cmp_i(&r, "probe.heavy_every", pa->heavy_every, pb->heavy_every);
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "probe.eps[%d]", i);
        cmp_f(&r, name, pa->eps[i], pb->eps[i]);
    }
    cmp_i(&r, "probe.perturb_pos", pa->perturb_pos, pb->perturb_pos);
    cmp_f(&r, "probe.perturb_scale", pa->perturb_scale, pb->perturb_scale);
    cmp_i(&r, "probe.jacobian_seq", pa->jacobian_seq, pb->jacobian_seq);
    cmp_i(&r, "probe.jacobian_samples", pa->jacobian_samples, pb->jacobian_samples);
    cmp_i(&r, "checkpoint.every", a->checkpoint.every, b->checkpoint.every);
    cmp_i(&r, "checkpoint.log_spaced", a->checkpoint.log_spaced, b->checkpoint.log_spaced);
    cmp_i(&r, "checkpoint.keep_last", a->checkpoint.keep_last, b->checkpoint.keep_last);
    cmp_s(&r, "output.dir", a->output.dir, b->output.dir);
    cmp_i(&r, "output.report", a->output.report, b->output.report);
    return r;
}

/* Writes c as YAML, reads it back, and requires every field to match. */
static void assert_round_trip(const Config *c, const char *what)
{
    char *yaml = config_to_string(c);
    assert_non_null(yaml);
    Config back;
    char err[1024] = "";
    if (config_load_string(&back, yaml, what, err, sizeof err))
        fail_msg("%s: the written config does not load: %s\n%s", what, err, yaml);
    Cmp r = compare_configs(c, &back);
    if (r.diff) fail_msg("%s: round trip changed %d fields, first %s\n%s", what, r.diff, r.first, yaml);
    /* Writing the reloaded config gives the same text. */
    char *again = config_to_string(&back);
    assert_non_null(again);
    if (strcmp(yaml, again)) fail_msg("%s: second write differs:\n%s\n---\n%s", what, yaml, again);
    free(again);
    free(yaml);
}

/* A valid config in which every field differs from its default. */
static void full_config(Config *c)
{
    config_defaults(c);
    ModelConfig *m = &c->model;
    m->kind = MODEL_PREFIX_LM;
    m->n_layer = 2;
    m->d_model = 96;
    m->n_head = 3;
    m->d_ff = 200;
    m->vocab_size = 300;
    m->max_seq_len = 300;
    m->pos = POS_ROPE;
    m->rope_base = 500.0f;
    m->norm = NORM_RMSNORM;
    m->norm_pre = 0;
    m->mlp = MLP_SWIGLU;
    m->bias = 0;
    m->tie_embeddings = 0;
    m->init_std = 0.05f;
    m->init = INIT_SCHEME_TORCH;
    m->attention.normalizer = ATTN_SCALED;
    m->attention.scale = 2.5f;
    m->attention.sigmoid_bias = -3.25f;
    m->attention.sink = SINK_KV_BIAS;
    m->attention.gate = GATE_HEADWISE;
    m->mask.window = 50;
    m->mask.doc_mask = 1;
    m->mask.n_edits = MASK_MAX_EDITS;
    for (int i = 0; i < MASK_MAX_EDITS; i++) {
        m->mask.edits[i].kind = (MaskEditKind)(1 + i % 2);   /* reset, block_key: never 0 */
        m->mask.edits[i].pos = 1 + 3 * i;
    }
    DataConfig *d = &c->data;
    d->corpus = CORPUS_FILES;
    d->n_paths = DATA_MAX_PATHS;
    for (int i = 0; i < DATA_MAX_PATHS; i++)
        snprintf(d->paths[i], sizeof d->paths[i], "/data/dir %d/\"quoted\" \\ %d.txt.gz", i, i);
    d->separator = SEP_BLANK_LINE;
    d->seq_len = 200;
    d->pack = PACK_PAD;
    d->bos = BOS_BOTH;
    d->eos = 0;
    d->reset_positions = 1;
    d->long_docs = LONG_TRUNCATE;
    d->split_seed = 123456789012345ULL;
    d->val_fraction = 0.125f;
    d->prefix_min = 5;
    d->prefix_max = 40;
    d->randomize_first = 2;
    d->fixed_token_id = 65;
    d->fixed_token_pos = 7;
    d->mlm_prob = 0.3f;
    d->synthetic_docs = 77;
    d->synthetic_seed = UINT64_MAX;
    d->bb_source = CORPUS_BROWN;
    d->bb_n_triggers = 5;
    d->bb_n_explicit = DATA_BB_MAX_TRIGGERS;
    for (int i = 0; i < DATA_BB_MAX_TRIGGERS; i++) d->bb_triggers[i] = 40 + i;
    d->kind = MODEL_PREFIX_LM;
    TrainConfig *t = &c->train;
    t->steps = 10;
    t->grad_accum = 2;
    t->tokens_per_step = 1200;   /* 200 * 2 * 3 */
    t->batch_size = 3;
    t->optimizer = OPT_SGD;
    t->lr = 0.01f;
    t->min_lr = 0.001f;
    t->warmup_steps = 5;
    t->schedule = SCHED_LINEAR;
    t->beta1 = 0.8f;
    t->beta2 = 0.99f;
    t->eps = 1e-6f;
    t->weight_decay = 0.5f;
    t->momentum = 0.5f;
    t->decay = DECAY_ALL;
    t->grad_clip = 0.5f;
    t->eval_every = 7;
    t->eval_batches = 3;
    t->seed = 42;
    t->threads = 1;
    t->log_every = 3;
    t->memory_limit = 123456789;
    ProbeConfig *p = &c->probe;
    p->every = 9;
    p->n_seq = 12;
    p->seq_len = 100;
    p->bos = 1;
    p->heavy_every = 20;
    p->eps[0] = 0.2f;
    p->eps[1] = 0.4f;
    p->eps[2] = 0.9f;
    p->perturb_pos = 3;
    p->perturb_scale = 0.25f;
    p->jacobian_seq = 2;
    p->jacobian_samples = 5;
    c->checkpoint.every = 11;
    c->checkpoint.log_spaced = 0;
    c->checkpoint.keep_last = 3;
    snprintf(c->output.dir, sizeof c->output.dir, "runs/x \"y\"\tz");
    c->output.report = 0;
}

/* ---------------------------------------------------------------- defaults */

/* DESIGN.md's values, written out here rather than read from the code under test. */
static void test_defaults_are_the_documented_values_and_valid(void **state)
{
    Config c;
    char err[1024] = "";
    config_defaults(&c);
    if (config_validate(&c, err, sizeof err)) fail_msg("defaults do not validate: %s", err);
    assert_int_equal(c.model.kind, MODEL_CAUSAL);
    assert_int_equal(c.model.n_layer, 4);
    assert_int_equal(c.model.d_model, 128);
    assert_int_equal(c.model.n_head, 4);
    assert_int_equal(c.model.d_ff, 512);
    assert_int_equal(c.model.max_seq_len, 256);
    assert_int_equal(c.model.vocab_size, 262);
    assert_int_equal(c.model.pos, POS_LEARNED);
    assert_true(c.model.rope_base == 10000.0f);
    assert_int_equal(c.model.norm, NORM_LAYERNORM);
    assert_int_equal(c.model.norm_pre, 1);
    assert_int_equal(c.model.mlp, MLP_GELU);
    assert_int_equal(c.model.bias, 1);
    assert_int_equal(c.model.tie_embeddings, 1);
    assert_true(c.model.init_std == 0.02f);
    assert_int_equal(c.model.init, INIT_SCHEME_GPT2);
    assert_int_equal(c.model.attention.normalizer, ATTN_SOFTMAX);
    assert_int_equal(c.model.attention.sink, SINK_NONE);
    assert_int_equal(c.model.attention.gate, GATE_NONE);
    assert_true(c.model.attention.scale == 1.0f);
    /* -ln(256) = -8 ln 2 */
    assert_float_equal(c.model.attention.sigmoid_bias, -8.0 * 0.69314718, 1e-5);
    assert_int_equal(c.model.mask.window, 0);
    assert_int_equal(c.model.mask.n_edits, 0);
    assert_int_equal(c.data.corpus, CORPUS_FORTUNES);
    assert_int_equal(c.data.n_paths, 0);
    assert_int_equal(c.data.separator, SEP_PERCENT_LINE);
    assert_int_equal(c.data.seq_len, 256);
    assert_int_equal(c.data.pack, PACK_CONCAT);
    assert_int_equal(c.data.bos, BOS_NONE);
    assert_int_equal(c.data.eos, 1);
    assert_int_equal(c.data.reset_positions, 0);
    assert_int_equal(c.data.long_docs, LONG_SPLIT);
    assert_true(c.data.val_fraction == 0.05f);
    assert_int_equal(c.data.prefix_min, 16);
    assert_int_equal(c.data.prefix_max, 16);
    assert_int_equal(c.data.fixed_token_id, -1);
    assert_true(c.data.mlm_prob == 0.15f);
    assert_int_equal(c.data.kind, MODEL_CAUSAL);
    assert_int_equal(c.data.bb_source, CORPUS_FORTUNES);
    assert_int_equal(c.data.bb_n_triggers, 3);
    assert_int_equal(c.data.bb_n_explicit, 0);
    assert_int_equal(c.train.steps, 2000);
    assert_int_equal(c.train.batch_size, 16);
    assert_int_equal(c.train.optimizer, OPT_ADAMW);
    assert_true(c.train.lr == 1e-3f);
    assert_int_equal(c.train.warmup_steps, 100);
    assert_int_equal(c.train.schedule, SCHED_COSINE);
    assert_true(c.train.beta1 == 0.9f && c.train.beta2 == 0.95f && c.train.eps == 1e-8f);
    assert_true(c.train.weight_decay == 0.1f);
    assert_int_equal(c.train.decay, DECAY_MATRICES);
    assert_true(c.train.grad_clip == 1.0f);
    assert_int_equal(c.train.eval_every, 100);
    assert_int_equal(c.train.eval_batches, 8);
    assert_int_equal(c.train.threads, 2);
    assert_int_equal(c.train.log_every, 10);
    assert_int_equal(c.probe.every, 40);
    assert_int_equal(c.probe.n_seq, 100);
    assert_int_equal(c.probe.seq_len, 64);
    assert_int_equal(c.probe.bos, -1);
    assert_true(c.probe.eps[0] == 0.3f && c.probe.eps[1] == 0.5f && c.probe.eps[2] == 0.8f);
    assert_int_equal(c.probe.perturb_pos, 1);
    assert_true(c.probe.perturb_scale == 0.5f);
    assert_int_equal(c.probe.jacobian_seq, 8);
    assert_int_equal(c.probe.jacobian_samples, 8);
    assert_int_equal(c.checkpoint.every, 500);
    assert_int_equal(c.checkpoint.log_spaced, 1);
    assert_int_equal(c.checkpoint.keep_last, 0);
    assert_string_equal(c.output.dir, "");
    assert_int_equal(c.output.report, 1);
}

static void test_validate_is_idempotent(void **state)
{
    Config a, b;
    char err[1024] = "";
    full_config(&a);
    assert_int_equal(config_validate(&a, err, sizeof err), 0);
    b = a;
    assert_int_equal(config_validate(&b, err, sizeof err), 0);
    Cmp r = compare_configs(&a, &b);
    if (r.diff) fail_msg("second validate changed %s", r.first);
}

/* ---------------------------------------------------------------- round trips */

static void test_full_config_exercises_every_field(void **state)
{
    Config def, full;
    char err[1024] = "";
    config_defaults(&def);
    config_validate(&def, err, sizeof err);
    full_config(&full);
    if (config_validate(&full, err, sizeof err)) fail_msg("full config invalid: %s", err);
    Cmp r = compare_configs(&def, &full);
    /* Every compared field must differ from its default, or the round trip proves nothing
     * about it. Unused path slots of the defaults are "" and the full config fills all 16. */
    if (r.diff != r.total)
        fail_msg("only %d of %d fields differ from the defaults", r.diff, r.total);
}

static void test_round_trip_defaults_unvalidated_and_validated(void **state)
{
    Config c;
    char err[1024];
    config_defaults(&c);
    assert_round_trip(&c, "defaults (auto values unresolved)");
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    assert_round_trip(&c, "defaults (validated)");
}

static void test_round_trip_full_config(void **state)
{
    Config c;
    char err[1024] = "";
    full_config(&c);
    if (config_validate(&c, err, sizeof err)) fail_msg("%s", err);
    assert_round_trip(&c, "full");
}

static void test_round_trip_several_configs(void **state)
{
    static const char *const sets[][8] = {
        {"model.kind=bidirectional", "data.mlm_prob=0.2", "model.pos_encoding=alibi",
         "model.mask.window=17", "data.path=/tmp/one file.txt", NULL},
        {"model.attention.normalizer=sigmoid", "data.seq_len=64", "model.attention.gate=elementwise",
         "train.tokens_per_step=4096", "probe.bos=false", "model.max_seq_len=64", NULL},
        {"model.attention.normalizer=softmax1", "model.attention.sink=logit", "train.lr=3e-4",
         "train.min_lr=3e-5", "train.eps=1e-12", "train.seed=18446744073709551615", NULL},
        {"model.kind=prefix_lm", "data.prefix_len={min: 0, max: 100}", "data.fixed_token.id=0",
         "model.mask.edits=[{isolate: 0}, {block_key: 255}]", "output.dir=runs/ü", NULL},
    };
    for (size_t k = 0; k < sizeof sets / sizeof sets[0]; k++) {
        Config c;
        char err[1024] = "", what[64];
        config_defaults(&c);
        for (int i = 0; sets[k][i]; i++)
            if (config_set(&c, sets[k][i], err, sizeof err)) fail_msg("set %s: %s", sets[k][i], err);
        snprintf(what, sizeof what, "config %zu", k);
        /* Before validation batch_size is not yet derived from tokens_per_step. */
        if (!c.train.tokens_per_step) assert_round_trip(&c, what);
        if (config_validate(&c, err, sizeof err)) fail_msg("%s: %s", what, err);
        assert_round_trip(&c, what);
    }
}

static void test_round_trip_through_a_file_records_the_source(void **state)
{
    Config c, back;
    char err[1024] = "", path[600];
    full_config(&c);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/resolved.yaml", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    config_write(&c, f);
    fclose(f);
    if (config_load(&back, path, err, sizeof err)) fail_msg("%s", err);
    Cmp r = compare_configs(&c, &back);
    if (r.diff) fail_msg("file round trip: %s", r.first);
    assert_string_equal(back.source, path);
    assert_int_equal(config_diff(&c, &back, err, sizeof err), 0);
}

/* ---------------------------------------------------------------- user errors */

static void test_unknown_key_names_line_column_and_suggests(void **state)
{
    Config c;
    char err[1024] = "", path[600];
    assert_int_equal(load_text(&c, "typo.yaml", "model:\n  n_layer: 4\n  n_haed: 4\n", err,
                               sizeof err, path, sizeof path), -1);
    expect_error(err, path, 3, 3, "model.n_haed: unknown key (did you mean model.n_head?)");

    assert_int_equal(load_text(&c, "section.yaml", "train:\n  seq_len: 64\n", err, sizeof err,
                               path, sizeof path), -1);
    expect_error(err, path, 2, 3, "train.seq_len: unknown key (did you mean data.seq_len?)");

    assert_int_equal(load_text(&c, "top.yaml", "modle:\n  n_layer: 4\n", err, sizeof err, path,
                               sizeof path), -1);
    expect_error(err, path, 1, 1, "modle: unknown key (did you mean model?)");

    assert_int_equal(load_text(&c, "far.yaml", "model:\n  attention:\n    zzzzzzzz: 1\n", err,
                               sizeof err, path, sizeof path), -1);
    expect_error(err, path, 3, 5,
                 "model.attention.zzzzzzzz: unknown key (see the config reference in the README)");
}

static void test_wrong_type_names_key_expected_and_value(void **state)
{
    Config c;
    char err[1024] = "", path[600];
    assert_int_equal(load_text(&c, "type.yaml", "model:\n  n_layer: abc\n", err, sizeof err,
                               path, sizeof path), -1);
    expect_error(err, path, 2, 12,
                 "model.n_layer: expected a positive integer (at most 256), got 'abc'");
    assert_int_equal(load_text(&c, "bool.yaml", "data:\n  eos: 1\n", err, sizeof err, path,
                               sizeof path), -1);
    expect_error(err, path, 2, 8, "data.eos: expected true or false, got '1'");
    assert_int_equal(load_text(&c, "float.yaml", "train:\n  lr: fast\n", err, sizeof err, path,
                               sizeof path), -1);
    expect_error(err, path, 2, 7, "train.lr: expected a positive number, got 'fast'");
    assert_int_equal(load_text(&c, "map.yaml", "train:\n  steps: {a: 1}\n", err, sizeof err,
                               path, sizeof path), -1);
    expect_error(err, path, 2, 10, "train.steps: expected a non-negative integer, got a mapping");
    assert_int_equal(load_text(&c, "sec.yaml", "model: 4\n", err, sizeof err, path,
                               sizeof path), -1);
    expect_error(err, path, 1, 8, "model: expected a mapping of keys, got '4'");
    assert_int_equal(load_text(&c, "empty.yaml", "model:\n  d_model:\n", err, sizeof err, path,
                               sizeof path), -1);
    expect_contains(err, "model.d_model: expected a positive integer");
    expect_contains(err, "got nothing");
}

static void test_bad_enum_lists_the_allowed_values(void **state)
{
    Config c;
    char err[1024] = "", path[600];
    assert_int_equal(load_text(&c, "enum.yaml", "model:\n  pos_encoding: rotary\n", err,
                               sizeof err, path, sizeof path), -1);
    expect_error(err, path, 2, 17, "model.pos_encoding: expected one of none, learned, "
                 "sinusoidal, rope, alibi; got 'rotary'");
    assert_int_equal(load_text(&c, "enum2.yaml", "model:\n  attention: {normalizer: sigmod}\n",
                               err, sizeof err, path, sizeof path), -1);
    expect_error(err, path, 2, 27, "model.attention.normalizer: expected one of softmax, softmax1, "
                 "scaled, sigmoid, sigmoid_norm, relu; got 'sigmod' (did you mean sigmoid?)");
}

static void test_out_of_range_values_are_errors(void **state)
{
    Config c;
    char err[1024] = "", path[600];
    assert_int_equal(load_text(&c, "range.yaml", "model:\n  n_head: 0\n", err, sizeof err, path,
                               sizeof path), -1);
    expect_error(err, path, 2, 11,
                 "model.n_head: expected a positive integer (at most 1024), got '0'");
    assert_int_equal(load_text(&c, "range2.yaml", "data:\n  val_fraction: 1.5\n", err,
                               sizeof err, path, sizeof path), -1);
    expect_error(err, path, 2, 17, "data.val_fraction: expected a number in (0, 1), got '1.5'");
    assert_int_equal(load_text(&c, "range3.yaml", "train:\n  beta2: 1\n", err, sizeof err, path,
                               sizeof path), -1);
    expect_error(err, path, 2, 10, "train.beta2: expected a number in [0, 1), got '1'");
    assert_int_equal(load_text(&c, "range4.yaml", "probe:\n  eps: [0.3, 0.5, 1.2]\n", err,
                               sizeof err, path, sizeof path), -1);
    expect_error(err, path, 2, 19, "probe.eps[2]: expected a number in (0, 1), got '1.2'");
    assert_int_equal(load_text(&c, "range5.yaml", "train:\n  seed: -1\n", err, sizeof err, path,
                               sizeof path), -1);
    expect_error(err, path, 2, 9, "train.seed: expected a non-negative integer (64-bit), got '-1'");
    assert_int_equal(load_text(&c, "range6.yaml", "model:\n  n_layer: 99999999999999999999\n",
                               err, sizeof err, path, sizeof path), -1);
    expect_contains(err, "model.n_layer: expected a positive integer");
}

static void test_duplicate_key_is_an_error(void **state)
{
    Config c;
    char err[1024] = "", path[600];
    assert_int_equal(load_text(&c, "dup.yaml", "model:\n  n_layer: 4\n  n_layer: 5\n", err,
                               sizeof err, path, sizeof path), -1);
    expect_error(err, path, 3, 3, "model.n_layer: duplicate key (first given at line 2)");
    assert_int_equal(load_text(&c, "dup2.yaml", "data:\n  path: a\n  paths: [b]\n", err,
                               sizeof err, path, sizeof path), -1);
    expect_error(err, path, 3, 3, "data.paths: data.path and data.paths are the same key; give one");
}

static void test_malformed_yaml_reports_libyaml_problem_and_position(void **state)
{
    Config c;
    char err[1024] = "", path[600];
    assert_int_equal(load_text(&c, "bad.yaml", "model:\n  n_layer: 4\n d_model: [1, 2\n", err,
                               sizeof err, path, sizeof path), -1);
    expect_error(err, path, 3, 2, "invalid YAML: did not find expected key (while parsing a "
                 "block mapping at line 1)");
    assert_int_equal(load_text(&c, "bad2.yaml", "train:\n  lr: [1, 2\n", err, sizeof err, path,
                               sizeof path), -1);
    expect_contains(err, path);
    expect_contains(err, "invalid YAML");
    assert_int_equal(load_text(&c, "list.yaml", "- 1\n- 2\n", err, sizeof err, path,
                               sizeof path), -1);
    expect_error(err, path, 1, 1, "expected a mapping of sections (model, data, train, probe, "
                 "checkpoint, output)");
    assert_int_equal(load_text(&c, "two.yaml", "model: {n_layer: 2}\n---\nmodel: {n_layer: 3}\n",
                               err, sizeof err, path, sizeof path), -1);
    expect_error(err, path, 3, 1, "expected one YAML document, found a second one");
}

static void test_missing_file_is_named(void **state)
{
    Config c;
    char err[1024] = "", path[600];
    snprintf(path, sizeof path, "%s/no_such_config.yaml", tmpdir);
    assert_int_equal(config_load(&c, path, err, sizeof err), -1);
    char want[800];
    snprintf(want, sizeof want, "%s: cannot open config: No such file or directory", path);
    assert_string_equal(err, want);
}

static void test_failed_load_leaves_the_config_unchanged(void **state)
{
    Config c, before;
    char err[1024] = "", path[600];
    full_config(&c);
    before = c;
    assert_int_equal(load_text(&c, "half.yaml", "model:\n  n_layer: 7\n  d_model: x\n", err,
                               sizeof err, path, sizeof path), -1);
    assert_memory_equal(&c, &before, sizeof c);
    assert_int_equal(config_set(&c, "model.n_layer=0", err, sizeof err), -1);
    assert_memory_equal(&c, &before, sizeof c);
}

static void test_empty_file_gives_the_defaults(void **state)
{
    Config c, def;
    char err[1024] = "", path[600];
    assert_int_equal(load_text(&c, "empty_all.yaml", "# nothing here\n", err, sizeof err, path,
                               sizeof path), 0);
    config_defaults(&def);
    Cmp r = compare_configs(&c, &def);
    if (r.diff) fail_msg("empty file differs from the defaults: %s", r.first);
}

/* ---------------------------------------------------------------- cross-field rules */

static void test_inconsistent_combinations_name_the_keys(void **state)
{
    static const struct { const char *sets[6]; const char *want; } cases[] = {
        {{"model.d_model=130", NULL}, "model.d_model (130) must be divisible by model.n_head (4)"},
        {{"model.pos_encoding=rope", "model.d_model=12", "model.n_head=4", NULL},
         "model.pos_encoding: rope needs an even head size"},
        {{"model.mask.window=300", NULL},
         "model.mask.window (300) is larger than the context data.seq_len (256)"},
        {{"data.seq_len=512", NULL}, "data.seq_len (512) is larger than model.max_seq_len (256)"},
        {{"probe.seq_len=300", NULL}, "probe.seq_len (300) is larger than model.max_seq_len (256)"},
        {{"model.kind=prefix_lm", "data.prefix_len=256", NULL},
         "data.prefix_len (256) must be smaller than data.seq_len (256): a prefix covering the "
         "whole sequence gives a full mask"},
        {{"model.kind=prefix_lm", "data.prefix_len={min: 9, max: 3}", NULL},
         "data.prefix_len: min (9) is larger than max (3)"},
        {{"model.attention.normalizer=sigmoid", "model.attention.sink=logit", NULL},
         "model.attention.sink: logit adds a term to the row's denominator, which normalizer "
         "sigmoid does not have"},
        {{"model.attention.scale=2", NULL},
         "model.attention.scale (2) only applies to normalizer: scaled"},
        {{"train.tokens_per_step=1000", NULL},
         "train.tokens_per_step (1000) must be a positive multiple of data.seq_len * "
         "train.grad_accum (256 * 1 = 256)"},
        {{"model.mask.edits=[{reset: 10}, {isolate: 256}]", NULL},
         "model.mask.edits[1]: position 256 is outside the context data.seq_len (256)"},
        {{"data.fixed_token.id=300", NULL}, "data.fixed_token.id (300) is not a token id"},
        {{"data.fixed_token.id=5", "data.fixed_token.position=256", NULL},
         "data.fixed_token.position (256) is outside the context"},
        {{"data.first_tokens.randomize=256", NULL},
         "data.first_tokens.randomize (256) must be smaller than data.seq_len (256)"},
        {{"data.corpus=files", NULL}, "data.paths: corpus files needs at least one path"},
        {{"train.min_lr=0.01", NULL}, "train.min_lr (0.01) is larger than train.lr (0.001)"},
        {{"data.corpus=bigram_backcopy", "data.first_tokens.randomize=2", NULL},
         "data.first_tokens.randomize: not supported with data.corpus bigram_backcopy"},
        {{"data.corpus=bigram_backcopy", "data.fixed_token.id=5", NULL},
         "data.fixed_token.id: not supported with data.corpus bigram_backcopy"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        Config c;
        char err[1024] = "";
        config_defaults(&c);
        snprintf(c.source, sizeof c.source, "my.yaml");
        for (int i = 0; cases[k].sets[i]; i++)
            if (config_set(&c, cases[k].sets[i], err, sizeof err))
                fail_msg("case %zu: set %s: %s", k, cases[k].sets[i], err);
        if (!config_validate(&c, err, sizeof err))
            fail_msg("case %zu: validated, want '%s'", k, cases[k].want);
        char want[1024];
        snprintf(want, sizeof want, "my.yaml: %s", cases[k].want);
        if (strncmp(err, want, strlen(want)))
            fail_msg("case %zu:\n  got  '%s'\n  want '%s...'", k, err, want);
    }
}

static void test_ranges_are_checked_for_configs_built_in_code(void **state)
{
    Config c;
    char err[1024] = "";
    config_defaults(&c);
    c.model.n_layer = 0;
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    assert_string_equal(err, "config: model.n_layer: expected a positive integer (at most 256), got 0");
    config_defaults(&c);
    c.model.pos = (PosEncoding)9;
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    expect_contains(err, "model.pos_encoding: expected one of none, learned");
}

static void test_derived_values(void **state)
{
    Config c;
    char err[1024] = "";
    config_defaults(&c);
    assert_int_equal(config_set(&c, "data.seq_len=128", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "train.tokens_per_step=4096", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "train.grad_accum=2", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "model.kind=bidirectional", err, sizeof err), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    assert_int_equal(c.train.batch_size, 4096 / (128 * 2));
    assert_int_equal(c.data.kind, MODEL_BIDIRECTIONAL);
    assert_int_equal(c.model.vocab_size, 262);
    assert_float_equal(c.model.attention.sigmoid_bias, -7.0 * 0.69314718, 1e-5);   /* -ln 128 */

    /* An explicit sigmoid_bias is kept; `auto` brings the derivation back. */
    config_defaults(&c);
    assert_int_equal(config_set(&c, "model.attention.sigmoid_bias=-2.5", err, sizeof err), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    assert_true(c.model.attention.sigmoid_bias == -2.5f);
    assert_int_equal(config_set(&c, "model.attention.sigmoid_bias=auto", err, sizeof err), 0);
    assert_true(isnan(c.model.attention.sigmoid_bias));
    assert_int_equal(config_set(&c, "model.vocab_size=512", err, sizeof err), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    assert_int_equal(c.model.vocab_size, 512);
}

static void test_batch_size_and_tokens_per_step_are_alternatives(void **state)
{
    Config c;
    char err[1024] = "", path[600];
    assert_int_equal(load_text(&c, "both.yaml", "data: {seq_len: 128}\n"
                               "train:\n  tokens_per_step: 4096\n  batch_size: 8\n",
                               err, sizeof err, path, sizeof path), -1);
    expect_error(err, path, 4, 15, "train.batch_size: 8 disagrees with train.tokens_per_step 4096 "
                 "= batch_size * data.seq_len 128 * train.grad_accum 1; give only one of "
                 "batch_size and tokens_per_step");
    /* Agreeing values (as a resolved config writes them) load. */
    assert_int_equal(load_text(&c, "agree.yaml", "data: {seq_len: 128}\n"
                               "train:\n  tokens_per_step: 4096\n  batch_size: 32\n",
                               err, sizeof err, path, sizeof path), 0);
    /* --set batch_size on top turns tokens_per_step off. */
    assert_int_equal(config_set(&c, "train.batch_size=4", err, sizeof err), 0);
    assert_int_equal(c.train.tokens_per_step, 0);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    assert_int_equal(c.train.batch_size, 4);
    /* A resolved config re-derives batch_size when the context changes. */
    assert_int_equal(config_set(&c, "train.tokens_per_step=4096", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "data.seq_len=64", err, sizeof err), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    assert_int_equal(c.train.batch_size, 64);
}

/* ---------------------------------------------------------------- --set */

static void test_set_overrides_with_the_same_validation(void **state)
{
    Config c;
    char err[1024] = "";
    config_defaults(&c);
    assert_int_equal(config_set(&c, "model.pos_encoding=rope", err, sizeof err), 0);
    assert_int_equal(c.model.pos, POS_ROPE);
    assert_int_equal(config_set(&c, "model.attention.sink=k_bias", err, sizeof err), 0);
    assert_int_equal(c.model.attention.sink, SINK_K_BIAS);
    assert_int_equal(config_set(&c, "train.lr=3e-4", err, sizeof err), 0);
    assert_true(c.train.lr == 3e-4f);
    assert_int_equal(config_set(&c, "probe.bos=true", err, sizeof err), 0);
    assert_int_equal(c.probe.bos, 1);
    assert_int_equal(config_set(&c, "probe.bos=auto", err, sizeof err), 0);
    assert_int_equal(c.probe.bos, -1);
    assert_int_equal(config_set(&c, "output.dir=", err, sizeof err), 0);
    assert_string_equal(c.output.dir, "");
    /* A whole section as a flow mapping. */
    assert_int_equal(config_set(&c, "checkpoint={every: 0, keep_last: 2}", err, sizeof err), 0);
    assert_int_equal(c.checkpoint.every, 0);
    assert_int_equal(c.checkpoint.keep_last, 2);

    assert_int_equal(config_set(&c, "model.n_layer=abc", err, sizeof err), -1);
    assert_string_equal(err, "--set model.n_layer=abc: model.n_layer: expected a positive "
                             "integer (at most 256), got 'abc'");
    assert_int_equal(config_set(&c, "model.n_haed=4", err, sizeof err), -1);
    assert_string_equal(err, "--set model.n_haed=4: model.n_haed: unknown key (did you mean "
                             "model.n_head?)");
    assert_int_equal(config_set(&c, "model.norm=batchnorm", err, sizeof err), -1);
    expect_contains(err, "--set model.norm=batchnorm: model.norm: expected one of layernorm, rmsnorm");
    assert_int_equal(config_set(&c, "model.n_layer", err, sizeof err), -1);
    assert_string_equal(err, "--set model.n_layer: expected key.path=value (e.g. model.n_layer=6)");
    assert_int_equal(config_set(&c, "model.n_layer=[1", err, sizeof err), -1);
    expect_contains(err, "--set model.n_layer=[1: model.n_layer: invalid YAML value");
    assert_int_equal(config_set(&c, "model=3", err, sizeof err), -1);
    assert_string_equal(err, "--set model=3: model: expected a mapping of keys, got '3'");
}

/* ---------------------------------------------------------------- nested keys and lists */

static void test_nested_maps_and_lists(void **state)
{
    Config c;
    char err[1024] = "", path[600];
    const char *yaml =
        "model:\n"
        "  kind: prefix_lm\n"
        "  attention:\n"
        "    normalizer: sigmoid_norm\n"
        "    gate: headwise\n"
        "  mask:\n"
        "    window: 32\n"
        "    doc_mask: true\n"
        "    edits:\n"
        "      - isolate: 17\n"
        "      - {reset: 32}\n"
        "      - block_key: 0\n"
        "data:\n"
        "  corpus: files\n"
        "  paths:\n"
        "    - a.txt\n"
        "    - \"dir/b c.gz\"\n"
        "  prefix_len: {min: 4, max: 12}\n"
        "  first_tokens: {randomize: 2}\n"
        "  fixed_token:\n"
        "    id: 256\n"
        "    position: 5\n"
        "probe:\n"
        "  eps: [0.25, 0.5, 0.75]\n";
    if (load_text(&c, "nested.yaml", yaml, err, sizeof err, path, sizeof path))
        fail_msg("%s", err);
    if (config_validate(&c, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(c.model.attention.normalizer, ATTN_SIGMOID_NORM);
    assert_int_equal(c.model.attention.gate, GATE_HEADWISE);
    assert_int_equal(c.model.mask.window, 32);
    assert_int_equal(c.model.mask.doc_mask, 1);
    assert_int_equal(c.model.mask.n_edits, 3);
    assert_int_equal(c.model.mask.edits[0].kind, EDIT_ISOLATE);
    assert_int_equal(c.model.mask.edits[0].pos, 17);
    assert_int_equal(c.model.mask.edits[1].kind, EDIT_RESET);
    assert_int_equal(c.model.mask.edits[1].pos, 32);
    assert_int_equal(c.model.mask.edits[2].kind, EDIT_BLOCK_KEY);
    assert_int_equal(c.model.mask.edits[2].pos, 0);
    assert_int_equal(c.data.n_paths, 2);
    assert_string_equal(c.data.paths[0], "a.txt");
    assert_string_equal(c.data.paths[1], "dir/b c.gz");
    assert_int_equal(c.data.prefix_min, 4);
    assert_int_equal(c.data.prefix_max, 12);
    assert_int_equal(c.data.randomize_first, 2);
    assert_int_equal(c.data.fixed_token_id, 256);
    assert_int_equal(c.data.fixed_token_pos, 5);
    assert_true(c.probe.eps[0] == 0.25f && c.probe.eps[1] == 0.5f && c.probe.eps[2] == 0.75f);
    assert_round_trip(&c, "nested");

    /* The scalar forms. */
    assert_int_equal(config_set(&c, "data.path=one.txt", err, sizeof err), 0);
    assert_int_equal(c.data.n_paths, 1);
    assert_string_equal(c.data.paths[0], "one.txt");
    assert_int_equal(config_set(&c, "data.prefix_len=9", err, sizeof err), 0);
    assert_int_equal(c.data.prefix_min, 9);
    assert_int_equal(c.data.prefix_max, 9);
    assert_int_equal(config_set(&c, "data.prefix_len.max=20", err, sizeof err), 0);
    assert_int_equal(c.data.prefix_max, 20);
    assert_int_equal(config_set(&c, "model.mask.edits=[]", err, sizeof err), 0);
    assert_int_equal(c.model.mask.n_edits, 0);
    assert_round_trip(&c, "nested, scalar forms");
}

/* data.bb.triggers: bytes as one-character strings or ids; errors name the element. */
static void test_bigram_backcopy_keys(void **state)
{
    Config c;
    char err[1024] = "", path[600];
    assert_int_equal(load_text(&c, "bb.yaml", "data:\n  corpus: bigram_backcopy\n  bb:\n    source: synthetic\n"
                               "    triggers: [\" \", e, 116, \"7\"]\n", err, sizeof err, path, sizeof path), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    assert_int_equal(c.data.corpus, CORPUS_BIGRAM_BACKCOPY);
    assert_int_equal(c.data.bb_source, CORPUS_SYNTHETIC);
    assert_int_equal(c.data.bb_n_explicit, 4);
    assert_int_equal(c.data.bb_triggers[0], ' ');
    assert_int_equal(c.data.bb_triggers[1], 'e');
    assert_int_equal(c.data.bb_triggers[2], 116);
    assert_int_equal(c.data.bb_triggers[3], '7');   /* quoted: the character, not the id 7 */
    assert_int_equal(c.data.bos, BOS_WINDOW_START);
    assert_round_trip(&c, "bb.yaml");
    assert_int_equal(load_text(&c, "bb2.yaml", "data:\n  bb:\n    triggers: [300]\n", err, sizeof err, path,
                               sizeof path), -1);
    expect_error(err, path, 3, 16, "data.bb.triggers[0]: expected an integer in [0, 255], got '300'");
    assert_int_equal(load_text(&c, "bb3.yaml", "data:\n  bb:\n    triggers: [e, e]\n", err, sizeof err, path,
                               sizeof path), -1);
    expect_contains(err, "data.bb.triggers[1]: byte 101 is listed twice");
    assert_int_equal(load_text(&c, "bb4.yaml", "model:\n  kind: bidirectional\ndata:\n  corpus: bigram_backcopy\n",
                               err, sizeof err, path, sizeof path), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    expect_contains(err, "data.corpus: bigram_backcopy is a next-token task; expected model.kind causal");
}

static void test_malformed_lists_are_errors(void **state)
{
    Config c;
    char err[1024] = "", path[600];
    assert_int_equal(load_text(&c, "edit.yaml", "model:\n  mask:\n    edits: [{isolat: 3}]\n",
                               err, sizeof err, path, sizeof path), -1);
    expect_error(err, path, 3, 14, "model.mask.edits[0]: unknown edit 'isolat' (expected one of "
                 "isolate, reset, block_key) (did you mean isolate?)");
    assert_int_equal(load_text(&c, "edit2.yaml", "model:\n  mask:\n    edits: [{reset: -1}]\n",
                               err, sizeof err, path, sizeof path), -1);
    expect_error(err, path, 3, 21,
                 "model.mask.edits[0]: expected a non-negative integer, got '-1'");
    assert_int_equal(load_text(&c, "edit3.yaml", "model:\n  mask:\n    edits: {reset: 1}\n",
                               err, sizeof err, path, sizeof path), -1);
    expect_error(err, path, 3, 12, "model.mask.edits: expected a list such as [{isolate: 17}, "
                 "{reset: 32}], got a mapping");
    assert_int_equal(load_text(&c, "eps.yaml", "probe:\n  eps: [0.3, 0.5]\n", err, sizeof err,
                               path, sizeof path), -1);
    expect_error(err, path, 2, 8, "probe.eps: expected a list of 3 thresholds such as "
                 "[0.3, 0.5, 0.8], got a list of 2");
    assert_int_equal(load_text(&c, "pfx.yaml", "data:\n  prefix_len: {min: 2, mx: 5}\n", err,
                               sizeof err, path, sizeof path), -1);
    expect_error(err, path, 2, 24,
                 "data.prefix_len.mx: unknown key (did you mean data.prefix_len.max?)");
    assert_int_equal(load_text(&c, "paths.yaml", "data:\n  paths: [a, [b]]\n", err, sizeof err,
                               path, sizeof path), -1);
    expect_error(err, path, 2, 14, "data.paths[1]: expected a path, got a list of 1");
}

/* ---------------------------------------------------------------- helpers for the CLI */

/* analyze: a probe config merged over a checkpoint's config keeps everything it does not name. */
static void test_merge_file_overlays_the_current_config(void **state)
{
    Config c;
    char err[1024] = "", path[600];
    config_defaults(&c);
    snprintf(c.source, sizeof c.source, "ckpt");
    assert_int_equal(config_set(&c, "model.n_layer=6", err, sizeof err), 0);
    test_write_in(path, sizeof path, tmpdir, "probe.yaml", "probe: {every: 5, seq_len: 32, bos: true}\n");
    if (config_merge_file(&c, path, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(c.model.n_layer, 6);
    assert_int_equal(c.probe.every, 5);
    assert_int_equal(c.probe.seq_len, 32);
    assert_int_equal(c.probe.bos, 1);
    assert_string_equal(c.source, "ckpt");
    test_write_in(path, sizeof path, tmpdir, "probe_bad.yaml", "probe: {every: 7, seq_lem: 32}\n");
    assert_int_equal(config_merge_file(&c, path, err, sizeof err), -1);
    expect_error(err, path, 1, 19, "probe.seq_lem: unknown key (did you mean probe.seq_len?)");
    assert_int_equal(c.probe.every, 5);
}

static void test_diff_and_run_dir(void **state)
{
    Config a, b;
    char out[1024];
    config_defaults(&a);
    b = a;
    assert_int_equal(config_diff(&a, &b, out, sizeof out), 0);
    b.model.n_layer = 6;
    b.train.lr = 2e-3f;
    assert_int_equal(config_diff(&a, &b, out, sizeof out), 2);
    assert_string_equal(out, "model.n_layer: 4 vs 6; train.lr: 0.001 vs 0.002");

    snprintf(a.source, sizeof a.source, "configs/claims/C1.yaml");
    config_run_dir(&a, out, sizeof out);
    assert_string_equal(out, "runs/C1");
    snprintf(a.output.dir, sizeof a.output.dir, "runs/mine");
    config_run_dir(&a, out, sizeof out);
    assert_string_equal(out, "runs/mine");
}

/* ---------------------------------------------------------------- shipped configs and docs */

static void load_shipped(Config *c, const char *name)
{
    char path[1024], err[1024] = "";
    snprintf(path, sizeof path, "%s/configs/%s", test_src(), name);
    if (config_load(c, path, err, sizeof err)) fail_msg("%s", err);
    if (config_validate(c, err, sizeof err)) fail_msg("%s", err);
    assert_round_trip(c, name);
}

static void test_shipped_configs_load_cleanly(void **state)
{
    Config c;
    load_shipped(&c, "quickstart.yaml");
    assert_int_equal(c.model.kind, MODEL_CAUSAL);
    assert_int_equal(c.model.n_layer, 2);
    assert_int_equal(c.model.d_model, 64);
    assert_int_equal(c.model.n_head, 4);
    assert_int_equal(c.model.d_ff, 256);
    assert_int_equal(c.model.tie_embeddings, 0);
    assert_int_equal(c.data.corpus, CORPUS_BIGRAM_BACKCOPY);
    assert_int_equal(c.data.bb_source, CORPUS_FORTUNES);
    assert_int_equal(c.data.bb_n_triggers, 3);
    assert_int_equal(c.data.seq_len, 64);
    assert_int_equal(c.data.bos, BOS_WINDOW_START);   /* resolved for bigram_backcopy */
    assert_int_equal(c.train.steps, 600);
    assert_int_equal(c.train.batch_size, 32);
    assert_true(c.train.lr == 3e-3f);
    assert_int_equal(c.train.warmup_steps, 20);
    assert_int_equal(c.train.schedule, SCHED_CONSTANT);
    assert_int_equal(c.probe.every, 20);
    assert_int_equal(c.probe.n_seq, 64);
    assert_int_equal(c.probe.seq_len, 64);
    assert_int_equal(c.checkpoint.log_spaced, 1);

    load_shipped(&c, "bert_tiny.yaml");
    assert_int_equal(c.model.kind, MODEL_BIDIRECTIONAL);
    assert_int_equal(c.data.kind, MODEL_BIDIRECTIONAL);
    load_shipped(&c, "prefix_lm.yaml");
    assert_int_equal(c.model.kind, MODEL_PREFIX_LM);
}

/* The README's config reference is the generated table, row for row. */
static void test_reference_documents_every_key(void **state)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/README.md", test_src());
    char *doc = test_slurp(path, NULL);

    char *ref = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&ref, &len);
    config_write_reference(m);
    fclose(m);
    /* The table is generated: it must appear in the README verbatim. */
    if (!strstr(doc, ref)) {
        for (char *line = strtok(ref, "\n"); line; line = strtok(NULL, "\n"))
            if (!strstr(doc, line)) fail_msg("%s: this row differs from the key table "
                                             "(regenerate with `sinklab --config-reference`):\n%s",
                                             path, line);
        fail_msg("%s: the key table's rows are not in order (regenerate with "
                 "`sinklab --config-reference`)", path);
    }
    int rows = 0;
    for (const char *q = ref; (q = strstr(q, "\n| `")); q++) rows++;
    assert_true(rows > 60);
    free(ref);
    free(doc);
}


/* One pass reports every independent problem, each with its own file:line:col. */
static void test_every_independent_error_is_reported_at_once(void **state)
{
    Config c;
    char err[4096], path[1024], want[8192];
    config_defaults(&c);
    assert_int_equal(load_text(&c, "many.yaml",
                               "model:\n  n_haed: 4\n  n_layer: -1\ndata:\n  eos: 1\n"
                               "trian:\n  steps: 5\n",
                               err, sizeof err, path, sizeof path), -1);
    snprintf(want, sizeof want,
             "%s:2:3: model.n_haed: unknown key (did you mean model.n_head?)\n"
             "%s:3:12: model.n_layer: expected a positive integer (at most 256), got '-1'\n"
             "%s:5:8: data.eos: expected true or false, got '1'\n"
             "%s:6:1: trian: unknown key (did you mean train?)",
             path, path, path, path);
    if (strcmp(err, want)) fail_msg("got\n%s\nwant\n%s", err, want);
}

/* 1e4 names the integer 10000; 2.5 names no integer. */
static void test_integral_floats_are_accepted_for_integer_keys(void **state)
{
    Config c;
    char err[1024], path[1024];
    config_defaults(&c);
    assert_int_equal(load_text(&c, "e4.yaml", "train:\n  steps: 1e4\n  batch_size: 8.0\n", err,
                               sizeof err, path, sizeof path), 0);
    assert_int_equal(c.train.steps, 10000);
    assert_int_equal(c.train.batch_size, 8);
    assert_int_equal(load_text(&c, "half.yaml", "train:\n  steps: 2.5\n", err, sizeof err, path,
                               sizeof path), -1);
    expect_error(err, path, 2, 10, "train.steps: expected a non-negative integer, got '2.5'");
}

/* The kernel implements sigmoid_norm with a sink logit (a virtual key in the row sum); config
 * validation and transformer_init accept it through the one rule in attention_spec_check, and
 * both refuse plain sigmoid and relu with a logit. */
static void test_config_and_model_agree_on_attention_rules(void **state)
{
    Config c;
    char err[1024];
    config_defaults(&c);
    assert_int_equal(config_set(&c, "model.attention.normalizer=sigmoid_norm", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "model.attention.sink=logit", err, sizeof err), 0);
    if (config_validate(&c, err, sizeof err)) fail_msg("sigmoid_norm + logit refused: %s", err);
    Transformer m;
    if (transformer_init(&m, &c.model, 1, err, sizeof err))
        fail_msg("transformer_init refused sigmoid_norm + logit: %s", err);
    transformer_free(&m);
    c.model.attention.normalizer = ATTN_SIGMOID;
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    char model_err[1024];
    assert_int_equal(transformer_init(&m, &c.model, 1, model_err, sizeof model_err), -1);
    /* the same rule, the same words */
    if (!strstr(err, model_err)) fail_msg("config says '%s', model says '%s'", err, model_err);
    /* relu (relu(s) / allowed keys) has no denominator either */
    c.model.attention.normalizer = ATTN_RELU;
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    assert_int_equal(transformer_init(&m, &c.model, 1, model_err, sizeof model_err), -1);
    if (!strstr(err, model_err)) fail_msg("config says '%s', model says '%s'", err, model_err);
    expect_contains(err, "which normalizer relu does not have");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_the_documented_values_and_valid),
        cmocka_unit_test(test_validate_is_idempotent),
        cmocka_unit_test(test_full_config_exercises_every_field),
        cmocka_unit_test(test_round_trip_defaults_unvalidated_and_validated),
        cmocka_unit_test(test_round_trip_full_config),
        cmocka_unit_test(test_round_trip_several_configs),
        cmocka_unit_test(test_round_trip_through_a_file_records_the_source),
        cmocka_unit_test(test_unknown_key_names_line_column_and_suggests),
        cmocka_unit_test(test_wrong_type_names_key_expected_and_value),
        cmocka_unit_test(test_bad_enum_lists_the_allowed_values),
        cmocka_unit_test(test_out_of_range_values_are_errors),
        cmocka_unit_test(test_duplicate_key_is_an_error),
        cmocka_unit_test(test_malformed_yaml_reports_libyaml_problem_and_position),
        cmocka_unit_test(test_missing_file_is_named),
        cmocka_unit_test(test_failed_load_leaves_the_config_unchanged),
        cmocka_unit_test(test_empty_file_gives_the_defaults),
        cmocka_unit_test(test_inconsistent_combinations_name_the_keys),
        cmocka_unit_test(test_ranges_are_checked_for_configs_built_in_code),
        cmocka_unit_test(test_derived_values),
        cmocka_unit_test(test_batch_size_and_tokens_per_step_are_alternatives),
        cmocka_unit_test(test_set_overrides_with_the_same_validation),
        cmocka_unit_test(test_nested_maps_and_lists),
        cmocka_unit_test(test_malformed_lists_are_errors),
        cmocka_unit_test(test_bigram_backcopy_keys),
        cmocka_unit_test(test_merge_file_overlays_the_current_config),
        cmocka_unit_test(test_diff_and_run_dir),
        cmocka_unit_test(test_shipped_configs_load_cleanly),
        cmocka_unit_test(test_reference_documents_every_key),
        cmocka_unit_test(test_every_independent_error_is_reported_at_once),
        cmocka_unit_test(test_integral_floats_are_accepted_for_integer_keys),
        cmocka_unit_test(test_config_and_model_agree_on_attention_rules),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
