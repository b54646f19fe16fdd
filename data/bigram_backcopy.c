/* bigram_backcopy.c: the Bigram-Backcopy generator (see bigram_backcopy.h). */
#include "data/bigram_backcopy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/check.h"
#include "base/rng.h"
#include "data/tokenizer.h"

/* The k most frequent used bytes, ties to the smaller byte. */
static int top_bytes(int32_t *out, int k, const BigramBackcopy *bb)
{
    uint8_t taken[256] = {0};
    int n = 0;
    for (; n < k; n++) {
        int best = -1;
        for (int a = 0; a < 256; a++)
            if (bb->used[a] && !taken[a] && (best < 0 || bb->count[a] > bb->count[best])) best = a;
        if (best < 0) break;
        taken[best] = 1;
        out[n] = best;
    }
    return n;
}

static int resolve_triggers(BigramBackcopy *bb, const DataConfig *cfg, char *err, size_t n_err)
{
    if (cfg->bb_n_explicit > 0) {
        for (int i = 0; i < cfg->bb_n_explicit; i++) {
            int32_t t = cfg->bb_triggers[i];
            if (t < 0 || t > 255 || !bb->used[t]) {
                snprintf(err, n_err, "data.bb.triggers[%d]: %d %s; expected a byte (0..255) that "
                         "occurs in the source corpus", i, (int)t,
                         t < 0 || t > 255 ? "is not a byte" : "never occurs in the source corpus");
                return -1;
            }
            bb->triggers[i] = t;
        }
        bb->n_triggers = cfg->bb_n_explicit;
    } else {
        bb->n_triggers = top_bytes(bb->triggers, cfg->bb_n_triggers, bb);
    }
    for (int i = 0; i < bb->n_triggers; i++) bb->is_trigger[bb->triggers[i]] = 1;
    int n_trig = 0;
    for (int a = 0; a < 256; a++) n_trig += bb->is_trigger[a];
    /* the first byte is a non-trigger, so at least one must remain */
    if (bb->n_triggers < 1 || n_trig >= bb->n_used) {
        snprintf(err, n_err, "data.bb.n_triggers: %d trigger(s) of the %d bytes the source uses; "
                 "expected at least 1 and fewer than %d", n_trig, bb->n_used, bb->n_used);
        return -1;
    }
    return 0;
}

int bb_build(BigramBackcopy *bb, const Corpus *src, const DataConfig *cfg, char *err, size_t n_err)
{
    memset(bb, 0, sizeof *bb);
    bb->cum = xcalloc(256 * 256, sizeof *bb->cum);
    for (int64_t d = 0; d < src->n_docs; d++) {
        const uint8_t *t = src->text + src->doc_off[d];
        int64_t n = corpus_doc_len(src, d);
        for (int64_t i = 0; i < n; i++) {
            bb->count[t[i]]++;
            /* raw bigram counts first, turned into cumulative sums below */
            if (i + 1 < n) bb->cum[(size_t)t[i] * 256 + t[i + 1]]++;
        }
    }
    for (int a = 0; a < 256; a++) {
        bb->used[a] = bb->count[a] > 0;
        bb->n_used += bb->used[a];
    }
    if (bb->n_used < 2) {
        snprintf(err, n_err, "%s: the source corpus uses %d distinct byte(s); bigram_backcopy needs "
                 "at least 2", src->desc, bb->n_used);
        bb_free(bb);
        return -1;
    }
    if (resolve_triggers(bb, cfg, err, n_err)) {
        bb_free(bb);
        return -1;
    }
    /* add-one smoothing over the used bytes; unused bytes get no mass and are never drawn */
    for (int a = 0; a < 256; a++) {
        uint64_t *row = bb->cum + (size_t)a * 256, acc = 0;
        for (int b = 0; b < 256; b++) {
            acc += bb->used[b] ? row[b] + 1 : 0;
            row[b] = acc;
        }
    }
    uint64_t acc = 0;
    for (int a = 0; a < 256; a++) {
        acc += bb->used[a] && !bb->is_trigger[a] ? bb->count[a] + 1 : 0;
        bb->first_cum[a] = acc;
    }
    return 0;
}

void bb_free(BigramBackcopy *bb)
{
    free(bb->cum);
    bb->cum = NULL;
}

/* The first b with u < cum[b] (cum non-decreasing, u < cum[255]). */
static int32_t draw(const uint64_t *cum, Rng *r)
{
    uint64_t u = rng_below(r, cum[255]);
    int lo = 0, hi = 255;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (u < cum[mid]) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

/* Token at position i of the chain given the two before it (prev2 < 0: none). */
static int32_t next_token(const BigramBackcopy *bb, Rng *r, int32_t prev2, int32_t prev, int *copied)
{
    *copied = 0;
    if (prev < 0 || prev > 255) return draw(bb->first_cum, r);
    if (bb->is_trigger[prev] && prev2 >= 0 && prev2 <= 255) {
        *copied = 1;
        return prev2;
    }
    return draw(bb->cum + (size_t)prev * 256, r);
}

void bb_fill_row(const BigramBackcopy *bb, uint64_t row_seed, int bos, int T, int32_t *tok,
                 int32_t *tgt, uint8_t *cls)
{
    Rng r;
    rng_seed(&r, row_seed);
    int32_t prev2 = -1, prev = -1;
    int i = 0, copied;
    if (bos) {
        tok[i++] = TOK_BOS;
        prev = TOK_BOS;
    }
    /* position i's token is position i-1's target: generate T (+1 past the row) in one walk */
    for (; i <= T; i++) {
        int32_t x = next_token(bb, &r, prev2, prev, &copied);
        if (i < T) tok[i] = x;
        if (i > 0) {
            tgt[i - 1] = x;
            cls[i - 1] = copied ? BB_CLASS_COPY : BB_CLASS_MARKOV;
        }
        prev2 = prev;
        prev = x;
    }
}

static void show_byte(char *out, size_t cap, int32_t b)
{
    int32_t id = b;
    char buf[16];
    tok_decode(&id, 1, buf, sizeof buf);
    if (b == '\n') snprintf(buf, sizeof buf, "\\n");
    snprintf(out, cap, "'%s' (%d)", buf, (int)b);
}

void bb_describe(const BigramBackcopy *bb, const char *source_desc, char *out, size_t cap)
{
    char trig[256] = "", one[32];
    uint64_t total = 0, trig_count = 0;
    for (int a = 0; a < 256; a++) total += bb->count[a];
    for (int i = 0; i < bb->n_triggers; i++) {
        show_byte(one, sizeof one, bb->triggers[i]);
        size_t k = strlen(trig);
        snprintf(trig + k, sizeof trig - k, "%s%s", i ? ", " : "", one);
        trig_count += bb->count[bb->triggers[i]];
    }
    snprintf(out, cap, "bigram_backcopy: Markov chain over the %d bytes of %s (add-one smoothing); "
             "triggers %s (%.1f%% of source bytes); the byte after a trigger copies the byte "
             "before it", bb->n_used, source_desc, trig,
             total ? 100.0 * (double)trig_count / (double)total : 0.0);
}
