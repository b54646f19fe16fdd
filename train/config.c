/* config.c: the run config. One table lists every key (its type, range, default and meaning);
 * loading, --set, writing, diffing and the README reference all walk that table, so a key cannot
 * be parsed but not written, or written but not documented. Loading is strict: every problem
 * names file:line:column and the dotted key. */
#include "train/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "data/tokenizer.h"
#include "train/yaml_depth.h"

/* Enum fields are stored through int pointers: every enum here must be int-sized. */
_Static_assert(sizeof(ModelKind) == sizeof(int), "enum size");
_Static_assert(sizeof(Normalizer) == sizeof(int), "enum size");
_Static_assert(sizeof(CorpusKind) == sizeof(int), "enum size");
_Static_assert(sizeof(OptimizerKind) == sizeof(int), "enum size");

/* ---------------------------------------------------------------- the key table */

typedef enum { KT_INT, KT_U64, KT_FLOAT, KT_BOOL, KT_ENUM, KT_STRING, KT_SPECIAL } KeyType;

enum {
    F_AUTO = 1,       /* accepts `auto` (the sentinel: int 0, float NaN, probe.bos -1) */
    F_NOWRITE = 2,    /* an alias or a part of another key: never written on its own */
    F_LO_OPEN = 4,    /* float range excludes lo */
    F_HI_OPEN = 8,    /* float range excludes hi */
};

typedef struct Ctx Ctx;
typedef struct KeyDef KeyDef;
typedef int (*ParseFn)(Ctx *x, const KeyDef *d, yaml_node_t *v);
typedef void (*FormatFn)(char *out, size_t n, const Config *c);

struct KeyDef {
    const char *key;
    KeyType type;
    size_t off;                 /* offset in Config */
    double lo, hi;              /* inclusive unless F_*_OPEN; INT_MAX / INFINITY = unbounded */
    int flags;
    const char *const *names;   /* KT_ENUM, NULL-terminated; value = index */
    ParseFn parse;              /* KT_SPECIAL */
    FormatFn format;            /* KT_SPECIAL */
    size_t cap;                 /* KT_STRING buffer size */
    const char *type_doc;       /* KT_SPECIAL: the type column of the reference */
    const char *doc;
};

static const char *const N_KIND[] = {"causal", "bidirectional", "prefix_lm", NULL};
static const char *const N_POS[] = {"none", "learned", "sinusoidal", "rope", "alibi", NULL};
static const char *const N_NORM[] = {"layernorm", "rmsnorm", NULL};
static const char *const N_NORMPOS[] = {"post", "pre", NULL};
static const char *const N_MLP[] = {"gelu", "relu", "swiglu", NULL};
static const char *const N_NORMALIZER[] = {"softmax", "softmax1", "scaled", "sigmoid",
                                           "sigmoid_norm", NULL};
static const char *const N_SINK[] = {"none", "logit", "k_bias", "kv_bias", "token", NULL};
static const char *const N_GATE[] = {"none", "elementwise", "headwise", NULL};
static const char *const N_CORPUS[] = {"fortunes", "brown", "synthetic", "files", NULL};
static const char *const N_SEP[] = {"line", "blank_line", "percent_line", "file", NULL};
static const char *const N_PACK[] = {"concat", "pad", NULL};
static const char *const N_BOS[] = {"none", "window_start", "doc_start", "both", NULL};
static const char *const N_LONG[] = {"split", "truncate", "error", NULL};
static const char *const N_OPT[] = {"adamw", "sgd", NULL};
static const char *const N_SCHED[] = {"constant", "cosine", "linear", NULL};
static const char *const N_DECAY[] = {"matrices", "matrices_embeddings", "all_but_sinks", "all",
                                      NULL};
static const char *const N_EDIT[] = {"isolate", "reset", "block_key", NULL};

static int parse_edits(Ctx *x, const KeyDef *d, yaml_node_t *v);
static int parse_paths(Ctx *x, const KeyDef *d, yaml_node_t *v);
static int parse_prefix(Ctx *x, const KeyDef *d, yaml_node_t *v);
static int parse_eps(Ctx *x, const KeyDef *d, yaml_node_t *v);
static int parse_probe_bos(Ctx *x, const KeyDef *d, yaml_node_t *v);
static void format_edits(char *out, size_t n, const Config *c);
static void format_paths(char *out, size_t n, const Config *c);
static void format_prefix(char *out, size_t n, const Config *c);
static void format_eps(char *out, size_t n, const Config *c);
static void format_probe_bos(char *out, size_t n, const Config *c);

#define OFF(field) offsetof(Config, field)
#define BIG INT_MAX
#define INT_(k, f, lo, hi, doc) {k, KT_INT, OFF(f), lo, hi, 0, NULL, NULL, NULL, 0, NULL, doc}
#define U64_(k, f, doc) {k, KT_U64, OFF(f), 0, 0, 0, NULL, NULL, NULL, 0, NULL, doc}
#define FLT_(k, f, lo, hi, fl, doc) {k, KT_FLOAT, OFF(f), lo, hi, fl, NULL, NULL, NULL, 0, NULL, doc}
#define BOOL_(k, f, doc) {k, KT_BOOL, OFF(f), 0, 1, 0, NULL, NULL, NULL, 0, NULL, doc}
#define ENUM_(k, f, names, doc) {k, KT_ENUM, OFF(f), 0, 0, 0, names, NULL, NULL, 0, NULL, doc}
#define STR_(k, f, doc) {k, KT_STRING, OFF(f), 0, 0, 0, NULL, NULL, NULL, sizeof(((Config *)0)->f), NULL, doc}
#define SPEC_(k, fl, p, fm, type, doc) {k, KT_SPECIAL, 0, 0, 0, fl, NULL, p, fm, 0, type, doc}

/* Order = the order of the written config. Sections group contiguously. */
static const KeyDef KEYS[] = {
    ENUM_("model.kind", model.kind, N_KIND,
          "objective and base mask: next-token (causal), masked-LM (bidirectional), or a "
          "bidirectional prefix then next-token (prefix_lm)"),
    INT_("model.n_layer", model.n_layer, 1, 256, "transformer blocks"),
    INT_("model.d_model", model.d_model, 1, 65536, "residual width C"),
    INT_("model.n_head", model.n_head, 1, 1024, "attention heads; head size D = d_model / n_head"),
    INT_("model.d_ff", model.d_ff, 1, 1 << 20, "MLP hidden width"),
    INT_("model.max_seq_len", model.max_seq_len, 1, 1 << 20,
         "positions the model is built for; must be >= data.seq_len and probe.seq_len"),
    {"model.vocab_size", KT_INT, OFF(model.vocab_size), TOK_VOCAB_SIZE, 1 << 24, F_AUTO, NULL, NULL,
     NULL, 0, NULL, "vocabulary size; auto = the byte tokenizer's 262 (256 bytes + 6 specials)"},
    ENUM_("model.pos_encoding", model.pos, N_POS, "positional encoding"),
    FLT_("model.rope_base", model.rope_base, 1, INFINITY, F_LO_OPEN, "RoPE base (theta)"),
    ENUM_("model.norm", model.norm, N_NORM, "normalisation layer"),
    ENUM_("model.norm_position", model.norm_pre, N_NORMPOS,
          "pre-norm (GPT-2, with a final norm) or post-norm (original Transformer/BERT)"),
    ENUM_("model.mlp", model.mlp, N_MLP, "MLP activation"),
    BOOL_("model.bias", model.bias, "biases in linear layers and layernorm"),
    BOOL_("model.tie_embeddings", model.tie_embeddings, "output projection shares the token "
          "embedding"),
    FLT_("model.init_std", model.init_std, 0, INFINITY, F_LO_OPEN,
         "std of the normal initialisation (residual projections get init_std / sqrt(2 n_layer))"),
    ENUM_("model.attention.normalizer", model.attention.normalizer, N_NORMALIZER,
          "how scores become weights: softmax, softmax1 (+1 in the denominator), scaled (softmax "
          "times `scale`), sigmoid (unnormalised), sigmoid_norm (sigmoid / row sum)"),
    FLT_("model.attention.scale", model.attention.scale, 0, INFINITY, F_LO_OPEN,
         "normalizer scaled: rows sum to this (must stay 1 for other normalizers)"),
    FLT_("model.attention.sigmoid_bias", model.attention.sigmoid_bias, -INFINITY, INFINITY, F_AUTO,
         "sigmoid normalizers: b in sigmoid(s + b); auto = -ln(data.seq_len), resolved when the "
         "config is validated"),
    ENUM_("model.attention.sink", model.attention.sink, N_SINK,
          "learned sink: per-head logit in the denominator, a key with zero value (k_bias), a "
          "key and value (kv_bias), or a prepended learned token"),
    ENUM_("model.attention.gate", model.attention.gate, N_GATE,
          "sigmoid output gate on the attention output, per element or per head"),
    INT_("model.mask.window", model.mask.window, 0, BIG,
         "sliding window W (0 = off): causal keys with i - j < W, bidirectional abs(i - j) < W"),
    BOOL_("model.mask.doc_mask", model.mask.doc_mask, "attention stays inside a document"),
    SPEC_("model.mask.edits", 0, parse_edits, format_edits, "list",
          "mask edits, e.g. [{isolate: 17}, {reset: 32}, {block_key: 0}] (at most 16; positions "
          "< data.seq_len)"),

    ENUM_("data.corpus", data.corpus, N_CORPUS, "training text"),
    SPEC_("data.paths", 0, parse_paths, format_paths, "string or list of strings",
          "files, directories or .gz files (at most 16); [] = the corpus's default location "
          "(fortunes: /usr/share/games/fortunes); needed for corpus files. Written as `path` "
          "when there is one"),
    SPEC_("data.path", F_NOWRITE, parse_paths, format_paths, "string or list of strings",
          "alias of data.paths"),
    ENUM_("data.separator", data.separator, N_SEP, "what separates documents in a file"),
    INT_("data.seq_len", data.seq_len, 1, 1 << 20, "training context T (tokens per sequence, "
         "BOS included)"),
    ENUM_("data.pack", data.pack, N_PACK,
          "concat: documents joined with EOS and cut into windows; pad: one document per "
          "sequence, padded"),
    ENUM_("data.bos", data.bos, N_BOS, "where a BOS token is placed"),
    BOOL_("data.eos", data.eos, "EOS after each document"),
    BOOL_("data.reset_positions", data.reset_positions, "position ids restart at each document"),
    ENUM_("data.long_docs", data.long_docs, N_LONG,
          "pack pad: a document longer than seq_len is split, truncated, or an error"),
    U64_("data.split_seed", data.split_seed, "seed of the train/validation document split "
         "(independent of train.seed)"),
    FLT_("data.val_fraction", data.val_fraction, 0, 1, F_LO_OPEN | F_HI_OPEN,
         "share of documents held out for validation and probes"),
    SPEC_("data.prefix_len", 0, parse_prefix, format_prefix, "int or {min, max}",
          "prefix_lm: bidirectional prefix length per sequence, fixed or drawn uniformly in "
          "[min, max]; max < data.seq_len"),
    {"data.prefix_len.min", KT_INT, OFF(data.prefix_min), 0, BIG, F_NOWRITE, NULL, NULL, NULL, 0,
     NULL, "data.prefix_len's lower bound (written as part of data.prefix_len)"},
    {"data.prefix_len.max", KT_INT, OFF(data.prefix_max), 0, BIG, F_NOWRITE, NULL, NULL, NULL, 0,
     NULL, "data.prefix_len's upper bound (written as part of data.prefix_len)"},
    INT_("data.first_tokens.randomize", data.randomize_first, 0, BIG,
         "replace the first N tokens of each sequence with random bytes (0 = off)"),
    INT_("data.fixed_token.id", data.fixed_token_id, -1, BIG,
         "put this token id at data.fixed_token.position in every sequence (-1 = off)"),
    INT_("data.fixed_token.position", data.fixed_token_pos, 0, BIG,
         "where the fixed token goes (< data.seq_len)"),
    FLT_("data.mlm_prob", data.mlm_prob, 0, 1, F_LO_OPEN | F_HI_OPEN,
         "bidirectional: share of tokens masked for the MLM loss"),
    INT_("data.synthetic_docs", data.synthetic_docs, 1, BIG, "corpus synthetic: documents"),
    U64_("data.synthetic_seed", data.synthetic_seed, "corpus synthetic: generator seed"),

    INT_("train.steps", train.steps, 0, BIG, "optimizer steps"),
    INT_("train.batch_size", train.batch_size, 1, BIG,
         "sequences per micro-batch; derived when tokens_per_step is set; setting it with --set "
         "turns tokens_per_step off"),
    INT_("train.tokens_per_step", train.tokens_per_step, 0, BIG,
         "0 = off; else batch_size = tokens_per_step / (data.seq_len * grad_accum), which must "
         "divide exactly (holds tokens per step fixed across context lengths)"),
    INT_("train.grad_accum", train.grad_accum, 1, BIG,
         "micro-batches accumulated per optimizer step"),
    ENUM_("train.optimizer", train.optimizer, N_OPT, "optimizer"),
    FLT_("train.lr", train.lr, 0, INFINITY, F_LO_OPEN, "peak learning rate"),
    FLT_("train.min_lr", train.min_lr, 0, INFINITY, 0,
         "floor of the cosine/linear decay (<= lr)"),
    INT_("train.warmup_steps", train.warmup_steps, 0, BIG, "linear warm-up steps from 0 to lr"),
    ENUM_("train.schedule", train.schedule, N_SCHED, "learning-rate schedule after warm-up"),
    FLT_("train.beta1", train.beta1, 0, 1, F_HI_OPEN, "AdamW beta1"),
    FLT_("train.beta2", train.beta2, 0, 1, F_HI_OPEN, "AdamW beta2"),
    FLT_("train.eps", train.eps, 0, INFINITY, F_LO_OPEN, "AdamW epsilon"),
    FLT_("train.weight_decay", train.weight_decay, 0, INFINITY, 0,
         "decoupled weight decay (AdamW) / L2 (SGD)"),
    FLT_("train.momentum", train.momentum, 0, 1, F_HI_OPEN, "SGD momentum"),
    ENUM_("train.decay", train.decay, N_DECAY,
          "which parameters decay: matrices only, matrices and embeddings, all but learned "
          "sink parameters, or all"),
    FLT_("train.grad_clip", train.grad_clip, 0, INFINITY, 0, "clip by global norm (0 = off)"),
    INT_("train.eval_every", train.eval_every, 0, BIG, "validation loss every N steps (0 = off)"),
    INT_("train.eval_batches", train.eval_batches, 1, BIG, "batches per validation"),
    U64_("train.seed", train.seed, "initialisation, data order and masking seed"),
    INT_("train.threads", train.threads, 1, 1024, "OpenBLAS and OpenMP threads"),
    INT_("train.log_every", train.log_every, 1, BIG, "training loss line every N steps"),
    {"train.memory_limit", KT_U64, OFF(train.memory_limit), 0, 0, F_AUTO, NULL, NULL, NULL, 0, NULL,
     "bytes the run may use, checked before anything is allocated (README \"Reliability\"); "
     "auto = MemAvailable in /proc/meminfo"},

    INT_("probe.every", probe.every, 0, BIG, "sink probe every N steps (0 = off); the default gives 50 probe points over the default 2000 steps"),
    INT_("probe.n_seq", probe.n_seq, 1, BIG, "held-out probe sequences"),
    INT_("probe.seq_len", probe.seq_len, 1, 1 << 20, "probe sequence length (<= max_seq_len)"),
    SPEC_("probe.bos", F_AUTO, parse_probe_bos, format_probe_bos, "auto or bool",
          "BOS at position 0 of probe sequences; auto = follow the training data (data.bos)"),
    INT_("probe.heavy_every", probe.heavy_every, 0, BIG,
         "costlier metrics (eigenspectra, perturbation spread) every N steps; 0 = only at "
         "checkpoints (always done there)"),
    SPEC_("probe.eps", 0, parse_eps, format_eps, "list of 3 numbers",
          "sink-rate thresholds, each in (0, 1)"),
    INT_("probe.perturb_pos", probe.perturb_pos, 0, BIG,
         "perturbation spread: the perturbed position (< probe.seq_len)"),
    FLT_("probe.perturb_scale", probe.perturb_scale, 0, INFINITY, F_LO_OPEN,
         "perturbation spread: noise norm relative to the norm of h^0 at that position"),
    INT_("probe.jacobian_seq", probe.jacobian_seq, 1, BIG,
         "sequences for the Jacobian-norm estimate"),
    INT_("probe.jacobian_samples", probe.jacobian_samples, 1, BIG,
         "random projections per Jacobian-norm estimate"),

    INT_("checkpoint.every", checkpoint.every, 0, BIG,
         "checkpoint every N steps (0 = only log-spaced ones and the final one)"),
    BOOL_("checkpoint.log_spaced", checkpoint.log_spaced,
          "also checkpoint at steps 0, 10, 20, 50, 100, 200, 500, 1000, ..."),
    INT_("checkpoint.keep_last", checkpoint.keep_last, 0, BIG,
         "keep the newest N regular checkpoints (0 = all; log-spaced ones are always kept)"),

    STR_("output.dir", output.dir, "run folder; empty = runs/NAME, NAME = the config file's name "
         "without .yaml"),
    BOOL_("output.report", output.report, "write report.html at the end"),
};
#define N_KEYS (sizeof KEYS / sizeof KEYS[0])

static const char *const SECTIONS[] = {
    "model", "model.attention", "model.mask", "data", "data.prefix_len", "data.first_tokens",
    "data.fixed_token", "train", "probe", "checkpoint", "output", NULL};

static const KeyDef *find_key(const char *key)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (!strcmp(KEYS[i].key, key)) return &KEYS[i];
    return NULL;
}

static int is_section(const char *key)
{
    for (int i = 0; SECTIONS[i]; i++)
        if (!strcmp(SECTIONS[i], key)) return 1;
    return 0;
}

/* ---------------------------------------------------------------- defaults */

void config_defaults(Config *c)
{
    /* Zero first so unused array slots and padding compare equal after a round trip. */
    memset(c, 0, sizeof *c);
    ModelConfig *m = &c->model;
    m->kind = MODEL_CAUSAL;
    m->n_layer = 4;
    m->d_model = 128;
    m->n_head = 4;
    m->d_ff = 512;
    m->vocab_size = 0;                     /* auto */
    m->max_seq_len = 256;
    m->pos = POS_LEARNED;
    m->rope_base = 10000.0f;
    m->norm = NORM_LAYERNORM;
    m->norm_pre = 1;
    m->mlp = MLP_GELU;
    m->bias = 1;
    m->tie_embeddings = 1;
    m->init_std = 0.02f;
    m->attention.normalizer = ATTN_SOFTMAX;
    m->attention.scale = 1.0f;
    m->attention.sigmoid_bias = NAN;       /* auto */
    m->attention.sink = SINK_NONE;
    m->attention.gate = GATE_NONE;

    DataConfig *d = &c->data;
    d->corpus = CORPUS_FORTUNES;
    d->separator = SEP_PERCENT_LINE;
    d->seq_len = 256;
    d->pack = PACK_CONCAT;
    d->bos = BOS_NONE;
    d->eos = 1;
    d->long_docs = LONG_SPLIT;
    d->val_fraction = 0.05f;
    d->prefix_min = d->prefix_max = 16;
    d->fixed_token_id = -1;
    d->mlm_prob = 0.15f;
    d->synthetic_docs = 2000;
    d->kind = MODEL_CAUSAL;

    TrainConfig *t = &c->train;
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

    c->probe.every = 40;   /* 50 probe points over the default 2000 steps */
    c->probe.n_seq = 100;
    c->probe.seq_len = 64;
    c->probe.bos = -1;
    c->probe.eps[0] = 0.3f;
    c->probe.eps[1] = 0.5f;
    c->probe.eps[2] = 0.8f;
    c->probe.perturb_pos = 1;
    c->probe.perturb_scale = 0.5f;
    c->probe.jacobian_seq = 8;
    c->probe.jacobian_samples = 8;

    c->checkpoint.every = 500;
    c->checkpoint.log_spaced = 1;
    c->output.report = 1;
}

/* ---------------------------------------------------------------- errors and helpers */

struct Ctx {
    Config *c;
    yaml_document_t *doc;
    const char *name;        /* file name for file:line:col, or NULL */
    const char *set_arg;     /* the --set argument, or NULL */
    char *err;
    size_t n_err;
    int seen_batch, seen_tps, seen_path;
    yaml_mark_t batch_mark;
};

static void err_at(Ctx *x, const yaml_node_t *node, const char *key, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!x->err || !x->n_err) return;
    if (x->set_arg)
        snprintf(x->err, x->n_err, "--set %s: %s: %s", x->set_arg, key, msg);
    else
        snprintf(x->err, x->n_err, "%s:%zu:%zu: %s: %s", x->name,
                 node ? node->start_mark.line + 1 : 1, node ? node->start_mark.column + 1 : 1,
                 key, msg);
}

static void set_err(char *err, size_t n_err, const char *fmt, ...)
{
    if (!err || !n_err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n_err, fmt, ap);
    va_end(ap);
}

static int is_null(const yaml_node_t *v)
{
    if (v->type != YAML_SCALAR_NODE || v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *s = (const char *)v->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* How a node looks in a message: 'text' for scalars, else its kind. */
static const char *shown(const yaml_node_t *v, char *buf, size_t n)
{
    if (v->type == YAML_MAPPING_NODE) return "a mapping";
    if (v->type == YAML_SEQUENCE_NODE) return "a list";
    if (is_null(v)) return "nothing";
    snprintf(buf, n, "'%.200s'", (const char *)v->data.scalar.value);
    return buf;
}

/* Optimal string alignment distance (a transposition counts 1): n_haed -> n_head is 1. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    int d[64][64];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

static const char *last_part(const char *key)
{
    const char *dot = strrchr(key, '.');
    return dot ? dot + 1 : key;
}

/* The closest known key or section, or NULL when nothing is close. */
static const char *suggest_key(const char *key)
{
    const char *best = NULL;
    int best_d = 99;
    for (size_t i = 0; i < N_KEYS; i++) {
        int dist = edit_distance(key, KEYS[i].key);
        if (dist < best_d) { best_d = dist; best = KEYS[i].key; }
    }
    for (int i = 0; SECTIONS[i]; i++) {
        int dist = edit_distance(key, SECTIONS[i]);
        if (dist < best_d) { best_d = dist; best = SECTIONS[i]; }
    }
    int limit = (int)strlen(last_part(key)) / 3;
    if (limit < 2) limit = 2;
    if (best_d <= limit) return best;
    /* Right name in the wrong section (train.seq_len -> data.seq_len). */
    for (size_t i = 0; i < N_KEYS; i++)
        if (!strcmp(last_part(KEYS[i].key), last_part(key)))
            return KEYS[i].key;
    return NULL;
}

static int unknown_key(Ctx *x, const yaml_node_t *node, const char *key)
{
    const char *s = suggest_key(key);
    if (s)
        err_at(x, node, key, "unknown key (did you mean %s?)", s);
    else
        err_at(x, node, key, "unknown key (see the config reference in the README)");
    return -1;
}

/* ---------------------------------------------------------------- scalar parsing */

static const char *scalar(const yaml_node_t *v)
{
    return v->type == YAML_SCALAR_NODE && !is_null(v) ? (const char *)v->data.scalar.value : NULL;
}

static int parse_ll(const char *s, long long *out)
{
    if (!s || !(isdigit((unsigned char)s[0]) || ((s[0] == '-' || s[0] == '+') &&
                                                 isdigit((unsigned char)s[1]))))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    if (!s || !*s || isspace((unsigned char)s[0])) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (!s) return -1;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) { *out = 1; return 0; }
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) { *out = 0; return 0; }
    return -1;
}

static void describe_int(char *out, size_t n, double lo, double hi, int flags)
{
    const char *a = (flags & F_AUTO) ? " or auto" : "";
    if (hi >= BIG && lo == 1) snprintf(out, n, "a positive integer%s", a);
    else if (hi >= BIG && lo == 0) snprintf(out, n, "a non-negative integer%s", a);
    else if (hi >= BIG) snprintf(out, n, "an integer >= %.0f%s", lo, a);
    else if (lo == 1) snprintf(out, n, "a positive integer (at most %.0f)%s", hi, a);
    else snprintf(out, n, "an integer in [%.0f, %.0f]%s", lo, hi, a);
}

static void describe_float(char *out, size_t n, double lo, double hi, int flags)
{
    const char *a = (flags & F_AUTO) ? " or auto" : "";
    if (isinf(lo) && isinf(hi)) snprintf(out, n, "a number%s", a);
    else if (isinf(hi) && lo == 0) snprintf(out, n, "a %s number%s",
                                            (flags & F_LO_OPEN) ? "positive" : "non-negative", a);
    else if (isinf(hi)) snprintf(out, n, "a number %s %g%s", (flags & F_LO_OPEN) ? ">" : ">=", lo, a);
    else snprintf(out, n, "a number in %c%g, %g%c%s", (flags & F_LO_OPEN) ? '(' : '[', lo, hi,
                  (flags & F_HI_OPEN) ? ')' : ']', a);
}

static void describe_enum(char *out, size_t n, const char *const *names)
{
    size_t k = 0;
    out[0] = 0;
    for (int i = 0; names[i] && k < n; i++)
        k += (size_t)snprintf(out + k, n - k, "%s%s", i ? ", " : "", names[i]);
}

static int is_auto(const yaml_node_t *v, const KeyDef *d)
{
    const char *s = scalar(v);
    return (d->flags & F_AUTO) && s && !strcmp(s, "auto");
}

static int parse_int_node(Ctx *x, const char *key, yaml_node_t *v, double lo, double hi, int flags,
                          int *out)
{
    long long val;
    if (parse_ll(scalar(v), &val) || val < lo || val > hi) {
        char want[128], buf[256];
        describe_int(want, sizeof want, lo, hi, flags);
        err_at(x, v, key, "expected %s, got %s", want, shown(v, buf, sizeof buf));
        return -1;
    }
    *out = (int)val;
    return 0;
}

static int parse_float_node(Ctx *x, const char *key, yaml_node_t *v, double lo, double hi,
                            int flags, float *out)
{
    double val;
    int ok = !parse_double(scalar(v), &val);
    if (ok) ok = (flags & F_LO_OPEN) ? val > lo : val >= lo;
    if (ok) ok = (flags & F_HI_OPEN) ? val < hi : val <= hi;
    if (ok) ok = isfinite((float)val);
    if (!ok) {
        char want[128], buf[256];
        describe_float(want, sizeof want, lo, hi, flags);
        err_at(x, v, key, "expected %s, got %s", want, shown(v, buf, sizeof buf));
        return -1;
    }
    *out = strtof(scalar(v), NULL);
    return 0;
}

static int apply(Ctx *x, const KeyDef *d, yaml_node_t *v)
{
    void *p = (char *)x->c + d->off;
    char buf[256], want[512];
    if (d->type == KT_SPECIAL) return d->parse(x, d, v);
    if (is_auto(v, d)) {
        if (d->type == KT_INT) *(int *)p = 0;
        else if (d->type == KT_U64) *(uint64_t *)p = 0;
        else *(float *)p = NAN;
        return 0;
    }
    switch (d->type) {
    case KT_INT:
        return parse_int_node(x, d->key, v, d->lo, d->hi, d->flags, (int *)p);
    case KT_FLOAT:
        return parse_float_node(x, d->key, v, d->lo, d->hi, d->flags, (float *)p);
    case KT_U64: {
        const char *s = scalar(v);
        char *end;
        errno = 0;
        unsigned long long val = s && isdigit((unsigned char)s[0]) ? strtoull(s, &end, 10) : 0;
        if (!s || !isdigit((unsigned char)s[0]) || *end || errno) {
            err_at(x, v, d->key, "expected a non-negative integer (64-bit), got %s",
                   shown(v, buf, sizeof buf));
            return -1;
        }
        *(uint64_t *)p = (uint64_t)val;
        return 0;
    }
    case KT_BOOL:
        if (parse_bool(scalar(v), (int *)p)) {
            err_at(x, v, d->key, "expected true or false, got %s", shown(v, buf, sizeof buf));
            return -1;
        }
        return 0;
    case KT_ENUM: {
        const char *s = scalar(v);
        for (int i = 0; s && d->names[i]; i++)
            if (!strcmp(s, d->names[i])) { *(int *)p = i; return 0; }
        describe_enum(want, sizeof want, d->names);
        const char *close = NULL;
        for (int i = 0; s && d->names[i]; i++)
            if (edit_distance(s, d->names[i]) <= 2) { close = d->names[i]; break; }
        if (close)
            err_at(x, v, d->key, "expected one of %s; got %s (did you mean %s?)", want,
                   shown(v, buf, sizeof buf), close);
        else
            err_at(x, v, d->key, "expected one of %s; got %s", want, shown(v, buf, sizeof buf));
        return -1;
    }
    case KT_STRING: {
        if (v->type != YAML_SCALAR_NODE) {
            err_at(x, v, d->key, "expected a string, got %s", shown(v, buf, sizeof buf));
            return -1;
        }
        const char *s = is_null(v) ? "" : (const char *)v->data.scalar.value;
        if (strlen(s) >= d->cap) {
            err_at(x, v, d->key, "longer than %zu characters", d->cap - 1);
            return -1;
        }
        strncpy((char *)p, s, d->cap);   /* zero-fills the rest: round trips compare equal */
        return 0;
    }
    default:
        return -1;
    }
}

/* ---------------------------------------------------------------- special keys */

static int parse_edits(Ctx *x, const KeyDef *d, yaml_node_t *v)
{
    MaskSpec *m = &x->c->model.mask;
    char buf[256], key[64], want[128];
    if (is_null(v)) {
        m->n_edits = 0;
        memset(m->edits, 0, sizeof m->edits);
        return 0;
    }
    if (v->type != YAML_SEQUENCE_NODE) {
        err_at(x, v, d->key, "expected a list such as [{isolate: 17}, {reset: 32}], got %s",
               shown(v, buf, sizeof buf));
        return -1;
    }
    MaskEdit edits[MASK_MAX_EDITS];
    memset(edits, 0, sizeof edits);
    int n = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, n++) {
        yaml_node_t *e = yaml_document_get_node(x->doc, *it);
        snprintf(key, sizeof key, "%s[%d]", d->key, n);
        if (n >= MASK_MAX_EDITS) {
            err_at(x, e, key, "at most %d edits", MASK_MAX_EDITS);
            return -1;
        }
        if (e->type != YAML_MAPPING_NODE ||
            e->data.mapping.pairs.top - e->data.mapping.pairs.start != 1) {
            err_at(x, e, key, "expected one {isolate|reset|block_key: position}, got %s",
                   e->type == YAML_MAPPING_NODE ? "a mapping with several keys"
                                                : shown(e, buf, sizeof buf));
            return -1;
        }
        yaml_node_t *k = yaml_document_get_node(x->doc, e->data.mapping.pairs.start->key);
        yaml_node_t *val = yaml_document_get_node(x->doc, e->data.mapping.pairs.start->value);
        const char *ks = scalar(k);
        int kind = -1;
        for (int i = 0; ks && N_EDIT[i]; i++)
            if (!strcmp(ks, N_EDIT[i])) kind = i;
        if (kind < 0) {
            describe_enum(want, sizeof want, N_EDIT);
            const char *close = NULL;
            for (int i = 0; ks && N_EDIT[i]; i++)
                if (edit_distance(ks, N_EDIT[i]) <= 2) close = N_EDIT[i];
            err_at(x, k, key, "unknown edit %s (expected one of %s)%s%s%s",
                   shown(k, buf, sizeof buf), want, close ? " (did you mean " : "",
                   close ? close : "", close ? "?)" : "");
            return -1;
        }
        edits[n].kind = (MaskEditKind)kind;
        if (parse_int_node(x, key, val, 0, BIG, 0, &edits[n].pos)) return -1;
    }
    m->n_edits = n;
    memcpy(m->edits, edits, sizeof edits);
    return 0;
}

static int set_path(Ctx *x, const char *key, yaml_node_t *v, char *dst)
{
    char buf[256];
    const char *s = scalar(v);
    if (!s || !*s) {
        err_at(x, v, key, "expected a path, got %s", shown(v, buf, sizeof buf));
        return -1;
    }
    if (strlen(s) >= sizeof x->c->data.paths[0]) {
        err_at(x, v, key, "path longer than %zu characters", sizeof x->c->data.paths[0] - 1);
        return -1;
    }
    strncpy(dst, s, sizeof x->c->data.paths[0]);
    return 0;
}

static int parse_paths(Ctx *x, const KeyDef *d, yaml_node_t *v)
{
    DataConfig *dc = &x->c->data;
    char paths[DATA_MAX_PATHS][sizeof dc->paths[0]];
    char key[64];
    int n = 0;
    memset(paths, 0, sizeof paths);
    if (v->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++, n++) {
            yaml_node_t *e = yaml_document_get_node(x->doc, *it);
            snprintf(key, sizeof key, "%s[%d]", d->key, n);
            if (n >= DATA_MAX_PATHS) {
                err_at(x, e, key, "at most %d paths", DATA_MAX_PATHS);
                return -1;
            }
            if (set_path(x, key, e, paths[n])) return -1;
        }
    } else if (!is_null(v)) {
        if (set_path(x, d->key, v, paths[0])) return -1;
        n = 1;
    }
    dc->n_paths = n;
    memcpy(dc->paths, paths, sizeof paths);
    return 0;
}

static int parse_prefix(Ctx *x, const KeyDef *d, yaml_node_t *v)
{
    int p;
    if (v->type != YAML_SCALAR_NODE) {
        char buf[256];
        err_at(x, v, d->key, "expected a non-negative integer or {min, max}, got %s",
               shown(v, buf, sizeof buf));
        return -1;
    }
    if (parse_int_node(x, d->key, v, 0, BIG, 0, &p)) return -1;
    x->c->data.prefix_min = x->c->data.prefix_max = p;
    return 0;
}

static int parse_eps(Ctx *x, const KeyDef *d, yaml_node_t *v)
{
    char buf[256], key[64];
    float eps[3];
    int n = 0;
    if (v->type != YAML_SEQUENCE_NODE ||
        v->data.sequence.items.top - v->data.sequence.items.start != 3) {
        err_at(x, v, d->key, "expected a list of 3 thresholds such as [0.3, 0.5, 0.8], got %s",
               shown(v, buf, sizeof buf));
        return -1;
    }
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, n++) {
        snprintf(key, sizeof key, "%s[%d]", d->key, n);
        if (parse_float_node(x, key, yaml_document_get_node(x->doc, *it), 0, 1,
                             F_LO_OPEN | F_HI_OPEN, &eps[n]))
            return -1;
    }
    memcpy(x->c->probe.eps, eps, sizeof eps);
    return 0;
}

static int parse_probe_bos(Ctx *x, const KeyDef *d, yaml_node_t *v)
{
    char buf[256];
    if (is_auto(v, d)) {
        x->c->probe.bos = -1;
        return 0;
    }
    if (parse_bool(scalar(v), &x->c->probe.bos)) {
        err_at(x, v, d->key, "expected auto, true or false, got %s", shown(v, buf, sizeof buf));
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- formatting values */

/* The shortest text that reads back to the same float, in a form YAML 1.1 readers (PyYAML)
 * also take for a float: 1.0e-08, never 1e-08. */
static void fmt_float(char *out, size_t n, float f)
{
    if (isnan(f)) {
        snprintf(out, n, "auto");
        return;
    }
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(out, n, "%.*g", prec, (double)f);
        if (strtof(out, NULL) == f) break;
    }
    /* Integral values read better in full: 10000.0, not 1e+04. */
    if (strchr(out, 'e') && fabsf(f) < 1e9f && f == truncf(f)) snprintf(out, n, "%.0f", (double)f);
    char *e = strchr(out, 'e');
    if (!e && !strchr(out, '.') && strlen(out) + 3 < n) strcat(out, ".0");
    if (e && !strchr(out, '.') && strlen(out) + 3 < n) {
        memmove(e + 2, e, strlen(e) + 1);
        e[0] = '.';
        e[1] = '0';
    }
}

static void fmt_string(char *out, size_t n, const char *s)
{
    size_t k = 0;
    if (n < 3) return;
    out[k++] = '"';
    for (; *s && k + 6 < n; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') { out[k++] = '\\'; out[k++] = (char)ch; }
        else if (ch == '\n') { out[k++] = '\\'; out[k++] = 'n'; }
        else if (ch == '\t') { out[k++] = '\\'; out[k++] = 't'; }
        else if (ch < 0x20 || ch == 0x7f) k += (size_t)snprintf(out + k, n - k, "\\x%02x", ch);
        else out[k++] = (char)ch;
    }
    out[k++] = '"';
    out[k] = 0;
}

static void format_edits(char *out, size_t n, const Config *c)
{
    const MaskSpec *m = &c->model.mask;
    size_t k = (size_t)snprintf(out, n, "[");
    for (int i = 0; i < m->n_edits && k < n; i++) {
        int kind = (int)m->edits[i].kind;
        k += (size_t)snprintf(out + k, n - k, "%s{%s: %d}", i ? ", " : "",
                              kind >= 0 && kind < 3 ? N_EDIT[kind] : "?", m->edits[i].pos);
    }
    if (k < n) snprintf(out + k, n - k, "]");
}

static void format_paths(char *out, size_t n, const Config *c)
{
    size_t k = (size_t)snprintf(out, n, "[");
    char buf[1100];
    for (int i = 0; i < c->data.n_paths && k < n; i++) {
        fmt_string(buf, sizeof buf, c->data.paths[i]);
        k += (size_t)snprintf(out + k, n - k, "%s%s", i ? ", " : "", buf);
    }
    if (k < n) snprintf(out + k, n - k, "]");
}

static void format_prefix(char *out, size_t n, const Config *c)
{
    if (c->data.prefix_min == c->data.prefix_max)
        snprintf(out, n, "%d", c->data.prefix_min);
    else
        snprintf(out, n, "{min: %d, max: %d}", c->data.prefix_min, c->data.prefix_max);
}

static void format_eps(char *out, size_t n, const Config *c)
{
    char a[32], b[32], e[32];
    fmt_float(a, sizeof a, c->probe.eps[0]);
    fmt_float(b, sizeof b, c->probe.eps[1]);
    fmt_float(e, sizeof e, c->probe.eps[2]);
    snprintf(out, n, "[%s, %s, %s]", a, b, e);
}

static void format_probe_bos(char *out, size_t n, const Config *c)
{
    snprintf(out, n, "%s", c->probe.bos < 0 ? "auto" : c->probe.bos ? "true" : "false");
}

static void fmt_value(char *out, size_t n, const KeyDef *d, const Config *c)
{
    const void *p = (const char *)c + d->off;
    switch (d->type) {
    case KT_INT:
        if ((d->flags & F_AUTO) && *(const int *)p == 0) snprintf(out, n, "auto");
        else snprintf(out, n, "%d", *(const int *)p);
        break;
    case KT_U64:
        if ((d->flags & F_AUTO) && *(const uint64_t *)p == 0) snprintf(out, n, "auto");
        else snprintf(out, n, "%" PRIu64, *(const uint64_t *)p);
        break;
    case KT_FLOAT: fmt_float(out, n, *(const float *)p); break;
    case KT_BOOL: snprintf(out, n, "%s", *(const int *)p ? "true" : "false"); break;
    case KT_ENUM: {
        int v = *(const int *)p, count = 0;
        while (d->names[count]) count++;
        snprintf(out, n, "%s", v >= 0 && v < count ? d->names[v] : "invalid");
        break;
    }
    case KT_STRING: fmt_string(out, n, (const char *)p); break;
    case KT_SPECIAL: d->format(out, n, c); break;
    }
}

/* ---------------------------------------------------------------- loading */

static int walk_map(Ctx *x, const char *prefix, yaml_node_t *map);

static int apply_key(Ctx *x, const char *full, yaml_node_t *knode, yaml_node_t *v)
{
    const KeyDef *d = find_key(full);
    int sec = is_section(full);
    char buf[256];
    if (sec && v->type == YAML_MAPPING_NODE) return walk_map(x, full, v);
    if (d) {
        if (apply(x, d, v)) return -1;
        if (!strcmp(full, "train.batch_size")) {
            x->seen_batch = 1;
            x->batch_mark = v->start_mark;
            /* An explicit batch size on the command line replaces tokens_per_step. */
            if (x->set_arg) x->c->train.tokens_per_step = 0;
        }
        if (!strcmp(full, "train.tokens_per_step")) x->seen_tps = 1;
        if (!strcmp(full, "data.path") || !strcmp(full, "data.paths")) {
            if (x->seen_path++) {
                err_at(x, knode, full, "data.path and data.paths are the same key; give one");
                return -1;
            }
        }
        return 0;
    }
    if (sec) {
        if (is_null(v)) return 0;
        err_at(x, v, full, "expected a mapping of keys, got %s", shown(v, buf, sizeof buf));
        return -1;
    }
    return unknown_key(x, knode, full);
}

static int walk_map(Ctx *x, const char *prefix, yaml_node_t *map)
{
    yaml_node_pair_t *start = map->data.mapping.pairs.start;
    for (yaml_node_pair_t *p = start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(x->doc, p->value);
        char full[256], buf[256];
        const char *ks = scalar(k);
        if (!ks) {
            err_at(x, k, prefix ? prefix : "config", "expected a key name, got %s",
                   shown(k, buf, sizeof buf));
            return -1;
        }
        snprintf(full, sizeof full, "%s%s%s", prefix ? prefix : "", prefix ? "." : "", ks);
        for (yaml_node_pair_t *q = start; q < p; q++) {
            const char *prev = scalar(yaml_document_get_node(x->doc, q->key));
            if (prev && !strcmp(prev, ks)) {
                err_at(x, k, full, "duplicate key (first given at line %zu)",
                       yaml_document_get_node(x->doc, q->key)->start_mark.line + 1);
                return -1;
            }
        }
        if (apply_key(x, full, k, v)) return -1;
    }
    return 0;
}

/* Checks that need the whole file: batch_size given next to tokens_per_step must agree. */
static int check_file(Ctx *x)
{
    const TrainConfig *t = &x->c->train;
    long long per = (long long)x->c->data.seq_len * t->grad_accum;
    if (x->seen_batch && x->seen_tps && t->tokens_per_step > 0 &&
        (long long)t->batch_size * per != t->tokens_per_step) {
        yaml_node_t at;
        memset(&at, 0, sizeof at);
        at.start_mark = x->batch_mark;
        err_at(x, &at, "train.batch_size",
               "%d disagrees with train.tokens_per_step %d = batch_size * data.seq_len %d * "
               "train.grad_accum %d; give only one of batch_size and tokens_per_step",
               t->batch_size, t->tokens_per_step, x->c->data.seq_len, t->grad_accum);
        return -1;
    }
    return 0;
}

static void yaml_problem(char *err, size_t n_err, const char *name, const yaml_parser_t *p)
{
    char ctx[256] = "";
    if (p->context)
        snprintf(ctx, sizeof ctx, " (%s at line %zu)", p->context, p->context_mark.line + 1);
    if (p->error == YAML_READER_ERROR)
        set_err(err, n_err, "%s: invalid YAML: %s at byte %zu", name,
                p->problem ? p->problem : "unreadable input", p->problem_offset);
    else
        set_err(err, n_err, "%s:%zu:%zu: invalid YAML: %s%s", name, p->problem_mark.line + 1,
                p->problem_mark.column + 1, p->problem ? p->problem : "parse error", ctx);
}

/* Parses one YAML document from the parser onto c (not reset). */
static int load_parser(Config *c, yaml_parser_t *p, const char *name, char *err, size_t n_err)
{
    yaml_document_t doc;
    if (!yaml_parser_load(p, &doc)) {
        yaml_problem(err, n_err, name, p);
        return -1;
    }
    Ctx x;
    memset(&x, 0, sizeof x);
    x.c = c;
    x.doc = &doc;
    x.name = name;
    x.err = err;
    x.n_err = n_err;
    int rc = 0;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && !is_null(root)) {
        if (root->type != YAML_MAPPING_NODE) {
            set_err(err, n_err, "%s:%zu:%zu: expected a mapping of sections (model, data, train, "
                    "probe, checkpoint, output)", name, root->start_mark.line + 1,
                    root->start_mark.column + 1);
            rc = -1;
        } else {
            rc = walk_map(&x, NULL, root);
        }
        if (!rc) rc = check_file(&x);
    }
    if (!rc && root) {
        yaml_document_t next;
        if (!yaml_parser_load(p, &next)) {
            yaml_problem(err, n_err, name, p);
            rc = -1;
        } else {
            yaml_node_t *r2 = yaml_document_get_root_node(&next);
            if (r2) {
                set_err(err, n_err, "%s:%zu:%zu: expected one YAML document, found a second one",
                        name, r2->start_mark.line + 1, r2->start_mark.column + 1);
                rc = -1;
            }
            yaml_document_delete(&next);
        }
    }
    yaml_document_delete(&doc);
    return rc;
}

/* Loads into a copy of c so a failed load leaves c untouched. */
static int load_common(Config *c, FILE *f, const char *yaml, const char *name, int reset,
                       char *err, size_t n_err)
{
    Config *tmp = malloc(sizeof *tmp);
    if (!tmp) {
        set_err(err, n_err, "%s: out of memory", name);
        return -1;
    }
    if (reset) config_defaults(tmp);
    else *tmp = *c;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        set_err(err, n_err, "%s: cannot initialise the YAML parser", name);
        free(tmp);
        return -1;
    }
    if (f) yaml_parser_set_input_file(&p, f);
    else yaml_parser_set_input_string(&p, (const unsigned char *)yaml, strlen(yaml));
    int rc = load_parser(tmp, &p, name, err, n_err);
    yaml_parser_delete(&p);
    if (!rc) {
        tmp->data.kind = tmp->model.kind;   /* a copy, never written */
        if (reset || !tmp->source[0]) {
            memset(tmp->source, 0, sizeof tmp->source);
            strncpy(tmp->source, name, sizeof tmp->source - 1);
        }
        *c = *tmp;
    }
    free(tmp);
    return rc;
}

/* The whole file, so its nesting is checked before libyaml reads it; a config is small, so
 * anything past 1 MB (or /dev/zero) is refused, and a NUL byte would end the text early. */
static int read_config_text(const char *path, char **out, size_t *len, char *err, size_t n_err)
{
    enum { MAX_CONFIG_BYTES = 1 << 20 };
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_err(err, n_err, "%s: cannot open config: %s", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(MAX_CONFIG_BYTES + 2);
    size_t n = buf ? fread(buf, 1, MAX_CONFIG_BYTES + 1, f) : 0;
    int bad = !buf || ferror(f), e = errno;
    fclose(f);
    const char *nul = buf ? memchr(buf, 0, n) : NULL;
    if (bad) set_err(err, n_err, "%s: cannot read config: %s", path, strerror(e));
    else if (n > MAX_CONFIG_BYTES) set_err(err, n_err, "%s: larger than 1 MB; expected a YAML config", path);
    else if (nul) set_err(err, n_err, "%s: NUL byte at offset %zu; expected YAML text", path, (size_t)(nul - buf));
    if (bad || n > MAX_CONFIG_BYTES || nul) {
        free(buf);
        return -1;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

static int load_file(Config *c, const char *path, int reset, char *err, size_t n_err)
{
    char *text = NULL;
    size_t len = 0;
    if (read_config_text(path, &text, &len, err, n_err)) return -1;
    int rc = yaml_depth_check(text, len, path, YAML_MAX_DEPTH, err, n_err);
    if (!rc) rc = load_common(c, NULL, text, path, reset, err, n_err);
    free(text);
    return rc;
}

int config_load(Config *c, const char *path, char *err, size_t n_err)
{
    return load_file(c, path, 1, err, n_err);
}

int config_merge_file(Config *c, const char *path, char *err, size_t n_err)
{
    return load_file(c, path, 0, err, n_err);
}

int config_load_string(Config *c, const char *yaml, const char *name, char *err, size_t n_err)
{
    if (yaml_depth_check(yaml, strlen(yaml), name ? name : "config", YAML_MAX_DEPTH, err, n_err))
        return -1;
    return load_common(c, NULL, yaml, name ? name : "config", 1, err, n_err);
}

int config_set(Config *c, const char *assignment, char *err, size_t n_err)
{
    const char *eq = strchr(assignment, '=');
    char key[256];
    if (!eq || eq == assignment || (size_t)(eq - assignment) >= sizeof key) {
        set_err(err, n_err, "--set %s: expected key.path=value (e.g. model.n_layer=6)",
                assignment);
        return -1;
    }
    memcpy(key, assignment, (size_t)(eq - assignment));
    key[eq - assignment] = 0;
    const char *value = eq + 1;

    yaml_parser_t p;
    yaml_document_t doc;
    char derr[256];
    if (yaml_depth_check(value, strlen(value), "value", YAML_MAX_DEPTH, derr, sizeof derr)) {
        set_err(err, n_err, "--set %s: %s", assignment, derr);
        return -1;
    }
    if (!yaml_parser_initialize(&p)) {
        set_err(err, n_err, "--set %s: cannot initialise the YAML parser", assignment);
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)value, strlen(value));
    if (!yaml_parser_load(&p, &doc)) {
        set_err(err, n_err, "--set %s: %s: invalid YAML value: %s", assignment, key,
                p.problem ? p.problem : "parse error");
        yaml_parser_delete(&p);
        return -1;
    }
    yaml_node_t empty;
    memset(&empty, 0, sizeof empty);
    empty.type = YAML_SCALAR_NODE;
    empty.data.scalar.value = (yaml_char_t *)"";
    empty.data.scalar.style = YAML_PLAIN_SCALAR_STYLE;
    yaml_node_t *root = yaml_document_get_root_node(&doc);

    Config *tmp = malloc(sizeof *tmp);
    int rc = -1;
    if (tmp) {
        *tmp = *c;
        Ctx x;
        memset(&x, 0, sizeof x);
        x.c = tmp;
        x.doc = &doc;
        x.set_arg = assignment;
        x.err = err;
        x.n_err = n_err;
        rc = apply_key(&x, key, NULL, root ? root : &empty);
        tmp->data.kind = tmp->model.kind;
        if (!rc) *c = *tmp;
        free(tmp);
    } else {
        set_err(err, n_err, "--set %s: out of memory", assignment);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    return rc;
}

/* ---------------------------------------------------------------- validation */

/* Per-key ranges again, for configs built in code rather than parsed. */
static int check_ranges(const Config *c, char *msg, size_t n)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        const KeyDef *d = &KEYS[i];
        const void *p = (const char *)c + d->off;
        char want[512], got[256];
        int bad = 0;
        if (d->type == KT_INT) {
            int v = *(const int *)p;
            bad = v < d->lo || v > d->hi;
            describe_int(want, sizeof want, d->lo, d->hi, 0);
        } else if (d->type == KT_FLOAT) {
            float v = *(const float *)p;
            bad = !isfinite(v) || ((d->flags & F_LO_OPEN) ? v <= d->lo : v < d->lo) ||
                  ((d->flags & F_HI_OPEN) ? v >= d->hi : v > d->hi);
            describe_float(want, sizeof want, d->lo, d->hi, 0);
        } else if (d->type == KT_BOOL) {
            int v = *(const int *)p;
            bad = v != 0 && v != 1;
            snprintf(want, sizeof want, "true or false");
        } else if (d->type == KT_ENUM) {
            int v = *(const int *)p, count = 0;
            while (d->names[count]) count++;
            bad = v < 0 || v >= count;
            describe_enum(want, sizeof want, d->names);
            if (bad) {
                snprintf(msg, n, "%s: expected one of %s, got %d", d->key, want, v);
                return -1;
            }
        }
        if (bad) {
            fmt_value(got, sizeof got, d, c);
            snprintf(msg, n, "%s: expected %s, got %s", d->key, want, got);
            return -1;
        }
    }
    return 0;
}

/* Cross-field rules; derived values must already be resolved. */
static int check_combinations(const Config *c, char *msg, size_t n)
{
    const ModelConfig *m = &c->model;
    const DataConfig *d = &c->data;
    const TrainConfig *t = &c->train;
    const ProbeConfig *pr = &c->probe;
    int T = d->seq_len;
#define BAD(...) do { snprintf(msg, n, __VA_ARGS__); return -1; } while (0)
    if (m->d_model % m->n_head)
        BAD("model.d_model (%d) must be divisible by model.n_head (%d)", m->d_model, m->n_head);
    if (m->pos == POS_ROPE && (m->d_model / m->n_head) % 2)
        BAD("model.pos_encoding: rope needs an even head size, but d_model / n_head = %d / %d "
            "= %d", m->d_model, m->n_head, m->d_model / m->n_head);
    if (m->pos == POS_SINUSOIDAL && m->d_model % 2)
        BAD("model.pos_encoding: sinusoidal needs an even model.d_model (sin/cos pairs), got %d",
            m->d_model);
    if (T > m->max_seq_len)
        BAD("data.seq_len (%d) is larger than model.max_seq_len (%d)", T, m->max_seq_len);
    if (pr->seq_len > m->max_seq_len)
        BAD("probe.seq_len (%d) is larger than model.max_seq_len (%d)", pr->seq_len,
            m->max_seq_len);
    if (m->mask.window > T)
        BAD("model.mask.window (%d) is larger than the context data.seq_len (%d); 0 turns the "
            "window off", m->mask.window, T);
    for (int i = 0; i < m->mask.n_edits; i++)
        if (m->mask.edits[i].pos >= T)
            BAD("model.mask.edits[%d]: position %d is outside the context data.seq_len (%d)", i,
                m->mask.edits[i].pos, T);
    if (m->mask.n_edits < 0 || m->mask.n_edits > MASK_MAX_EDITS)
        BAD("model.mask.edits: %d edits (at most %d)", m->mask.n_edits, MASK_MAX_EDITS);
    if (m->kind == MODEL_PREFIX_LM) {
        if (d->prefix_min > d->prefix_max)
            BAD("data.prefix_len: min (%d) is larger than max (%d)", d->prefix_min,
                d->prefix_max);
        if (d->prefix_max >= T)
            BAD("data.prefix_len (%d) must be smaller than data.seq_len (%d): a prefix covering "
                "the whole sequence gives a full mask and nothing to predict", d->prefix_max, T);
    }
    if (m->attention.sink == SINK_LOGIT &&
        (m->attention.normalizer == ATTN_SIGMOID || m->attention.normalizer == ATTN_SIGMOID_NORM))
        BAD("model.attention.sink: logit adds a softmax denominator term, which normalizer %s "
            "does not have; use k_bias or kv_bias", N_NORMALIZER[m->attention.normalizer]);
    if (m->attention.normalizer != ATTN_SCALED && m->attention.scale != 1.0f)
        BAD("model.attention.scale (%g) only applies to normalizer: scaled (normalizer is %s)",
            (double)m->attention.scale, N_NORMALIZER[m->attention.normalizer]);
    if (!isfinite(m->attention.sigmoid_bias))
        BAD("model.attention.sigmoid_bias: expected a finite number");
    if (d->fixed_token_id >= m->vocab_size)
        BAD("data.fixed_token.id (%d) is not a token id (vocabulary %d)", d->fixed_token_id,
            m->vocab_size);
    if (d->fixed_token_id >= 0 && d->fixed_token_pos >= T)
        BAD("data.fixed_token.position (%d) is outside the context data.seq_len (%d)",
            d->fixed_token_pos, T);
    if (d->randomize_first >= T)
        BAD("data.first_tokens.randomize (%d) must be smaller than data.seq_len (%d)",
            d->randomize_first, T);
    if (d->corpus == CORPUS_FILES && d->n_paths == 0)
        BAD("data.paths: corpus files needs at least one path");
    if (d->n_paths < 0 || d->n_paths > DATA_MAX_PATHS)
        BAD("data.paths: %d paths (at most %d)", d->n_paths, DATA_MAX_PATHS);
    if (t->min_lr > t->lr)
        BAD("train.min_lr (%g) is larger than train.lr (%g)", (double)t->min_lr, (double)t->lr);
    if (pr->bos < -1 || pr->bos > 1) BAD("probe.bos: expected auto, true or false");
    if (pr->perturb_pos >= pr->seq_len)
        BAD("probe.perturb_pos (%d) is outside the probe sequence probe.seq_len (%d)",
            pr->perturb_pos, pr->seq_len);
    for (int i = 0; i < 3; i++)
        if (!(pr->eps[i] > 0 && pr->eps[i] < 1))
            BAD("probe.eps[%d]: expected a number in (0, 1), got %g", i, (double)pr->eps[i]);
#undef BAD
    return 0;
}

int config_validate(Config *c, char *err, size_t n_err)
{
    char msg[1024];
    const char *src = c->source[0] ? c->source : "config";
    /* Derived values first, so the checks see what will run. */
    c->data.kind = c->model.kind;
    if (c->model.vocab_size == 0) c->model.vocab_size = TOK_VOCAB_SIZE;
    if (isnan(c->model.attention.sigmoid_bias) && c->data.seq_len > 0)
        c->model.attention.sigmoid_bias = -logf((float)c->data.seq_len);
    TrainConfig *t = &c->train;
    if (t->tokens_per_step > 0 && c->data.seq_len > 0 && t->grad_accum > 0) {
        long long per = (long long)c->data.seq_len * t->grad_accum;
        if (t->tokens_per_step % per || t->tokens_per_step < per) {
            set_err(err, n_err, "%s: train.tokens_per_step (%d) must be a positive multiple of "
                    "data.seq_len * train.grad_accum (%d * %d = %lld)", src, t->tokens_per_step,
                    c->data.seq_len, t->grad_accum, per);
            return -1;
        }
        t->batch_size = (int)(t->tokens_per_step / per);
    }
    if (check_ranges(c, msg, sizeof msg) || check_combinations(c, msg, sizeof msg)) {
        set_err(err, n_err, "%s: %s", src, msg);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- writing */

static int n_parts(const char *s)
{
    int k = *s ? 1 : 0;
    for (; *s; s++) k += *s == '.';
    return k;
}

/* The i-th dot-separated part of s into out. */
static void part(char *out, size_t n, const char *s, int i)
{
    for (; i > 0 && s; i--) {
        s = strchr(s, '.');
        if (s) s++;
    }
    size_t len = s ? strcspn(s, ".") : 0;
    if (len >= n) len = n - 1;
    if (s) memcpy(out, s, len);
    out[len] = 0;
}

static void write_choices(FILE *f, const KeyDef *d)
{
    if (d->type != KT_ENUM) return;
    fprintf(f, "   #");
    for (int i = 0; d->names[i]; i++) fprintf(f, "%s %s", i ? " |" : "", d->names[i]);
}

void config_write(const Config *c, FILE *f)
{
    char cur[128] = "", sec[128], val[20000], a[64], b[64];
    fprintf(f, "# sinklab run config, fully resolved: every key is written "
               "(reference: README, \"Config reference\").\n");
    for (size_t i = 0; i < N_KEYS; i++) {
        const KeyDef *d = &KEYS[i];
        if (d->flags & F_NOWRITE) continue;
        const char *dot = strrchr(d->key, '.');
        size_t sl = (size_t)(dot - d->key);
        memcpy(sec, d->key, sl);
        sec[sl] = 0;
        int depth = n_parts(sec);
        if (strcmp(sec, cur)) {
            int common = 0, nc = n_parts(cur);
            while (common < nc && common < depth) {
                part(a, sizeof a, cur, common);
                part(b, sizeof b, sec, common);
                if (strcmp(a, b)) break;
                common++;
            }
            for (int j = common; j < depth; j++) {
                part(a, sizeof a, sec, j);
                fprintf(f, "%s%*s%s:\n", j == 0 ? "\n" : "", 2 * j, "", a);
            }
            strcpy(cur, sec);
        }
        fmt_value(val, sizeof val, d, c);
        const char *name = last_part(d->key);
        if (!strcmp(d->key, "train.batch_size") && c->train.tokens_per_step > 0) {
            /* Derived (as config_validate does), so the file agrees with itself when read. */
            long long per = (long long)c->data.seq_len * c->train.grad_accum;
            if (per > 0 && c->train.tokens_per_step % per == 0)
                snprintf(val, sizeof val, "%lld", c->train.tokens_per_step / per);
            fprintf(f, "%*sbatch_size: %s   # = tokens_per_step / (data.seq_len * grad_accum)\n",
                    2 * depth, "", val);
            continue;
        }
        if (!strcmp(d->key, "data.paths") && c->data.n_paths == 1) {
            fmt_string(val, sizeof val, c->data.paths[0]);
            name = "path";
        }
        fprintf(f, "%*s%s: %s", 2 * depth, "", name, val);
        write_choices(f, d);
        fputc('\n', f);
    }
}

char *config_to_string(const Config *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    config_write(c, f);
    if (fclose(f)) {
        free(buf);
        return NULL;
    }
    return buf;
}

int config_diff(const Config *a, const Config *b, char *out, size_t n)
{
    char va[20000], vb[20000];
    int count = 0;
    size_t k = 0;
    if (out && n) out[0] = 0;
    for (size_t i = 0; i < N_KEYS; i++) {
        const KeyDef *d = &KEYS[i];
        if (d->flags & F_NOWRITE) continue;
        fmt_value(va, sizeof va, d, a);
        fmt_value(vb, sizeof vb, d, b);
        if (!strcmp(va, vb)) continue;
        if (out && k < n)
            k += (size_t)snprintf(out + k, n - k, "%s%s: %.100s vs %.100s", count ? "; " : "",
                                  d->key, va, vb);
        count++;
    }
    return count;
}

void config_run_dir(const Config *c, char *out, size_t n)
{
    if (c->output.dir[0]) {
        snprintf(out, n, "%s", c->output.dir);
        return;
    }
    const char *base = strrchr(c->source, '/');
    base = base ? base + 1 : c->source;
    char stem[sizeof c->source];
    snprintf(stem, sizeof stem, "%s", *base ? base : "run");
    char *ext = strrchr(stem, '.');
    if (ext && (!strcmp(ext, ".yaml") || !strcmp(ext, ".yml")) && ext != stem) *ext = 0;
    snprintf(out, n, "runs/%s", stem);
}

void config_write_reference(FILE *f)
{
    Config def;
    config_defaults(&def);
    char type[512], val[2048];
    fprintf(f, "| key | type | default | meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < N_KEYS; i++) {
        const KeyDef *d = &KEYS[i];
        switch (d->type) {
        case KT_INT: describe_int(type, sizeof type, d->lo, d->hi, d->flags); break;
        case KT_U64: snprintf(type, sizeof type, "a non-negative integer (64-bit)"); break;
        case KT_FLOAT: describe_float(type, sizeof type, d->lo, d->hi, d->flags); break;
        case KT_BOOL: snprintf(type, sizeof type, "true or false"); break;
        case KT_STRING: snprintf(type, sizeof type, "string"); break;
        case KT_SPECIAL: snprintf(type, sizeof type, "%s", d->type_doc); break;
        case KT_ENUM: {
            size_t k = 0;
            for (int j = 0; d->names[j] && k < sizeof type; j++)
                k += (size_t)snprintf(type + k, sizeof type - k, "%s`%s`", j ? " \\| " : "",
                                      d->names[j]);
            break;
        }
        }
        fmt_value(val, sizeof val, d, &def);
        fprintf(f, "| `%s` | %s | `%s` | ", d->key, type, val);
        for (const char *q = d->doc; *q; q++) {
            if (*q == '|') fputc('\\', f);   /* a bar would end the Markdown cell */
            fputc(*q, f);
        }
        fprintf(f, " |\n");
    }
}
