"""Own tables: one row per tracked cart, one per planned message, one per suppressed address.

Every status change carries a ``reason`` so "why did this cart get no email?" is a query.
"""

from django.db import connection, models
from django.db.models import Q


class CartStatus(models.TextChoices):
    ACTIVE = "active"  # the series runs (or waits for the next step)
    FINISHED = "finished"  # every step was planned and handled
    CONVERTED = "converted"  # an order was placed: terminal
    STOPPED = "stopped"  # see stop_reason; some reasons reopen on new cart activity


class MessageStatus(models.TextChoices):
    SCHEDULED = "scheduled"  # waiting for a send task (attempt_after says from when)
    SENDING = "sending"  # claimed by a send task (handed_over_at: given to the mail server)
    SENT = "sent"
    SKIPPED = "skipped"  # decided not to send, see reason
    FAILED = "failed"  # the mail server refused it, retries ran out, or the worker died mid-send


# A message in one of these states still waits to go out: the cart's next step waits for it.
UNSENT = (MessageStatus.SCHEDULED.value, MessageStatus.SENDING.value)


class Reason(models.TextChoices):
    PURCHASED = "purchased"
    CART_EMPTY = "cart_empty"
    CHECKOUT_DELETED = "checkout_deleted"
    NO_EMAIL = "no_email"
    UNSUBSCRIBED = "unsubscribed"
    PLUGIN_INACTIVE = "plugin_inactive"
    SEND_REFUSED = "send_refused"
    RETRIES_EXHAUSTED = "retries_exhausted"
    INTERRUPTED = "interrupted"
    HOLDOUT = "holdout"
    SERIES_FINISHED = "series_finished"
    STEP_REMOVED = "step_removed"
    PREPARE_FAILED = "prepare_failed"
    MANUAL = "manual"  # stopped through the developer API (stopCart); new activity does not restart it
    BOUNCED = "bounced"  # the mail server refused the address for good: suppressed in the channel
    COMPLAINED = "complained"  # the shopper reported a reminder as spam (a provider's event): suppressed
    CONFIGURATION_INVALID = "configuration_invalid"  # the channel's stored settings no longer parse
    PLANNING_FAILED = "planning_failed"  # an unexpected error while planning this cart (logged)
    # The owner's sending rules (see series.rules). The first three skip or hold back one step and
    # the series goes on; a cart below the minimum is stopped until the shopper adds to it.
    NO_CONSENT = "no_consent"  # audience is consented and the shopper's consent is not in the metadata
    FREQUENCY_CAP = "frequency_cap"  # the address had its allowed reminders for the period
    QUIET_HOURS = "quiet_hours"  # (on a scheduled message) waits for the shopper's quiet hours to end
    BELOW_MIN_TOTAL = "below_min_total"  # the cart's subtotal is below min_cart_total


# Stops that new cart activity may undo: the shopper came back and the cart is worth chasing again.
REOPENABLE_REASONS = (
    Reason.CART_EMPTY,
    Reason.NO_EMAIL,
    Reason.PLUGIN_INACTIVE,
    Reason.CONFIGURATION_INVALID,
    Reason.PLANNING_FAILED,
    Reason.BELOW_MIN_TOTAL,
)
# Suppression sources that mean "the address cannot receive mail" rather than "asked to stop". A
# provider's report is stored as ``<reason>:<provider>`` (``bounced:postmark``, see series.suppression).
BOUNCE_SOURCES = ("bounced",)


class RecoveryCart(models.Model):
    checkout_token = models.CharField(max_length=36, unique=True)
    channel_slug = models.CharField(max_length=255)
    email = models.CharField(max_length=254)
    language_code = models.CharField(max_length=35, default="en")
    status = models.CharField(max_length=16, choices=CartStatus.choices, default=CartStatus.ACTIVE)
    stop_reason = models.CharField(max_length=32, blank=True, default="", db_default="")
    last_activity_at = models.DateTimeField()
    # Control group: tracked like every cart, but each step is recorded as skipped/holdout.
    # Fixed at the cart's first activity and never changed.
    holdout = models.BooleanField(default=False, db_default=False)
    # Experiment version (a digest of the variant settings) and cadence variant the cart was
    # assigned when first seen; results of older versions stay readable after settings change.
    experiment = models.CharField(max_length=32, blank=True, default="", db_default="")
    cadence = models.CharField(max_length=16, blank=True, default="", db_default="")
    # Unit price per variant id when the first reminder was prepared: "price dropped" compares to it.
    abandoned_prices = models.JSONField(null=True, blank=True)
    steps_planned = models.PositiveSmallIntegerField(default=0, db_default=0)
    last_planned_at = models.DateTimeField(null=True, blank=True)
    # When the dispatcher must look at this cart again; NULL means never (until new activity).
    next_due_at = models.DateTimeField(null=True, blank=True)
    order_id = models.CharField(max_length=64, blank=True, default="", db_default="")
    order_number = models.CharField(max_length=64, blank=True, default="", db_default="")
    order_total = models.DecimalField(max_digits=20, decimal_places=3, null=True, blank=True)
    order_currency = models.CharField(max_length=3, blank=True, default="", db_default="")
    # What the order hooks report later (Saleor's order_refunded / order_fully_refunded /
    # order_cancelled): the amount refunded so far and whether it was cancelled. The report's net
    # revenue is the total minus refunds, and nothing for a cancelled or fully refunded order.
    order_refunded = models.DecimalField(max_digits=20, decimal_places=3, default=0, db_default=0)
    order_cancelled = models.BooleanField(default=False, db_default=False)
    conversion_match = models.CharField(max_length=8, blank=True, default="", db_default="")
    converted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "cart_recovery_cart"
        indexes = [
            models.Index(
                fields=["next_due_at"], condition=Q(next_due_at__isnull=False), name="cart_recovery_cart_due"
            ),
            models.Index(fields=["channel_slug", "email"], name="cart_recovery_cart_email"),
            # The automatic winner's report reads one channel's experiment version through it.
            models.Index(fields=["channel_slug", "experiment", "id"], name="cart_recovery_cart_experiment"),
            # The API's cart list pages through one channel's carts of one status by id (keyset).
            models.Index(fields=["channel_slug", "status", "id"], name="cart_recovery_cart_status"),
            # record_order asks whether an order is already recorded (idempotency) in one statement.
            models.Index(fields=["order_id"], condition=~Q(order_id=""), name="cart_recovery_cart_order"),
            # The Dashboard's revenue over time reads one channel's recent conversions.
            models.Index(
                fields=["channel_slug", "converted_at"],
                condition=Q(status="converted"),
                name="cart_recovery_cart_converted",
            ),
        ]

    def __str__(self):
        return f"cart {self.checkout_token} ({self.status})"


def channels_in(model: type[models.Model]) -> list[str]:
    """The distinct ``channel_slug`` values of ``model``'s table, by a loose scan of an index that
    starts with ``channel_slug``: one index probe per channel, however many rows there are."""
    table = model._meta.db_table
    query = f"""
        WITH RECURSIVE ch AS (
            (SELECT channel_slug FROM {table} ORDER BY channel_slug LIMIT 1)
            UNION ALL
            SELECT (SELECT c.channel_slug FROM {table} c
                    WHERE c.channel_slug > ch.channel_slug ORDER BY c.channel_slug LIMIT 1)
            FROM ch WHERE ch.channel_slug IS NOT NULL
        )
        SELECT channel_slug FROM ch WHERE channel_slug IS NOT NULL"""
    with connection.cursor() as cursor:
        cursor.execute(query)
        return [row[0] for row in cursor.fetchall()]


def newest_cart_ids(carts: models.QuerySet, limit: int, *, by_status: bool) -> list[int]:
    """Ids of up to ``limit`` carts of ``carts`` (one channel's), newest first. With ``by_status``
    (no narrower filter than the channel) it reads one bounded range per status through the
    (channel, status, id) index and merges them, so the cost is the same in a channel of a
    thousand carts and one of millions."""
    newest = carts.order_by("-id").values_list("id", flat=True)
    if by_status and not carts.query.is_empty():
        per_status = [newest.filter(status=value)[:limit] for value in CartStatus.values]
        newest = per_status[0].union(*per_status[1:], all=True).order_by("-id")
    return list(newest[:limit])


class RecoveryMessage(models.Model):
    cart = models.ForeignKey(RecoveryCart, related_name="messages", on_delete=models.CASCADE)
    step = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=16, choices=MessageStatus.choices, default=MessageStatus.SCHEDULED)
    reason = models.CharField(max_length=32, blank=True, default="")
    variant = models.PositiveSmallIntegerField(default=0)
    # What the step says: reminder, help, urgency or discount (see offers).
    content = models.CharField(max_length=16, blank=True, default="reminder", db_default="reminder")
    voucher_code = models.CharField(max_length=64, blank=True, default="", db_default="")
    voucher_expires_at = models.DateTimeField(null=True, blank=True)
    clicks = models.PositiveIntegerField(default=0, db_default=0)
    first_clicked_at = models.DateTimeField(null=True, blank=True)
    subject = models.CharField(max_length=255, blank=True, default="")
    recipient = models.CharField(max_length=254, blank=True, default="")
    # Claims so far; also the fencing token of the current claim: a send task acts on the message
    # only while ``status`` is sending and ``attempts`` is the number its own claim set.
    attempts = models.PositiveSmallIntegerField(default=0)
    # Set in the last short transaction before the SMTP hand-over: a claim that dies before it
    # sent nothing (the message is handed out again); one that dies after it may have sent it.
    handed_over_at = models.DateTimeField(null=True, blank=True)
    # Earliest moment the dispatcher may hand the message to a send task (again).
    attempt_after = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    # Our own Message-ID header (on the sender's domain), stored with handed_over_at before the
    # hand-over, and the id the mail provider gave the message when it returned one (an anymail
    # backend's status, an SMTP relay's DATA reply): provider events are matched to the message
    # through either (see series.provider_events).
    message_id = models.CharField(max_length=255, blank=True, default="", db_default="")
    provider_message_id = models.CharField(max_length=255, blank=True, default="", db_default="")
    planned_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "cart_recovery_message"
        constraints = [
            # Invariant 2: at most one email per (cart, step), whatever the workers do.
            models.UniqueConstraint(fields=["cart", "step"], name="cart_recovery_one_message_per_step"),
        ]
        indexes = [
            models.Index(
                fields=["attempt_after"], condition=Q(status="scheduled"), name="cart_recovery_msg_ready"
            ),
            models.Index(
                fields=["updated_at"], condition=Q(status="sending"), name="cart_recovery_msg_sending"
            ),
            # The frequency cap counts an address's reminders handed to the mail server lately, and
            # the coupon rule looks for its codes still valid (series.caps).
            models.Index(fields=["recipient", "handed_over_at"], name="cart_recovery_msg_recipient"),
            # The deliverability rates count the messages handed over in the last 30 days.
            models.Index(
                fields=["handed_over_at"],
                condition=Q(handed_over_at__isnull=False),
                name="cart_recovery_msg_handed_over",
            ),
            # A provider's event names the message by the provider's id.
            models.Index(
                fields=["provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="cart_recovery_msg_provider_id",
            ),
        ]

    def __str__(self):
        return f"step {self.step} of {self.cart_id} ({self.status})"


class RecoveryWinner(models.Model):
    """An automatic-winner decision: from ``decided_at`` on, carts new to the experiment version get
    ``arm`` for ``arm_set`` (``cadence``, or ``subject:<step>`` with the variant's index). Written once
    by the periodic decision task (never changed: a version's winner is final); the dispatcher and
    the hook read it by key."""

    channel_slug = models.CharField(max_length=255)
    experiment = models.CharField(max_length=32)
    arm_set = models.CharField(max_length=16)
    arm = models.CharField(max_length=16)
    decided_at = models.DateTimeField()
    # The counts and test the decision was taken on, for the report and for support.
    evidence = models.JSONField(default=dict)

    class Meta:
        db_table = "cart_recovery_winner"
        constraints = [
            models.UniqueConstraint(
                fields=["channel_slug", "experiment", "arm_set"], name="cart_recovery_one_winner"
            )
        ]


class RecoveryReportSnapshot(models.Model):
    """A channel's report as the periodic rollup last built it (``report_json.plain`` data of each
    experiment version): what the command, the API and the page show, with when it was computed,
    without scanning the carts on every read."""

    channel_slug = models.CharField(max_length=255, unique=True)
    computed_at = models.DateTimeField()
    seconds = models.FloatField()  # how long the build took
    data = models.JSONField(default=list)

    class Meta:
        db_table = "cart_recovery_report_snapshot"


class Suppression(models.Model):
    """An address that asked for no more cart reminders in a channel."""

    channel_slug = models.CharField(max_length=255)
    email = models.CharField(max_length=254)
    source = models.CharField(max_length=32)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "cart_recovery_suppression"
        constraints = [
            models.UniqueConstraint(fields=["channel_slug", "email"], name="cart_recovery_one_suppression")
        ]


class ProviderEventKind(models.TextChoices):
    DELIVERED = "delivered"  # the receiving server accepted it (the rates' denominator when reported)
    BOUNCED = "bounced"  # a hard bounce or a permanent rejection of the address: suppresses
    SOFT_BOUNCED = "soft_bounced"  # a temporary failure: suppresses after repeated ones (see provider_events)
    COMPLAINED = "complained"  # marked as spam: suppresses
    UNSUBSCRIBED = "unsubscribed"  # unsubscribed at the provider: suppresses


class ProviderEvent(models.Model):
    """What the owner's mail provider reported later about a message we handed over (through
    django-anymail's tracking webhooks), matched to the message when the event names it, else only
    to the address. ``key`` (a digest of the provider and its event id, or of the whole event when
    the provider gives no id) is unique: a replayed or duplicated event is stored and acted on once.
    """

    key = models.CharField(max_length=64, unique=True)
    provider = models.CharField(max_length=32)  # the endpoint's name: amazon_ses, postmark, …
    kind = models.CharField(max_length=16, choices=ProviderEventKind.choices)
    channel_slug = models.CharField(max_length=255)
    email = models.CharField(max_length=254)
    message = models.ForeignKey(
        RecoveryMessage, related_name="provider_events", null=True, blank=True, on_delete=models.SET_NULL
    )
    description = models.CharField(max_length=255, blank=True, default="")
    occurred_at = models.DateTimeField()  # as the provider says; when received if it does not
    received_at = models.DateTimeField()

    class Meta:
        db_table = "cart_recovery_provider_event"
        indexes = [
            # The rates read one channel's events of one kind in the last 7 / 30 days.
            models.Index(fields=["channel_slug", "kind", "occurred_at"], name="cart_recovery_event_rates"),
            # Soft bounces are counted per address.
            models.Index(fields=["channel_slug", "email", "kind"], name="cart_recovery_event_email"),
        ]


class WorkerHeartbeat(models.Model):
    """When a Celery worker last ran one of our periodic tasks (one row per task, overwritten): the
    Dashboard's settings page flags a channel whose reminders nobody is sending."""

    task = models.CharField(max_length=64, unique=True)
    hostname = models.CharField(max_length=255, blank=True, default="")
    at = models.DateTimeField()

    class Meta:
        db_table = "cart_recovery_worker_heartbeat"
