/* bigram_backcopy.h: the Bigram-Backcopy task of Guo et al. 2024 ("Active-Dormant Attention
 * Heads", arXiv 2410.13835), on which one-layer transformers grow an attention sink within
 * seconds of CPU. A sequence is BOS, then bytes from a first-order Markov chain whose transitions
 * are the byte bigram counts of a source corpus plus one (add-one smoothing over the bytes the
 * source uses), except that the byte after a trigger copies the byte before the trigger. The
 * first byte after BOS is drawn from the unigram counts (plus one) of the non-trigger bytes, so a
 * trigger always has a byte before it to copy. Sampling uses integer arithmetic only (cumulative
 * counts and rng_below), so the stream is identical on every platform; it is infinite: row k of
 * a stream is a pure function of (stream key, k). */
#ifndef SINKLAB_BIGRAM_BACKCOPY_H
#define SINKLAB_BIGRAM_BACKCOPY_H

#include <stddef.h>
#include <stdint.h>
#include "data/corpus.h"
#include "data/data_config.h"

/* query_class values the task writes into Batch.query_class. */
enum { BB_CLASS_MARKOV = 0, BB_CLASS_COPY = 1 };

typedef struct {
    uint8_t used[256];            /* byte occurs in the source (the chain's states) */
    uint8_t is_trigger[256];
    int n_used, n_triggers;
    int32_t triggers[DATA_BB_MAX_TRIGGERS];
    uint64_t count[256];          /* unigram counts of the source */
    uint64_t *cum;                /* (256, 256) cumulative smoothed bigram counts of row a */
    uint64_t first_cum[256];      /* cumulative smoothed unigram counts, triggers excluded */
} BigramBackcopy;

/* Estimates the chain from the corpus's bytes (bigrams within documents) and resolves the
 * triggers (cfg->bb_triggers if given, else the cfg->bb_n_triggers most frequent bytes, ties to
 * the smaller byte). Returns -1 with a message naming the key on bad input: an explicit trigger
 * that is not a byte or never occurs in the source, too many triggers for the bytes available. */
int bb_build(BigramBackcopy *bb, const Corpus *src, const DataConfig *cfg, char *err, size_t n_err);
void bb_free(BigramBackcopy *bb);

/* One sequence of T positions: tok[0] = BOS when bos, then the chain; tgt[i] = the token after
 * tok[i] (the chain continues one step past the row); cls[i] = BB_CLASS_COPY where tgt[i] is a
 * copy (tok[i] is a trigger), else BB_CLASS_MARKOV. No allocation. */
void bb_fill_row(const BigramBackcopy *bb, uint64_t row_seed, int bos, int T, int32_t *tok,
                 int32_t *tgt, uint8_t *cls);

/* One line for the log: states, triggers, and the share of positions that are copies. */
void bb_describe(const BigramBackcopy *bb, const char *source_desc, char *out, size_t cap);

#endif
