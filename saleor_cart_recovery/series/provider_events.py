"""What the owner's mail provider reports later — bounces, spam complaints, unsubscribes at the
provider, deliveries — matched to our messages and acted on once.

The endpoint (:mod:`..http.esp`) turns each provider's webhook into :class:`ReportedEvent` values
with django-anymail and names the channels whose credentials the request carried;
:func:`record_events` does the rest:

- **Matching**: to our message when the event names it — our own ``Message-ID`` anywhere in the
  event (SES, SendGrid, Mailgun, Brevo echo it), else the provider's id for the message (kept at
  the hand-over) — and then the event applies in that message's channel. An event that names no
  message of ours is most likely about other mail to the same address (an order confirmation sent
  through the same account): only a hard bounce, a complaint or an unsubscribe — what says the
  address must not be mailed at all — applies, by address, in each of those channels where the
  address was mailed; its deliveries and soft bounces are ignored. An event about an address
  none of those channels mailed (another sender on the same account) is ignored.
- **Once**: each (event, channel) is a :class:`ProviderEvent` row with a unique key; a replayed or
  duplicated event finds its row and changes nothing.
- **Effects**: a hard bounce or permanent rejection suppresses the address in the channel (reason
  ``bounced``), a complaint suppresses it (``complained``), an unsubscribe at the provider
  suppresses it (``unsubscribed``) — each with the provider as the source; soft bounces (final
  ones: a provider's "deferred, retrying" is no bounce) suppress (``bounced``) once
  :data:`SOFT_BOUNCE_LIMIT` different reminders soft-bounced within :data:`SOFT_BOUNCE_PERIOD`,
  counted under a lock per (channel, address) so two reported at once cannot both miss the limit;
  deliveries are only recorded (the rates count them).
- **One event at a time**: an event the database refuses (a value it cannot store) is logged and
  skipped; the others are recorded. Only a failure of the database itself reaches the caller.
"""

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import Count
from django.utils.translation import pgettext_lazy

from ..email.headers import our_message_ids
from ..models import ProviderEvent, ProviderEventKind, RecoveryMessage
from ..shop import get_shop
from .suppression import normalize_email, provider_source, suppress

logger = logging.getLogger(__name__)

# Soft bounces (mailbox full, greylisting, a server down) usually pass; the same address failing on
# this many different reminders within the period is treated as dead. Three reminders are one whole
# default series; 30 days spans several carts of a returning shopper.
SOFT_BOUNCE_LIMIT = 3
SOFT_BOUNCE_PERIOD = timedelta(days=30)
# Most events one request may carry (SendGrid and Mailjet batch them, SendGrid below about 1,500
# per post): a bigger post is refused (413) rather than kept waiting.
MAX_EVENTS = 5000

# How the story, the API and the report name each provider ("bounced — reported by Postmark").
PROVIDER_NAMES = {
    "amazon_ses": "Amazon SES",
    "brevo": "Brevo",
    "mailersend": "MailerSend",
    "mailgun": "Mailgun",
    "mailjet": "Mailjet",
    "mailtrap": "Mailtrap",
    "postmark": "Postmark",
    "sendgrid": "SendGrid",
    "sparkpost": "SparkPost",
}
# What each kind of event is called in the story.
KIND_TEXT = {
    ProviderEventKind.DELIVERED: pgettext_lazy("provider event", "delivered"),
    ProviderEventKind.BOUNCED: pgettext_lazy("provider event", "bounced"),
    ProviderEventKind.SOFT_BOUNCED: pgettext_lazy("provider event", "soft-bounced (temporary)"),
    ProviderEventKind.COMPLAINED: pgettext_lazy("provider event", "marked as spam"),
    ProviderEventKind.UNSUBSCRIBED: pgettext_lazy("provider event", "unsubscribed at the provider"),
}


def provider_name(provider: str) -> str:
    return PROVIDER_NAMES.get(provider, provider)


# The event key's unique constraint (migration 0011): its violation is a replay.
_KEY_CONSTRAINT = "cart_recovery_provider_event_key_key"

_SUPPRESSES = {
    ProviderEventKind.BOUNCED: "bounced",
    ProviderEventKind.COMPLAINED: "complained",
    ProviderEventKind.UNSUBSCRIBED: "unsubscribed",
}


@dataclass(frozen=True)
class ReportedEvent:
    """One provider event about one recipient, as plain values."""

    provider: str  # the endpoint's provider name: amazon_ses, postmark, …
    kind: str  # a ProviderEventKind
    email: str
    occurred_at: datetime
    identity: str  # the provider's event id, or a digest of the whole event when it gives none
    provider_message_id: str = ""
    raw: str = ""  # the event as the provider sent it (searched for our Message-ID)
    description: str = ""


def record_events(events: Iterable[ReportedEvent], channels: Iterable[str], *, now: datetime) -> int:
    """Record and act on each event in the ``channels`` whose credentials authenticated it (see the
    module docstring); how many (event, channel) pairs were new."""
    allowed = set(channels)
    new = 0
    for event in events:
        try:
            with get_shop().write_access(), transaction.atomic():  # a refused event: the rest go on
                new += _record(event, allowed, now)
        except (DataError, IntegrityError) as exc:  # this event's values, not the database: skip it
            logger.error("could not record a %s event for %s: %r", event.provider, event.email[:80], exc)
    return new


def _record(event: ReportedEvent, allowed: set[str], now: datetime) -> int:
    message = _matching_message(event, allowed)
    email = normalize_email(event.email or (message.recipient if message else ""))
    if not email:
        return 0
    if message is not None:
        targets = [message.cart.channel_slug]
    elif event.kind in _SUPPRESSES:
        targets = sorted(
            set(
                RecoveryMessage.objects.filter(
                    recipient=email, handed_over_at__isnull=False, cart__channel_slug__in=allowed
                ).values_list("cart__channel_slug", flat=True)
            )
        )
    else:  # a delivery or soft bounce of mail that is not ours says nothing about our reminders
        return 0
    return sum(_record_one(event, channel_slug, email, message, now) for channel_slug in targets)


def _matching_message(event: ReportedEvent, channels: set[str]) -> RecoveryMessage | None:
    mailed = RecoveryMessage.objects.select_related("cart").filter(
        handed_over_at__isnull=False, cart__channel_slug__in=channels
    )
    ours = our_message_ids(event.raw)
    if ours:
        found = mailed.filter(pk__in=ours).order_by("-pk").first()
        if found is not None:
            return found
    if event.provider_message_id:
        # SendGrid's event id for a message extends the id its SMTP relay answered with.
        candidates = {event.provider_message_id, event.provider_message_id.split(".")[0]}
        return mailed.filter(provider_message_id__in=candidates).order_by("-pk").first()
    return None


def _key(event: ReportedEvent, channel_slug: str) -> str:
    text = f"{event.provider}\n{event.identity}\n{event.email.lower()}\n{channel_slug}"
    return hashlib.sha256(text.encode()).hexdigest()


def _record_one(
    event: ReportedEvent, channel_slug: str, email: str, message: RecoveryMessage | None, now: datetime
) -> int:
    """Store the event for the channel and act on it, in one transaction; 0 when it was stored
    before (a replay). Other integrity errors (the message deleted meanwhile) are raised."""
    try:
        with get_shop().write_access(), transaction.atomic():
            if event.kind == ProviderEventKind.SOFT_BOUNCED:
                _lock_address(channel_slug, email)
            ProviderEvent.objects.create(
                key=_key(event, channel_slug),
                provider=event.provider,
                kind=event.kind,
                channel_slug=channel_slug,
                email=email,
                message=message,
                description=event.description[:255],
                occurred_at=event.occurred_at,
                received_at=now,
            )
            reason = _SUPPRESSES.get(ProviderEventKind(event.kind))
            if reason is None and event.kind == ProviderEventKind.SOFT_BOUNCED:
                reason = "bounced" if _soft_bounces(channel_slug, email, now) >= SOFT_BOUNCE_LIMIT else None
            if reason is not None:
                suppress(channel_slug, email, source=provider_source(reason, event.provider))
    except IntegrityError as exc:
        if not _is_replay(exc):
            raise
        return 0  # the key exists: this event was recorded for the channel already
    logger.info("%s reported %s for %s in channel %s", event.provider, event.kind, email, channel_slug)
    return 1


def _is_replay(exc: IntegrityError) -> bool:
    """Whether ``exc`` is the unique violation of the event key (not a foreign key failure)."""
    diag = getattr(exc.__cause__, "diag", None)
    return (
        getattr(exc.__cause__, "sqlstate", None) == "23505"
        and getattr(diag, "constraint_name", "") == _KEY_CONSTRAINT
    )


def _lock_address(channel_slug: str, email: str) -> None:
    """A transaction-scoped advisory lock per (channel, address): two soft bounces reported at once
    count one after the other (READ COMMITTED would let each miss the other's row)."""
    digest = hashlib.sha256(f"cart-recovery-soft-bounce\n{channel_slug}\n{email}".encode()).digest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest[:8], "big", signed=True)])


def _soft_bounces(channel_slug: str, email: str, now: datetime) -> int:
    """Different reminders that soft-bounced lately (unmatched soft bounces are not recorded)."""
    rows = ProviderEvent.objects.filter(
        channel_slug=channel_slug,
        email=email,
        kind=ProviderEventKind.SOFT_BOUNCED,
        message__isnull=False,
        occurred_at__gte=now - SOFT_BOUNCE_PERIOD,
    )
    return rows.aggregate(n=Count("message_id", distinct=True))["n"]
