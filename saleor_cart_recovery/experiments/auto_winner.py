"""The automatic winner, decided off the hot path (the beat task ``decide_winners``, every 10 minutes).

For each channel whose owner switched ``auto_winner`` on, the report of its current experiment
version is built and, for each arm set (the cadences, each step's subjects), a winner is recorded
once :func:`.stats.leader` proves one arm better than every other. The test is always valid (mSPRT),
so checking every 10 minutes does not raise the false-winner rate.
"""

import logging
from collections.abc import Callable
from datetime import datetime

from ..models import RecoveryWinner
from ..settings.channel import RecoverySettings
from .report import build_report
from .winners import tracked_channels

logger = logging.getLogger(__name__)


def decide_winners(now: datetime, settings_for: Callable[[str], RecoverySettings | None]) -> list[str]:
    """Record the winners proven by now; returns a line per new decision. A channel whose report
    fails is logged and skipped (the others still decide)."""
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
