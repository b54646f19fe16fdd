/* test_optim.c: the optimizer against closed forms (sign step, pure decay, plain SGD), the
 * schedule at its landmarks, clipping, and torch.optim.AdamW / SGD trajectories from the committed
 * fixture tests/fixtures/optim/torch_optim.txt (tests/reference/adamw_fixture.py). */
#include "tests/testutil.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/optim.h"

static const ParamGroup GROUPS[4] = {PARAM_MATRIX, PARAM_VECTOR, PARAM_EMBEDDING, PARAM_SINK};
static const char *const GROUP_NAMES[4] = {"matrix", "vector", "embedding", "sink"};

/* One parameter per group: "matrix" (3, 4), "vector" (5), "embedding" (4, 3), "sink" (2). */
static void make_block(ParamBlock *pb)
{
    static const int shapes[4][2] = {{3, 4}, {5, 0}, {4, 3}, {2, 0}};
    params_init(pb);
    for (int i = 0; i < 4; i++)
        params_add(pb, GROUP_NAMES[i], GROUPS[i], shapes[i][1] ? 2 : 1, shapes[i]);
    params_finalize(pb);
}

static TrainConfig adamw_config(void)
{
    TrainConfig tc;
    memset(&tc, 0, sizeof tc);
    tc.optimizer = OPT_ADAMW;
    tc.steps = 100;
    tc.lr = 1e-3f;
    tc.beta1 = 0.9f;
    tc.beta2 = 0.95f;
    tc.eps = 1e-8f;
    tc.decay = DECAY_MATRICES;
    tc.schedule = SCHED_COSINE;
    return tc;
}

/* With beta1 = beta2 = 0, m = g and v = g^2, so the update is lr * g / (|g| + eps): a sign step. */
static void test_adamw_with_zero_betas_is_sign_step(void **state)
{
    ParamBlock pb;
    make_block(&pb);
    TrainConfig tc = adamw_config();
    tc.beta1 = tc.beta2 = 0.0f;
    tc.eps = 1e-12f;
    TestRng r = {1};
    trng_fill(&r, pb.data, pb.n, -1, 1);
    float *want = malloc(pb.n * sizeof *want);
    for (int t = 1; t <= 3; t++) {
        for (size_t i = 0; i < pb.n; i++) {
            float g = trng_uniform(&r, 1e-3f, 2.0f) * (trng_next(&r) & 1 ? 1.0f : -1.0f);
            pb.grad[i] = g;
            want[i] = pb.data[i] - 0.01f * (g > 0 ? 1.0f : -1.0f);
        }
        optim_step(&pb, &tc, t, 0.01f);
        assert_close("param after sign step", pb.data, want, pb.n, 1e-6, 1e-6);
    }
    free(want);
    params_free(&pb);
}

/* Zero gradients leave only decoupled decay: p *= 1 - lr*wd on decaying groups, nothing else. */
static void test_weight_decay_alone_shrinks_by_one_minus_lr_wd(void **state)
{
    ParamBlock pb;
    make_block(&pb);
    TrainConfig tc = adamw_config();
    tc.weight_decay = 0.1f;
    TestRng r = {2};
    trng_fill(&r, pb.data, pb.n, -1, 1);
    float *before = malloc(pb.n * sizeof *before), *want = malloc(pb.n * sizeof *want);
    memcpy(before, pb.data, pb.n * sizeof *before);
    for (size_t i = 0; i < pb.n; i++) want[i] = before[i];
    const Param *w = params_find(&pb, "matrix");
    for (size_t i = 0; i < w->t.size; i++)
        want[w->offset + i] = (float)((double)before[w->offset + i] * (1.0 - 0.5 * 0.1));
    optim_step(&pb, &tc, 1, 0.5f);
    assert_close("param after decay-only step", pb.data, want, pb.n, 0, 3e-7);
    free(before);
    free(want);
    params_free(&pb);
}

/* The policy table of train/config.h: which groups decay. Sinks decay only under DECAY_ALL. */
static void test_decay_groups_follow_policy(void **state)
{
    static const DecayGroups policies[4] = {DECAY_MATRICES, DECAY_MATRICES_EMBEDDINGS,
                                            DECAY_ALL_BUT_SINKS, DECAY_ALL};
    static const char *const pnames[4] = {"matrices", "matrices_embeddings", "all_but_sinks", "all"};
    /* expected[policy][group], from the documented policies */
    static const int expected[4][4] = {{1, 0, 0, 0}, {1, 0, 1, 0}, {1, 1, 1, 0}, {1, 1, 1, 1}};
    for (int p = 0; p < 4; p++) {
        ParamBlock pb;
        make_block(&pb);
        for (size_t i = 0; i < pb.n; i++) pb.data[i] = 1.0f;
        TrainConfig tc = adamw_config();
        tc.weight_decay = 0.5f;
        tc.decay = policies[p];
        optim_step(&pb, &tc, 1, 0.1f);
        for (int g = 0; g < 4; g++) {
            const Param *q = params_find(&pb, GROUP_NAMES[g]);
            int shrank = pb.data[q->offset] < 1.0f;
            if (shrank != expected[p][g])
                fail_msg("decay %s: group %s %s, expected it %s", pnames[p], GROUP_NAMES[g],
                         shrank ? "decayed" : "did not decay", expected[p][g] ? "to" : "not to");
        }
        params_free(&pb);
    }
}

/* SGD without momentum is p -= lr * (g + wd p) (wd on decaying groups only, as torch's L2). */
static void test_sgd_without_momentum_is_plain_gradient_step(void **state)
{
    ParamBlock pb;
    make_block(&pb);
    TrainConfig tc = adamw_config();
    tc.optimizer = OPT_SGD;
    tc.weight_decay = 0.01f;
    TestRng r = {3};
    trng_fill(&r, pb.data, pb.n, -1, 1);
    trng_fill(&r, pb.grad, pb.n, -1, 1);
    float *want = malloc(pb.n * sizeof *want);
    for (int k = 0; k < pb.n_params; k++) {
        const Param *q = &pb.params[k];
        double wd = q->group == PARAM_MATRIX ? 0.01 : 0.0;
        for (size_t i = q->offset; i < q->offset + q->t.size; i++)
            want[i] = (float)(pb.data[i] - 0.1 * (pb.grad[i] + wd * pb.data[i]));
    }
    optim_step(&pb, &tc, 1, 0.1f);
    assert_close("param after sgd step", pb.data, want, pb.n, 1e-7, 1e-6);
    free(want);
    params_free(&pb);
}

static void check_lr(const char *what, float got, double want)
{
    if (fabs(got - want) > 1e-6 * fabs(want) + 1e-12)
        fail_msg("%s: lr %.9g, want %.9g (rtol 1e-6)", what, got, want);
}

static void test_lr_warmup_is_linear_from_lr_over_w_to_lr(void **state)
{
    TrainConfig tc = adamw_config();
    tc.lr = 1e-3f;
    tc.min_lr = 1e-4f;
    tc.warmup_steps = 10;
    check_lr("warm-up first update (step 0)", optim_lr(&tc, 0), 1e-3 / 10);
    check_lr("warm-up step 4", optim_lr(&tc, 4), 1e-3 * 5 / 10);
    check_lr("warm-up last update (step 9)", optim_lr(&tc, 9), 1e-3);
    check_lr("first decay step (step 10)", optim_lr(&tc, 10), 1e-3);
}

static void test_lr_cosine_midpoint_and_floor(void **state)
{
    TrainConfig tc = adamw_config();
    tc.lr = 1e-3f;
    tc.min_lr = 1e-4f;
    tc.warmup_steps = 10;
    tc.steps = 110;
    check_lr("cosine midpoint (step 60)", optim_lr(&tc, 60), (1e-3 + 1e-4) / 2);
    check_lr("cosine quarter (step 35)", optim_lr(&tc, 35),
             1e-4 + 0.9e-3 * 0.5 * (1 + cos(3.14159265358979 / 4)));
    check_lr("past the end (step 110)", optim_lr(&tc, 110), 1e-4);
    check_lr("far past the end", optim_lr(&tc, 100000), 1e-4);
    check_lr("last update (step 109)", optim_lr(&tc, 109),
             1e-4 + 0.9e-3 * 0.5 * (1 + cos(3.14159265358979 * 0.99)));
}

static void test_lr_linear_and_constant(void **state)
{
    TrainConfig tc = adamw_config();
    tc.lr = 2e-3f;
    tc.min_lr = 0.0f;
    tc.steps = 100;
    tc.schedule = SCHED_LINEAR;
    check_lr("linear start", optim_lr(&tc, 0), 2e-3);
    check_lr("linear midpoint", optim_lr(&tc, 50), 1e-3);
    check_lr("linear step 75", optim_lr(&tc, 75), 0.5e-3);
    tc.schedule = SCHED_CONSTANT;
    tc.warmup_steps = 4;
    check_lr("constant in warm-up (step 1)", optim_lr(&tc, 1), 2e-3 * 2 / 4);
    check_lr("constant after warm-up", optim_lr(&tc, 99), 2e-3);
}

static double grad_norm(const ParamBlock *pb)
{
    double s = 0;
    for (size_t i = 0; i < pb->n; i++) s += (double)pb->grad[i] * pb->grad[i];
    return sqrt(s);
}

static void test_clip_scales_global_norm_to_max_norm(void **state)
{
    ParamBlock pb;
    params_init(&pb);
    int big[2] = {300, 200}, small[1] = {7};
    params_add(&pb, "big", PARAM_MATRIX, 2, big);
    params_add(&pb, "small", PARAM_VECTOR, 1, small);
    params_finalize(&pb);
    TestRng r = {4};
    trng_fill(&r, pb.grad, pb.n, -1, 1);
    double before = grad_norm(&pb);
    float *g0 = malloc(pb.n * sizeof *g0), *want = malloc(pb.n * sizeof *want);
    memcpy(g0, pb.grad, pb.n * sizeof *g0);
    float ret = optim_clip_grad(&pb, 1.0f);
    if (fabs(ret - before) > 1e-6 * before)
        fail_msg("returned norm %.9g, want the pre-clip norm %.9g", ret, before);
    double after = grad_norm(&pb);
    if (fabs(after - 1.0) > 1e-6) fail_msg("norm after clipping %.9g, want 1 (atol 1e-6)", after);
    for (size_t i = 0; i < pb.n; i++) want[i] = (float)(g0[i] / before);
    assert_close("clipped grad direction", pb.grad, want, pb.n, 1e-9, 1e-6);
    /* below the threshold nothing changes, bit for bit */
    memcpy(g0, pb.grad, pb.n * sizeof *g0);
    optim_clip_grad(&pb, 10.0f);
    assert_true(memcmp(g0, pb.grad, pb.n * sizeof *g0) == 0);
    free(g0);
    free(want);
    params_free(&pb);
}

static void test_clip_norm_is_identical_across_thread_counts(void **state)
{
    ParamBlock pb;
    params_init(&pb);
    int shape[2] = {1000, 300};
    params_add(&pb, "w", PARAM_MATRIX, 2, shape);
    params_finalize(&pb);
    TestRng r = {5};
    trng_fill(&r, pb.grad, pb.n, -1, 1);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    float n1 = optim_clip_grad(&pb, 0);
    omp_set_num_threads(3);
    float n3 = optim_clip_grad(&pb, 0);
    omp_set_num_threads(saved);
    if (memcmp(&n1, &n3, sizeof n1) != 0)
        fail_msg("grad norm with 1 thread %.9g != with 3 threads %.9g", n1, n3);
    params_free(&pb);
}

/* Elementwise updates split across threads must give the same bits as one thread. */
static void test_step_is_identical_across_thread_counts(void **state)
{
    ParamBlock a, b;
    int shape[2] = {300, 100}, vec[1] = {20000};
    for (int k = 0; k < 2; k++) {
        ParamBlock *pb = k ? &b : &a;
        params_init(pb);
        params_add(pb, "w", PARAM_MATRIX, 2, shape);
        params_add(pb, "b", PARAM_VECTOR, 1, vec);
        params_finalize(pb);
        TestRng r = {6};
        trng_fill(&r, pb->data, pb->n, -1, 1);
    }
    TrainConfig tc = adamw_config();
    tc.weight_decay = 0.1f;
    int saved = omp_get_max_threads();
    for (int t = 1; t <= 3; t++) {
        TestRng r = {(uint64_t)(100 + t)};
        trng_fill(&r, a.grad, a.n, -1, 1);
        memcpy(b.grad, a.grad, a.n * sizeof(float));
        omp_set_num_threads(1);
        optim_step(&a, &tc, t, 1e-2f);
        omp_set_num_threads(3);
        optim_step(&b, &tc, t, 1e-2f);
    }
    omp_set_num_threads(saved);
    for (size_t i = 0; i < a.n; i++)
        if (memcmp(&a.data[i], &b.data[i], sizeof(float)) != 0 || memcmp(&a.v[i], &b.v[i], sizeof(float)) != 0)
            fail_msg("param[%zu] after 3 steps: 1 thread %.9g, 3 threads %.9g", i, a.data[i], b.data[i]);
    params_free(&a);
    params_free(&b);
}

static void test_clip_leaves_nonfinite_gradients_alone(void **state)
{
    ParamBlock pb;
    make_block(&pb);
    for (size_t i = 0; i < pb.n; i++) pb.grad[i] = 5.0f;
    pb.grad[3] = NAN;
    float norm = optim_clip_grad(&pb, 1.0f);
    if (!isnan(norm)) fail_msg("norm with a NaN gradient: %.9g, want NaN", norm);
    if (pb.grad[0] != 5.0f) fail_msg("grad[0] changed to %.9g though the norm is NaN", pb.grad[0]);
    params_free(&pb);
}

/* ---- torch fixture ---- */

static int group_of(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, GROUP_NAMES[i])) return i;
    fail_msg("fixture: unknown group '%s'", s);
    return -1;
}

static DecayGroups decay_of(const char *s)
{
    if (!strcmp(s, "matrices")) return DECAY_MATRICES;
    if (!strcmp(s, "matrices_embeddings")) return DECAY_MATRICES_EMBEDDINGS;
    if (!strcmp(s, "all_but_sinks")) return DECAY_ALL_BUT_SINKS;
    if (!strcmp(s, "all")) return DECAY_ALL;
    fail_msg("fixture: unknown decay '%s'", s);
    return DECAY_ALL;
}

static void read_floats(FILE *f, float *x, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (fscanf(f, "%f", &x[i]) != 1) fail_msg("fixture: %s: value %zu unreadable", what, i);
}

/* Parses one scenario (after its "scenario NAME" line) and replays it. */
static void replay_scenario(FILE *f, const char *scenario)
{
    char key[32], name[64], opt[16], dec[32], grp[16];
    TrainConfig tc = adamw_config();
    assert_int_equal(fscanf(f, " optimizer %15s", opt), 1);
    tc.optimizer = !strcmp(opt, "sgd") ? OPT_SGD : OPT_ADAMW;
    assert_int_equal(fscanf(f, " hyper %f %f %f %f %f", &tc.beta1, &tc.beta2, &tc.eps,
                            &tc.weight_decay, &tc.momentum), 5);
    assert_int_equal(fscanf(f, " decay %31s", dec), 1);
    tc.decay = decay_of(dec);
    ParamBlock pb;
    params_init(&pb);
    float *inits[16];
    int np = 0;
    long pos = ftell(f);
    size_t sz;
    /* First pass over param/init lines declares the parameters (as flat vectors). */
    while (fscanf(f, " %31s", key) == 1 && !strcmp(key, "param")) {
        assert_int_equal(fscanf(f, " %63s %15s %zu", name, grp, &sz), 3);
        int shape[1] = {(int)sz};
        params_add(&pb, name, GROUPS[group_of(grp)], 1, shape);
        inits[np] = malloc(sz * sizeof(float));
        assert_int_equal(fscanf(f, " init %63s", name), 1);
        read_floats(f, inits[np], sz, "init");
        np++;
        pos = ftell(f);
    }
    params_finalize(&pb);
    for (int i = 0; i < np; i++)
        memcpy(pb.data + pb.params[i].offset, inits[i], pb.params[i].t.size * sizeof(float));
    fseek(f, pos, SEEK_SET);
    int t;
    float lr;
    while (fscanf(f, " %31s", key) == 1 && !strcmp(key, "step")) {
        assert_int_equal(fscanf(f, " %d %f", &t, &lr), 2);
        for (int i = 0; i < np; i++) {
            assert_int_equal(fscanf(f, " grad %63s", name), 1);
            Param *q = params_find(&pb, name);
            assert_non_null(q);
            read_floats(f, pb.grad + q->offset, q->t.size, "grad");
        }
        optim_step(&pb, &tc, t, lr);
        for (int i = 0; i < np; i++) {
            assert_int_equal(fscanf(f, " want %63s", name), 1);
            Param *q = params_find(&pb, name);
            float want[64];
            read_floats(f, want, q->t.size, "want");
            char label[160];
            snprintf(label, sizeof label, "%s step %d param '%s'", scenario, t, name);
            assert_close(label, pb.data + q->offset, want, q->t.size, 1e-7, 1e-6);
        }
    }
    assert_string_equal(key, "end");
    for (int i = 0; i < np; i++) free(inits[i]);
    params_free(&pb);
}

static void test_matches_torch_adamw_and_sgd_over_five_steps(void **state)
{
    char path[1024], line[512], name[64];
    snprintf(path, sizeof path, "%s/tests/fixtures/optim/torch_optim.txt", test_src());
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("%s: cannot open (regenerate with tests/reference/adamw_fixture.py)", path);
    assert_non_null(fgets(line, sizeof line, f));   /* the header comment */
    int scenarios = 0;
    while (fscanf(f, " scenario %63s", name) == 1) {
        replay_scenario(f, name);
        scenarios++;
    }
    fclose(f);
    if (scenarios < 3) fail_msg("%s: %d scenarios read, want 3", path, scenarios);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_with_zero_betas_is_sign_step),
        cmocka_unit_test(test_weight_decay_alone_shrinks_by_one_minus_lr_wd),
        cmocka_unit_test(test_decay_groups_follow_policy),
        cmocka_unit_test(test_sgd_without_momentum_is_plain_gradient_step),
        cmocka_unit_test(test_lr_warmup_is_linear_from_lr_over_w_to_lr),
        cmocka_unit_test(test_lr_cosine_midpoint_and_floor),
        cmocka_unit_test(test_lr_linear_and_constant),
        cmocka_unit_test(test_clip_scales_global_norm_to_max_norm),
        cmocka_unit_test(test_clip_norm_is_identical_across_thread_counts),
        cmocka_unit_test(test_step_is_identical_across_thread_counts),
        cmocka_unit_test(test_clip_leaves_nonfinite_gradients_alone),
        cmocka_unit_test(test_matches_torch_adamw_and_sgd_over_five_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
