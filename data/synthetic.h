/* synthetic.h: a built-in corpus, deterministic from a seed, for unit tests and as a fallback when
 * no real corpus is installed. Documents have learnable structure at three ranges:
 *  - per-document topic: each document draws one of SYNTH_TOPICS topics; nouns, verbs and
 *    adjectives come from that topic's lexicon (pronounceable made-up words, Zipf-like use);
 *  - a small probabilistic grammar: sentences are NP VP "." with number agreement
 *    ("the gobi" -> "vanes", "the gobis" -> "vane") and recursive "of" phrases;
 *  - copying: a document opens with "Title: Adj Name" and closes with "-- Name", and its
 *    sentences mention Name often, so predicting them needs attention back to the start.
 * Lengths vary (mostly 100..500 bytes, a tail of long documents). Uses integer RNG only, so the
 * text is identical on every platform. */
#ifndef SINKLAB_SYNTHETIC_H
#define SINKLAB_SYNTHETIC_H

#include <stdint.h>
#include "data/corpus.h"

#define SYNTH_DEFAULT_DOCS 4000
#define SYNTH_TOPICS 6

/* Appends n_docs documents to c (source name "<synthetic seed=S>"). */
void synthetic_generate(Corpus *c, int n_docs, uint64_t seed);

#endif
