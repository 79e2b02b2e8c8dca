"""The shop port implemented with Saleor 3.23's models and pricing functions."""

import logging
from contextlib import AbstractContextManager
from decimal import Decimal

from django.contrib.sites.models import Site
from django.db.models import Q
from django.urls import reverse
from saleor.checkout import calculations
from saleor.checkout.fetch import fetch_checkout_info, fetch_checkout_lines
from saleor.checkout.models import Checkout
from saleor.core.db.connection import allow_writer
from saleor.core.utils.url import build_absolute_uri
from saleor.order.models import Order
from saleor.plugins.manager import get_plugins_manager
from saleor.plugins.models import PluginConfiguration
from saleor.product import ProductMediaTypes
from saleor.thumbnail.utils import get_image_or_proxy_url

from ..settings.channel import RecoverySettings, validate_for_activation
from ..shop import CartLine, CartSnapshot, OrderRef
from . import offers
from .auth import staff_can_view_reports

logger = logging.getLogger(__name__)

PLUGIN_ID = "saleor_cart_recovery"
THUMBNAIL_SIZE = 256


def order_ref(order: Order) -> OrderRef:
    return OrderRef(
        id=str(order.pk),
        number=str(order.number),
        checkout_token=order.checkout_token or "",
        email=order.get_customer_email() or "",
        total=order.total_gross_amount,
        currency=order.currency,
        created_at=order.created_at,
    )


class SaleorShop:
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

    def load_cart(self, checkout_token: str) -> CartSnapshot | None:
        checkout = Checkout.objects.select_related("channel", "user").filter(token=checkout_token).first()
        if checkout is None:
            return None
        manager = get_plugins_manager(allow_replica=False)
        lines, _ = fetch_checkout_lines(checkout)
        info = fetch_checkout_info(checkout, lines, manager)
        priced = dict(manager=manager, checkout_info=info, lines=lines)
        cart_lines = tuple(
            CartLine(
                variant_id=str(line.variant.pk),
                product_name=line.product.name,
                variant_name=line.variant.name,
                sku=line.variant.sku or "",
                quantity=line.line.quantity,
                unit_price=calculations.checkout_line_unit_price(
                    checkout_line_info=line, **priced
                ).gross.amount,
                total=calculations.checkout_line_total(checkout_line_info=line, **priced).gross.amount,
                image_url=_image_url(line.variant, line.product),
            )
            for line in lines
        )
        total = calculations.calculate_checkout_total(**priced).gross.amount if cart_lines else Decimal(0)
        return CartSnapshot(
            token=str(checkout.token),
            channel_slug=checkout.channel.slug,
            email=checkout.get_customer_email() or "",
            language_code=checkout.language_code or "en",
            currency=checkout.currency,
            lines=cart_lines,
            total=total,
            shop_name=Site.objects.get_current().name,
        )

    def find_order(self, checkout_token, *, channel_slug, email, since):
        order = Order.objects.get_by_checkout_token(str(checkout_token))
        if order is None and email:
            order = (
                Order.objects.non_draft()
                .filter(channel__slug=channel_slug, created_at__gte=since)
                .filter(Q(user_email__iexact=email) | Q(user__email__iexact=email))
                .order_by("-created_at")
                .first()
            )
        return order_ref(order) if order else None

    def endpoint_url(self, channel_slug: str, path: str) -> str:
        base = reverse("plugins-per-channel", kwargs={"channel_slug": channel_slug, "plugin_id": PLUGIN_ID})
        return build_absolute_uri(f"{base}{path}")

    def link_url(self, path: str) -> str:
        return build_absolute_uri(f"{reverse('plugins', kwargs={'plugin_id': PLUGIN_ID})}{path}")

    def write_access(self) -> AbstractContextManager:
        return allow_writer()

    issue_voucher = staticmethod(offers.issue_voucher)
    stock_levels = staticmethod(offers.stock_levels)

    def upsell_products(self, channel_slug, cart_variant_ids, configured, limit):
        return offers.upsell_products(channel_slug, cart_variant_ids, configured, limit, _image_url)

    staff_can_view_reports = staticmethod(staff_can_view_reports)


def _image_url(variant, product) -> str | None:
    """The variant's first image, else the product's; videos have no thumbnail and are skipped.

    Uploaded images go through Saleor's thumbnail endpoint (as its order emails do); images that
    are only an external URL are linked as they are.
    """
    for media_set in (variant.media, product.media):
        media = media_set.filter(type=ProductMediaTypes.IMAGE).first()
        if media is None:
            continue
        if media.image:
            return build_absolute_uri(
                get_image_or_proxy_url(None, str(media.pk), "ProductMedia", THUMBNAIL_SIZE, None)
            )
        if media.external_url:
            return media.external_url
    return None
