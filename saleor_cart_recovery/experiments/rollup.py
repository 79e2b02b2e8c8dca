"""The periodic report rollup (beat task ``report_rollup``, every 10 minutes), off every hot path.

Per channel the report is built once and stored (:class:`RecoveryReportSnapshot`): the command, the
API and the page show it with the time it was computed, so reading a report never scans a large
history. Where the owner switched ``auto_winner`` on, the winners the current experiment version
proves are recorded from the same build (:func:`.stats.leader`, always valid: deciding every 10
minutes does not raise the false-winner rate). A channel whose build fails is logged and skipped.
"""

import logging
import time
from collections.abc import Callable
from datetime import datetime

from ..models import RecoveryReportSnapshot, RecoveryWinner
from ..settings.channel import RecoverySettings
from .report import ExperimentReport, build_report
from .report_json import plain
from .winners import tracked_channels

logger = logging.getLogger(__name__)


def rollup(now: datetime, settings_for: Callable[[str], RecoverySettings | None]) -> list[str]:
    """Store every channel's report as of ``now`` and record the winners proven by then; returns a
    line per new decision."""
    decided = []
    for slug in tracked_channels():
        try:
            started = time.monotonic()
            reports = build_report(channel=slug, settings_for=settings_for, now=now)
            RecoveryReportSnapshot.objects.update_or_create(
                channel_slug=slug,
                defaults={
                    "computed_at": now,
                    "seconds": time.monotonic() - started,
                    "data": [plain(report, computed_at=now) for report in reports],
                },
            )
            settings = settings_for(slug)
            if settings is not None and settings.experiments.auto_winner:
                current = [report for report in reports if report.version == settings.experiments.version]
                decided += _record_winners(current[0], now) if current else []
        except Exception:
            logger.exception("cart recovery: could not roll up the report of channel %s", slug)
    return decided


def _record_winners(report: ExperimentReport, now: datetime) -> list[str]:
    decided = []
    for arm_set, winner in report.proven_winners().items():
        _, created = RecoveryWinner.objects.get_or_create(
            channel_slug=report.channel,
            experiment=report.version,
            arm_set=arm_set,
            defaults={"arm": winner.arm, "decided_at": now, "evidence": winner.evidence},
        )
        if created:
            decided.append(f"{report.channel} {report.version} {arm_set}: {winner.arm}")
    return decided
