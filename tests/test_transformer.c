/* test_transformer.c: invariants of the whole model that hold for any weights (the PyTorch
 * parity of exact values is test_parity.c): causality, permutation equivariance, the initial
 * loss, a directional gradient check per kind, input gradients, and determinism. */
#include "tests/testutil.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/transformer.h"

static ModelConfig small_config(ModelKind kind, PosEncoding pos)
{
    /* the documented defaults, shrunk: sigmoid_bias resolves to -ln 16 as for a 16-token batch */
    ModelConfig c;
    model_config_defaults(&c);
    c.kind = kind;
    c.n_layer = 2;
    c.d_model = 16;
    c.d_ff = 32;
    c.vocab_size = 37;
    c.max_seq_len = 32;
    c.pos = pos;
    model_config_resolve(&c, 16);
    return c;
}

static void fill_batch(Batch *b, TestRng *r, int V, ModelKind kind)
{
    for (int i = 0; i < b->B * b->T; i++) {
        b->tokens[i] = trng_int(r, 0, V - 1);
        b->targets[i] = trng_int(r, 0, V - 1);
        b->positions[i] = i % b->T;
        b->doc_ids[i] = 0;
        b->loss_mask[i] = 1.0f;
    }
    for (int i = 0; i < b->B; i++) b->prefix_len[i] = kind == MODEL_PREFIX_LM ? 3 : 0;
}

/* Larger random weights than the init so attention is far from uniform. */
static void randomize_weights(Transformer *m, TestRng *r, float scale)
{
    trng_fill(r, m->params.data, m->params.n, -scale, scale);
}

static void test_initial_loss_is_close_to_ln_vocab(void **s)
{
    ModelConfig c = small_config(MODEL_CAUSAL, POS_LEARNED);
    Transformer m;
    char err[256];
    assert_int_equal(transformer_init(&m, &c, 7, err, sizeof err), 0);
    Batch b;
    batch_alloc(&b, 4, 16);
    TestRng r = {1};
    fill_batch(&b, &r, c.vocab_size, c.kind);
    Graph g;
    graph_init(&g, transformer_measure_arena(&m, 4, 16, NULL, 0), 1 << 14);
    g.record = 0;
    Tensor *loss = transformer_forward(&m, &g, &b, NULL);
    double want = log((double)c.vocab_size);
    printf("  loss at init %.5f, ln V = %.5f\n", loss->data[0], want);
    assert_true(fabs(loss->data[0] - want) < 0.05);
    graph_free(&g);
    batch_free(&b);
    transformer_free(&m);
}

static void test_causal_logits_ignore_future_tokens_bit_identically(void **s)
{
    PosEncoding pes[3] = {POS_LEARNED, POS_ROPE, POS_ALIBI};
    for (int k = 0; k < 3; k++) {
        ModelConfig c = small_config(MODEL_CAUSAL, pes[k]);
        Transformer m;
        assert_int_equal(transformer_init(&m, &c, 3, NULL, 0), 0);
        TestRng r = {2};
        randomize_weights(&m, &r, 0.3f);
        Batch b;
        batch_alloc(&b, 2, 13);
        fill_batch(&b, &r, c.vocab_size, c.kind);
        Graph g;
        graph_init(&g, transformer_measure_arena(&m, 2, 13, NULL, 0), 1 << 14);
        g.record = 0;
        ForwardTrace tr = {0};
        transformer_forward(&m, &g, &b, &tr);
        static float before[2 * 13 * 37];
        memcpy(before, tr.logits->data, sizeof before);
        int t = 6;
        for (int bb = 0; bb < 2; bb++)
            for (int j = t + 1; j < 13; j++) b.tokens[bb * 13 + j] = (b.tokens[bb * 13 + j] + 5) % 37;
        graph_reset(&g);
        ForwardTrace tr2 = {0};
        transformer_forward(&m, &g, &b, &tr2);
        for (int bb = 0; bb < 2; bb++)
            assert_memory_equal(before + bb * 13 * 37, tr2.logits->data + bb * 13 * 37,
                                (size_t)(t + 1) * 37 * sizeof(float));
        graph_free(&g);
        batch_free(&b);
        transformer_free(&m);
    }
}

static void test_bidirectional_without_positions_is_permutation_equivariant(void **s)
{
    ModelConfig c = small_config(MODEL_BIDIRECTIONAL, POS_NONE);
    Transformer m;
    assert_int_equal(transformer_init(&m, &c, 4, NULL, 0), 0);
    TestRng r = {3};
    randomize_weights(&m, &r, 0.3f);
    int T = 9, perm[9] = {4, 0, 8, 2, 7, 1, 3, 6, 5};
    Batch b, p;
    batch_alloc(&b, 1, T);
    batch_alloc(&p, 1, T);
    fill_batch(&b, &r, c.vocab_size, c.kind);
    fill_batch(&p, &r, c.vocab_size, c.kind);
    for (int i = 0; i < T; i++) p.tokens[i] = b.tokens[perm[i]];
    Graph g;
    /* two passes without a reset */
    graph_init(&g, 2 * transformer_measure_arena(&m, 1, T, NULL, 0), 1 << 14);
    g.record = 0;
    ForwardTrace t1 = {0}, t2 = {0};
    transformer_forward(&m, &g, &b, &t1);
    static float l1[9 * 37];
    memcpy(l1, t1.logits->data, sizeof l1);
    transformer_forward(&m, &g, &p, &t2);
    static float want[9 * 37];
    for (int i = 0; i < T; i++) memcpy(want + i * 37, l1 + perm[i] * 37, 37 * sizeof(float));
    assert_close("permuted logits", t2.logits->data, want, (size_t)T * 37, 1e-5, 1e-4);
    graph_free(&g);
    batch_free(&b);
    batch_free(&p);
    transformer_free(&m);
}

/* d loss along a random direction u in parameter space: <grad, u> against a central difference. */
static void directional_check(ModelKind kind, PosEncoding pos, SinkKind sink, GateKind gate)
{
    ModelConfig c = small_config(kind, pos);
    c.attention.sink = sink;
    c.attention.gate = gate;
    Transformer m;
    assert_int_equal(transformer_init(&m, &c, 5, NULL, 0), 0);
    TestRng r = {4};
    randomize_weights(&m, &r, 0.3f);
    Batch b;
    batch_alloc(&b, 2, 11);
    fill_batch(&b, &r, c.vocab_size, kind);
    Graph g;
    graph_init(&g, transformer_measure_arena(&m, 2, 11, NULL, 1), 1 << 14);
    params_zero_grad(&m.params);
    Tensor *loss = transformer_forward(&m, &g, &b, NULL);
    graph_backward(&g, loss);
    size_t n = m.params.n;
    float *u = xmalloc(n * sizeof(float)), *x0 = xmalloc(n * sizeof(float));
    trng_fill(&r, u, n, -1, 1);
    memcpy(x0, m.params.data, n * sizeof(float));
    double ana = 0.0;
    for (size_t i = 0; i < n; i++) ana += (double)m.params.grad[i] * u[i];
    double eps = 1e-3, L[2];
    g.record = 0;
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < n; i++) m.params.data[i] = x0[i] + (k ? -1.0f : 1.0f) * (float)eps * u[i];
        graph_reset(&g);
        L[k] = transformer_forward(&m, &g, &b, NULL)->data[0];
    }
    double num = (L[0] - L[1]) / (2.0 * eps);
    printf("  kind %d pos %d sink %d gate %d: directional analytic %.6g numeric %.6g\n", kind, pos,
           sink, gate, ana, num);
    /* float32 loss differences over eps = 1e-3 carry ~1e-4 absolute noise */
    if (fabs(ana - num) > 2e-3 + 1e-2 * fabs(num))
        fail_msg("directional derivative: analytic %.7g vs numeric %.7g", ana, num);
    free(u);
    free(x0);
    graph_free(&g);
    batch_free(&b);
    transformer_free(&m);
}

static void test_directional_gradient_every_kind(void **s)
{
    directional_check(MODEL_CAUSAL, POS_LEARNED, SINK_NONE, GATE_NONE);
    directional_check(MODEL_BIDIRECTIONAL, POS_SINUSOIDAL, SINK_NONE, GATE_NONE);
    directional_check(MODEL_PREFIX_LM, POS_ROPE, SINK_NONE, GATE_NONE);
}

static void test_directional_gradient_learned_sinks_and_gates(void **s)
{
    directional_check(MODEL_CAUSAL, POS_ALIBI, SINK_TOKEN, GATE_HEADWISE);
    directional_check(MODEL_CAUSAL, POS_ROPE, SINK_KV_BIAS, GATE_ELEMENTWISE);
    directional_check(MODEL_BIDIRECTIONAL, POS_LEARNED, SINK_LOGIT, GATE_NONE);
}

static void test_input_gradient_reaches_the_embeddings(void **s)
{
    ModelConfig c = small_config(MODEL_CAUSAL, POS_LEARNED);
    Transformer m;
    assert_int_equal(transformer_init(&m, &c, 6, NULL, 0), 0);
    TestRng r = {5};
    randomize_weights(&m, &r, 0.3f);
    Batch b;
    batch_alloc(&b, 1, 8);
    fill_batch(&b, &r, c.vocab_size, c.kind);
    /* only the last position counts: its loss depends on every earlier input, no later one */
    for (int i = 0; i < 8; i++) b.loss_mask[i] = i == 7 ? 1.0f : 0.0f;
    Graph g;
    ForwardTrace want = {.keep_hidden = 1, .grad_input = 1};
    graph_init(&g, transformer_measure_arena(&m, 1, 8, &want, 1), 1 << 14);
    ForwardTrace tr = {0};
    tr.grad_input = 1;
    tr.keep_hidden = 1;
    Tensor *loss = transformer_forward(&m, &g, &b, &tr);
    graph_backward(&g, loss);
    Tensor *h0 = tr.hidden[0];
    assert_non_null(h0->grad);
    for (int t = 0; t < 8; t++) {
        double norm = 0;
        for (int j = 0; j < c.d_model; j++) norm += fabs(h0->grad[t * c.d_model + j]);
        assert_true(norm > 0.0);
    }
    graph_free(&g);
    batch_free(&b);
    transformer_free(&m);
}

/* Qiu et al.'s gate is sigmoid(x Wg^T + bg): with large gate logits it is 1 and the model is the
 * ungated one, so the gate can only take attention away. */
static void test_gate_with_large_logits_equals_the_ungated_model(void **s)
{
    GateKind gates[2] = {GATE_ELEMENTWISE, GATE_HEADWISE};
    for (int k = 0; k < 2; k++) {
        ModelConfig c0 = small_config(MODEL_CAUSAL, POS_ROPE), c1 = c0;
        c1.attention.gate = gates[k];
        Transformer m0, m1;
        assert_int_equal(transformer_init(&m0, &c0, 11, NULL, 0), 0);
        assert_int_equal(transformer_init(&m1, &c1, 11, NULL, 0), 0);
        TestRng r = {7};
        randomize_weights(&m0, &r, 0.3f);
        for (int i = 0; i < m1.params.n_params; i++) {
            Param *p = &m1.params.params[i];
            Param *q = params_find(&m0.params, p->name);
            if (q) memcpy(p->t.data, q->t.data, p->t.size * sizeof(float));
            else if (strstr(p->name, "gate.bias"))
                for (size_t j = 0; j < p->t.size; j++) p->t.data[j] = 40.0f;
            else memset(p->t.data, 0, p->t.size * sizeof(float));
        }
        Batch b;
        batch_alloc(&b, 2, 9);
        fill_batch(&b, &r, c0.vocab_size, c0.kind);
        Graph g;
        graph_init(&g, transformer_measure_arena(&m1, 2, 9, NULL, 0), 1 << 14);
        g.record = 0;
        ForwardTrace t0 = {0}, t1 = {0};
        transformer_forward(&m0, &g, &b, &t0);
        static float want[2 * 9 * 37];
        memcpy(want, t0.logits->data, sizeof want);
        graph_reset(&g);
        transformer_forward(&m1, &g, &b, &t1);
        assert_close("gated logits", t1.logits->data, want, sizeof want / sizeof want[0], 1e-6, 1e-6);
        graph_free(&g);
        batch_free(&b);
        transformer_free(&m0);
        transformer_free(&m1);
    }
}

static float run_loss_and_grad_norm(int threads, float *grad_out, size_t n)
{
    omp_set_num_threads(threads);
    ModelConfig c = small_config(MODEL_CAUSAL, POS_ROPE);
    c.d_model = 64;
    c.d_ff = 256;
    Transformer m;
    transformer_init(&m, &c, 9, NULL, 0);
    TestRng r = {6};
    Batch b;
    batch_alloc(&b, 8, 32);
    fill_batch(&b, &r, c.vocab_size, c.kind);
    Graph g;
    graph_init(&g, transformer_measure_arena(&m, 8, 32, NULL, 1), 1 << 14);
    params_zero_grad(&m.params);
    Tensor *loss = transformer_forward(&m, &g, &b, NULL);
    graph_backward(&g, loss);
    float l = loss->data[0];
    memcpy(grad_out, m.params.grad, (n < m.params.n ? n : m.params.n) * sizeof(float));
    graph_free(&g);
    batch_free(&b);
    transformer_free(&m);
    return l;
}

static void test_same_threads_bit_identical_and_thread_counts_agree(void **s)
{
    enum { N = 20000 };
    static float g1[N], g2[N], g3[N];
    float l1 = run_loss_and_grad_norm(2, g1, N);
    float l2 = run_loss_and_grad_norm(2, g2, N);
    assert_true(l1 == l2);
    assert_memory_equal(g1, g2, sizeof g1);
    float l3 = run_loss_and_grad_norm(1, g3, N);
    assert_float_equal(l1, l3, 1e-6f * fabsf(l1));
    assert_close("grad 1 vs 2 threads", g3, g1, N, 1e-9, 1e-5);
    omp_set_num_threads(2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initial_loss_is_close_to_ln_vocab),
        cmocka_unit_test(test_causal_logits_ignore_future_tokens_bit_identically),
        cmocka_unit_test(test_bidirectional_without_positions_is_permutation_equivariant),
        cmocka_unit_test(test_directional_gradient_every_kind),
        cmocka_unit_test(test_directional_gradient_learned_sinks_and_gates),
        cmocka_unit_test(test_input_gradient_reaches_the_embeddings),
        cmocka_unit_test(test_gate_with_large_logits_equals_the_ungated_model),
        cmocka_unit_test(test_same_threads_bit_identical_and_thread_counts_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
