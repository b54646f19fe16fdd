/* transformer.c: the one forward pass of the sinklab model family (the README ("Parameters and conventions") is its contract).
 * Every option is a switch here; training, probes and interventions all call
 * transformer_forward, so what analysis reads is what training computed. The same forward, run
 * once on a measuring arena, sizes every graph that will run it (transformer_measure_arena). */
#include "model/transformer.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---- parameters ---- */

/* What a parameter is; the initialisation scheme maps each role to a rule (init_rule) and the
 * optimizer group follows from it (role_group). */
typedef enum {
    ROLE_EMBEDDING,          /* wte, wpe */
    ROLE_WEIGHT,             /* linear weights: q, k, v, gate, fc, up, mlm.dense, lm_head */
    ROLE_WEIGHT_RESIDUAL,    /* linear weights writing into the residual stream: attn.o, mlp.proj */
    ROLE_BIAS,               /* linear biases */
    ROLE_NORM_WEIGHT,
    ROLE_NORM_BIAS,
    ROLE_SINK_LOGIT,         /* sink: logit, (H) */
    ROLE_SINK_VECTOR         /* sink_k, sink_v, sink_token */
} ParamRole;

static ParamGroup role_group(ParamRole role)
{
    switch (role) {
    case ROLE_EMBEDDING: return PARAM_EMBEDDING;
    case ROLE_WEIGHT: case ROLE_WEIGHT_RESIDUAL: return PARAM_MATRIX;
    case ROLE_BIAS: case ROLE_NORM_WEIGHT: case ROLE_NORM_BIAS: return PARAM_VECTOR;
    case ROLE_SINK_LOGIT: case ROLE_SINK_VECTOR: return PARAM_SINK;
    }
    return PARAM_VECTOR;
}

/* GPT-2 initialisation (the README's "Initialisation"): N(0, init_std), residual output
 * projections N(0, init_std / sqrt(2 n_layer)), norm weights 1, biases and sink logits 0. */
static ParamInit init_gpt2(const ModelConfig *c, ParamRole role)
{
    float std = c->init_std;
    switch (role) {
    case ROLE_EMBEDDING: case ROLE_WEIGHT: case ROLE_SINK_VECTOR:
        return (ParamInit){INIT_NORMAL, std};
    case ROLE_WEIGHT_RESIDUAL:
        return (ParamInit){INIT_NORMAL, std / sqrtf(2.0f * (float)c->n_layer)};
    case ROLE_NORM_WEIGHT:
        return (ParamInit){INIT_ONES, 0.0f};
    case ROLE_BIAS: case ROLE_NORM_BIAS: case ROLE_SINK_LOGIT:
        return (ParamInit){INIT_ZEROS, 0.0f};
    }
    return (ParamInit){INIT_ZEROS, 0.0f};
}

/* PyTorch's nn defaults: a Linear's weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))
 * (kaiming_uniform with a = sqrt(5)), Embedding N(0, 1), norms 1 and 0. nn has no default for
 * the sink parameters, so they keep GPT-2's rule. */
static ParamInit init_torch(const ModelConfig *c, ParamRole role, int fan_in)
{
    switch (role) {
    case ROLE_EMBEDDING:
        return (ParamInit){INIT_NORMAL, 1.0f};
    case ROLE_WEIGHT: case ROLE_WEIGHT_RESIDUAL: case ROLE_BIAS:
        return (ParamInit){INIT_UNIFORM, 1.0f / sqrtf((float)fan_in)};
    default:
        return init_gpt2(c, role);
    }
}

/* The scheme's rule for a parameter of this role; fan_in is the input width of the Linear a
 * weight or bias belongs to (0 for other roles). The values are drawn in declaration order. */
static ParamInit init_rule(const ModelConfig *c, ParamRole role, int fan_in)
{
    switch (c->init) {
    case INIT_SCHEME_TORCH: return init_torch(c, role, fan_in);
    case INIT_SCHEME_GPT2: break;
    }
    return init_gpt2(c, role);
}

/* The one place a parameter is added: named, grouped by its role and given its init rule. */
static Tensor *vdeclare(Transformer *m, ParamRole role, int d0, int d1, int fan_in,
                        const char *fmt, va_list ap)
{
    char name[64];
    vsnprintf(name, sizeof name, fmt, ap);
    int shape[2] = {d0, d1};
    Param *p = params_add(&m->params, name, role_group(role), d1 > 0 ? 2 : 1, shape);
    p->init = init_rule(&m->cfg, role, fan_in);
    return &p->t;
}

/* Adds parameter NAME of shape (d0) or (d0, d1) with its role's group and init rule; returns the
 * tensor the layer keeps (its data is allocated by params_finalize). A weight (d0, d1) is a
 * Linear from d1 inputs. */
static Tensor *declare(Transformer *m, ParamRole role, int d0, int d1, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static Tensor *declare(Transformer *m, ParamRole role, int d0, int d1, const char *fmt, ...)
{
    int is_linear = role == ROLE_WEIGHT || role == ROLE_WEIGHT_RESIDUAL;
    SL_CHECK(role != ROLE_BIAS, "declare: a Linear's bias is declared with declare_bias (its fan-in)");
    va_list ap;
    va_start(ap, fmt);
    Tensor *t = vdeclare(m, role, d0, d1, is_linear ? d1 : 0, fmt, ap);
    va_end(ap);
    return t;
}

/* The bias of the Linear whose weight w (out, in) was just declared: shape (out), fan-in in. */
static Tensor *declare_bias(Transformer *m, const Tensor *w, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static Tensor *declare_bias(Transformer *m, const Tensor *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    Tensor *t = vdeclare(m, ROLE_BIAS, w->shape[0], 0, w->shape[1], fmt, ap);
    va_end(ap);
    return t;
}

/* One block's parameters in the documented order; options that are off stay NULL. */
static void declare_block(Transformer *m, BlockParams *b, int l)
{
    const ModelConfig *c = &m->cfg;
    int C = c->d_model, H = c->n_head, D = C / H, F = c->d_ff;
    int ln_bias = c->norm == NORM_LAYERNORM && c->bias;
    b->ln1_w = declare(m, ROLE_NORM_WEIGHT, C, 0, "blocks.%d.ln1.weight", l);
    if (ln_bias) b->ln1_b = declare(m, ROLE_NORM_BIAS, C, 0, "blocks.%d.ln1.bias", l);
    const char *proj[4] = {"q", "k", "v", "o"};
    Tensor **w[4] = {&b->wq, &b->wk, &b->wv, &b->wo}, **bias[4] = {&b->bq, &b->bk, &b->bv, &b->bo};
    for (int i = 0; i < 4; i++) {
        *w[i] = declare(m, i == 3 ? ROLE_WEIGHT_RESIDUAL : ROLE_WEIGHT, C, C,
                        "blocks.%d.attn.%s.weight", l, proj[i]);
        if (c->bias) *bias[i] = declare_bias(m, *w[i], "blocks.%d.attn.%s.bias", l, proj[i]);
    }
    if (c->attention.gate != GATE_NONE) {
        int G = c->attention.gate == GATE_HEADWISE ? H : C;
        b->wg = declare(m, ROLE_WEIGHT, G, C, "blocks.%d.attn.gate.weight", l);
        b->bg = declare_bias(m, b->wg, "blocks.%d.attn.gate.bias", l);
    }
    if (c->attention.sink == SINK_LOGIT)
        b->sink_logit = declare(m, ROLE_SINK_LOGIT, H, 0, "blocks.%d.attn.sink_logit", l);
    if (c->attention.sink == SINK_K_BIAS || c->attention.sink == SINK_KV_BIAS)
        b->sink_k = declare(m, ROLE_SINK_VECTOR, H, D, "blocks.%d.attn.sink_k", l);
    if (c->attention.sink == SINK_KV_BIAS)
        b->sink_v = declare(m, ROLE_SINK_VECTOR, H, D, "blocks.%d.attn.sink_v", l);
    b->ln2_w = declare(m, ROLE_NORM_WEIGHT, C, 0, "blocks.%d.ln2.weight", l);
    if (ln_bias) b->ln2_b = declare(m, ROLE_NORM_BIAS, C, 0, "blocks.%d.ln2.bias", l);
    b->w_fc = declare(m, ROLE_WEIGHT, F, C, "blocks.%d.mlp.fc.weight", l);
    if (c->bias) b->b_fc = declare_bias(m, b->w_fc, "blocks.%d.mlp.fc.bias", l);
    if (c->mlp == MLP_SWIGLU) {
        b->w_up = declare(m, ROLE_WEIGHT, F, C, "blocks.%d.mlp.up.weight", l);
        if (c->bias) b->b_up = declare_bias(m, b->w_up, "blocks.%d.mlp.up.bias", l);
    }
    b->w_proj = declare(m, ROLE_WEIGHT_RESIDUAL, C, F, "blocks.%d.mlp.proj.weight", l);
    if (c->bias) b->b_proj = declare_bias(m, b->w_proj, "blocks.%d.mlp.proj.bias", l);
}

/* Every parameter in the documented order (the README's "Parameters"), each bound to the field
 * that uses it as it is declared. */
static void declare_params(Transformer *m)
{
    const ModelConfig *c = &m->cfg;
    int C = c->d_model, V = c->vocab_size;
    int ln_bias = c->norm == NORM_LAYERNORM && c->bias;
    m->wte = declare(m, ROLE_EMBEDDING, V, C, "wte");
    if (c->pos == POS_LEARNED) m->wpe = declare(m, ROLE_EMBEDDING, c->max_seq_len, C, "wpe");
    if (c->attention.sink == SINK_TOKEN)
        m->sink_token = declare(m, ROLE_SINK_VECTOR, C, 0, "sink_token");
    for (int l = 0; l < c->n_layer; l++) declare_block(m, &m->blocks[l], l);
    if (c->norm_pre) {
        m->lnf_w = declare(m, ROLE_NORM_WEIGHT, C, 0, "lnf.weight");
        if (ln_bias) m->lnf_b = declare(m, ROLE_NORM_BIAS, C, 0, "lnf.bias");
    }
    if (c->kind == MODEL_BIDIRECTIONAL) {
        m->mlm_w = declare(m, ROLE_WEIGHT, C, C, "mlm.dense.weight");
        m->mlm_b = declare_bias(m, m->mlm_w, "mlm.dense.bias");
        m->mlm_ln_w = declare(m, ROLE_NORM_WEIGHT, C, 0, "mlm.ln.weight");
        if (ln_bias) m->mlm_ln_b = declare(m, ROLE_NORM_BIAS, C, 0, "mlm.ln.bias");
    }
    m->lm_head = c->tie_embeddings ? m->wte : declare(m, ROLE_WEIGHT, V, C, "lm_head.weight");
}

int transformer_init(Transformer *m, const ModelConfig *cfg, uint64_t seed, char *err, size_t n_err)
{
    memset(m, 0, sizeof *m);
    const ModelConfig *c = cfg;
    char msg[512];
    /* The same rules config validation applies (T = 0: the context is checked per batch). */
    if (model_config_check(c, 0, msg, sizeof msg)) {
        if (err && n_err) snprintf(err, n_err, "%s", msg);
        return -1;
    }
    m->cfg = *cfg;
    m->blocks = xcalloc((size_t)c->n_layer, sizeof(BlockParams));
    m->alibi_slopes = xcalloc((size_t)c->n_head, sizeof(float));
    if (c->pos == POS_ALIBI) alibi_slopes(m->alibi_slopes, c->n_head);
    params_init(&m->params);
    declare_params(m);
    params_finalize(&m->params);
    params_init_values(&m->params, seed);
    return 0;
}

void transformer_free(Transformer *m)
{
    int replica = m->params.shares_data;
    params_free(&m->params);
    free(m->blocks);
    if (!replica) free(m->alibi_slopes);
    memset(m, 0, sizeof *m);
}

/* The replica's tensor for one of m's parameter tensors (every parameter pointer the model keeps
 * is &Param.t of its block, so its index in the block identifies it). */
static Tensor *replica_tensor(const Transformer *m, Transformer *r, Tensor *t)
{
    if (!t) return NULL;
    uintptr_t at = (uintptr_t)t - offsetof(Param, t), first = (uintptr_t)m->params.params;
    SL_CHECK(at >= first && (at - first) % sizeof(Param) == 0 &&
             (at - first) / sizeof(Param) < (uintptr_t)m->params.n_params,
             "transformer_replica: a tensor outside the parameter block");
    return &r->params.params[(at - first) / sizeof(Param)].t;
}

/* BlockParams holds nothing but parameter pointers: remapped as an array of them. The model's
 * own pointers are listed in transformer_replica: a new field must be added there. */
_Static_assert(sizeof(BlockParams) % sizeof(Tensor *) == 0, "BlockParams: parameter pointers only");
_Static_assert(offsetof(Transformer, sink_token) - offsetof(Transformer, wte) == 9 * sizeof(Tensor *) &&
               sizeof(Transformer) == offsetof(Transformer, alibi_slopes) + sizeof(float *),
               "a new Transformer field: remap it in transformer_replica");

void transformer_replica(Transformer *r, const Transformer *m)
{
    *r = *m;
    params_replica(&r->params, &m->params);
    Tensor **top[] = {&r->wte, &r->wpe, &r->lnf_w, &r->lnf_b, &r->lm_head,
                      &r->mlm_w, &r->mlm_b, &r->mlm_ln_w, &r->mlm_ln_b, &r->sink_token};
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) *top[i] = replica_tensor(m, r, *top[i]);
    r->blocks = xmalloc((size_t)m->cfg.n_layer * sizeof(BlockParams));
    for (int l = 0; l < m->cfg.n_layer; l++) {
        Tensor *src[sizeof(BlockParams) / sizeof(Tensor *)], *dst[sizeof src / sizeof src[0]];
        memcpy(src, &m->blocks[l], sizeof src);
        for (size_t i = 0; i < sizeof src / sizeof src[0]; i++) dst[i] = replica_tensor(m, r, src[i]);
        memcpy(&r->blocks[l], dst, sizeof dst);
    }
}

/* ---- forward ---- */

/* What one stream (the data batch, or the one-token sink stream) needs for attention. */
typedef struct {
    int B, T;
    const uint8_t *allowed;
    const int32_t *positions;   /* NULL: no positional encoding (the sink stream) */
    const float *alibi;         /* NULL: no ALiBi */
} Stream;

static Tensor *norm(const Transformer *m, Graph *g, Tensor *x, Tensor *w, Tensor *b)
{
    return m->cfg.norm == NORM_RMSNORM ? op_rmsnorm(g, x, w) : op_layernorm(g, x, w, b);
}

static Tensor *mlp(const Transformer *m, Graph *g, const BlockParams *p, Tensor *x)
{
    Tensor *h = op_linear(g, x, p->w_fc, p->b_fc);
    switch (m->cfg.mlp) {
    case MLP_GELU: h = op_gelu(g, h); break;
    case MLP_RELU: h = op_relu(g, h); break;
    case MLP_SWIGLU: h = op_mul(g, op_silu(g, h), op_linear(g, x, p->w_up, p->b_up)); break;
    }
    return op_linear(g, h, p->w_proj, p->b_proj);
}

/* Per-layer outputs a trace may keep. */
typedef struct {
    float *probs, *sink_mass;
    Tensor *q, *k, *v;
    Tensor *sink_k, *sink_v;     /* out: this stream's k/v (the sink stream hands them on) */
} LayerKeep;

/* Attention sub-block on input a (already normed for pre-norm): q/k/v, RoPE, the kernel with
 * the learned sink, the gate, the output projection. */
static Tensor *attention_block(const Transformer *m, Graph *g, const BlockParams *p, Tensor *a,
                               const Stream *s, Tensor *sink_k, Tensor *sink_v, LayerKeep *keep,
                               const LayerEdit *edit)
{
    const ModelConfig *c = &m->cfg;
    Tensor *q = op_linear(g, a, p->wq, p->bq);
    Tensor *k = op_linear(g, a, p->wk, p->bk);
    Tensor *v = op_linear(g, a, p->wv, p->bv);
    if (keep) { keep->sink_k = k; keep->sink_v = v; }
    if (edit && edit->value_scale) {
        /* the same (T, C) factors for every sequence, as a constant so the tape stays exact */
        Tensor *f = graph_constant(g, 3, v->shape);
        size_t TC = (size_t)s->T * c->d_model;
        for (int b = 0; b < s->B; b++) memcpy(f->data + b * TC, edit->value_scale, TC * sizeof(float));
        v = op_mul(g, v, f);
    }
    if (c->pos == POS_ROPE && s->positions) {
        q = op_rope(g, q, s->positions, c->n_head, c->rope_base);
        k = op_rope(g, k, s->positions, c->n_head, c->rope_base);
    }
    AttentionArgs args = {0};
    args.spec = &c->attention;
    args.allowed = s->allowed;
    args.positions = s->positions;
    args.alibi_slopes = s->alibi;
    args.sink_k = sink_k;
    args.sink_v = sink_v;
    args.sink_logit = p->sink_logit;
    args.key_weight = edit ? edit->key_weight : NULL;
    if (keep) {
        args.keep_probs = keep->probs;
        args.keep_sink_mass = keep->sink_mass;
        keep->q = q; keep->k = k; keep->v = v;
    }
    Tensor *y = op_attention(g, q, k, v, c->n_head, &args);
    if (c->attention.gate != GATE_NONE) {
        Tensor *gate = op_sigmoid(g, op_linear(g, a, p->wg, p->bg));
        y = c->attention.gate == GATE_HEADWISE ? op_mul_heads(g, y, gate, c->n_head) : op_mul(g, y, gate);
    }
    return op_linear(g, y, p->wo, p->bo);
}

static Tensor *block(const Transformer *m, Graph *g, int l, Tensor *h, const Stream *s,
                     Tensor *sink_k, Tensor *sink_v, LayerKeep *keep, const LayerEdit *edit)
{
    const BlockParams *p = &m->blocks[l];
    if (m->cfg.norm_pre) {
        Tensor *x = op_add(g, h, attention_block(m, g, p, norm(m, g, h, p->ln1_w, p->ln1_b), s,
                                                 sink_k, sink_v, keep, edit));
        return op_add(g, x, mlp(m, g, p, norm(m, g, x, p->ln2_w, p->ln2_b)));
    }
    Tensor *x = norm(m, g, op_add(g, h, attention_block(m, g, p, h, s, sink_k, sink_v, keep, edit)),
                     p->ln1_w, p->ln1_b);
    return norm(m, g, op_add(g, x, mlp(m, g, p, x)), p->ln2_w, p->ln2_b);
}

static Tensor *embed(const Transformer *m, Graph *g, const Batch *b)
{
    const ModelConfig *c = &m->cfg;
    int N = b->B * b->T, C = c->d_model;
    Tensor *h = op_embedding(g, m->wte, b->tokens, N);
    if (c->pos == POS_LEARNED) {
        for (int i = 0; i < N; i++)
            SL_CHECK(b->positions[i] >= 0 && b->positions[i] < c->max_seq_len,
                     "position %d at %d outside the learned table (max_seq_len %d)",
                     b->positions[i], i, c->max_seq_len);
        h = op_add(g, h, op_embedding(g, m->wpe, b->positions, N));
    } else if (c->pos == POS_SINUSOIDAL) {
        int shape[2] = {N, C};
        Tensor *pe = graph_constant(g, 2, shape);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < C / 2; j++) {
                double angle = b->positions[i] * pow(10000.0, -2.0 * j / C);
                pe->data[(size_t)i * C + 2 * j] = (float)sin(angle);
                pe->data[(size_t)i * C + 2 * j + 1] = (float)cos(angle);
            }
        h = op_add(g, h, pe);
    }
    int shape[3] = {b->B, b->T, C};
    return op_reshape(g, h, 3, shape);
}

/* The sink token's own stream: a one-token sequence that attends only to itself. */
static Tensor *sink_stream_start(const Transformer *m, Graph *g)
{
    int shape[3] = {1, 1, m->cfg.d_model};
    return op_reshape(g, m->sink_token, 3, shape);
}

static Tensor *output_logits(const Transformer *m, Graph *g, Tensor *h)
{
    if (m->cfg.norm_pre) h = norm(m, g, h, m->lnf_w, m->lnf_b);
    if (m->cfg.kind == MODEL_BIDIRECTIONAL)
        h = norm(m, g, op_gelu(g, op_linear(g, h, m->mlm_w, m->mlm_b)), m->mlm_ln_w, m->mlm_ln_b);
    return op_linear(g, h, m->lm_head, NULL);
}

static void trace_alloc(Graph *g, ForwardTrace *tr, int L)
{
    if (tr->keep_attn) {
        tr->attn_probs = arena_alloc(&g->arena, (size_t)L * sizeof(float *));
        tr->sink_mass = arena_alloc(&g->arena, (size_t)L * sizeof(float *));
    }
    if (tr->keep_qkv) {
        tr->q = arena_alloc(&g->arena, (size_t)L * sizeof(Tensor *));
        tr->k = arena_alloc(&g->arena, (size_t)L * sizeof(Tensor *));
        tr->v = arena_alloc(&g->arena, (size_t)L * sizeof(Tensor *));
    }
    if (tr->keep_hidden) tr->hidden = arena_alloc(&g->arena, (size_t)(L + 1) * sizeof(Tensor *));
}

Tensor *transformer_forward(Transformer *m, Graph *g, const Batch *b, ForwardTrace *tr)
{
    const ModelConfig *c = &m->cfg;
    int B = b->B, T = b->T, H = c->n_head, L = c->n_layer;
    SL_CHECK(T <= c->max_seq_len || c->pos != POS_LEARNED,
             "sequence length %d exceeds max_seq_len %d", T, c->max_seq_len);
    uint8_t *allowed = arena_alloc(&g->arena, (size_t)B * T * T);
    mask_build(allowed, c->kind, &c->mask, b->doc_ids, b->prefix_len, B, T);
    Stream data = {B, T, allowed, b->positions, c->pos == POS_ALIBI ? m->alibi_slopes : NULL};
    uint8_t *self_only = arena_alloc(&g->arena, 1);
    self_only[0] = 1;
    Stream sink = {1, 1, self_only, NULL, NULL};

    if (tr) {
        trace_alloc(g, tr, L);
        tr->allowed = allowed;
    }
    Tensor *h = embed(m, g, b);
    if (tr && tr->embed_delta) {
        int shape[3] = {B, T, c->d_model};
        Tensor *delta = graph_constant(g, 3, shape);
        memcpy(delta->data, tr->embed_delta, delta->size * sizeof(float));
        h = op_add(g, h, delta);
    }
    if (tr && tr->grad_input && g->record) {
        /* a fresh tensor so d loss / d h^0 is exactly the gradient at the block input */
        Tensor *h0 = op_scale(g, h, 1.0f);
        graph_require_grad(g, h0);
        h = h0;
    }
    if (tr && tr->keep_hidden) tr->hidden[0] = h;
    Tensor *s = c->attention.sink == SINK_TOKEN ? sink_stream_start(m, g) : NULL;

    for (int l = 0; l < L; l++) {
        const BlockParams *p = &m->blocks[l];
        Tensor *sink_k = p->sink_k, *sink_v = p->sink_v;
        if (s) {
            /* the sink token's key and value at this layer, after this block's norm and
             * projections and never rotated, are the extra key/value every data query sees */
            LayerKeep sk = {0};
            Tensor *s_next = block(m, g, l, s, &sink, NULL, NULL, &sk, NULL);
            sink_k = sk.sink_k;
            sink_v = sk.sink_v;
            s = s_next;
        }
        LayerKeep keep = {0};
        if (tr && tr->keep_attn) {
            keep.probs = tr->attn_probs[l] = arena_alloc(&g->arena, (size_t)B * H * T * T * sizeof(float));
            keep.sink_mass = tr->sink_mass[l] = arena_alloc(&g->arena, (size_t)B * H * T * sizeof(float));
        }
        h = block(m, g, l, h, &data, sink_k, sink_v, &keep, tr && tr->edits ? &tr->edits[l] : NULL);
        if (tr && tr->keep_qkv) { tr->q[l] = keep.q; tr->k[l] = keep.k; tr->v[l] = keep.v; }
        if (tr && tr->keep_hidden) tr->hidden[l + 1] = h;
    }
    Tensor *logits = output_logits(m, g, h);
    if (tr) tr->logits = logits;
    int V = c->vocab_size;
    for (int i = 0; i < B * T; i++)
        SL_CHECK(b->loss_mask[i] == 0.0f || (b->targets[i] >= 0 && b->targets[i] < V),
                 "target %d at %d outside the vocabulary of %d", b->targets[i], i, V);
    int shape[2] = {B * T, V};
    return op_cross_entropy(g, op_reshape(g, logits, 2, shape), b->targets, b->loss_mask);
}

/* A batch with valid ids everywhere: arena use depends on shapes and options, not on values. */
static void fill_placeholder_batch(Batch *b, int B, int T)
{
    for (int i = 0; i < B * T; i++) {
        b->tokens[i] = b->targets[i] = b->doc_ids[i] = 0;
        b->positions[i] = i % T;
        b->loss_mask[i] = 1.0f;
    }
    for (int i = 0; i < B; i++) b->prefix_len[i] = 0;
}

size_t transformer_measure_arena(Transformer *m, int B, int T, const ForwardTrace *want, int record)
{
    Batch b;
    batch_alloc(&b, B, T);
    fill_placeholder_batch(&b, B, T);
    ForwardTrace tr = {0};
    float *delta = NULL;
    if (want) {
        tr.keep_attn = want->keep_attn;
        tr.keep_qkv = want->keep_qkv;
        tr.keep_hidden = want->keep_hidden;
        tr.grad_input = want->grad_input;
        if (want->embed_delta)
            tr.embed_delta = delta = xcalloc((size_t)B * T * m->cfg.d_model, sizeof(float));
    }
    /* backward accumulates into the parameter gradients: keep the caller's */
    float *saved_grad = NULL;
    if (record) {
        saved_grad = xmalloc(m->params.n * sizeof(float));
        memcpy(saved_grad, m->params.grad, m->params.n * sizeof(float));
    }
    Graph g;
    graph_init_measuring(&g, TRANSFORMER_MAX_NODES);
    g.record = record;
    Tensor *loss = transformer_forward(m, &g, &b, want ? &tr : NULL);
    if (record) graph_backward(&g, loss);
    size_t need = g.arena.high_water;
    if (record) {
        memcpy(m->params.grad, saved_grad, m->params.n * sizeof(float));
        free(saved_grad);
    }
    graph_free(&g);
    free(delta);
    batch_free(&b);
    /* a margin for what callers add around a pass */
    return need + need / 16 + ((size_t)1 << 20);
}
