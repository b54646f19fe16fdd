/* test_metrics.c: the sink metrics and onset detection on hand-built inputs whose answers are
 * closed forms worked out by hand (SCIENCE.md "Metrics"). (What probes cost is measured on real
 * runs: metrics.jsonl's probe_seconds.) */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analysis/metrics.h"
#include "analysis/onset.h"

#define TOL 1e-6

static void expect_near(const char *name, double got, double want, double tol)
{
    float g = (float)got, w = (float)want;
    assert_close(name, &g, &w, 1, tol, 0);
}

/* causal: key j visible to query i iff j <= i; the same table in every sequence */
static void fill_causal(uint8_t *allowed, int B, int T)
{
    for (int b = 0; b < B; b++)
        for (int i = 0; i < T; i++)
            for (int j = 0; j < T; j++) allowed[((size_t)b * T + i) * T + j] = j <= i;
}

/* every row uniform over its allowed keys, in every head */
static void fill_uniform(float *attn, const uint8_t *allowed, int B, int H, int T)
{
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                const uint8_t *m = allowed + ((size_t)b * T + i) * T;
                int n = 0;
                for (int j = 0; j < T; j++) n += m[j];
                for (int j = 0; j < T; j++)
                    attn[(((size_t)b * H + h) * T + i) * T + j] = m[j] ? 1.0f / n : 0.0f;
            }
}

/* ---- alpha ------------------------------------------------------------------------------ */

/* All mass on key 0: alpha_0 = 1 in every head, every other key 0, and Sink^eps = 1. */
static void test_alpha0_all_mass_on_key0(void **state)
{
    enum { B = 3, H = 2, T = 5 };
    uint8_t allowed[B * T * T];
    float attn[B * H * T * T] = {0}, alpha[H * T], n_q[T];
    fill_causal(allowed, B, T);
    for (int bh = 0; bh < B * H; bh++)
        for (int i = 0; i < T; i++) attn[((size_t)bh * T + i) * T] = 1;
    metrics_alpha(alpha, n_q, attn, allowed, NULL, 0, B, H, T);
    float want[H * T] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0};
    float want_nq[T] = {5, 4, 3, 2, 1};
    assert_close("alpha", alpha, want, H * T, TOL, 0);
    assert_close("n_q (causal: T - k)", n_q, want_nq, T, TOL, 0);
    expect_near("sink_rate@0.3", metrics_sink_rate(alpha, H, T, 0.3f), 1, 0);
    expect_near("sink_rate@0.8", metrics_sink_rate(alpha, H, T, 0.8f), 1, 0);
}

/* Gu et al.: uniform causal attention gives alpha_0 = H_T / T (0.0741 at T = 64), and
 * alpha_k = (H_T - H_k) / (T - k), so an untrained model scores Sink^0.3 = 0. */
static void test_alpha0_uniform_causal_is_harmonic(void **state)
{
    enum { B = 2, H = 3, T = 64 };
    uint8_t *allowed = malloc(B * T * T);
    float *attn = malloc(sizeof(float) * B * H * T * T), alpha[H * T], want[H * T];
    fill_causal(allowed, B, T);
    fill_uniform(attn, allowed, B, H, T);
    metrics_alpha(alpha, NULL, attn, allowed, NULL, 0, B, H, T);
    double harm[T + 1];
    harm[0] = 0;
    for (int t = 1; t <= T; t++) harm[t] = harm[t - 1] + 1.0 / t;
    for (int h = 0; h < H; h++)
        for (int k = 0; k < T; k++) want[h * T + k] = (float)((harm[T] - harm[k]) / (T - k));
    expect_near("alpha0 (H_64/64)", alpha[0], 0.07412329537040264, TOL);
    expect_near("metrics_alpha0_uniform_causal(64)", metrics_alpha0_uniform_causal(64),
                0.07412329537040264, 1e-12);
    assert_close("alpha_k", alpha, want, H * T, TOL, 0);
    expect_near("sink_rate@0.3", metrics_sink_rate(alpha, H, T, 0.3f), 0, 0);
    free(allowed);
    free(attn);
}

/* Bidirectional uniform rows: every key gets 1/T from all T queries. */
static void test_alpha_bidirectional_uniform_is_one_over_T(void **state)
{
    enum { B = 2, H = 2, T = 8 };
    uint8_t allowed[B * T * T];
    float attn[B * H * T * T], alpha[H * T], n_q[T], want[H * T], want_nq[T];
    memset(allowed, 1, sizeof allowed);
    fill_uniform(attn, allowed, B, H, T);
    metrics_alpha(alpha, n_q, attn, allowed, NULL, 0, B, H, T);
    for (int i = 0; i < H * T; i++) want[i] = 1.0f / T;
    for (int k = 0; k < T; k++) want_nq[k] = T;
    assert_close("alpha (bidirectional)", alpha, want, H * T, TOL, 0);
    assert_close("n_q (bidirectional: T)", n_q, want_nq, T, TOL, 0);
}

/* Causal window 3 at T = 6, uniform rows: row 0 = {1}, row 1 = {1/2, 1/2}, rows 2..5 = 1/3 over
 * three keys. Q_0 = {0,1,2}: (1 + 1/2 + 1/3)/3 = 11/18; Q_1 = {1,2,3}: (1/2 + 1/3 + 1/3)/3 =
 * 7/18; later keys 1/3; |Q_k| = 3,3,3,3,2,1. */
static void test_alpha_window_normaliser(void **state)
{
    enum { T = 6 };
    const uint8_t allowed[T * T] = {
        1, 0, 0, 0, 0, 0,
        1, 1, 0, 0, 0, 0,
        1, 1, 1, 0, 0, 0,
        0, 1, 1, 1, 0, 0,
        0, 0, 1, 1, 1, 0,
        0, 0, 0, 1, 1, 1,
    };
    float attn[T * T], alpha[T], n_q[T];
    fill_uniform(attn, allowed, 1, 1, T);
    metrics_alpha(alpha, n_q, attn, allowed, NULL, 0, 1, 1, T);
    float want[T] = {11.0f / 18, 7.0f / 18, 1.0f / 3, 1.0f / 3, 1.0f / 3, 1.0f / 3};
    float want_nq[T] = {3, 3, 3, 3, 2, 1};
    assert_close("alpha (window 3)", alpha, want, T, TOL, 0);
    assert_close("n_q (window 3)", n_q, want_nq, T, TOL, 0);
}

/* Causal T = 4 with `isolate 2` (row 2 sees only itself) and, separately, `reset 2` (queries >= 2
 * see no key < 2); uniform rows. isolate: Q_0 = {0,1,3}: (1 + 1/2 + 1/4)/3 = 7/12, Q_1 = {1,3}:
 * 3/8, Q_2 = {2,3}: 5/8, Q_3 = {3}: 1/4. reset: Q_0 = {0,1}: 3/4, Q_1 = {1}: 1/2, Q_2 = {2,3}:
 * 3/4, Q_3 = {3}: 1/2. */
static void test_alpha_edit_normalisers(void **state)
{
    enum { T = 4 };
    const uint8_t isolate[T * T] = {
        1, 0, 0, 0,
        1, 1, 0, 0,
        0, 0, 1, 0,
        1, 1, 1, 1,
    };
    const uint8_t reset[T * T] = {
        1, 0, 0, 0,
        1, 1, 0, 0,
        0, 0, 1, 0,
        0, 0, 1, 1,
    };
    float attn[T * T], alpha[T], n_q[T];
    fill_uniform(attn, isolate, 1, 1, T);
    metrics_alpha(alpha, n_q, attn, isolate, NULL, 0, 1, 1, T);
    float want_iso[T] = {7.0f / 12, 3.0f / 8, 5.0f / 8, 1.0f / 4}, nq_iso[T] = {3, 2, 2, 1};
    assert_close("alpha (isolate 2)", alpha, want_iso, T, TOL, 0);
    assert_close("n_q (isolate 2)", n_q, nq_iso, T, TOL, 0);
    fill_uniform(attn, reset, 1, 1, T);
    metrics_alpha(alpha, n_q, attn, reset, NULL, 0, 1, 1, T);
    float want_rst[T] = {0.75f, 0.5f, 0.75f, 0.5f}, nq_rst[T] = {2, 1, 2, 1};
    assert_close("alpha (reset 2)", alpha, want_rst, T, TOL, 0);
    assert_close("n_q (reset 2)", n_q, nq_rst, T, TOL, 0);
}

/* Two causal sequences of T = 4; the second ends in two PADs (each PAD query sees only itself, with
 * all its mass there). Sequence 0: alpha_0 = (1 + 1/2 + 1/3 + 1/4)/4 = 25/48; sequence 1:
 * (1 + 1/2)/2 = 3/4; mean 61/96. Key 2 exists only in sequence 0: alpha_2 = (1/3 + 1/4)/2 = 7/24
 * (a PAD query counted would pull it to (7/24 + 1)/2). |Q_2| averages to (2 + 0)/2 = 1. */
static void test_alpha_pad_queries_excluded(void **state)
{
    enum { B = 2, T = 4 };
    const int32_t doc[B * T] = {0, 0, 0, 0, 0, 0, -1, -1};
    uint8_t allowed[B * T * T];
    fill_causal(allowed, B, T);
    for (int i = 2; i < T; i++)
        for (int j = 0; j < T; j++) allowed[(T + i) * T + j] = i == j;
    float attn[B * T * T], alpha[T], n_q[T];
    fill_uniform(attn, allowed, B, 1, T);
    metrics_alpha(alpha, n_q, attn, allowed, doc, 0, B, 1, T);
    /* key 1: sequence 0 (1/2 + 1/3 + 1/4)/3 = 13/36, sequence 1: 1/2; mean 31/72 */
    float want[T] = {61.0f / 96, 31.0f / 72, 7.0f / 24, 0.25f};
    float want_nq[T] = {3, 2, 1, 0.5f};
    assert_close("alpha (PAD excluded)", alpha, want, T, TOL, 0);
    assert_close("n_q (PAD excluded)", n_q, want_nq, T, TOL, 0);
}

/* Sigmoid rows that do not sum to 1: the proxy divides each row by its sum.
 * rows {0.2}, {0.3, 0.1}, {0.4, 0.4, 0.2} -> {1}, {3/4, 1/4}, {0.4, 0.4, 0.2}:
 * alpha_0 = (1 + 0.75 + 0.4)/3; raw alpha_0 = (0.2 + 0.3 + 0.4)/3 = 0.3. */
static void test_alpha_sigmoid_proxy_renormalises_rows(void **state)
{
    enum { T = 3 };
    uint8_t allowed[T * T];
    fill_causal(allowed, 1, T);
    const float attn[T * T] = {0.2f, 0, 0, 0.3f, 0.1f, 0, 0.4f, 0.4f, 0.2f};
    float alpha[T];
    metrics_alpha(alpha, NULL, attn, allowed, NULL, 1, 1, 1, T);
    float want[T] = {2.15f / 3, (0.25f + 0.4f) / 2, 0.2f};
    assert_close("alpha (sigmoid proxy)", alpha, want, T, TOL, 0);
    metrics_alpha(alpha, NULL, attn, allowed, NULL, 0, 1, 1, T);
    float raw[T] = {0.3f, 0.25f, 0.2f};
    assert_close("alpha (raw sigmoid)", alpha, raw, T, TOL, 0);
}

/* Gu et al.'s Sink_1^eps thresholds each sequence before averaging. Causal T = 4, one head.
 * Sequence 0 rows {1}, {.5 .5}, {.2 .4 .4}, {.3 .3 .2 .2}: column 0 sums to 2.0, score 2.0/4 = 0.5;
 * sequence 1 rows {1}, {.1 .9}, {.1 .5 .4}, {0 .5 .25 .25}: 1.2/4 = 0.3. At eps 0.35 one of two
 * (sequence, head) pairs is above: 50%; sinklab's alpha_0 = (0.5 + 0.3)/2 = 0.4 is above, so its
 * sink_rate is 1. At eps 0.31 Gu gives 50%, at eps 0.1 100%, at eps 0.51 0%. */
static void test_sink_rate_gu_thresholds_each_sequence_first(void **state)
{
    enum { B = 2, T = 4 };
    uint8_t allowed[B * T * T];
    fill_causal(allowed, B, T);
    const float attn[B * T * T] = {
        1, 0, 0, 0,   .5f, .5f, 0, 0,   .2f, .4f, .4f, 0,   .3f, .3f, .2f, .2f,
        1, 0, 0, 0,   .1f, .9f, 0, 0,   .1f, .5f, .4f, 0,   0, .5f, .25f, .25f};
    expect_near("sink_rate_gu@0.35", metrics_sink_rate_gu(attn, allowed, NULL, 0, 0.35f, B, 1, T), 50, 0);
    expect_near("sink_rate_gu@0.31", metrics_sink_rate_gu(attn, allowed, NULL, 0, 0.31f, B, 1, T), 50, 0);
    expect_near("sink_rate_gu@0.1", metrics_sink_rate_gu(attn, allowed, NULL, 0, 0.1f, B, 1, T), 100, 0);
    expect_near("sink_rate_gu@0.51", metrics_sink_rate_gu(attn, allowed, NULL, 0, 0.51f, B, 1, T), 0, 0);
    float alpha[T];
    metrics_alpha(alpha, NULL, attn, allowed, NULL, 0, B, 1, T);
    expect_near("alpha_0", alpha[0], 0.4, TOL);
    expect_near("sink_rate@0.35", metrics_sink_rate(alpha, 1, T, 0.35f), 1, 0);
}

/* Gu et al. divide by T - k whatever the mask. Causal window 2 at T = 4 (key 0 seen by queries 0
 * and 1 only), rows {1}, {.6 .4}, {0 .5 .5}, {0 0 .5 .5}, plus a PAD sequence-2 query that would
 * add mass: Gu's score is (1 + .6)/4 = 0.4, sinklab's alpha_0 = 1.6/2 = 0.8. Two heads, the second
 * uniform over its keys: (1 + .5)/4 = 0.375. With the sigmoid proxy, rows scaled by 2 give the
 * same answer. */
static void test_sink_rate_gu_divides_by_T_whatever_the_mask(void **state)
{
    enum { H = 2, T = 4 };
    const uint8_t allowed[T * T] = {1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1};
    const int32_t doc[T] = {0, 0, 0, -1};
    float attn[H * T * T] = {
        1, 0, 0, 0,   .6f, .4f, 0, 0,   0, .5f, .5f, 0,   0, 0, .5f, .5f,
        1, 0, 0, 0,   .5f, .5f, 0, 0,   0, .5f, .5f, 0,   0, 0, .5f, .5f};
    /* the PAD query (row 3) carries mass that must not count */
    attn[3 * T] = 1;
    expect_near("sink_rate_gu@0.39", metrics_sink_rate_gu(attn, allowed, doc, 0, 0.39f, 1, H, T), 50, 0);
    expect_near("sink_rate_gu@0.37", metrics_sink_rate_gu(attn, allowed, doc, 0, 0.37f, 1, H, T), 100, 0);
    expect_near("sink_rate_gu@0.41", metrics_sink_rate_gu(attn, allowed, doc, 0, 0.41f, 1, H, T), 0, 0);
    for (int i = 0; i < H * T * T; i++) attn[i] *= 2;
    expect_near("sink_rate_gu@0.39 (proxy)", metrics_sink_rate_gu(attn, allowed, doc, 1, 0.39f, 1, H, T), 50, 0);
    expect_near("sink_rate_gu@0.39 (raw x2)", metrics_sink_rate_gu(attn, allowed, doc, 0, 0.39f, 1, H, T), 100, 0);
    float alpha[H * T];
    metrics_alpha(alpha, NULL, attn, allowed, doc, 1, 1, H, T);
    expect_near("alpha_0 (allowed queries only)", alpha[0], 0.8, TOL);
}

/* Head 0 attends to itself: alpha_k = 1/(T-k), largest at the last key, which only one query
 * sees; restricted to |Q_k| >= T/4 = 2 the location is key 6 (alpha 1/2). Head 1 puts all mass
 * of queries >= 3 on key 3 (earlier queries on themselves): location 3, alpha 1. */
static void test_sink_location_skips_keys_seen_by_few_queries(void **state)
{
    enum { H = 2, T = 8 };
    uint8_t allowed[T * T];
    fill_causal(allowed, 1, T);
    float attn[H * T * T] = {0}, alpha[H * T], n_q[T], loc_alpha[H];
    int loc[H];
    for (int i = 0; i < T; i++) {
        attn[i * T + i] = 1;
        attn[T * T + i * T + (i >= 3 ? 3 : i)] = 1;
    }
    metrics_alpha(alpha, n_q, attn, allowed, NULL, 0, 1, H, T);
    metrics_sink_location(loc, loc_alpha, alpha, n_q, H, T);
    assert_int_equal(loc[0], 6);
    assert_int_equal(loc[1], 3);
    float want[H] = {0.5f, 1.0f};
    assert_close("loc_alpha", loc_alpha, want, H, TOL, 0);
}

/* BOS wherever it is: sequence 0 = [BOS a b c] with every query on key 0 (alpha 1); sequence 1 =
 * [a b BOS c] uniform causal, alpha_2 = (1/3 + 1/4)/2 = 7/24; mean (1 + 7/24)/2 = 31/48 over 2. */
static void test_alpha_on_bos_tokens(void **state)
{
    enum { B = 2, T = 4, BOS = 256 };
    const int32_t tokens[B * T] = {BOS, 97, 98, 99, 97, 98, BOS, 99};
    uint8_t allowed[B * T * T];
    float attn[B * T * T], out[1];
    fill_causal(allowed, B, T);
    fill_uniform(attn, allowed, B, 1, T);
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) attn[i * T + j] = j == 0;
    int n = metrics_alpha_bos(out, attn, allowed, NULL, tokens, BOS, 0, B, 1, T);
    assert_int_equal(n, 2);
    expect_near("alpha_bos", out[0], 31.0 / 48, TOL);
    const int32_t none[B * T] = {1, 2, 3, 4, 5, 6, 7, 8};
    n = metrics_alpha_bos(out, attn, allowed, NULL, none, BOS, 0, B, 1, T);
    assert_int_equal(n, 0);
    expect_near("alpha_bos (no BOS)", out[0], 0, 0);
}

/* The last non-PAD position, bidirectional uniform: sequence 0 (T = 4) gives 1/4 at key 3;
 * sequence 1 (last position PAD) gives 1/3 at key 2; mean 7/24. */
static void test_alpha_on_last_position(void **state)
{
    enum { B = 2, T = 4 };
    const int32_t doc[B * T] = {0, 0, 0, 0, 0, 0, 0, -1};
    uint8_t allowed[B * T * T];
    memset(allowed, 1, sizeof allowed);
    for (int i = 0; i < T; i++) {
        allowed[(T + i) * T + 3] = i == 3;   /* PAD key never allowed, except to itself */
        if (i < 3) allowed[(T + 3) * T + i] = 0;
    }
    float attn[B * T * T], out[1];
    fill_uniform(attn, allowed, B, 1, T);
    int n = metrics_alpha_last(out, attn, allowed, doc, 0, B, 1, T);
    assert_int_equal(n, 2);
    expect_near("alpha_last", out[0], 7.0 / 24, TOL);
}

/* alpha_learned_sink: mean over non-PAD queries; the PAD query's 0.9 must not count. */
static void test_sink_mass_mean_over_non_pad_queries(void **state)
{
    enum { B = 2, H = 2, T = 2 };
    const int32_t doc[B * T] = {0, 0, 0, -1};
    const float mass[B * H * T] = {0.1f, 0.2f, 0.5f, 0.5f, 0.3f, 0.9f, 0.2f, 0.9f};
    float out[H];
    metrics_sink_mass(out, mass, doc, B, H, T);
    float want[H] = {(0.1f + 0.2f + 0.3f) / 3, (0.5f + 0.5f + 0.2f) / 3};
    assert_close("alpha_learned_sink", out, want, H, TOL, 0);
}

/* ---- norms ------------------------------------------------------------------------------ */

/* Value norms per position (H = 2, D = 2): head 0 has ||v_t|| = 1, 2, 3, 2 -> ratio 1 / 2;
 * head 1 all 5 -> 1. A second sequence with a PAD at position 3 (norm 100, ignored) and head-0
 * norms 4, 2, 3 -> ratio 4 / 3. Means over sequences: 5/6 and 1. */
static void test_value_norm_ratio_includes_key0_in_mean(void **state)
{
    enum { B = 2, T = 4, H = 2, D = 2 };
    const int32_t doc[B * T] = {0, 0, 0, 0, 0, 0, 0, -1};
    const float n0[B * T] = {1, 2, 3, 2, 4, 2, 3, 100};
    float v[B * T * H * D], ratio[H], norms[H * T];
    for (int r = 0; r < B * T; r++) {
        v[r * 4 + 0] = 0.6f * n0[r];
        v[r * 4 + 1] = 0.8f * n0[r];
        v[r * 4 + 2] = r % 2 ? 3 : -4;
        v[r * 4 + 3] = r % 2 ? -4 : 3;
    }
    metrics_norm_ratio(ratio, norms, v, doc, B, T, H, D);
    float want[H] = {(0.5f + 4.0f / 3) / 2, 1};
    assert_close("value_norm_ratio", ratio, want, H, 1e-5, 0);
    float want_norms[H * T] = {2.5f, 2, 3, 2, 5, 5, 5, 5};
    assert_close("value_norm_per_position", norms, want_norms, H * T, 1e-5, 0);
}

/* k_0 = (2, 0); q = (1, 0), (0, 3), (-1, 1): cos 1, 0, -1/sqrt 2; ||q|| ||k_0|| = 2, 6, 2 sqrt 2. */
static void test_qk0_cosine_and_norm_product(void **state)
{
    enum { T = 3, D = 2 };
    const float q[T * D] = {1, 0, 0, 3, -1, 1};
    const float k[T * D] = {2, 0, 7, 7, 7, 7};
    uint8_t allowed[T * T];
    fill_causal(allowed, 1, T);
    float c, np;
    metrics_qk0(&c, &np, q, k, allowed, NULL, 1, T, 1, D);
    expect_near("cos(q_i, k_0)", c, (1 - sqrt(0.5)) / 3, TOL);
    expect_near("||q_i|| ||k_0||", np, (8 + 2 * sqrt(2)) / 3, 1e-5);
    /* a causal window of 2: query 2 no longer sees key 0 and drops out (Q_0 = {0, 1}) */
    const uint8_t window[T * T] = {1, 0, 0, 1, 1, 0, 0, 1, 1};
    metrics_qk0(&c, &np, q, k, window, NULL, 1, T, 1, D);
    expect_near("cos(q_i, k_0) over Q_0 (window 2)", c, 0.5, TOL);
    expect_near("||q_i|| ||k_0|| over Q_0 (window 2)", np, 4, 1e-5);
}

/* Kobayashi, H = 2, D = 2, causal T = 2, rows {1} and {1/2, 1/2} in both heads. Head 0: W_O^0 is
 * the identity onto outputs 0, 1; ||v_0|| = 0.1, ||v_1|| = 0.3, so query 1 gives key 0 the share
 * 0.05 / (0.05 + 0.15) = 1/4: share_0 = (1 + 1/4)/2, share_1 = 3/4. Head 1: W_O^1 maps only v's
 * second coordinate (to output 0); v_0 = (5, 0) is annihilated, so key 0's share is 0 and key 1's
 * is 1 (query 0's zero row contributes 0). */
static void test_norm_attention_weights_by_transformed_value_norm(void **state)
{
    enum { H = 2, T = 2, D = 2, C = 4 };
    uint8_t allowed[T * T];
    fill_causal(allowed, 1, T);
    float attn[H * T * T];
    fill_uniform(attn, allowed, 1, H, T);
    const float v[T * C] = {0.1f, 0, 5, 0, /* t = 1 */ 0, 0.3f, 0, 1};
    float wo[C * C] = {0};
    wo[0 * C + 0] = 1;
    wo[1 * C + 1] = 1;
    wo[0 * C + 3] = 1;
    float share[H * T];
    metrics_norm_attention(share, attn, v, wo, allowed, NULL, 1, H, T, D);
    float want[H * T] = {0.625f, 0.75f, 0, 1};
    assert_close("norm_attention share", share, want, H * T, 1e-6, 0);
}

/* ---- hidden states ---------------------------------------------------------------------- */

/* h_0 = (-8, 0, 0, 6) (norm 10), h_1 = (1,1,1,1) (2), h_2 = (2,2,2,2) (4), h_3 PAD = 100s.
 * ratio0 = 10 / 3. |x| sorted: 0 0 1 1 1 1 2 2 2 2 6 8 -> median (1 + 2)/2, top 8 at (0, 0):
 * top/median = 16/3. */
static void test_massive_activation_ratios(void **state)
{
    enum { T = 4, C = 4 };
    const int32_t doc[T] = {0, 0, 0, -1};
    const float x[T * C] = {-8, 0, 0, 6, 1, 1, 1, 1, 2, 2, 2, 2, 100, 100, 100, 100};
    float r0, tm;
    int pos, chan;
    metrics_massive(&r0, &tm, &pos, &chan, x, doc, 1, T, C);
    expect_near("massive ratio0", r0, 10.0 / 3, 1e-5);
    expect_near("massive top/median", tm, 16.0 / 3, 1e-5);
    assert_int_equal(pos, 0);
    assert_int_equal(chan, 0);
    /* an odd count, one channel: x = -3, 1, 2 -> ratio0 3 / 1.5, median 2, top/median 3/2 */
    const float y[3] = {-3, 1, 2};
    metrics_massive(&r0, &tm, &pos, &chan, y, NULL, 1, 3, 1);
    expect_near("massive ratio0 (C=1)", r0, 3.0 / 1.5, 1e-6);
    expect_near("massive top/median (odd)", tm, 3.0 / 2, 1e-6);
}

static int cmp_float(const void *a, const void *b);

/* top/median against a median taken by sorting, on random values with repeats, zeros, negative
 * zeros and PAD tokens, for odd and even counts. */
static void test_massive_median_matches_a_sort(void **state)
{
    (void)state;
    enum { B = 3, T = 7, C = 5 };
    TestRng r = {77};
    for (int trial = 0; trial < 20; trial++) {
        float x[B * T * C], a[B * T * C];
        int32_t doc[B * T];
        for (int i = 0; i < B * T * C; i++) {
            int kind = trng_int(&r, 0, 5);
            x[i] = kind == 0 ? 0.0f : kind == 1 ? -0.0f : kind == 2 ? (float)trng_int(&r, -3, 3)
                                                                    : trng_uniform(&r, -50, 50);
        }
        /* trial parity decides how many tokens are PAD, so counts are odd and even */
        for (int i = 0; i < B * T; i++) doc[i] = i < trial % 4 ? -1 : 0;
        long n = 0;
        float top = 0;
        for (int i = 0; i < B * T; i++)
            for (int c = 0; c < C && doc[i] >= 0; c++) {
                a[n] = fabsf(x[i * C + c]);
                top = a[n] > top ? a[n] : top;
                n++;
            }
        qsort(a, (size_t)n, sizeof(float), cmp_float);
        double med = n % 2 ? a[n / 2] : 0.5 * ((double)a[n / 2 - 1] + a[n / 2]);
        float r0, tm;
        metrics_massive(&r0, &tm, NULL, NULL, x, doc, B, T, C);
        float want = med > 0 ? (float)(top / med) : 0;
        if (tm != want) fail_msg("trial %d (n %ld): top/median %.9g, sorted %.9g", trial, n, tm, want);
    }
}

/* Uniform causal rows over n = i + 1 keys have entropy log n: the mean over T = 8 queries is
 * log(8!)/8 = 1.32557536; divided by log n every row with n >= 2 gives 1. One-hot rows: 0. */
static void test_entropy_of_uniform_rows_is_log_n(void **state)
{
    enum { T = 8, H = 2 };
    uint8_t allowed[T * T];
    fill_causal(allowed, 1, T);
    float attn[H * T * T] = {0}, ent[H], ent_n[H];
    fill_uniform(attn, allowed, 1, 1, T);
    for (int i = 0; i < T; i++) attn[T * T + i * T] = 1;
    metrics_entropy(ent, ent_n, attn, allowed, NULL, 0, 1, H, T);
    float want[H] = {1.3255753628431564f, 0}, want_n[H] = {1, 0};
    assert_close("entropy", ent, want, H, 1e-6, 0);
    assert_close("entropy / log n", ent_n, want_n, H, 1e-6, 0);
    /* bidirectional uniform: log T everywhere */
    uint8_t all[T * T];
    memset(all, 1, sizeof all);
    fill_uniform(attn, all, 1, 1, T);
    metrics_entropy(ent, ent_n, attn, all, NULL, 0, 1, 1, T);
    expect_near("entropy (bidirectional)", ent[0], log(8.0), 1e-6);
    expect_near("entropy / log n (bidirectional)", ent_n[0], 1, 1e-6);
}

/* ---- QK eigenspectrum ------------------------------------------------------------------- */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* W_Q = I, W_K = diag(1, 2, 3), D = C = 3: eigenvalues {1, 2, 3}/sqrt 3, mean 2/sqrt 3,
 * variance (2/3)/3 = 2/9; the matrix is symmetric, so its symmetric part agrees. */
static void test_qk_eigen_diagonal(void **state)
{
    enum { D = 3 };
    const float wq[D * D] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    const float wk[D * D] = {1, 0, 0, 0, 2, 0, 0, 0, 3};
    float m, v, sm, sv, re[D], im[D];
    assert_int_equal(metrics_qk_spectrum(&m, &v, &sm, &sv, re, im, wq, wk, NULL, 1, D), 0);
    qsort(re, D, sizeof(float), cmp_float);
    float want_re[D] = {1 / sqrtf(3), 2 / sqrtf(3), 3 / sqrtf(3)}, want_im[D] = {0, 0, 0};
    assert_close("eig_re (diagonal)", re, want_re, D, 1e-6, 0);
    assert_close("eig_im (diagonal)", im, want_im, D, 1e-6, 0);
    expect_near("eig mean", m, 2 / sqrt(3), 1e-6);
    expect_near("eig var", v, 2.0 / 9, 1e-6);
    expect_near("sym mean", sm, 2 / sqrt(3), 1e-6);
    expect_near("sym var", sv, 2.0 / 9, 1e-6);
}

/* W_K a rotation by 60 degrees, W_Q = I, D = 2: eigenvalues (cos 60 +- i sin 60)/sqrt 2, a complex
 * pair: real parts 0.5/sqrt 2 with variance 0, imaginary parts +-0.866/sqrt 2; the symmetric
 * part is cos 60 I / sqrt 2. */
static void test_qk_eigen_rotation_complex_pair(void **state)
{
    enum { D = 2 };
    float c = 0.5f, s = sqrtf(3) / 2;
    const float wq[D * D] = {1, 0, 0, 1};
    const float wk[D * D] = {c, -s, s, c};
    float m, v, sm, sv, re[D], im[D];
    assert_int_equal(metrics_qk_spectrum(&m, &v, &sm, &sv, re, im, wq, wk, NULL, 1, D), 0);
    qsort(im, D, sizeof(float), cmp_float);
    float want_im[D] = {-s / sqrtf(2), s / sqrtf(2)};
    assert_close("eig_im (rotation)", im, want_im, D, 1e-6, 0);
    expect_near("eig mean (rotation)", m, c / sqrt(2), 1e-6);
    expect_near("eig var (rotation)", v, 0, 1e-6);
    expect_near("sym mean (rotation)", sm, c / sqrt(2), 1e-6);
    expect_near("sym var (rotation)", sv, 0, 1e-6);
}

/* A symmetric W_K = [[2,1],[1,2]] (eigenvalues 1, 3), and a shear [[1,2],[0,1]] whose eigenvalues
 * are 1, 1 but whose symmetric part [[1,1],[1,1]] has 0, 2 (all over sqrt 2). */
static void test_qk_eigen_symmetric_and_shear(void **state)
{
    enum { D = 2 };
    const float wq[D * D] = {1, 0, 0, 1};
    const float sym[D * D] = {2, 1, 1, 2}, shear[D * D] = {1, 2, 0, 1};
    float m, v, sm, sv;
    assert_int_equal(metrics_qk_spectrum(&m, &v, &sm, &sv, NULL, NULL, wq, sym, NULL, 1, D), 0);
    expect_near("eig mean (symmetric)", m, sqrt(2), 1e-6);
    expect_near("eig var (symmetric)", v, 0.5, 1e-6);
    expect_near("sym mean (symmetric)", sm, sqrt(2), 1e-6);
    expect_near("sym var (symmetric)", sv, 0.5, 1e-6);
    assert_int_equal(metrics_qk_spectrum(&m, &v, &sm, &sv, NULL, NULL, wq, shear, NULL, 1, D), 0);
    expect_near("eig mean (shear)", m, 1 / sqrt(2), 1e-5);
    expect_near("eig var (shear)", v, 0, 1e-5);
    expect_near("sym mean (shear)", sm, 1 / sqrt(2), 1e-6);
    expect_near("sym var (shear)", sv, 0.5, 1e-6);
}

/* Head slicing and the rank-2D symmetric part: H = 4, D = 1, C = 4. Head 1 has W_Q^1 = e1,
 * W_K^1 = e2: its 1 x 1 M is e2 . e1 = 0, but the bilinear form e1 e2^T has symmetric part
 * (e1 e2^T + e2 e1^T)/2 with eigenvalues +1/2, -1/2 (and two zeros outside its rank 2):
 * mean 0, variance 1/4. Head 0 has W_Q^0 = W_K^0 = e0 with gain (2, 1, 1, 1) folded: M = 4. */
static void test_qk_eigen_head_slices_and_gain(void **state)
{
    enum { H = 4, D = 1, C = 4 };
    float wq[C * C] = {0}, wk[C * C] = {0};
    wq[0 * C + 0] = 1; wk[0 * C + 0] = 1;
    wq[1 * C + 1] = 1; wk[1 * C + 2] = 1;
    const float gain[C] = {2, 1, 1, 1};
    float m[H], v[H], sm[H], sv[H];
    assert_int_equal(metrics_qk_spectrum(m, v, sm, sv, NULL, NULL, wq, wk, gain, H, D), 0);
    expect_near("head 0 eig mean (gain folded)", m[0], 4, 1e-6);
    expect_near("head 0 sym mean (4 and a zero)", sm[0], 2, 1e-6);
    expect_near("head 0 sym var", sv[0], 4, 1e-6);
    expect_near("head 1 eig mean", m[1], 0, 1e-6);
    expect_near("head 1 sym mean", sm[1], 0, 1e-6);
    expect_near("head 1 sym var", sv[1], 0.25, 1e-6);
}

/* ---- collapse --------------------------------------------------------------------------- */

/* Identical rows: cosine 1, nothing left after centring, effective rank 1. */
static void test_collapse_identical_rows(void **state)
{
    enum { T = 4, C = 3 };
    float x[T * C], cm, cen, er;
    for (int t = 0; t < T; t++) { x[t * C] = 1; x[t * C + 1] = 2; x[t * C + 2] = 3; }
    assert_int_equal(metrics_collapse(&cm, &cen, &er, x, NULL, 1, T, C), 0);
    expect_near("collapse cos (identical)", cm, 1, 1e-6);
    expect_near("collapse centered (identical)", cen, 0, 1e-6);
    expect_near("eff rank (identical)", er, 1, 1e-5);
}

/* Rank 1 with signs a = (1, 2, -1, 3): pair cosines are sign(a_i a_j), three + and three -, mean
 * 0; effective rank 1. Rows e_0..e_3 in C = 6: cosine 0, singular values all 1 -> rank 4,
 * ||X - 1 xbar^T||_F / ||X||_F = sqrt(3/4). A PAD row would add a fifth direction. */
static void test_collapse_rank1_and_identity_states(void **state)
{
    enum { T = 5, C = 6 };
    float x[T * C] = {0}, cm, cen, er;
    const float a[4] = {1, 2, -1, 3};
    for (int t = 0; t < 4; t++)
        for (int c = 0; c < C; c++) x[t * C + c] = a[t] * (float)(c + 1);
    const int32_t doc[T] = {0, 0, 0, 0, -1};
    x[4 * C + 5] = 9;
    assert_int_equal(metrics_collapse(&cm, &cen, &er, x, doc, 1, T, C), 0);
    expect_near("collapse cos (rank 1, signs)", cm, 0, 1e-6);
    expect_near("eff rank (rank 1)", er, 1, 1e-5);
    memset(x, 0, sizeof x);
    for (int t = 0; t < T; t++) x[t * C + t] = 1;
    assert_int_equal(metrics_collapse(&cm, &cen, &er, x, doc, 1, T, C), 0);
    expect_near("collapse cos (identity)", cm, 0, 1e-6);
    expect_near("collapse centered (identity)", cen, sqrt(0.75), 1e-6);
    expect_near("eff rank (identity)", er, 4, 1e-5);
    /* rows (3, 0), (0, 1): sigma = 3, 1 -> p = 3/4, 1/4; xbar = (3/2, 1/2): centred 5 of 10 */
    const float y[4] = {3, 0, 0, 1};
    assert_int_equal(metrics_collapse(&cm, &cen, &er, y, NULL, 1, 2, 2), 0);
    expect_near("eff rank (sigma 3, 1)", er, exp(-(0.75 * log(0.75) + 0.25 * log(0.25))), 1e-5);
    expect_near("collapse centered (sigma 3, 1)", cen, sqrt(0.5), 1e-6);
    expect_near("collapse cos (orthogonal pair)", cm, 0, 1e-6);
}

/* ---- perturbation spread ---------------------------------------------------------------- */

/* An identity network: only position i = 2 differs, so every later position has spread 0. */
static void test_perturb_spread_identity_network_is_zero(void **state)
{
    enum { B = 2, T = 6, C = 3 };
    TestRng r = {7};
    float h[B * T * C], hp[B * T * C], by[T];
    trng_fill(&r, h, B * T * C, -1, 1);
    memcpy(hp, h, sizeof h);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) hp[(b * T + 2) * C + c] += 5;
    float s = metrics_perturb_spread(by, h, hp, NULL, 2, B, T, C);
    float zero[T] = {0};
    expect_near("perturb spread (identity)", s, 0, 0);
    assert_close("perturb spread by position", by, zero, T, 0, 0);
}

/* A known perturbation: h'_j = (1 + c_j) h_j for j > 1, c = 0.1, 0.2, 0.3, 0.4 at j = 2..5, in two
 * sequences; the second has PADs at 4, 5 (their differences ignored). Pooled mean over the six
 * non-PAD (b, j): (0.1+0.2+0.3+0.4 + 0.1+0.2)/6 = 1.3/6. */
static void test_perturb_spread_known_relative_change(void **state)
{
    enum { B = 2, T = 6, C = 3 };
    const int32_t doc[B * T] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1, -1};
    TestRng r = {11};
    float h[B * T * C], hp[B * T * C], by[T];
    trng_fill(&r, h, B * T * C, 0.5f, 1);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) {
                float g = t > 1 ? 1 + 0.1f * (t - 1) : 1;
                if (doc[b * T + t] < 0) g = 7;
                hp[(b * T + t) * C + c] = g * h[(b * T + t) * C + c];
            }
    float s = metrics_perturb_spread(by, h, hp, doc, 1, B, T, C);
    expect_near("perturb spread", s, 1.3 / 6, 1e-6);
    float want[T] = {0, 0, 0.1f, 0.2f, 0.3f, 0.4f};
    assert_close("perturb spread by position", by, want, T, 1e-6, 0);
}

/* ---- onset ------------------------------------------------------------------------------ */

static void test_onset_after_last_dip(void **state)
{
    const int steps[6] = {0, 10, 20, 30, 40, 50};
    const float dips[6] = {0.1f, 0.5f, 0.2f, 0.4f, 0.6f, 0.7f};
    assert_int_equal(onset_find_step(steps, dips, 6, 1, 0.3f), 30);
    const float never[6] = {0.1f, 0.5f, 0.6f, 0.7f, 0.8f, 0.2f};
    assert_int_equal(onset_find_step(steps, never, 6, 1, 0.3f), -1);
    const float start[6] = {0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f};
    assert_int_equal(onset_find_step(steps, start, 6, 1, 0.3f), 0);
    /* equal to the threshold is not above it, like sink_rate */
    const float touch[6] = {0.4f, 0.5f, 0.3f, 0.7f, 0.8f, 0.9f};
    assert_int_equal(onset_find_step(steps, touch, 6, 1, 0.3f), 30);
    assert_int_equal(onset_find_step(steps, start, 0, 1, 0.3f), -1);
}

/* Two heads interleaved as a (n_steps, 2) table. */
static void test_onset_per_head_table(void **state)
{
    const int steps[4] = {100, 200, 300, 400};
    const float table[4 * 2] = {0.0f, 0.9f, 0.5f, 0.9f, 0.1f, 0.9f, 0.6f, 0.2f};
    int onset[2];
    onset_find_steps(onset, steps, table, 4, 2, 0.3f);
    assert_int_equal(onset[0], 400);
    assert_int_equal(onset[1], -1);
}


#define TOK_BOS_ID 256   /* the tokenizer's BOS (metrics take the id as an argument) */

/* Guo et al.'s active/dormant split: BOS attention averaged within each query class, the BOS
 * query itself left out (it can only see itself under a causal mask). */
static void test_alpha_bos_by_class_splits_trigger_queries(void **state)
{
    enum { T = 4 };
    uint8_t allowed[T * T], cls[T] = {0, 0, 1, 0};
    int32_t tok[T] = {TOK_BOS_ID, 'x', 'e', 'y'};
    float A[T * T] = {1, 0, 0, 0,
                      0.8f, 0.2f, 0, 0,
                      0.1f, 0.3f, 0.6f, 0,
                      0.5f, 0.1f, 0.1f, 0.3f};
    fill_causal(allowed, 1, T);
    float out[2];
    int n[2];
    metrics_alpha_bos_by_class(out, n, A, allowed, NULL, tok, cls, 2, TOK_BOS_ID, 0, 1, 1, T);
    assert_int_equal(n[0], 2);
    assert_int_equal(n[1], 1);
    assert_float_equal(out[0], (0.8 + 0.5) / 2, 1e-6);   /* dormant: rows 1 and 3 */
    assert_float_equal(out[1], 0.1, 1e-6);               /* active: row 2 */
    /* the proxy renormalises a row that does not sum to one (relu, sigmoid) */
    for (int j = 0; j < T; j++) A[2 * T + j] *= 0.5f;
    metrics_alpha_bos_by_class(out, n, A, allowed, NULL, tok, cls, 2, TOK_BOS_ID, 1, 1, 1, T);
    assert_float_equal(out[1], 0.1, 1e-6);
}

/* Cross-entropy by class: ln 2 for even logits over two tokens, -ln(3/4) for logits (ln 3, 0). */
static void test_loss_by_class_is_the_mean_cross_entropy_per_class(void **state)
{
    enum { T = 3, V = 2 };
    float logits[T * V] = {0, 0, (float)log(3.0), 0, 0, 0};
    int32_t tgt[T] = {0, 0, 1};
    float lm[T] = {1, 1, 0};
    uint8_t cls[T] = {0, 1, 1};
    float loss[2];
    int n[2];
    metrics_loss_by_class(loss, n, logits, tgt, lm, cls, 2, 1, T, V);
    assert_int_equal(n[0], 1);
    assert_int_equal(n[1], 1);   /* position 2 is outside the loss mask */
    assert_float_equal(loss[0], log(2.0), 1e-6);
    assert_float_equal(loss[1], -log(0.75), 1e-6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alpha_bos_by_class_splits_trigger_queries),
        cmocka_unit_test(test_loss_by_class_is_the_mean_cross_entropy_per_class),
        cmocka_unit_test(test_alpha0_all_mass_on_key0),
        cmocka_unit_test(test_alpha0_uniform_causal_is_harmonic),
        cmocka_unit_test(test_alpha_bidirectional_uniform_is_one_over_T),
        cmocka_unit_test(test_alpha_window_normaliser),
        cmocka_unit_test(test_alpha_edit_normalisers),
        cmocka_unit_test(test_alpha_pad_queries_excluded),
        cmocka_unit_test(test_alpha_sigmoid_proxy_renormalises_rows),
        cmocka_unit_test(test_sink_rate_gu_thresholds_each_sequence_first),
        cmocka_unit_test(test_sink_rate_gu_divides_by_T_whatever_the_mask),
        cmocka_unit_test(test_sink_location_skips_keys_seen_by_few_queries),
        cmocka_unit_test(test_alpha_on_bos_tokens),
        cmocka_unit_test(test_alpha_on_last_position),
        cmocka_unit_test(test_sink_mass_mean_over_non_pad_queries),
        cmocka_unit_test(test_value_norm_ratio_includes_key0_in_mean),
        cmocka_unit_test(test_qk0_cosine_and_norm_product),
        cmocka_unit_test(test_norm_attention_weights_by_transformed_value_norm),
        cmocka_unit_test(test_massive_activation_ratios),
        cmocka_unit_test(test_massive_median_matches_a_sort),
        cmocka_unit_test(test_entropy_of_uniform_rows_is_log_n),
        cmocka_unit_test(test_qk_eigen_diagonal),
        cmocka_unit_test(test_qk_eigen_rotation_complex_pair),
        cmocka_unit_test(test_qk_eigen_symmetric_and_shear),
        cmocka_unit_test(test_qk_eigen_head_slices_and_gain),
        cmocka_unit_test(test_collapse_identical_rows),
        cmocka_unit_test(test_collapse_rank1_and_identity_states),
        cmocka_unit_test(test_perturb_spread_identity_network_is_zero),
        cmocka_unit_test(test_perturb_spread_known_relative_change),
        cmocka_unit_test(test_onset_after_last_dip),
        cmocka_unit_test(test_onset_per_head_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
