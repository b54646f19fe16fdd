/* train_config.c: the train layer's config keys, defaults and rules (train_config.h). */
#include "train/train_config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const OPTSTATE_KEEP_NAMES[] = {[OPTSTATE_LATEST] = "latest", [OPTSTATE_ALL] = "all", NULL};
const char *const OPTIMIZER_NAMES[] = {[OPT_ADAMW] = "adamw", [OPT_SGD] = "sgd", NULL};
const char *const SCHEDULE_NAMES[] = {
    [SCHED_CONSTANT] = "constant", [SCHED_COSINE] = "cosine", [SCHED_LINEAR] = "linear", NULL,
};
const char *const DECAY_GROUPS_NAMES[] = {
    [DECAY_MATRICES] = "matrices", [DECAY_MATRICES_EMBEDDINGS] = "matrices_embeddings",
    [DECAY_ALL_BUT_SINKS] = "all_but_sinks", [DECAY_ALL] = "all", NULL,
};

_Static_assert(sizeof(OptimizerKind) == sizeof(int), "enum size");

#define T_ TrainConfig
static const KeyDef TRAIN_ROWS[] = {
    KEY_INT(T_, "train.steps", steps, 0, KEY_BIG, "optimizer steps"),
    KEY_INT(T_, "train.batch_size", batch_size, 1, KEY_BIG,
            "sequences per micro-batch; derived when tokens_per_step is set; setting it with --set "
            "turns tokens_per_step off"),
    KEY_INT(T_, "train.tokens_per_step", tokens_per_step, 0, KEY_BIG,
            "0 = off; else batch_size = tokens_per_step / (data.seq_len * grad_accum), which must "
            "divide exactly (holds tokens per step fixed across context lengths)"),
    KEY_INT(T_, "train.grad_accum", grad_accum, 1, KEY_BIG,
            "micro-batches accumulated per optimizer step"),
    KEY_ENUM(T_, "train.optimizer", optimizer, OPTIMIZER_NAMES, "optimizer"),
    KEY_FLOAT(T_, "train.lr", lr, 0, INFINITY, KEY_LO_OPEN, "peak learning rate"),
    KEY_FLOAT(T_, "train.min_lr", min_lr, 0, INFINITY, 0,
              "floor of the cosine/linear decay (<= lr)"),
    KEY_INT(T_, "train.warmup_steps", warmup_steps, 0, KEY_BIG,
            "linear warm-up steps from 0 to lr"),
    KEY_ENUM(T_, "train.schedule", schedule, SCHEDULE_NAMES,
             "learning-rate schedule after warm-up"),
    KEY_FLOAT(T_, "train.beta1", beta1, 0, 1, KEY_HI_OPEN, "AdamW beta1"),
    KEY_FLOAT(T_, "train.beta2", beta2, 0, 1, KEY_HI_OPEN, "AdamW beta2"),
    KEY_FLOAT(T_, "train.eps", eps, 0, INFINITY, KEY_LO_OPEN, "AdamW epsilon"),
    KEY_FLOAT(T_, "train.weight_decay", weight_decay, 0, INFINITY, 0,
              "decoupled weight decay (AdamW) / L2 (SGD)"),
    KEY_FLOAT(T_, "train.momentum", momentum, 0, 1, KEY_HI_OPEN, "SGD momentum"),
    KEY_ENUM(T_, "train.decay", decay, DECAY_GROUPS_NAMES,
             "which parameters decay: matrices only, matrices and embeddings, all but learned "
             "sink parameters, or all"),
    KEY_FLOAT(T_, "train.grad_clip", grad_clip, 0, INFINITY, 0, "clip by global norm (0 = off)"),
    KEY_INT(T_, "train.eval_every", eval_every, 0, KEY_BIG,
            "validation loss every N steps (0 = off)"),
    KEY_INT(T_, "train.eval_batches", eval_batches, 1, KEY_BIG, "batches per validation"),
    KEY_U64(T_, "train.seed", seed, "initialisation, data order and masking seed"),
    KEY_INT(T_, "train.threads", threads, 1, 1024,
            "OpenMP threads: a training step runs one batch shard per thread; probes and one-shard "
            "steps split their ops over them (OpenBLAS runs single-threaded). Never changes results"),
    KEY_INT(T_, "train.batch_shards", batch_shards, 0, KEY_BIG,
            "equal parts of a micro-batch (whole sequences) whose gradients are computed in "
            "parallel, one per thread, and summed; must divide batch_size; 0 = auto: 2 when "
            "batch_size is even, else 1. Results depend on it (float sums), not on train.threads"),
    KEY_INT(T_, "train.log_every", log_every, 1, KEY_BIG, "training loss line every N steps"),
    {"train.memory_limit", KT_U64, KEY_OFF(T_, memory_limit), 0, 0, KEY_AUTO, NULL, NULL, NULL, 0,
     NULL, "bytes the run may use; the whole need (parameters, optimizer, arenas, corpus, probe "
     "set) is checked against it before anything is allocated; auto = the machine's available "
     "memory (MemAvailable)"},
};
#undef T_
const KeyTable TRAIN_KEYS = KEY_TABLE(TRAIN_ROWS);

static const KeyDef CHECKPOINT_ROWS[] = {
    KEY_INT(CheckpointConfig, "checkpoint.every", every, 0, KEY_BIG,
            "checkpoint every N steps (0 = only log-spaced ones and the final one)"),
    KEY_BOOL(CheckpointConfig, "checkpoint.log_spaced", log_spaced,
             "also checkpoint at steps 0, 10, 20, 50, 100, 200, 500, 1000, ..."),
    KEY_INT(CheckpointConfig, "checkpoint.keep_last", keep_last, 0, KEY_BIG,
            "keep the newest N regular checkpoints (0 = all; log-spaced ones are always kept)"),
    KEY_ENUM(CheckpointConfig, "checkpoint.optimizer_state", optimizer_state, OPTSTATE_KEEP_NAMES,
             "which checkpoints keep the Adam moments (needed to resume): latest = the newest only "
             "(older ones are rewritten weights-only once a newer one is safely written), all = every one"),
};
const KeyTable CHECKPOINT_KEYS = KEY_TABLE(CHECKPOINT_ROWS);

static const KeyDef OUTPUT_ROWS[] = {
    KEY_STRING(OutputConfig, "output.dir", dir,
               "run folder; empty = runs/NAME, NAME = the config file's name without .yaml"),
    KEY_BOOL(OutputConfig, "output.report", report, "write report.html at the end"),
};
const KeyTable OUTPUT_KEYS = KEY_TABLE(OUTPUT_ROWS);

void train_config_defaults(TrainConfig *t)
{
    memset(t, 0, sizeof *t);
    t->steps = 2000;
    t->batch_size = 16;
    t->grad_accum = 1;
    t->optimizer = OPT_ADAMW;
    t->lr = 1e-3f;
    t->min_lr = 0.0f;
    t->warmup_steps = 100;
    t->schedule = SCHED_COSINE;
    t->beta1 = 0.9f;
    t->beta2 = 0.95f;
    t->eps = 1e-8f;
    t->weight_decay = 0.1f;
    t->momentum = 0.9f;
    t->decay = DECAY_MATRICES;
    t->grad_clip = 1.0f;
    t->eval_every = 100;
    t->eval_batches = 8;
    t->threads = 2;
    t->log_every = 10;
}

void checkpoint_config_defaults(CheckpointConfig *c)
{
    memset(c, 0, sizeof *c);
    c->every = 500;
    c->log_spaced = 1;
}

void output_config_defaults(OutputConfig *o)
{
    memset(o, 0, sizeof *o);
    o->report = 1;
}

int train_config_resolve(TrainConfig *t, int T, char *msg, size_t n)
{
    if (t->tokens_per_step > 0 && T > 0 && t->grad_accum > 0) {
        long long per = (long long)T * t->grad_accum;
        if (t->tokens_per_step % per || t->tokens_per_step < per) {
            snprintf(msg, n, "train.tokens_per_step (%d) must be a positive multiple of "
                     "data.seq_len * train.grad_accum (%d * %d = %lld)", t->tokens_per_step, T,
                     t->grad_accum, per);
            return -1;
        }
        t->batch_size = (int)(t->tokens_per_step / per);
    }
    return 0;
}

int train_config_check(const TrainConfig *t, char *msg, size_t n)
{
    for (size_t i = 0; i < TRAIN_KEYS.n_keys; i++)
        if (key_check_range(&TRAIN_KEYS.keys[i], t, msg, n)) return -1;
    if (t->min_lr > t->lr) {
        snprintf(msg, n, "train.min_lr (%g) is larger than train.lr (%g)", (double)t->min_lr,
                 (double)t->lr);
        return -1;
    }
    if (t->batch_shards > 0 && t->batch_size % t->batch_shards != 0) {
        snprintf(msg, n, "train.batch_shards (%d) must divide train.batch_size (%d)",
                 t->batch_shards, t->batch_size);
        return -1;
    }
    return 0;
}
