"""Calibration by simulation: do the report's intervals and the automatic winner keep their promises?

Runs ``--experiments`` simulated experiments with known true rates through the report's own objects
and verdicts (``simulate.py``) for each of three questions, and prints the figures with their
targets (``tests/core/test_calibration.py`` asserts the same with fixed seeds):

- the one-look 95 % interval of the lift (14 % treated vs 11 % holdout, 3,000 and 1,000 carts)
  covers the true lift in 93-97 % of experiments;
- with no real difference (two cadences at 5 %), the automatic winner checked every 10 minutes for
  two days fires in at most 5 % of experiments (and, for comparison, how often the one-look
  interval would, checked as often);
- with a real difference (5 % vs 7 %), once it fires it picks the true best at least 95 % of the time;
- with the same rate but one arm's buyers coming later (outcomes that take days), the automatic
  winner, which compares only carts whose follow-up ended, fires in at most 5 % of experiments (and,
  for comparison, how often the same test on every order so far would).

Needs no database. ``--seed`` changes every draw.

    .venv/bin/python benchmarks/calibration.py [--experiments 2000] [--seed 1]
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"

import django  # noqa: E402

django.setup()

from simulate import (  # noqa: E402
    delayed_outcomes,
    fixed_sample_interval,
    lift_coverage,
    orders_so_far,
    peeking,
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=2000, help="simulated experiments per figure")
    parser.add_argument("--seed", type=int, default=1, help="seed of the first figure's draws (then +1, …)")
    args = parser.parse_args()
    n, seed = args.experiments, args.seed
    runs = [
        lambda: lift_coverage(experiments=n, seed=seed),
        lambda: peeking([0.05, 0.05], experiments=n, seed=seed + 1),
        lambda: peeking([0.05, 0.05], experiments=n, seed=seed + 2, rule=fixed_sample_interval),
        lambda: peeking([0.05, 0.07], experiments=n, seed=seed + 3),
        lambda: delayed_outcomes(experiments=max(n // 4, 1), seed=seed + 4),
        lambda: delayed_outcomes(experiments=max(n // 20, 1), seed=seed + 5, rule=orders_so_far),
    ]
    for run in runs:
        started = time.perf_counter()
        first, *rest = run().lines()
        print(f"{first}  [{time.perf_counter() - started:.1f} s]", *rest, sep="\n")


if __name__ == "__main__":
    main()
