"""The report as plain JSON-able data: what ``cart_recovery_report --json`` prints, what the API's
``report`` returns, what the rollup stores and what the table and the HTML page are drawn from."""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from ..models import RecoveryReportSnapshot
from ..settings.channel import RecoverySettings
from ..settings.parsers import format_duration
from . import stats
from .deliverability import rates
from .report import Arm, ArmSet, ExperimentReport, Group, Money, build_report
from .winners import tracked_channels


def report_data(
    *,
    channel: str | None = None,
    since: datetime | None = None,
    settings_for: Callable[[str], RecoverySettings | None] = lambda slug: None,
    progress: Callable[[int, int], None] | None = None,
    fresh: bool = False,
) -> list[dict]:
    """Every report of the channel (or all channels) as :func:`plain` data: the ones the periodic
    rollup stored, when it has stored every channel asked for and no ``since`` or ``fresh`` asks for
    a build now; else built now by :func:`build_report`. Each says when it was ``computed_at``, and
    carries its channel's ``deliverability`` (:func:`.deliverability.rates`, always read now)."""
    now = timezone.now()
    reports = None
    if since is None and not fresh:
        slugs = [channel] if channel else tracked_channels()
        stored = dict(
            RecoveryReportSnapshot.objects.filter(channel_slug__in=slugs).values_list("channel_slug", "data")
        )
        if slugs and all(slug in stored for slug in slugs):
            reports = [report for slug in slugs for report in stored[slug]]
    if reports is None:
        built = build_report(
            channel=channel, since=since, settings_for=settings_for, progress=progress, now=now
        )
        reports = [plain(report, computed_at=now) for report in built]
    channel_rates: dict[str, dict] = {}
    for report in reports:
        slug = report["channel"]
        if slug not in channel_rates:
            channel_rates[slug] = rates(slug, now)
        report["deliverability"] = channel_rates[slug]
    return reports


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(Decimal("0.01")))


def _interval(interval: stats.Interval | None) -> list[float | None] | None:
    return [_pct(interval.low), _pct(interval.high)] if interval else None


def _revenue(money: Money) -> dict:
    return {"gross": _money(money.gross), "refunded": _money(money.refunded), "net": _money(money.net)}


def _arm(arm: Arm) -> dict:
    return {
        "label": arm.label,
        "carts": arm.carts,
        "sent": arm.sent,
        "clicked": arm.clicked,
        "bounced": arm.bounced,
        "converted": arm.converted,
        "conversion_rate_pct": _pct(arm.conversion_rate),
        "complete": {"carts": arm.complete, "converted": arm.complete_converted},
        "revenue": _revenue(arm.revenue),
        "revenue_per_cart": _money(arm.revenue_per_cart),
        "attributed": {"orders": arm.attributed, "revenue": _money(arm.attributed_revenue)},
        "p_value": None if arm.p_value is None else round(arm.p_value, 4),
        "winner": arm.winner,
    }


def _arm_set(arm_set: ArmSet) -> dict:
    return {
        "arms": [_arm(arm) for arm in arm_set.arms],
        "decided": arm_set.decided,
        "decided_at": arm_set.decided_at.isoformat() if arm_set.decided_at else None,
        "after_decision": _arm(arm_set.after_decision) if arm_set.after_decision else None,
    }


def _group(group: Group) -> dict:
    return {
        "carts": group.carts,
        "shoppers": group.shoppers,
        "orders": group.orders,
        "converted": group.converted,
        "conversion_rate_pct": _pct(group.conversion_rate),
        "shoppers_converted": group.shoppers_converted,
        "shopper_rate_pct": _pct(group.shopper_rate),
        "complete": {"shoppers": group.complete_shoppers, "converted": group.complete_shoppers_converted},
        "revenue": _revenue(group.revenue),
    }


def plain(report: ExperimentReport, *, computed_at: datetime) -> dict:
    """The report as JSON-able data: counts as ints, percentages (and percentage points) rounded to
    2 decimals, money as decimal strings in ``currency``, p-values to 4 decimals."""
    test = report.lift_test
    return {
        "channel": report.channel,
        "computed_at": computed_at.isoformat(),
        "experiment": report.version,
        "current": report.current,
        "currency": report.currency,
        "attribution_window": format_duration(report.attribution_window),
        "follow_up": format_duration(report.follow_up),
        "min_recipients": report.min_recipients,
        "first_cart_at": report.first_cart_at.isoformat() if report.first_cart_at else None,
        "last_cart_at": report.last_cart_at.isoformat() if report.last_cart_at else None,
        "treated": {
            **_group(report.treated),
            "recipients": report.recipients,
            "bounced": sum(step.total.bounced for step in report.steps),
        },
        "holdout": _group(report.holdout),
        "lift_pct": _pct(report.lift),
        "lift_interval_pct": _interval(report.lift_interval),
        "shopper_lift_pct": _pct(report.shopper_lift),
        "shopper_lift_interval_pct": _interval(report.shopper_lift_interval),
        "lift_always_valid_interval_pct": _interval(test.interval if test else None),
        "lift_p_value": None if test is None else round(test.p_value, 4),
        "lift_verdict": report.lift_verdict,
        "incremental_revenue": _money(report.incremental_revenue),
        "recovered_after_reminder": {
            "orders": report.recovered_after_reminder,
            "revenue": _money(report.revenue_after_reminder),
        },
        "recovered_after_click": {
            "orders": report.recovered_after_click,
            "revenue": _money(report.revenue_after_click),
        },
        "steps": [{"step": step.step, "total": _arm(step.total), **_arm_set(step)} for step in report.steps],
        "cadences": _arm_set(report.cadences),
    }
