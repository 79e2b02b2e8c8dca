"""Addresses that asked for no more cart reminders in a channel.

The unsubscribe link and the developer API's ``suppress`` share one function, so both record the
address the same way and stop the address's live series at once; the send task checks the
suppression again right before each send (see :mod:`delivery`).
"""

import logging

from django.db import transaction
from django.utils import timezone

from ..models import CartStatus, Reason, RecoveryCart, Suppression
from ..shop import get_shop

logger = logging.getLogger(__name__)


def normalize_email(email: str) -> str:
    """Addresses are stored and compared lowercased, as the checkout hooks record them."""
    return email.strip().lower()


def suppress(channel_slug: str, email: str, *, source: str) -> int:
    """Record the suppression (once) and stop every live series for the address in the channel.

    Returns how many carts were stopped. Safe to call again: nothing changes the second time.
    """
    now = timezone.now()
    email = normalize_email(email)
    with get_shop().write_access(), transaction.atomic():
        Suppression.objects.get_or_create(
            channel_slug=channel_slug, email=email, defaults={"source": source, "created_at": now}
        )
        stopped = (
            RecoveryCart.objects.filter(
                channel_slug=channel_slug, email=email, status__in=[CartStatus.ACTIVE, CartStatus.STOPPED]
            )
            .exclude(stop_reason=Reason.UNSUBSCRIBED)
            .update(
                status=CartStatus.STOPPED, stop_reason=Reason.UNSUBSCRIBED, next_due_at=None, updated_at=now
            )
        )
    logger.info("unsubscribed %s in channel %s (%s)", email, channel_slug, source)
    return stopped


def unsuppress(channel_slug: str, email: str) -> bool:
    """Let the address get reminders again for carts it starts from now on; series stopped by the
    suppression stay stopped. Returns whether a suppression existed."""
    email = normalize_email(email)
    with get_shop().write_access():
        deleted, _ = Suppression.objects.filter(channel_slug=channel_slug, email=email).delete()
    if deleted:
        logger.info("unsuppressed %s in channel %s", email, channel_slug)
    return bool(deleted)


def is_suppressed(channel_slug: str, email: str) -> bool:
    return Suppression.objects.filter(channel_slug=channel_slug, email=normalize_email(email)).exists()
