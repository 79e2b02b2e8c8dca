"""Statistics for the report: pure functions over counts, no database, no numpy.

- :func:`wilson_interval` — 95 % score interval of one proportion (good near 0 % and with few carts).
- :func:`difference_interval` — Newcombe's hybrid score interval (his "method 10") for the
  difference of two independent proportions: the lift of treated over holdout.
- :func:`probability_best` — Bayesian probability that each variant has the highest conversion
  rate, with a uniform Beta(1, 1) prior and a Beta-Binomial posterior, by Monte Carlo with a fixed
  seed (the same counts always give the same answer).
"""

import math
import random
from dataclasses import dataclass

Z95 = 1.959963984540054
DRAWS = 20_000
SEED = 20260302


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


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


def probability_best(
    arms: list[tuple[int, int]], *, min_trials: int = 0, draws: int = DRAWS, seed: int = SEED
) -> list[float] | None:
    """P(arm i has the highest rate) for ``arms`` = ``[(successes, trials), ...]``.

    ``None`` (no verdict) with fewer than two arms or while any arm has fewer than
    ``min_trials`` trials: early numbers swing wildly and invite a premature winner.
    """
    if len(arms) < 2 or any(trials < max(min_trials, 1) for _, trials in arms):
        return None
    generator = random.Random(seed)
    wins = [0] * len(arms)
    posteriors = [(1 + s, 1 + max(t - s, 0)) for s, t in arms]
    for _ in range(draws):
        samples = [generator.betavariate(alpha, beta) for alpha, beta in posteriors]
        wins[samples.index(max(samples))] += 1
    return [w / draws for w in wins]


def winner(probabilities: list[float] | None, threshold: float = 0.95) -> int | None:
    """The arm whose probability of being best reached ``threshold``, if any."""
    if not probabilities:
        return None
    best = max(range(len(probabilities)), key=probabilities.__getitem__)
    return best if probabilities[best] >= threshold else None
