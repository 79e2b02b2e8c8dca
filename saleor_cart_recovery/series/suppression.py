"""Addresses that get no more cart reminders in a channel: they unsubscribed, bounced or complained.

The unsubscribe link, the developer API's ``suppress``, a hard bounce and the mail provider's
reports (:mod:`.provider_events`) share :func:`suppress`, so
each records the address the same way and stops the address's live series at once; the send path
checks :func:`suppression_reason` again right before each send (see :mod:`.delivery`).

An erased shopper's suppressions stay, with the address replaced by :func:`hashed_address` (a keyed
hash: not readable, still matched), so the opt-out outlives the erasure (invariant 10).
"""

import logging
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

from ..models import BOUNCE_SOURCES, CartStatus, Reason, RecoveryCart, Suppression
from ..shop import get_shop
from .decisions import live_series

logger = logging.getLogger(__name__)


def normalize_email(email: str) -> str:
    """Addresses are stored and compared lowercased, as the checkout hooks record them."""
    return email.strip().lower()


def hashed_address(email: str) -> str:
    """The address as an erasure keeps it: an HMAC keyed with ``SECRET_KEY`` (rotating the key
    forgets the erased addresses' suppressions; documented)."""
    digest = salted_hmac("saleor_cart_recovery.suppression", normalize_email(email), algorithm="sha256")
    return f"hmac:{digest.hexdigest()}"


def provider_source(reason: str, provider: str) -> str:
    """The ``source`` of a suppression the mail provider reported: ``bounced:postmark``."""
    return f"{reason}:{provider}"


def reason_for(source: str) -> str:
    """The stop / skip reason a suppression with this ``source`` gives: ``bounced``,
    ``complained`` or ``unsubscribed``."""
    reason, _, provider = source.partition(":")
    if provider:
        return reason
    return Reason.BOUNCED if source in BOUNCE_SOURCES else Reason.UNSUBSCRIBED


def reported_by(source: str) -> str | None:
    """The provider that reported the suppression (``postmark``), ``None`` for our own sources."""
    return source.partition(":")[2] or None


def suppress(channel_slug: str, email: str, *, source: str) -> int:
    """Record the suppression (once) and stop every live series for the address in the channel.

    ``source`` says why (``link``, ``one_click``, ``api``, ``bounced``, or a provider's report from
    :func:`provider_source`). Returns how many carts
    were stopped. Safe to call again: nothing changes the second time.
    """
    now = timezone.now()
    email = normalize_email(email)
    reason = reason_for(source)
    with get_shop().write_access(), transaction.atomic():
        Suppression.objects.get_or_create(
            channel_slug=channel_slug, email=email, defaults={"source": source, "created_at": now}
        )
        # Live series only: a cart stopped for another reason (bought, stopped by staff, checkout
        # deleted) keeps its reason.
        stopped = RecoveryCart.objects.filter(live_series(), channel_slug=channel_slug, email=email).update(
            status=CartStatus.STOPPED, stop_reason=reason, next_due_at=None, updated_at=now
        )
    logger.info("suppressed %s in channel %s (%s)", email, channel_slug, source)
    return stopped


def unsuppress(channel_slug: str, email: str) -> bool:
    """Let the address get reminders again for carts it starts from now on; series stopped by the
    suppression stay stopped. Returns whether a suppression existed."""
    email = normalize_email(email)
    with get_shop().write_access():
        deleted, _ = Suppression.objects.filter(
            channel_slug=channel_slug, email__in=(email, hashed_address(email))
        ).delete()
    if deleted:
        logger.info("unsuppressed %s in channel %s", email, channel_slug)
    return bool(deleted)


def suppression_reasons(addresses: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """``unsubscribed``, ``bounced`` or ``complained`` per suppressed ``(channel_slug, email)`` pair (emails
    normalised in the keys), in one query; pairs that may be mailed are absent."""
    pairs = {(channel_slug, normalize_email(email)) for channel_slug, email in addresses}
    if not pairs:
        return {}
    stored = {}  # the stored form (as written, or hashed by an erasure) → the address asked about
    wanted = Q()
    for channel_slug, email in pairs:
        hashed = hashed_address(email)
        stored[(channel_slug, email)] = stored[(channel_slug, hashed)] = (channel_slug, email)
        wanted |= Q(channel_slug=channel_slug, email__in=(email, hashed))
    rows = Suppression.objects.filter(wanted).values_list("channel_slug", "email", "source")
    return {stored[(channel_slug, email)]: reason_for(source) for channel_slug, email, source in rows}


def suppression_reason(channel_slug: str, email: str) -> str | None:
    """``unsubscribed``, ``bounced`` or ``complained`` for a suppressed address, ``None`` otherwise."""
    return suppression_reasons([(channel_slug, email)]).get((channel_slug, normalize_email(email)))


def is_suppressed(channel_slug: str, email: str) -> bool:
    return suppression_reason(channel_slug, email) is not None
