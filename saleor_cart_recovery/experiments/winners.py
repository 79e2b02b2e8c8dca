"""The automatic winner: decided off the hot path, read by key.

A periodic task (:func:`decide_winners`, every 10 minutes) builds the report of each channel's
current experiment version whose owner switched ``auto_winner`` on and, for each arm set (the
cadences, each step's subjects), records a winner once :func:`.stats.leader` proves one arm better
than every other. The test is always valid (mSPRT), so checking every 10 minutes does not raise the
false-winner rate. A decision is final for its version: from ``decided_at`` on, new carts get the
winner (and count no more in that comparison); the dispatcher and the hook read the decisions with
one indexed lookup.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from ..models import RecoveryCart, RecoveryWinner
from ..settings.channel import RecoverySettings

logger = logging.getLogger(__name__)

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


def decide_winners(now: datetime, settings_for: Callable[[str], RecoverySettings | None]) -> list[str]:
    """Record the winners proven by now; returns a line per new decision. A channel whose report
    fails is logged and skipped (the others still decide)."""
    from .report import build_report  # the report reads decisions too; imported here, not at load

    decided = []
    for slug in tracked_channels():
        settings = settings_for(slug)
        if settings is None or not settings.experiments.auto_winner:
            continue
        try:
            reports = build_report(
                channel=slug, version=settings.experiments.version, settings_for=settings_for
            )
            for arm_set, winner in reports[0].proven_winners().items() if reports else ():
                _, created = RecoveryWinner.objects.get_or_create(
                    channel_slug=slug,
                    experiment=settings.experiments.version,
                    arm_set=arm_set,
                    defaults={"arm": winner.arm, "decided_at": now, "evidence": winner.evidence},
                )
                if created:
                    decided.append(f"{slug} {settings.experiments.version} {arm_set}: {winner.arm}")
        except Exception:
            logger.exception("cart recovery: could not decide the automatic winner in channel %s", slug)
    return decided
