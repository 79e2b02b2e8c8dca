"""The send task's logic: decide again under lock, claim, send once.

Two short transactions:
1. lock message and cart, re-check everything (order, suppression, live checkout), render, and
   move the message to ``sending`` — from here on it is never handed out again;
2. lock the cart again, re-check that no order arrived meanwhile, send, record ``sent``.
A worker killed between 1 and 2 leaves ``sending`` behind, which the dispatcher later records as
failed/interrupted: a reminder may be lost, but never sent twice.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from ..email.compose import compose_email
from ..email.offers import abandoned_prices, build_offer, content_for_step, coupon_due, issue_coupon
from ..email.transport import send_email
from ..exceptions import SendFailed, SendRefused, SendUncertain
from ..models import CartStatus, MessageStatus, Reason, RecoveryCart, RecoveryMessage
from ..shop import get_shop
from .activity import record_order
from .decisions import reason_not_to_send
from .suppression import is_suppressed, normalize_email

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# Backoff after a temporary failure: 2, 4, 8, 16 minutes.
RETRY_BASE = timedelta(minutes=2)


def deliver(message_id: int) -> str:
    """Handle one planned message; return its status afterwards. Safe to call any number of times."""
    shop = get_shop()
    with shop.write_access():
        try:
            email = _claim(shop, message_id)
        except Exception:
            # Preparing failed (shop data, rendering, a voucher): nothing was sent. Count the
            # attempt so a message that can never be prepared stops being handed out.
            logger.exception("cart recovery: could not prepare message %s", message_id)
            return _count_failed_preparation(message_id)
        if email is None:
            return (
                RecoveryMessage.objects.filter(pk=message_id).values_list("status", flat=True).first()
                or "missing"
            )
        return _send(shop, message_id, email)


def _claim(shop, message_id):
    now = timezone.now()
    with transaction.atomic():
        message = RecoveryMessage.objects.select_for_update().filter(pk=message_id).first()
        if message is None or message.status != MessageStatus.SCHEDULED:
            return None
        cart = RecoveryCart.objects.select_for_update().get(pk=message.cart_id)
        settings = shop.channel_settings(cart.channel_slug)
        order = shop.find_order(cart.checkout_token) if cart.status != CartStatus.CONVERTED else None
        snapshot = None
        if settings is not None and order is None and cart.status == CartStatus.ACTIVE:
            snapshot = shop.load_cart(cart.checkout_token)
        reason = reason_not_to_send(
            plugin_active=settings is not None,
            cart_status=cart.status,
            cart_stop_reason=cart.stop_reason,
            ordered=order is not None,
            suppressed=is_suppressed(cart.channel_slug, cart.email),
            snapshot=snapshot,
        )
        if not reason and message.step > settings.steps:
            reason = Reason.STEP_REMOVED  # the owner shortened the schedule after it was planned
        if reason:
            _skip(message, cart, reason, order, now)
            return None
        offer = _prepare_offer(shop, settings, snapshot, message, cart, now)
        email = compose_email(
            shop,
            settings,
            snapshot,
            step=message.step,
            variant=message.variant,
            offer=offer,
            message_id=message.id,
        )
        message.status = MessageStatus.SENDING
        message.attempts += 1
        message.subject = email.subject
        message.recipient = snapshot.email
        message.updated_at = now
        message.save(
            update_fields=[
                "status",
                "attempts",
                "subject",
                "recipient",
                "updated_at",
                "content",
                "voucher_code",
                "voucher_expires_at",
            ]
        )
        cart.email = normalize_email(snapshot.email)
        cart.save(update_fields=["email", "abandoned_prices"])
        return email


def _count_failed_preparation(message_id: int) -> str:
    now = timezone.now()
    with transaction.atomic():
        message = RecoveryMessage.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            return "missing"
        if message.status == MessageStatus.SCHEDULED:
            message.attempts += 1
            if message.attempts >= MAX_ATTEMPTS:
                message.status, message.reason = MessageStatus.FAILED, Reason.PREPARE_FAILED
            else:
                message.attempt_after = now + RETRY_BASE * 2 ** (message.attempts - 1)
            message.updated_at = now
            message.save(update_fields=["attempts", "status", "reason", "attempt_after", "updated_at"])
        return message.status


def _prepare_offer(shop, settings, snapshot, message, cart, now) -> dict:
    """Decide the step's content and gather its offer; sets (unsaved) fields on message and cart.

    The coupon is created here, inside the claim's transaction, and its code is stored on the
    message: a retried send reuses it, and a claim that fails leaves no voucher behind."""
    prices_then = cart.abandoned_prices
    if prices_then is None:
        cart.abandoned_prices = abandoned_prices(snapshot.lines)
    message.content = content_for_step(settings.offers, message.step, settings.steps)
    if coupon_due(settings.offers, message.step) and not message.voucher_code:
        issued = issue_coupon(shop, settings.offers.coupon, snapshot, now=now)
        message.voucher_code, message.voucher_expires_at = issued.code, issued.expires_at
    return build_offer(
        shop,
        settings,
        snapshot,
        content=message.content,
        voucher_code=message.voucher_code,
        voucher_expires_at=message.voucher_expires_at,
        prices_then=prices_then,
        now=now,
    )


def _skip(message, cart, reason, order, now):
    message.status, message.reason, message.updated_at = MessageStatus.SKIPPED, reason, now
    message.save(update_fields=["status", "reason", "updated_at"])
    if order is not None:
        record_order(order, channel_slug=cart.channel_slug, at=now)
    elif cart.status == CartStatus.ACTIVE:
        cart.status, cart.stop_reason, cart.next_due_at, cart.updated_at = (
            CartStatus.STOPPED,
            reason,
            None,
            now,
        )
        cart.save(update_fields=["status", "stop_reason", "next_due_at", "updated_at"])
    logger.info("cart %s step %s skipped: %s", cart.checkout_token, message.step, reason)


def _send(shop, message_id, email) -> str:
    with transaction.atomic():
        message = RecoveryMessage.objects.select_for_update().get(pk=message_id)
        cart = RecoveryCart.objects.select_for_update().get(pk=message.cart_id)
        now = timezone.now()
        order = shop.find_order(cart.checkout_token) if cart.status != CartStatus.CONVERTED else None
        if cart.status == CartStatus.CONVERTED or order is not None:
            _skip(message, cart, Reason.PURCHASED, order, now)
            return message.status
        settings = shop.channel_settings(cart.channel_slug)
        late_reason = reason_not_to_send(
            plugin_active=settings is not None,
            cart_status=cart.status,
            cart_stop_reason=cart.stop_reason,
            ordered=False,
            suppressed=is_suppressed(cart.channel_slug, cart.email),
            snapshot=None,
            check_snapshot=False,
        )
        if late_reason:  # stopped, unsubscribed or switched off while the email was prepared
            _skip(message, cart, late_reason, None, now)
            return message.status
        try:
            send_email(email, settings.smtp)
        except SendUncertain as exc:
            # The server may have it: sending again could mail the step twice (invariant 2).
            message.status, message.reason, message.error = (
                MessageStatus.FAILED,
                Reason.INTERRUPTED,
                str(exc),
            )
        except SendRefused as exc:
            message.status, message.reason, message.error = (
                MessageStatus.FAILED,
                Reason.SEND_REFUSED,
                str(exc),
            )
        except SendFailed as exc:
            message.error = str(exc)
            if message.attempts >= MAX_ATTEMPTS:
                message.status, message.reason = MessageStatus.FAILED, Reason.RETRIES_EXHAUSTED
            else:
                message.status = MessageStatus.SCHEDULED
                message.attempt_after = now + RETRY_BASE * 2 ** (message.attempts - 1)
            logger.warning("cart %s step %s: delivery failed: %s", cart.checkout_token, message.step, exc)
        else:
            message.status, message.sent_at, message.error = MessageStatus.SENT, now, ""
        message.updated_at = now
        message.save()
        last_step = cart.steps_planned >= settings.steps
        if message.status != MessageStatus.SCHEDULED and cart.status == CartStatus.ACTIVE and last_step:
            cart.status, cart.updated_at = CartStatus.FINISHED, now
            cart.save(update_fields=["status", "updated_at"])
        return message.status
