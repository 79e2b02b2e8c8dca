"""Which arm a cart is in: holdout, subject variant, cadence, and the automatic winner.

Every assignment is a stable hash of the checkout token (and experiment version), decided once and
recorded on the cart or message, so a cart never switches arm. Once the owner turns the automatic
winner on and one variant is best with 95 % probability, newly assigned carts all get it.
"""

import hashlib
from dataclasses import dataclass, field

from django.core.cache import cache

from ..settings.channel import RecoverySettings
from . import stats
from .report import Arm, ExperimentReport, build_report

# Automatic-winner decisions are recomputed at most this often per channel and version: the
# dispatcher runs every minute and the decision needs a scan of the version's carts.
WINNER_CACHE_SECONDS = 600
WINNER_THRESHOLD = 0.95


def in_holdout(checkout_token: str, holdout_percent) -> bool:
    """Whether a new cart joins the control group; decided once, when the cart is first seen."""
    return pick_variant(checkout_token, "holdout", 10_000) < int(holdout_percent * 100)


def pick_variant(checkout_token: str, experiment: str, variants: int) -> int:
    """Deterministic, uniform assignment: the same cart always sees the same variant."""
    if variants <= 1:
        return 0
    digest = hashlib.sha256(f"{experiment}:{checkout_token}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % variants


def pick_cadence(checkout_token: str, settings: RecoverySettings, winner: str | None = None) -> str:
    """The cadence variant of a cart (``""`` when no cadences are tested).

    Stable hash of token and experiment version, so a new version reshuffles; once an automatic
    winner is declared every newly assigned cart gets it."""
    cadences = settings.experiments.cadences
    if not cadences:
        return ""
    if winner and any(c.label == winner for c in cadences):
        return winner
    index = pick_variant(checkout_token, f"cadence:{settings.experiments.version}", len(cadences))
    return cadences[index].label


@dataclass(frozen=True)
class Winners:
    cadence: str | None = None
    subjects: dict[int, int] = field(default_factory=dict)  # step -> winning variant index


NO_WINNERS = Winners()


def current_winners(channel: str, settings: RecoverySettings) -> Winners:
    """Variants new carts are shifted to, when the owner switched the automatic winner on."""
    experiments = settings.experiments
    if not experiments.auto_winner:
        return NO_WINNERS
    key = f"saleor_cart_recovery:winners:{channel}:{experiments.version}:{experiments.winner_min_recipients}"
    found = cache.get(key)
    if found is None:
        reports = build_report(channel=channel, version=experiments.version, settings_for=lambda s: settings)
        found = winners_of(reports[0]) if reports else Winners()
        cache.set(key, found, WINNER_CACHE_SECONDS)
    return found


def winners_of(report: ExperimentReport) -> Winners:
    def best(arms: list[Arm]) -> int | None:
        known = [a.probability_best for a in arms if a.probability_best is not None]
        return stats.winner(known if len(known) == len(arms) else None, WINNER_THRESHOLD)

    cadence = best(report.cadences)
    subjects = {}
    for step in report.steps:
        index = best(step.variants)
        if index is not None:
            subjects[step.step] = step.variants[index].index
    return Winners(report.cadences[cadence].label if cadence is not None else None, subjects)
