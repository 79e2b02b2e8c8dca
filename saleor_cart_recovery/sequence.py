"""Where the series decides what to send next: pure functions over plain values.

Timing rule: step *n* is due ``max(schedule[n], cutoff)`` after the cart's last activity, and never
sooner after the previous step than the gap the owner configured between them (so a dispatcher
that was down does not fire a backlog of steps minutes apart). Activity after some steps went out
continues the series with the next step, timed from the new activity; earlier steps are not
repeated.
"""

import hashlib
from datetime import datetime

from .config import RecoverySettings
from .models import REOPENABLE_REASONS, CartStatus, Reason
from .shop import CartSnapshot


def next_due(
    settings: RecoverySettings,
    *,
    last_activity_at: datetime,
    steps_planned: int,
    last_planned_at: datetime | None,
    cadence: str = "",
) -> datetime | None:
    """When the next step is due, or ``None`` when the series has no step left.

    ``cadence`` is the cart's cadence variant: its schedule replaces the main one."""
    step = steps_planned + 1
    if step > settings.steps:
        return None
    schedule = settings.schedule_for(cadence)
    due = last_activity_at + max(schedule[step - 1], settings.cutoff)
    if last_planned_at is not None and step > 1:
        gap = schedule[step - 1] - schedule[step - 2]
        due = max(due, last_planned_at + gap)
    return due


def accepts_activity(status: str, stop_reason: str) -> bool:
    """Whether new cart activity (re)starts the clock for a cart in this state."""
    return status == CartStatus.ACTIVE or (status == CartStatus.STOPPED and stop_reason in REOPENABLE_REASONS)


def reason_not_to_send(
    *,
    plugin_active: bool,
    cart_status: str,
    cart_stop_reason: str,
    ordered: bool,
    suppressed: bool,
    snapshot: CartSnapshot | None,
    check_snapshot: bool = True,
) -> str | None:
    """Why this reminder must not go out now, or ``None`` to send it. Order of checks matters:
    a purchase is reported as such even when the checkout is gone too."""
    if cart_status == CartStatus.CONVERTED or ordered:
        return Reason.PURCHASED
    if cart_status == CartStatus.STOPPED:
        return cart_stop_reason
    if cart_status == CartStatus.FINISHED:
        return Reason.SERIES_FINISHED
    if not plugin_active:
        return Reason.PLUGIN_INACTIVE
    if suppressed:
        return Reason.UNSUBSCRIBED
    if not check_snapshot:
        return None
    if snapshot is None:
        return Reason.CHECKOUT_DELETED
    if not snapshot.lines:
        return Reason.CART_EMPTY
    if not snapshot.email:
        return Reason.NO_EMAIL
    return None


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
