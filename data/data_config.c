/* data_config.c: the data layer's config keys, defaults and rules (data_config.h). */
#include "data/data_config.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "data/tokenizer.h"

const char *const CORPUS_NAMES[] = {
    [CORPUS_FORTUNES] = "fortunes", [CORPUS_BROWN] = "brown", [CORPUS_SYNTHETIC] = "synthetic",
    [CORPUS_FILES] = "files", [CORPUS_BIGRAM_BACKCOPY] = "bigram_backcopy", NULL,
};
/* data.bb.source: the text corpora (the list stops before bigram_backcopy). */
static const char *const BB_SOURCE_NAMES[] = {
    [CORPUS_FORTUNES] = "fortunes", [CORPUS_BROWN] = "brown", [CORPUS_SYNTHETIC] = "synthetic",
    [CORPUS_FILES] = "files", [CORPUS_BIGRAM_BACKCOPY] = NULL,
};
const char *const SEPARATOR_NAMES[] = {
    [SEP_LINE] = "line", [SEP_BLANK_LINE] = "blank_line", [SEP_PERCENT_LINE] = "percent_line",
    [SEP_FILE] = "file", NULL,
};
const char *const PACK_MODE_NAMES[] = {[PACK_CONCAT] = "concat", [PACK_PAD] = "pad", NULL};
const char *const BOS_MODE_NAMES[] = {
    [BOS_NONE] = "none", [BOS_WINDOW_START] = "window_start", [BOS_DOC_START] = "doc_start",
    [BOS_BOTH] = "both", NULL,
};
const char *const LONG_DOCS_NAMES[] = {
    [LONG_SPLIT] = "split", [LONG_TRUNCATE] = "truncate", [LONG_ERROR] = "error", NULL,
};

_Static_assert(sizeof(CorpusKind) == sizeof(int), "enum size");

/* ---------------------------------------------------------------- special keys */

static int set_path(KeyCtx *x, const char *key, yaml_node_t *v, char *dst, size_t cap)
{
    char buf[256];
    const char *s = key_scalar(v);
    if (!s || !*s) {
        key_error(x, v, key, "expected a path, got %s", key_shown(v, buf, sizeof buf));
        return -1;
    }
    if (strlen(s) >= cap) {
        key_error(x, v, key, "path longer than %zu characters", cap - 1);
        return -1;
    }
    strncpy(dst, s, cap);
    return 0;
}

static int parse_paths(KeyCtx *x, const KeyDef *d, yaml_node_t *v, void *section)
{
    DataConfig *dc = section;
    char paths[DATA_MAX_PATHS][sizeof dc->paths[0]];
    char key[64];
    int n = 0;
    memset(paths, 0, sizeof paths);
    if (v->type == YAML_SEQUENCE_NODE) {
        yaml_node_t *items[DATA_MAX_PATHS];
        n = key_list(x, d->key, v, items, DATA_MAX_PATHS, "paths");
        if (n < 0) return -1;
        for (int i = 0; i < n; i++) {
            snprintf(key, sizeof key, "%s[%d]", d->key, i);
            if (set_path(x, key, items[i], paths[i], sizeof paths[i])) return -1;
        }
    } else if (!key_is_null(v)) {
        if (set_path(x, d->key, v, paths[0], sizeof paths[0])) return -1;
        n = 1;
    }
    dc->n_paths = n;
    memcpy(dc->paths, paths, sizeof paths);
    return 0;
}

static void format_paths(char *out, size_t n, const void *section)
{
    const DataConfig *dc = section;
    size_t k = (size_t)snprintf(out, n, "[");
    char buf[1100];
    for (int i = 0; i < dc->n_paths && k < n; i++) {
        key_format_string(buf, sizeof buf, dc->paths[i]);
        k += (size_t)snprintf(out + k, n - k, "%s%s", i ? ", " : "", buf);
    }
    if (k < n) snprintf(out + k, n - k, "]");
}

static int parse_prefix(KeyCtx *x, const KeyDef *d, yaml_node_t *v, void *section)
{
    DataConfig *dc = section;
    int p;
    if (v->type != YAML_SCALAR_NODE) {
        char buf[256];
        key_error(x, v, d->key, "expected a non-negative integer or {min, max}, got %s",
                  key_shown(v, buf, sizeof buf));
        return -1;
    }
    if (key_parse_int(x, d->key, v, 0, KEY_BIG, 0, &p)) return -1;
    dc->prefix_min = dc->prefix_max = p;
    return 0;
}

static void format_prefix(char *out, size_t n, const void *section)
{
    const DataConfig *dc = section;
    if (dc->prefix_min == dc->prefix_max)
        snprintf(out, n, "%d", dc->prefix_min);
    else
        snprintf(out, n, "{min: %d, max: %d}", dc->prefix_min, dc->prefix_max);
}

/* data.bb.triggers: a list of bytes, as ids 0..255 or one-character strings ("e", " "). */
static int parse_one_trigger(KeyCtx *x, const char *key, yaml_node_t *e, int32_t *out)
{
    const char *s = key_scalar(e);
    int quoted = s && e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
    if (s && (quoted || !isdigit((unsigned char)s[0])) && e->data.scalar.length == 1) {
        *out = (unsigned char)s[0];
        return 0;
    }
    int id;
    if (key_parse_int(x, key, e, 0, 255, 0, &id)) return -1;
    *out = id;
    return 0;
}

static int parse_bb_triggers(KeyCtx *x, const KeyDef *d, yaml_node_t *v, void *section)
{
    DataConfig *dc = section;
    char buf[256], key[64];
    int32_t t[DATA_BB_MAX_TRIGGERS];
    int n = 0;
    if (!key_is_null(v)) {
        if (v->type != YAML_SEQUENCE_NODE) {
            key_error(x, v, d->key, "expected a list of bytes such as [\" \", \"e\", 116] or [], "
                      "got %s", key_shown(v, buf, sizeof buf));
            return -1;
        }
        yaml_node_t *items[DATA_BB_MAX_TRIGGERS];
        n = key_list(x, d->key, v, items, DATA_BB_MAX_TRIGGERS, "triggers");
        if (n < 0) return -1;
        for (int i = 0; i < n; i++) {
            snprintf(key, sizeof key, "%s[%d]", d->key, i);
            if (parse_one_trigger(x, key, items[i], &t[i])) return -1;
            for (int j = 0; j < i; j++)
                if (t[i] == t[j]) {
                    key_error(x, items[i], key, "byte %d is listed twice", (int)t[i]);
                    return -1;
                }
        }
    }
    dc->bb_n_explicit = n;
    memset(dc->bb_triggers, 0, sizeof dc->bb_triggers);
    memcpy(dc->bb_triggers, t, (size_t)n * sizeof t[0]);
    return 0;
}

static void format_bb_triggers(char *out, size_t n, const void *section)
{
    const DataConfig *dc = section;
    size_t k = (size_t)snprintf(out, n, "[");
    for (int i = 0; i < dc->bb_n_explicit && k < n; i++)
        k += (size_t)snprintf(out + k, n - k, "%s%d", i ? ", " : "", (int)dc->bb_triggers[i]);
    if (k < n) snprintf(out + k, n - k, "]");
}

/* ---------------------------------------------------------------- the table */

#define D DataConfig
static const KeyDef ROWS[] = {
    KEY_ENUM(D, "data.corpus", corpus, CORPUS_NAMES, "training text"),
    KEY_SPECIAL("data.paths", 0, parse_paths, format_paths, "string or list of strings",
                "files, directories or .gz files (at most 16); [] = the corpus's default location "
                "(fortunes: /usr/share/games/fortunes); needed for corpus files. Written as `path` "
                "when there is one"),
    KEY_SPECIAL("data.path", KEY_NOWRITE, parse_paths, format_paths, "string or list of strings",
                "alias of data.paths"),
    KEY_ENUM(D, "data.separator", separator, SEPARATOR_NAMES, "what separates documents in a file"),
    KEY_INT(D, "data.seq_len", seq_len, 1, 1 << 20,
            "training context T (tokens per sequence, BOS included)"),
    KEY_ENUM(D, "data.pack", pack, PACK_MODE_NAMES,
             "concat: documents joined with EOS and cut into windows; pad: one document per "
             "sequence, padded"),
    KEY_ENUM(D, "data.bos", bos, BOS_MODE_NAMES, "where a BOS token is placed"),
    KEY_BOOL(D, "data.eos", eos, "EOS after each document"),
    KEY_BOOL(D, "data.reset_positions", reset_positions, "position ids restart at each document"),
    KEY_ENUM(D, "data.long_docs", long_docs, LONG_DOCS_NAMES,
             "pack pad: a document longer than seq_len is split, truncated, or an error"),
    KEY_U64(D, "data.split_seed", split_seed,
            "seed of the train/validation document split (independent of train.seed)"),
    KEY_FLOAT(D, "data.val_fraction", val_fraction, 0, 1, KEY_LO_OPEN | KEY_HI_OPEN,
              "share of documents held out for validation and probes"),
    KEY_SPECIAL("data.prefix_len", 0, parse_prefix, format_prefix, "int or {min, max}",
                "prefix_lm: bidirectional prefix length per sequence, fixed or drawn uniformly in "
                "[min, max]; max < data.seq_len"),
    {"data.prefix_len.min", KT_INT, KEY_OFF(D, prefix_min), 0, KEY_BIG, KEY_NOWRITE, NULL, NULL,
     NULL, 0, NULL, "data.prefix_len's lower bound (written as part of data.prefix_len)"},
    {"data.prefix_len.max", KT_INT, KEY_OFF(D, prefix_max), 0, KEY_BIG, KEY_NOWRITE, NULL, NULL,
     NULL, 0, NULL, "data.prefix_len's upper bound (written as part of data.prefix_len)"},
    KEY_INT(D, "data.first_tokens.randomize", randomize_first, 0, KEY_BIG,
            "replace the first N tokens of each sequence with random bytes (0 = off)"),
    KEY_INT(D, "data.fixed_token.id", fixed_token_id, -1, KEY_BIG,
            "put this token id at data.fixed_token.position in every sequence (-1 = off)"),
    KEY_INT(D, "data.fixed_token.position", fixed_token_pos, 0, KEY_BIG,
            "where the fixed token goes (< data.seq_len)"),
    KEY_FLOAT(D, "data.mlm_prob", mlm_prob, 0, 1, KEY_LO_OPEN | KEY_HI_OPEN,
              "bidirectional: share of tokens masked for the MLM loss"),
    KEY_INT(D, "data.synthetic_docs", synthetic_docs, 1, KEY_BIG, "corpus synthetic: documents"),
    KEY_U64(D, "data.synthetic_seed", synthetic_seed, "corpus synthetic: generator seed"),
    KEY_ENUM(D, "data.bb.source", bb_source, BB_SOURCE_NAMES,
             "corpus bigram_backcopy: the text whose byte bigrams give the Markov chain (read with "
             "data.paths and data.separator like data.corpus)"),
    KEY_INT(D, "data.bb.n_triggers", bb_n_triggers, 1, 255,
            "corpus bigram_backcopy: the k most frequent source bytes are triggers (when "
            "data.bb.triggers is [])"),
    KEY_SPECIAL("data.bb.triggers", 0, parse_bb_triggers, format_bb_triggers, "list of bytes",
                "corpus bigram_backcopy: explicit trigger bytes, as ids 0..255 or one-character "
                "strings (at most 16); [] = the data.bb.n_triggers most frequent"),
};
#undef D
const KeyTable DATA_KEYS = KEY_TABLE(ROWS);

void data_config_defaults(DataConfig *d)
{
    memset(d, 0, sizeof *d);
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
    d->bb_source = CORPUS_FORTUNES;
    d->bb_n_triggers = 3;
    d->kind = MODEL_CAUSAL;
}

void data_config_resolve(DataConfig *d)
{
    /* bigram_backcopy sequences always start with BOS (Guo et al.); probes follow data.bos */
    if (d->corpus == CORPUS_BIGRAM_BACKCOPY) d->bos = BOS_WINDOW_START;
}

int data_vocab_size(const DataConfig *d)
{
    (void)d;
    return TOK_VOCAB_SIZE;
}

int data_config_check(const DataConfig *d, int vocab_size, char *msg, size_t n)
{
    int T = d->seq_len;
#define BAD(...) do { snprintf(msg, n, __VA_ARGS__); return -1; } while (0)
    for (size_t i = 0; i < DATA_KEYS.n_keys; i++)
        if (key_check_range(&DATA_KEYS.keys[i], d, msg, n)) return -1;
    if (vocab_size < data_vocab_size(d))
        BAD("model.vocab_size (%d) is smaller than the %d token ids the byte tokenizer emits "
            "(256 bytes + 6 specials)", vocab_size, data_vocab_size(d));
    if (d->kind == MODEL_PREFIX_LM) {
        if (d->prefix_min > d->prefix_max)
            BAD("data.prefix_len: min (%d) is larger than max (%d)", d->prefix_min,
                d->prefix_max);
        if (d->prefix_max >= T)
            BAD("data.prefix_len (%d) must be smaller than data.seq_len (%d): a prefix covering "
                "the whole sequence gives a full mask and nothing to predict", d->prefix_max, T);
    }
    if (d->fixed_token_id >= vocab_size)
        BAD("data.fixed_token.id (%d) is not a token id (vocabulary %d)", d->fixed_token_id,
            vocab_size);
    if (d->fixed_token_id >= 0 && d->fixed_token_pos >= T)
        BAD("data.fixed_token.position (%d) is outside the context data.seq_len (%d)",
            d->fixed_token_pos, T);
    if (d->randomize_first >= T)
        BAD("data.first_tokens.randomize (%d) must be smaller than data.seq_len (%d)",
            d->randomize_first, T);
    int reads_files = d->corpus == CORPUS_FILES ||
                      (d->corpus == CORPUS_BIGRAM_BACKCOPY && d->bb_source == CORPUS_FILES);
    if (reads_files && d->n_paths == 0)
        BAD("data.paths: corpus files needs at least one path");
    if (d->corpus == CORPUS_BIGRAM_BACKCOPY && d->kind != MODEL_CAUSAL)
        BAD("data.corpus: bigram_backcopy is a next-token task; expected model.kind causal, got %s",
            MODEL_KIND_NAMES[d->kind]);
    /* the task writes whole sequences itself (BOS, chain, copies): an edit it would ignore is
     * refused rather than silently dropped */
    if (d->corpus == CORPUS_BIGRAM_BACKCOPY && (d->randomize_first > 0 || d->fixed_token_id >= 0))
        BAD("data.%s: not supported with data.corpus bigram_backcopy (the task writes its own "
            "sequences); use a text corpus", d->randomize_first > 0 ? "first_tokens.randomize"
                                                                     : "fixed_token.id");
    if (d->bb_n_explicit < 0 || d->bb_n_explicit > DATA_BB_MAX_TRIGGERS)
        BAD("data.bb.triggers: %d triggers (at most %d)", d->bb_n_explicit, DATA_BB_MAX_TRIGGERS);
    if (d->n_paths < 0 || d->n_paths > DATA_MAX_PATHS)
        BAD("data.paths: %d paths (at most %d)", d->n_paths, DATA_MAX_PATHS);
#undef BAD
    return 0;
}
