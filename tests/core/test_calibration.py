"""Calibration by simulation: thousands of experiments with known true rates, read through the
report's own objects and verdicts (``benchmarks/simulate.py``), against the promises the report and
the automatic winner make. No database.

The figures go to the terminal summary ("calibration figures"); ``benchmarks/calibration.py`` prints
the same with as many experiments as asked. Seeds are fixed, so every run draws the same experiments;
each bound is several standard errors away from what the rule achieves, so the assertions do not
hang on the seed.
"""

from benchmarks.simulate import delayed_outcomes, fixed_sample_interval, lift_coverage, orders_so_far, peeking

from .realparts import SUMMARY_SECTIONS

FIGURES = SUMMARY_SECTIONS.setdefault("calibration figures", [])
SEED = 1  # and SEED + 1, … in the order below: the benchmark's default seeds


def test_the_lift_interval_covers_the_true_lift_93_to_97_percent_of_the_time():
    # given 2,000 experiments, treated carts converting at 14 % and held-out ones at 11 %
    # when each report's 95 % lift interval is read once (3,000 treated and 1,000 held-out carts)
    result = lift_coverage(experiments=2000, seed=SEED)
    FIGURES.extend(result.lines())

    # then it contains the true lift of 3 points in 93-97 % of them
    assert 0.93 <= result.coverage <= 0.97


def test_with_no_real_difference_the_automatic_winner_fires_in_at_most_5_percent_checked_every_10_minutes():
    # given 1,000 experiments whose two cadences both convert at 5 %
    # when the automatic winner reads each one's report every 10 minutes for two days
    result = peeking([0.05, 0.05], experiments=1000, seed=SEED + 1)
    FIGURES.extend(result.lines())

    # then a winner is recorded in at most 5 % of them
    assert result.fired_share <= 0.05


def test_the_one_look_interval_checked_as_often_would_fire_far_more_often():
    # given the same experiments (fewer of them)
    # when the rule is "the leader's one-look 95 % interval excludes 0", checked as often
    result = peeking([0.05, 0.05], experiments=200, seed=SEED + 2, rule=fixed_sample_interval)
    FIGURES.extend(result.lines())

    # then it names a winner far more often than 5 %: the always-valid test is what keeps it honest
    assert result.fired_share > 0.10


def test_with_a_real_difference_of_2_points_the_automatic_winner_picks_the_true_best():
    # given 1,000 experiments whose cadences convert at 5 % and 7 %
    # when the automatic winner reads each one's report every 10 minutes for two days
    result = peeking([0.05, 0.07], experiments=1000, seed=SEED + 3)
    FIGURES.extend(result.lines())

    # then most experiments reach a decision, enough for the share below to mean something
    assert result.fired >= 500
    # and once it fires it names the 7 % cadence at least 95 % of the time
    assert result.picked_best_share >= 0.95


def test_an_arm_whose_buyers_come_sooner_is_not_crowned_for_it():
    # given 300 experiments whose two cadences convert at the same 10 % within the 4-day follow-up,
    # A's buyers within a day of the cart, B's within three
    # when the automatic winner reads each one's report every hour for a week
    result = delayed_outcomes(experiments=300, seed=SEED + 4)
    FIGURES.extend(result.lines())
    # then it compares only carts whose follow-up ended and fires in at most 5 % of them
    assert result.fired / result.experiments <= 0.05

    # while the same test on every cart and order so far would crown A almost every time
    naive = delayed_outcomes(experiments=100, seed=SEED + 5, rule=orders_so_far)
    FIGURES.extend(naive.lines())
    assert naive.fired / naive.experiments > 0.5
