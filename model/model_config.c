/* model_config.c: the model layer's config keys, defaults and rules (model_config.h). */
#include "model/model_config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const POS_ENCODING_NAMES[] = {
    [POS_NONE] = "none", [POS_LEARNED] = "learned", [POS_SINUSOIDAL] = "sinusoidal",
    [POS_ROPE] = "rope", [POS_ALIBI] = "alibi", NULL,
};
const char *const NORM_KIND_NAMES[] = {[NORM_LAYERNORM] = "layernorm", [NORM_RMSNORM] = "rmsnorm",
                                       NULL};
const char *const MLP_KIND_NAMES[] = {[MLP_GELU] = "gelu", [MLP_RELU] = "relu",
                                      [MLP_SWIGLU] = "swiglu", NULL};
/* norm_pre is a flag whose config names read as a choice. */
static const char *const NORM_POSITION_NAMES[] = {"post", "pre", NULL};

/* Enum fields are stored through int pointers: every enum here must be int-sized. */
_Static_assert(sizeof(ModelKind) == sizeof(int), "enum size");
_Static_assert(sizeof(Normalizer) == sizeof(int), "enum size");
_Static_assert(sizeof(PosEncoding) == sizeof(int), "enum size");

/* ---------------------------------------------------------------- model.mask.edits */

static int parse_edits(KeyCtx *x, const KeyDef *d, yaml_node_t *v, void *section)
{
    MaskSpec *m = &((ModelConfig *)section)->mask;
    char buf[256], key[64], want[128];
    if (key_is_null(v)) {
        m->n_edits = 0;
        memset(m->edits, 0, sizeof m->edits);
        return 0;
    }
    if (v->type != YAML_SEQUENCE_NODE) {
        key_error(x, v, d->key, "expected a list such as [{isolate: 17}, {reset: 32}], got %s",
                  key_shown(v, buf, sizeof buf));
        return -1;
    }
    MaskEdit edits[MASK_MAX_EDITS];
    memset(edits, 0, sizeof edits);
    yaml_node_t *items[MASK_MAX_EDITS];
    int n = key_list(x, d->key, v, items, MASK_MAX_EDITS, "edits");
    if (n < 0) return -1;
    for (int i = 0; i < n; i++) {
        yaml_node_t *e = items[i];
        snprintf(key, sizeof key, "%s[%d]", d->key, i);
        if (e->type != YAML_MAPPING_NODE ||
            e->data.mapping.pairs.top - e->data.mapping.pairs.start != 1) {
            key_error(x, e, key, "expected one {isolate|reset|block_key: position}, got %s",
                      e->type == YAML_MAPPING_NODE ? "a mapping with several keys"
                                                   : key_shown(e, buf, sizeof buf));
            return -1;
        }
        yaml_node_t *k = key_node(x, e->data.mapping.pairs.start->key);
        yaml_node_t *val = key_node(x, e->data.mapping.pairs.start->value);
        const char *ks = key_scalar(k);
        int kind = -1;
        for (int j = 0; ks && MASK_EDIT_NAMES[j]; j++)
            if (!strcmp(ks, MASK_EDIT_NAMES[j])) kind = j;
        if (kind < 0) {
            key_describe_enum(want, sizeof want, MASK_EDIT_NAMES);
            const char *close = NULL;
            for (int j = 0; ks && MASK_EDIT_NAMES[j]; j++)
                if (key_edit_distance(ks, MASK_EDIT_NAMES[j]) <= 2) close = MASK_EDIT_NAMES[j];
            key_error(x, k, key, "unknown edit %s (expected one of %s)%s%s%s",
                      key_shown(k, buf, sizeof buf), want, close ? " (did you mean " : "",
                      close ? close : "", close ? "?)" : "");
            return -1;
        }
        edits[i].kind = (MaskEditKind)kind;
        if (key_parse_int(x, key, val, 0, KEY_BIG, 0, &edits[i].pos)) return -1;
    }
    m->n_edits = n;
    memcpy(m->edits, edits, sizeof edits);
    return 0;
}

static void format_edits(char *out, size_t n, const void *section)
{
    const MaskSpec *m = &((const ModelConfig *)section)->mask;
    size_t k = (size_t)snprintf(out, n, "[");
    for (int i = 0; i < m->n_edits && k < n; i++) {
        int kind = (int)m->edits[i].kind;
        k += (size_t)snprintf(out + k, n - k, "%s{%s: %d}", i ? ", " : "",
                              kind >= 0 && kind < key_count_names(MASK_EDIT_NAMES)
                                  ? MASK_EDIT_NAMES[kind] : "?",
                              m->edits[i].pos);
    }
    if (k < n) snprintf(out + k, n - k, "]");
}

/* ---------------------------------------------------------------- the table */

#define M ModelConfig
static const KeyDef ROWS[] = {
    KEY_ENUM(M, "model.kind", kind, MODEL_KIND_NAMES,
             "objective and base mask: next-token (causal), masked-LM (bidirectional), or a "
             "bidirectional prefix then next-token (prefix_lm)"),
    KEY_INT(M, "model.n_layer", n_layer, 1, 256, "transformer blocks"),
    KEY_INT(M, "model.d_model", d_model, 1, 65536, "residual width C"),
    KEY_INT(M, "model.n_head", n_head, 1, 1024, "attention heads; head size D = d_model / n_head"),
    KEY_INT(M, "model.d_ff", d_ff, 1, 1 << 20, "MLP hidden width"),
    KEY_INT(M, "model.max_seq_len", max_seq_len, 1, 1 << 20,
            "positions the model is built for; must be >= data.seq_len and probe.seq_len"),
    KEY_INT_AUTO(M, "model.vocab_size", vocab_size, 2, 1 << 24,
                 "vocabulary size; auto = the byte tokenizer's 262 (256 bytes + 6 specials), "
                 "which is also the smallest allowed"),
    KEY_ENUM(M, "model.pos_encoding", pos, POS_ENCODING_NAMES, "positional encoding"),
    KEY_FLOAT(M, "model.rope_base", rope_base, 1, INFINITY, KEY_LO_OPEN, "RoPE base (theta)"),
    KEY_ENUM(M, "model.norm", norm, NORM_KIND_NAMES, "normalisation layer"),
    KEY_ENUM(M, "model.norm_position", norm_pre, NORM_POSITION_NAMES,
             "pre-norm (GPT-2, with a final norm) or post-norm (original Transformer/BERT)"),
    KEY_ENUM(M, "model.mlp", mlp, MLP_KIND_NAMES, "MLP activation"),
    KEY_BOOL(M, "model.bias", bias, "biases in linear layers and layernorm"),
    KEY_BOOL(M, "model.tie_embeddings", tie_embeddings,
             "output projection shares the token embedding"),
    KEY_FLOAT(M, "model.init_std", init_std, 0, INFINITY, KEY_LO_OPEN,
              "std of the normal initialisation (residual projections get init_std / "
              "sqrt(2 n_layer))"),
    KEY_ENUM(M, "model.attention.normalizer", attention.normalizer, NORMALIZER_NAMES,
             "how scores become weights: softmax, softmax1 (+1 in the denominator), scaled "
             "(softmax times `scale`), sigmoid (unnormalised), sigmoid_norm (sigmoid / row sum)"),
    KEY_FLOAT(M, "model.attention.scale", attention.scale, 0, INFINITY, KEY_LO_OPEN,
              "normalizer scaled: rows sum to this (must stay 1 for other normalizers)"),
    {"model.attention.sigmoid_bias", KT_FLOAT, KEY_OFF(M, attention.sigmoid_bias), -INFINITY,
     INFINITY, KEY_AUTO, NULL, NULL, NULL, 0, NULL,
     "sigmoid normalizers: b in sigmoid(s + b); auto = -ln(data.seq_len), resolved when the "
     "config is validated"},
    KEY_ENUM(M, "model.attention.sink", attention.sink, SINK_NAMES,
             "learned sink: per-head logit in the denominator, a key with zero value (k_bias), a "
             "key and value (kv_bias), or a prepended learned token"),
    KEY_ENUM(M, "model.attention.gate", attention.gate, GATE_NAMES,
             "sigmoid output gate on the attention output, per element or per head"),
    KEY_INT(M, "model.mask.window", mask.window, 0, KEY_BIG,
            "sliding window W (0 = off): causal keys with i - j < W, bidirectional abs(i - j) < W"),
    KEY_BOOL(M, "model.mask.doc_mask", mask.doc_mask, "attention stays inside a document"),
    KEY_SPECIAL("model.mask.edits", 0, parse_edits, format_edits, "list",
                "mask edits, e.g. [{isolate: 17}, {reset: 32}, {block_key: 0}] (at most 16; "
                "positions < data.seq_len)"),
};
#undef M
const KeyTable MODEL_KEYS = KEY_TABLE(ROWS);

void model_config_defaults(ModelConfig *m)
{
    memset(m, 0, sizeof *m);
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
}

void model_config_resolve(ModelConfig *m, int T)
{
    if (isnan(m->attention.sigmoid_bias) && T > 0)
        m->attention.sigmoid_bias = -logf((float)T);
}

int model_config_check(const ModelConfig *m, int T, char *msg, size_t n)
{
#define BAD(...) do { snprintf(msg, n, __VA_ARGS__); return -1; } while (0)
    for (size_t i = 0; i < MODEL_KEYS.n_keys; i++)
        if (key_check_range(&MODEL_KEYS.keys[i], m, msg, n)) return -1;
    if (m->d_model % m->n_head)
        BAD("model.d_model (%d) must be divisible by model.n_head (%d)", m->d_model, m->n_head);
    if (m->pos == POS_ROPE && (m->d_model / m->n_head) % 2)
        BAD("model.pos_encoding: rope needs an even head size, but d_model / n_head = %d / %d "
            "= %d", m->d_model, m->n_head, m->d_model / m->n_head);
    if (m->pos == POS_SINUSOIDAL && m->d_model % 2)
        BAD("model.pos_encoding: sinusoidal needs an even model.d_model (sin/cos pairs), got %d",
            m->d_model);
    if (m->mask.n_edits < 0 || m->mask.n_edits > MASK_MAX_EDITS)
        BAD("model.mask.edits: %d edits (at most %d)", m->mask.n_edits, MASK_MAX_EDITS);
    if (attention_spec_check(&m->attention, msg, n)) return -1;
    /* The kernel ignores scale for other normalizers; a user who sets it meant something. */
    if (m->attention.normalizer != ATTN_SCALED && m->attention.scale != 1.0f)
        BAD("model.attention.scale (%g) only applies to normalizer: scaled (normalizer is %s)",
            (double)m->attention.scale, NORMALIZER_NAMES[m->attention.normalizer]);
    if (T <= 0) return 0;
    if (T > m->max_seq_len)
        BAD("data.seq_len (%d) is larger than model.max_seq_len (%d)", T, m->max_seq_len);
    if (m->mask.window > T)
        BAD("model.mask.window (%d) is larger than the context data.seq_len (%d); 0 turns the "
            "window off", m->mask.window, T);
    for (int i = 0; i < m->mask.n_edits; i++)
        if (m->mask.edits[i].pos >= T)
            BAD("model.mask.edits[%d]: position %d is outside the context data.seq_len (%d)", i,
                m->mask.edits[i].pos, T);
#undef BAD
    return 0;
}
