"""Simulated experiments with known true rates, read through the report's own objects and verdicts.

Shared by ``benchmarks/calibration.py`` (prints the figures) and ``tests/core/test_calibration.py``
(asserts them). Counts are drawn from binomials and put into the objects the report builds from SQL
(:class:`ExperimentReport`, its treated and holdout :class:`Group`, its cadence :class:`ArmSet`);
from there on everything is the real pipeline: ``lift_interval`` and ``lift_verdict``;
:func:`verdicts` over ``arm_sets()`` as ``_Scan.finish`` runs it, and ``proven_winners()`` as the
automatic winner records it. A run draws everything from one ``random.Random(seed)``, so it is
reproducible.

Needs Django settings (the report module imports the models), no database.
"""

import random
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from saleor_cart_recovery.experiments import stats
from saleor_cart_recovery.experiments.report import (
    DEFAULT_MIN_RECIPIENTS,
    Arm,
    ArmSet,
    ExperimentReport,
    Group,
    verdicts,
)
from saleor_cart_recovery.experiments.winners import CADENCE
from saleor_cart_recovery.series.beat import ROLLUP

LOOK = timedelta(seconds=ROLLUP.every)  # how often the automatic winner is decided (10 minutes)
LOOKS = 288  # two days of looks
# New carts per look, each assigned to an arm at random: about 2,900 carts per arm a day with two
# arms (a busy shop), about 5,800 after two days.
CARTS_PER_LOOK = 40
LABELS = "ABCDEFGH"

# A winner rule reads the experiment's report at one look: the winning cadence's label, or None
# while nothing is proven.
Rule = Callable[[ExperimentReport], str | None]


def _report(min_recipients: int) -> ExperimentReport:
    return ExperimentReport(channel="sim", version="sim", current=True, min_recipients=min_recipients)


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


# --- the lift of the reminders, read once --------------------------------------------------------


@dataclass(frozen=True)
class LiftCoverage:
    truth: float  # the true lift, treated rate minus holdout rate
    experiments: int
    covered: int  # the one-look 95 % interval (``lift_interval``) contains the truth
    sequence_covered: int  # the always-valid confidence sequence (``lift_test``) contains it
    verdicts: Counter  # ``lift_verdict`` -> experiments

    @property
    def coverage(self) -> float:
        return self.covered / self.experiments

    def lines(self) -> list[str]:
        shares = ", ".join(
            f"{verdict} in {_percent(self.verdicts[verdict], self.experiments)}"
            for verdict in ("positive", "negative", "inconclusive")
        )
        return [
            f"lift interval coverage: {_percent(self.covered, self.experiments)} of {self.experiments:,} "
            f"experiments (target 93-97 %)",
            f"  always-valid lift verdict on the same experiments: {shares}; its confidence sequence "
            f"covers the truth in {_percent(self.sequence_covered, self.experiments)}",
        ]


def lift_coverage(
    *,
    experiments: int,
    seed: int,
    treated_rate: float = 0.14,
    holdout_rate: float = 0.11,
    treated_carts: int = 3000,
    holdout_carts: int = 1000,
    min_recipients: int = DEFAULT_MIN_RECIPIENTS,
) -> LiftCoverage:
    """Experiments read once, at a fixed size. One cart per shopper, so the per-cart interval and
    the per-shopper always-valid verdict see the same counts."""
    rng = random.Random(seed)
    truth = treated_rate - holdout_rate
    covered = sequence_covered = 0
    verdict_counts: Counter = Counter()
    for _ in range(experiments):
        report = _report(min_recipients)
        report.treated = _group(treated_carts, rng.binomialvariate(treated_carts, treated_rate))
        report.holdout = _group(holdout_carts, rng.binomialvariate(holdout_carts, holdout_rate))
        interval, test = report.lift_interval, report.lift_test
        covered += interval is not None and interval.low <= truth <= interval.high
        sequence_covered += test is not None and test.interval.low <= truth <= test.interval.high
        verdict_counts[report.lift_verdict] += 1
    return LiftCoverage(truth, experiments, covered, sequence_covered, verdict_counts)


def _group(carts: int, converted: int) -> Group:
    """A group read after every cart's follow-up ended: all its carts and orders are complete."""
    return Group(
        carts=carts,
        shoppers=carts,
        converted=converted,
        shoppers_converted=converted,
        complete_shoppers=carts,
        complete_shoppers_converted=converted,
    )


# --- a winner among arms, checked at every look --------------------------------------------------


def automatic_winner(report: ExperimentReport) -> str | None:
    """What ``the rollup`` records at one look: the verdicts as ``_Scan.finish`` runs them, then
    the cadence winner ``proven_winners()`` returns."""
    for arm_set in report.arm_sets().values():
        verdicts(arm_set.arms, report.min_recipients)
    proven = report.proven_winners().get(CADENCE)
    return None if proven is None else proven.arm


def fixed_sample_interval(report: ExperimentReport) -> str | None:
    """The rule not to use: the leader wins once its one-look 95 % interval (Newcombe) against every
    other arm excludes 0 — right for one look, wrong when looked at every 10 minutes."""
    arms = report.cadences.arms
    if any(arm.carts < report.min_recipients for arm in arms):
        return None
    best = max(arms, key=lambda arm: arm.converted / arm.carts)
    others = (
        stats.difference_interval(best.converted, best.carts, arm.converted, arm.carts)
        for arm in arms
        if arm is not best
    )
    proven = all(interval is not None and interval.excludes_zero() for interval in others)
    return best.label if proven else None


@dataclass(frozen=True)
class Peeking:
    rule: str  # the rule's function name
    rates: list[float]
    looks: int
    experiments: int
    fired: int  # experiments in which the rule named a winner at some look
    picked_best: int  # of those, the ones whose winner has the highest true rate
    carts_at_firing: list[int] = field(repr=False)  # per fired experiment: carts per arm (mean)

    @property
    def fired_share(self) -> float:
        return self.fired / self.experiments

    @property
    def picked_best_share(self) -> float:
        return self.picked_best / self.fired if self.fired else 0.0

    def lines(self) -> list[str]:
        rates = " vs ".join(f"{100 * rate:g} %" for rate in self.rates)
        hours = LOOK * self.looks / timedelta(hours=1)
        setup = f"{rates}, checked every {LOOK / timedelta(minutes=1):g} min for {hours:g} h"
        fired = f"fired in {_percent(self.fired, self.experiments)} of {self.experiments:,} experiments"
        if self.rule != automatic_winner.__name__:
            return [f"  {self.rule.replace('_', ' ')} instead, checked as often: {fired}"]
        if len(set(self.rates)) == 1:
            return [f"no real difference ({setup}): the automatic winner {fired} (target <= 5 %)"]
        median = statistics.median(self.carts_at_firing) if self.carts_at_firing else 0
        return [
            f"real difference ({setup}): the automatic winner {fired}, picked the true best in "
            f"{_percent(self.picked_best, self.fired)} of those (target >= 95 %); "
            f"median {median:,.0f} carts per arm at firing"
        ]


def peeking(
    rates: list[float],
    *,
    experiments: int,
    seed: int,
    rule: Rule = automatic_winner,
    looks: int = LOOKS,
    carts_per_look: int = CARTS_PER_LOOK,
    min_recipients: int = DEFAULT_MIN_RECIPIENTS,
) -> Peeking:
    """Experiments whose arms convert at ``rates``, carts arriving look after look. Each experiment
    has one report whose cadence arms grow with every look; ``rule`` reads it at every look and the
    experiment stops at the first winner (a decision is final)."""
    rng = random.Random(seed)
    best = LABELS[max(range(len(rates)), key=rates.__getitem__)]
    fired = picked_best = 0
    carts_at_firing = []
    for _ in range(experiments):
        report = _report(min_recipients)
        report.cadences = ArmSet([Arm(label=LABELS[i]) for i in range(len(rates))])
        arms = report.cadences.arms
        for _ in range(looks):
            for arm, rate, new in zip(arms, rates, _assign(rng, carts_per_look, len(arms)), strict=True):
                # each cart's outcome is known at once here (see delayed_outcomes for the other case)
                bought = rng.binomialvariate(new, rate)
                arm.carts, arm.converted = arm.carts + new, arm.converted + bought
                arm.complete, arm.complete_converted = arm.carts, arm.converted
            winner = rule(report)
            if winner is not None:
                fired += 1
                picked_best += winner == best
                carts_at_firing.append(sum(arm.carts for arm in arms) // len(arms))
                break
    return Peeking(rule.__name__, list(rates), looks, experiments, fired, picked_best, carts_at_firing)


def _assign(rng: random.Random, carts: int, arms: int) -> list[int]:
    """``carts`` assigned uniformly at random among ``arms`` (a multinomial, as successive binomials)."""
    split = []
    for arm in range(arms - 1):
        split.append(rng.binomialvariate(carts, 1 / (arms - arm)))
        carts -= split[-1]
    return [*split, carts]


# --- outcomes that take time: the arms differ in when their buyers come, not in how many --------


def orders_so_far(report: ExperimentReport) -> str | None:
    """The rule not to use either: the same always-valid test, on every cart and every order so far
    (carts whose follow-up has not ended yet included) — it favours the arm whose buyers come sooner."""
    arms = report.cadences.arms
    best, _ = stats.leader([(arm.converted, arm.carts) for arm in arms], min_trials=report.min_recipients)
    return None if best is None else arms[best].label


@dataclass(frozen=True)
class Delayed:
    rule: str
    experiments: int
    fired: int
    setup: str

    def lines(self) -> list[str]:
        fired = f"fired in {_percent(self.fired, self.experiments)} of {self.experiments:,} experiments"
        if self.rule == automatic_winner.__name__:
            return [
                f"same rate, buyers of one arm come later ({self.setup}): "
                f"the automatic winner {fired} (target <= 5 %)"
            ]
        return [f"  {self.rule.replace('_', ' ')} instead: {fired}"]


def delayed_outcomes(
    *,
    experiments: int,
    seed: int,
    rule: Rule = automatic_winner,
    rate: float = 0.10,
    delays: tuple[timedelta, timedelta] = (timedelta(days=1), timedelta(days=3)),
    follow_up: timedelta = timedelta(days=4),
    days: int = 7,
    carts_per_look: int = 10,
    check_every: int = 6,
    min_recipients: int = DEFAULT_MIN_RECIPIENTS,
) -> Delayed:
    """Two cadences whose carts convert at the same ``rate`` within ``follow_up``, A's buyers
    within ``delays[0]`` of the cart, B's within ``delays[1]`` (uniformly). ``rule`` reads the report
    every ``check_every`` looks for ``days``; the report's arms hold every cart and order so far and,
    as the SQL fills them, the carts whose follow-up ended with their orders within it."""
    rng = random.Random(seed)
    span = round(follow_up / LOOK)
    spreads = [round(delay / LOOK) for delay in delays]
    fired = 0
    for _ in range(experiments):
        report = _report(min_recipients)
        report.cadences = ArmSet([Arm(label=LABELS[i]) for i in range(2)])
        arms = report.cadences.arms
        arrivals: list[list[tuple[int, int]]] = [[], []]  # per arm: (new carts, their buyers) by look
        sales: list[Counter] = [Counter(), Counter()]  # per arm: look -> orders placed then
        for look in range(days * 24 * 6):
            for i, (arm, new) in enumerate(zip(arms, _assign(rng, carts_per_look, 2), strict=True)):
                bought = rng.binomialvariate(new, rate)
                arrivals[i].append((new, bought))
                for _ in range(bought):
                    sales[i][look + rng.randint(0, spreads[i])] += 1
                arm.carts += new
                arm.converted += sales[i].pop(look, 0)
                if look >= span:  # the carts that arrived a follow-up ago are complete now
                    done, done_bought = arrivals[i][look - span]
                    arm.complete, arm.complete_converted = (
                        arm.complete + done,
                        arm.complete_converted + done_bought,
                    )
            if look % check_every == 0 and rule(report) is not None:
                fired += 1
                break
    days_text = ", ".join(f"{delay / timedelta(days=1):g} d" for delay in delays)
    setup = (
        f"{100 * rate:g} % within {follow_up / timedelta(days=1):g} d, buyers within {days_text}, "
        f"checked hourly for {days} d"
    )
    return Delayed(rule.__name__, experiments, fired, setup)
