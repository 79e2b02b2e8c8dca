"""The developer API: a graphene 2 schema of its own, served by the plugin's ``graphql`` endpoint.

Saleor's GraphQL schema is a fixed list, so the plugin answers on its own URL
(``/plugins/channel/<slug>/saleor_cart_recovery/graphql``). The endpoint lets only staff and apps
with MANAGE_CHECKOUTS or MANAGE_PLUGINS in (Saleor's own tokens); everything here is scoped to the
channel in the URL. Queries raise GraphQL errors for invalid arguments; mutations answer user
errors in their payload's ``errors`` (Saleor's style) and then change nothing.
"""

import base64
import binascii
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC

import graphene
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone
from graphql import GraphQLError
from graphql.error import format_error

from .models import CartStatus, Reason, RecoveryCart, RecoveryMessage, Suppression
from .report import report_data
from .sequence import accepts_activity
from .shop import get_shop
from .suppression import is_suppressed, normalize_email, suppress, unsuppress

logger = logging.getLogger(__name__)

DEFAULT_PAGE = 50
# A page is at most this many carts (each with its messages, one query for all of them).
MAX_PAGE = 100
EMAIL_MAX_LENGTH: int = Suppression._meta.get_field("email").max_length or 254
_CURSOR = re.compile(r"cart:([1-9][0-9]{0,17})")


@dataclass(frozen=True)
class ApiContext:
    channel_slug: str


class BadRequest(ValueError):
    """The HTTP body is not a GraphQL request (answered with 400 before anything runs)."""


# Types -------------------------------------------------------------------------------------------


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
    converted_at = graphene.DateTime()
    match = graphene.String(
        required=True, description="`token` (the cart's own checkout) or `email` (the shopper's order)."
    )


class Message(graphene.ObjectType):
    """One step of the series: planned, sent or skipped, and why."""

    step = graphene.Int(required=True)
    status = graphene.String(required=True, description="scheduled, sending, sent, skipped or failed.")
    reason = graphene.String(description="Why it was skipped or failed.")
    variant = graphene.Int(required=True, description="Subject variant: 0 is A, 1 is B, …")
    subject = graphene.String(description="Set when the email was prepared.")
    content = graphene.String(required=True, description="reminder, help, urgency or discount.")
    voucher_code = graphene.String()
    voucher_expires_at = graphene.DateTime()
    attempts = graphene.Int(required=True)
    sent_at = graphene.DateTime()
    clicks = graphene.Int(required=True)
    first_clicked_at = graphene.DateTime()

    resolve_reason = _blank_as_null("reason")

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
        total = None
        if cart.order_total is not None:
            total = Money(amount=float(cart.order_total), currency=cart.order_currency)
        return Conversion(
            order_id=cart.order_id,
            order_number=cart.order_number,
            total=total,
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


class Error(graphene.ObjectType):
    field = graphene.String(description="The argument at fault; null when it is not one argument.")
    message = graphene.String(required=True)


# Queries -----------------------------------------------------------------------------------------


def _messages() -> Prefetch:
    return Prefetch("messages", queryset=RecoveryMessage.objects.order_by("step"))


def _channel_carts(info):
    return RecoveryCart.objects.filter(channel_slug=info.context.channel_slug)


def _cursor(cart_id: int) -> str:
    return base64.urlsafe_b64encode(f"cart:{cart_id}".encode()).decode()


def _cursor_id(cursor: str) -> int:
    try:
        decoded = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        decoded = ""
    match = _CURSOR.fullmatch(decoded)
    if match is None:
        raise GraphQLError("after: not a cursor from this API; pass pageInfo.endCursor of a previous page.")
    return int(match.group(1))


def _valid_email(email: str) -> str:
    """The address lowercased; raises ``ValueError`` with a message saying what is wrong."""
    normalized = normalize_email(email)
    if len(normalized) > EMAIL_MAX_LENGTH:
        raise ValueError(f"An email address has at most {EMAIL_MAX_LENGTH} characters.")
    try:
        validate_email(normalized)
    except ValidationError:
        raise ValueError(f"'{email}' is not an email address.") from None
    return normalized


class Query(graphene.ObjectType):
    cart = graphene.Field(
        Cart,
        checkout_token=graphene.String(required=True),
        description="A cart of this channel by checkout token; null when there is none.",
    )
    carts = graphene.Field(
        CartConnection,
        required=True,
        status=graphene.String(description="active, finished, converted or stopped."),
        email=graphene.String(),
        first=graphene.Int(default_value=DEFAULT_PAGE, description=f"1 to {MAX_PAGE}."),
        after=graphene.String(description="`pageInfo.endCursor` of the previous page."),
        description="The channel's carts, newest first, a page at a time.",
    )
    suppressed = graphene.Boolean(
        required=True,
        email=graphene.String(required=True),
        description="Whether the address asked for no more reminders in this channel.",
    )
    report = graphene.JSONString(
        required=True,
        since=graphene.DateTime(description="Only carts first seen since (UTC when no offset is given)."),
        description="What `cart_recovery_report --json --channel <this channel>` prints.",
    )

    @staticmethod
    def resolve_cart(root, info, checkout_token):
        carts = _channel_carts(info).filter(checkout_token=checkout_token)
        return carts.prefetch_related(_messages()).first()

    @staticmethod
    def resolve_carts(root, info, first=DEFAULT_PAGE, status=None, email=None, after=None):
        if not 1 <= first <= MAX_PAGE:
            raise GraphQLError(f"first: must be between 1 and {MAX_PAGE}.")
        if status is not None and status not in CartStatus.values:
            raise GraphQLError(f"status: must be one of {', '.join(CartStatus.values)}.")
        carts = _channel_carts(info)
        if after is not None:
            carts = carts.filter(id__lt=_cursor_id(after))
        if email is not None:
            carts = carts.filter(email=normalize_email(email))
        if status is not None:
            carts = carts.filter(status=status)
        newest = carts.order_by("-id").values_list("id", flat=True)
        if email is None and status is None:
            # Keyset pages over the (channel, status, id) index: one bounded range per status, merged,
            # so a page costs the same on the last page as on the first, in big and small channels.
            per_status = [newest.filter(status=value)[: first + 1] for value in CartStatus.values]
            newest = per_status[0].union(*per_status[1:], all=True).order_by("-id")
        ids = list(newest[: first + 1])
        page = list(
            RecoveryCart.objects.filter(id__in=ids[:first]).order_by("-id").prefetch_related(_messages())
        )
        has_next = len(ids) > first
        return CartConnection(
            edges=[CartEdge(cursor=_cursor(cart.id), node=cart) for cart in page],
            nodes=page,
            page_info=PageInfo(has_next_page=has_next, end_cursor=_cursor(page[-1].id) if page else None),
        )

    @staticmethod
    def resolve_suppressed(root, info, email):
        try:
            address = _valid_email(email)
        except ValueError as exc:
            raise GraphQLError(f"email: {exc}") from None
        return is_suppressed(info.context.channel_slug, address)

    @staticmethod
    def resolve_report(root, info, since=None):
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        channel = info.context.channel_slug
        return report_data(channel=channel, since=since, settings_for=get_shop().channel_settings)


# Mutations ---------------------------------------------------------------------------------------


class StopCart(graphene.Mutation):
    """Stop a live series now: no further reminder goes out (one already handed to the mail server
    cannot be called back), and new cart activity does not restart it. Stopped and finished carts
    are returned as they are; converted carts are left alone."""

    class Arguments:
        checkout_token = graphene.String(required=True)

    cart = graphene.Field(Cart)
    errors = graphene.List(graphene.NonNull(Error), required=True)

    @staticmethod
    def mutate(root, info, checkout_token):
        channel = info.context.channel_slug
        now = timezone.now()
        with get_shop().write_access(), transaction.atomic():
            cart = (
                RecoveryCart.objects.select_for_update()
                .filter(channel_slug=channel, checkout_token=checkout_token)
                .first()
            )
            if cart is None:
                message = "No cart with this checkout token in this channel."
                return StopCart(cart=None, errors=[_error("checkoutToken", message)])
            if cart.status == CartStatus.CONVERTED:
                message = f"The cart was converted (order {cart.order_number}); it is left as it is."
                return StopCart(cart=None, errors=[_error("checkoutToken", message)])
            if accepts_activity(cart.status, cart.stop_reason):  # a live series
                cart.status, cart.stop_reason, cart.next_due_at, cart.updated_at = (
                    CartStatus.STOPPED,
                    Reason.MANUAL,
                    None,
                    now,
                )
                cart.save(update_fields=["status", "stop_reason", "next_due_at", "updated_at"])
                logger.info("cart %s stopped through the API", cart.checkout_token)
        cart = _channel_carts(info).filter(pk=cart.pk).prefetch_related(_messages()).get()
        return StopCart(cart=cart, errors=[])


class Suppress(graphene.Mutation):
    """Send the address no more reminders in this channel; its live series stop now (as when the
    shopper uses the unsubscribe link)."""

    class Arguments:
        email = graphene.String(required=True)

    email = graphene.String(description="The address as stored (lowercased).")
    suppressed = graphene.Boolean()
    stopped_carts = graphene.Int(description="Live series stopped by this call.")
    errors = graphene.List(graphene.NonNull(Error), required=True)

    @staticmethod
    def mutate(root, info, email):
        try:
            address = _valid_email(email)
        except ValueError as exc:
            return Suppress(errors=[_error("email", str(exc))])
        stopped = suppress(info.context.channel_slug, address, source="api")
        return Suppress(email=address, suppressed=True, stopped_carts=stopped, errors=[])


class Unsuppress(graphene.Mutation):
    """Let the address get reminders again for carts it starts from now on; series stopped by the
    suppression stay stopped."""

    class Arguments:
        email = graphene.String(required=True)

    email = graphene.String(description="The address as stored (lowercased).")
    suppressed = graphene.Boolean()
    errors = graphene.List(graphene.NonNull(Error), required=True)

    @staticmethod
    def mutate(root, info, email):
        try:
            address = _valid_email(email)
        except ValueError as exc:
            return Unsuppress(errors=[_error("email", str(exc))])
        if not unsuppress(info.context.channel_slug, address):
            return Unsuppress(
                email=address, suppressed=False, errors=[_error("email", "The address is not suppressed.")]
            )
        return Unsuppress(email=address, suppressed=False, errors=[])


def _error(field: str | None, message: str) -> Error:
    return Error(field=field, message=message)


class Mutation(graphene.ObjectType):
    stop_cart = StopCart.Field()
    suppress = Suppress.Field()
    unsuppress = Unsuppress.Field()


schema = graphene.Schema(query=Query, mutation=Mutation)


# HTTP --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    query: str
    variables: dict | None
    operation_name: str | None


def parse_body(body: bytes) -> Operation:
    """``{"query", "variables", "operationName"}`` from a POST body; raises :class:`BadRequest`."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The body is not JSON.") from None
    if not isinstance(data, dict):
        raise BadRequest('The body must be a JSON object: {"query": …, "variables": …, "operationName": …}.')
    query, variables, name = data.get("query"), data.get("variables"), data.get("operationName")
    if not isinstance(query, str) or not query.strip():
        raise BadRequest("Must provide a query string.")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest("variables must be a JSON object.")
    if name is not None and not isinstance(name, str):
        raise BadRequest("operationName must be a string.")
    return Operation(query, variables, name)


def execute(operation: Operation, channel_slug: str) -> tuple[dict, int]:
    """The JSON response and its HTTP status: 400 when the document cannot run (syntax, unknown
    field, wrong variable types), else 200 with ``data`` and any ``errors``."""
    result = schema.execute(
        operation.query,
        context_value=ApiContext(channel_slug),
        variable_values=operation.variables,
        operation_name=operation.operation_name,
    )
    response: dict = {"data": result.data}
    if result.errors:
        response["errors"] = [_format(error) for error in result.errors]
    return response, 400 if result.invalid else 200


def _format(error: Exception) -> dict:
    original = getattr(error, "original_error", None)
    if isinstance(error, GraphQLError) and (original is None or isinstance(original, GraphQLError)):
        return format_error(error)
    # A bug, not the caller's mistake: say nothing about its internals, log it whole (Saleor
    # silences graphql-core's own error log).
    failure = original or error
    logger.error("cart recovery API: %r", failure, exc_info=(type(failure), failure, failure.__traceback__))
    formatted = format_error(error) if isinstance(error, GraphQLError) else {}
    return {**formatted, "message": "Internal error; the server log has the details."}
