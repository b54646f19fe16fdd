/* data_config.h: the `data:` section of a run config, as the data pipeline reads it. The data
 * layer owns these keys (data_config.c: names, ranges, defaults, documentation) and their rules. */
#ifndef SINKLAB_DATA_CONFIG_H
#define SINKLAB_DATA_CONFIG_H

#include <stdint.h>
#include <stddef.h>

#include "base/keys.h"
#include "base/model_kind.h"

typedef enum { CORPUS_FORTUNES, CORPUS_BROWN, CORPUS_SYNTHETIC, CORPUS_FILES, CORPUS_BIGRAM_BACKCOPY } CorpusKind;
typedef enum { SEP_LINE, SEP_BLANK_LINE, SEP_PERCENT_LINE, SEP_FILE } Separator;
typedef enum { PACK_CONCAT, PACK_PAD } PackMode;
typedef enum { BOS_NONE, BOS_WINDOW_START, BOS_DOC_START, BOS_BOTH } BosMode;
typedef enum { LONG_SPLIT, LONG_TRUNCATE, LONG_ERROR } LongDocs;
/* Config names, indexed by the enums above (NULL-terminated). */
extern const char *const CORPUS_NAMES[];
extern const char *const SEPARATOR_NAMES[];
extern const char *const PACK_MODE_NAMES[];
extern const char *const BOS_MODE_NAMES[];
extern const char *const LONG_DOCS_NAMES[];

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

/* Every data.* key, in the order a resolved config is written. */
extern const KeyTable DATA_KEYS;

void data_config_defaults(DataConfig *d);
/* Fills the values a corpus fixes: bigram_backcopy puts BOS at every window start. */
void data_config_resolve(DataConfig *d);
/* The vocabulary the pipeline emits (the byte tokenizer's ids): model.vocab_size's auto value
 * and its lower bound. */
int data_vocab_size(const DataConfig *d);
/* Every rule on a data config: ranges, prefix-LM prefix lengths, fixed/random first tokens, the
 * paths a corpus needs, and that the token ids fit vocab_size. 0, or -1 with msg. */
int data_config_check(const DataConfig *d, int vocab_size, char *msg, size_t n);

#endif
