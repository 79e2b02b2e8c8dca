"""Statistics for the report: pure functions over counts, no database, no numpy.

- :func:`wilson_interval` — 95 % score interval of one proportion (good near 0 % and with few carts).
- :func:`difference_interval` — Newcombe's hybrid score interval (his "method 10") for the
  difference of two independent proportions: the lift of treated over holdout *as read now*. It is
  a fixed-sample interval: right for one look, too narrow for "look every day until it excludes 0".
- :func:`sequential` — the always-valid test of a difference of two proportions: the mixture
  sequential probability ratio test (mSPRT; Robbins 1970, Johari, Koomen, Pekelis & Walsh,
  "Always valid inference", Operations Research 2022) with a normal mixing distribution on the
  difference. Its p-value and confidence sequence hold at every look at once, so the report's
  verdicts and the automatic winner can be checked as often as anyone likes.
"""

import math
from dataclasses import dataclass

Z95 = 1.959963984540054
# The verdicts' error rate: with no real difference, at most this share of experiments ever shows
# a winner (or "the reminders work"), however often it is looked at.
ALPHA = 0.05
# The mixing distribution's scale, as an absolute difference in conversion rates: the test is most
# sensitive to differences around this size (a few points, the size reminders and subjects make).
TAU = 0.02


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def rate(successes: int, trials: int) -> float | None:
    return successes / trials if trials else None


def wilson_interval(successes: int, trials: int, z: float = Z95) -> Interval | None:
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def difference_interval(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int, z: float = Z95
) -> Interval | None:
    """Interval for ``p_a - p_b`` (Newcombe 1998, method 10); ``None`` when a group is empty."""
    a, b = wilson_interval(successes_a, trials_a, z), wilson_interval(successes_b, trials_b, z)
    if a is None or b is None:
        return None
    p_a, p_b = successes_a / trials_a, successes_b / trials_b
    difference = p_a - p_b
    low = difference - math.sqrt((p_a - a.low) ** 2 + (b.high - p_b) ** 2)
    high = difference + math.sqrt((a.high - p_a) ** 2 + (p_b - b.low) ** 2)
    return Interval(low, high)


@dataclass(frozen=True)
class Sequential:
    """The mSPRT of ``p_a - p_b = 0`` at one look."""

    difference: float
    p_value: float  # always valid: P(it ever gets this small | no difference) <= p_value
    interval: Interval  # confidence sequence: covers the true difference at every look at once


def sequential(
    successes_a: int,
    trials_a: int,
    successes_b: int,
    trials_b: int,
    *,
    alpha: float = ALPHA,
    tau: float = TAU,
) -> Sequential | None:
    """Always-valid p-value and (1 - ``alpha``) confidence sequence for ``p_a - p_b``.

    The difference of the observed rates is approximately normal with variance ``V`` (each rate's
    variance estimated with half a success added, so 0 of n never claims certainty); mixing the
    likelihood ratio over ``N(0, tau²)`` alternatives gives
    ``Λ = sqrt(V / (V + τ²)) · exp(τ² d² / (2 V (V + τ²)))``, and ``1/Λ`` is a p-value valid at any
    stopping time. The confidence sequence is every difference ``θ`` that ``Λ(θ) < 1/alpha`` keeps.
    ``None`` when a group is empty."""
    if trials_a <= 0 or trials_b <= 0:
        return None
    difference = successes_a / trials_a - successes_b / trials_b
    variance = _variance(successes_a, trials_a) + _variance(successes_b, trials_b)
    spread = variance + tau * tau
    log_ratio = 0.5 * math.log(variance / spread) + tau * tau * difference * difference / (
        2 * variance * spread
    )
    p_value = min(1.0, math.exp(-log_ratio))
    half = math.sqrt(
        variance * spread / (tau * tau) * (2 * math.log(1 / alpha) + math.log(spread / variance))
    )
    return Sequential(difference, p_value, Interval(difference - half, difference + half))


def _variance(successes: int, trials: int) -> float:
    p = (successes + 0.5) / (trials + 1)
    return p * (1 - p) / trials


def leader(arms: list[tuple[int, int]], *, min_trials: int, alpha: float = ALPHA) -> tuple[int | None, list]:
    """Which of ``arms`` = ``[(successes, trials), ...]`` is proven best, and each arm's test.

    The arm with the highest rate is compared with every other by :func:`sequential` at
    ``alpha / (arms - 1)`` (Bonferroni: the chance of any false verdict stays at most ``alpha``);
    it is the winner once every comparison rejects "no difference". Returns ``(winner index or
    None, [Sequential of leader vs arm, None for the leader])``; no verdict at all, and no tests,
    while an arm has fewer than ``min_trials`` trials (the normal approximation needs some data)."""
    if len(arms) < 2 or any(trials < max(min_trials, 1) for _, trials in arms):
        return None, [None] * len(arms)
    best = max(range(len(arms)), key=lambda i: (arms[i][0] / arms[i][1], -i))
    level = alpha / (len(arms) - 1)
    tests = [None if i == best else sequential(*arms[best], *arms[i], alpha=level) for i in range(len(arms))]
    proven = all(test is None or test.p_value <= level for test in tests)
    return (best if proven else None), tests
