"""The shop port implemented with Saleor 3.23's models and pricing functions."""

import logging
from contextlib import AbstractContextManager
from decimal import Decimal
from uuid import UUID

from django.contrib.sites.models import Site
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Prefetch
from django.urls import reverse
from django.utils.translation import gettext as _
from saleor.account.models import User
from saleor.channel.models import Channel
from saleor.checkout.models import Checkout, CheckoutLine
from saleor.core.db.connection import allow_writer
from saleor.core.prices import quantize_price
from saleor.core.utils.url import build_absolute_uri
from saleor.order import OrderStatus
from saleor.order.models import Order
from saleor.payment import TransactionKind
from saleor.payment.models import Payment, Transaction, TransactionItem
from saleor.plugins.error_codes import PluginErrorCode
from saleor.plugins.manager import get_plugins_manager
from saleor.plugins.models import PluginConfiguration
from saleor.product import ProductMediaTypes
from saleor.product.models import ProductVariantChannelListing
from saleor.thumbnail.utils import get_image_or_proxy_url

from ..exceptions import ConfigurationError
from ..settings.channel import RecoverySettings, validate_for_activation
from ..settings.validation import changes_to_save
from ..shop import CartLine, CartSnapshot, OrderRef, match_orders
from . import dashboard, offers
from .auth import staff_can_change_settings, staff_can_view_reports

logger = logging.getLogger(__name__)

PLUGIN_ID = "saleor_cart_recovery"
THUMBNAIL_SIZE = 256


# What Saleor 3.23 counts as refunded on the order aliased ``o`` (``saleor.order.actions.
# order_refunded``): the successful REFUND transactions of its payments plus what its transaction
# items report refunded. Unlike Saleor, which reads only the last payment (and only once its
# charge status says refunded), every payment counts: a refund of an earlier payment is money
# returned all the same. Uncapped: the core caps at the order total.
_REFUNDED = f"""(
    COALESCE((SELECT SUM(t.amount) FROM {Transaction._meta.db_table} AS t
              JOIN {Payment._meta.db_table} AS p ON p.id = t.payment_id
              WHERE p.order_id = o.id AND t.kind = %(refund)s AND t.is_success), 0)
    + COALESCE((SELECT SUM(ti.refunded_value) FROM {TransactionItem._meta.db_table} AS ti
                WHERE ti.order_id = o.id), 0))"""
_ORDER_REFUNDED = f"SELECT {_REFUNDED} FROM {Order._meta.db_table} AS o WHERE o.id = %(order)s"


def order_ref(order: Order) -> OrderRef:
    """The order as it is now, its refunds so far included (one query, on the writer: the hooks
    call this right after Saleor changed the order)."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(_ORDER_REFUNDED, {"refund": TransactionKind.REFUND, "order": order.pk})
        row = cursor.fetchone()
    return OrderRef(
        id=str(order.pk),
        number=str(order.number),
        checkout_token=order.checkout_token or "",
        email=order.get_customer_email() or "",
        total=order.total_gross_amount,
        currency=order.currency,
        created_at=order.created_at,
        refunded=row[0] if row else Decimal(0),
        cancelled=order.status == OrderStatus.CANCELED,
    )


# Saleor's Order.objects.non_draft() by checkout token, or by channel, time and address (the
# order's email or its account's, both sides lowercased by PostgreSQL, as iexact does), newest first
# (a checkout's order is its newest, as get_by_checkout_token has it), reading only what an
# OrderRef needs; refunds and cancellation as :func:`order_ref` reads them (the refund subqueries
# run only for the few orders the WHERE keeps).
_FIND_ORDERS = f"""
SELECT o.id, o.number, o.checkout_token, o.user_email, u.email, o.total_gross_amount, o.currency,
       o.created_at, ch.slug, {_REFUNDED}, o.status = %(cancelled)s
FROM {Order._meta.db_table} AS o
JOIN {Channel._meta.db_table} AS ch ON ch.id = o.channel_id
LEFT JOIN {User._meta.db_table} AS u ON u.id = o.user_id
WHERE o.status <> %(draft)s
  AND (o.checkout_token = ANY(%(tokens)s)
       OR (ch.slug = ANY(%(channels)s) AND o.created_at >= %(since)s
           AND (lower(o.user_email) = ANY(ARRAY(SELECT lower(e) FROM unnest(%(emails)s::text[]) AS e))
                OR lower(u.email) = ANY(ARRAY(SELECT lower(e) FROM unnest(%(emails)s::text[]) AS e)))))
ORDER BY o.number DESC
"""


def _order_row(
    pk, number, token, email, account_email, total, currency, created_at, channel_slug, refunded, cancelled
):
    """One row of ``_FIND_ORDERS`` as :func:`match_orders` takes it; the address shown is the
    order's, else its account's, as ``Order.get_customer_email`` has it."""
    order = OrderRef(
        id=str(pk),
        number=str(number),
        checkout_token=token or "",
        email=email or account_email or "",
        total=total,
        currency=currency,
        created_at=created_at,
        refunded=refunded,
        cancelled=cancelled,
    )
    return order, channel_slug, [email, account_email or ""]


class SaleorShop:
    order_answer_window = 0.0  # an order check is a query of Saleor's own database: one per message

    def channel_settings(self, channel_slug: str) -> RecoverySettings | None:
        config = (
            PluginConfiguration.objects.filter(identifier=PLUGIN_ID, channel__slug=channel_slug, active=True)
            .only("configuration")
            .first()
        )
        if config is None:
            return None
        settings = RecoverySettings.from_plugin_configuration(config.configuration)
        validate_for_activation(settings)
        return settings

    def load_carts(self, checkout_tokens):
        """Lines, variants, products, images and prices of every checkout in five queries (the
        metadata, addresses and account ride along with the checkout).

        Prices are the ones Saleor stored on the checkout lines when it last priced the checkout
        for the shopper (discounts, vouchers and taxes, a tax app included), unless the checkout
        changed after that pricing (Saleor then sets ``price_expiration`` to the moment of the
        change: stored prices count while ``price_expiration`` is later than ``last_change``).
        Such a checkout — lines added through the API and never priced — shows each variant's
        channel price now (catalogue promotions applied; a line's price override wins; a gift line
        is free) instead: no tax app or other webhook is called per email.
        """
        tokens = [token for token in checkout_tokens if _is_uuid(token)]
        checkouts = list(
            Checkout.objects.select_related(
                "channel", "user", "metadata_storage", "shipping_address", "billing_address"
            )
            .filter(token__in=tokens)
            .prefetch_related(
                Prefetch(
                    "lines",
                    queryset=CheckoutLine.objects.select_related("variant__product").prefetch_related(
                        "variant__media", "variant__product__media"
                    ),
                )
            )
        )
        listings = {
            (listing.variant_id, listing.channel_id): listing.discounted_price_amount
            if listing.discounted_price_amount is not None
            else listing.price_amount
            for listing in ProductVariantChannelListing.objects.filter(
                variant_id__in={line.variant_id for checkout in checkouts for line in checkout.lines.all()},
                channel_id__in={checkout.channel_id for checkout in checkouts},
            ).only("variant_id", "channel_id", "price_amount", "discounted_price_amount")
        }
        shop_name = Site.objects.get_current().name
        return {str(c.token): _snapshot(c, listings, shop_name) for c in checkouts}

    def sample_cart(self, channel_slug, language_code):
        return offers.sample_cart(channel_slug, language_code, _image_url)

    delete_expired_vouchers = staticmethod(offers.delete_expired_vouchers)

    def find_orders(self, lookups):
        """One statement (the send path asks it right before every email, so it is kept lean):
        orders from the lookups' checkouts, or in their channels since the earliest ``since`` by
        one of their addresses; :func:`match_orders` applies the rule per lookup."""
        if not lookups:
            return {}
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute(
                _FIND_ORDERS,
                {
                    "draft": OrderStatus.DRAFT,
                    "cancelled": OrderStatus.CANCELED,
                    "refund": TransactionKind.REFUND,
                    "tokens": [lookup.checkout_token for lookup in lookups],
                    "channels": sorted({lookup.channel_slug for lookup in lookups}),
                    "since": min(lookup.since for lookup in lookups),
                    "emails": sorted({lookup.email for lookup in lookups if lookup.email}),
                },
            )
            return match_orders(lookups, (_order_row(*row) for row in cursor.fetchall()))

    def endpoint_url(self, channel_slug: str, path: str) -> str:
        base = reverse("plugins-per-channel", kwargs={"channel_slug": channel_slug, "plugin_id": PLUGIN_ID})
        return build_absolute_uri(f"{base}{path}")

    def link_url(self, path: str) -> str:
        return build_absolute_uri(f"{reverse('plugins', kwargs={'plugin_id': PLUGIN_ID})}{path}")

    def write_access(self) -> AbstractContextManager:
        return allow_writer()

    issue_voucher = staticmethod(offers.issue_voucher)
    delete_voucher = staticmethod(offers.delete_voucher)
    stock_levels = staticmethod(offers.stock_levels)

    def upsell_products(self, channel_slug, carts, configured, limit):
        return offers.upsell_products(channel_slug, carts, configured, limit, _image_url)

    staff_can_view_reports = staticmethod(staff_can_view_reports)

    def dashboard_viewer(self, token):
        return dashboard.viewer(token, PLUGIN_ID)

    def stored_configuration(self, channel_slug):
        config = (
            PluginConfiguration.objects.filter(identifier=PLUGIN_ID, channel__slug=channel_slug)
            .only("configuration")
            .first()
        )
        if config is None:
            return None
        return {item["name"]: str(item.get("value") or "") for item in config.configuration}

    def save_configuration(self, channel_slug, values, active):
        """Through Saleor's ``PluginsManager``, as ``pluginUpdate`` saves: the same merge into the
        stored configuration, the plugin's ``validate_plugin_configuration`` (so the same check and
        messages) and Saleor's own bookkeeping. In one transaction: on a bad value not even the row
        Saleor creates with the defaults on a channel's first save is kept."""
        changes = changes_to_save(values)
        cleaned: dict = {"configuration": [{"name": name, "value": value} for name, value in changes.items()]}
        if active is not None:
            cleaned["active"] = active
        try:
            with allow_writer(), transaction.atomic():
                manager = get_plugins_manager(allow_replica=False)
                saved = manager.save_plugin_configuration(PLUGIN_ID, channel_slug, cleaned)
        except ValidationError as exc:
            raise ConfigurationError(
                {name: " ".join(e.message for e in errors) for name, errors in exc.error_dict.items()},
                required={
                    name
                    for name, errors in exc.error_dict.items()
                    if any(e.code == PluginErrorCode.REQUIRED.value for e in errors)
                },
            ) from None
        if saved is None:
            # Saleor's manager found no such channel, or the plugin is not in settings.PLUGINS
            message = _("Cart Recovery cannot be configured in channel '%(channel)s': no such channel.") % {
                "channel": channel_slug
            }
            raise ConfigurationError({"channel": message})
        return saved.active

    unavailable_products = staticmethod(offers.unavailable_products)

    def staff_can_change_settings(self, request, channel_slug):
        return staff_can_change_settings(request)

    customer_email = staticmethod(dashboard.customer_email)

    def install_dashboard(self, app_url, origins=()):
        return dashboard.install(app_url, tuple(origins))

    remove_dashboard = staticmethod(dashboard.remove)
    dashboard_origins = staticmethod(dashboard.origins)


def _is_uuid(token: str) -> bool:
    try:
        UUID(str(token))
    except ValueError:
        return False
    return True


def _snapshot(checkout: Checkout, listings: dict, shop_name: str) -> CartSnapshot:
    priced = checkout.price_expiration > checkout.last_change
    lines = []
    for line in checkout.lines.all():
        # A gift is free whatever its listing: it has no price to drop.
        listing_price = None if line.is_gift else listings.get((line.variant_id, checkout.channel_id))
        if priced:
            total = line.total_price_gross_amount
            unit_price = quantize_price(total / line.quantity, checkout.currency)
        elif line.is_gift:  # a promotion's gift: free, as Saleor prices it
            unit_price = total = Decimal(0)
        else:
            unit_price = line.price_override if line.price_override is not None else listing_price
            if unit_price is None:
                unit_price = line.undiscounted_unit_price_amount
            total = quantize_price(unit_price * line.quantity, checkout.currency)
        lines.append(
            CartLine(
                variant_id=str(line.variant_id),
                product_name=line.variant.product.name,
                variant_name=line.variant.name,
                sku=line.variant.sku or "",
                quantity=line.quantity,
                unit_price=unit_price,
                total=total,
                image_url=_image_url(line.variant, line.variant.product),
                listing_price=listing_price,
            )
        )
    addresses = [a for a in (checkout.shipping_address, checkout.billing_address) if a is not None]
    user = checkout.user
    return CartSnapshot(
        token=str(checkout.token),
        channel_slug=checkout.channel.slug,
        email=checkout.get_customer_email() or "",
        language_code=checkout.language_code or "en",
        currency=checkout.currency,
        lines=tuple(lines),
        total=sum((line.total for line in lines), Decimal(0)),
        shop_name=shop_name,
        metadata=_metadata(getattr(checkout, "metadata_storage", None)),
        account_metadata=_metadata(user),
        first_name=next((a.first_name for a in addresses if a.first_name), user.first_name if user else ""),
        country=next((a.country.code for a in addresses if a.country), ""),
    )


def _metadata(owner) -> dict[str, str]:
    """Public keys over private ones (the storefront writes public metadata; apps may write either)."""
    if owner is None:
        return {}
    return {**(owner.private_metadata or {}), **(owner.metadata or {})}


def _image_url(variant, product) -> str | None:
    """The variant's first image, else the product's; videos have no thumbnail and are skipped
    (read from prefetched media when the caller prefetched them).

    Uploaded images go through Saleor's thumbnail endpoint (as its order emails do); images that
    are only an external URL are linked as they are.
    """
    for media_set in (variant.media.all(), product.media.all()):
        media = next((m for m in media_set if m.type == ProductMediaTypes.IMAGE), None)
        if media is None:
            continue
        if media.image:
            return build_absolute_uri(
                get_image_or_proxy_url(None, str(media.pk), "ProductMedia", THUMBNAIL_SIZE, None)
            )
        if media.external_url:
            return media.external_url
    return None
