"""The periodic dispatcher: turns due carts into planned messages and hands messages to senders.

Both passes read through partial indexes (``next_due_at``, ``status='scheduled'``), lock rows with
``FOR UPDATE SKIP LOCKED`` in bounded batches and enqueue only after commit, so two dispatchers
never plan or enqueue the same work and the cost follows what is due, not what is stored.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, Min
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from ..experiments.assignment import pick_cadence, pick_subject
from ..experiments.winners import Decisions, read_winners, subject_set
from ..models import UNSENT, CartStatus, MessageStatus, Reason, RecoveryCart, RecoveryMessage
from ..settings.channel import RecoverySettings
from ..shop import OrderLookup, Shop, get_shop, usable_settings
from .activity import record_purchase
from .decisions import next_due
from .delivery import MAX_ATTEMPTS, finish_if_done

logger = logging.getLogger(__name__)

# Carts locked per planning transaction: planning a batch is four statements and a little Python
# per row (about 0.1 s for 1,000), short enough that a hook never waits long on our locks.
BATCH_SIZE = 1000
# Messages per send task: one SMTP connection carries them all (each is still claimed,
# re-checked and recorded on its own).
SEND_BATCH = 50
# A cycle plans and hands out everything that is due, in batches, until nothing is left or this
# much time has passed (beat starts the next cycle a minute later; what is left waits for it and
# is reported as backlog).
CYCLE_BUDGET = timedelta(seconds=45)
# A message handed to Celery but not claimed within this time is handed out again (the task
# was lost, e.g. broker restart). Send tasks expire a little earlier (tasks.SEND_EXPIRES), so a
# lost task and its replacement never both wait in the queue, and the claim makes a second
# delivery a no-op anyway.
LEASE = timedelta(minutes=10)
# A claim that has not reached the SMTP hand-over in this time belongs to a worker that died while
# preparing: nothing was sent, so the message is handed out again. (A live worker touches the
# claims of its batch that wait for their turn every minute, see delivery.KEEP_CLAIMS.)
PREPARE_TIMEOUT = timedelta(minutes=10)
# A claim handed to the mail server this long ago without an outcome died mid-send: the mail may
# or may not have left, so it is recorded as failed rather than sent twice. A live worker never
# takes this long: a conversation is about five steps of at most MAX_SMTP_TIMEOUT (60 s) each.
SENDING_TIMEOUT = timedelta(minutes=10)
# A cart whose previous step still waits for a retry is looked at again after this long: steps
# go out in order, never overtaking one another.
PENDING_RECHECK = timedelta(minutes=2)


@dataclass
class DispatchResult:
    planned: int = 0  # messages created for due steps
    rearmed: int = 0  # carts woken early and given their exact next due time
    stopped: int = 0  # carts stopped because the plugin is off in their channel
    enqueued: list[int] = field(default_factory=list)  # message ids handed to senders
    interrupted: int = 0  # sends handed to the mail server that never finished
    reclaimed: int = 0  # claims that died before the hand-over, handed out again
    held_out: int = 0  # of the planned messages, recorded as skipped for the holdout group
    waiting: int = 0  # carts whose next step waits for an earlier step's retry
    failed: int = 0  # carts whose planning raised (recorded planning_failed, logged)
    deferred: int = 0  # carts of channels whose settings could not be read this cycle
    tasks: int = 0  # send tasks the enqueued messages went out in (one per channel batch)
    backlog: "Backlog | None" = None  # what is still waiting after the cycle

    def __str__(self):
        n = len(self.enqueued)
        parts = [
            ngettext(
                "planned %(n)s message (%(held)s held out)",
                "planned %(n)s messages (%(held)s held out)",
                self.planned,
            )
            % {"n": self.planned, "held": self.held_out},
            ngettext("re-armed %(n)s cart", "re-armed %(n)s carts", self.rearmed) % {"n": self.rearmed},
            ngettext("stopped %(n)s cart", "stopped %(n)s carts", self.stopped) % {"n": self.stopped},
            # two counts, each with its plural: the tasks are a phrase of their own ("in 2 tasks")
            ngettext("enqueued %(n)s send in %(tasks)s", "enqueued %(n)s sends in %(tasks)s", n)
            % {"n": n, "tasks": ngettext("%(n)s task", "%(n)s tasks", self.tasks) % {"n": self.tasks}},
            ngettext(
                "marked %(n)s interrupted send failed",
                "marked %(n)s interrupted sends failed",
                self.interrupted,
            )
            % {"n": self.interrupted},
            ngettext(
                "handed out %(n)s abandoned claim again",
                "handed out %(n)s abandoned claims again",
                self.reclaimed,
            )
            % {"n": self.reclaimed},
            ngettext("%(n)s cart waits for a retry", "%(n)s carts wait for a retry", self.waiting)
            % {"n": self.waiting},
            ngettext("%(n)s cart failed to plan", "%(n)s carts failed to plan", self.failed)
            % {"n": self.failed},
            gettext("%(n)s deferred") % {"n": self.deferred},
        ]
        text = ", ".join(parts)
        if self.backlog is None:
            return text
        return gettext("%(result)s; backlog: %(backlog)s") % {"result": text, "backlog": self.backlog}


@dataclass(frozen=True)
class Backlog:
    """Work waiting right now: carts due but not yet planned, and planned messages not yet sent
    (waiting for a worker, a retry or their send); ``oldest_due`` is when the longest-waiting piece of
    work that could run now was due (a due cart, or a message ready to be handed out)."""

    due_unplanned: int
    planned_unsent: int
    oldest_due: datetime | None

    def __str__(self):
        due, unsent = self.due_unplanned, self.planned_unsent
        counts = {
            "due": ngettext("%(n)s due cart", "%(n)s due carts", due) % {"n": due},
            "unsent": ngettext("%(n)s message", "%(n)s messages", unsent) % {"n": unsent},
        }
        if not self.oldest_due:
            return gettext("%(due)s not yet planned, %(unsent)s not yet sent") % counts
        return gettext("%(due)s not yet planned, %(unsent)s not yet sent, oldest due at %(when)s UTC") % {
            **counts,
            "when": f"{self.oldest_due:%Y-%m-%d %H:%M:%S}",
        }


def backlog(now: datetime, channel_slug: str | None = None) -> Backlog:
    """What waits at ``now`` (in one channel, or all). Each count and minimum reads one partial
    index (due carts, scheduled messages, messages being sent), so it costs what is waiting, not
    what is stored."""
    carts = RecoveryCart.objects.filter(next_due_at__lte=now)
    scheduled = RecoveryMessage.objects.filter(status=MessageStatus.SCHEDULED)
    sending = RecoveryMessage.objects.filter(status=MessageStatus.SENDING)
    if channel_slug is not None:
        carts = carts.filter(channel_slug=channel_slug)
        scheduled = scheduled.filter(cart__channel_slug=channel_slug)
        sending = sending.filter(cart__channel_slug=channel_slug)
    due = carts.aggregate(count=Count("pk"), oldest=Min("next_due_at"))
    ready = scheduled.filter(attempt_after__lte=now).aggregate(oldest=Min("attempt_after"))["oldest"]
    oldest = [value for value in (due["oldest"], ready) if value is not None]
    return Backlog(due["count"], scheduled.count() + sending.count(), min(oldest) if oldest else None)


def dispatch(
    *,
    now: datetime | None = None,
    send: Callable[[list[int]], None],
    batch_size: int = BATCH_SIZE,
    send_batch: int = SEND_BATCH,
    budget: timedelta = CYCLE_BUDGET,
) -> DispatchResult:
    """Run one cycle. ``send`` is called with each batch of ready message ids (at most
    ``send_batch``, all of one channel) after their lease committed (the beat task passes
    :func:`saleor_cart_recovery.tasks.enqueue_send`). Everything due is planned and handed out
    unless the cycle runs past ``budget``; the result reports what is left."""
    now = now or timezone.now()
    deadline = time.monotonic() + budget.total_seconds()
    shop = get_shop()
    result = DispatchResult()
    settings_cache: dict[str, tuple[RecoverySettings | None, str | None]] = {}

    def channel_settings(slug: str) -> tuple[RecoverySettings | None, str | None]:
        """Settings or why not, read once per channel and cycle (a broken channel is logged once);
        ``(None, None)`` when reading them failed for a passing reason: try again next cycle."""
        if slug not in settings_cache:
            try:
                settings_cache[slug] = usable_settings(slug, shop)
            except Exception:
                logger.exception("cart recovery: could not read the settings of channel %s", slug)
                settings_cache[slug] = (None, None)
        return settings_cache[slug]

    with shop.write_access():
        after = datetime.min.replace(tzinfo=UTC)
        while True:
            planned, after = _plan_batch(shop, now, after, batch_size, channel_settings, result)
            if planned < batch_size or time.monotonic() >= deadline:
                break
        while _enqueue_batch(now, batch_size, send_batch, send, result) == batch_size:
            if time.monotonic() >= deadline:
                break
        result.interrupted, result.reclaimed = _recover_stale_claims(now)
        result.backlog = backlog(now)
    return result


@dataclass(slots=True)
class _Due:
    """A due cart as the planning pass reads it (plain values, one row of the locking query) and
    the changes planning makes to it, written back with the batch."""

    id: int
    checkout_token: str
    channel_slug: str
    status: str
    stop_reason: str
    email: str
    language_code: str
    last_activity_at: datetime
    holdout: bool
    experiment: str
    cadence: str
    created_at: datetime
    steps_planned: int
    last_planned_at: datetime | None
    waiting: bool  # an earlier step is still scheduled or being sent
    was_due_at: datetime  # its next_due_at when locked (the batch's position in the index)
    next_due_at: datetime | None = None


# Locks a batch of due carts (through the partial index on next_due_at) and reads what planning
# needs from the locked rows themselves (their latest version, should a hook have just changed
# one), with whether an earlier step of each still waits — looked up for the locked rows only,
# through the message table's cart index, whatever the size of the message history. ``after`` is
# where the cycle's previous batch ended in the index: the carts it planned left dead index entries
# behind (their next_due_at moved on), and starting past them keeps each batch as cheap as the first.
_LOCK_DUE = f"""
WITH due AS (
    SELECT id, checkout_token, channel_slug, status, stop_reason, email, language_code, last_activity_at,
           holdout, experiment, cadence, created_at, steps_planned, last_planned_at, next_due_at
    FROM {RecoveryCart._meta.db_table}
    WHERE next_due_at <= %(now)s AND next_due_at >= %(after)s
    ORDER BY next_due_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
SELECT due.id, due.checkout_token, due.channel_slug, due.status, due.stop_reason, due.email,
       due.language_code, due.last_activity_at, due.holdout, due.experiment, due.cadence, due.created_at,
       due.steps_planned, due.last_planned_at, w.waiting IS NOT NULL AS waiting, due.next_due_at
FROM due
LEFT JOIN LATERAL (
    SELECT 1 AS waiting FROM {RecoveryMessage._meta.db_table} m
    WHERE m.cart_id = due.id AND m.status = ANY(%(waiting)s)
    LIMIT 1
) w ON true
"""

# Creates the batch's messages in one statement (a step planned twice is a conflict: skipped).
_INSERT_MESSAGES = f"""
INSERT INTO {RecoveryMessage._meta.db_table} (cart_id, step, status, reason, variant, content,
    voucher_code, clicks, subject, recipient, attempts, error, planned_at, attempt_after, updated_at)
SELECT v.cart_id, v.step, v.status, v.reason, v.variant, %(content)s, '', 0, '', '', 0, '',
    %(now)s, %(now)s, %(now)s
FROM unnest(%(cart_id)s::bigint[], %(step)s::int[], %(status)s::varchar[], %(reason)s::varchar[],
            %(variant)s::int[]) AS v(cart_id, step, status, reason, variant)
ON CONFLICT DO NOTHING
"""


@dataclass(frozen=True, slots=True)
class _Planned:
    """A message planning decided to create (see ``_INSERT_MESSAGES`` for the rest of its row)."""

    cart_id: int
    step: int
    status: str
    reason: str
    variant: int


# What a new message's content is until it is prepared (the model's default).
CONTENT_DEFAULT = RecoveryMessage._meta.get_field("content").default

# Writes the whole batch's planning back in one statement.
_WRITTEN_BACK = ("id", "status", "stop_reason", "next_due_at", "steps_planned", "last_planned_at", "cadence")
_WRITE_BACK = f"""
UPDATE {RecoveryCart._meta.db_table} AS c
SET status = v.status, stop_reason = v.stop_reason, next_due_at = v.next_due_at,
    steps_planned = v.steps_planned, last_planned_at = v.last_planned_at, cadence = v.cadence,
    updated_at = %(now)s
FROM unnest(%(id)s::bigint[], %(status)s::varchar[], %(stop_reason)s::varchar[],
            %(next_due_at)s::timestamptz[], %(steps_planned)s::int[], %(last_planned_at)s::timestamptz[],
            %(cadence)s::varchar[])
     AS v(id, status, stop_reason, next_due_at, steps_planned, last_planned_at, cadence)
WHERE c.id = v.id
"""


def _plan_batch(
    shop: Shop, now, after: datetime, batch_size, channel_settings, result: DispatchResult
) -> tuple[int, datetime]:
    """Plan one batch set-wise: one locking read, one read of the automatic winner's decisions,
    the decisions in Python over plain rows, one INSERT of the new messages and one UPDATE of the
    carts; then, after commit, the order check of the batch's held-out steps."""
    with transaction.atomic(), connection.cursor() as cursor:
        # Short, simple statements: compiling them (PostgreSQL's JIT, triggered by big row
        # estimates) would cost more than running them.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(_LOCK_DUE, {"now": now, "after": after, "limit": batch_size, "waiting": list(UNSENT)})
        carts = [_Due(*row) for row in cursor.fetchall()]
        winners = read_winners({(cart.channel_slug, cart.experiment) for cart in carts})
        messages = []
        for cart in carts:
            if cart.waiting:
                # Steps in order: the next one waits until the earlier one is sent or given up.
                cart.next_due_at = now + PENDING_RECHECK
                result.waiting += 1
                continue
            try:
                message = _plan_cart(
                    cart, now, channel_settings, winners[(cart.channel_slug, cart.experiment)], result
                )
            except Exception:
                # One bad cart harms only itself (invariant 9): recorded, logged, the batch goes on.
                logger.exception("cart recovery: could not plan cart %s", cart.checkout_token)
                cart.status, cart.stop_reason, cart.next_due_at = (
                    CartStatus.STOPPED,
                    Reason.PLANNING_FAILED,
                    None,
                )
                result.failed += 1
                continue
            if message is not None:
                messages.append(message)
        if messages:
            columns = {name: [getattr(m, name) for m in messages] for name in _Planned.__slots__}
            cursor.execute(_INSERT_MESSAGES, {"now": now, "content": CONTENT_DEFAULT, **columns})
        if carts:
            values = {name: [getattr(cart, name) for cart in carts] for name in _WRITTEN_BACK}
            cursor.execute(_WRITE_BACK, {"now": now, **values})
    held_out = {m.cart_id for m in messages if m.reason == Reason.HOLDOUT}
    _check_held_out_orders(shop, [cart for cart in carts if cart.id in held_out], now)
    return len(carts), max((cart.was_due_at for cart in carts), default=after)


def _check_held_out_orders(shop: Shop, held: list[_Due], now) -> None:
    """The order check a reminder gets right before it goes out, for the held-out carts' steps too,
    at the moment their email would have gone out: an order the hook missed is recorded for both
    groups alike (the step becomes ``skipped``/``purchased``, as a reminded cart's would), so the
    holdout is not left without the orders the send path finds for reminded carts.

    After the planning committed, one lookup for the batch and a short transaction per order; a
    failure is logged and leaves the step ``holdout`` (the next step asks again), never the cycle."""
    if not held:
        return
    try:
        found = shop.find_orders(
            [OrderLookup(c.checkout_token, c.channel_slug, c.email, c.last_activity_at) for c in held]
        )
    except Exception:
        logger.exception("cart recovery: could not look up the orders of %s held-out cart(s)", len(held))
        return
    for cart in held:
        order = found.get(cart.checkout_token)
        if order is None:
            continue
        try:
            with transaction.atomic():
                RecoveryMessage.objects.filter(
                    cart_id=cart.id, step=cart.steps_planned, reason=Reason.HOLDOUT
                ).update(reason=Reason.PURCHASED, updated_at=now)
                record_purchase(order, cart_id=cart.id, channel_slug=cart.channel_slug, at=now)
        except Exception:
            logger.exception(
                "cart recovery: could not record the order of held-out cart %s", cart.checkout_token
            )


def _plan_cart(
    cart: _Due, now, channel_settings, decided: Decisions, result: DispatchResult
) -> _Planned | None:
    """Plan the cart's next step if it is due (changes ``cart``; written back with the batch)."""
    settings, unavailable = channel_settings(cart.channel_slug)
    if settings is None and unavailable is None:  # could not be read this time: look again soon
        cart.next_due_at = now + PENDING_RECHECK
        result.deferred += 1
        return None
    if settings is None:
        cart.status, cart.stop_reason, cart.next_due_at = CartStatus.STOPPED, unavailable, None
        result.stopped += 1
        return None
    if cart.steps_planned == 0 and not cart.cadence:
        # A cart tracked before cadences were decided at first activity (or before the owner added
        # a cadence test) gets its draw now, before its first step.
        cart.cadence = pick_cadence(cart.checkout_token, settings)
    due = _due(settings, cart)
    if due is None:
        # Every step planned and none waiting (checked by the caller): the series is over.
        cart.next_due_at = None
        if cart.status == CartStatus.ACTIVE and cart.steps_planned:
            cart.status = CartStatus.FINISHED
        return None
    if due > now:
        cart.next_due_at = due
        result.rearmed += 1
        return None
    step = cart.steps_planned + 1
    variants = len(settings.subject_variants(step, cart.language_code)) or 1
    winner = decided.get(subject_set(step)) if settings.experiments.auto_winner else None
    message = _Planned(
        cart_id=cart.id,
        step=step,
        status=(MessageStatus.SKIPPED if cart.holdout else MessageStatus.SCHEDULED).value,
        reason=Reason.HOLDOUT.value if cart.holdout else "",
        variant=pick_subject(cart.checkout_token, step, variants, cart.created_at, winner),
    )
    cart.steps_planned, cart.last_planned_at = step, now
    cart.next_due_at = _due(settings, cart)
    result.planned += 1
    if cart.holdout:
        # The control group's decision is recorded when the email would have gone out;
        # no send task runs, so the series also ends here.
        result.held_out += 1
        if cart.next_due_at is None:
            cart.status = CartStatus.FINISHED
    return message


def _due(settings: RecoverySettings, cart: _Due) -> datetime | None:
    return next_due(
        settings,
        last_activity_at=cart.last_activity_at,
        steps_planned=cart.steps_planned,
        last_planned_at=cart.last_planned_at,
        cadence=cart.cadence,
    )


# Leases a batch of ready messages (through the partial index of scheduled messages, oldest first)
# and returns each one's channel, in one statement.
_LEASE = f"""
WITH ready AS (
    SELECT id FROM {RecoveryMessage._meta.db_table}
    WHERE status = %(scheduled)s AND attempt_after <= %(now)s
    ORDER BY attempt_after
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE {RecoveryMessage._meta.db_table} AS m SET attempt_after = %(lease_end)s, updated_at = %(now)s
FROM ready, {RecoveryCart._meta.db_table} AS c
WHERE m.id = ready.id AND c.id = m.cart_id
RETURNING m.id, c.channel_slug
"""


def _enqueue_batch(now, batch_size, send_batch, send, result: DispatchResult) -> int:
    """Lease up to ``batch_size`` ready messages and hand them out after commit, in send tasks of
    at most ``send_batch`` messages of one channel (the channel decides the mail server)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            _LEASE,
            {
                "scheduled": MessageStatus.SCHEDULED.value,
                "now": now,
                "lease_end": now + LEASE,
                "limit": batch_size,
            },
        )
        ready = sorted(cursor.fetchall())
        by_channel: dict[str, list[int]] = {}
        for message_id, channel_slug in ready:
            by_channel.setdefault(channel_slug, []).append(message_id)
        for channel_ids in by_channel.values():
            for start in range(0, len(channel_ids), send_batch):
                # robust: one failed hand-off (broker down) is logged and the others still go; its
                # messages stay scheduled and the lease hands them out again.
                transaction.on_commit(_hand_off(send, channel_ids[start : start + send_batch]), robust=True)
                result.tasks += 1
    result.enqueued.extend(message_id for message_id, _ in ready)
    return len(ready)


def _hand_off(send: Callable[[list[int]], None], message_ids: list[int]) -> Callable[[], None]:
    def hand_off() -> None:
        send(message_ids)

    return hand_off


def _recover_stale_claims(now) -> tuple[int, int]:
    """Claims whose worker died: failed/interrupted when the message may have reached the mail
    server, handed out again when it cannot have (see :mod:`.delivery`)."""
    interrupted = RecoveryMessage.objects.filter(
        status=MessageStatus.SENDING, handed_over_at__lt=now - SENDING_TIMEOUT
    ).update(status=MessageStatus.FAILED, reason=Reason.INTERRUPTED, updated_at=now)
    stale = RecoveryMessage.objects.filter(
        status=MessageStatus.SENDING, handed_over_at__isnull=True, updated_at__lt=now - PREPARE_TIMEOUT
    )
    given_up = stale.filter(attempts__gte=MAX_ATTEMPTS).update(
        status=MessageStatus.FAILED, reason=Reason.PREPARE_FAILED, updated_at=now
    )
    reclaimed = stale.update(status=MessageStatus.SCHEDULED, attempt_after=now, updated_at=now)
    if interrupted or given_up:
        finish_if_done(
            RecoveryMessage.objects.filter(status=MessageStatus.FAILED, updated_at=now).values("cart_id"), now
        )
    return interrupted, reclaimed + given_up
