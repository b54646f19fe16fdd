/* test_intervene.c: each intervention changes exactly what it claims (issue 11): mask edits give
 * the hand-built tables, position edits touch only positions, head edits renormalise the other
 * keys and leave every other head bit-identical, zero_value removes exactly A[:,P] v_P,
 * drop_bos scores the identical targets, a zero perturbation spreads nothing, and bad specs are
 * refused with the spec and what was expected (exit 2). */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "analysis/intervene.h"
#include "data/tokenizer.h"
#include "model/mask.h"
#include "model/transformer.h"

#define T_SMALL 6

static ModelConfig small_config(ModelKind kind, Normalizer norm)
{
    /* the documented defaults, shrunk: sigmoid_bias resolves to -ln 16 as for a 16-token batch */
    ModelConfig c;
    model_config_defaults(&c);
    c.kind = kind;
    c.n_layer = 2;
    c.d_model = 16;
    c.d_ff = 32;
    c.vocab_size = TOK_VOCAB_SIZE;
    c.max_seq_len = 32;
    c.attention.normalizer = norm;
    model_config_resolve(&c, 16);
    return c;
}

/* Causal probe-like rows: BOS, then random bytes; targets are the next token. */
static void fill_batch(Batch *b, TestRng *r)
{
    for (int s = 0; s < b->B; s++)
        for (int i = 0; i < b->T; i++) {
            int k = s * b->T + i;
            b->tokens[k] = i == 0 ? TOK_BOS : trng_int(r, 0, 255);
            b->positions[k] = i;
            b->doc_ids[k] = 0;
            b->loss_mask[k] = 1.0f;
        }
    for (int k = 0; k < b->B * b->T; k++)
        b->targets[k] = (k + 1) % b->T ? b->tokens[k + 1] : trng_int(r, 0, 255);
    for (int s = 0; s < b->B; s++) b->prefix_len[s] = 3;   /* read by prefix-LM models only */
}

static void apply_ok(IvApplied *a, const char *spec, const Batch *b, const ModelConfig *c)
{
    Intervention iv;
    char err[512];
    if (intervene_parse(&iv, spec, err, sizeof err)) fail_msg("parse %s: %s", spec, err);
    if (intervene_apply(a, &iv, b, c, err, sizeof err)) fail_msg("apply %s: %s", spec, err);
}

/* The allowed table an intervention's mask gives for one sequence of T_SMALL. */
static void mask_of(uint8_t *out, const char *spec, ModelKind kind)
{
    ModelConfig c = small_config(kind, ATTN_SOFTMAX);
    Batch b;
    batch_alloc(&b, 1, T_SMALL);
    TestRng r = {3};
    fill_batch(&b, &r);
    IvApplied a;
    apply_ok(&a, spec, &b, &c);
    mask_build(out, kind, &a.mask, a.batch.doc_ids, a.batch.prefix_len, 1, T_SMALL);
    intervene_applied_free(&a);
    batch_free(&b);
}

static void assert_mask(const char *spec, const uint8_t *got, const char *want_rows)
{
    /* want_rows: T_SMALL strings of T_SMALL '0'/'1', concatenated (row i = query i) */
    for (int i = 0; i < T_SMALL; i++)
        for (int j = 0; j < T_SMALL; j++)
            if (got[i * T_SMALL + j] != (want_rows[i * T_SMALL + j] == '1'))
                fail_msg("%s: allowed[%d][%d] = %d, want %c", spec, i, j, got[i * T_SMALL + j],
                         want_rows[i * T_SMALL + j]);
}

static void test_mask_edits_match_hand_built_tables(void **s)
{
    uint8_t m[T_SMALL * T_SMALL];
    mask_of(m, "isolate:2", MODEL_CAUSAL);
    assert_mask("isolate:2", m, "100000" "110000" "001000" "111100" "111110" "111111");
    mask_of(m, "reset:3", MODEL_CAUSAL);
    assert_mask("reset:3", m, "100000" "110000" "111000" "000100" "000110" "000111");
    mask_of(m, "window:2", MODEL_CAUSAL);
    assert_mask("window:2", m, "100000" "110000" "011000" "001100" "000110" "000011");
    mask_of(m, "block_key:0", MODEL_CAUSAL);
    assert_mask("block_key:0", m, "100000" "010000" "011000" "011100" "011110" "011111");
    mask_of(m, "window:2", MODEL_BIDIRECTIONAL);
    assert_mask("window:2 bidirectional", m,
                "110000" "111000" "011100" "001110" "000111" "000011");
    mask_of(m, "block_key:5+isolate:0", MODEL_BIDIRECTIONAL);
    assert_mask("block_key:5+isolate:0 bidirectional", m,
                "100000" "111110" "111110" "111110" "111110" "111111");
}

static void test_pos_swap_swaps_exactly_two_position_ids(void **s)
{
    ModelConfig c = small_config(MODEL_CAUSAL, ATTN_SOFTMAX);
    Batch b;
    batch_alloc(&b, 3, 12);
    TestRng r = {5};
    fill_batch(&b, &r);
    IvApplied a;
    apply_ok(&a, "pos_swap:2,7", &b, &c);
    for (int k = 0; k < 3 * 12; k++) {
        int i = k % 12;
        assert_int_equal(a.batch.tokens[k], b.tokens[k]);
        assert_int_equal(a.batch.targets[k], b.targets[k]);
        int want = i == 2 ? b.positions[k + 5] : i == 7 ? b.positions[k - 5] : b.positions[k];
        if (a.batch.positions[k] != want)
            fail_msg("positions[%d] = %d, want %d", k, a.batch.positions[k], want);
    }
    intervene_applied_free(&a);
    apply_ok(&a, "pos_as:9=0", &b, &c);
    for (int k = 0; k < 3 * 12; k++)
        assert_int_equal(a.batch.positions[k], k % 12 == 9 ? 0 : k % 12);
    intervene_applied_free(&a);
    batch_free(&b);
}

static void test_drop_bos_scores_the_identical_targets(void **s)
{
    ModelConfig c = small_config(MODEL_CAUSAL, ATTN_SOFTMAX);
    int B = 4, T = 10;
    Batch b;
    batch_alloc(&b, B, T);
    TestRng r = {9};
    fill_batch(&b, &r);
    IvApplied a;
    apply_ok(&a, "drop_bos", &b, &c);
    assert_int_equal(a.batch.T, T - 1);
    for (int s2 = 0; s2 < B; s2++)
        for (int i = 0; i < T - 1; i++) {
            int k = s2 * (T - 1) + i, o = a.orig[k];
            /* the same target token, of the same original position, at position i */
            assert_int_equal(o, s2 * T + i + 1);
            assert_int_equal(a.batch.targets[k], b.targets[o]);
            assert_int_equal(a.batch.tokens[k], b.tokens[o]);
            assert_int_equal(a.batch.positions[k], i);
        }
    /* per-token losses 1 everywhere but 5 at the BOS prediction: the baseline loss on the shared
     * targets leaves the BOS prediction out */
    double *base_ce = malloc((size_t)B * T * sizeof(double)), *ce = malloc((size_t)B * T * sizeof(double));
    for (int k = 0; k < B * T; k++) base_ce[k] = k % T == 0 ? 5.0 : 1.0;
    for (int k = 0; k < B * (T - 1); k++) ce[k] = 2.0;
    double loss, base_loss;
    assert_int_equal(intervene_paired_loss(&loss, &base_loss, ce, &a, &b, base_ce), B * (T - 1));
    assert_true(loss == 2.0 && base_loss == 1.0);
    free(base_ce);
    free(ce);
    intervene_applied_free(&a);
    /* add_bos on sequences without one: BOS first, everything else one later */
    for (int k = 0; k < B * T; k++) if (b.tokens[k] == TOK_BOS) b.tokens[k] = 'x';
    apply_ok(&a, "add_bos", &b, &c);
    for (int s2 = 0; s2 < B; s2++) {
        assert_int_equal(a.batch.tokens[s2 * T], TOK_BOS);
        assert_int_equal(a.orig[s2 * T], -1);
        for (int i = 1; i < T; i++) assert_int_equal(a.orig[s2 * T + i], s2 * T + i - 1);
    }
    intervene_applied_free(&a);
    batch_free(&b);
}

/* One forward with the edits of spec (or none), keeping attention probabilities. */
typedef struct {
    Graph g;
    ForwardTrace tr;
    IvApplied a;
} Run;

static void run_forward(Run *run, Transformer *m, const Batch *b, const char *spec)
{
    memset(run, 0, sizeof *run);
    ForwardTrace want = {.keep_attn = 1, .keep_qkv = 1};
    graph_init(&run->g, transformer_measure_arena(m, b->B, b->T, &want, 0), 1 << 14);
    run->g.record = 0;
    run->tr.keep_attn = 1;
    run->tr.keep_qkv = 1;
    const Batch *in = b;
    if (spec) {
        apply_ok(&run->a, spec, b, &m->cfg);
        run->tr.edits = run->a.edits;
        in = &run->a.batch;
    }
    transformer_forward(m, &run->g, in, &run->tr);
}

static void run_free(Run *run)
{
    graph_free(&run->g);
    if (run->a.batch.tokens) intervene_applied_free(&run->a);
}

static void model_random(Transformer *m, ModelConfig *c, float scale)
{
    char err[256];
    assert_int_equal(transformer_init(m, c, 11, err, sizeof err), 0);
    TestRng r = {21};
    trng_fill(&r, m->params.data, m->params.n, -scale, scale);
}

static void check_block_key_renormalises(Normalizer norm)
{
    ModelConfig c = small_config(MODEL_CAUSAL, norm);
    Transformer m;
    model_random(&m, &c, 0.4f);
    int B = 2, T = 12, H = c.n_head, P = 0, hh = 2;
    Batch b;
    batch_alloc(&b, B, T);
    TestRng r = {4};
    fill_batch(&b, &r);
    Run base, iv;
    run_forward(&base, &m, &b, NULL);
    run_forward(&iv, &m, &b, "block_key:0@0.2");
    for (int s2 = 0; s2 < B; s2++)
        for (int i = 1; i < T; i++) {
            const float *A = base.tr.attn_probs[0] + (((size_t)s2 * H + hh) * T + i) * T;
            const float *A2 = iv.tr.attn_probs[0] + (((size_t)s2 * H + hh) * T + i) * T;
            if (A2[P] != 0.0f) fail_msg("A'[%d][%d][%d] = %g, want 0", s2, i, P, (double)A2[P]);
            /* the other keys keep their relative weights: A'_j / A_j is one number per row */
            double ratio = A2[1] / A[1];
            for (int j = 2; j <= i; j++) {
                double rj = A2[j] / A[j];
                if (fabs(rj / ratio - 1.0) > 1e-6)
                    fail_msg("%s row (%d, %d): A'/A at key %d = %.9g, at key 1 = %.9g",
                             NORMALIZER_NAMES[norm], s2, i, j, rj, ratio);
            }
            /* softmax rows renormalise to sum one again */
            if (norm == ATTN_SOFTMAX) {
                double sum = 0.0;
                for (int j = 0; j <= i; j++) sum += A2[j];
                if (fabs(sum - 1.0) > 1e-6) fail_msg("row (%d, %d) sums to %.9g", s2, i, sum);
            }
        }
    run_free(&base);
    run_free(&iv);
    batch_free(&b);
    transformer_free(&m);
}

static void test_block_key_keeps_the_relative_weights_of_other_keys(void **s)
{
    check_block_key_renormalises(ATTN_SOFTMAX);
    check_block_key_renormalises(ATTN_SIGMOID_NORM);
}

/* Head edits on layer 1 head 2 of a model c: every other head's probabilities are
 * bit-identical, and the targeted head did change. */
static void check_head_isolation(ModelConfig c, const char *what)
{
    const char *specs[] = {"block_key:0@1.2", "scale_attn:3,0.25@1.2", "zero_value:0@1.2"};
    Transformer m;
    model_random(&m, &c, 0.4f);
    int B = 2, T = 12, H = c.n_head;
    Batch b;
    batch_alloc(&b, B, T);
    TestRng r = {8};
    fill_batch(&b, &r);
    Run base;
    run_forward(&base, &m, &b, NULL);
    for (int k = 0; k < 3; k++) {
        Run iv;
        run_forward(&iv, &m, &b, specs[k]);
        size_t TT = (size_t)T * T;
        for (int l = 0; l < c.n_layer; l++)
            for (int s2 = 0; s2 < B; s2++)
                for (int h = 0; h < H; h++) {
                    if (l == 1 && h == 2) continue;
                    const float *A = base.tr.attn_probs[l] + ((size_t)s2 * H + h) * TT;
                    const float *A2 = iv.tr.attn_probs[l] + ((size_t)s2 * H + h) * TT;
                    if (memcmp(A, A2, TT * sizeof(float)))
                        fail_msg("%s: %s changed layer %d head %d (sequence %d)", what, specs[k],
                                 l, h, s2);
                }
        /* and the targeted head did change (zero_value changes its output, not its weights) */
        if (k < 2) {
            const float *A = base.tr.attn_probs[1] + 2 * TT, *A2 = iv.tr.attn_probs[1] + 2 * TT;
            if (!memcmp(A, A2, TT * sizeof(float))) fail_msg("%s: %s changed nothing", what, specs[k]);
        }
        run_free(&iv);
    }
    run_free(&base);
    batch_free(&b);
    transformer_free(&m);
}

static void test_head_edits_leave_other_heads_bit_identical(void **s)
{
    check_head_isolation(small_config(MODEL_CAUSAL, ATTN_SOFTMAX), "causal softmax");
}

/* The same on every kind, normalizer, learned sink and positional encoding. */
static void test_head_edits_work_on_every_variant(void **s)
{
    const ModelKind kinds[] = {MODEL_CAUSAL, MODEL_BIDIRECTIONAL, MODEL_PREFIX_LM};
    const SinkKind sinks[] = {SINK_NONE, SINK_LOGIT, SINK_KV_BIAS, SINK_TOKEN};
    const PosEncoding pos[] = {POS_LEARNED, POS_ROPE, POS_ALIBI};
    for (int k = 0; k < 3; k++)
        for (int n = ATTN_SOFTMAX; n <= ATTN_SIGMOID_NORM; n++)
            for (int sk = 0; sk < 4; sk++) {
                ModelConfig c = small_config(kinds[k], (Normalizer)n);
                c.attention.sink = sinks[sk];
                c.pos = pos[(k + n + sk) % 3];
                char msg[256], what[128];
                if (attention_spec_check(&c.attention, msg, sizeof msg)) continue;
                snprintf(what, sizeof what, "kind %d %s sink %s pos %d", (int)kinds[k],
                         NORMALIZER_NAMES[n], SINK_NAMES[sinks[sk]], (int)c.pos);
                check_head_isolation(c, what);
            }
}

static void test_zero_value_removes_exactly_a_times_v(void **s)
{
    ModelConfig c = small_config(MODEL_CAUSAL, ATTN_SOFTMAX);
    int B = 2, T = 9, H = c.n_head, C = c.d_model, D = C / H, P = 0, hh = 1;
    Batch b;
    batch_alloc(&b, B, T);
    TestRng r = {13};
    fill_batch(&b, &r);
    IvApplied a;
    apply_ok(&a, "zero_value:0@0.1", &b, &c);
    assert_non_null(a.edits);
    assert_null(a.edits[1].value_scale);
    const float *vs = a.edits[0].value_scale;
    /* q, k, v at random; the head output with v scaled by the intervention's factors */
    Graph g;
    graph_init(&g, 1 << 22, 1 << 10);
    g.record = 0;
    int shape[3] = {B, T, C};
    Tensor *q = graph_constant(&g, 3, shape), *k = graph_constant(&g, 3, shape);
    Tensor *v = graph_constant(&g, 3, shape), *v2 = graph_constant(&g, 3, shape);
    trng_fill(&r, q->data, q->size, -1, 1);
    trng_fill(&r, k->data, k->size, -1, 1);
    trng_fill(&r, v->data, v->size, -1, 1);
    for (size_t i = 0; i < v->size; i++) v2->data[i] = v->data[i] * vs[i % ((size_t)T * C)];
    uint8_t *allowed = malloc((size_t)B * T * T);
    mask_build(allowed, MODEL_CAUSAL, NULL, NULL, NULL, B, T);
    float *probs = malloc((size_t)B * H * T * T * sizeof(float));
    AttentionArgs args = {.spec = &c.attention, .allowed = allowed, .positions = b.positions};
    Tensor *o2 = op_attention(&g, q, k, v2, H, &args);
    args.keep_probs = probs;
    Tensor *o = op_attention(&g, q, k, v, H, &args);
    for (int s2 = 0; s2 < B; s2++)
        for (int i = 0; i < T; i++)
            for (int h = 0; h < H; h++)
                for (int d = 0; d < D; d++) {
                    size_t at = ((size_t)s2 * T + i) * C + (size_t)h * D + d;
                    double want = 0.0;
                    if (h == hh) {
                        float A = probs[(((size_t)s2 * H + h) * T + i) * T + P];
                        want = (double)A * v->data[((size_t)s2 * T + P) * C + (size_t)h * D + d];
                    }
                    double got = (double)o->data[at] - o2->data[at];
                    if (fabs(got - want) > 1e-6)
                        fail_msg("out - out' at (%d, %d, head %d, %d) = %.9g, want A[:,P] v_P = %.9g",
                                 s2, i, h, d, got, want);
                }
    free(allowed);
    free(probs);
    graph_free(&g);
    intervene_applied_free(&a);
    batch_free(&b);
}

/* f = sum(out * R) of one attention call with key weights w (q, k, v perturbed along dir by t). */
static double attn_objective(const ModelConfig *c, const float *q0, const float *k0, const float *v0,
                             const float *dir, double t, const float *R, const float *w,
                             const uint8_t *allowed, int B, int T)
{
    Graph g;
    graph_init(&g, 1 << 22, 1 << 10);
    g.record = 0;
    int shape[3] = {B, T, c->d_model};
    Tensor *q = graph_constant(&g, 3, shape), *k = graph_constant(&g, 3, shape);
    Tensor *v = graph_constant(&g, 3, shape);
    for (size_t i = 0; i < q->size; i++) {
        q->data[i] = q0[i] + (float)t * dir[i];
        k->data[i] = k0[i] + (float)t * dir[q->size + i];
        v->data[i] = v0[i] + (float)t * dir[2 * q->size + i];
    }
    AttentionArgs args = {.spec = &c->attention, .allowed = allowed, .key_weight = w};
    Tensor *o = op_attention(&g, q, k, v, c->n_head, &args);
    double f = 0.0;
    for (size_t i = 0; i < o->size; i++) f += (double)o->data[i] * R[i];
    graph_free(&g);
    return f;
}

/* Key weights enter backward too (the Jacobian under an ablation): the analytic directional
 * derivative along a random direction matches central differences for every normalizer. */
static void test_key_weight_gradients_match_finite_differences(void **s)
{
    for (int n = ATTN_SOFTMAX; n <= ATTN_SIGMOID_NORM; n++) {
        ModelConfig c = small_config(MODEL_CAUSAL, (Normalizer)n);
        c.attention.scale = 0.7f;
        int B = 2, T = 7, C = c.d_model, H = c.n_head;
        size_t N = (size_t)B * T * C;
        TestRng r = {31 + (uint64_t)n};
        float *x = malloc(3 * N * sizeof(float)), *dir = malloc(3 * N * sizeof(float));
        float *R = malloc(N * sizeof(float)), *w = malloc((size_t)H * T * sizeof(float));
        trng_fill(&r, x, 3 * N, -1, 1);
        trng_fill(&r, dir, 3 * N, -1, 1);
        trng_fill(&r, R, N, -1, 1);
        for (int i = 0; i < H * T; i++) w[i] = i % 5 == 0 ? 0.0f : trng_uniform(&r, 0.2f, 3.0f);
        uint8_t *allowed = malloc((size_t)B * T * T);
        mask_build(allowed, MODEL_CAUSAL, NULL, NULL, NULL, B, T);
        Graph g;
        graph_init(&g, 1 << 22, 1 << 10);
        g.record = 1;
        int shape[3] = {B, T, C};
        Tensor *t3[3];
        for (int u = 0; u < 3; u++) {
            t3[u] = graph_constant(&g, 3, shape);
            memcpy(t3[u]->data, x + u * N, N * sizeof(float));
            graph_require_grad(&g, t3[u]);
        }
        AttentionArgs args = {.spec = &c.attention, .allowed = allowed, .key_weight = w};
        Tensor *o = op_attention(&g, t3[0], t3[1], t3[2], H, &args);
        graph_backward_seeded(&g, o, R);
        double analytic = 0.0;
        for (int u = 0; u < 3; u++)
            for (size_t i = 0; i < N; i++) analytic += (double)t3[u]->grad[i] * dir[u * N + i];
        double e = 1e-3;
        double fd = (attn_objective(&c, x, x + N, x + 2 * N, dir, e, R, w, allowed, B, T) -
                     attn_objective(&c, x, x + N, x + 2 * N, dir, -e, R, w, allowed, B, T)) / (2 * e);
        if (fabs(analytic - fd) > 2e-3 * (1.0 + fabs(fd)))
            fail_msg("%s: directional derivative %.7g, finite differences %.7g", NORMALIZER_NAMES[n],
                     analytic, fd);
        graph_free(&g);
        free(x); free(dir); free(R); free(w); free(allowed);
    }
}

static void assert_parse_error(const char *spec, const char *want1, const char *want2)
{
    Intervention iv;
    char err[512];
    if (intervene_parse(&iv, spec, err, sizeof err) == 0) fail_msg("'%s' parsed", spec);
    if (!strstr(err, spec) || !strstr(err, want1) || (want2 && !strstr(err, want2)))
        fail_msg("'%s': error '%s' should name the spec, '%s' and '%s'", spec, err, want1,
                 want2 ? want2 : "");
}

static void test_spec_errors_name_the_spec_and_what_was_expected(void **s)
{
    assert_parse_error("block_key:x", "block_key:P[@L.H]", "got 'x'");
    assert_parse_error("blok_key:0", "unknown intervention 'blok_key'", "block_key");
    assert_parse_error("scale_attn:0", "scale_attn:P,F[@L.H]", NULL);
    assert_parse_error("pos_swap:3,3", "pos_swap:I,J", NULL);
    assert_parse_error("drop_bos@1.2", "block_key, zero_value and scale_attn only", NULL);
    assert_parse_error("zero_value:1@a.b", "@L or @L.H", NULL);
    assert_parse_error("perturb:1:noize=2", "perturb:P[:noise=S|id=ID]", NULL);
    assert_parse_error("drop_bos+", "on each side of +", NULL);
    Intervention iv;
    char err[512];
    assert_int_equal(intervene_parse(&iv, "perturb:1:noise=0+block_key:0@1.2@0", err, sizeof err), 0);
    assert_int_equal(iv.n_ops, 2);
    assert_true(iv.ops[0].factor == 0.0f);
    assert_int_equal(iv.ops[1].n_targets, 2);
    assert_int_equal(iv.ops[1].targets[0].layer, 1);
    assert_int_equal(iv.ops[1].targets[0].head, 2);
    assert_int_equal(iv.ops[1].targets[1].head, -1);
    /* --heads gives head edits without @ their targets, and leaves other specs alone */
    IvTarget heads[4];
    int n_heads = 0;
    assert_int_equal(intervene_parse_heads(heads, &n_heads, 4, "1.2,3", err, sizeof err), 0);
    assert_int_equal(n_heads, 2);
    assert_int_equal(intervene_parse(&iv, "zero_value:0+block_key:1@0.0+drop_bos", err, sizeof err), 0);
    intervene_default_targets(&iv, heads, n_heads);
    assert_int_equal(iv.ops[0].n_targets, 2);
    assert_true(iv.ops[0].targets[0].layer == 1 && iv.ops[0].targets[0].head == 2);
    assert_true(iv.ops[0].targets[1].layer == 3 && iv.ops[0].targets[1].head == -1);
    assert_int_equal(iv.ops[1].n_targets, 1);
    assert_int_equal(iv.ops[2].n_targets, 0);
    assert_int_equal(intervene_parse_heads(heads, &n_heads, 4, "x.1", err, sizeof err), -1);
    assert_non_null(strstr(err, "--heads 'x.1'"));
    /* and what does not fit the model is refused when applied */
    ModelConfig c = small_config(MODEL_CAUSAL, ATTN_SOFTMAX);
    Batch b;
    batch_alloc(&b, 1, 8);
    TestRng r = {2};
    fill_batch(&b, &r);
    const char *bad[] = {"pos_shift:40", "block_key:3@2.0", "isolate:8", "replace_first:9999"};
    const char *why[] = {"learned position table", "outside the model", "outside the probe",
                         "outside the vocabulary"};
    for (int i = 0; i < 4; i++) {
        IvApplied a;
        assert_int_equal(intervene_parse(&iv, bad[i], err, sizeof err), 0);
        if (intervene_apply(&a, &iv, &b, &c, err, sizeof err) == 0) fail_msg("%s applied", bad[i]);
        if (!strstr(err, bad[i]) || !strstr(err, why[i]))
            fail_msg("%s: error '%s' should say '%s'", bad[i], err, why[i]);
    }
    batch_free(&b);
}

/* ---- end to end: sinklab analyze --intervene on a tiny trained run ---- */

static char OUT[1 << 16];

/* `sinklab ARGS`, output in OUT */
#define sinklab(args) test_sinklab(OUT, sizeof OUT, "%s", args)

static void test_analyze_intervene_end_to_end(void **s)
{
    char dir[512], args[3000], path[700];
    test_tmpdir(dir, sizeof dir, "intv_cli");
    snprintf(args, sizeof args, "train %s/tests/configs/tiny.yaml --out %s/run --quiet "
             "--set data.bos=window_start", test_src(), dir);
    if (sinklab(args)) fail_msg("%s: %s", args, OUT);
    const char *specs = "--intervene drop_bos --intervene block_key:0 --intervene perturb:1:noise=0 "
                        "--intervene perturb:1 --intervene zero_value:0@1.1";
    snprintf(args, sizeof args, "analyze %s/run/checkpoints/step_0000020.ckpt %s", dir, specs);
    if (sinklab(args)) fail_msg("%s: %s", args, OUT);
    assert_non_null(strstr(OUT, "drop_bos"));
    assert_non_null(strstr(OUT, "d_loss"));
    snprintf(path, sizeof path, "%s/run/analysis/interventions.json", dir);
    char *json = test_slurp(path, NULL);
    /* a zero perturbation spreads nothing: every layer's spread is exactly 0 */
    const char *z = strstr(json, "\"spec\":\"perturb:1:noise=0\"");
    assert_non_null(z);
    const char *sp = strstr(z, "\"spread\":[");
    assert_non_null(sp);
    assert_int_equal(strncmp(sp, "\"spread\":[0,0,0]", 16), 0);
    const char *nz = strstr(z + 10, "\"spec\":\"perturb:1\"");
    assert_non_null(nz);
    assert_true(strncmp(strstr(nz, "\"spread\":["), "\"spread\":[0,0,0]", 16) != 0);
    assert_non_null(strstr(json, "\"probe_batch\""));
    free(json);
    snprintf(path, sizeof path, "%s/run/analysis/interventions.html", dir);
    char *html = test_slurp(path, NULL);
    assert_non_null(strstr(html, "<svg"));
    free(html);
    /* the run's report was written again and links the page */
    char report[700];
    snprintf(report, sizeof report, "%s/run/report.html", dir);
    html = test_slurp(report, NULL);
    assert_non_null(strstr(html, "<a href=\"analysis/interventions.html\">Interventions</a>"));
    free(html);
    /* never replaced without --force; with it, yes */
    snprintf(args, sizeof args, "analyze %s/run/checkpoints/step_0000020.ckpt --intervene drop_bos", dir);
    assert_int_equal(sinklab(args), 2);
    assert_non_null(strstr(OUT, "--force"));
    snprintf(args, sizeof args, "analyze %s/run --intervene drop_bos --intervene block_key:0 --force",
             dir);
    if (sinklab(args)) fail_msg("%s: %s", args, OUT);
    json = test_slurp(path, NULL);
    assert_non_null(strstr(json, "Delta loss against training step"));
    free(json);
    /* a bad spec: exit 2 naming it */
    snprintf(args, sizeof args, "analyze %s/run --intervene block_key:x", dir);
    assert_int_equal(sinklab(args), 2);
    assert_non_null(strstr(OUT, "'block_key:x'"));
    /* probe.interventions: a bad spec names the file, line, key and spec */
    snprintf(path, sizeof path, "%s/p.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("probe:\n  interventions: [block_key:0, \"pos_swap:1\"]\n", f);
    fclose(f);
    snprintf(args, sizeof args, "analyze %s/run --config %s", dir, path);
    assert_int_equal(sinklab(args), 2);
    assert_non_null(strstr(OUT, "p.yaml:2:"));
    assert_non_null(strstr(OUT, "probe.interventions[1]: 'pos_swap:1'"));
    snprintf(args, sizeof args, "analyze %s/run/checkpoints/step_0000020.ckpt --out %s/o2 "
             "--intervene pos_shift:100", dir, dir);
    assert_int_equal(sinklab(args), 2);
    assert_non_null(strstr(OUT, "learned position table"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_edits_match_hand_built_tables),
        cmocka_unit_test(test_pos_swap_swaps_exactly_two_position_ids),
        cmocka_unit_test(test_drop_bos_scores_the_identical_targets),
        cmocka_unit_test(test_block_key_keeps_the_relative_weights_of_other_keys),
        cmocka_unit_test(test_head_edits_leave_other_heads_bit_identical),
        cmocka_unit_test(test_head_edits_work_on_every_variant),
        cmocka_unit_test(test_zero_value_removes_exactly_a_times_v),
        cmocka_unit_test(test_key_weight_gradients_match_finite_differences),
        cmocka_unit_test(test_spec_errors_name_the_spec_and_what_was_expected),
        cmocka_unit_test(test_analyze_intervene_end_to_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
