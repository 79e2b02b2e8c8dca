"""Which arm a cart is in: holdout, cadence and subject variant — all decided at its first activity.

Intent to treat: an arm is the set of carts *assigned* to it, whatever happened to them later, so
the assignment may depend on nothing that happens after the cart appeared.

- **Holdout** is per shopper: a keyed hash of the channel and the normalised address (keyed with
  Django's ``SECRET_KEY``, so nobody can compute it from an address), compared with the share.
  The same shopper is in the same group for all their carts and across experiment versions; a
  change of the share only moves the shoppers between the old and the new threshold.
- **Cadence and subject variants** are stable hashes of the checkout token (the cadence also of the
  experiment version); once the automatic winner decided an arm set (:mod:`.winners`), carts that
  arrive after the decision get the winner instead, and are no longer part of that comparison.
"""

import hashlib
from datetime import datetime

from django.utils.crypto import salted_hmac

from ..settings.channel import RecoverySettings
from .winners import Decision

BUCKETS = 10_000  # holdout shares have two decimals: 12.34 % is 1234 of 10,000 buckets


def shopper_bucket(channel_slug: str, email: str) -> int:
    """The shopper's fixed place in ``0..BUCKETS-1`` (``email`` already normalised)."""
    digest = salted_hmac(
        "saleor_cart_recovery.holdout", f"{channel_slug}\n{email}", algorithm="sha256"
    ).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_holdout(channel_slug: str, email: str, holdout_percent) -> bool:
    """Whether a new cart of this shopper joins the control group."""
    return shopper_bucket(channel_slug, email) < int(holdout_percent * 100)


def pick_variant(checkout_token: str, experiment: str, variants: int) -> int:
    """Deterministic, uniform assignment: the same cart always sees the same variant."""
    if variants <= 1:
        return 0
    digest = hashlib.sha256(f"{experiment}:{checkout_token}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % variants


def pick_cadence(checkout_token: str, settings: RecoverySettings) -> str:
    """The cadence a new cart is randomised to (``""`` when no cadences are tested); a new
    experiment version reshuffles. (The hook's upsert replaces it by a decided winner.)"""
    cadences = settings.experiments.cadences
    if not cadences:
        return ""
    index = pick_variant(checkout_token, f"cadence:{settings.experiments.version}", len(cadences))
    return cadences[index].label


def pick_subject(
    checkout_token: str, step: int, variants: int, created_at: datetime, winner: Decision | None
) -> int:
    """The subject variant of ``step`` for a cart first seen at ``created_at``: the decided winner
    for carts that arrived after the decision, else the cart's own hash."""
    if winner is not None and created_at >= winner.decided_at and int(winner.arm) < variants:
        return int(winner.arm)
    return pick_variant(checkout_token, f"subject:{step}", variants)
