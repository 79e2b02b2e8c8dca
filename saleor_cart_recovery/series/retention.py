"""Forgetting: a shopper's erasure and the owner's retention period.

- :func:`erase_address` (Saleor's ``customer_deleted`` / ``account_deleted`` hooks, and
  ``cart_recovery_cleanup --erase``): every cart and message of the address, in every channel, is
  deleted, and what its mail provider reported about it; its suppressions stay, with the address
  replaced by a keyed hash, so the opt-out is still honoured (invariant 10).
- :func:`cleanup` (daily beat task and ``cart_recovery_cleanup``): carts untouched for longer than
  their channel's ``retention``, with nothing left to send, are deleted with their messages, in
  bounded batches, and the provider events older than the retention; and the plugin's vouchers that
  expired unused.

Deleted carts leave the report (its numbers cover the carts still stored).
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext, ngettext

from ..models import (
    UNSENT,
    ProviderEvent,
    ProviderEventKind,
    RecoveryCart,
    RecoveryMessage,
    Suppression,
    channels_in,
)
from ..settings.channel import RecoverySettings
from ..settings.registry import BY_NAME
from ..shop import Shop
from .suppression import hashed_address, normalize_email

logger = logging.getLogger(__name__)

# Carts deleted per statement: short transactions, so hooks never wait long on them.
BATCH_SIZE = 1000
# A cleanup run stops after this long; the next day's run goes on where it stopped.
BUDGET = timedelta(minutes=10)
# Channels whose settings cannot be read (plugin off, misconfigured) keep carts this long.
DEFAULT_RETENTION: timedelta = BY_NAME["retention"].parse(BY_NAME["retention"].default)


@dataclass(frozen=True)
class Erased:
    carts: int
    messages: int
    suppressions_kept: int  # now stored as a keyed hash

    def __str__(self):
        return gettext("erased %(carts)s and %(messages)s; kept %(kept)s") % {
            "carts": ngettext("%(n)s cart", "%(n)s carts", self.carts) % {"n": self.carts},
            "messages": ngettext("%(n)s message", "%(n)s messages", self.messages) % {"n": self.messages},
            "kept": ngettext(
                "%(n)s suppression as a keyed hash",
                "%(n)s suppressions as a keyed hash",
                self.suppressions_kept,
            )
            % {"n": self.suppressions_kept},
        }


def erase_address(email: str) -> Erased:
    """Delete everything stored about ``email`` except that it must not be mailed. Idempotent."""
    address = normalize_email(email)
    if not address:
        return Erased(0, 0, 0)
    hashed = hashed_address(address)
    # every channel by name, so the (channel, address) indexes answer: no scan inside Saleor's deletion
    carts_in, suppressions_in = channels_in(RecoveryCart), channels_in(Suppression)
    events_in = channels_in(ProviderEvent)
    with transaction.atomic():
        ProviderEvent.objects.filter(channel_slug__in=events_in, email=address).delete()
        carts = RecoveryCart.objects.filter(channel_slug__in=carts_in, email=address)
        messages = RecoveryMessage.objects.filter(Q(cart__in=carts) | Q(recipient=address)).count()
        deleted_carts = carts.count()
        RecoveryMessage.objects.filter(recipient=address).delete()
        carts.delete()
        kept = 0
        for suppression in Suppression.objects.filter(channel_slug__in=suppressions_in, email=address):
            try:
                with transaction.atomic():  # the hash may be there already (erased twice)
                    Suppression.objects.filter(pk=suppression.pk).update(email=hashed)
            except IntegrityError:
                suppression.delete()
            kept += 1
    logger.info("cart recovery: erased an address (%s cart(s), %s message(s))", deleted_carts, messages)
    return Erased(deleted_carts, messages, kept)


@dataclass
class Cleaned:
    carts: int = 0
    vouchers: int = 0
    finished: bool = True  # False: the budget ran out; the next run goes on

    def __str__(self):
        counts = {
            "carts": ngettext("%(n)s cart", "%(n)s carts", self.carts) % {"n": self.carts},
            "vouchers": ngettext(
                "%(n)s expired unused voucher", "%(n)s expired unused vouchers", self.vouchers
            )
            % {"n": self.vouchers},
        }
        if self.finished:
            return gettext("deleted %(carts)s past retention and %(vouchers)s") % counts
        return (
            gettext(
                "deleted %(carts)s past retention and %(vouchers)s "
                "(stopped at the time budget; the next run goes on)"
            )
            % counts
        )


def _delete_batch(rows, batch_size: int) -> int:
    """Delete up to ``batch_size`` of ``rows`` (a queryset of one model); how many went."""
    ids = list(rows.values_list("pk", flat=True)[:batch_size])
    return rows.model.objects.filter(pk__in=ids).delete()[0] if ids else 0


def cleanup(
    now: datetime,
    settings_for: Callable[[str], RecoverySettings | None],
    shop: Shop,
    *,
    batch_size: int = BATCH_SIZE,
    budget: timedelta = BUDGET,
) -> Cleaned:
    """Delete what the owners' retention periods say is old, channel by channel, in batches."""
    deadline = time.monotonic() + budget.total_seconds()
    result = Cleaned()
    channels = RecoveryCart.objects.order_by().values_list("channel_slug", flat=True).distinct()
    for channel_slug in sorted(channels):
        settings = settings_for(channel_slug)
        before = now - (settings.retention if settings else DEFAULT_RETENTION)
        old = (
            RecoveryCart.objects.filter(
                channel_slug=channel_slug,
                updated_at__lt=before,
                last_activity_at__lt=before,
                next_due_at__isnull=True,
            )
            .exclude(messages__status__in=UNSENT)
            .order_by("id")
        )
        for kind in ProviderEventKind.values:  # through the (channel, kind, time) index
            events = ProviderEvent.objects.filter(
                channel_slug=channel_slug, kind=kind, occurred_at__lt=before
            )
            while _delete_batch(events, batch_size) == batch_size:
                if time.monotonic() >= deadline:
                    result.finished = False
                    return result
        while True:
            ids = list(old.values_list("id", flat=True)[:batch_size])
            if ids:
                with transaction.atomic():
                    RecoveryMessage.objects.filter(cart_id__in=ids).delete()
                    result.carts += (
                        RecoveryCart.objects.filter(id__in=ids).delete()[1].get(RecoveryCart._meta.label, 0)
                    )
            if len(ids) < batch_size:
                break
            if time.monotonic() >= deadline:
                result.finished = False
                return result
    result.vouchers = shop.delete_expired_vouchers(now)
    return result
