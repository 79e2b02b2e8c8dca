"""The automatic winner's decisions, read by key: by the dispatcher (subjects), the hook's upsert
(cadence) and the report. They are taken by :mod:`.rollup`, off the hot path; a decision is
final for its experiment version: from ``decided_at`` on, new carts get the winner and count no
more in that comparison.
"""

from dataclasses import dataclass
from datetime import datetime

from ..models import RecoveryCart, RecoveryWinner, channels_in

CADENCE = "cadence"


def subject_set(step: int) -> str:
    return f"subject:{step}"


@dataclass(frozen=True)
class Decision:
    arm: str  # the cadence's label, or the subject variant's index
    decided_at: datetime


Decisions = dict[str, Decision]  # arm set -> decision


def read_winners(keys: set[tuple[str, str]]) -> dict[tuple[str, str], Decisions]:
    """The decisions of these (channel, experiment version) pairs, in one query."""
    found: dict[tuple[str, str], Decisions] = {key: {} for key in keys}
    if not keys:
        return found
    channels, versions = zip(*sorted(keys), strict=True)
    rows = RecoveryWinner.objects.filter(channel_slug__in=channels, experiment__in=versions).values_list(
        "channel_slug", "experiment", "arm_set", "arm", "decided_at"
    )
    for slug, version, arm_set, arm, decided_at in rows:
        if (slug, version) in found:
            found[(slug, version)][arm_set] = Decision(arm, decided_at)
    return found


def tracked_channels() -> list[str]:
    """The channels that have carts (one index probe per channel, however many carts each has)."""
    return channels_in(RecoveryCart)
