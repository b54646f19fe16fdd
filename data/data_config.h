/* data_config.h: the `data:` section of a run config, as the data pipeline reads it. */
#ifndef SINKLAB_DATA_CONFIG_H
#define SINKLAB_DATA_CONFIG_H

#include <stdint.h>
#include "model/mask.h"

typedef enum { CORPUS_FORTUNES, CORPUS_BROWN, CORPUS_SYNTHETIC, CORPUS_FILES, CORPUS_BIGRAM_BACKCOPY } CorpusKind;
typedef enum { SEP_LINE, SEP_BLANK_LINE, SEP_PERCENT_LINE, SEP_FILE } Separator;
typedef enum { PACK_CONCAT, PACK_PAD } PackMode;
typedef enum { BOS_NONE, BOS_WINDOW_START, BOS_DOC_START, BOS_BOTH } BosMode;
typedef enum { LONG_SPLIT, LONG_TRUNCATE, LONG_ERROR } LongDocs;

#define DATA_MAX_PATHS 16
#define DATA_BB_MAX_TRIGGERS 16
typedef struct {
    CorpusKind corpus;
    int n_paths;
    char paths[DATA_MAX_PATHS][512];   /* files, directories, .gz; fortunes/brown have defaults */
    Separator separator;
    int seq_len;
    PackMode pack;
    BosMode bos;
    int eos;
    int reset_positions;
    LongDocs long_docs;
    uint64_t split_seed;
    float val_fraction;                /* share of documents held out (validation + probes) */
    int prefix_min, prefix_max;        /* prefix-LM: prefix length drawn in [min, max] */
    int randomize_first;               /* first_tokens.randomize: N */
    int fixed_token_id, fixed_token_pos;   /* fixed_token: {id, position}; id < 0 = off */
    float mlm_prob;                    /* 0.15 */
    int synthetic_docs;                /* synthetic corpus size (documents) */
    uint64_t synthetic_seed;
    CorpusKind bb_source;              /* bigram_backcopy: the corpus the chain is estimated from */
    int bb_n_triggers;                 /* bigram_backcopy: the k most frequent bytes trigger (3) */
    int bb_n_explicit;                 /* bigram_backcopy: explicit triggers given (0 = top k) */
    int32_t bb_triggers[DATA_BB_MAX_TRIGGERS];
    ModelKind kind;                    /* copied from model.kind: decides targets/loss mask */
} DataConfig;

#endif
