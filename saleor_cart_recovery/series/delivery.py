"""The send task's logic for a batch of messages: claim, prepare without locks, then per message
re-check, hand over and record — over one SMTP connection.

No lock of ours is held across a call that leaves the database or takes long (invariant 4):

1. **claim** — one conditional UPDATE moves the batch's messages from ``scheduled`` to ``sending``
   and counts each one's attempt; the attempt number is that message's fencing token. Every later
   write is conditional on ``status = sending AND attempts = <its attempt>``, so a message whose
   claim was taken over (or that is no longer ``sending``) is never sent or recorded by a stale task.
2. **prepare**, outside any transaction, with a bounded number of queries for the whole batch:
   the channels' settings, orders, suppressions, cart snapshots, stock and upsell products are read
   once for all messages; then each message is decided, its coupon issued (reserved, created by the
   shop, then its code stored on the message at once, so a retry reuses it), its offer built and
   rendered. The prepared subjects
   and recipients are written in one statement. If the batch cannot be read or written as a whole,
   its messages are prepared one by one, so one cart's bad data costs only its own attempt.
3. **connect** to the mail server, outside any transaction, once for the batch (once per mail
   server when a batch spans channels); a connection found dead before a message (``NOOP``), or
   one that broke during a send, is replaced. Claims still waiting for their turn are touched
   every minute, so the dispatcher never takes them for a dead worker's.
4. per message, **re-check and mark**: the shop is asked, outside any transaction, whether an
   order exists (a host that answers over the network is asked about the next messages too, and
   its answer stands for them while younger than the host's window: :mod:`.order_check`); the
   plugin must still be on and the step still in the schedule; then one conditional UPDATE checks
   that the claim is still ours, the cart still active and untouched since it was prepared and the
   address not suppressed, and sets ``handed_over_at`` (anything else goes to a full re-check in
   one short transaction, with the shop's answer, that records why the message does not go out);
5. **send** it over the open connection, outside any transaction;
6. **record** its outcome (one statement in the common case).

What is left of invariant 3 is the age of the shop's answer when step 4 begins (the time its
question took; for a message asked about ahead, under the host's window: 250 ms for the App), step
4 itself (a statement; with a frequency cap, the wait for the address's lock) and the time between
step 4's commit and the server accepting that message: the transfer of one message over an open
connection (milliseconds; at most the SMTP timeout if the server stalls mid-transfer). A worker
that dies before step 4 sent nothing and the dispatcher hands the message out again; one that dies
after it may have sent it, and the dispatcher records it ``failed``/``interrupted`` (never resent:
invariant 2). A connection that breaks fails only the message on the wire; when the server cannot
be reached, the rest of the batch is given back for a retry.
"""

import json
import logging
import time
from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings as django_settings
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import Case, Exists, OuterRef, Value, When
from django.db.models.functions import Greatest
from django.utils import timezone

from ..email.compose import compose_email, reminder_links
from ..email.headers import reminder_message_id
from ..email.offers import (
    OfferFacts,
    abandoned_prices,
    build_offer,
    content_for_step,
    coupon_due,
    issue_coupon,
    offer_facts,
)
from ..email.transport import close_connection, connection_alive, open_connection, send_on
from ..exceptions import (
    CartRecoveryError,
    RecipientRefused,
    SendFailed,
    SendRefused,
    SendUncertain,
    ShopUnavailable,
)
from ..models import UNSENT, CartStatus, MessageStatus, Reason, RecoveryCart, RecoveryMessage, Suppression
from ..settings.channel import CouponSettings, RecoverySettings
from ..settings.formats import REMINDER, SmtpConfig
from ..shop import CartSnapshot, IssuedVoucher, OrderLookup, OrderRef, Shop, get_shop, usable_settings
from . import caps, rules
from .activity import record_purchase
from .decisions import next_due, reason_not_to_send
from .order_check import OrderCheck
from .suppression import hashed_address, normalize_email, suppress, suppression_reasons

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
    header_id: str  # its Message-ID, stored on the row with handed_over_at
    smtp: SmtpConfig | None
    last_step: bool  # nothing left to plan for the cart: recording it may finish the series
    lookup: OrderLookup  # the order check as prepared (the cart's address and last activity)
    orders_read_at: datetime | None  # when the shop was asked in full about that lookup (None: never)


def deliver(message_id: int) -> str:
    """Handle one planned message; return its status afterwards (see :func:`deliver_batch`)."""
    return deliver_batch([message_id])[message_id]


def deliver_batch(message_ids: list[int]) -> dict[int, str]:
    """Handle planned messages; return each one's status afterwards (``missing`` when deleted).
    Safe to call any number of times, from any number of workers at once: at most one of them
    sends a message."""
    shop = get_shop()
    with shop.write_access():
        claims = _claim(message_ids)
        if claims:
            _hand_over(shop, _prepare_all(shop, claims))
        return _statuses(message_ids)


def _prepare_all(shop: Shop, claims: dict[int, int]) -> list[Prepared]:
    """Step 2 for the batch; when reading or writing the batch as a whole fails, each message is
    prepared on its own, so one cart's bad data costs only its own attempt (invariant 9)."""
    try:
        return _prepare(shop, claims)
    except ShopUnavailable as exc:
        # Asking again once per message would wait as long again for each: the batch is retried.
        logger.warning("cart recovery: the shop could not be asked for messages %s: %s", sorted(claims), exc)
        _give_back(claims.items(), exc)
        return []
    except Exception:
        logger.exception("cart recovery: could not prepare messages %s together", sorted(claims))
    prepared = []
    for message_id, attempt in claims.items():
        try:
            prepared.extend(_prepare(shop, {message_id: attempt}))
        except Exception as exc:
            # Nothing was sent; the attempt counts, so a message that can never be prepared stops
            # being handed out.
            logger.exception("cart recovery: could not prepare message %s", message_id)
            _release(message_id, attempt, Reason.PREPARE_FAILED, error=f"preparation failed: {exc!r}")
    return prepared


def _give_back(claims: Iterable[tuple[int, int]], exc: ShopUnavailable) -> None:
    """Nothing was sent: each ``(message id, attempt)`` is retried after the backoff (the attempt
    counts, so a shop that stays out of reach ends the step as ``prepare_failed``)."""
    for message_id, attempt in claims:
        _release(message_id, attempt, Reason.PREPARE_FAILED, error=f"the shop could not be asked: {exc}")


def _statuses(message_ids: list[int]) -> dict[int, str]:
    found = dict(RecoveryMessage.objects.filter(pk__in=message_ids).values_list("pk", "status"))
    return {message_id: found.get(message_id, "missing") for message_id in message_ids}


def _ours(message_id: int, attempt: int):
    """The message as long as our claim holds (fencing), as a queryset to update."""
    return RecoveryMessage.objects.filter(pk=message_id, status=MessageStatus.SENDING, attempts=attempt)


_CLAIM = f"""
UPDATE {RecoveryMessage._meta.db_table}
SET status = %(sending)s, attempts = attempts + 1, handed_over_at = NULL, updated_at = %(now)s
WHERE id = ANY(%(ids)s) AND status = %(scheduled)s
RETURNING id, attempts
"""


def _claim(message_ids: list[int]) -> dict[int, int]:
    """Take the messages that are ours to send (``scheduled`` → ``sending``), in one statement:
    their attempt numbers by id. Already claimed, sent, skipped, failed or deleted ones are absent."""
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM,
            {
                "ids": list(message_ids),
                "now": timezone.now(),
                "sending": MessageStatus.SENDING.value,
                "scheduled": MessageStatus.SCHEDULED.value,
            },
        )
        return dict(cursor.fetchall())


@dataclass(frozen=True)
class _Situation:
    settings: RecoverySettings | None
    order: OrderRef | None
    snapshot: CartSnapshot | None
    reason: str | None  # why the step must not go out now; None: it may
    orders_read_at: datetime | None  # when ``order`` was asked of the shop (None: by the caller)


class _Reads:
    """What decides the batch's messages, read from the shop and our tables with a bounded number
    of queries whatever the batch's size (``with_snapshots`` also loads the carts; ``orders``: the
    shop's answer about the carts' orders, when the caller asked already)."""

    def __init__(
        self,
        shop: Shop,
        carts: list[RecoveryCart],
        *,
        with_snapshots: bool,
        orders: Mapping[str, OrderRef] | None = None,
    ):
        self.settings = {
            slug: usable_settings(slug, shop) for slug in sorted({cart.channel_slug for cart in carts})
        }
        self.orders_read_at = None if orders is not None else timezone.now()
        self.orders = (
            orders
            if orders is not None
            else shop.find_orders([_lookup(cart) for cart in carts if cart.status != CartStatus.CONVERTED])
        )
        self.suppressions = suppression_reasons((cart.channel_slug, cart.email) for cart in carts)
        self.snapshots: dict[str, CartSnapshot] = {}
        self.with_snapshots = with_snapshots
        if with_snapshots:
            self.snapshots = shop.load_carts(
                [
                    cart.checkout_token
                    for cart in carts
                    if cart.status == CartStatus.ACTIVE
                    and cart.checkout_token not in self.orders
                    and self.settings[cart.channel_slug][0] is not None
                ]
            )

    def situation(self, cart: RecoveryCart, step: int) -> _Situation:
        settings, unavailable = self.settings[cart.channel_slug]
        order = self.orders.get(cart.checkout_token)
        snapshot = self.snapshots.get(cart.checkout_token)
        reason = reason_not_to_send(
            unavailable=unavailable,
            cart_status=cart.status,
            cart_stop_reason=cart.stop_reason,
            ordered=order is not None,
            suppression=self.suppressions.get((cart.channel_slug, normalize_email(cart.email))),
            snapshot=snapshot,
            check_snapshot=self.with_snapshots,
            step_in_schedule=settings is None or step <= settings.steps,
            below_minimum=bool(settings and snapshot and rules.below_minimum(settings.rules, snapshot)),
        )
        return _Situation(settings, order, snapshot, reason, self.orders_read_at)


def _lookup(cart: RecoveryCart, *, email: str | None = None) -> OrderLookup:
    """An order from this checkout, or by the same shopper in the channel since the cart's last
    activity (bought through another checkout or device) — asked of the shop at send time, so it
    holds even when the order hook did not run (plugin off, hook failed)."""
    return OrderLookup(cart.checkout_token, cart.channel_slug, email or cart.email, cart.last_activity_at)


_WRITE_PREPARED = f"""
UPDATE {RecoveryMessage._meta.db_table} AS m
SET content = v.content, subject = v.subject, recipient = v.recipient, updated_at = %(now)s
FROM unnest(%(id)s::bigint[], %(attempt)s::int[], %(content)s::varchar[], %(subject)s::varchar[],
            %(recipient)s::varchar[]) AS v(id, attempt, content, subject, recipient)
WHERE m.id = v.id AND m.status = %(sending)s AND m.attempts = v.attempt
RETURNING m.id
"""

# The cart's address as the checkout has it now, and the prices when its first reminder was
# prepared (kept once recorded).
_WRITE_CARTS = f"""
UPDATE {RecoveryCart._meta.db_table} AS c SET email = v.email,
    abandoned_prices = COALESCE(c.abandoned_prices, v.prices::jsonb)
FROM unnest(%(id)s::bigint[], %(email)s::varchar[], %(prices)s::text[]) AS v(id, email, prices)
WHERE c.id = v.id
"""


def _prepare(shop: Shop, claims: dict[int, int]) -> list[Prepared]:
    """Step 2: decide and render every claimed message without holding any lock; the messages
    that may go out, in claim order. Skipped, postponed and failed ones are recorded here."""
    messages = [
        message
        for message in RecoveryMessage.objects.select_related("cart")
        .filter(pk__in=claims, status=MessageStatus.SENDING)
        .order_by("pk")
        if message.attempts == claims[message.pk]  # still our claim
    ]
    reads = _Reads(shop, [message.cart for message in messages], with_snapshots=True)
    situations = {message.pk: reads.situation(message.cart, message.step) for message in messages}
    now = timezone.now()
    held_back = _apply_sending_rules(messages, claims, situations, now)
    # What the messages that may go out will say, and the shop's facts for all of them at once.
    contents: dict[int, tuple[RecoverySettings, CartSnapshot, str]] = {}
    for message in messages:
        situation = situations[message.pk]
        if message.pk in held_back:
            continue
        if situation.reason is None and situation.settings is not None and situation.snapshot is not None:
            settings = situation.settings
            content = content_for_step(settings.offers, message.step, settings.steps)
            contents[message.pk] = (settings, situation.snapshot, content)
    facts = dict(zip(contents, offer_facts(shop, list(contents.values())), strict=True))
    ready: list[tuple[Prepared, str]] = []
    carts: dict[int, tuple[str, str]] = {}
    for message in messages:
        attempt = claims[message.pk]
        if message.pk in held_back:
            continue
        try:
            situation = situations[message.pk]
            if message.pk not in contents:
                _skip_for(message, attempt, situation)
                continue
            _, _, content = contents[message.pk]
            outcome = _prepare_one(shop, message, attempt, situation, content, facts[message.pk], now)
        except Exception as exc:
            # Shop data, rendering, a voucher: nothing was sent. The attempt counts, so a message
            # that can never be prepared stops being handed out.
            logger.exception("cart recovery: could not prepare message %s", message.pk)
            _release(message.pk, attempt, Reason.PREPARE_FAILED, error=f"preparation failed: {exc!r}")
            continue
        if outcome is None:
            continue
        prepared, content = outcome
        _, snapshot, _ = contents[message.pk]
        ready.append((prepared, content))
        carts[message.cart_id] = (prepared.recipient, json.dumps(abandoned_prices(snapshot.lines)))
    if not ready:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            _WRITE_CARTS,
            {
                "id": list(carts),
                "email": [email for email, _ in carts.values()],
                "prices": [prices for _, prices in carts.values()],
            },
        )
        cursor.execute(
            _WRITE_PREPARED,
            {
                "id": [p.message_id for p, _ in ready],
                "attempt": [p.attempt for p, _ in ready],
                "content": [content for _, content in ready],
                "subject": [p.email.subject for p, _ in ready],
                "recipient": [p.email.to[0] for p, _ in ready],
                "now": timezone.now(),
                "sending": MessageStatus.SENDING.value,
            },
        )
        still_ours = {row[0] for row in cursor.fetchall()}  # a claim lost meanwhile is not sent
    return [p for p, _ in ready if p.message_id in still_ours]


def _apply_sending_rules(
    messages: list[RecoveryMessage], claims: dict[int, int], situations: dict[int, _Situation], now
) -> set[int]:
    """The owner's rules for the messages that may otherwise go out, in this order: consent (the step
    is skipped, ``no_consent``), quiet hours in the shopper's zone (postponed to the window's end,
    ``quiet_hours``), the frequency cap (skipped, ``frequency_cap``; checked again under the
    address's lock right before the send). The ids of the messages held back, each one recorded."""
    candidates = []
    for message in messages:
        situation = situations[message.pk]
        if situation.reason is None and situation.settings and situation.snapshot:
            address = (message.cart.channel_slug, normalize_email(situation.snapshot.email))
            candidates.append((message, situation.settings, situation.snapshot, address))
    periods = [s.rules.frequency_cap.period for _, s, _, _ in candidates if s.rules.frequency_cap]
    sends = caps.recent_sends((a for *_, a in candidates), now - max(periods)) if periods else {}
    held: set[int] = set()
    for message, settings, snapshot, address in candidates:
        sending, attempt = settings.rules, claims[message.pk]
        try:
            if not rules.has_consent(sending, snapshot):
                _skip_step(message, attempt, Reason.NO_CONSENT, now)
            elif until := rules.quiet_until(
                now, rules.shopper_zone(snapshot, sending.time_zone, now), sending.quiet_hours
            ):
                _postpone_quiet(message, attempt, until, now)
            elif not rules.cap_allows(sending.frequency_cap, sends.get(address, ()), now):
                _skip_step(message, attempt, Reason.FREQUENCY_CAP, now)
            else:
                continue
        except Exception as exc:  # nothing was sent: retried like any preparation failure
            logger.exception("cart recovery: could not apply the sending rules to message %s", message.pk)
            _release(message.pk, attempt, Reason.PREPARE_FAILED, error=f"sending rules failed: {exc!r}")
        held.add(message.pk)
    return held


def _skip_step(message: RecoveryMessage, attempt: int, reason: str, now) -> None:
    """This step does not go out, the series goes on with the next one (a skipped last step
    finishes it)."""
    with transaction.atomic():
        if _ours(message.pk, attempt).update(status=MessageStatus.SKIPPED, reason=reason, updated_at=now):
            finish_if_done([message.cart_id], now)
    logger.info("cart %s step %s skipped: %s", message.cart.checkout_token, message.step, reason)


def _postpone_quiet(message: RecoveryMessage, attempt: int, until, now) -> None:
    """Back to ``scheduled`` until the quiet window ends, without counting the attempt. The cart's
    spacing restarts from then, so the next step keeps its configured gap after this one."""
    with transaction.atomic():
        if _ours(message.pk, attempt).update(
            status=MessageStatus.SCHEDULED,
            reason=Reason.QUIET_HOURS,
            attempts=attempt - 1,
            attempt_after=until,
            updated_at=now,
        ):
            # The dispatcher need not look at the cart before the window ends (its next step waits
            # for this one anyway).
            RecoveryCart.objects.filter(pk=message.cart_id).update(
                last_planned_at=Greatest("last_planned_at", Value(until)),
                next_due_at=Case(When(next_due_at__lt=until, then=Value(until)), default="next_due_at"),
            )
    logger.info(
        "cart %s step %s waits for quiet hours to end at %s", message.cart.checkout_token, message.step, until
    )


def _skip_for(message: RecoveryMessage, attempt: int, situation: _Situation) -> None:
    """A message whose situation does not let it go out: skipped with the reason."""
    reason = situation.reason or Reason.CHECKOUT_DELETED  # no reason means settings and cart are there
    _skip(message.pk, attempt, message.step, message.cart, reason, situation.order)


def _prepare_one(
    shop: Shop,
    message: RecoveryMessage,
    attempt: int,
    situation: _Situation,
    content: str,
    facts: OfferFacts,
    now,
) -> tuple[Prepared, str] | None:
    """One message that may go out, with what it says: postponed when the shopper came back
    (``None``), else its coupon issued and its email rendered."""
    cart = message.cart
    settings, snapshot = situation.settings, situation.snapshot
    assert settings is not None and snapshot is not None
    if _came_back(cart, message):
        _postpone(message.pk, attempt, settings, cart, message.step)
        return None
    coupon = settings.offers.coupon
    if coupon is not None and coupon_due(settings.offers, message.step) and not message.voucher_code:
        issued = _issue_coupon_once(shop, coupon, message, attempt, snapshot, now)
        if issued is False:
            return None
        if issued is None:
            content = REMINDER  # the address holds a valid code already: this step goes without one
    offer = build_offer(
        settings,
        snapshot,
        content=content,
        voucher_code=message.voucher_code,
        voucher_expires_at=message.voucher_expires_at,
        prices_then=cart.abandoned_prices,
        now=now,
        facts=facts,
    )
    header_id = reminder_message_id(message.pk, settings.from_email or django_settings.DEFAULT_FROM_EMAIL)
    email = compose_email(
        settings,
        snapshot,
        step=message.step,
        variant=message.variant,
        offer=offer,
        links=reminder_links(shop, cart.channel_slug, message.pk),
        message_id=header_id,
    )
    email.message()  # headers and addresses checked now: a bad one fails preparation, not the send
    prepared = Prepared(
        message_id=message.pk,
        attempt=attempt,
        cart_id=cart.pk,
        channel_slug=cart.channel_slug,
        checkout_token=cart.checkout_token,
        step=message.step,
        recipient=normalize_email(snapshot.email),
        email=email,
        header_id=header_id,
        smtp=settings.smtp,
        last_step=cart.next_due_at is None,
        lookup=_lookup(cart, email=normalize_email(snapshot.email)),
        # the read covered this lookup unless the checkout's address is not the one it asked about
        orders_read_at=situation.orders_read_at
        if normalize_email(cart.email) == normalize_email(snapshot.email)
        else None,
    )
    return prepared, content


def _issue_coupon_once(
    shop: Shop, coupon: CouponSettings, message: RecoveryMessage, attempt: int, snapshot: CartSnapshot, now
) -> IssuedVoucher | bool | None:
    """Issue the step's coupon and store it on the message, unless the address already holds a
    valid code in the channel or another of its messages is getting one (``None``: no coupon
    farming by opening many carts). No lock is held while the shop creates the voucher (invariant
    4): under the address's lock, one short transaction reserves the coupon on the message (its
    expiry, no code yet: :data:`.caps.LIVE_COUPON` counts it while the message is being sent);
    the shop creates the voucher; one statement stores its code while the claim is ours. A claim
    lost meanwhile (``False``) leaves no voucher behind: it is deleted at once."""
    address, channel_slug = normalize_email(snapshot.email), message.cart.channel_slug
    with transaction.atomic():
        caps.lock_address(channel_slug, address)
        if caps.coupon_live(channel_slug, address, now=now, other_than=message.pk):
            logger.info("cart %s: %s holds a valid code already; no new coupon", snapshot.token, address)
            return None
        reserved = _ours(message.pk, attempt).update(
            voucher_code="", voucher_expires_at=now + coupon.valid_for, recipient=address, updated_at=now
        )
    if not reserved:
        return False
    try:
        issued = issue_coupon(shop, coupon, snapshot, now=now)
    except Exception:
        _ours(message.pk, attempt).update(voucher_expires_at=None)  # no code: the reservation goes
        raise
    if not _ours(message.pk, attempt).update(
        voucher_code=issued.code, voucher_expires_at=issued.expires_at, updated_at=now
    ):
        logger.warning("cart %s: claim lost; the voucher is deleted", snapshot.token)
        try:
            shop.delete_voucher(issued)
        except Exception:  # unused and marked: the cleanup deletes it once it expired
            logger.exception("cart %s: could not delete the voucher of a lost claim", snapshot.token)
        return False
    message.voucher_code, message.voucher_expires_at = issued.code, issued.expires_at
    return issued


# Claims of a batch that wait for their turn are touched this often, so the dispatcher never takes
# them for claims of a dead worker (PREPARE_TIMEOUT) while a slow mail server holds the batch.
KEEP_CLAIMS = 60.0

_TOUCH = f"""
UPDATE {RecoveryMessage._meta.db_table} AS m SET updated_at = %(now)s
FROM unnest(%(id)s::bigint[], %(attempt)s::int[]) AS v(id, attempt)
WHERE m.id = v.id AND m.status = %(sending)s AND m.attempts = v.attempt AND m.handed_over_at IS NULL
"""


def _hand_over(shop: Shop, batch: list[Prepared]) -> None:
    """Steps 3–6 for each prepared message, over one connection per mail server."""
    connections: dict[SmtpConfig | None, object] = {}
    unreachable: set[SmtpConfig | None] = set()
    orders = OrderCheck(shop, [p.lookup for p in batch], [p.orders_read_at for p in batch])
    touched = time.monotonic()
    try:
        for index, prepared in enumerate(batch):
            if time.monotonic() - touched >= KEEP_CLAIMS:
                try:
                    _keep_claims(batch[index:])
                except Exception:  # the database hiccuped: the next message tries again
                    logger.exception("cart recovery: could not keep the batch's claims")
                touched = time.monotonic()
            if prepared.smtp in unreachable:
                continue
            mail = connections.get(prepared.smtp)
            if mail is not None and not connection_alive(mail):  # closed by the server meanwhile
                close_connection(connections.pop(prepared.smtp))
                mail = None
            if mail is None:
                try:
                    mail = connections[prepared.smtp] = open_connection(prepared.smtp)
                except SendFailed as exc:
                    # Unreachable: nothing was handed over; this server's messages are retried later.
                    unreachable.add(prepared.smtp)
                    for rest in batch[index:]:
                        if rest.smtp == prepared.smtp:
                            _record(rest, exc)
                    continue
            try:
                broken = _hand_over_one(shop, prepared, mail, orders, index)
            except ShopUnavailable as exc:
                # The order check could not be made: nothing goes out without it (invariant 3), and
                # asking once per message would wait as long again for each: the rest is retried.
                _give_back(((rest.message_id, rest.attempt) for rest in batch[index:]), exc)
                break
            except Exception:
                # Our own bookkeeping failed (the database, not the mail server: send_on sorts every
                # error of its own); the claim is left to the dispatcher's timeouts (handed out
                # again, or interrupted if it was on the wire) and the batch goes on.
                logger.exception("cart recovery: could not hand over message %s", prepared.message_id)
                broken = False
            if broken:
                close_connection(connections.pop(prepared.smtp))
    finally:
        for mail in connections.values():
            close_connection(mail)


def _keep_claims(waiting: list[Prepared]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            _TOUCH,
            {
                "id": [p.message_id for p in waiting],
                "attempt": [p.attempt for p in waiting],
                "now": timezone.now(),
                "sending": MessageStatus.SENDING.value,
            },
        )


def _hand_over_one(shop: Shop, prepared: Prepared, mail, orders: OrderCheck, index: int) -> bool:
    """Steps 4–6 for the batch's ``index``-th message; ``True`` when the connection may be broken
    (not to be reused)."""
    try:
        marked = _recheck_and_mark(shop, prepared, orders.before(index))
    except ShopUnavailable:
        raise  # the whole rest of the batch is given back
    except Exception as exc:  # nothing was handed over: try again later
        logger.exception("cart recovery: could not re-check message %s", prepared.message_id)
        _release(prepared.message_id, prepared.attempt, Reason.PREPARE_FAILED, error=repr(exc))
        return False
    if not marked:
        return False
    try:
        provider_id = send_on(mail, prepared.email)
    except CartRecoveryError as exc:
        _record(prepared, exc)
        return isinstance(exc, SendUncertain | SendFailed)
    _record(prepared, None, provider_id=provider_id)
    return False


# Step 4's common case in one statement: the claim still ours, the cart still active with the
# address and last activity the order check just used (so the shopper has not come back), the
# address not suppressed (as written, or as the keyed hash an erasure leaves), and — with a
# frequency cap, under the address's lock — still under the cap. Anything else goes to the full
# re-check, which records why.
_MARK = f"""
UPDATE {RecoveryMessage._meta.db_table} AS m
SET handed_over_at = %(now)s, updated_at = %(now)s, message_id = %(header_id)s
FROM {RecoveryCart._meta.db_table} AS c
WHERE m.id = %(id)s AND m.status = %(sending)s AND m.attempts = %(attempt)s
  AND c.id = m.cart_id AND c.status = %(active)s AND c.email = %(email)s
  AND c.last_activity_at = %(last_activity_at)s AND c.last_activity_at <= m.planned_at
  AND NOT EXISTS (SELECT 1 FROM {Suppression._meta.db_table} AS s
                  WHERE s.channel_slug = c.channel_slug AND s.email IN (c.email, %(hashed)s))
  {{cap}}
RETURNING m.id
"""
_MARK_ANY = _MARK.format(cap="")
_MARK_CAPPED = _MARK.format(cap=f"AND {caps.UNDER_CAP}")


def _recheck_and_mark(shop: Shop, prepared: Prepared, orders: Mapping[str, OrderRef]) -> bool:
    """Step 4: everything that may have changed while we prepared and connected; ``True`` when the
    message is marked handed over and may go out now. ``orders`` is the shop's answer about this
    message's cart, asked outside any transaction (invariant 4) just now or within the host's
    window (:mod:`.order_check`); then whether the plugin is still on and the step still in the
    schedule; then one conditional UPDATE checks and marks the rest."""
    settings, _ = usable_settings(prepared.channel_slug, shop)
    if settings is not None and prepared.step <= settings.steps and not orders:
        lookup = prepared.lookup
        now = timezone.now()
        cap = settings.rules.frequency_cap
        # With a cap, the lock and the count-and-mark are one transaction; without, one statement.
        with transaction.atomic() if cap else nullcontext(), connection.cursor() as cursor:
            if cap is not None:
                caps.lock_address(prepared.channel_slug, lookup.email)
            cursor.execute(
                _MARK_ANY if cap is None else _MARK_CAPPED,
                {
                    "id": prepared.message_id,
                    "attempt": prepared.attempt,
                    "email": lookup.email,
                    "hashed": hashed_address(lookup.email),
                    "header_id": prepared.header_id,
                    "last_activity_at": lookup.since,
                    "now": now,
                    "sending": MessageStatus.SENDING.value,
                    "active": CartStatus.ACTIVE.value,
                    "cap_since": now - cap.period if cap else None,
                    "cap_count": cap.count if cap else None,
                },
            )
            if cursor.fetchone() is not None:
                return True
    return _recheck_in_full(shop, prepared, orders)


def _recheck_in_full(shop: Shop, prepared: Prepared, orders: Mapping[str, OrderRef]) -> bool:
    """Step 4 when the quick check did not pass, in one short transaction: records why the message
    does not go out (skipped or postponed), or marks it when nothing that matters changed (the
    quick check compares the cart's activity and address exactly as they were when prepared).
    ``orders`` is the shop's answer for the prepared lookup, asked before the transaction; a cart
    whose address or activity changed since is not sent now, as that answer was not about it."""
    now = timezone.now()
    with transaction.atomic():
        message = (
            _ours(prepared.message_id, prepared.attempt)
            .select_related("cart")
            .select_for_update(of=("self",))
            .first()
        )
        if message is None:
            return False
        cart = message.cart
        asked = _lookup(cart) == prepared.lookup
        reads = _Reads(shop, [cart], with_snapshots=False, orders=orders if asked else {})
        situation = reads.situation(cart, prepared.step)
        if situation.reason:  # bought, stopped, unsubscribed or switched off while it was prepared
            _skip(
                prepared.message_id, prepared.attempt, prepared.step, cart, situation.reason, situation.order
            )
            return False
        # The shopper is back, or changed the address the email was rendered for: not now.
        if situation.settings is not None and (not asked or _came_back(cart, message)):
            _postpone(prepared.message_id, prepared.attempt, situation.settings, cart, prepared.step)
            return False
        cap = situation.settings.rules.frequency_cap if situation.settings else None
        if cap is not None:
            caps.lock_address(cart.channel_slug, prepared.recipient)
            sent = caps.recent_sends([(cart.channel_slug, prepared.recipient)], now - cap.period)
            if not rules.cap_allows(cap, sent.get((cart.channel_slug, prepared.recipient), ()), now):
                _skip_step(message, prepared.attempt, Reason.FREQUENCY_CAP, now)
                return False
        _ours(prepared.message_id, prepared.attempt).update(
            handed_over_at=now, updated_at=now, message_id=prepared.header_id
        )
    return True


def _skip(
    message_id: int, attempt: int, step: int, cart: RecoveryCart, reason: str, order: OrderRef | None
) -> None:
    now = timezone.now()
    with transaction.atomic():
        if not _ours(message_id, attempt).update(status=MessageStatus.SKIPPED, reason=reason, updated_at=now):
            return
        if order is not None:
            record_purchase(order, cart_id=cart.pk, channel_slug=cart.channel_slug, at=now)
        else:
            RecoveryCart.objects.filter(pk=cart.pk, status=CartStatus.ACTIVE).update(
                status=CartStatus.STOPPED, stop_reason=reason, next_due_at=None, updated_at=now
            )
    logger.info("cart %s step %s skipped: %s", cart.checkout_token, step, reason)


def _release(message_id: int, attempt: int, final_reason: str, *, error: str) -> None:
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


def _record(prepared: Prepared, outcome: CartRecoveryError | None, *, provider_id: str = "") -> None:
    """Step 6: the message's final (or retry) state, in one short transaction; ``provider_id`` is
    the id the mail provider gave a sent message (when it gave one)."""
    now = timezone.now()
    message_id, attempt = prepared.message_id, prepared.attempt
    if isinstance(outcome, SendFailed):
        logger.warning(
            "cart %s step %s: delivery failed: %s", prepared.checkout_token, prepared.step, outcome
        )
        _release(message_id, attempt, Reason.RETRIES_EXHAUSTED, error=str(outcome))
        return
    if outcome is None:
        fields = {"status": MessageStatus.SENT, "sent_at": now, "error": "", "reason": ""}
        if provider_id:
            fields["provider_message_id"] = provider_id
    elif isinstance(outcome, SendUncertain):
        # The server may have it: sending again could mail the step twice (invariant 2).
        fields = {"status": MessageStatus.FAILED, "reason": Reason.INTERRUPTED, "error": str(outcome)}
    elif isinstance(outcome, RecipientRefused):
        fields = {"status": MessageStatus.FAILED, "reason": Reason.BOUNCED, "error": str(outcome)}
    else:
        assert isinstance(outcome, SendRefused), outcome
        fields = {"status": MessageStatus.FAILED, "reason": Reason.SEND_REFUSED, "error": str(outcome)}
    if outcome is None and not prepared.last_step:  # the common case: one statement
        _ours(message_id, attempt).update(updated_at=now, **fields)
        return
    with transaction.atomic():
        if not _ours(message_id, attempt).update(updated_at=now, **fields):
            return
        if isinstance(outcome, RecipientRefused):
            logger.warning("cart %s: %s bounced: %s", prepared.checkout_token, prepared.recipient, outcome)
            suppress(prepared.channel_slug, prepared.recipient, source="bounced")
        if prepared.last_step:
            finish_if_done([prepared.cart_id], now)


def finish_if_done(cart_ids, now) -> int:
    """Mark ``finished`` the live series among ``cart_ids`` (ids or a one-column queryset) that
    have every step planned (nothing left to plan: ``next_due_at`` is empty) and none waiting.
    A cart the dispatcher still has to look at (new activity after its last step) is finished by
    the dispatcher instead, when it finds no step left."""
    waiting = RecoveryMessage.objects.filter(cart_id=OuterRef("pk"), status__in=UNSENT)
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
        reason="",
        attempts=attempt - 1,
        attempt_after=due,
        planned_at=cart.last_activity_at,
        updated_at=timezone.now(),
    )
    logger.info(
        "cart %s step %s waits: the shopper came back at %s", cart.checkout_token, step, cart.last_activity_at
    )
