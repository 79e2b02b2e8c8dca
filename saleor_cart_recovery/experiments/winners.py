"""The automatic winner's decisions, read by key: by the dispatcher (subjects), the hook's upsert
(cadence) and the report. They are taken by :mod:`.rollup`, off the hot path; a decision is
final for its experiment version: from ``decided_at`` on, new carts get the winner and count no
more in that comparison.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from ..models import RecoveryCart, RecoveryWinner

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


# The channels that have carts, through the (channel_slug, email) index: one index probe per
# channel, however many carts each has.
_CHANNELS = f"""
WITH RECURSIVE ch AS (
    (SELECT channel_slug FROM {RecoveryCart._meta.db_table} ORDER BY channel_slug LIMIT 1)
    UNION ALL
    SELECT (SELECT c.channel_slug FROM {RecoveryCart._meta.db_table} c
            WHERE c.channel_slug > ch.channel_slug ORDER BY c.channel_slug LIMIT 1)
    FROM ch WHERE ch.channel_slug IS NOT NULL
)
SELECT channel_slug FROM ch WHERE channel_slug IS NOT NULL
"""


def tracked_channels() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(_CHANNELS)
        return [row[0] for row in cursor.fetchall()]
