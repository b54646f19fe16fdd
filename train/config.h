/* config.h: a run's whole configuration, loaded strictly from YAML (libyaml) with --set
 * overrides, validated, and written back fully resolved into the run folder. Key names are a
 * contract (README "Config reference"). Each layer owns its section (keys, defaults, rules:
 * model/model_config.h, data/data_config.h, analysis/probe_config.h, train/train_config.h); this
 * is the generic engine that composes them. */
#ifndef SINKLAB_CONFIG_H
#define SINKLAB_CONFIG_H

#include <stdio.h>
#include <stdint.h>
#include "analysis/probe_config.h"
#include "data/data_config.h"
#include "model/model_config.h"
#include "train/train_config.h"

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
 * expected" in err, one line per independent problem (unknown keys, bad values), so one pass
 * reports them all. */
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

/* The value of one dotted key as config_write prints it (strings unquoted) into out; -1 when the
 * key is unknown. config_key_name(i) is the i-th key of the table, NULL past the end. */
int config_value(const Config *c, const char *key, char *out, size_t n);
const char *config_key_name(size_t i);
/* Whether config_write writes the key under its own name: 0 for aliases and parts of another
 * key (data.path, data.prefix_len.min) and for unknown keys. */
int config_key_written(const char *key);

#endif
