/* dataset.c: train/validation split, packing into token streams, and batch generation. Every batch
 * is computed from (seed, step) alone: a row's unit comes from a keyed permutation of the epoch
 * and its random choices from an RNG seeded by (seed, split, row index), so nothing is carried
 * between steps and resuming needs only the step. */
#include "data/dataset.h"

#include "base/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"
#include "base/rng.h"

static int is_bidir(const DataConfig *c) { return c->kind == MODEL_BIDIRECTIONAL; }

/* BOS at the start of every window (bidirectional windows start with CLS instead). */
static int window_bos(const DataConfig *c)
{
    return !is_bidir(c) && (c->bos == BOS_WINDOW_START || c->bos == BOS_BOTH);
}

static int doc_bos(const DataConfig *c) { return c->bos == BOS_DOC_START || c->bos == BOS_BOTH; }

/* Stream tokens a concat window of T positions holds (T minus the inserted BOS or CLS/SEP). */
static int window_width(const DataConfig *c, int T) { return T - (is_bidir(c) ? 2 : window_bos(c)); }

/* Content tokens a padded row of T positions holds (BOS, EOS, CLS/SEP slots reserved). */
static int pad_capacity(const DataConfig *c, int T)
{
    int bos_slot = is_bidir(c) ? doc_bos(c) : c->bos != BOS_NONE;
    return T - bos_slot - (c->eos ? 1 : 0) - (is_bidir(c) ? 2 : 0);
}

/* ---- keyed permutation of [0, n): a 4-round Feistel network on the next even power of two,
 * cycle-walked back into range (a bijection, so each epoch visits every unit once). ---- */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static uint64_t perm_index(uint64_t i, uint64_t n, uint64_t key)
{
    if (n <= 1) return 0;
    int bits = 2;
    while ((1ULL << bits) < n) bits += 2;
    int half = bits / 2;
    uint64_t mask = (1ULL << half) - 1;
    do {
        uint64_t l = i >> half, r = i & mask;
        for (uint64_t round = 0; round < 4; round++) {
            uint64_t f = mix64(r ^ key ^ (round * 0x9e3779b97f4a7c15ULL)) & mask;
            uint64_t t = r;
            r = l ^ f;
            l = t;
        }
        i = (l << half) | r;
    } while (i >= n);
    return i;
}

/* ---- building the splits ---- */

static void push_tok(DataSplitData *s, int32_t tok, int start)
{
    s->stream[s->n_stream] = tok;
    s->doc_start[s->n_stream++] = (uint8_t)start;
}

static int build_concat(DataSplitData *s, const Dataset *ds, char *err, size_t n_err, const char *name)
{
    const DataConfig *c = &ds->cfg;
    int64_t total = 0;
    for (int64_t i = 0; i < s->info.n_docs; i++)
        total += corpus_doc_len(&ds->corpus, s->docs[i]) + doc_bos(c) + (c->eos ? 1 : 0);
    s->stream = xcalloc((size_t)total, sizeof *s->stream);
    s->doc_start = xcalloc((size_t)total, 1);
    for (int64_t i = 0; i < s->info.n_docs; i++) {
        int64_t d = s->docs[i], n = corpus_doc_len(&ds->corpus, d);
        const uint8_t *text = ds->corpus.text + ds->corpus.doc_off[d];
        if (doc_bos(c)) push_tok(s, TOK_BOS, 1);
        for (int64_t k = 0; k < n; k++) push_tok(s, text[k], k == 0 && !doc_bos(c));
        if (c->eos) push_tok(s, TOK_EOS, 0);
    }
    int W = window_width(c, c->seq_len);
    s->info.n_tokens = s->n_stream;
    if (s->info.n_docs > 0 && s->n_stream < (int64_t)W + 1) {
        snprintf(err, n_err, "%s: the %s split holds %lld tokens, fewer than one window of data.seq_len %d "
                 "plus its next token; expected a larger corpus%s or a smaller data.seq_len",
                 ds->corpus.desc, name, (long long)s->n_stream, c->seq_len,
                 s == &ds->split[DATA_VAL] ? ", a larger data.val_fraction" : "");
        return -1;
    }
    int64_t n_win = s->n_stream > W ? (s->n_stream - W) / W : 0;
    s->info.n_units = s->info.n_docs > 0 ? (n_win > 0 ? n_win : 1) : 0;
    return 0;
}

static int build_pad(DataSplitData *s, const Dataset *ds, char *err, size_t n_err)
{
    const DataConfig *c = &ds->cfg;
    int cap = pad_capacity(c, c->seq_len);
    int64_t total = 0, n_pieces = 0;
    for (int64_t i = 0; i < s->info.n_docs; i++) {
        int64_t d = s->docs[i], n = corpus_doc_len(&ds->corpus, d);
        total += n;
        if (n > cap && c->long_docs == LONG_ERROR) {
            char where[700];
            corpus_doc_where(&ds->corpus, d, where, sizeof where);
            snprintf(err, n_err, "%s: document of %lld bytes does not fit data.seq_len %d (%d content tokens "
                     "after BOS/EOS/CLS/SEP) with data.long_docs: error; expected documents of at most %d "
                     "bytes, or long_docs split or truncate", where, (long long)n, c->seq_len, cap, cap);
            return -1;
        }
        n_pieces += n <= cap || c->long_docs == LONG_TRUNCATE ? 1 : (n + cap - 1) / cap;
    }
    s->stream = xcalloc((size_t)total, sizeof *s->stream);
    s->doc_start = xcalloc((size_t)total, 1);
    s->pieces = xcalloc((size_t)n_pieces, sizeof *s->pieces);
    int64_t p = 0;
    for (int64_t i = 0; i < s->info.n_docs; i++) {
        int64_t d = s->docs[i], n = corpus_doc_len(&ds->corpus, d), off = s->n_stream;
        const uint8_t *text = ds->corpus.text + ds->corpus.doc_off[d];
        for (int64_t k = 0; k < n; k++) push_tok(s, text[k], k == 0);
        int64_t keep = c->long_docs == LONG_TRUNCATE && n > cap ? cap : n;
        for (int64_t a = 0; a < keep; a += cap) {
            int64_t len = keep - a < cap ? keep - a : cap;
            DataPiece pc = {off + a, (int32_t)len, a == 0, a + len == n};
            s->pieces[p++] = pc;
            int bos = window_bos(c) || (doc_bos(c) && pc.first);
            s->info.n_tokens += len + bos + (c->eos && pc.last) + 2 * is_bidir(c);
        }
    }
    s->info.n_units = n_pieces;
    return 0;
}

static int check_knobs(const DataConfig *c, char *err, size_t n_err)
{
    int min_T = is_bidir(c) ? 3 : 2;
    if (c->seq_len < min_T) {
        snprintf(err, n_err, "data.seq_len: %d is too short; expected at least %d", c->seq_len, min_T);
        return -1;
    }
    if (c->pack == PACK_PAD && pad_capacity(c, c->seq_len) < 1) {
        snprintf(err, n_err, "data.seq_len: %d leaves no room for text after BOS/EOS/CLS/SEP (pack: pad)", c->seq_len);
        return -1;
    }
    if (c->fixed_token_id >= TOK_VOCAB_SIZE) {
        snprintf(err, n_err, "data.fixed_token.id: token id %d out of range; expected -1 (off) or 0..%d",
                 c->fixed_token_id, TOK_VOCAB_SIZE - 1);
        return -1;
    }
    if (c->fixed_token_id >= 0 && (c->fixed_token_pos < 0 || c->fixed_token_pos >= c->seq_len)) {
        snprintf(err, n_err, "data.fixed_token.position: %d out of range; expected 0..%d (< data.seq_len)",
                 c->fixed_token_pos, c->seq_len - 1);
        return -1;
    }
    if (c->randomize_first < 0 || c->randomize_first > c->seq_len) {
        snprintf(err, n_err, "data.first_tokens.randomize: %d out of range; expected 0..%d (data.seq_len)",
                 c->randomize_first, c->seq_len);
        return -1;
    }
    if (c->prefix_min < 0 || c->prefix_max < c->prefix_min) {
        snprintf(err, n_err, "data.prefix_len: {min: %d, max: %d}; expected 0 <= min <= max",
                 c->prefix_min, c->prefix_max);
        return -1;
    }
    if (!(c->mlm_prob >= 0.0f && c->mlm_prob <= 1.0f) || !(c->val_fraction >= 0.0f && c->val_fraction < 1.0f)) {
        snprintf(err, n_err, "data.mlm_prob / data.val_fraction: expected mlm_prob in [0, 1] and val_fraction in [0, 1)");
        return -1;
    }
    return 0;
}

/* Documents shuffled by split_seed; the first n_val go to validation. */
static int split_docs(Dataset *ds, char *err, size_t n_err)
{
    int64_t n = ds->corpus.n_docs;
    int64_t *order = xcalloc((size_t)n, sizeof *order);
    for (int64_t i = 0; i < n; i++) order[i] = i;
    Rng r;
    rng_seed(&r, rng_derive(ds->cfg.split_seed, 0x5b117));
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)rng_below(&r, (uint64_t)i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    int64_t n_val = (int64_t)(ds->cfg.val_fraction * (double)n + 0.5);
    if (ds->cfg.val_fraction > 0 && n_val == 0) n_val = 1;
    if (n_val >= n) {
        snprintf(err, n_err, "%s: %lld document(s) leave none for training with data.val_fraction %g; "
                 "expected more documents", ds->corpus.desc, (long long)n, (double)ds->cfg.val_fraction);
        free(order);
        return -1;
    }
    DataSplitData *val = &ds->split[DATA_VAL], *train = &ds->split[DATA_TRAIN];
    val->info.n_docs = n_val;
    val->docs = xcalloc((size_t)n_val, sizeof *val->docs);
    memcpy(val->docs, order, (size_t)n_val * sizeof *order);
    train->info.n_docs = n - n_val;
    train->docs = xcalloc((size_t)(n - n_val), sizeof *train->docs);
    memcpy(train->docs, order + n_val, (size_t)(n - n_val) * sizeof *order);
    free(order);
    return 0;
}

/* bigram_backcopy: the source corpus and the chain estimated from it; no splits. */
static Dataset *open_bigram_backcopy(Dataset *ds, char *err, size_t n_err)
{
    DataConfig src = ds->cfg;
    src.corpus = ds->cfg.bb_source;
    if (src.corpus == CORPUS_BIGRAM_BACKCOPY) {
        snprintf(err, n_err, "data.bb.source: expected a text corpus (fortunes, brown, synthetic, files)");
        dataset_free(ds);
        return NULL;
    }
    ds->bb = xcalloc(1, sizeof *ds->bb);
    if (corpus_load(&ds->corpus, &src, err, n_err) || bb_build(ds->bb, &ds->corpus, &ds->cfg, err, n_err)) {
        dataset_free(ds);
        return NULL;
    }
    return ds;
}

Dataset *dataset_open(const DataConfig *cfg, char *err, size_t n_err)
{
    if (check_knobs(cfg, err, n_err)) return NULL;
    Dataset *ds = xcalloc(1, sizeof *ds);
    ds->cfg = *cfg;
    if (cfg->corpus == CORPUS_BIGRAM_BACKCOPY) return open_bigram_backcopy(ds, err, n_err);
    if (corpus_load(&ds->corpus, cfg, err, n_err) || split_docs(ds, err, n_err)) {
        dataset_free(ds);
        return NULL;
    }
    static const char *const names[2] = {"train", "validation"};
    for (int s = 0; s < 2; s++) {
        DataSplitData *sp = &ds->split[s];
        int rc = cfg->pack == PACK_CONCAT ? build_concat(sp, ds, err, n_err, names[s]) : build_pad(sp, ds, err, n_err);
        if (rc) {
            dataset_free(ds);
            return NULL;
        }
    }
    return ds;
}

void dataset_free(Dataset *ds)
{
    if (!ds) return;
    for (int s = 0; s < 2; s++) {
        free(ds->split[s].docs);
        free(ds->split[s].stream);
        free(ds->split[s].doc_start);
        free(ds->split[s].pieces);
    }
    if (ds->bb) bb_free(ds->bb);
    free(ds->bb);
    corpus_free(&ds->corpus);
    free(ds);
}

/* ---- filling rows ---- */

typedef struct {
    int32_t *tok, *tgt, *pos, *doc;
    float *lm;
    int32_t next;      /* the stream token after the row, if has_next */
    int has_next;
} Row;

static void fill_pad_tail(Row *r, int from, int T)
{
    for (int k = from; k < T; k++) {
        r->tok[k] = TOK_PAD;
        r->doc[k] = -1;
    }
}

/* A concat window: [BOS | CLS] stream[start ..] [SEP]; doc ids count document starts. */
static void fill_concat_row(Row *r, const DataConfig *c, const DataSplitData *s, int64_t start, int T)
{
    const int32_t *st = s->stream;
    int i = 0, end = is_bidir(c) ? T - 1 : T;
    if (is_bidir(c)) r->tok[i++] = TOK_CLS;
    else if (window_bos(c) && st[start] != TOK_BOS) r->tok[i++] = TOK_BOS;  /* never two BOS */
    int64_t avail = s->n_stream - start;
    int n = end - i < avail ? end - i : (int)avail;
    memcpy(r->tok + i, st + start, (size_t)n * sizeof *st);
    const uint8_t *ds = s->doc_start + start;
    int32_t d = 0;
    if (i) r->doc[0] = 0;
    r->doc[i] = 0;
    for (int k = 1; k < n; k++) {
        d += ds[k];
        r->doc[i + k] = d;
    }
    fill_pad_tail(r, i + n, end);
    if (is_bidir(c)) {
        r->tok[T - 1] = TOK_SEP;
        r->doc[T - 1] = r->doc[T - 2];
    }
    r->has_next = !is_bidir(c) && n < avail && i + n == T;
    r->next = r->has_next ? st[start + n] : TOK_PAD;
}

/* One padded sequence: [CLS] [BOS] content [EOS] [SEP] PAD ... */
static void fill_pad_row(Row *r, const DataConfig *c, const DataSplitData *s, const DataPiece *p, int T)
{
    int i = 0, len = p->len, cap = pad_capacity(c, T);
    if (len > cap) len = cap > 0 ? cap : 0;   /* only when T != data.seq_len: cut, never overflow */
    if (is_bidir(c)) r->tok[i++] = TOK_CLS;
    if (window_bos(c) || (doc_bos(c) && p->first)) r->tok[i++] = TOK_BOS;
    memcpy(r->tok + i, s->stream + p->off, (size_t)len * sizeof *s->stream);
    i += len;
    if (c->eos && p->last && len == p->len) r->tok[i++] = TOK_EOS;
    if (is_bidir(c)) r->tok[i++] = TOK_SEP;
    for (int k = 0; k < i; k++) r->doc[k] = 0;
    fill_pad_tail(r, i, T);
    r->has_next = 0;
    r->next = TOK_PAD;
}

static void fill_positions(Row *r, int reset, int T)
{
    int32_t p = 0;
    r->pos[0] = 0;
    for (int k = 1; k < T; k++) {
        p = reset && r->doc[k] != r->doc[k - 1] && r->doc[k] >= 0 ? 0 : p + 1;
        r->pos[k] = reset ? p : k;
    }
}

/* Replaces the first n tokens (not PAD) by a uniform byte different from the original, so exactly
 * n tokens change; returns n clipped to T. */
static int randomize_first(Row *r, Rng *rng, int n, int T)
{
    if (n > T) n = T;
    for (int k = 0; k < n; k++) {
        if (r->doc[k] < 0) continue;
        int32_t orig = r->tok[k];
        if (orig >= 0 && orig < 256) {
            int32_t v = (int32_t)rng_below(rng, 255);
            r->tok[k] = v >= orig ? v + 1 : v;
        } else {
            r->tok[k] = (int32_t)rng_below(rng, 256);
        }
    }
    return n;
}

/* Next-token targets; no loss where the target is PAD, unknown, or a randomized token. */
static void causal_targets(Row *r, int n_rand, int fixed_pos, int T)
{
    for (int k = 0; k < T - 1; k++) {
        int32_t t = r->tok[k + 1];
        int noise = k + 1 < n_rand && k + 1 != fixed_pos;
        r->tgt[k] = t;
        r->lm[k] = r->doc[k] >= 0 && t != TOK_PAD && !noise ? 1.0f : 0.0f;
    }
    r->tgt[T - 1] = r->next;
    r->lm[T - 1] = r->has_next && r->doc[T - 1] >= 0 && r->next != TOK_PAD ? 1.0f : 0.0f;
}

/* BERT masking: each byte token is picked with probability p; of those 80% -> MASK, 10% -> a
 * random byte, 10% unchanged; loss only on picked positions, target the original token. */
static void mlm_targets(Row *r, Rng *rng, float p, int T)
{
    for (int k = 0; k < T; k++) {
        int32_t t = r->tok[k];
        r->tgt[k] = t;
        r->lm[k] = 0.0f;
        if (t < 0 || t > 255 || !(rng_uniform(rng) < p)) continue;
        r->lm[k] = 1.0f;
        uint64_t u = rng_below(rng, 10);
        if (u < 8) r->tok[k] = TOK_MASK;
        else if (u == 8) r->tok[k] = (int32_t)rng_below(rng, 256);
    }
}

static int32_t draw_prefix(const DataConfig *c, Rng *rng, int T)
{
    int32_t p = c->prefix_min + (int32_t)rng_below(rng, (uint64_t)(c->prefix_max - c->prefix_min) + 1);
    return p > T ? T : p;
}

/* Where fixed_token goes in this row, -1 if off or the position is PAD (beyond a short padded
 * document: a token there would be invisible anyway). */
static int fixed_position(const Row *r, const DataConfig *c, int T)
{
    int p = c->fixed_token_pos;
    return c->fixed_token_id >= 0 && p >= 0 && p < T && r->doc[p] >= 0 ? p : -1;
}

/* Knobs that act on a filled row, in order: randomize, fixed token, then targets by kind. */
static void finish_row(Row *r, int32_t *prefix_len, const DataConfig *c, Rng *rng, int T, int randomize)
{
    int n_rand = randomize && c->randomize_first > 0 ? randomize_first(r, rng, c->randomize_first, T) : 0;
    int fixed_pos = fixed_position(r, c, T);
    if (fixed_pos >= 0) r->tok[fixed_pos] = c->fixed_token_id;
    fill_positions(r, c->reset_positions, T);
    *prefix_len = 0;
    if (is_bidir(c)) {
        mlm_targets(r, rng, c->mlm_prob, T);
        return;
    }
    causal_targets(r, n_rand, fixed_pos, T);
    if (c->kind == MODEL_PREFIX_LM) {
        *prefix_len = draw_prefix(c, rng, T);
        for (int k = 0; k + 1 < *prefix_len && k < T; k++) r->lm[k] = 0.0f;
    }
}

static void fill_empty_row(Row *r, int T)
{
    fill_pad_tail(r, 0, T);
    for (int k = 0; k < T; k++) {
        r->tgt[k] = TOK_PAD;
        r->pos[k] = k;
        r->lm[k] = 0.0f;
    }
}

static Row row_at(const Batch *b, int i)
{
    size_t o = (size_t)i * (size_t)b->T;
    Row r = {b->tokens + o, b->targets + o, b->positions + o, b->doc_ids + o, b->loss_mask + o, TOK_PAD, 0};
    return r;
}

/* bigram_backcopy rows: sequence k of the split's stream, every position in the loss. */
static void bb_row(const Dataset *ds, uint64_t stream, uint64_t k, int bos, Batch *out, int b)
{
    Row r = row_at(out, b);
    int T = out->T;
    bb_fill_row(ds->bb, rng_derive(stream, k), bos, T, r.tok, r.tgt, out->query_class + (size_t)b * T);
    for (int i = 0; i < T; i++) {
        r.pos[i] = i;
        r.doc[i] = 0;
        r.lm[i] = 1.0f;
    }
    out->prefix_len[b] = 0;
}

void dataset_batch(const Dataset *ds, DataSplit split, uint64_t seed, int64_t step, Batch *out)
{
    const DataConfig *c = &ds->cfg;
    if (ds->bb) {
        uint64_t stream = rng_derive(seed, 0xbb000000ULL + (uint64_t)split);
        for (int b = 0; b < out->B; b++) bb_row(ds, stream, (uint64_t)step * (uint64_t)out->B + (uint64_t)b, 1, out, b);
        return;
    }
    memset(out->query_class, 0, (size_t)out->B * (size_t)out->T);
    const DataSplitData *s = &ds->split[split];
    int T = out->T;
    uint64_t base = rng_derive(seed, 0xda7a0000ULL + (uint64_t)split);
    int W = window_width(c, T);
    int64_t n_units = c->pack == PACK_PAD ? s->info.n_units : (s->n_stream > W ? (s->n_stream - W) / W : 0);
    if (n_units < 1) n_units = 1;
    int64_t slack = s->n_stream - 1 - n_units * (int64_t)W;   /* room for the epoch's phase */
    for (int b = 0; b < out->B; b++) {
        Row r = row_at(out, b);
        if (s->info.n_docs == 0) {
            fill_empty_row(&r, T);
            out->prefix_len[b] = 0;
            continue;
        }
        uint64_t k = (uint64_t)step * (uint64_t)out->B + (uint64_t)b;
        uint64_t key = rng_derive(base, k / (uint64_t)n_units);
        uint64_t unit = perm_index(k % (uint64_t)n_units, (uint64_t)n_units, key);
        if (c->pack == PACK_PAD) {
            fill_pad_row(&r, c, s, &s->pieces[unit], T);
        } else {
            int64_t phase = slack >= 0 ? (int64_t)(mix64(key) % (uint64_t)(slack + 1 < W ? slack + 1 : W)) : 0;
            fill_concat_row(&r, c, s, phase + (int64_t)unit * W, T);
        }
        Rng rng;
        rng_seed(&rng, rng_derive(base ^ 0x0123456789abcdefULL, k));
        finish_row(&r, out->prefix_len + b, c, &rng, T, 1);
    }
}

/* ---- probes ---- */

typedef struct {
    Row *r;
    int n, cap;
} Emit;

static void emit(Emit *e, int32_t tok, int32_t doc)
{
    if (e->n < e->cap) {
        e->r->tok[e->n] = tok;
        e->r->doc[e->n++] = doc;
    } else if (!e->r->has_next) {
        e->r->next = tok;
        e->r->has_next = 1;
    }
}

/* Validation documents from `first` on (wrapping), until the row and its next token are known. */
/* skip: tokens of the first document to pass over (a later probe sequence inside a long
 * document). */
static int fill_probe_row(Row *r, const Dataset *ds, int64_t first, int64_t skip, int T, int bos)
{
    const DataConfig *c = &ds->cfg;
    const DataSplitData *s = &ds->split[DATA_VAL];
    Emit e = {r, 0, is_bidir(c) ? T - 1 : T};
    r->has_next = 0;
    r->next = TOK_PAD;
    if (is_bidir(c)) emit(&e, TOK_CLS, 0);
    else if (bos) emit(&e, TOK_BOS, 0);
    for (int64_t i = 0; i < s->info.n_docs && !r->has_next; i++) {
        int64_t d = s->docs[(first + i) % s->info.n_docs];
        const uint8_t *text = ds->corpus.text + ds->corpus.doc_off[d];
        int32_t id = (int32_t)i;
        if (doc_bos(c) && i > 0) emit(&e, TOK_BOS, id);
        int64_t n = corpus_doc_len(&ds->corpus, d);
        for (int64_t k = i == 0 ? (skip < n ? skip : n) : 0; k < n && !r->has_next; k++)
            emit(&e, text[k], id);
        if (c->eos) emit(&e, TOK_EOS, id);
    }
    if (e.n < e.cap) return -1;
    if (is_bidir(c)) {
        r->tok[T - 1] = TOK_SEP;
        r->doc[T - 1] = r->doc[T - 2];
        r->has_next = 0;
    }
    return 0;
}

int dataset_probe_set(const Dataset *ds, int n_seq, int T, int bos, Batch *out)
{
    const DataConfig *c = &ds->cfg;
    if (n_seq > out->B || T != out->T || T < (is_bidir(c) ? 3 : 2)) return -1;
    if (ds->bb) {
        /* a stream of its own, held out from training and validation by its key */
        uint64_t stream = rng_derive(c->split_seed, 0xbb0be5e7ULL);
        for (int b = 0; b < n_seq; b++) bb_row(ds, stream, (uint64_t)b, bos, out, b);
        return 0;
    }
    memset(out->query_class, 0, (size_t)out->B * (size_t)out->T);
    int64_t n_docs = ds->split[DATA_VAL].info.n_docs;
    if (n_docs < 1) return -1;
    for (int b = 0; b < n_seq; b++) {
        Row r = row_at(out, b);
        /* one sequence per held-out document; with fewer documents than sequences (long
         * documents, e.g. Brown), the next round starts T tokens further into each document */
        int64_t round = b / n_docs;
        if (fill_probe_row(&r, ds, b % n_docs, round * T, T, bos)) return -1;
        int fixed_pos = fixed_position(&r, c, T);
        if (fixed_pos >= 0) r.tok[fixed_pos] = c->fixed_token_id;
        fill_positions(&r, c->reset_positions, T);
        out->prefix_len[b] = 0;
        if (is_bidir(c)) {
            for (int k = 0; k < T; k++) {
                r.tgt[k] = r.tok[k];
                r.lm[k] = 0.0f;
            }
            continue;
        }
        causal_targets(&r, 0, fixed_pos, T);
        if (c->kind == MODEL_PREFIX_LM) {
            /* The midpoint of the training range: deterministic, and typical of training. */
            int32_t p = (c->prefix_min + c->prefix_max) / 2;
            out->prefix_len[b] = p > T ? T : p;
            for (int k = 0; k + 1 < out->prefix_len[b]; k++) r.lm[k] = 0.0f;
        }
    }
    return 0;
}

/* ---- counters ---- */

double dataset_epochs(const Dataset *ds, int64_t train_tokens_seen)
{
    const DataSplitInfo *t = &ds->split[DATA_TRAIN].info;
    double per_epoch = (double)t->n_units * (double)ds->cfg.seq_len;
    return per_epoch > 0 ? (double)train_tokens_seen / per_epoch : 0.0;
}

const DataSplitInfo *dataset_info(const Dataset *ds, DataSplit split) { return &ds->split[split].info; }

void dataset_describe(const Dataset *ds, char *out, size_t cap)
{
    if (ds->bb) {
        bb_describe(ds->bb, ds->corpus.desc, out, cap);
        return;
    }
    const DataSplitInfo *t = &ds->split[DATA_TRAIN].info, *v = &ds->split[DATA_VAL].info;
    snprintf(out, cap, "%s; train %lld docs %lld tokens (%lld sequences/epoch), validation %lld docs %lld tokens",
             ds->corpus.desc, (long long)t->n_docs, (long long)t->n_tokens, (long long)t->n_units,
             (long long)v->n_docs, (long long)v->n_tokens);
}
