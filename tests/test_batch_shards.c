/* test_batch_shards.c: a batch cut into shards trains the same model as the whole batch. A
 * replica computes exactly the gradients its model would, into its own buffer, for every kind of
 * parameter the model family has; sharded gradients and losses equal the unsharded ones up to
 * float summation order, also when the shards count different numbers of loss positions
 * (MLM-like masks) or none; the scale (grad_accum) and forward-only passes (validation) behave;
 * the shards' bits do not depend on the thread count; and the shard count rules. */
#include "tests/testutil.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "train/batch_shards.h"
#include "train/config.h"

enum { B = 6, T = 12 };

/* A small model; the options select which parameters it has. */
static ModelConfig small_model(SinkKind sink, GateKind gate, int tie)
{
    ModelConfig c;
    model_config_defaults(&c);
    c.n_layer = 2;
    c.d_model = 16;
    c.n_head = 2;
    c.d_ff = 32;
    c.vocab_size = 23;
    c.max_seq_len = T;
    c.tie_embeddings = tie;
    c.attention.sink = sink;
    c.attention.gate = gate;
    model_config_resolve(&c, T);
    return c;
}

/* Random tokens and targets; loss positions dense in the first rows and sparse in the last, so
 * shards count different numbers of them. */
static void fill_batch(Batch *b, uint64_t seed, int V)
{
    TestRng r = {seed};
    for (int i = 0; i < b->B * b->T; i++) {
        int row = i / b->T;
        b->tokens[i] = trng_int(&r, 0, V - 1);
        b->targets[i] = trng_int(&r, 0, V - 1);
        b->positions[i] = i % b->T;
        b->doc_ids[i] = 0;
        b->query_class[i] = 0;
        b->loss_mask[i] = row < b->B / 2 ? 1.0f : (float)(trng_int(&r, 0, 3) == 0);
    }
    for (int i = 0; i < b->B; i++) b->prefix_len[i] = 0;
}

static void init_model(Transformer *m, const ModelConfig *c)
{
    char err[256];
    if (transformer_init(m, c, 11, err, sizeof err) != 0) fail_msg("transformer_init: %s", err);
}

/* Every parameter pointer of r points into r's own block. */
static void assert_bound_to(const Transformer *r, const Tensor *t, const char *what)
{
    if (!t) return;
    for (int i = 0; i < r->params.n_params; i++)
        if (t == &r->params.params[i].t) return;
    fail_msg("replica: %s still points outside the replica's parameters", what);
}

/* The replica's gradients are exactly the model's for the same pass, and land in its own
 * buffer: the model's stay untouched. */
static void check_replica(const ModelConfig *c, const char *what)
{
    Transformer m, r;
    init_model(&m, c);
    transformer_replica(&r, &m);
    assert_ptr_equal(r.params.data, m.params.data);
    assert_ptr_not_equal(r.params.grad, m.params.grad);
    const Tensor *top[] = {r.wte, r.wpe, r.lnf_w, r.lnf_b, r.lm_head, r.mlm_w, r.mlm_b,
                           r.mlm_ln_w, r.mlm_ln_b, r.sink_token};
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) assert_bound_to(&r, top[i], what);
    for (int l = 0; l < c->n_layer; l++) {
        const Tensor *const *p = (const Tensor *const *)&r.blocks[l];
        for (size_t i = 0; i < sizeof(BlockParams) / sizeof(Tensor *); i++) assert_bound_to(&r, p[i], what);
    }
    Batch b;
    batch_alloc(&b, 2, T);
    fill_batch(&b, 3, c->vocab_size);
    Graph g;
    graph_init(&g, transformer_measure_arena(&m, 2, T, NULL, 1), TRANSFORMER_MAX_NODES);

    graph_backward(&g, transformer_forward(&m, &g, &b, NULL));
    float *want = malloc(m.params.n * sizeof(float));
    memcpy(want, m.params.grad, m.params.n * sizeof(float));
    params_zero_grad(&m.params);
    graph_reset(&g);
    graph_backward(&g, transformer_forward(&r, &g, &b, NULL));
    for (size_t i = 0; i < m.params.n; i++)
        if (m.params.grad[i] != 0.0f)
            fail_msg("%s: the replica's backward wrote the model's gradient %zu", what, i);
    assert_close(what, r.params.grad, want, m.params.n, 0.0, 0.0);
    free(want);
    graph_free(&g);
    batch_free(&b);
    transformer_free(&r);
    transformer_free(&m);
}

static void test_replica_computes_the_same_gradients_into_its_own_buffer(void **state)
{
    (void)state;
    int saved = omp_get_max_threads();
    autograd_set_threads(1);
    ModelConfig c = small_model(SINK_TOKEN, GATE_HEADWISE, 0);
    check_replica(&c, "untied, sink token, headwise gate");
    c = small_model(SINK_KV_BIAS, GATE_ELEMENTWISE, 1);
    c.mlp = MLP_SWIGLU;
    c.norm = NORM_RMSNORM;
    c.pos = POS_ALIBI;
    model_config_resolve(&c, T);
    check_replica(&c, "tied, kv bias, elementwise gate, swiglu, rmsnorm, alibi");
    c = small_model(SINK_LOGIT, GATE_NONE, 1);
    c.kind = MODEL_BIDIRECTIONAL;
    model_config_resolve(&c, T);
    check_replica(&c, "bidirectional (MLM head), sink logit");
    autograd_set_threads(saved);
}

/* Loss and gradients of n shards after reduce, with the given threads: one pass at scale 1, or
 * (halves) two passes at scale 0.5 each, as grad_accum 2 runs the same micro-batch twice. */
static double sharded_pass_scaled(const ModelConfig *c, int n, int threads, const Batch *b,
                                  float *grad, int halves)
{
    autograd_set_threads(threads);
    Transformer m;
    init_model(&m, c);
    BatchShards s;
    batch_shards_init(&s, &m, n, b->B, b->T);
    params_zero_grad(&m.params);
    double loss = 0.0;
    for (int k = 0; k < (halves ? 2 : 1); k++)
        loss += batch_shards_pass(&s, b, 1, halves ? 0.5f : 1.0f);
    if (halves) loss /= 2;
    batch_shards_reduce(&s);
    memcpy(grad, m.params.grad, m.params.n * sizeof(float));
    /* after reduce the replicas start the next step from zero */
    for (int i = 1; i < n; i++)
        for (size_t j = 0; j < m.params.n; j++)
            if (s.model[i]->params.grad[j] != 0.0f) fail_msg("replica %d keeps gradient %zu", i, j);
    batch_shards_free(&s);
    transformer_free(&m);
    return loss;
}

static double sharded_pass(const ModelConfig *c, int n, int threads, const Batch *b, float *grad)
{
    return sharded_pass_scaled(c, n, threads, b, grad, 0);
}

static size_t n_params_of(const ModelConfig *c)
{
    Transformer m;
    init_model(&m, c);
    size_t n = m.params.n;
    transformer_free(&m);
    return n;
}

static void check_shards_match_whole(const ModelConfig *c)
{
    Batch b;
    batch_alloc(&b, B, T);
    fill_batch(&b, 9, c->vocab_size);
    size_t n = n_params_of(c);
    float *whole = malloc(n * sizeof(float)), *parts = malloc(n * sizeof(float));
    double l1 = sharded_pass(c, 1, 1, &b, whole);
    for (int shards = 2; shards <= 3; shards++) {
        double ls = sharded_pass(c, shards, 2, &b, parts);
        if (fabs(ls - l1) > 1e-6 * fabs(l1))
            fail_msg("%d shards: loss %.9g, whole batch %.9g", shards, ls, l1);
        double gmax = 0.0;
        for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(whole[i]));
        /* float sums in another order: errors of a few ulps of the largest gradient */
        assert_close("sharded grad", parts, whole, n, 2e-6 * gmax, 1e-4);
    }
    free(whole);
    free(parts);
    batch_free(&b);
}

static void test_shards_give_the_whole_batch_loss_and_gradients(void **state)
{
    (void)state;
    ModelConfig plain = small_model(SINK_NONE, GATE_NONE, 1);
    check_shards_match_whole(&plain);
    ModelConfig token = small_model(SINK_TOKEN, GATE_ELEMENTWISE, 0);
    check_shards_match_whole(&token);
    ModelConfig kv = small_model(SINK_KV_BIAS, GATE_HEADWISE, 1);
    check_shards_match_whole(&kv);
}

/* A shard with no loss positions has share 0: the batch mean is the other shards' alone. */
static void test_a_shard_without_loss_positions_counts_nothing(void **state)
{
    (void)state;
    ModelConfig c = small_model(SINK_NONE, GATE_NONE, 1);
    Batch b;
    batch_alloc(&b, B, T);
    fill_batch(&b, 4, c.vocab_size);
    for (int i = (B / 2) * T; i < B * T; i++) b.loss_mask[i] = 0.0f;
    size_t n = n_params_of(&c);
    float *whole = malloc(n * sizeof(float)), *parts = malloc(n * sizeof(float));
    double l1 = sharded_pass(&c, 1, 1, &b, whole);
    double l2 = sharded_pass(&c, 2, 1, &b, parts);
    if (fabs(l2 - l1) > 1e-6 * fabs(l1)) fail_msg("loss %.9g with 2 shards, %.9g whole", l2, l1);
    assert_close("grad", parts, whole, n, 1e-7, 1e-4);
    free(whole);
    free(parts);
    batch_free(&b);
}

/* The shard count is part of the arithmetic; the thread count is not. Shapes large enough that
 * products, attention and norms take their parallel paths when run whole. */
static void test_shards_are_bit_identical_across_thread_counts(void **state)
{
    (void)state;
    int saved = omp_get_max_threads();
    ModelConfig c = small_model(SINK_KV_BIAS, GATE_NONE, 1);
    c.d_model = 64;
    c.n_head = 4;
    c.d_ff = 256;
    c.vocab_size = 64;
    c.max_seq_len = 64;
    model_config_resolve(&c, 64);
    Batch b;
    batch_alloc(&b, 8, 64);
    fill_batch(&b, 5, c.vocab_size);
    size_t n = n_params_of(&c);
    float *one = malloc(n * sizeof(float)), *more = malloc(n * sizeof(float));
    for (int shards = 1; shards <= 2; shards++) {
        double l1 = sharded_pass(&c, shards, 1, &b, one);
        for (int threads = 2; threads <= 3; threads++) {
            double lt = sharded_pass(&c, shards, threads, &b, more);
            if (lt != l1)
                fail_msg("%d shards: loss %.9g at %d threads, %.9g at 1", shards, lt, threads, l1);
            assert_close("grad across threads", more, one, n, 0.0, 0.0);
        }
    }
    free(one);
    free(more);
    batch_free(&b);
    autograd_set_threads(saved);
}

/* grad_accum's scale: two passes at 0.5 sum to one pass at 1 (up to rounding: a parameter used
 * twice in a pass, as tied embeddings are, adds its halves in another order). */
static void test_scaled_passes_accumulate(void **state)
{
    (void)state;
    ModelConfig c = small_model(SINK_NONE, GATE_NONE, 1);
    Batch b;
    batch_alloc(&b, B, T);
    fill_batch(&b, 6, c.vocab_size);
    size_t n = n_params_of(&c);
    float *once = malloc(n * sizeof(float)), *twice = malloc(n * sizeof(float));
    double l1 = sharded_pass(&c, 2, 2, &b, once);
    double l2 = sharded_pass_scaled(&c, 2, 2, &b, twice, 1);
    if (l1 != l2) fail_msg("mean loss of two half passes %.9g, one pass %.9g", l2, l1);
    double gmax = 0.0;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(once[i]));
    assert_close("two half passes", twice, once, n, 1e-6 * gmax, 1e-5);
    free(once);
    free(twice);
    batch_free(&b);
}

/* A batch with no loss positions: loss 0 and no gradient anywhere. */
static void test_a_batch_without_loss_positions_has_zero_loss_and_gradient(void **state)
{
    (void)state;
    ModelConfig c = small_model(SINK_NONE, GATE_NONE, 1);
    Batch b;
    batch_alloc(&b, B, T);
    fill_batch(&b, 7, c.vocab_size);
    for (int i = 0; i < B * T; i++) b.loss_mask[i] = 0.0f;
    size_t n = n_params_of(&c);
    float *grad = malloc(n * sizeof(float));
    double loss = sharded_pass(&c, 2, 2, &b, grad);
    if (loss != 0.0) fail_msg("loss %.9g, want 0", loss);
    for (size_t i = 0; i < n; i++)
        if (grad[i] != 0.0f) fail_msg("gradient %zu is %.9g, want 0", i, grad[i]);
    free(grad);
    batch_free(&b);
}

/* Validation passes (no tape) give the whole batch's loss and touch no gradient. */
static void test_forward_only_passes_give_the_loss_and_no_gradients(void **state)
{
    (void)state;
    autograd_set_threads(2);
    ModelConfig c = small_model(SINK_TOKEN, GATE_NONE, 1);
    Batch b;
    batch_alloc(&b, B, T);
    fill_batch(&b, 8, c.vocab_size);
    size_t n = n_params_of(&c);
    float *grad = malloc(n * sizeof(float));
    double want = sharded_pass(&c, 1, 2, &b, grad);
    Transformer m;
    init_model(&m, &c);
    BatchShards s;
    batch_shards_init(&s, &m, 3, B, T);
    double got = batch_shards_pass(&s, &b, 0, 1.0f);
    if (fabs(got - want) > 1e-6 * fabs(want)) fail_msg("forward-only loss %.9g, whole %.9g", got, want);
    for (int k = 0; k < s.n; k++)
        for (size_t i = 0; i < n; i++)
            if (s.model[k]->params.grad[i] != 0.0f) fail_msg("shard %d wrote gradient %zu", k, i);
    batch_shards_free(&s);
    transformer_free(&m);
    free(grad);
    batch_free(&b);
}

static void test_shard_count_rules(void **state)
{
    (void)state;
    assert_int_equal(batch_shards_resolve(0, 16), 2);
    assert_int_equal(batch_shards_resolve(0, 7), 1);
    assert_int_equal(batch_shards_resolve(0, 1), 1);
    assert_int_equal(batch_shards_resolve(4, 16), 4);

    Config c;
    config_defaults(&c);
    char msg[512];
    c.train.batch_size = 12;
    c.train.batch_shards = 5;
    assert_int_equal(train_config_check(&c.train, msg, sizeof msg), -1);
    if (!strstr(msg, "train.batch_shards (5) must divide train.batch_size (12)"))
        fail_msg("unexpected message: %s", msg);
    c.train.batch_shards = 3;
    assert_int_equal(train_config_check(&c.train, msg, sizeof msg), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replica_computes_the_same_gradients_into_its_own_buffer),
        cmocka_unit_test(test_shards_give_the_whole_batch_loss_and_gradients),
        cmocka_unit_test(test_a_shard_without_loss_positions_counts_nothing),
        cmocka_unit_test(test_shards_are_bit_identical_across_thread_counts),
        cmocka_unit_test(test_scaled_passes_accumulate),
        cmocka_unit_test(test_a_batch_without_loss_positions_has_zero_loss_and_gradient),
        cmocka_unit_test(test_forward_only_passes_give_the_loss_and_no_gradients),
        cmocka_unit_test(test_shard_count_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
