"""What the checkout and order hooks record: no rendering, no network, a bounded few statements.

These run inside the shopper's request: :func:`record_activity` is one SQL statement that waits at
most ``LOCK_TIMEOUT`` for a lock of ours; :func:`record_order` is one or two indexed UPDATEs. Their
cost does not depend on how many carts are stored.
"""

from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Exists

from ..experiments.assignment import in_holdout, pick_cadence
from ..experiments.winners import CADENCE
from ..models import CartStatus, Reason, RecoveryCart, RecoveryWinner
from ..settings.channel import RecoverySettings
from ..shop import OrderRef
from .decisions import accepts_activity_sql
from .suppression import normalize_email

# Orders placed from another checkout still stop a cart of the same shopper that was active this
# recently (the shopper bought elsewhere, e.g. on another device).
EMAIL_MATCH_WINDOW = timedelta(days=7)

# The longest the hook waits for a cart row another transaction of ours has locked (they are all
# short); past it the statement fails, the hook logs it and the shopper's mutation goes on.
LOCK_TIMEOUT = "1s"

_TABLE = RecoveryCart._meta.db_table
_ACCEPTS = accepts_activity_sql("c")
# One statement: the ``wait`` row sets the lock timeout before the upsert can wait on a row lock,
# and RETURNING puts the previous value back. NULL keeps the current timeout. A new cart's arms are
# decided here, at its first activity: the cadence is the decided winner's (one lookup by key, while
# the owner keeps the automatic winner on) or the cart's own draw. A converted cart keeps the
# activity its order was matched against: the report credits an order to the shopper's cart with
# the latest activity before it. An activity older than the stored one changes nothing: a host that
# delivers events late or twice (the App's webhooks, timed by the checkout's own updatedAt) never
# puts an older checkout state over a newer one; RETURNING then returns no row, and the lock timeout
# set for the statement ends with its transaction all the same.
_UPSERT = f"""
WITH wait AS (
    SELECT current_setting('lock_timeout') AS previous,
        set_config('lock_timeout', COALESCE(%(lock_timeout)s, current_setting('lock_timeout')), true)
)
INSERT INTO {_TABLE} AS c (checkout_token, channel_slug, email, language_code, status, holdout,
    experiment, cadence, last_activity_at, next_due_at, created_at, updated_at)
SELECT %(token)s, %(channel)s, %(email)s, %(language)s, 'active', %(holdout)s, %(experiment)s,
    COALESCE((SELECT w.arm FROM {RecoveryWinner._meta.db_table} w WHERE %(use_winner)s
              AND w.channel_slug = %(channel)s AND w.experiment = %(experiment)s
              AND w.arm_set = '{CADENCE}'), %(cadence)s),
    %(at)s, %(wake)s, %(at)s, %(at)s
FROM wait
ON CONFLICT (checkout_token) DO UPDATE SET
    channel_slug = EXCLUDED.channel_slug,
    email = EXCLUDED.email,
    language_code = EXCLUDED.language_code,
    last_activity_at = CASE WHEN c.status = 'converted' THEN c.last_activity_at
                            ELSE EXCLUDED.last_activity_at END,
    updated_at = EXCLUDED.updated_at,
    next_due_at = CASE WHEN {_ACCEPTS} THEN EXCLUDED.next_due_at ELSE c.next_due_at END,
    stop_reason = CASE WHEN {_ACCEPTS} THEN '' ELSE c.stop_reason END,
    status = CASE WHEN {_ACCEPTS} THEN 'active' ELSE c.status END
WHERE c.last_activity_at <= EXCLUDED.last_activity_at
RETURNING (SELECT set_config('lock_timeout', previous, true) FROM wait)
"""


def record_activity(
    *,
    checkout_token: str,
    channel_slug: str,
    email: str,
    language_code: str,
    at: datetime,
    settings: RecoverySettings,
) -> None:
    """Note that the shopper touched the cart at ``at``; restarts the quiet-time clock. Ignored when
    the cart's stored activity is later than ``at`` (an older state delivered late).

    ``next_due_at`` becomes the earliest moment any step could be due; the dispatcher computes
    the exact time for the cart's next step then (it knows how many steps went out already).
    """
    address = normalize_email(email)
    with connection.cursor() as cursor:
        cursor.execute(
            _UPSERT,
            {
                # Saleor runs the hooks after its transaction committed, so the statement is its own
                # transaction and a timeout fails nothing else. Inside a caller's transaction a
                # timeout would abort the caller's work: there the caller's own setting applies.
                "lock_timeout": None if connection.in_atomic_block else LOCK_TIMEOUT,
                "token": checkout_token,
                "channel": channel_slug,
                "email": address,
                "language": language_code or "en",
                "at": at,
                "wake": at + settings.earliest_first_delay(),
                # Set on INSERT only: a cart stays in the group, experiment version and cadence
                # it started in.
                "holdout": in_holdout(channel_slug, address, settings.holdout_percent),
                "experiment": settings.experiments.version,
                "cadence": pick_cadence(checkout_token, settings),
                "use_winner": settings.experiments.auto_winner,
            },
        )


def record_order(order: OrderRef, *, channel_slug: str, at: datetime) -> int:
    """Stop the series for the order's checkout, or for the buyer's recent carts in the channel.

    Returns how many carts were stopped. Converted carts keep the real order total for reporting.
    Idempotent: an order already recorded on a cart of the channel changes nothing, so a second
    call (the hook and the send path both saw it) does not convert the shopper's other carts.
    """
    common = {
        "status": CartStatus.CONVERTED,
        "stop_reason": Reason.PURCHASED,
        "next_due_at": None,
        "order_id": order.id,
        "order_number": order.number,
        "order_total": order.total,
        "order_currency": order.currency,
        "order_refunded": order.refunded,
        "order_cancelled": order.cancelled,
        "converted_at": order.created_at,
        "updated_at": at,
    }
    live = RecoveryCart.objects.exclude(status=CartStatus.CONVERTED)
    stopped = 0
    if order.checkout_token:
        stopped = live.filter(checkout_token=order.checkout_token).update(conversion_match="token", **common)
    if not stopped and order.email:
        recorded = RecoveryCart.objects.filter(channel_slug=channel_slug, order_id=order.id)
        stopped = (
            live.filter(
                channel_slug=channel_slug,
                email=normalize_email(order.email),
                last_activity_at__gte=order.created_at - EMAIL_MATCH_WINDOW,
            )
            .exclude(Exists(recorded))
            .update(conversion_match="email", **common)
        )
    return stopped


def record_purchase(order: OrderRef, *, cart_id: int, channel_slug: str, at: datetime) -> None:
    """An order found for a cart right before its step (sent or held out): recorded like the order
    hook would, and the cart's series ends even when the order is too far from this cart's activity
    for the email match to convert it."""
    record_order(order, channel_slug=channel_slug, at=at)
    RecoveryCart.objects.filter(pk=cart_id).exclude(status=CartStatus.CONVERTED).update(
        status=CartStatus.STOPPED, stop_reason=Reason.PURCHASED, next_due_at=None, updated_at=at
    )


def record_refund(order: OrderRef, *, at: datetime) -> int:
    """Bring the carts an order was recorded on up to date with its refunds and cancellation. The
    hooks pass the order as it is now; refunds only grow and a cancellation stays, so a repeated,
    late or concurrent hook never takes a newer state back. Returns how many carts changed; an order
    we never matched changes nothing."""
    carts = RecoveryCart.objects.filter(order_id=order.id)
    changed = carts.filter(order_refunded__lt=order.refunded).update(
        order_refunded=order.refunded, updated_at=at
    )
    if order.cancelled:
        changed += carts.filter(order_cancelled=False).update(order_cancelled=True, updated_at=at)
    return changed
