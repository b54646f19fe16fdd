/* config.h: a run's whole configuration, loaded strictly from YAML (libyaml) with --set
 * overrides, validated, and written back fully resolved into the run folder. Key names are a
 * contract (README "Config reference"). */
#ifndef SINKLAB_CONFIG_H
#define SINKLAB_CONFIG_H

#include <stdio.h>
#include <stdint.h>
#include "model/transformer.h"
#include "data/data_config.h"

typedef enum { OPT_ADAMW, OPT_SGD } OptimizerKind;
typedef enum { SCHED_CONSTANT, SCHED_COSINE, SCHED_LINEAR } ScheduleKind;
typedef enum { DECAY_MATRICES, DECAY_MATRICES_EMBEDDINGS, DECAY_ALL_BUT_SINKS, DECAY_ALL } DecayGroups;

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
    int log_every;
    uint64_t memory_limit;      /* bytes; 0 = auto (MemAvailable) */
} TrainConfig;

typedef struct {
    int every;                  /* 0 = off */
    int n_seq, seq_len;
    int bos;                    /* -1 = follow the training data's BOS policy */
    int heavy_every;            /* costlier metrics; always at checkpoints */
    float eps[3];               /* sink-rate thresholds: 0.3 0.5 0.8 */
    int perturb_pos;            /* perturbation spread: the perturbed position (default 1) */
    float perturb_scale;        /* noise norm relative to ||h^0|| at that position (0.5) */
    int jacobian_seq;           /* sequences for the Jacobian-norm estimate (8) */
    int jacobian_samples;       /* random projections per estimate (8) */
} ProbeConfig;

#define CKPT_MAX_STEPS 64
typedef struct {
    int every;                  /* 0 = only log-spaced + final */
    int log_spaced;
    int keep_last;              /* 0 = keep all */
} CheckpointConfig;

typedef struct {
    char dir[512];              /* run folder; default runs/<config name> */
    int report;
} OutputConfig;

typedef struct {
    ModelConfig model;
    DataConfig data;
    TrainConfig train;
    ProbeConfig probe;
    CheckpointConfig checkpoint;
    OutputConfig output;
    char source[512];           /* the YAML file it came from ("" for defaults) */
} Config;

/* All defaults (the values the README documents). */
void config_defaults(Config *c);
/* Loads path over the defaults. On error returns -1 with "file:line:col: key: what was
 * expected" in err. */
int config_load(Config *c, const char *path, char *err, size_t n_err);
/* Applies "dotted.key=value" with the same validation (err names the --set argument). */
int config_set(Config *c, const char *assignment, char *err, size_t n_err);
/* Cross-field checks and derived values (sigmoid bias, batch size from tokens_per_step, vocab). */
int config_validate(Config *c, char *err, size_t n_err);
/* The fully resolved config as YAML that config_load reads back to the same Config. */
void config_write(const Config *c, FILE *f);
/* Same, into a malloc'd string (for checkpoints). */
char *config_to_string(const Config *c);
/* Loads from a YAML string (checkpoints); name is used in messages. */
int config_load_string(Config *c, const char *yaml, const char *name, char *err, size_t n_err);

/* Notes on the contract (README "Config reference" is generated from the same key table):
 * - config_load / config_load_string start from config_defaults; on error c is unchanged.
 *   They do NOT validate: apply --set overrides, then call config_validate once.
 * - Before config_validate, "auto" values hold sentinels (model.vocab_size 0,
 *   attention.sigmoid_bias NaN); probe.bos stays -1 (= follow data.bos) after validation.
 * - config_validate fills derived values (data.kind, vocab_size, sigmoid_bias, batch_size from
 *   tokens_per_step) and is idempotent.
 * - config_write then config_load reproduces every field (source aside). */

/* Like config_load but over the current contents of c (e.g. a probe config over a
 * checkpoint's config). On error c is unchanged. */
int config_merge_file(Config *c, const char *path, char *err, size_t n_err);
/* Number of keys whose values differ; the first ones as "key: a vs b; ..." into out. */
int config_diff(const Config *a, const Config *b, char *out, size_t n);
/* output.dir, or runs/<config file name without .yaml> when it is empty. */
void config_run_dir(const Config *c, char *out, size_t n);
/* The config reference as a Markdown table (key, type, default, meaning), for the README. */
void config_write_reference(FILE *f);

#endif
