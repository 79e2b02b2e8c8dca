"""Report data: what the series recovered, per channel and experiment version.

Counting rules (README "Reading the report"):
- Each order counts once, even when the email fallback matched it to several carts of the same
  shopper: it belongs to the token-matched cart, else to the cart reminded most recently.
- *Recovered after a reminder*: the order came at most ``attribution_window`` after the last
  reminder sent before it; it is attributed to that step and subject variant. *Recovered after a
  click*: additionally a link in one of the cart's reminders was clicked in that window before
  the order.
- *Holdout vs treated* compares every order of the two groups, whatever the timing: the holdout
  gets no email, so only the difference between the groups is caused by the reminders.

The scan reads carts in id ranges of :data:`CHUNK` rows, each range a few grouped queries, so a
long history is read in bounded steps (with progress) and never loaded at once.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection

from ..models import RecoveryCart, RecoveryMessage
from ..settings.channel import RecoverySettings
from ..settings.registry import BY_NAME
from . import stats

# Carts per scan step: each step is three grouped queries over an id range.
CHUNK = 50_000
# Used for versions whose channel has no valid settings any more.
DEFAULT_WINDOW = BY_NAME["attribution_window"].parse(BY_NAME["attribution_window"].default)
DEFAULT_MIN_RECIPIENTS = BY_NAME["winner_min_recipients"].parse(BY_NAME["winner_min_recipients"].default)
_CARTS = RecoveryCart._meta.db_table
_MESSAGES = RecoveryMessage._meta.db_table


@dataclass
class Arm:
    """One variant (subject of a step, or cadence): recipients and what they brought."""

    label: str
    index: int = 0  # subject variant: position of its line among the step's subjects
    carts: int = 0  # carts that reached it (subject: step planned; cadence: carts assigned)
    sent: int = 0  # recipients: emails sent (subject) or carts with at least one email (cadence)
    clicked: int = 0
    bounced: int = 0  # refused for good by the recipient's mail server (the address is suppressed)
    converted: int = 0  # recovered after a reminder within the window, attributed here
    revenue: Decimal = Decimal(0)
    probability_best: float | None = None

    @property
    def conversion_rate(self) -> float | None:
        return stats.rate(self.converted, self.sent)

    @property
    def revenue_per_recipient(self) -> Decimal | None:
        return (self.revenue / self.sent).quantize(Decimal("0.01")) if self.sent else None


@dataclass
class Step:
    step: int
    variants: list[Arm] = field(default_factory=list)

    @property
    def total(self) -> Arm:
        arm = Arm(label="all")
        for v in self.variants:
            arm.carts, arm.sent, arm.clicked = arm.carts + v.carts, arm.sent + v.sent, arm.clicked + v.clicked
            arm.bounced += v.bounced
            arm.converted, arm.revenue = arm.converted + v.converted, arm.revenue + v.revenue
        return arm


@dataclass
class Group:
    """Holdout or treated: every cart of the group and every order it placed."""

    carts: int = 0
    converted: int = 0
    revenue: Decimal = Decimal(0)

    @property
    def conversion_rate(self) -> float | None:
        return stats.rate(self.converted, self.carts)

    @property
    def revenue_per_cart(self) -> Decimal | None:
        return self.revenue / self.carts if self.carts else None


@dataclass
class ExperimentReport:
    channel: str
    version: str
    current: bool  # the version new carts join now
    currency: str = ""
    attribution_window: timedelta = DEFAULT_WINDOW
    min_recipients: int = DEFAULT_MIN_RECIPIENTS
    first_cart_at: datetime | None = None
    last_cart_at: datetime | None = None
    treated: Group = field(default_factory=Group)
    holdout: Group = field(default_factory=Group)
    steps: list[Step] = field(default_factory=list)
    cadences: list[Arm] = field(default_factory=list)
    recipients: int = 0  # treated carts with at least one email sent
    recovered_after_reminder: int = 0
    revenue_after_reminder: Decimal = Decimal(0)
    recovered_after_click: int = 0
    revenue_after_click: Decimal = Decimal(0)

    @property
    def lift(self) -> float | None:
        """Absolute lift: treated conversion rate minus holdout conversion rate."""
        treated, holdout = self.treated.conversion_rate, self.holdout.conversion_rate
        if treated is None or holdout is None:
            return None
        return treated - holdout

    @property
    def lift_interval(self) -> stats.Interval | None:
        return stats.difference_interval(
            self.treated.converted, self.treated.carts, self.holdout.converted, self.holdout.carts
        )

    @property
    def incremental_revenue(self) -> Decimal | None:
        """Treated revenue minus what the treated carts would have brought at the holdout's rate."""
        if not (self.treated.carts and self.holdout.carts):
            return None
        expected = self.holdout.revenue * self.treated.carts / self.holdout.carts
        return (self.treated.revenue - expected).quantize(Decimal("0.01"))


@dataclass
class _Conversion:
    cart_id: int
    key: tuple
    holdout: bool
    cadence: str
    total: Decimal
    currency: str
    converted_at: datetime
    token_match: bool
    last_step: int | None
    last_variant: int | None
    last_sent_at: datetime | None
    last_click_at: datetime | None


def build_report(
    *,
    channel: str | None = None,
    since: datetime | None = None,
    version: str | None = None,
    settings_for: Callable[[str], RecoverySettings | None] = lambda slug: None,
    progress: Callable[[int, int], None] | None = None,
) -> list[ExperimentReport]:
    """Reports per (channel, experiment version), current versions first, then newest first."""
    where: list[str] = ["TRUE"]
    params: dict[str, Any] = {}
    if channel:
        where.append("c.channel_slug = %(channel)s")
        params["channel"] = channel
    if since:
        where.append("c.created_at >= %(since)s")
        params["since"] = since
    if version:
        where.append("c.experiment = %(version)s")
        params["version"] = version
    condition = " AND ".join(where)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MIN(c.id), MAX(c.id) FROM {_CARTS} c WHERE {condition}", params)
        low, high = cursor.fetchone()
    reports: dict[tuple[str, str], ExperimentReport] = {}
    steps: dict[tuple, Arm] = {}
    cadences: dict[tuple, Arm] = {}
    conversions: dict[tuple, _Conversion] = {}
    if low is not None:
        total = high - low + 1
        for start in range(low, high + 1, CHUNK):
            chunk = {**params, "lo": start, "hi": start + CHUNK}
            chunk_condition = f"{condition} AND c.id >= %(lo)s AND c.id < %(hi)s"
            _scan_carts(chunk_condition, chunk, reports, cadences, settings_for)
            _scan_messages(chunk_condition, chunk, steps)
            _scan_conversions(chunk_condition, chunk, conversions)
            if progress:
                progress(min(start + CHUNK, high + 1) - low, total)
    _attribute(reports, steps, cadences, conversions)
    for (slug, ver), report in reports.items():
        report.steps = [
            Step(step, sorted((a for k, a in steps.items() if k[:3] == (slug, ver, step)), key=_index))
            for step in sorted({k[2] for k in steps if k[:2] == (slug, ver)})
        ]
        report.cadences = sorted((a for k, a in cadences.items() if k[:2] == (slug, ver)), key=_label)
        _verdicts(report)
    return sorted(
        reports.values(),
        key=lambda r: (r.channel, not r.current, -(r.last_cart_at.timestamp() if r.last_cart_at else 0)),
    )


def _label(arm: Arm) -> str:
    return arm.label


def _index(arm: Arm) -> int:
    return arm.index


def _scan_carts(condition, params, reports, cadences, settings_for) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT c.channel_slug, c.experiment, c.holdout, c.cadence, COUNT(*),
                COUNT(*) FILTER (WHERE EXISTS (
                    SELECT 1 FROM {_MESSAGES} m WHERE m.cart_id = c.id AND m.status = 'sent')),
                COUNT(*) FILTER (WHERE EXISTS (
                    SELECT 1 FROM {_MESSAGES} m WHERE m.cart_id = c.id AND m.clicks > 0)),
                MIN(c.created_at), MAX(c.created_at)
            FROM {_CARTS} c WHERE {condition}
            GROUP BY 1, 2, 3, 4
            """,
            params,
        )
        rows = cursor.fetchall()
    for slug, version, holdout, cadence, carts, recipients, clicked, first, last in rows:
        report = reports.get((slug, version))
        if report is None:
            settings = settings_for(slug)
            report = reports[(slug, version)] = ExperimentReport(
                channel=slug,
                version=version,
                current=settings is not None and settings.experiments.version == version,
            )
            if settings is not None:
                report.attribution_window = settings.experiments.attribution_window
                report.min_recipients = settings.experiments.winner_min_recipients
        report.first_cart_at = min(filter(None, [report.first_cart_at, first]))
        report.last_cart_at = max(filter(None, [report.last_cart_at, last]))
        (report.holdout if holdout else report.treated).carts += carts
        if holdout:
            continue
        report.recipients += recipients
        if cadence:
            arm = cadences.setdefault((slug, version, cadence), Arm(label=cadence))
            arm.carts, arm.sent, arm.clicked = arm.carts + carts, arm.sent + recipients, arm.clicked + clicked


def _scan_messages(condition, params, steps) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT c.channel_slug, c.experiment, m.step, m.variant, COUNT(*),
                COUNT(*) FILTER (WHERE m.status = 'sent'), COUNT(*) FILTER (WHERE m.clicks > 0),
                COUNT(*) FILTER (WHERE m.status = 'failed' AND m.reason = 'bounced')
            FROM {_MESSAGES} m JOIN {_CARTS} c ON c.id = m.cart_id
            WHERE {condition} AND NOT c.holdout
            GROUP BY 1, 2, 3, 4
            """,
            params,
        )
        rows = cursor.fetchall()
    for slug, version, step, variant, planned, sent, clicked, bounced in rows:
        arm = steps.setdefault((slug, version, step, variant), Arm(_variant_label(variant), index=variant))
        arm.carts, arm.sent, arm.clicked = arm.carts + planned, arm.sent + sent, arm.clicked + clicked
        arm.bounced += bounced


def _variant_label(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else str(index + 1)


def _scan_conversions(condition, params, conversions) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT c.id, c.channel_slug, c.experiment, c.holdout, c.cadence, c.order_id, c.order_total,
                c.order_currency, c.converted_at, c.conversion_match = 'token',
                last.step, last.variant, last.sent_at,
                (SELECT MAX(k.first_clicked_at) FROM {_MESSAGES} k
                    WHERE k.cart_id = c.id AND k.first_clicked_at <= c.converted_at)
            FROM {_CARTS} c
            LEFT JOIN LATERAL (
                SELECT m.step, m.variant, m.sent_at FROM {_MESSAGES} m
                WHERE m.cart_id = c.id AND m.status = 'sent' AND m.sent_at <= c.converted_at
                ORDER BY m.sent_at DESC, m.step DESC LIMIT 1
            ) last ON TRUE
            WHERE {condition} AND c.status = 'converted' AND c.order_total IS NOT NULL
            """,
            params,
        )
        rows = cursor.fetchall()
    for row in rows:
        cart_id, slug, version, holdout, cadence, order_id, total, currency, at, token_match = row[:10]
        conversion = _Conversion(
            cart_id, (slug, version), holdout, cadence, total, currency, at, token_match, *row[10:]
        )
        order_key = (slug, order_id)
        if order_key not in conversions or _rank(conversion) > _rank(conversions[order_key]):
            conversions[order_key] = conversion


def _rank(conversion: _Conversion) -> tuple:
    """Which of the carts an order matched owns it: the checkout's own, else the last reminded."""
    reminded = conversion.last_sent_at.timestamp() if conversion.last_sent_at else 0
    return (conversion.token_match, reminded, conversion.cart_id)


def _attribute(reports, steps, cadences, conversions) -> None:
    for conversion in conversions.values():
        report = reports[conversion.key]
        report.currency = report.currency or conversion.currency
        group = report.holdout if conversion.holdout else report.treated
        group.converted += 1
        group.revenue += conversion.total
        window = report.attribution_window
        if conversion.last_sent_at is None or conversion.converted_at - conversion.last_sent_at > window:
            continue
        report.recovered_after_reminder += 1
        report.revenue_after_reminder += conversion.total
        if conversion.last_click_at and conversion.converted_at - conversion.last_click_at <= window:
            report.recovered_after_click += 1
            report.revenue_after_click += conversion.total
        for arm in (
            steps.get((*conversion.key, conversion.last_step, conversion.last_variant)),
            cadences.get((*conversion.key, conversion.cadence)) if conversion.cadence else None,
        ):
            if arm is not None:
                arm.converted += 1
                arm.revenue += conversion.total


def _verdicts(report: ExperimentReport) -> None:
    arm_sets = [step.variants for step in report.steps] + [report.cadences]
    for arms in arm_sets:
        probabilities = stats.probability_best(
            [(a.converted, a.sent) for a in arms], min_trials=report.min_recipients
        )
        verdicts: list[float | None] = list(probabilities) if probabilities else [None] * len(arms)
        for arm, probability in zip(arms, verdicts, strict=True):
            arm.probability_best = probability
