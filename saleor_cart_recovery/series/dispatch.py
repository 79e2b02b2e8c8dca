"""The periodic dispatcher: turns due carts into planned messages and hands messages to senders.

Both passes read through partial indexes (``next_due_at``, ``status='scheduled'``), lock rows with
``FOR UPDATE SKIP LOCKED`` in bounded batches and enqueue only after commit, so two dispatchers
never plan or enqueue the same work and the cost follows what is due, not what is stored.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from ..experiments.assignment import NO_WINNERS, Winners, current_winners, pick_cadence, pick_variant
from ..models import CartStatus, MessageStatus, Reason, RecoveryCart, RecoveryMessage
from ..settings.channel import RecoverySettings
from ..shop import get_shop, usable_settings
from .decisions import next_due
from .delivery import MAX_ATTEMPTS, finish_if_done

logger = logging.getLogger(__name__)

# Rows locked per transaction: short transactions keep hooks from waiting on our locks.
BATCH_SIZE = 200
# Batches per cycle: bounds one cycle's run time; beat starts the next cycle a minute later.
MAX_BATCHES = 25
# A message handed to Celery but not claimed within this time is handed out again (the task
# was lost, e.g. broker restart). Send tasks expire a little earlier (tasks.SEND_EXPIRES), so a
# lost task and its replacement never both wait in the queue, and the claim makes a second
# delivery a no-op anyway.
LEASE = timedelta(minutes=10)
# A claim that has not reached the SMTP hand-over in this time belongs to a worker that died while
# preparing: nothing was sent, so the message is handed out again.
PREPARE_TIMEOUT = timedelta(minutes=10)
# A claim handed to the mail server this long ago without an outcome died mid-send: the mail may
# or may not have left, so it is recorded as failed rather than sent twice. A live worker never
# takes this long: a conversation is about five steps of at most MAX_SMTP_TIMEOUT (60 s) each.
SENDING_TIMEOUT = timedelta(minutes=10)
# A cart whose previous step still waits for a retry is looked at again after this long: steps
# go out in order, never overtaking one another.
PENDING_RECHECK = timedelta(minutes=2)


@dataclass
class DispatchResult:
    planned: int = 0  # messages created for due steps
    rearmed: int = 0  # carts woken early and given their exact next due time
    stopped: int = 0  # carts stopped because the plugin is off in their channel
    enqueued: list[int] = field(default_factory=list)  # message ids handed to senders
    interrupted: int = 0  # sends handed to the mail server that never finished
    reclaimed: int = 0  # claims that died before the hand-over, handed out again
    held_out: int = 0  # of the planned messages, recorded as skipped for the holdout group
    waiting: int = 0  # carts whose next step waits for an earlier step's retry
    failed: int = 0  # carts whose planning raised (recorded planning_failed, logged)
    deferred: int = 0  # carts of channels whose settings could not be read this cycle

    def __str__(self):
        return (
            f"planned {self.planned} message(s) ({self.held_out} held out), re-armed {self.rearmed} cart(s), "
            f"stopped {self.stopped} cart(s), enqueued {len(self.enqueued)} send(s), "
            f"marked {self.interrupted} interrupted send(s) failed, handed out {self.reclaimed} "
            f"abandoned claim(s) again, {self.waiting} cart(s) wait for a retry, "
            f"{self.failed} cart(s) failed to plan, {self.deferred} deferred"
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
    settings_cache: dict[str, tuple[RecoverySettings | None, str | None]] = {}

    def channel_settings(slug: str) -> tuple[RecoverySettings | None, str | None]:
        """Settings or why not, read once per channel and cycle (a broken channel is logged once);
        ``(None, None)`` when reading them failed for a passing reason: try again next cycle."""
        if slug not in settings_cache:
            try:
                settings_cache[slug] = usable_settings(slug, shop)
            except Exception:
                logger.exception("cart recovery: could not read the settings of channel %s", slug)
                settings_cache[slug] = (None, None)
        return settings_cache[slug]

    with shop.write_access():
        winners = _winners(now, channel_settings)
        for _ in range(max_batches):
            if _plan_batch(now, batch_size, channel_settings, result, winners) < batch_size:
                break
        for _ in range(max_batches):
            if _enqueue_batch(now, batch_size, send, result) < batch_size:
                break
        result.interrupted, result.reclaimed = _recover_stale_claims(now)
    return result


def _winners(now, channel_settings) -> dict[str, Winners]:
    """Automatic-winner decisions of the channels with due carts, taken before any row is locked:
    a decision may need a scan of the experiment's carts (cached, see report.current_winners)."""
    slugs = (
        RecoveryCart.objects.filter(next_due_at__lte=now).values_list("channel_slug", flat=True).distinct()
    )
    winners = {}
    for slug in slugs:
        settings, _ = channel_settings(slug)
        if settings is None:
            continue
        try:
            winners[slug] = current_winners(slug, settings)
        except Exception:  # a failed scan means no automatic winner this cycle, nothing worse
            logger.exception("cart recovery: could not decide the automatic winner in channel %s", slug)
    return winners


def _plan_batch(now, batch_size, channel_settings, result: DispatchResult, winners) -> int:
    with transaction.atomic():
        carts = list(
            RecoveryCart.objects.select_for_update(skip_locked=True)
            .filter(next_due_at__lte=now)
            .order_by("next_due_at")[:batch_size]
        )
        waiting = set(
            RecoveryMessage.objects.filter(
                cart__in=carts, status__in=[MessageStatus.SCHEDULED, MessageStatus.SENDING]
            ).values_list("cart_id", flat=True)
        )
        messages = []
        for cart in carts:
            cart.updated_at = now
            if cart.pk in waiting:
                # Steps in order: the next one waits until the earlier one is sent or given up.
                cart.next_due_at = now + PENDING_RECHECK
                result.waiting += 1
                continue
            try:
                message = _plan_cart(
                    cart, now, channel_settings, winners.get(cart.channel_slug, NO_WINNERS), result
                )
            except Exception:
                # One bad cart harms only itself (invariant 9): recorded, logged, the batch goes on.
                logger.exception("cart recovery: could not plan cart %s", cart.checkout_token)
                cart.status, cart.stop_reason, cart.next_due_at = (
                    CartStatus.STOPPED,
                    Reason.PLANNING_FAILED,
                    None,
                )
                result.failed += 1
                continue
            if message is not None:
                messages.append(message)
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


def _plan_cart(
    cart, now, channel_settings, winner: Winners, result: DispatchResult
) -> RecoveryMessage | None:
    """Plan the cart's next step if it is due (changes the cart in memory; saved with the batch)."""
    settings, unavailable = channel_settings(cart.channel_slug)
    if settings is None and unavailable is None:  # could not be read this time: look again soon
        cart.next_due_at = now + PENDING_RECHECK
        result.deferred += 1
        return None
    if settings is None:
        cart.status, cart.stop_reason, cart.next_due_at = CartStatus.STOPPED, unavailable, None
        result.stopped += 1
        return None
    if cart.steps_planned == 0 and not cart.cadence:
        # Assigned when the cart is first due, the moment the cadences start to differ;
        # recorded here and never changed.
        cart.cadence = pick_cadence(cart.checkout_token, settings, winner.cadence)
    due = _due(settings, cart)
    if due is None:
        # Every step planned and none waiting (checked by the caller): the series is over.
        cart.next_due_at = None
        if cart.status == CartStatus.ACTIVE and cart.steps_planned:
            cart.status = CartStatus.FINISHED
        return None
    if due > now:
        cart.next_due_at = due
        result.rearmed += 1
        return None
    step = cart.steps_planned + 1
    variants = len(settings.subject_variants(step, cart.language_code)) or 1
    message = RecoveryMessage(
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
    cart.steps_planned, cart.last_planned_at = step, now
    cart.next_due_at = _due(settings, cart)
    result.planned += 1
    if cart.holdout:
        # The control group's decision is recorded when the email would have gone out;
        # no send task runs, so the series also ends here.
        result.held_out += 1
        if cart.next_due_at is None:
            cart.status = CartStatus.FINISHED
    return message


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
            # robust: one failed hand-off (broker down) is logged and the others still go; the
            # message stays scheduled and the lease hands it out again.
            transaction.on_commit(_hand_off(send, message_id), robust=True)
    result.enqueued.extend(ids)
    return len(ids)


def _hand_off(send: Callable[[int], None], message_id: int) -> Callable[[], None]:
    def hand_off() -> None:
        send(message_id)

    return hand_off


def _recover_stale_claims(now) -> tuple[int, int]:
    """Claims whose worker died: failed/interrupted when the message may have reached the mail
    server, handed out again when it cannot have (see :mod:`.delivery`)."""
    interrupted = RecoveryMessage.objects.filter(
        status=MessageStatus.SENDING, handed_over_at__lt=now - SENDING_TIMEOUT
    ).update(status=MessageStatus.FAILED, reason=Reason.INTERRUPTED, updated_at=now)
    stale = RecoveryMessage.objects.filter(
        status=MessageStatus.SENDING, handed_over_at__isnull=True, updated_at__lt=now - PREPARE_TIMEOUT
    )
    given_up = stale.filter(attempts__gte=MAX_ATTEMPTS).update(
        status=MessageStatus.FAILED, reason=Reason.PREPARE_FAILED, updated_at=now
    )
    reclaimed = stale.update(status=MessageStatus.SCHEDULED, attempt_after=now, updated_at=now)
    if interrupted or given_up:
        finish_if_done(
            RecoveryMessage.objects.filter(status=MessageStatus.FAILED, updated_at=now).values("cart_id"), now
        )
    return interrupted, reclaimed + given_up
