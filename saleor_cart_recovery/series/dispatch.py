"""The periodic dispatcher: turns due carts into planned messages and hands messages to senders.

Both passes read through partial indexes (``next_due_at``, ``status='scheduled'``), lock rows with
``FOR UPDATE SKIP LOCKED`` in bounded batches and enqueue only after commit, so two dispatchers
never plan or enqueue the same work and the cost follows what is due, not what is stored.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.db import transaction
from django.utils import timezone

from ..experiments.assignment import NO_WINNERS, Winners, current_winners, pick_cadence, pick_variant
from ..models import CartStatus, MessageStatus, Reason, RecoveryCart, RecoveryMessage
from ..settings.channel import RecoverySettings
from ..shop import get_shop
from .decisions import next_due

logger = logging.getLogger(__name__)

# Rows locked per transaction: short transactions keep hooks from waiting on our locks.
BATCH_SIZE = 200
# Batches per cycle: bounds one cycle's run time; beat starts the next cycle a minute later.
MAX_BATCHES = 25
# A message handed to Celery but not started within this time is handed out again (the task
# was lost, e.g. broker restart). The send task's claim makes a second delivery a no-op.
LEASE = timedelta(minutes=10)
# A send task that claimed a message and did not finish in this time died mid-send: the mail
# may or may not have left, so it is recorded as failed rather than sent twice.
SENDING_TIMEOUT = timedelta(minutes=30)


@dataclass
class DispatchResult:
    planned: int = 0  # messages created for due steps
    rearmed: int = 0  # carts woken early and given their exact next due time
    stopped: int = 0  # carts stopped because the plugin is off in their channel
    enqueued: list[int] = field(default_factory=list)  # message ids handed to senders
    interrupted: int = 0  # claimed sends that never finished
    held_out: int = 0  # of the planned messages, recorded as skipped for the holdout group

    def __str__(self):
        return (
            f"planned {self.planned} message(s) ({self.held_out} held out), re-armed {self.rearmed} cart(s), "
            f"stopped {self.stopped} cart(s), enqueued {len(self.enqueued)} send(s), "
            f"marked {self.interrupted} interrupted send(s) failed"
        )


def dispatch(
    *,
    now: datetime | None = None,
    send: Callable[[int], None],
    batch_size: int = BATCH_SIZE,
    max_batches: int = MAX_BATCHES,
) -> DispatchResult:
    """Run one cycle. ``send`` is called once per ready message id after its claim committed
    (the beat task passes :func:`saleor_cart_recovery.tasks.enqueue_send`)."""
    now = now or timezone.now()
    shop = get_shop()
    result = DispatchResult()
    settings_cache: dict[str, RecoverySettings | None] = {}

    def channel_settings(slug: str) -> RecoverySettings | None:
        if slug not in settings_cache:
            settings_cache[slug] = shop.channel_settings(slug)
        return settings_cache[slug]

    with shop.write_access():
        winners = _winners(now, channel_settings)
        for _ in range(max_batches):
            if _plan_batch(now, batch_size, channel_settings, result, winners) < batch_size:
                break
        for _ in range(max_batches):
            if _enqueue_batch(now, batch_size, send, result) < batch_size:
                break
        result.interrupted = _fail_interrupted(now)
    return result


def _winners(now, channel_settings) -> dict[str, Winners]:
    """Automatic-winner decisions of the channels with due carts, taken before any row is locked:
    a decision may need a scan of the experiment's carts (cached, see report.current_winners)."""
    slugs = (
        RecoveryCart.objects.filter(next_due_at__lte=now).values_list("channel_slug", flat=True).distinct()
    )
    return {
        slug: current_winners(slug, settings)
        for slug in slugs
        if (settings := channel_settings(slug)) is not None
    }


def _plan_batch(now, batch_size, channel_settings, result: DispatchResult, winners) -> int:
    with transaction.atomic():
        carts = list(
            RecoveryCart.objects.select_for_update(skip_locked=True)
            .filter(next_due_at__lte=now)
            .order_by("next_due_at")[:batch_size]
        )
        messages = []
        for cart in carts:
            settings = channel_settings(cart.channel_slug)
            cart.updated_at = now
            if settings is None:
                cart.status, cart.stop_reason, cart.next_due_at = (
                    CartStatus.STOPPED,
                    Reason.PLUGIN_INACTIVE,
                    None,
                )
                result.stopped += 1
                continue
            winner = winners.get(cart.channel_slug, NO_WINNERS)
            if cart.steps_planned == 0 and not cart.cadence:
                # Assigned when the cart is first due, the moment the cadences start to differ;
                # recorded here and never changed.
                cart.cadence = pick_cadence(cart.checkout_token, settings, winner.cadence)
            due = _due(settings, cart)
            if due is None:
                cart.next_due_at = None
                continue
            if due > now:
                cart.next_due_at = due
                result.rearmed += 1
                continue
            step = cart.steps_planned + 1
            variants = len(settings.subject_variants(step, cart.language_code)) or 1
            messages.append(
                RecoveryMessage(
                    cart=cart,
                    step=step,
                    status=MessageStatus.SKIPPED if cart.holdout else MessageStatus.SCHEDULED,
                    reason=Reason.HOLDOUT if cart.holdout else "",
                    planned_at=now,
                    attempt_after=now,
                    updated_at=now,
                    variant=winner.subjects[step]
                    if step in winner.subjects
                    else pick_variant(cart.checkout_token, f"subject:{step}", variants),
                )
            )
            cart.steps_planned, cart.last_planned_at = step, now
            cart.next_due_at = _due(settings, cart)
            result.planned += 1
            if cart.holdout:
                # The control group's decision is recorded when the email would have gone out;
                # no send task runs, so the series also ends here.
                result.held_out += 1
                if cart.next_due_at is None:
                    cart.status = CartStatus.FINISHED
        RecoveryMessage.objects.bulk_create(messages, ignore_conflicts=True)
        RecoveryCart.objects.bulk_update(
            carts,
            [
                "status",
                "stop_reason",
                "next_due_at",
                "steps_planned",
                "last_planned_at",
                "updated_at",
                "cadence",
            ],
        )
    return len(carts)


def _due(settings: RecoverySettings, cart: RecoveryCart) -> datetime | None:
    return next_due(
        settings,
        last_activity_at=cart.last_activity_at,
        steps_planned=cart.steps_planned,
        last_planned_at=cart.last_planned_at,
        cadence=cart.cadence,
    )


def _enqueue_batch(now, batch_size, send, result: DispatchResult) -> int:
    with transaction.atomic():
        ids = list(
            RecoveryMessage.objects.select_for_update(skip_locked=True)
            .filter(status=MessageStatus.SCHEDULED, attempt_after__lte=now)
            .order_by("attempt_after")
            .values_list("id", flat=True)[:batch_size]
        )
        RecoveryMessage.objects.filter(id__in=ids).update(attempt_after=now + LEASE, updated_at=now)
        for message_id in ids:
            transaction.on_commit(partial(send, message_id))
    result.enqueued.extend(ids)
    return len(ids)


def _fail_interrupted(now) -> int:
    return RecoveryMessage.objects.filter(
        status=MessageStatus.SENDING, updated_at__lt=now - SENDING_TIMEOUT
    ).update(status=MessageStatus.FAILED, reason=Reason.INTERRUPTED, updated_at=now)
