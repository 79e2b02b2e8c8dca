"""The report as plain JSON-able data: what ``cart_recovery_report --json`` prints, what the API's
``report`` returns and what the table and the HTML page are drawn from."""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from ..settings.channel import RecoverySettings
from ..settings.parsers import format_duration
from .report import Arm, ExperimentReport, build_report


def report_data(
    *,
    channel: str | None = None,
    since: datetime | None = None,
    settings_for: Callable[[str], RecoverySettings | None] = lambda slug: None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """What ``cart_recovery_report --json`` prints and the API's ``report`` returns: every report
    of :func:`build_report` as :func:`plain` data."""
    reports = build_report(channel=channel, since=since, settings_for=settings_for, progress=progress)
    return [plain(report) for report in reports]


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(Decimal("0.01")))


def _arm(arm: Arm) -> dict:
    return {
        "label": arm.label,
        "carts": arm.carts,
        "sent": arm.sent,
        "clicked": arm.clicked,
        "bounced": arm.bounced,
        "converted": arm.converted,
        "conversion_rate_pct": _pct(arm.conversion_rate),
        "revenue": _money(arm.revenue),
        "revenue_per_recipient": _money(arm.revenue_per_recipient),
        "probability_best_pct": _pct(arm.probability_best),
    }


def plain(report: ExperimentReport) -> dict:
    """The report as JSON-able data: counts as ints, percentages rounded to 2 decimals, money as
    decimal strings in ``currency``."""
    interval = report.lift_interval
    return {
        "channel": report.channel,
        "experiment": report.version,
        "current": report.current,
        "currency": report.currency,
        "attribution_window": format_duration(report.attribution_window),
        "min_recipients": report.min_recipients,
        "first_cart_at": report.first_cart_at.isoformat() if report.first_cart_at else None,
        "last_cart_at": report.last_cart_at.isoformat() if report.last_cart_at else None,
        "treated": {
            "carts": report.treated.carts,
            "recipients": report.recipients,
            "bounced": sum(step.total.bounced for step in report.steps),
            "converted": report.treated.converted,
            "conversion_rate_pct": _pct(report.treated.conversion_rate),
            "revenue": _money(report.treated.revenue),
        },
        "holdout": {
            "carts": report.holdout.carts,
            "converted": report.holdout.converted,
            "conversion_rate_pct": _pct(report.holdout.conversion_rate),
            "revenue": _money(report.holdout.revenue),
        },
        "lift_pct": _pct(report.lift),
        "lift_interval_pct": [_pct(interval.low), _pct(interval.high)] if interval else None,
        "incremental_revenue": _money(report.incremental_revenue),
        "recovered_after_reminder": {
            "orders": report.recovered_after_reminder,
            "revenue": _money(report.revenue_after_reminder),
        },
        "recovered_after_click": {
            "orders": report.recovered_after_click,
            "revenue": _money(report.revenue_after_click),
        },
        "steps": [
            {"step": step.step, "total": _arm(step.total), "variants": [_arm(v) for v in step.variants]}
            for step in report.steps
        ],
        "cadences": [_arm(arm) for arm in report.cadences],
    }
