"""The send task's logic: claim, prepare without locks, re-check, hand over, record.

No lock of ours is held across a call that leaves the database or takes long (invariant 4):

1. **claim** — one conditional UPDATE moves the message from ``scheduled`` to ``sending`` and
   counts the attempt; the attempt number is the claim's fencing token. Every later write is
   conditional on ``status = sending AND attempts = <our attempt>``, so a message whose claim was
   taken over (or that is no longer ``sending``) is never sent or recorded by a stale task.
2. **prepare**, outside any transaction: read the settings, look for an order, load and price the
   cart (Saleor may call a tax app here), decide, issue the coupon (its code is stored on the
   message at once, so a retry reuses it), build the offer and render.
3. **connect** to the mail server, outside any transaction (it may stall up to the SMTP timeout).
4. **re-check and mark** in one short transaction: still our claim, cart still live, no order,
   not suppressed, plugin still on, step still in the schedule — then set ``handed_over_at``.
5. **send** over the open connection, outside any transaction.
6. **record** the outcome in one short transaction.

What is left of invariant 3 is the time between step 4's commit and the server accepting the
message: the transfer of one message over an open connection (milliseconds; at most the SMTP
timeout if the server stalls mid-transfer). A worker that dies before step 4 sent nothing and the
dispatcher hands the message out again; one that dies after it may have sent it, and the
dispatcher records it ``failed``/``interrupted`` (never resent: invariant 2).
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from ..email.compose import compose_email
from ..email.offers import abandoned_prices, build_offer, content_for_step, coupon_due, issue_coupon
from ..email.transport import close_connection, open_connection, send_on
from ..exceptions import CartRecoveryError, RecipientRefused, SendFailed, SendRefused, SendUncertain
from ..models import CartStatus, MessageStatus, Reason, RecoveryCart, RecoveryMessage
from ..settings.channel import RecoverySettings
from ..settings.formats import SmtpConfig
from ..shop import CartSnapshot, OrderRef, Shop, get_shop, usable_settings
from .activity import record_order
from .decisions import next_due, reason_not_to_send
from .suppression import normalize_email, suppress, suppression_reason

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# Backoff after a temporary failure: 2, 4, 8, 16 minutes.
RETRY_BASE = timedelta(minutes=2)


@dataclass(frozen=True)
class Prepared:
    """A rendered reminder, ready for the hand-over, and the claim it belongs to."""

    message_id: int
    attempt: int
    cart_id: int
    channel_slug: str
    checkout_token: str
    step: int
    recipient: str
    email: EmailMessage
    smtp: SmtpConfig | None


def deliver(message_id: int) -> str:
    """Handle one planned message; return its status afterwards. Safe to call any number of times,
    from any number of workers at once: at most one of them sends it."""
    shop = get_shop()
    with shop.write_access():
        attempt = _claim(message_id)
        if attempt is None:
            return _status(message_id)
        try:
            prepared = _prepare(shop, message_id, attempt)
        except Exception as exc:
            # Shop data, rendering, a voucher: nothing was sent. The attempt counts, so a message
            # that can never be prepared stops being handed out.
            logger.exception("cart recovery: could not prepare message %s", message_id)
            return _release(message_id, attempt, Reason.PREPARE_FAILED, error=f"preparation failed: {exc!r}")
        if prepared is None:
            return _status(message_id)
        return _hand_over(shop, prepared)


def _status(message_id: int) -> str:
    return RecoveryMessage.objects.filter(pk=message_id).values_list("status", flat=True).first() or "missing"


def _ours(message_id: int, attempt: int):
    """The message as long as our claim holds (fencing), as a queryset to update."""
    return RecoveryMessage.objects.filter(pk=message_id, status=MessageStatus.SENDING, attempts=attempt)


def _claim(message_id: int) -> int | None:
    """Take the message (``scheduled`` → ``sending``); the attempt number, or ``None`` when it is
    not ours to send (already claimed, sent, skipped, failed or deleted)."""
    now = timezone.now()
    with transaction.atomic():
        claimed = RecoveryMessage.objects.filter(pk=message_id, status=MessageStatus.SCHEDULED).update(
            status=MessageStatus.SENDING, attempts=F("attempts") + 1, handed_over_at=None, updated_at=now
        )
        if not claimed:
            return None
        return RecoveryMessage.objects.values_list("attempts", flat=True).get(pk=message_id)


def _prepare(shop: Shop, message_id: int, attempt: int) -> Prepared | None:
    """Step 2: decide and render without holding any lock; ``None`` when the message was skipped
    (or the claim was lost meanwhile)."""
    message = RecoveryMessage.objects.select_related("cart").get(pk=message_id)
    cart = message.cart
    now = timezone.now()
    situation = _situation(shop, cart, message.step, cart.email, with_snapshot=True)
    settings, snapshot = situation.settings, situation.snapshot
    if situation.reason or settings is None or snapshot is None:  # no reason means both are there
        _skip(
            message_id,
            attempt,
            message.step,
            cart,
            situation.reason or Reason.CHECKOUT_DELETED,
            situation.order,
        )
        return None
    if _came_back(cart, message):
        _postpone(message_id, attempt, settings, cart, message.step)
        return None
    content = content_for_step(settings.offers, message.step, settings.steps)
    coupon = settings.offers.coupon
    if coupon is not None and coupon_due(settings.offers, message.step) and not message.voucher_code:
        issued = issue_coupon(shop, coupon, snapshot, now=now)
        message.voucher_code, message.voucher_expires_at = issued.code, issued.expires_at
        if not _ours(message_id, attempt).update(
            voucher_code=issued.code, voucher_expires_at=issued.expires_at, updated_at=now
        ):
            logger.warning("cart %s: claim lost; voucher %s stays unused", cart.checkout_token, issued.code)
            return None
    offer = build_offer(
        shop,
        settings,
        snapshot,
        content=content,
        voucher_code=message.voucher_code,
        voucher_expires_at=message.voucher_expires_at,
        prices_then=cart.abandoned_prices,
        now=now,
    )
    email = compose_email(
        shop,
        settings,
        snapshot,
        step=message.step,
        variant=message.variant,
        offer=offer,
        message_id=message_id,
    )
    email.message()  # headers and addresses checked now: a bad one fails preparation, not the send
    if cart.abandoned_prices is None:
        RecoveryCart.objects.filter(pk=cart.pk, abandoned_prices__isnull=True).update(
            abandoned_prices=abandoned_prices(snapshot.lines)
        )
    recipient = normalize_email(snapshot.email)
    if recipient != cart.email:
        RecoveryCart.objects.filter(pk=cart.pk).update(email=recipient)
    if not _ours(message_id, attempt).update(
        content=content, subject=email.subject, recipient=snapshot.email, updated_at=timezone.now()
    ):
        return None
    return Prepared(
        message_id=message_id,
        attempt=attempt,
        cart_id=cart.pk,
        channel_slug=cart.channel_slug,
        checkout_token=cart.checkout_token,
        step=message.step,
        recipient=recipient,
        email=email,
        smtp=settings.smtp,
    )


@dataclass(frozen=True)
class _Situation:
    settings: RecoverySettings | None
    order: OrderRef | None
    snapshot: CartSnapshot | None
    reason: str | None  # why the step must not go out now; None: it may


def _situation(shop: Shop, cart: RecoveryCart, step: int, email: str, *, with_snapshot: bool) -> _Situation:
    """Everything that decides whether ``step`` may go out now, read fresh from the shop and our
    tables; ``with_snapshot`` also loads and prices the cart (slow: never under a lock)."""
    settings, unavailable = usable_settings(cart.channel_slug, shop)
    order = _order(shop, cart) if cart.status != CartStatus.CONVERTED else None
    snapshot = None
    if with_snapshot and settings is not None and order is None and cart.status == CartStatus.ACTIVE:
        snapshot = shop.load_cart(cart.checkout_token)
    reason = reason_not_to_send(
        unavailable=unavailable,
        cart_status=cart.status,
        cart_stop_reason=cart.stop_reason,
        ordered=order is not None,
        suppression=suppression_reason(cart.channel_slug, email),
        snapshot=snapshot,
        check_snapshot=with_snapshot,
        step_in_schedule=settings is None or step <= settings.steps,
    )
    return _Situation(settings, order, snapshot, reason)


def _order(shop: Shop, cart: RecoveryCart) -> OrderRef | None:
    """An order from this checkout, or by the same shopper in the channel since the cart's last
    activity (bought through another checkout or device) — asked of the shop at send time, so it
    holds even when the order hook did not run (plugin off, hook failed)."""
    return shop.find_order(
        cart.checkout_token, channel_slug=cart.channel_slug, email=cart.email, since=cart.last_activity_at
    )


def _hand_over(shop: Shop, prepared: Prepared) -> str:
    """Steps 3–6: connect, re-check and mark, send, record."""
    try:
        connection = open_connection(prepared.smtp)
    except SendFailed as exc:
        return _record(prepared, exc)
    try:
        try:
            marked = _recheck_and_mark(shop, prepared)
        except Exception as exc:  # nothing was handed over: try again later
            logger.exception("cart recovery: could not re-check message %s", prepared.message_id)
            return _release(prepared.message_id, prepared.attempt, Reason.PREPARE_FAILED, error=repr(exc))
        if not marked:
            return _status(prepared.message_id)
        try:
            send_on(connection, prepared.email)
        except CartRecoveryError as exc:
            return _record(prepared, exc)
        return _record(prepared, None)
    finally:
        close_connection(connection)


def _recheck_and_mark(shop: Shop, prepared: Prepared) -> bool:
    """Step 4, one short transaction: everything that may have changed while we prepared and
    connected; ``True`` when the message is marked handed over and may go out now."""
    now = timezone.now()
    with transaction.atomic():
        message = _ours(prepared.message_id, prepared.attempt).select_for_update().first()
        if message is None:
            return False
        cart = RecoveryCart.objects.get(pk=prepared.cart_id)
        situation = _situation(shop, cart, prepared.step, prepared.recipient, with_snapshot=False)
        if situation.reason:  # bought, stopped, unsubscribed or switched off while it was prepared
            _skip(
                prepared.message_id, prepared.attempt, prepared.step, cart, situation.reason, situation.order
            )
            return False
        if situation.settings is not None and _came_back(cart, message):  # the shopper is back
            _postpone(prepared.message_id, prepared.attempt, situation.settings, cart, prepared.step)
            return False
        _ours(prepared.message_id, prepared.attempt).update(handed_over_at=now, updated_at=now)
    return True


def _skip(
    message_id: int, attempt: int, step: int, cart: RecoveryCart, reason: str, order: OrderRef | None
) -> None:
    now = timezone.now()
    with transaction.atomic():
        if not _ours(message_id, attempt).update(status=MessageStatus.SKIPPED, reason=reason, updated_at=now):
            return
        if order is not None:
            record_order(order, channel_slug=cart.channel_slug, at=now)
            # An order by the same shopper too long after this cart's activity for the email
            # match still ends this cart's series.
            RecoveryCart.objects.filter(pk=cart.pk).exclude(status=CartStatus.CONVERTED).update(
                status=CartStatus.STOPPED, stop_reason=Reason.PURCHASED, next_due_at=None, updated_at=now
            )
        else:
            RecoveryCart.objects.filter(pk=cart.pk, status=CartStatus.ACTIVE).update(
                status=CartStatus.STOPPED, stop_reason=reason, next_due_at=None, updated_at=now
            )
    logger.info("cart %s step %s skipped: %s", cart.checkout_token, step, reason)


def _release(message_id: int, attempt: int, final_reason: str, *, error: str) -> str:
    """Give the claim back after a failure that sent nothing: ``scheduled`` again after a backoff,
    or ``failed``/``final_reason`` once the attempts are used up."""
    now = timezone.now()
    with transaction.atomic():
        if attempt >= MAX_ATTEMPTS:
            if _ours(message_id, attempt).update(
                status=MessageStatus.FAILED, reason=final_reason, error=error, updated_at=now
            ):
                finish_if_done(RecoveryMessage.objects.filter(pk=message_id).values("cart_id"), now)
        else:
            _ours(message_id, attempt).update(
                status=MessageStatus.SCHEDULED,
                attempt_after=now + RETRY_BASE * 2 ** (attempt - 1),
                error=error,
                updated_at=now,
            )
    return _status(message_id)


def _record(prepared: Prepared, outcome: CartRecoveryError | None) -> str:
    """Step 6: the message's final (or retry) state, in one short transaction."""
    now = timezone.now()
    message_id, attempt = prepared.message_id, prepared.attempt
    if isinstance(outcome, SendFailed):
        logger.warning(
            "cart %s step %s: delivery failed: %s", prepared.checkout_token, prepared.step, outcome
        )
        return _release(message_id, attempt, Reason.RETRIES_EXHAUSTED, error=str(outcome))
    if outcome is None:
        fields = {"status": MessageStatus.SENT, "sent_at": now, "error": ""}
    elif isinstance(outcome, SendUncertain):
        # The server may have it: sending again could mail the step twice (invariant 2).
        fields = {"status": MessageStatus.FAILED, "reason": Reason.INTERRUPTED, "error": str(outcome)}
    elif isinstance(outcome, RecipientRefused):
        fields = {"status": MessageStatus.FAILED, "reason": Reason.BOUNCED, "error": str(outcome)}
    else:
        assert isinstance(outcome, SendRefused), outcome
        fields = {"status": MessageStatus.FAILED, "reason": Reason.SEND_REFUSED, "error": str(outcome)}
    with transaction.atomic():
        if not _ours(message_id, attempt).update(updated_at=now, **fields):
            return _status(message_id)
        if isinstance(outcome, RecipientRefused):
            logger.warning("cart %s: %s bounced: %s", prepared.checkout_token, prepared.recipient, outcome)
            suppress(prepared.channel_slug, prepared.recipient, source="bounced")
        finish_if_done([prepared.cart_id], now)
    return str(fields["status"])


def finish_if_done(cart_ids, now) -> int:
    """Mark ``finished`` the live series among ``cart_ids`` (ids or a one-column queryset) that
    have every step planned (nothing left to plan: ``next_due_at`` is empty) and none waiting.
    A cart the dispatcher still has to look at (new activity after its last step) is finished by
    the dispatcher instead, when it finds no step left."""
    waiting = RecoveryMessage.objects.filter(
        cart_id=OuterRef("pk"), status__in=[MessageStatus.SCHEDULED, MessageStatus.SENDING]
    )
    return (
        RecoveryCart.objects.filter(pk__in=cart_ids, status=CartStatus.ACTIVE, next_due_at__isnull=True)
        .exclude(Exists(waiting))
        .update(status=CartStatus.FINISHED, updated_at=now)
    )


def _came_back(cart: RecoveryCart, message: RecoveryMessage) -> bool:
    """The shopper was active again after this step was planned: a reminder now would land while
    they are on the site; the step is re-timed from the new activity instead."""
    return cart.status == CartStatus.ACTIVE and cart.last_activity_at > message.planned_at


def _postpone(message_id: int, attempt: int, settings, cart: RecoveryCart, step: int) -> None:
    """Give the claim back without counting it, due again a full delay after the new activity."""
    due = next_due(
        settings,
        last_activity_at=cart.last_activity_at,
        steps_planned=step - 1,
        last_planned_at=None,
        cadence=cart.cadence,
    )
    _ours(message_id, attempt).update(
        status=MessageStatus.SCHEDULED,
        attempts=attempt - 1,
        attempt_after=due,
        planned_at=cart.last_activity_at,
        updated_at=timezone.now(),
    )
    logger.info(
        "cart %s step %s waits: the shopper came back at %s", cart.checkout_token, step, cart.last_activity_at
    )
