/* train_config.h: the `train:`, `checkpoint:` and `output:` sections of a run config. The train
 * layer owns these keys (train_config.c: names, ranges, defaults, documentation) and rules. */
#ifndef SINKLAB_TRAIN_CONFIG_H
#define SINKLAB_TRAIN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "base/keys.h"

typedef enum { OPT_ADAMW, OPT_SGD } OptimizerKind;
typedef enum { SCHED_CONSTANT, SCHED_COSINE, SCHED_LINEAR } ScheduleKind;
typedef enum { DECAY_MATRICES, DECAY_MATRICES_EMBEDDINGS, DECAY_ALL_BUT_SINKS, DECAY_ALL } DecayGroups;
/* Which checkpoints keep the optimizer moments: the newest one only, or every one. */
typedef enum { OPTSTATE_LATEST, OPTSTATE_ALL } OptStateKeep;
/* Config names, indexed by the enums above (NULL-terminated). */
extern const char *const OPTIMIZER_NAMES[];
extern const char *const SCHEDULE_NAMES[];
extern const char *const DECAY_GROUPS_NAMES[];
extern const char *const OPTSTATE_KEEP_NAMES[];

typedef struct {
    int steps;
    int batch_size;
    int tokens_per_step;        /* 0 = off; else batch_size = tokens_per_step / seq_len */
    int grad_accum;
    OptimizerKind optimizer;
    float lr, min_lr;           /* min_lr: the cosine floor */
    int warmup_steps;
    ScheduleKind schedule;
    float beta1, beta2, eps, weight_decay, momentum;
    DecayGroups decay;
    float grad_clip;            /* 0 = off */
    int eval_every, eval_batches;
    uint64_t seed;
    int threads;
    int batch_shards;           /* 0 = auto (batch_shards_resolve) */
    int log_every;
    uint64_t memory_limit;      /* bytes; 0 = auto (MemAvailable) */
} TrainConfig;

#define CKPT_MAX_STEPS 64
typedef struct {
    int every;                  /* 0 = only log-spaced + final */
    int log_spaced;
    int keep_last;              /* 0 = keep all */
    OptStateKeep optimizer_state;   /* latest: moments only in the newest checkpoint */
} CheckpointConfig;

typedef struct {
    char dir[512];              /* run folder; default runs/<config name> */
    int report;
} OutputConfig;

extern const KeyTable TRAIN_KEYS, CHECKPOINT_KEYS, OUTPUT_KEYS;

void train_config_defaults(TrainConfig *t);
void checkpoint_config_defaults(CheckpointConfig *c);
void output_config_defaults(OutputConfig *o);
/* batch_size from tokens_per_step at context T: 0, or -1 with msg when it does not divide. */
int train_config_resolve(TrainConfig *t, int T, char *msg, size_t n);
/* Every rule on the train section: 0, or -1 with msg. */
int train_config_check(const TrainConfig *t, char *msg, size_t n);

#endif
