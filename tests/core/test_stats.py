"""Statistics against values computed by hand or published with the method."""

import pytest

from saleor_cart_recovery.experiments.stats import (
    difference_interval,
    probability_best,
    rate,
    wilson_interval,
    winner,
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


def test_probability_best_matches_the_closed_form_for_two_small_arms():
    # A: 0 of 1 -> Beta(1, 2), density 2(1-a); B: 1 of 1 -> Beta(2, 1), density 2b.
    # P(B > A) = ∫0..1 2b ∫0..b 2(1-a) da db = ∫ 2b(2b - b²) db = 4/3 - 1/2 = 5/6
    p_a, p_b = probability_best([(0, 1), (1, 1)])
    assert p_b == pytest.approx(5 / 6, abs=0.01)
    assert p_a + p_b == pytest.approx(1)


def test_probability_best_of_identical_arms_is_even_and_reproducible():
    first = probability_best([(30, 300), (30, 300), (30, 300)])
    assert first == probability_best([(30, 300), (30, 300), (30, 300)])
    assert all(p == pytest.approx(1 / 3, abs=0.02) for p in first)


def test_no_verdict_before_the_minimum_sample():
    assert probability_best([(5, 199), (40, 250)], min_trials=200) is None
    assert probability_best([(5, 200), (40, 250)], min_trials=200) is not None
    assert probability_best([(5, 200)]) is None


@pytest.mark.parametrize(
    ("probabilities", "expected"),
    [([0.96, 0.04], 0), ([0.5, 0.5], None), ([0.02, 0.03, 0.95], 2), (None, None)],
    ids=["clear_case", "tie_case", "threshold_is_inclusive_case", "no_verdict_case"],
)
def test_winner_needs_the_threshold(probabilities, expected):
    assert winner(probabilities) == expected
