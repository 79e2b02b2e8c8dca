"""Where the series decides what to send next: pure functions over plain values.

Timing rule: step *n* is due ``max(schedule[n], cutoff)`` after the cart's last activity, and never
sooner after the previous step than the gap the owner configured between them (so a dispatcher
that was down does not fire a backlog of steps minutes apart). Activity after some steps went out
continues the series with the next step, timed from the new activity; earlier steps are not
repeated.
"""

from datetime import datetime

from django.db.models import Q

from ..models import REOPENABLE_REASONS, CartStatus, Reason
from ..settings.channel import RecoverySettings
from ..shop import CartSnapshot


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
    """Whether new cart activity (re)starts the clock for a cart in this state: a live series."""
    return status == CartStatus.ACTIVE or (status == CartStatus.STOPPED and stop_reason in REOPENABLE_REASONS)


def live_series() -> Q:
    """:func:`accepts_activity` as a queryset filter on carts."""
    return Q(status=CartStatus.ACTIVE) | Q(status=CartStatus.STOPPED, stop_reason__in=REOPENABLE_REASONS)


def accepts_activity_sql(alias: str) -> str:
    """:func:`accepts_activity` as an SQL condition on the cart table aliased ``alias``, for the
    hook's single-statement upsert (built from the same constants)."""
    reopenable = ", ".join(f"'{reason.value}'" for reason in REOPENABLE_REASONS)
    return (
        f"({alias}.status = '{CartStatus.ACTIVE.value}' OR ({alias}.status = '{CartStatus.STOPPED.value}' "
        f"AND {alias}.stop_reason IN ({reopenable})))"
    )


def reason_not_to_send(
    *,
    unavailable: str | None,
    cart_status: str,
    cart_stop_reason: str,
    ordered: bool,
    suppression: str | None,
    snapshot: CartSnapshot | None,
    check_snapshot: bool = True,
    step_in_schedule: bool = True,
    below_minimum: bool = False,
) -> str | None:
    """Why this reminder must not go out now, or ``None`` to send it.

    ``unavailable`` is why the channel's settings cannot be used (``plugin_inactive``,
    ``configuration_invalid``), ``suppression`` why the address gets no mail (``unsubscribed``,
    ``bounced``); ``step_in_schedule`` is false when the owner shortened the schedule after the
    step was planned; ``below_minimum`` when the cart's subtotal is under the owner's
    ``min_cart_total``. Order of checks matters: a purchase is reported as such even when the
    checkout is gone too."""
    if cart_status == CartStatus.CONVERTED or ordered:
        return Reason.PURCHASED
    if cart_status == CartStatus.STOPPED:
        return cart_stop_reason
    if cart_status == CartStatus.FINISHED:
        return Reason.SERIES_FINISHED
    if unavailable:
        return unavailable
    if suppression:
        return suppression
    if not step_in_schedule:
        return Reason.STEP_REMOVED
    if not check_snapshot:
        return None
    if snapshot is None:
        return Reason.CHECKOUT_DELETED
    if not snapshot.lines:
        return Reason.CART_EMPTY
    if not snapshot.email:
        return Reason.NO_EMAIL
    if below_minimum:
        return Reason.BELOW_MIN_TOTAL
    return None
