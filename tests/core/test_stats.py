"""Statistics against values computed by hand or published with the method."""

import pytest

from saleor_cart_recovery.experiments.stats import (
    difference_interval,
    leader,
    rate,
    sequential,
    wilson_interval,
)


def test_wilson_interval_matches_newcombes_published_example():
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", 81/263
    interval = wilson_interval(81, 263)
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.2553, 0.3662)


def test_wilson_interval_of_zero_successes_starts_at_zero():
    # by hand: z²/n = 3.8415/10; upper = (z²/(2n)) * 2 / (1 + z²/n) = 0.38415 / 1.38415 = 0.2775
    interval = wilson_interval(0, 10)
    assert (interval.low, round(interval.high, 4)) == (0.0, 0.2775)


def test_difference_interval_matches_newcombes_method_10_example():
    # Newcombe (1998), "Interval estimation for the difference between independent proportions",
    # example (a): 56/70 - 48/80 = 0.2000, method 10 interval 0.0524 to 0.3339
    interval = difference_interval(56, 70, 48, 80)
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.0524, 0.3339)


def test_difference_interval_needs_both_groups():
    assert difference_interval(3, 10, 0, 0) is None
    assert rate(0, 0) is None


def test_sequential_test_matches_the_hand_computed_msprt():
    # 60/1000 vs 40/1000, tau = 0.02. Rates for the variance with half a success added:
    # 60.5/1001 = 0.060440 -> 0.060440 * 0.939560 / 1000 = 5.6787e-5; 40.5/1001 = 0.040460 ->
    # 3.8823e-5; V = 9.5610e-5; V + tau² = 4.95610e-4; d = 0.02.
    # log Λ = ½ ln(V / (V + tau²)) + tau² d² / (2 V (V + tau²)) = -0.82277 + 1.68830 = 0.86553
    # p = 1/Λ = 0.42083; half width = sqrt(V (V + tau²) / tau² · (2 ln 20 + ln((V + tau²)/V)))
    # = sqrt(1.18462e-4 · (5.99146 + 1.64551)) = sqrt(9.0469e-4) = 0.030078
    test = sequential(60, 1000, 40, 1000)
    assert test.difference == pytest.approx(0.02)
    assert test.p_value == pytest.approx(0.42083, abs=1e-4)
    assert (test.interval.low, test.interval.high) == pytest.approx(
        (0.02 - 0.030078, 0.02 + 0.030078), abs=1e-4
    )


def test_the_always_valid_interval_is_wider_than_the_one_look_interval():
    # the same data proves a difference to a one-look interval but not yet to the always-valid one:
    # the price of being allowed to look every day
    one_look = difference_interval(60, 1000, 40, 1000)
    always = sequential(60, 1000, 40, 1000).interval
    assert one_look.excludes_zero() and not always.excludes_zero()
    assert always.low < one_look.low and always.high > one_look.high


@pytest.mark.parametrize("successes", [0, 5, 80, 140, 200])
def test_the_p_value_and_the_interval_agree(successes):
    test = sequential(successes, 2000, 100, 2000)
    assert (test.p_value <= 0.05) == test.interval.excludes_zero()


def test_zero_successes_never_claim_certainty():
    test = sequential(0, 300, 0, 300)
    assert test.p_value == 1.0 and test.interval.low < 0 < test.interval.high
    assert sequential(3, 10, 0, 0) is None


def test_the_leader_needs_the_minimum_sample_and_must_beat_every_other_arm():
    assert leader([(40, 199), (90, 1000)], min_trials=200) == (None, [None, None])
    best, tests = leader([(150, 1000), (60, 1000)], min_trials=200)
    assert best == 0 and tests[0] is None and tests[1].p_value < 0.025
    # clearly ahead of one arm, not of the other: no winner (and Bonferroni: each test at 2.5 %)
    best, tests = leader([(150, 1000), (60, 1000), (140, 1000)], min_trials=200)
    assert best is None and tests[1].p_value < 0.025 < tests[2].p_value
