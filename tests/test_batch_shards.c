/* test_batch_shards.c: a batch cut into shards trains the same model as the whole batch. A
 * replica computes exactly the gradients its model would, into its own buffer; sharded gradients
 * and losses equal the unsharded ones up to float summation order, also when the shards count
 * different numbers of loss positions (MLM-like masks) and for every parameter kind the model
 * has (sink token, KV bias, gates, untied head); the shards' bits do not depend on the thread
 * count; and the shard count rules. */
#include "tests/testutil.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "train/batch_shards.h"
#include "train/config.h"

enum { B = 6, T = 12 };

/* A small model with every parameter pointer kind the replica must remap. */
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

/* The replica's gradients are exactly the model's for the same pass, and land in its own
 * buffer: the model's stay untouched. */
static void test_replica_computes_the_same_gradients_into_its_own_buffer(void **state)
{
    (void)state;
    autograd_set_threads(1);
    ModelConfig c = small_model(SINK_TOKEN, GATE_HEADWISE, 0);
    Transformer m, r;
    init_model(&m, &c);
    transformer_replica(&r, &m);
    assert_ptr_equal(r.params.data, m.params.data);
    assert_ptr_not_equal(r.params.grad, m.params.grad);
    Batch b;
    batch_alloc(&b, 2, T);
    fill_batch(&b, 3, c.vocab_size);
    Graph g;
    graph_init(&g, transformer_measure_arena(&m, 2, T, NULL, 1), TRANSFORMER_MAX_NODES);

    graph_backward(&g, transformer_forward(&m, &g, &b, NULL));
    float *want = malloc(m.params.n * sizeof(float));
    memcpy(want, m.params.grad, m.params.n * sizeof(float));
    params_zero_grad(&m.params);
    graph_reset(&g);
    graph_backward(&g, transformer_forward(&r, &g, &b, NULL));
    for (size_t i = 0; i < m.params.n; i++)
        if (m.params.grad[i] != 0.0f) fail_msg("the replica's backward wrote the model's gradient %zu", i);
    assert_close("replica grad", r.params.grad, want, m.params.n, 0.0, 0.0);
    /* every parameter got some gradient through the replica, so none was left bound to m */
    for (int p = 0; p < r.params.n_params; p++) {
        const Param *q = &r.params.params[p];
        double s = 0.0;
        for (size_t i = 0; i < q->t.size; i++) s += fabs(q->t.grad[i]);
        if (s == 0.0 && strstr(q->name, "sink") == NULL)
            fail_msg("parameter %s has no gradient in the replica", q->name);
    }
    free(want);
    graph_free(&g);
    batch_free(&b);
    transformer_free(&r);
    transformer_free(&m);
}

/* Loss and gradients of n shards after reduce, with the given threads. */
static double sharded_pass(const ModelConfig *c, int n, int threads, const Batch *b, float *grad)
{
    autograd_set_threads(threads);
    Transformer m;
    init_model(&m, c);
    BatchShards s;
    batch_shards_init(&s, &m, n, B, T);
    params_zero_grad(&m.params);
    double loss = batch_shards_pass(&s, b, 1, 1.0f);
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

static void check_shards_match_whole(const ModelConfig *c)
{
    Batch b;
    batch_alloc(&b, B, T);
    fill_batch(&b, 9, c->vocab_size);
    Transformer probe;
    init_model(&probe, c);
    size_t n = probe.params.n;
    transformer_free(&probe);
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
    size_t n;
    {
        Transformer m;
        init_model(&m, &c);
        n = m.params.n;
        transformer_free(&m);
    }
    float *whole = malloc(n * sizeof(float)), *parts = malloc(n * sizeof(float));
    double l1 = sharded_pass(&c, 1, 1, &b, whole);
    double l2 = sharded_pass(&c, 2, 1, &b, parts);
    if (fabs(l2 - l1) > 1e-6 * fabs(l1)) fail_msg("loss %.9g with 2 shards, %.9g whole", l2, l1);
    assert_close("grad", parts, whole, n, 1e-7, 1e-4);
    free(whole);
    free(parts);
    batch_free(&b);
}

/* The shard count is part of the arithmetic; the thread count is not. */
static void test_shards_are_bit_identical_across_thread_counts(void **state)
{
    (void)state;
    int saved = omp_get_max_threads();
    ModelConfig c = small_model(SINK_KV_BIAS, GATE_NONE, 1);
    Batch b;
    batch_alloc(&b, B, T);
    fill_batch(&b, 5, c.vocab_size);
    Transformer m;
    init_model(&m, &c);
    size_t n = m.params.n;
    transformer_free(&m);
    float *one = malloc(n * sizeof(float)), *more = malloc(n * sizeof(float));
    double l1 = sharded_pass(&c, 3, 1, &b, one);
    for (int threads = 2; threads <= 4; threads += 2) {
        double lt = sharded_pass(&c, 3, threads, &b, more);
        if (lt != l1) fail_msg("loss %.9g at %d threads, %.9g at 1", lt, threads, l1);
        assert_close("grad across threads", more, one, n, 0.0, 0.0);
    }
    free(one);
    free(more);
    batch_free(&b);
    autograd_set_threads(saved);
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
        cmocka_unit_test(test_shard_count_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
