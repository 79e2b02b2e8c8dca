"""The developer API's types, and the lookups queries and mutations load them with.

Everything is scoped to the channel in the URL (``info.context.channel_slug``).
"""

from dataclasses import dataclass
from typing import Any

import graphene
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Prefetch
from django.utils.translation import gettext as _

from ...models import CartStatus, RecoveryCart, RecoveryMessage
from ...models import Suppression as SuppressionRow
from ...series.provider_events import provider_name
from ...series.suppression import normalize_email, reason_for, reported_by
from ...settings.validation import SECRET_MASK, shown_configuration
from ...shop import get_shop

EMAIL_MAX_LENGTH: int = SuppressionRow._meta.get_field("email").max_length or 254


@dataclass(frozen=True)
class ApiContext:
    channel_slug: str
    request: Any = None  # the HTTP request, for the permission a mutation needs beyond the endpoint's


def _blank_as_null(attribute: str):
    """Resolver for a text column stored as '' when unset: the API says null instead."""
    return staticmethod(lambda obj, info: getattr(obj, attribute) or None)


class Money(graphene.ObjectType):
    """An amount in a currency, shaped like Saleor's ``Money``."""

    amount = graphene.Float(required=True)
    currency = graphene.String(required=True)


class Conversion(graphene.ObjectType):
    """The order that ended the series."""

    order_id = graphene.String(required=True)
    order_number = graphene.String(required=True)
    total = graphene.Field(Money, description="The order's real total.")
    refunded = graphene.Field(Money, description="Refunded so far (Saleor's order_refunded hooks).")
    cancelled = graphene.Boolean(required=True, description="The order was cancelled.")
    converted_at = graphene.DateTime()
    match = graphene.String(
        required=True, description="`token` (the cart's own checkout) or `email` (the shopper's order)."
    )


class ProviderEvent(graphene.ObjectType):
    """What the mail provider reported about a message (or an address) later, by webhook."""

    kind = graphene.String(
        required=True, description="delivered, bounced, soft_bounced, complained or unsubscribed."
    )
    provider = graphene.String(required=True, description="amazon_ses, postmark, sendgrid, mailgun, …")
    reported_by = graphene.String(required=True, description="The provider's name: Postmark, Amazon SES, …")
    description = graphene.String()
    occurred_at = graphene.DateTime(required=True)

    resolve_description = _blank_as_null("description")

    @staticmethod
    def resolve_reported_by(event, info):
        return provider_name(event.provider)


class Message(graphene.ObjectType):
    """One step of the series: planned, sent or skipped, and why."""

    step = graphene.Int(required=True)
    status = graphene.String(required=True, description="scheduled, sending, sent, skipped or failed.")
    reason = graphene.String(
        description="Why it was skipped or failed, or why a scheduled step waits (quiet_hours)."
    )
    variant = graphene.Int(required=True, description="Subject variant: 0 is A, 1 is B, …")
    subject = graphene.String(description="Set when the email was prepared.")
    content = graphene.String(required=True, description="reminder, help, urgency or discount.")
    voucher_code = graphene.String()
    voucher_expires_at = graphene.DateTime()
    attempts = graphene.Int(required=True)
    sent_at = graphene.DateTime()
    clicks = graphene.Int(required=True)
    first_clicked_at = graphene.DateTime()
    message_id = graphene.String(description="Our Message-ID header, set when handed to the mail server.")
    provider_message_id = graphene.String(description="The mail provider's id for it, when it returned one.")
    provider_events = graphene.List(
        graphene.NonNull(ProviderEvent),
        required=True,
        description="What the provider reported, oldest first.",
    )

    resolve_reason = _blank_as_null("reason")

    resolve_message_id = _blank_as_null("message_id")

    resolve_provider_message_id = _blank_as_null("provider_message_id")

    @staticmethod
    def resolve_provider_events(message, info):
        return sorted(message.provider_events.all(), key=lambda event: (event.occurred_at, event.pk))

    resolve_subject = _blank_as_null("subject")

    resolve_voucher_code = _blank_as_null("voucher_code")


class Cart(graphene.ObjectType):
    """A tracked checkout and its reminder series."""

    checkout_token = graphene.String(required=True)
    status = graphene.String(required=True, description="active, finished, converted or stopped.")
    stop_reason = graphene.String(description="Why the series stopped (stopped and converted carts).")
    email = graphene.String(required=True)
    language_code = graphene.String(required=True)
    holdout = graphene.Boolean(required=True, description="In the control group: gets no email.")
    cadence = graphene.String()
    experiment = graphene.String(description="The experiment version the cart joined.")
    last_activity_at = graphene.DateTime(required=True)
    next_due_at = graphene.DateTime(description="When the dispatcher looks at the cart again.")
    steps_planned = graphene.Int(required=True)
    created_at = graphene.DateTime(required=True)
    conversion = graphene.Field(Conversion, description="Null until an order ends the series.")
    messages = graphene.List(graphene.NonNull(Message), required=True, description="Ordered by step.")

    resolve_stop_reason = _blank_as_null("stop_reason")

    resolve_cadence = _blank_as_null("cadence")

    resolve_experiment = _blank_as_null("experiment")

    @staticmethod
    def resolve_conversion(cart, info):
        if cart.status != CartStatus.CONVERTED:
            return None
        total = refunded = None
        if cart.order_total is not None:
            total = Money(amount=float(cart.order_total), currency=cart.order_currency)
            refunded = Money(amount=float(cart.order_refunded), currency=cart.order_currency)
        return Conversion(
            order_id=cart.order_id,
            order_number=cart.order_number,
            total=total,
            refunded=refunded,
            cancelled=cart.order_cancelled,
            converted_at=cart.converted_at,
            match=cart.conversion_match,
        )

    @staticmethod
    def resolve_messages(cart, info):
        return sorted(cart.messages.all(), key=lambda message: message.step)


class PageInfo(graphene.ObjectType):
    has_next_page = graphene.Boolean(required=True)
    end_cursor = graphene.String(description="Pass as `after` for the next page.")


class CartEdge(graphene.ObjectType):
    cursor = graphene.String(required=True)
    node = graphene.Field(Cart, required=True)


class CartConnection(graphene.ObjectType):
    """A page of carts, newest first."""

    edges = graphene.List(graphene.NonNull(CartEdge), required=True)
    nodes = graphene.List(graphene.NonNull(Cart), required=True)
    page_info = graphene.Field(PageInfo, required=True)


class Suppression(graphene.ObjectType):
    """An address that gets no more reminders in the channel."""

    email = graphene.String(required=True)
    reason = graphene.String(required=True, description="unsubscribed, bounced or complained.")
    source = graphene.String(
        required=True,
        description="link, one_click, api, bounced (refused while sending), or the mail provider that "
        "reported it: amazon_ses, postmark, sendgrid, mailgun, …",
    )
    reported_by = graphene.String(description="The provider's name (Postmark, …) when one reported it.")
    created_at = graphene.DateTime(required=True)

    @staticmethod
    def resolve_reason(suppression, info):
        return reason_for(suppression.source)

    @staticmethod
    def resolve_source(suppression, info):
        return reported_by(suppression.source) or suppression.source

    @staticmethod
    def resolve_reported_by(suppression, info):
        provider = reported_by(suppression.source)
        return provider_name(provider) if provider else None


class Backlog(graphene.ObjectType):
    """Work of this channel waiting right now (what the dispatcher prints for all channels)."""

    due_unplanned = graphene.Int(
        required=True, description="Carts whose next step is due but not yet planned (0 after a cycle)."
    )
    planned_unsent = graphene.Int(
        required=True, description="Planned messages not yet sent: waiting for a worker, a retry or a send."
    )
    oldest_due = graphene.DateTime(description="When the longest-waiting of them was due; null when none.")


class EmailPreview(graphene.ObjectType):
    """A step's email as the series would send it now (no voucher issued, links not tracked)."""

    subject = graphene.String(required=True)
    html = graphene.String(required=True)
    text = graphene.String(required=True, description="The plain-text part.")


class Setting(graphene.ObjectType):
    """One setting of the channel, by its name in the settings table."""

    name = graphene.String(required=True)
    value = graphene.String(required=True, description=f"As stored; a stored secret reads `{SECRET_MASK}`.")


def stored_settings(channel_slug: str) -> list[Setting]:
    """Every setting as stored in the channel (defaults for the ones never saved), secrets masked."""
    shown = shown_configuration(get_shop().stored_configuration(channel_slug))
    return [Setting(name=name, value=value) for name, value in shown.items()]


class Error(graphene.ObjectType):
    field = graphene.String(description="The argument at fault; null when it is not one argument.")
    message = graphene.String(required=True)


def with_messages() -> Prefetch:
    return Prefetch(
        "messages", queryset=RecoveryMessage.objects.order_by("step").prefetch_related("provider_events")
    )


def channel_carts(info):
    return RecoveryCart.objects.filter(channel_slug=info.context.channel_slug)


def valid_email(email: str) -> str:
    """The address lowercased; raises ``ValueError`` with a message saying what is wrong."""
    normalized = normalize_email(email)
    if len(normalized) > EMAIL_MAX_LENGTH:
        raise ValueError(_("An email address has at most %(max)s characters.") % {"max": EMAIL_MAX_LENGTH})
    try:
        validate_email(normalized)
    except ValidationError:
        raise ValueError(_("'%(email)s' is not an email address.") % {"email": email}) from None
    return normalized
