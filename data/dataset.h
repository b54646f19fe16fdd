/* dataset.h: the data pipeline's contract with the trainer and the probes. A Dataset is a corpus
 * split into train/validation documents (deterministic from data.split_seed alone) and packed
 * into token streams; a batch is a pure function of (dataset, split, seed, step, B, T), so resuming
 * needs only the step. Packing semantics are documented in the README ("Data"). */
#ifndef SINKLAB_DATASET_H
#define SINKLAB_DATASET_H

#include <stddef.h>
#include <stdint.h>
#include "base/batch.h"
#include "data/bigram_backcopy.h"
#include "data/corpus.h"
#include "data/data_config.h"

typedef enum { DATA_TRAIN = 0, DATA_VAL = 1 } DataSplit;

typedef struct {
    int64_t n_docs;       /* documents in the split */
    int64_t n_tokens;     /* tokens as packed: concat stream incl. BOS/EOS; pad: non-PAD tokens */
    int64_t n_units;      /* sequences per epoch at data.seq_len: windows (concat) or padded rows */
} DataSplitInfo;

typedef struct {
    int64_t off;          /* into the split's stream */
    int32_t len;          /* content tokens */
    uint8_t first, last;  /* first / last chunk of its document (BOS / EOS go there) */
} DataPiece;

typedef struct {
    int64_t *docs;        /* corpus document indices, in split order (shuffled by split_seed) */
    int32_t *stream;      /* concat: documents with BOS/EOS as configured; pad: document bytes */
    uint8_t *doc_start;   /* (n_stream) 1 at the first token of each document (its BOS if any) */
    int64_t n_stream;
    DataPiece *pieces;    /* pad: one padded sequence each */
    DataSplitInfo info;
} DataSplitData;

typedef struct {
    DataConfig cfg;
    Corpus corpus;
    DataSplitData split[2];
    BigramBackcopy *bb;   /* corpus bigram_backcopy: the generator (corpus = its source); splits
                             stay empty, batches come from infinite keyed streams */
} Dataset;

/* Loads, splits and packs. NULL on bad input with err naming the file (and line) and what was
 * expected: missing or unreadable file, corrupt gzip, empty corpus, a separator yielding no
 * document, a document longer than seq_len with long_docs: error, out-of-range knobs. */
Dataset *dataset_open(const DataConfig *cfg, char *err, size_t n_err);
void dataset_free(Dataset *ds);

/* Fills out (out->B x out->T, preallocated by batch_alloc) with batch `step` of split; for
 * validation, step is the eval batch index. Sequences are drawn without replacement within an
 * epoch (a keyed permutation of the split's units) and the concat window phase changes per epoch.
 * No allocation. pack: pad rows are built for data.seq_len (a smaller out->T cuts them). An
 * empty split (val_fraction 0) yields all-PAD rows
 * with loss_mask 0. */
void dataset_batch(const Dataset *ds, DataSplit split, uint64_t seed, int64_t step, Batch *out);

/* A fixed probe set: out->B >= n_seq rows of length T (out->T == T) from held-out documents:
 * sequence s starts at the start of validation document s and continues into the following ones
 * (with EOS / doc_start BOS as in training); when there are fewer held-out documents than n_seq,
 * sequence s starts (s / n_docs) * T tokens into document s % n_docs. BOS at position 0 when
 * bos != 0 (T includes it); bidirectional: CLS first, SEP last, no masking. fixed_token applies,
 * randomize does not. Deterministic from split_seed only. Returns 0, or -1 if the validation split
 * is empty or too short to fill a sequence. */
int dataset_probe_set(const Dataset *ds, int n_seq, int T, int bos, Batch *out);

/* Epochs of the training split that train_tokens_seen tokens (B x T per step) amount to. */
double dataset_epochs(const Dataset *ds, int64_t train_tokens_seen);
const DataSplitInfo *dataset_info(const Dataset *ds, DataSplit split);
/* One line for the log: corpus, documents and tokens per split. */
void dataset_describe(const Dataset *ds, char *out, size_t cap);

#endif
