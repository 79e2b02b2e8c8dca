"""Report data: what the series did and what it caused, per channel and experiment version.

Counting rules (docs/experiments.md "Reading it"):
- **Intent to treat.** Every arm is the set of carts assigned to it at their first activity
  (:mod:`.assignment`): holdout or treated, each cadence, and each step's subject variants (there:
  the carts that reached the step — reaching it does not depend on the step's own variant). Arms
  are compared on *all* orders of their carts ÷ their carts, whenever the orders came. Carts that
  got an arm set's decided winner after the decision are shown apart and compared no more.
- **Each order counts once**, by a rule that does not look at reminders: it belongs to the
  checkout it came from (token match), else to the shopper's cart with the latest activity before
  the order — the same for held-out and reminded carts.
- **Net.** A cancelled or fully refunded order is no conversion; revenue is the order total minus
  refunds (gross, refunded and net are all shown).
- **Attributed** figures (an order within ``attribution_window`` after the last reminder sent
  before it; after a click on it) are what email tools usually show; they are labelled as such
  and never used for a verdict.

Four grouped queries per report, whatever the number of carts; only the conversions (a small
share) are read row by row.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from ..models import CartStatus, MessageStatus, Reason, RecoveryCart, RecoveryMessage, RecoveryWinner
from ..settings.channel import RecoverySettings
from ..settings.registry import BY_NAME
from . import stats
from .winners import CADENCE, read_winners, subject_set, tracked_channels

# Used for versions whose channel has no valid settings any more.
DEFAULT_WINDOW = BY_NAME["attribution_window"].parse(BY_NAME["attribution_window"].default)
DEFAULT_MIN_RECIPIENTS = BY_NAME["winner_min_recipients"].parse(BY_NAME["winner_min_recipients"].default)
DEFAULT_FOLLOW_UP = BY_NAME["schedule"].parse(BY_NAME["schedule"].default)[-1] + DEFAULT_WINDOW
PHASES = 4  # grouped queries per build, for progress
_CARTS = RecoveryCart._meta.db_table
_MESSAGES = RecoveryMessage._meta.db_table
_WINNERS = RecoveryWinner._meta.db_table
ZERO = Decimal(0)


@dataclass
class Money:
    gross: Decimal = ZERO
    refunded: Decimal = ZERO  # refunds, and the whole total of cancelled orders

    @property
    def net(self) -> Decimal:
        return self.gross - self.refunded

    def add(self, gross, refunded) -> None:
        self.gross += gross or ZERO
        self.refunded += refunded or ZERO


@dataclass
class Arm:
    """One variant (a step's subject, or a cadence) and the carts assigned to it."""

    label: str
    index: int = 0  # subject variant: position of its line among the step's subjects
    carts: int = 0  # assigned: subject — carts that reached the step; cadence — carts given it
    sent: int = 0  # subject: emails sent; cadence: carts with at least one email
    clicked: int = 0
    bounced: int = 0  # refused for good by the recipient's mail server (the address is suppressed)
    converted: int = 0  # intent to treat: kept orders of these carts, whenever they came
    # What the verdicts compare: carts whose follow-up ended, and their kept orders within it.
    complete: int = 0
    complete_converted: int = 0
    revenue: Money = field(default_factory=Money)
    attributed: int = 0  # orders within the window after this arm's reminder (the last before them)
    attributed_revenue: Decimal = ZERO  # net
    p_value: float | None = None  # always valid, leader vs this arm; None for the leader
    winner: bool = False  # proven best (stats.leader)

    @property
    def conversion_rate(self) -> float | None:
        return stats.rate(self.converted, self.carts)

    @property
    def revenue_per_cart(self) -> Decimal | None:
        return (self.revenue.net / self.carts).quantize(Decimal("0.01")) if self.carts else None

    def add(self, other: "Arm") -> None:
        for name in (
            "carts",
            "sent",
            "clicked",
            "bounced",
            "converted",
            "complete",
            "complete_converted",
            "attributed",
            "attributed_revenue",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.revenue.add(other.revenue.gross, other.revenue.refunded)


@dataclass
class ArmSet:
    """Arms compared with each other, and what the automatic winner decided for them."""

    arms: list[Arm] = field(default_factory=list)
    decided: str | None = None  # the decided winner's label
    decided_at: datetime | None = None
    after_decision: Arm | None = None  # carts that got the winner after the decision

    @property
    def winner(self) -> Arm | None:
        return next((arm for arm in self.arms if arm.winner), None)


@dataclass
class Step(ArmSet):
    step: int = 0

    @property
    def variants(self) -> list[Arm]:
        return self.arms

    @property
    def total(self) -> Arm:
        arm = Arm(label="all")
        for variant in [*self.arms, *([self.after_decision] if self.after_decision else [])]:
            arm.add(variant)
        return arm


@dataclass
class Group:
    """Holdout or treated: every cart (and shopper) of the group and every order it placed."""

    carts: int = 0
    shoppers: int = 0
    orders: int = 0  # every order, cancelled and refunded ones too
    converted: int = 0  # kept orders (not cancelled, not fully refunded)
    shoppers_converted: int = 0  # shoppers with at least one kept order
    # What the verdict compares: shoppers with a cart whose follow-up ended, and of those the ones
    # with a kept order within it.
    complete_shoppers: int = 0
    complete_shoppers_converted: int = 0
    revenue: Money = field(default_factory=Money)

    @property
    def conversion_rate(self) -> float | None:
        return stats.rate(self.converted, self.carts)

    @property
    def shopper_rate(self) -> float | None:
        return stats.rate(self.shoppers_converted, self.shoppers)

    @property
    def revenue_per_cart(self) -> Decimal | None:
        return self.revenue.net / self.carts if self.carts else None

    @property
    def revenue_per_shopper(self) -> Decimal | None:
        return self.revenue.net / self.shoppers if self.shoppers else None


@dataclass(frozen=True)
class Proven:
    """A winner the report proves, as the automatic winner records it."""

    arm: str
    evidence: dict


@dataclass
class ExperimentReport:
    channel: str
    version: str
    current: bool  # the version new carts join now
    currency: str = ""
    attribution_window: timedelta = DEFAULT_WINDOW
    follow_up: timedelta = DEFAULT_FOLLOW_UP
    min_recipients: int = DEFAULT_MIN_RECIPIENTS
    first_cart_at: datetime | None = None
    last_cart_at: datetime | None = None
    treated: Group = field(default_factory=Group)
    holdout: Group = field(default_factory=Group)
    steps: list[Step] = field(default_factory=list)
    cadences: ArmSet = field(default_factory=ArmSet)
    recipients: int = 0  # treated carts with at least one email sent
    recovered_after_reminder: int = 0
    revenue_after_reminder: Decimal = ZERO
    recovered_after_click: int = 0
    revenue_after_click: Decimal = ZERO

    @property
    def lift(self) -> float | None:
        """Absolute lift per cart: treated conversion rate minus holdout conversion rate."""
        treated, holdout = self.treated.conversion_rate, self.holdout.conversion_rate
        return None if treated is None or holdout is None else treated - holdout

    @property
    def lift_interval(self) -> stats.Interval | None:
        """95 % interval of the per-cart lift, valid for one look (Newcombe)."""
        return stats.difference_interval(
            self.treated.converted, self.treated.carts, self.holdout.converted, self.holdout.carts
        )

    @property
    def shopper_lift(self) -> float | None:
        treated, holdout = self.treated.shopper_rate, self.holdout.shopper_rate
        return None if treated is None or holdout is None else treated - holdout

    @property
    def shopper_lift_interval(self) -> stats.Interval | None:
        return stats.difference_interval(
            self.treated.shoppers_converted,
            self.treated.shoppers,
            self.holdout.shoppers_converted,
            self.holdout.shoppers,
        )

    @property
    def lift_test(self) -> stats.Sequential | None:
        """The always-valid test of the lift, per shopper (the unit the holdout is drawn in, so a
        shopper's several carts are not counted as independent evidence), on the shoppers whose
        follow-up ended (outcomes still coming in would favour the group whose buyers come sooner)."""
        treated, holdout = self.treated, self.holdout
        if min(treated.complete_shoppers, holdout.complete_shoppers) < self.min_recipients:
            return None
        return stats.sequential(
            treated.complete_shoppers_converted,
            treated.complete_shoppers,
            holdout.complete_shoppers_converted,
            holdout.complete_shoppers,
        )

    @property
    def lift_verdict(self) -> str:
        """``positive`` / ``negative`` once the always-valid interval excludes 0, else
        ``inconclusive`` (also while a group has fewer than ``min_recipients`` shoppers)."""
        test = self.lift_test
        if test is None or not test.interval.excludes_zero():
            return "inconclusive"
        return "positive" if test.difference > 0 else "negative"

    @property
    def incremental_revenue(self) -> Decimal | None:
        """Treated net revenue minus what the treated shoppers would have brought at the holdout's
        revenue per shopper. Per shopper, not per cart: a reminded shopper comes back through the
        cart's own link, a held-out one often through a new checkout, so per cart the holdout would
        look poorer than it is."""
        if not (self.treated.shoppers and self.holdout.shoppers):
            return None
        expected = self.holdout.revenue.net * self.treated.shoppers / self.holdout.shoppers
        return (self.treated.revenue.net - expected).quantize(Decimal("0.01"))

    def arm_sets(self) -> dict[str, ArmSet]:
        return {CADENCE: self.cadences, **{subject_set(step.step): step for step in self.steps}}

    def proven_winners(self) -> dict[str, Proven]:
        """Arm sets with a proven winner and no decision yet, with the evidence."""
        found = {}
        for name, arm_set in self.arm_sets().items():
            winner = arm_set.winner
            if winner is None or arm_set.decided is not None:
                continue
            arm, arms = (winner.label if name == CADENCE else str(winner.index)), arm_set.arms
            tested = {a.label: {"converted": a.complete_converted, "carts": a.complete} for a in arms}
            found[name] = Proven(
                arm,
                {
                    "arms": tested,
                    "p_values": {a.label: round(a.p_value, 6) for a in arms if a.p_value is not None},
                },
            )
        return found


def build_report(
    *,
    channel: str | None = None,
    since: datetime | None = None,
    version: str | None = None,
    settings_for: Callable[[str], RecoverySettings | None] = lambda slug: None,
    progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
) -> list[ExperimentReport]:
    """Reports per (channel, experiment version), current versions first, then newest first.

    ``now`` decides which carts' follow-up has ended (each channel's current
    :meth:`RecoverySettings.follow_up`, the default settings' for a channel without settings)."""
    spans = {}
    for slug in [channel] if channel else tracked_channels():
        settings = settings_for(slug)
        spans[slug] = settings.follow_up() if settings is not None else DEFAULT_FOLLOW_UP
    where: list[str] = ["TRUE"]
    params: dict[str, Any] = {
        "now": now or timezone.now(),
        "span_slugs": list(spans),
        "span_seconds": [span.total_seconds() for span in spans.values()],
        "default_span": DEFAULT_FOLLOW_UP,
    }
    if channel:
        where.append("c.channel_slug = %(channel)s")
        params["channel"] = channel
    if since:
        where.append("c.created_at >= %(since)s")
        params["since"] = since
    if version:
        where.append("c.experiment = %(version)s")
        params["version"] = version
    scan = _Scan(" AND ".join(where), params, channel, settings_for)
    for phase, run in enumerate((scan.carts, scan.shoppers, scan.messages, scan.conversions), start=1):
        run()
        if progress:
            progress(phase, PHASES)
    return scan.finish()


def _owned(channel: str | None) -> str:
    """The carts that own an order: among the carts an order was matched to (all of them, whatever
    the report's filter, so an order never counts twice), the checkout's own, else the one with the
    latest activity before the order. With each its net figures."""
    where = "AND o.channel_slug = %(channel)s" if channel else ""
    return f"""
    owned AS (
        SELECT DISTINCT ON (o.channel_slug, o.order_id) o.id, o.order_currency AS currency,
            o.order_total AS gross, o.converted_at,
            CASE WHEN o.order_cancelled THEN o.order_total
                 ELSE LEAST(o.order_refunded, o.order_total) END AS refunded,
            NOT o.order_cancelled AND (o.order_total = 0 OR o.order_refunded < o.order_total) AS kept
        FROM {_CARTS} o
        WHERE o.status = '{CartStatus.CONVERTED.value}' AND o.order_total IS NOT NULL {where}
        ORDER BY o.channel_slug, o.order_id, o.conversion_match = 'token' DESC,
                 o.last_activity_at <= o.converted_at DESC, o.last_activity_at DESC, o.id DESC
    )"""


# Each channel's follow-up (``spans``, joined as ``s``): a cart's follow-up has ended (``_ENDED``)
# when it was created at least that long ago, and an order counts for the verdicts when it came
# within it (``_IN_TIME``).
_SPANS = """
    spans AS (
        SELECT slug, make_interval(secs => seconds) AS span
        FROM unnest(%(span_slugs)s::text[], %(span_seconds)s::float8[]) AS s(slug, seconds)
    )"""
_SPAN = "COALESCE(s.span, %(default_span)s)"
_SPANS_JOIN = "LEFT JOIN spans s ON s.slug = c.channel_slug"
_ENDED = f"c.created_at <= %(now)s - {_SPAN}"
_IN_TIME = f"o.kept AND {_ENDED} AND o.converted_at <= c.created_at + {_SPAN}"


def _after(alias: str, arm_set_sql: str) -> str:
    """Whether the cart came after its arm set's decided winner (joined as ``alias``)."""
    return f"""LEFT JOIN {_WINNERS} {alias} ON {alias}.channel_slug = c.channel_slug
        AND {alias}.experiment = c.experiment AND {alias}.arm_set = {arm_set_sql}"""


class _Scan:
    def __init__(self, condition: str, params: dict[str, Any], channel, settings_for):
        self.condition, self.params, self.channel, self.settings_for = (
            condition,
            params,
            channel,
            settings_for,
        )
        self.reports: dict[tuple[str, str], ExperimentReport] = {}
        self.cadences: dict[tuple, Arm] = {}
        self.steps: dict[tuple, Arm] = {}

    def _rows(self, sql: str) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(sql, self.params)
            return cursor.fetchall()

    def _report(self, slug: str, version: str) -> ExperimentReport:
        report = self.reports.get((slug, version))
        if report is None:
            settings = self.settings_for(slug)
            report = self.reports[(slug, version)] = ExperimentReport(
                channel=slug,
                version=version,
                current=settings is not None and settings.experiments.version == version,
            )
            if settings is not None:
                report.attribution_window = settings.experiments.attribution_window
                report.follow_up = settings.follow_up()
                report.min_recipients = settings.experiments.winner_min_recipients
        return report

    def carts(self) -> None:
        rows = self._rows(
            f"""
            WITH {_owned(self.channel)}, {_SPANS},
            touched AS (
                SELECT m.cart_id, bool_or(m.status = '{MessageStatus.SENT.value}') AS sent,
                       bool_or(m.clicks > 0) AS clicked
                FROM {_MESSAGES} m JOIN {_CARTS} c ON c.id = m.cart_id
                WHERE {self.condition}
                GROUP BY m.cart_id
            )
            SELECT c.channel_slug, c.experiment, c.holdout, c.cadence,
                   COALESCE(c.cadence = w.arm AND c.created_at >= w.decided_at, FALSE),
                   COUNT(*), COUNT(*) FILTER (WHERE t.sent), COUNT(*) FILTER (WHERE t.clicked),
                   COUNT(o.id), COUNT(o.id) FILTER (WHERE o.kept), SUM(o.gross), SUM(o.refunded),
                   COUNT(*) FILTER (WHERE {_ENDED}), COUNT(o.id) FILTER (WHERE {_IN_TIME}),
                   MIN(o.currency), MIN(c.created_at), MAX(c.created_at)
            FROM {_CARTS} c
            LEFT JOIN owned o ON o.id = c.id
            LEFT JOIN touched t ON t.cart_id = c.id
            {_SPANS_JOIN}
            {_after("w", f"'{CADENCE}'")}
            WHERE {self.condition}
            GROUP BY 1, 2, 3, 4, 5
            """
        )
        for (
            slug,
            version,
            holdout,
            cadence,
            after,
            carts,
            sent,
            clicked,
            *counts,
            currency,
            first,
            last,
        ) in rows:
            report = self._report(slug, version)
            report.currency = report.currency or currency or ""
            report.first_cart_at = min(filter(None, [report.first_cart_at, first]))
            report.last_cart_at = max(filter(None, [report.last_cart_at, last]))
            orders, kept, gross, refunded, complete, complete_kept = counts
            group = report.holdout if holdout else report.treated
            group.carts, group.orders, group.converted = (
                group.carts + carts,
                group.orders + orders,
                group.converted + kept,
            )
            group.revenue.add(gross, refunded)
            if holdout:
                continue
            report.recipients += sent
            if cadence:
                arm = self.cadences.setdefault((slug, version, cadence, after), Arm(label=cadence))
                arm.add(
                    Arm(
                        cadence,
                        carts=carts,
                        sent=sent,
                        clicked=clicked,
                        converted=kept,
                        complete=complete,
                        complete_converted=complete_kept,
                        revenue=Money(gross or ZERO, refunded or ZERO),
                    )
                )

    def shoppers(self) -> None:
        rows = self._rows(
            f"""
            WITH {_owned(self.channel)}, {_SPANS}
            SELECT c.channel_slug, c.experiment, c.holdout, COUNT(DISTINCT c.email),
                   COUNT(DISTINCT c.email) FILTER (WHERE o.kept),
                   COUNT(DISTINCT c.email) FILTER (WHERE {_ENDED}),
                   COUNT(DISTINCT c.email) FILTER (WHERE {_IN_TIME})
            FROM {_CARTS} c LEFT JOIN owned o ON o.id = c.id
            {_SPANS_JOIN}
            WHERE {self.condition}
            GROUP BY 1, 2, 3
            """
        )
        for slug, version, holdout, shoppers, converted, complete, complete_converted in rows:
            report = self._report(slug, version)
            group = report.holdout if holdout else report.treated
            group.shoppers, group.shoppers_converted = shoppers, converted
            group.complete_shoppers, group.complete_shoppers_converted = complete, complete_converted

    def messages(self) -> None:
        rows = self._rows(
            f"""
            WITH {_owned(self.channel)}, {_SPANS}
            SELECT c.channel_slug, c.experiment, m.step, m.variant,
                   COALESCE(m.variant::text = w.arm AND c.created_at >= w.decided_at, FALSE),
                   COUNT(*), COUNT(*) FILTER (WHERE m.status = '{MessageStatus.SENT.value}'),
                   COUNT(*) FILTER (WHERE m.clicks > 0),
                   COUNT(*) FILTER (WHERE m.status = '{MessageStatus.FAILED.value}'
                                    AND m.reason = '{Reason.BOUNCED.value}'),
                   COUNT(o.id) FILTER (WHERE o.kept), SUM(o.gross), SUM(o.refunded),
                   COUNT(*) FILTER (WHERE {_ENDED}), COUNT(o.id) FILTER (WHERE {_IN_TIME})
            FROM {_MESSAGES} m JOIN {_CARTS} c ON c.id = m.cart_id
            LEFT JOIN owned o ON o.id = c.id
            {_SPANS_JOIN}
            {_after("w", "'subject:' || m.step")}
            WHERE {self.condition} AND NOT c.holdout
            GROUP BY 1, 2, 3, 4, 5
            """
        )
        for slug, version, step, variant, after, planned, sent, clicked, bounced, *counts in rows:
            kept, gross, refunded, complete, complete_kept = counts
            self._report(slug, version)
            arm = self.steps.setdefault(
                (slug, version, step, variant, after), Arm(_variant_label(variant), index=variant)
            )
            arm.add(
                Arm(
                    arm.label,
                    carts=planned,
                    sent=sent,
                    clicked=clicked,
                    bounced=bounced,
                    converted=kept,
                    complete=complete,
                    complete_converted=complete_kept,
                    revenue=Money(gross or ZERO, refunded or ZERO),
                )
            )

    def conversions(self) -> None:
        """The attributed figures: per kept order of a treated cart, the last reminder sent before it
        and the last click on the cart's reminders before it."""
        rows = self._rows(
            f"""
            WITH {_owned(self.channel)}
            SELECT c.channel_slug, c.experiment, c.cadence,
                   COALESCE(c.cadence = wc.arm AND c.created_at >= wc.decided_at, FALSE),
                   o.gross - o.refunded, c.converted_at, last.step, last.variant, last.sent_at,
                   COALESCE(last.variant::text = ws.arm AND c.created_at >= ws.decided_at, FALSE),
                   (SELECT MAX(k.first_clicked_at) FROM {_MESSAGES} k
                    WHERE k.cart_id = c.id AND k.first_clicked_at <= c.converted_at)
            FROM owned o JOIN {_CARTS} c ON c.id = o.id
            LEFT JOIN LATERAL (
                SELECT m.step, m.variant, m.sent_at FROM {_MESSAGES} m
                WHERE m.cart_id = c.id AND m.status = '{MessageStatus.SENT.value}'
                  AND m.sent_at <= c.converted_at
                ORDER BY m.sent_at DESC, m.step DESC LIMIT 1
            ) last ON TRUE
            {_after("wc", f"'{CADENCE}'")}
            {_after("ws", "'subject:' || last.step")}
            WHERE {self.condition} AND o.kept AND NOT c.holdout
            """
        )
        for (
            slug,
            version,
            cadence,
            cadence_after,
            net,
            at,
            step,
            variant,
            sent_at,
            step_after,
            clicked_at,
        ) in rows:
            report = self._report(slug, version)
            window = report.attribution_window
            if sent_at is None or at - sent_at > window:
                continue
            report.recovered_after_reminder += 1
            report.revenue_after_reminder += net
            if clicked_at and at - clicked_at <= window:
                report.recovered_after_click += 1
                report.revenue_after_click += net
            for arm in (
                self.steps.get((slug, version, step, variant, step_after)),
                self.cadences.get((slug, version, cadence, cadence_after)) if cadence else None,
            ):
                if arm is not None:
                    arm.attributed += 1
                    arm.attributed_revenue += net

    def finish(self) -> list[ExperimentReport]:
        decisions = read_winners(set(self.reports))
        for key, report in self.reports.items():
            decided = decisions[key]
            report.cadences = _arm_set(
                {k[2:]: a for k, a in self.cadences.items() if k[:2] == key}, decided.get(CADENCE), _label
            )
            report.steps = []
            for step in sorted({k[2] for k in self.steps if k[:2] == key}):
                arms = {k[3:]: a for k, a in self.steps.items() if k[:3] == (*key, step)}
                arm_set = _arm_set(arms, decided.get(subject_set(step)), _index)
                report.steps.append(
                    Step(arm_set.arms, arm_set.decided, arm_set.decided_at, arm_set.after_decision, step)
                )
            for arm_set in report.arm_sets().values():
                verdicts(arm_set.arms, report.min_recipients)
        return sorted(
            self.reports.values(),
            key=lambda r: (r.channel, not r.current, -(r.last_cart_at.timestamp() if r.last_cart_at else 0)),
        )


def _arm_set(arms: dict[tuple, Arm], decision, order) -> ArmSet:
    """``arms`` keyed ``(arm, after_decision)``: the randomised ones compared, the others summed."""
    randomised = sorted((a for (_, after), a in arms.items() if not after), key=order)
    after = [a for (_, after), a in arms.items() if after]
    arm_set = ArmSet(randomised)
    if decision is not None:
        label = decision.arm if order is _label else _variant_label(int(decision.arm))
        arm_set.decided, arm_set.decided_at = label, decision.decided_at
        if after:
            arm_set.after_decision = Arm(label=label, index=after[0].index)
            for arm in after:
                arm_set.after_decision.add(arm)
    return arm_set


def verdicts(arms: list[Arm], min_carts: int) -> None:
    """Mark the proven best arm and each other arm's always-valid p-value against the leader,
    compared on intent-to-treat conversions ÷ assigned carts, among the carts whose follow-up ended."""
    best, tests = stats.leader([(arm.complete_converted, arm.complete) for arm in arms], min_trials=min_carts)
    for i, (arm, test) in enumerate(zip(arms, tests, strict=True)):
        arm.p_value = test.p_value if test is not None else None
        arm.winner = i == best


def _label(arm: Arm) -> str:
    return arm.label


def _index(arm: Arm) -> int:
    return arm.index


def _variant_label(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else str(index + 1)
