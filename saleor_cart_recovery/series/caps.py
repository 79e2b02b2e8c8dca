"""What one address has had lately, across all its carts in a channel: reminders handed to the mail
server (the frequency cap) and coupons still valid (one coupon per address at a time).

Both are enforced under a transaction-scoped advisory lock per address, so two workers preparing
carts of the same shopper at once cannot both take the last allowed reminder or both issue a code.
Counting reads the message table's recipient index (``cart_recovery_msg_recipient``).
"""

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db import connection

from ..models import MessageStatus, Reason, RecoveryCart, RecoveryMessage

_M, _C = RecoveryMessage._meta.db_table, RecoveryCart._meta.db_table

# A reminder counts against the cap once handed to the mail server: sent, on the wire now, or
# interrupted on the wire (it may have arrived).
COUNTED = f"""(m.status IN ('{MessageStatus.SENT.value}', '{MessageStatus.SENDING.value}')
    OR (m.status = '{MessageStatus.FAILED.value}' AND m.reason = '{Reason.INTERRUPTED.value}'))"""

_RECENT = f"""
SELECT c.channel_slug, m.recipient, m.handed_over_at
FROM {_M} AS m JOIN {_C} AS c ON c.id = m.cart_id
WHERE m.recipient = ANY(%(emails)s) AND m.handed_over_at > %(since)s AND {COUNTED}
"""

# Used inside the send path's conditional mark (``m``: the message being marked, ``c``: its cart):
# fewer than the cap's count of other reminders to the address in the channel within the period.
UNDER_CAP = f"""(
    SELECT count(*) FROM {_M} AS m2 JOIN {_C} AS c2 ON c2.id = m2.cart_id
    WHERE m2.recipient = %(email)s AND c2.channel_slug = c.channel_slug AND m2.id <> m.id
      AND m2.handed_over_at > %(cap_since)s AND {COUNTED.replace("m.", "m2.")}
) < %(cap_count)s"""

# A coupon counts while valid: issued (its code stored), or reserved by a message being sent (its
# expiry set before the shop creates the voucher, the code stored after: see the send path).
LIVE_COUPON = f"""
SELECT 1 FROM {_M} AS m JOIN {_C} AS c ON c.id = m.cart_id
WHERE m.recipient = %(email)s AND c.channel_slug = %(channel)s AND m.id <> %(message)s
  AND m.voucher_expires_at > %(now)s AND (m.voucher_code <> '' OR m.status = '{MessageStatus.SENDING.value}')
LIMIT 1
"""


def recent_sends(
    addresses: Iterable[tuple[str, str]], since: datetime
) -> dict[tuple[str, str], list[datetime]]:
    """When each ``(channel, address)`` was handed a reminder after ``since``, in one query."""
    pairs = set(addresses)
    found: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    if not pairs:
        return found
    with connection.cursor() as cursor:
        cursor.execute(_RECENT, {"emails": sorted({email for _, email in pairs}), "since": since})
        for channel_slug, email, at in cursor.fetchall():
            if (channel_slug, email) in pairs:
                found[(channel_slug, email)].append(at)
    return found


def lock_address(channel_slug: str, email: str) -> None:
    """Hold the address's advisory lock until the current transaction ends (call inside one)."""
    digest = hashlib.sha256(f"saleor_cart_recovery.address\n{channel_slug}\n{email}".encode()).digest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest[:8], "big", signed=True)])


def coupon_live(channel_slug: str, email: str, *, now: datetime, other_than: int) -> bool:
    """Whether another message to the address in the channel carries (or is getting) a code that
    is still valid."""
    with connection.cursor() as cursor:
        cursor.execute(
            LIVE_COUPON, {"email": email, "channel": channel_slug, "message": other_than, "now": now}
        )
        return cursor.fetchone() is not None
