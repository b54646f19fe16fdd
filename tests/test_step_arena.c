/* test_step_arena.c: the step arena is sized by measurement (transformer_measure_arena): a
 * measuring arena counts exactly what a real one uses, the count follows the thread count (the
 * attention keeps scratch per thread), measuring leaves the model as it was, and training runs
 * at 32 threads with batch 1, where the old hand-kept formula overflowed. */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/transformer.h"

static ModelConfig small_model(void)
{
    ModelConfig c;
    model_config_defaults(&c);
    c.n_layer = 2;
    c.d_model = 32;
    c.n_head = 2;
    c.d_ff = 64;
    c.vocab_size = 41;
    c.max_seq_len = 24;
    model_config_resolve(&c, 24);
    return c;
}

static void fill_batch(Batch *b, TestRng *r, int V)
{
    for (int i = 0; i < b->B * b->T; i++) {
        b->tokens[i] = trng_int(r, 0, V - 1);
        b->targets[i] = trng_int(r, 0, V - 1);
        b->positions[i] = i % b->T;
        b->loss_mask[i] = (float)trng_int(r, 0, 1);
    }
}

/* Forward and backward of one batch on g; returns the arena's high-water mark. */
static size_t run_pass(Transformer *m, Graph *g, const Batch *b)
{
    graph_reset(g);
    g->record = 1;
    ForwardTrace tr = {.keep_attn = 1, .keep_hidden = 1};
    graph_backward(g, transformer_forward(m, g, b, &tr));
    return g->arena.high_water;
}

static void test_measuring_arena_counts_what_a_real_arena_uses(void **s)
{
    (void)s;
    autograd_set_threads(3);
    ModelConfig c = small_model();
    Transformer m;
    assert_int_equal(transformer_init(&m, &c, 5, NULL, 0), 0);
    TestRng r = {17};
    Batch b;
    batch_alloc(&b, 3, 24);
    fill_batch(&b, &r, c.vocab_size);
    Graph counting, real;
    graph_init_measuring(&counting, TRANSFORMER_MAX_NODES);
    size_t counted = run_pass(&m, &counting, &b);
    graph_init(&real, counted, TRANSFORMER_MAX_NODES);
    size_t used = run_pass(&m, &real, &b);
    printf("  counted %zu bytes, a real arena of that capacity used %zu\n", counted, used);
    assert_int_equal(counted, used);
    ForwardTrace want = {.keep_attn = 1, .keep_hidden = 1};
    size_t sized = transformer_measure_arena(&m, 3, 24, &want, 1);
    if (sized < used)
        fail_msg("transformer_measure_arena gave %zu bytes, the pass uses %zu", sized, used);
    graph_free(&counting);
    graph_free(&real);
    batch_free(&b);
    transformer_free(&m);
}

static void test_measured_size_grows_with_the_thread_count(void **s)
{
    (void)s;
    ModelConfig c = small_model();
    Transformer m;
    assert_int_equal(transformer_init(&m, &c, 5, NULL, 0), 0);
    autograd_set_threads(1);
    size_t one = transformer_measure_arena(&m, 1, 24, NULL, 1);
    autograd_set_threads(32);
    size_t many = transformer_measure_arena(&m, 1, 24, NULL, 1);
    printf("  batch 1 x 24 tokens: %zu bytes with 1 thread, %zu with 32\n", one, many);
    if (many <= one) fail_msg("32 threads measured %zu bytes, 1 thread %zu: per-thread attention "
                              "scratch is not counted", many, one);
    transformer_free(&m);
}

static void test_measuring_leaves_parameters_and_gradients_untouched(void **s)
{
    (void)s;
    autograd_set_threads(2);
    ModelConfig c = small_model();
    Transformer m;
    assert_int_equal(transformer_init(&m, &c, 5, NULL, 0), 0);
    size_t n = m.params.n;
    TestRng r = {3};
    trng_fill(&r, m.params.grad, n, -1.0f, 1.0f);
    float *data = malloc(n * sizeof(float)), *grad = malloc(n * sizeof(float));
    memcpy(data, m.params.data, n * sizeof(float));
    memcpy(grad, m.params.grad, n * sizeof(float));
    ForwardTrace want = {.keep_hidden = 1, .grad_input = 1};
    transformer_measure_arena(&m, 2, 24, &want, 1);
    assert_memory_equal(m.params.data, data, n * sizeof(float));
    assert_memory_equal(m.params.grad, grad, n * sizeof(float));
    free(data);
    free(grad);
    transformer_free(&m);
}

/* The reproduction on the built-in corpus: the quick start's model at 32 threads, batch
 * 1, 128 tokens stopped with "arena 'step' overflow" under the hand-kept formula. Probes run
 * too, so their two graphs are sized at 32 threads as well. */
static void test_training_at_32_threads_and_batch_1_runs(void **s)
{
    (void)s;
    char dir[512], cmd[4096], out[8192];
    test_tmpdir(dir, sizeof dir, "arena32");
    snprintf(cmd, sizeof cmd,
             "%s train %s/tests/configs/tiny.yaml --out %s/run --quiet "
             "--set model.n_layer=4 --set model.d_model=128 --set model.n_head=4 "
             "--set model.d_ff=512 --set model.max_seq_len=128 --set data.seq_len=128 "
             "--set train.threads=32 --set train.batch_size=1 --set train.steps=3 "
             "--set train.eval_every=3 --set probe.every=3 --set probe.seq_len=128 "
             "--set probe.n_seq=2 --set checkpoint.every=0 --set checkpoint.log_spaced=false",
             test_bin(), test_src(), dir);
    int rc = test_run(cmd, out, sizeof out);
    if (rc != 0) fail_msg("%s\nexit %d: %.3000s", cmd, rc, out);
    char path[700];
    snprintf(path, sizeof path, "%s/run/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("%s: missing after a successful run", path);
    int lines = 0, ch;
    while ((ch = fgetc(f)) != EOF) lines += ch == '\n';
    fclose(f);
    if (lines < 3) fail_msg("%s: %d lines, want a line per step", path, lines);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_measuring_arena_counts_what_a_real_arena_uses),
        cmocka_unit_test(test_measured_size_grows_with_the_thread_count),
        cmocka_unit_test(test_measuring_leaves_parameters_and_gradients_untouched),
        cmocka_unit_test(test_training_at_32_threads_and_batch_1_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
