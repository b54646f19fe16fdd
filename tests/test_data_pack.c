/* test_data_pack.c: every packing knob as a property over many generated batches of the synthetic
 * corpus (whose documents, and only they, start with "Title: "), plus purity, epochs, the split,
 * the probe set and a throughput measurement. */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/dataset.h"
#include "data/tokenizer.h"

enum { B = 8, T = 64, STEPS = 12 };

static DataConfig synth_cfg(void)
{
    DataConfig c;
    data_config_defaults(&c);
    c.corpus = CORPUS_SYNTHETIC;
    c.synthetic_docs = 400;
    c.synthetic_seed = 1;
    c.seq_len = T;
    c.val_fraction = 0.1f;
    c.prefix_min = 4;
    c.prefix_max = 20;
    return c;
}

static Dataset *open_ok(const DataConfig *c)
{
    char err[1024] = "";
    Dataset *ds = dataset_open(c, err, sizeof err);
    if (!ds) fail_msg("dataset_open: %s", err);
    return ds;
}

static const char *KIND_NAMES[] = {"causal", "bidirectional", "prefix_lm"};
static const char *BOS_NAMES[] = {"none", "window_start", "doc_start", "both"};

typedef struct {
    const DataConfig *c;
    const Batch *b;
    int row;
    char what[160];
} Ctx;

#define AT(x, k) ((x)[(size_t)ctx->row * T + (size_t)(k)])

/* The row's text before MLM masking: targets hold the original tokens under MLM. */
static const int32_t *orig_tokens(const Ctx *ctx)
{
    return ctx->c->kind == MODEL_BIDIRECTIONAL ? &AT(ctx->b->targets, 0) : &AT(ctx->b->tokens, 0);
}

/* Bytes of text from k before the row ends or a special token (SEP, PAD, EOS ...) cuts it. */
static int text_left(const Ctx *ctx, int k)
{
    const int32_t *t = orig_tokens(ctx);
    int n = 0;
    while (k + n < T && t[k + n] < 256) n++;
    return n;
}

/* Does a "Title: " start at position k (the mark of a synthetic document's first byte)? Where the
 * row cuts the title, a prefix of it counts. */
static int title_at(const Ctx *ctx, int k)
{
    static const char title[] = "Title: ";
    const int32_t *t = orig_tokens(ctx);
    int n = text_left(ctx, k);
    if (n == 0) return 0;
    for (int i = 0; i < 7 && i < n; i++)
        if (t[k + i] != title[i]) return 0;
    return 1;
}

/* "Titl" cannot occur inside synthetic text (words are consonant-vowel syllables), shorter
 * prefixes can: a title cut to fewer than 4 bytes is undecidable. */
static int title_undecidable(const Ctx *ctx, int k) { return k < T && text_left(ctx, k) < 4 && title_at(ctx, k); }

static int is_special(int32_t t) { return t >= TOK_BOS; }

/* Doc ids: -1 exactly on PAD, otherwise 0, 1, 2 ... in steps of one; a document boundary (a
 * "Title: ") is always a doc id change and a doc id change is always a document boundary. */
static void check_doc_ids(const Ctx *ctx)
{
    const int32_t *tok = &AT(ctx->b->tokens, 0), *doc = &AT(ctx->b->doc_ids, 0);
    int bidir = ctx->c->kind == MODEL_BIDIRECTIONAL, dbos = ctx->c->bos >= BOS_DOC_START;
    int32_t prev = -2;
    for (int k = 0; k < T; k++) {
        if ((tok[k] == TOK_PAD) != (doc[k] == -1))
            fail_msg("%s row %d t=%d: token %d with doc id %d (PAD <=> -1)", ctx->what, ctx->row, k, tok[k], doc[k]);
        if (doc[k] < 0) continue;
        int first = prev == -2;
        if (first && doc[k] != 0) fail_msg("%s row %d: first doc id %d, want 0", ctx->what, ctx->row, doc[k]);
        if (!first && doc[k] != prev && doc[k] != prev + 1)
            fail_msg("%s row %d t=%d: doc id jumps %d -> %d", ctx->what, ctx->row, k, prev, doc[k]);
        int starts = !first && doc[k] == prev + 1;
        /* a document starts with its doc_start BOS, or with its title */
        int boundary = k > 0 && (dbos ? tok[k] == TOK_BOS && k + 1 < T && (title_at(ctx, k + 1) || k + 1 == T - bidir)
                                       : title_at(ctx, k) && !((tok[k - 1] == TOK_BOS || tok[k - 1] == TOK_CLS) && doc[k - 1] == doc[k]));
        if (dbos && tok[k] == TOK_BOS && k > 0 && k + 1 < T && !title_at(ctx, k + 1) && !(bidir && k + 1 == T - 1))
            fail_msg("%s row %d t=%d: BOS not followed by a title", ctx->what, ctx->row, k);
        if (k > 0 && (tok[k] == TOK_SEP || tok[k] == TOK_CLS)) boundary = 0, starts = 0;
        if (k == 1 && (tok[0] == TOK_CLS || tok[0] == TOK_BOS)) boundary = 0;   /* the row's first document */
        int unknown = title_undecidable(ctx, k) || (dbos && tok[k] == TOK_BOS && title_undecidable(ctx, k + 1));
        if (starts != boundary && !unknown && !(k == T - 1 && dbos && tok[k] == TOK_BOS && starts))
            fail_msg("%s row %d t=%d: doc id %s but %s", ctx->what, ctx->row, k,
                     starts ? "changes" : "stays", boundary ? "a document starts here" : "no document starts here");
        if (starts && ctx->c->eos && ctx->c->pack == PACK_CONCAT && tok[k - 1] != TOK_EOS)
            fail_msg("%s row %d t=%d: document not preceded by EOS (eos: true)", ctx->what, ctx->row, k);
        if (tok[k] == TOK_EOS && k + 1 < T && doc[k + 1] == doc[k] && !(bidir && tok[k + 1] == TOK_SEP))
            fail_msg("%s row %d t=%d: EOS inside a document", ctx->what, ctx->row, k);
        prev = doc[k];
    }
}

static void check_positions(const Ctx *ctx)
{
    const int32_t *pos = &AT(ctx->b->positions, 0), *doc = &AT(ctx->b->doc_ids, 0);
    for (int k = 0; k < T; k++) {
        if (doc[k] < 0) continue;
        int32_t want = k;
        if (ctx->c->reset_positions) want = k == 0 || doc[k] != doc[k - 1] ? 0 : pos[k - 1] + 1;
        if (pos[k] != want) fail_msg("%s row %d positions[%d]: got %d, want %d", ctx->what, ctx->row, k, pos[k], want);
    }
}

static void check_loss(const Ctx *ctx)
{
    const int32_t *tok = &AT(ctx->b->tokens, 0), *tgt = &AT(ctx->b->targets, 0), *doc = &AT(ctx->b->doc_ids, 0);
    const float *lm = &AT(ctx->b->loss_mask, 0);
    int32_t plen = ctx->b->prefix_len[ctx->row];
    for (int k = 0; k < T; k++) {
        if (tok[k] < 0 || tok[k] >= TOK_VOCAB_SIZE || tgt[k] < 0 || tgt[k] >= TOK_VOCAB_SIZE)
            fail_msg("%s row %d t=%d: id out of range (token %d target %d)", ctx->what, ctx->row, k, tok[k], tgt[k]);
        if (lm[k] == 0.0f) continue;
        if (doc[k] < 0 || tgt[k] == TOK_PAD) fail_msg("%s row %d t=%d: PAD counts in the loss", ctx->what, ctx->row, k);
        if (ctx->c->kind != MODEL_BIDIRECTIONAL && k + 1 < T && tgt[k] != tok[k + 1])
            fail_msg("%s row %d targets[%d]: got %d, want next token %d", ctx->what, ctx->row, k, tgt[k], tok[k + 1]);
        if (ctx->c->kind == MODEL_PREFIX_LM && k + 1 < plen)
            fail_msg("%s row %d t=%d: loss inside the prefix (prefix_len %d)", ctx->what, ctx->row, k, plen);
        if (ctx->c->kind == MODEL_BIDIRECTIONAL && (is_special(tgt[k]) || tok[k] == TOK_CLS || tok[k] == TOK_SEP))
            fail_msg("%s row %d t=%d: special token %d under the MLM loss", ctx->what, ctx->row, k, tgt[k]);
    }
    if (ctx->c->kind == MODEL_PREFIX_LM && (plen < ctx->c->prefix_min || plen > ctx->c->prefix_max))
        fail_msg("%s row %d: prefix_len %d outside [%d, %d]", ctx->what, ctx->row, plen, ctx->c->prefix_min, ctx->c->prefix_max);
    if (ctx->c->kind != MODEL_PREFIX_LM && plen != 0) fail_msg("%s row %d: prefix_len %d, want 0", ctx->what, ctx->row, plen);
}

/* Window starts: BOS (window_start/both) or CLS; bidirectional rows end with SEP after the text. */
static void check_ends(const Ctx *ctx)
{
    const int32_t *tok = &AT(ctx->b->tokens, 0), *doc = &AT(ctx->b->doc_ids, 0);
    int wbos = ctx->c->bos == BOS_WINDOW_START || ctx->c->bos == BOS_BOTH;
    if (ctx->c->kind == MODEL_BIDIRECTIONAL) {
        int last = T - 1;
        while (doc[last] < 0) last--;
        if (tok[0] != TOK_CLS || tok[last] != TOK_SEP)
            fail_msg("%s row %d: want CLS first and SEP last, got %d .. %d", ctx->what, ctx->row, tok[0], tok[last]);
    } else if (wbos && tok[0] != TOK_BOS) {
        fail_msg("%s row %d: bos %s but token 0 is %d", ctx->what, ctx->row, BOS_NAMES[ctx->c->bos], tok[0]);
    } else if (ctx->c->bos == BOS_NONE && tok[0] == TOK_BOS) {
        fail_msg("%s row %d: bos none but token 0 is BOS", ctx->what, ctx->row);
    }
    for (int k = 1; k < T; k++)
        if (tok[k] == TOK_BOS && ctx->c->bos < BOS_DOC_START)
            fail_msg("%s row %d t=%d: BOS inside the window with bos %s", ctx->what, ctx->row, k, BOS_NAMES[ctx->c->bos]);
}

/* Every combination of kind x pack x bos x eos x reset_positions, over STEPS batches each. */
static void test_packing_properties_hold_for_every_combination(void **state)
{
    (void)state;
    Batch b;
    batch_alloc(&b, B, T);
    int combos = 0;
    for (int kind = 0; kind < 3; kind++)
    for (int pack = 0; pack < 2; pack++)
    for (int bos = 0; bos < 4; bos++)
    for (int eos = 0; eos < 2; eos++)
    for (int reset = 0; reset < 2; reset++) {
        DataConfig c = synth_cfg();
        c.kind = (ModelKind)kind;
        c.pack = (PackMode)pack;
        c.bos = (BosMode)bos;
        c.eos = eos;
        c.reset_positions = reset;
        Dataset *ds = open_ok(&c);
        Ctx ctx = {&c, &b, 0, ""};
        for (int split = 0; split < 2; split++)
            for (int step = 0; step < STEPS; step++) {
                dataset_batch(ds, (DataSplit)split, 3, step, &b);
                snprintf(ctx.what, sizeof ctx.what, "[%s pack=%s bos=%s eos=%d reset=%d split=%d step=%d]",
                         KIND_NAMES[kind], pack ? "pad" : "concat", BOS_NAMES[bos], eos, reset, split, step);
                for (ctx.row = 0; ctx.row < B; ctx.row++) {
                    check_ends(&ctx);
                    check_doc_ids(&ctx);
                    check_positions(&ctx);
                    check_loss(&ctx);
                }
            }
        dataset_free(ds);
        combos++;
    }
    assert_int_equal(combos, 96);
    batch_free(&b);
}

/* pack: pad holds one document (or one chunk of a long one) per row, padded at the tail. */
static void test_pad_rows_hold_one_document(void **state)
{
    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        DataConfig c = synth_cfg();
        c.pack = PACK_PAD;
        c.long_docs = mode ? LONG_TRUNCATE : LONG_SPLIT;
        Dataset *ds = open_ok(&c);
        Batch b;
        batch_alloc(&b, B, T);
        int n_padded = 0;
        for (int step = 0; step < 40; step++) {
            dataset_batch(ds, DATA_TRAIN, 0, step, &b);
            for (int r = 0; r < B; r++) {
                int seen_pad = 0;
                for (int k = 0; k < T; k++) {
                    int32_t d = b.doc_ids[r * T + k];
                    if (d > 0) fail_msg("pad row %d t=%d: doc id %d, want 0 (one document per row)", r, k, d);
                    if (d < 0) seen_pad = 1;
                    else if (seen_pad) fail_msg("pad row %d t=%d: text after PAD", r, k);
                }
                n_padded += seen_pad;
            }
        }
        assert_true(n_padded > 0);
        batch_free(&b);
        dataset_free(ds);
    }
}

static int rows_differ(const Batch *a, const Batch *b)
{
    size_t n = (size_t)a->B * (size_t)a->T;
    return memcmp(a->tokens, b->tokens, n * 4) || memcmp(a->targets, b->targets, n * 4) ||
           memcmp(a->positions, b->positions, n * 4) || memcmp(a->doc_ids, b->doc_ids, n * 4) ||
           memcmp(a->loss_mask, b->loss_mask, n * 4) || memcmp(a->prefix_len, b->prefix_len, (size_t)a->B * 4);
}

/* The batch is a function of (seed, step): recomputed, or from a second dataset, it is identical;
 * another step or seed gives another batch. */
static void test_batches_are_pure_functions_of_seed_and_step(void **state)
{
    (void)state;
    for (int kind = 0; kind < 3; kind++) {
        DataConfig c = synth_cfg();
        c.kind = (ModelKind)kind;
        c.randomize_first = kind == 0 ? 2 : 0;
        Dataset *d1 = open_ok(&c), *d2 = open_ok(&c);
        Batch a, b;
        batch_alloc(&a, B, T);
        batch_alloc(&b, B, T);
        for (int step = 0; step < 30; step++) {
            dataset_batch(d1, DATA_TRAIN, 11, step, &a);
            dataset_batch(d1, DATA_TRAIN, 11, step + 1, &b);
            if (!rows_differ(&a, &b)) fail_msg("%s: steps %d and %d give the same batch", KIND_NAMES[kind], step, step + 1);
            dataset_batch(d2, DATA_TRAIN, 11, step, &b);
            if (rows_differ(&a, &b)) fail_msg("%s: step %d differs between two opens", KIND_NAMES[kind], step);
            dataset_batch(d1, DATA_TRAIN, 11, step, &b);
            if (rows_differ(&a, &b)) fail_msg("%s: step %d differs when recomputed", KIND_NAMES[kind], step);
            dataset_batch(d1, DATA_TRAIN, 12, step, &b);
            if (!rows_differ(&a, &b)) fail_msg("%s: seeds 11 and 12 give the same batch at step %d", KIND_NAMES[kind], step);
        }
        batch_free(&a);
        batch_free(&b);
        dataset_free(d1);
        dataset_free(d2);
    }
}

/* randomize N changes exactly the first N tokens of every row and nothing else, and takes the
 * unpredictable tokens out of the loss. */
static void test_randomize_changes_exactly_n_tokens(void **state)
{
    (void)state;
    const int N = 3;
    for (int bos = 0; bos < 2; bos++) {
        DataConfig c0 = synth_cfg(), c1;
        c0.bos = bos ? BOS_WINDOW_START : BOS_NONE;
        c1 = c0;
        c1.randomize_first = N;
        Dataset *d0 = open_ok(&c0), *d1 = open_ok(&c1);
        Batch a, b;
        batch_alloc(&a, B, T);
        batch_alloc(&b, B, T);
        for (int step = 0; step < 50; step++) {
            dataset_batch(d0, DATA_TRAIN, 5, step, &a);
            dataset_batch(d1, DATA_TRAIN, 5, step, &b);
            for (int r = 0; r < B; r++) {
                int changed = 0;
                for (int k = 0; k < T; k++) {
                    size_t i = (size_t)r * T + (size_t)k;
                    int diff = a.tokens[i] != b.tokens[i];
                    if (diff && k >= N) fail_msg("randomize: row %d t=%d changed (%d -> %d), want only t < %d", r, k, a.tokens[i], b.tokens[i], N);
                    if (k < N && (b.tokens[i] < 0 || b.tokens[i] > 255)) fail_msg("randomize: row %d t=%d id %d not a byte", r, k, b.tokens[i]);
                    if (k + 1 < N && b.loss_mask[i] != 0.0f) fail_msg("randomize: row %d t=%d predicts a random token", r, k);
                    changed += diff;
                }
                if (changed != N) fail_msg("randomize %d: row %d step %d changed %d tokens", N, r, step, changed);
            }
        }
        batch_free(&a);
        batch_free(&b);
        dataset_free(d0);
        dataset_free(d1);
    }
}

static void test_fixed_token_sits_at_its_position(void **state)
{
    (void)state;
    DataConfig c0 = synth_cfg(), c1;
    c1 = c0;
    c1.fixed_token_id = TOK_SEP;
    c1.fixed_token_pos = 5;
    Dataset *d0 = open_ok(&c0), *d1 = open_ok(&c1);
    Batch a, b;
    batch_alloc(&a, B, T);
    batch_alloc(&b, B, T);
    for (int step = 0; step < 30; step++) {
        dataset_batch(d0, DATA_TRAIN, 1, step, &a);
        dataset_batch(d1, DATA_TRAIN, 1, step, &b);
        for (int r = 0; r < B; r++)
            for (int k = 0; k < T; k++) {
                size_t i = (size_t)r * T + (size_t)k;
                int32_t want = k == 5 ? TOK_SEP : a.tokens[i];
                if (b.tokens[i] != want) fail_msg("fixed_token: row %d tokens[%d]: got %d, want %d", r, k, b.tokens[i], want);
            }
    }
    batch_free(&a);
    batch_free(&b);
    dataset_free(d0);
    dataset_free(d1);
}

/* BERT masking: 15% of byte tokens picked; of those 80% MASK, 10% random, 10% kept. */
static void test_mlm_masking_rates(void **state)
{
    (void)state;
    DataConfig c = synth_cfg();
    c.kind = MODEL_BIDIRECTIONAL;
    Dataset *ds = open_ok(&c);
    Batch b;
    batch_alloc(&b, 32, T);
    long bytes = 0, picked = 0, masked = 0, kept = 0;
    for (int step = 0; step < 100; step++) {
        dataset_batch(ds, DATA_TRAIN, 2, step, &b);
        for (size_t i = 0; i < (size_t)32 * T; i++) {
            bytes += b.targets[i] < 256;
            if (b.loss_mask[i] == 0.0f) {
                if (b.tokens[i] != b.targets[i]) fail_msg("MLM t=%zu: unpicked token %d changed from %d", i, b.tokens[i], b.targets[i]);
                continue;
            }
            picked++;
            masked += b.tokens[i] == TOK_MASK;
            kept += b.tokens[i] == b.targets[i];
        }
    }
    double p = (double)picked / bytes, pm = (double)masked / picked, pk = (double)kept / picked;
    double pr = 1.0 - pm - pk;
    /* ~30k picks: 3-sigma is about 0.006 for the rates below; allow 0.02. */
    if (p < 0.14 || p > 0.16) fail_msg("MLM pick rate %.4f, want 0.15 +- 0.01", p);
    if (pm < 0.78 || pm > 0.82) fail_msg("MLM <mask> share %.4f, want 0.80 +- 0.02", pm);
    if (pk < 0.08 || pk > 0.12) fail_msg("MLM kept share %.4f, want 0.10 (+1/256) +- 0.02", pk);
    if (pr < 0.08 || pr > 0.12) fail_msg("MLM random share %.4f, want 0.10 +- 0.02", pr);
    batch_free(&b);
    dataset_free(ds);
}

/* Within one epoch a pad-mode unit is never drawn twice (a permutation, not sampling with
 * replacement, which would repeat ~ n/2 times over n draws). */
static void test_epoch_visits_each_sequence_once(void **state)
{
    (void)state;
    DataConfig c = synth_cfg();
    c.pack = PACK_PAD;
    c.synthetic_docs = 120;
    Dataset *ds = open_ok(&c);
    int64_t n = dataset_info(ds, DATA_TRAIN)->n_units;
    Batch b;
    batch_alloc(&b, 1, T);
    uint64_t *h = calloc((size_t)n, sizeof *h);
    for (int64_t s = 0; s < n; s++) {
        dataset_batch(ds, DATA_TRAIN, 9, s, &b);
        uint64_t x = 1469598103934665603ULL;
        for (int k = 0; k < T; k++) x = (x ^ (uint64_t)b.tokens[k]) * 1099511628211ULL;
        h[s] = x;
        for (int64_t j = 0; j < s; j++)
            if (h[j] == x) fail_msg("epoch of %lld units: step %lld repeats step %lld", (long long)n, (long long)s, (long long)j);
    }
    double e = dataset_epochs(ds, n * T);
    if (e < 0.999 || e > 1.001) fail_msg("dataset_epochs after one epoch of tokens: %g, want 1", e);
    free(h);
    batch_free(&b);
    dataset_free(ds);
}

/* The split depends on split_seed only: disjoint, stable, and another split_seed moves it. */
static void test_split_is_deterministic_and_disjoint(void **state)
{
    (void)state;
    DataConfig c = synth_cfg();
    Dataset *a = open_ok(&c), *b = open_ok(&c);
    c.split_seed = 1;
    Dataset *other = open_ok(&c);
    const DataSplitData *va = &a->split[DATA_VAL], *ta = &a->split[DATA_TRAIN];
    assert_int_equal(va->info.n_docs, 40);
    assert_int_equal(va->info.n_docs + ta->info.n_docs, 400);
    assert_memory_equal(va->docs, b->split[DATA_VAL].docs, (size_t)va->info.n_docs * sizeof *va->docs);
    char *in_val = calloc(400, 1);
    for (int64_t i = 0; i < va->info.n_docs; i++) in_val[va->docs[i]] = 1;
    for (int64_t i = 0; i < ta->info.n_docs; i++)
        if (in_val[ta->docs[i]]) fail_msg("document %lld is in both splits", (long long)ta->docs[i]);
    assert_true(memcmp(va->docs, other->split[DATA_VAL].docs, (size_t)va->info.n_docs * sizeof *va->docs) != 0);
    free(in_val);
    dataset_free(a);
    dataset_free(b);
    dataset_free(other);
}

/* Probe sequences start at held-out document starts, BOS first when asked, and do not depend
 * on anything but split_seed. */
static void test_probe_set_starts_at_held_out_documents(void **state)
{
    (void)state;
    DataConfig c = synth_cfg();
    Dataset *ds = open_ok(&c);
    Batch p, q;
    batch_alloc(&p, 20, 32);
    batch_alloc(&q, 20, 32);
    for (int bos = 0; bos < 2; bos++) {
        assert_int_equal(dataset_probe_set(ds, 20, 32, bos, &p), 0);
        assert_int_equal(dataset_probe_set(ds, 20, 32, bos, &q), 0);
        assert_false(rows_differ(&p, &q));
        for (int r = 0; r < 20; r++) {
            const int32_t *t = p.tokens + r * 32;
            if (bos && t[0] != TOK_BOS) fail_msg("probe row %d: want BOS at 0, got %d", r, t[0]);
            if (!bos && t[0] == TOK_BOS) fail_msg("probe row %d: BOS at 0 with bos 0", r);
            const char *want = "Title: ";
            for (int k = 0; k < 7; k++)
                if (t[bos + k] != want[k]) fail_msg("probe row %d does not start at a document start", r);
            if (p.positions[r * 32 + 31] != 31 || p.doc_ids[r * 32] != 0) fail_msg("probe row %d: positions/doc ids", r);
        }
    }
    batch_free(&p);
    /* 41 sequences from 40 held-out documents: the 41st starts 32 tokens into document 0, so it
     * continues sequence 0 exactly where that one ended */
    batch_alloc(&p, 41, 32);
    assert_int_equal(dataset_probe_set(ds, 41, 32, 0, &p), 0);
    const Dataset *d = ds;
    const uint8_t *doc0 = d->corpus.text + d->corpus.doc_off[d->split[DATA_VAL].docs[0]];
    if (corpus_doc_len(&d->corpus, d->split[DATA_VAL].docs[0]) >= 64)
        for (int k = 0; k < 32; k++)
            if (p.tokens[40 * 32 + k] != doc0[32 + k])
                fail_msg("probe row 40 token %d: got %d, want byte %d of held-out document 0", k,
                         p.tokens[40 * 32 + k], 32 + k);
    batch_free(&p);
    batch_free(&q);
    dataset_free(ds);
}

/* val_fraction 0: no validation documents, so validation rows are all PAD with no loss and the
 * probe set cannot be filled. */
static void test_empty_validation_split_is_all_pad(void **state)
{
    (void)state;
    DataConfig c = synth_cfg();
    c.val_fraction = 0.0f;
    Dataset *ds = open_ok(&c);
    Batch b;
    batch_alloc(&b, B, T);
    dataset_batch(ds, DATA_VAL, 0, 0, &b);
    for (size_t i = 0; i < (size_t)B * T; i++)
        if (b.tokens[i] != TOK_PAD || b.doc_ids[i] != -1 || b.loss_mask[i] != 0.0f)
            fail_msg("empty validation split, t=%zu: token %d doc %d loss %g, want PAD, -1, 0", i, b.tokens[i], b.doc_ids[i], (double)b.loss_mask[i]);
    assert_int_equal(dataset_probe_set(ds, 4, T, 0, &b), -1);
    batch_free(&b);
    dataset_free(ds);
}

/* Throughput of dataset_batch (not an assertion: printed for the closing note). */
static void test_throughput_is_reported(void **state)
{
    (void)state;
    const char *names[] = {"causal concat", "causal concat bos+reset", "mlm concat", "causal pad"};
    for (int v = 0; v < 4; v++) {
        DataConfig c = synth_cfg();
        c.synthetic_docs = 4000;
        c.seq_len = 256;
        if (v == 1) c.bos = BOS_BOTH, c.reset_positions = 1;
        if (v == 2) c.kind = MODEL_BIDIRECTIONAL;
        if (v == 3) c.pack = PACK_PAD;
        Dataset *ds = open_ok(&c);
        Batch b;
        batch_alloc(&b, 64, 256);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int steps = 0;
        double dt;
        do {
            dataset_batch(ds, DATA_TRAIN, 0, steps++, &b);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        } while (dt < 0.2);
        printf("throughput %-24s %.1fM tokens/s (B=64 T=256, %d batches)\n", names[v], steps * 64.0 * 256 / dt / 1e6, steps);
        batch_free(&b);
        dataset_free(ds);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packing_properties_hold_for_every_combination),
        cmocka_unit_test(test_pad_rows_hold_one_document),
        cmocka_unit_test(test_batches_are_pure_functions_of_seed_and_step),
        cmocka_unit_test(test_randomize_changes_exactly_n_tokens),
        cmocka_unit_test(test_fixed_token_sits_at_its_position),
        cmocka_unit_test(test_mlm_masking_rates),
        cmocka_unit_test(test_epoch_visits_each_sequence_once),
        cmocka_unit_test(test_split_is_deterministic_and_disjoint),
        cmocka_unit_test(test_probe_set_starts_at_held_out_documents),
        cmocka_unit_test(test_empty_validation_split_is_all_pad),
        cmocka_unit_test(test_throughput_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
