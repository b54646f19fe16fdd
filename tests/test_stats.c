/* test_stats.c: the statistics that decide claims, against values computed by hand. */
#include "tests/testutil.h"

#include <math.h>
#include <string.h>

#include "analysis/claim.h"
#include "analysis/stats.h"

/* Monotone data has rho = 1 whatever the spacing; reversed, -1. */
static void test_spearman_is_one_for_monotone_data(void **state)
{
    double x[] = {1, 2, 3, 10, 100}, y[] = {0.1, 0.2, 0.25, 0.9, 5}, r[] = {5, 4, 3, 2, 1};
    assert_true(fabs(stats_spearman(x, y, 5) - 1.0) < 1e-12);
    assert_true(fabs(stats_spearman(x, r, 5) + 1.0) < 1e-12);
}

/* Ties take average ranks: x ranks (1.5, 1.5, 3), y ranks (1, 2, 3); Pearson of those ranks is
 * 0.8660254 (= sqrt(3)/2). */
static void test_spearman_uses_average_ranks_for_ties(void **state)
{
    double x[] = {5, 5, 7}, y[] = {1, 2, 3};
    assert_true(fabs(stats_spearman(x, y, 3) - sqrt(3.0) / 2) < 1e-12);
    double c[] = {4, 4, 4};
    assert_true(isnan(stats_spearman(c, y, 3)));
}

/* Sign flips of (1, 2, 3): 8 equally likely sums; only the observed one (all +) reaches mean 2,
 * so the exact one-sided p is 1/8. */
static void test_shift_p_value_is_the_exact_sign_flip_probability(void **state)
{
    double d[] = {1, 2, 3};
    Estimate e = stats_shift(d, 3, 0, +1);
    assert_true(fabs(e.value - 2.0) < 1e-12);
    assert_true(fabs(e.p - 0.125) < 1e-12);
    /* bootstrap means of (1, 2, 3) lie in [1, 3] */
    assert_true(e.lo >= 1.0 && e.hi <= 3.0 && e.lo <= e.hi);
    /* the other direction: every flip is at least as low, p = 1 */
    Estimate down = stats_shift(d, 3, 0, -1);
    assert_true(fabs(down.p - 1.0) < 1e-12);
}

/* Two separated arms: the difference is exact, its interval lies between the extreme pairings,
 * and the permutation p-value is about 1 / C(6, 3) = 0.05 (only the observed split is as large). */
static void test_difference_of_separated_arms(void **state)
{
    double a[] = {0.10, 0.12, 0.11}, b[] = {0.30, 0.33, 0.31};
    Estimate e = stats_difference(a, 3, b, 3, +1);
    assert_true(fabs(e.value - (0.94 / 3 - 0.33 / 3)) < 1e-12);
    assert_true(e.lo >= 0.30 - 0.12 - 1e-12 && e.hi <= 0.33 - 0.10 + 1e-12);
    assert_true(e.p > 0.03 && e.p < 0.08);
    Estimate wrong = stats_difference(a, 3, b, 3, -1);
    assert_true(wrong.p > 0.9);
}

/* One run per arm: a value but no interval (the verdict then says so). */
static void test_single_runs_give_no_interval(void **state)
{
    double a[] = {1}, b[] = {2};
    Estimate e = stats_difference(a, 1, b, 1, +1);
    assert_true(fabs(e.value - 1.0) < 1e-12);
    assert_true(isnan(e.lo) && isnan(e.hi));
}

/* A clean trend over 3 levels x 3 seeds. x ties within a level, so rho is the Pearson
 * correlation of ranks (2,2,2,5,5,5,8,8,8) with (1..9): 54 / sqrt(54 * 60) = sqrt(0.9); no
 * permutation does better, so p is at its floor of order 1 / (number of resamples). */
static void test_trend_of_a_clean_effect(void **state)
{
    double x[] = {64, 64, 64, 128, 128, 128, 256, 256, 256};
    double y[] = {0.1, 0.11, 0.12, 0.2, 0.21, 0.22, 0.3, 0.31, 0.32};
    Estimate e = stats_trend(x, y, 9, +1);
    assert_true(fabs(e.value - sqrt(0.9)) < 1e-12);
    assert_true(e.p < 0.01);
    assert_true(e.lo > 0.8 && e.hi <= 1.0 + 1e-12);
    /* same numbers, same result: the generator is seeded */
    Estimate again = stats_trend(x, y, 9, +1);
    assert_true(again.lo == e.lo && again.hi == e.hi && again.p == e.p);
}

/* The first tiny report's claim C5 (alpha0_max at lr 1e-3, 3e-3, 1e-2 x 5 seeds): the settings
 * separate perfectly, so rho is the largest tied x allows, sqrt(0.8929). Resampling y within each
 * setting (duplicated seeds tie y within a setting) gave an "interval" of [0.947, 0.959] above
 * it; resampling whole runs brackets it. */
static void test_trend_interval_brackets_the_estimate(void **state)
{
    double x[] = {1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 3e-3, 3e-3, 3e-3, 3e-3, 3e-3, 1e-2, 1e-2, 1e-2, 1e-2, 1e-2};
    double y[] = {0.3894848, 0.40852973, 0.33743218, 0.28675762, 0.34042764,
                  0.61663157, 0.6252711, 0.5314502, 0.6207909, 0.6351883,
                  0.7163141, 0.6801093, 0.6496568, 0.7049001, 0.66072047};
    Estimate e = stats_trend(x, y, 15, +1);
    assert_true(fabs(e.value - 0.9449111825230679) < 1e-12);
    if (!(e.lo < e.value && e.value < e.hi))
        fail_msg("rho %.4f outside its interval [%.4f, %.4f]", e.value, e.lo, e.hi);
    assert_true(e.lo > 0.7 && e.hi <= 1.0 + 1e-12);
}

static void test_quantile_nearest_rank(void **state)
{
    double x[] = {5, 1, 4, 2, 3};
    assert_true(stats_quantile(x, 5, 0.5) == 3);
    assert_true(stats_quantile(x, 5, 0.0) == 1);
    assert_true(stats_quantile(x, 5, 1.0) == 5);
}

/* For a large sample the percentile bootstrap of the mean agrees with the normal interval,
 * mean +- 1.96 s / sqrt(n), computed here from the data directly. */
static void test_mean_interval_matches_the_normal_interval_on_a_large_sample(void **state)
{
    enum { N = 400 };
    double x[N], sum = 0, ss = 0;
    TestRng r = {42};
    for (int i = 0; i < N; i++) {
        x[i] = trng_uniform(&r, 0.0f, 1.0f);
        sum += x[i];
    }
    double m = sum / N;
    for (int i = 0; i < N; i++) ss += (x[i] - m) * (x[i] - m);
    double half = 1.96 * sqrt(ss / (N - 1)) / sqrt((double)N);
    Estimate e = stats_mean(x, N, 4000);
    if (fabs(e.value - m) > 1e-12) fail_msg("mean %.12g, want %.12g", e.value, m);
    if (!(e.lo < m && m < e.hi)) fail_msg("interval [%g, %g] does not hold the mean %g", e.lo, e.hi, m);
    double got = (e.hi - e.lo) / 2;
    if (fabs(got - half) > 0.12 * half)
        fail_msg("half-width %.5g, want the normal %.5g within 12%%", got, half);
}

/* Three values: each extreme resample (all the same value) has probability 1/27 > 2.5%, so
 * the 95% percentile interval is exactly [min, max]; two values likewise (1/4). */
static void test_mean_interval_of_small_samples_spans_the_data(void **state)
{
    double x3[3] = {2.0, 1.0, 3.0};
    Estimate e = stats_mean(x3, 3, 2000);
    if (e.value != 2.0 || e.lo != 1.0 || e.hi != 3.0) fail_msg("{2,1,3}: %g [%g, %g], want 2 [1, 3]", e.value, e.lo, e.hi);
    double x2[2] = {5.0, 4.0};
    e = stats_mean(x2, 2, 2000);
    if (e.value != 4.5 || e.lo != 4.0 || e.hi != 5.0) fail_msg("{5,4}: %g [%g, %g], want 4.5 [4, 5]", e.value, e.lo, e.hi);
}

/* One value has a mean but no interval; constant values, a point interval; none, nothing; the
 * same values always give the same interval (fixed seed). */
static void test_mean_edge_cases_and_determinism(void **state)
{
    double one = 3.25;
    Estimate e = stats_mean(&one, 1, 100);
    if (e.value != 3.25 || !isnan(e.lo) || !isnan(e.hi)) fail_msg("one value: %g [%g, %g]", e.value, e.lo, e.hi);
    double same[4] = {0.5, 0.5, 0.5, 0.5};
    e = stats_mean(same, 4, 100);
    if (e.value != 0.5 || e.lo != 0.5 || e.hi != 0.5) fail_msg("constant: %g [%g, %g]", e.value, e.lo, e.hi);
    e = stats_mean(same, 0, 100);
    assert_true(isnan(e.value) && isnan(e.lo) && isnan(e.hi));
    double x[6] = {0.1, 0.9, 0.4, 0.3, 0.8, 0.2};
    Estimate a = stats_mean(x, 6, 500), b = stats_mean(x, 6, 500);
    if (a.lo != b.lo || a.hi != b.hi) fail_msg("same values, different intervals: [%g, %g] vs [%g, %g]", a.lo, a.hi, b.lo, b.hi);
    if (!(a.lo < a.value && a.value < a.hi)) fail_msg("[%g, %g] does not hold the mean %g", a.lo, a.hi, a.value);
}

/* Verdicts in both predicted directions: an interval on the predicted side (with p < 0.05) is
 * reproduced, one on the other side is not, one that straddles 0 is inconclusive whatever the
 * direction. */
static void test_verdict_follows_the_predicted_direction(void **state)
{
    char why[256];
    Estimate up = {0.3, 0.1, 0.5, 0.01, 5}, down = {-0.3, -0.5, -0.1, 0.01, 5};
    Estimate straddle = {0.05, -0.1, 0.2, 0.2, 5}, straddle_low_p = {-0.05, -0.2, 0.1, 0.01, 5};
    assert_int_equal(claim_verdict(&up, +1, 0, why, sizeof why), VERDICT_REPRODUCED);
    assert_int_equal(claim_verdict(&down, -1, 0, why, sizeof why), VERDICT_REPRODUCED);
    assert_int_equal(claim_verdict(&up, -1, 0, why, sizeof why), VERDICT_NOT_REPRODUCED);
    assert_int_equal(claim_verdict(&down, +1, 0, why, sizeof why), VERDICT_NOT_REPRODUCED);
    assert_int_equal(claim_verdict(&straddle, +1, 0, why, sizeof why), VERDICT_INCONCLUSIVE);
    assert_int_equal(claim_verdict(&straddle, -1, 0, why, sizeof why), VERDICT_INCONCLUSIVE);
    /* a low p alone never makes a straddling interval a reproduction */
    assert_int_equal(claim_verdict(&straddle_low_p, -1, 0, why, sizeof why), VERDICT_INCONCLUSIVE);
    /* a tight interval around 0 is an absent effect when the claim sets a tolerance */
    Estimate flat = {0.001, -0.01, 0.012, 0.4, 5};
    assert_int_equal(claim_verdict(&flat, -1, 0.05, why, sizeof why), VERDICT_NOT_REPRODUCED);
    assert_int_equal(claim_verdict(&flat, -1, 0, why, sizeof why), VERDICT_INCONCLUSIVE);
    /* identical runs: a point interval at 0 says so instead of "includes 0" */
    Estimate none = {0, 0, 0, 1, 10};
    assert_int_equal(claim_verdict(&none, +1, 0, why, sizeof why), VERDICT_INCONCLUSIVE);
    if (!strstr(why, "no variation")) fail_msg("reason: %s", why);
    /* a large p keeps an interval on the predicted side inconclusive */
    Estimate weak = {0.3, 0.1, 0.5, 0.2, 3};
    assert_int_equal(claim_verdict(&weak, +1, 0, why, sizeof why), VERDICT_INCONCLUSIVE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spearman_is_one_for_monotone_data),
        cmocka_unit_test(test_spearman_uses_average_ranks_for_ties),
        cmocka_unit_test(test_shift_p_value_is_the_exact_sign_flip_probability),
        cmocka_unit_test(test_difference_of_separated_arms),
        cmocka_unit_test(test_single_runs_give_no_interval),
        cmocka_unit_test(test_trend_of_a_clean_effect),
        cmocka_unit_test(test_trend_interval_brackets_the_estimate),
        cmocka_unit_test(test_quantile_nearest_rank),
        cmocka_unit_test(test_mean_interval_matches_the_normal_interval_on_a_large_sample),
        cmocka_unit_test(test_mean_interval_of_small_samples_spans_the_data),
        cmocka_unit_test(test_mean_edge_cases_and_determinism),
        cmocka_unit_test(test_verdict_follows_the_predicted_direction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
