"""Read-only fields: one cart, pages of carts, a suppression, the report."""

import base64
import binascii
import re
from datetime import UTC

import graphene
from django.utils import timezone
from django.utils.translation import gettext as _
from graphql import GraphQLError

from ...email.preview import PreviewError, build_preview
from ...experiments.deliverability import rates
from ...experiments.report_json import report_data
from ...models import CartStatus, RecoveryCart, newest_cart_ids
from ...models import Suppression as SuppressionRow
from ...series.dispatch import backlog
from ...series.suppression import hashed_address, is_suppressed, normalize_email
from ...shop import get_shop, settings_or_none
from .types import (
    Backlog,
    Cart,
    CartConnection,
    CartEdge,
    EmailPreview,
    PageInfo,
    Setting,
    Suppression,
    channel_carts,
    stored_settings,
    valid_email,
    with_messages,
)

DEFAULT_PAGE = 50
# A page is at most this many carts (each with its messages, one query for all of them).
MAX_PAGE = 100
_CURSOR = re.compile(r"cart:([1-9][0-9]{0,17})")


def _address(email: str) -> str:
    """The argument as a stored address, or a GraphQL error naming it."""
    try:
        return valid_email(email)
    except ValueError as exc:
        raise GraphQLError(f"email: {exc}") from None


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
        description="Whether the address gets no more reminders in this channel (unsubscribed or bounced).",
    )
    suppression = graphene.Field(
        Suppression,
        email=graphene.String(required=True),
        description="Why and since when the address gets no reminders here; null when it does.",
    )
    backlog = graphene.Field(
        Backlog,
        required=True,
        description="Due carts not yet planned and planned messages not yet sent, in this channel.",
    )
    deliverability = graphene.JSONString(
        required=True,
        description="Bounce and complaint rates of this channel over the last 7 and 30 days, with the "
        "counts behind them and warnings above 2 % bounces or 0.1 % complaints (docs/deliverability.md).",
    )
    report = graphene.JSONString(
        required=True,
        since=graphene.DateTime(description="Only carts first seen since (UTC when no offset is given)."),
        fresh=graphene.Boolean(
            default_value=False,
            description="Build it now instead of reading the one the 10-minute rollup stored.",
        ),
        description="What `cart_recovery_report --json --channel <this channel>` prints; each report "
        "says when it was `computed_at`.",
    )

    settings = graphene.List(
        graphene.NonNull(Setting),
        required=True,
        description="Every setting of this channel as stored (defaults for the ones never saved); "
        "a stored secret reads masked. Change them with `updateSettings`.",
    )

    preview = graphene.Field(
        EmailPreview,
        required=True,
        step=graphene.Int(required=True),
        checkout_token=graphene.String(description="A checkout of this channel; a sample cart without it."),
        language=graphene.String(description="Language code; the checkout's (or en) without it."),
        variant=graphene.Int(default_value=0, description="Subject variant: 0 is A, 1 is B, …"),
        description="A step's email as it would go out now: the live cart, the owner's words, brand and "
        "true offers; a coupon step shows a sample code (no voucher is issued) and no link is tracked.",
    )

    @staticmethod
    def resolve_cart(root, info, checkout_token):
        carts = channel_carts(info).filter(checkout_token=checkout_token)
        return carts.prefetch_related(with_messages()).first()

    @staticmethod
    def resolve_carts(root, info, first=DEFAULT_PAGE, status=None, email=None, after=None):
        if not 1 <= first <= MAX_PAGE:
            raise GraphQLError(f"first: must be between 1 and {MAX_PAGE}.")
        if status is not None and status not in CartStatus.values:
            raise GraphQLError(f"status: must be one of {', '.join(CartStatus.values)}.")
        carts = channel_carts(info)
        if after is not None:
            carts = carts.filter(id__lt=_cursor_id(after))
        if email is not None:
            carts = carts.filter(email=normalize_email(email))
        if status is not None:
            carts = carts.filter(status=status)
        # keyset pages: a page costs the same on the last page as on the first
        ids = newest_cart_ids(carts, first + 1, by_status=email is None and status is None)
        page = list(
            RecoveryCart.objects.filter(id__in=ids[:first]).order_by("-id").prefetch_related(with_messages())
        )
        has_next = len(ids) > first
        return CartConnection(
            edges=[CartEdge(cursor=_cursor(cart.id), node=cart) for cart in page],
            nodes=page,
            page_info=PageInfo(has_next_page=has_next, end_cursor=_cursor(page[-1].id) if page else None),
        )

    @staticmethod
    def resolve_suppressed(root, info, email):
        return is_suppressed(info.context.channel_slug, _address(email))

    @staticmethod
    def resolve_suppression(root, info, email):
        address = _address(email)
        row = SuppressionRow.objects.filter(
            channel_slug=info.context.channel_slug, email__in=(address, hashed_address(address))
        ).first()
        if row is not None:
            row.email = address  # an erased shopper's row keeps only the hash: answer with the address asked
        return row

    @staticmethod
    def resolve_backlog(root, info):
        return backlog(timezone.now(), info.context.channel_slug)

    @staticmethod
    def resolve_deliverability(root, info):
        return rates(info.context.channel_slug, timezone.now())

    @staticmethod
    def resolve_report(root, info, since=None, fresh=False):
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        channel = info.context.channel_slug
        return report_data(channel=channel, since=since, settings_for=settings_or_none, fresh=fresh)

    @staticmethod
    def resolve_settings(root, info):
        return stored_settings(info.context.channel_slug)

    @staticmethod
    def resolve_preview(root, info, step, checkout_token=None, language=None, variant=0):
        channel = info.context.channel_slug
        settings = settings_or_none(channel)
        if settings is None:
            raise GraphQLError(
                _("The channel's settings cannot be used right now; check them in the Dashboard.")
            )
        try:
            preview = build_preview(
                get_shop(),
                settings,
                channel,
                step=step,
                checkout_token=checkout_token,
                language=language,
                variant=variant,
            )
        except PreviewError as exc:
            raise GraphQLError(f"{exc.field}: {exc.message}" if exc.field else exc.message) from None
        return EmailPreview(subject=preview.subject, html=preview.html, text=preview.text)
