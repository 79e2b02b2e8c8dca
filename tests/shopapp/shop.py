"""The shop port over the test shop's tables (shared by the test process and Celery workers)."""

import logging
import secrets
from contextlib import nullcontext
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch, Q
from django.db.models.functions import Lower

from saleor_cart_recovery.exceptions import DashboardRefused
from saleor_cart_recovery.settings.channel import RecoverySettings, validate_for_activation
from saleor_cart_recovery.settings.registry import DEFAULTS
from saleor_cart_recovery.settings.validation import changes_to_save, validate_configuration
from saleor_cart_recovery.shop import (
    CartLine,
    CartSnapshot,
    DashboardChannel,
    DashboardViewer,
    IssuedVoucher,
    OrderRef,
    UpsellProduct,
    match_orders,
)

from .models import ShopChannel, ShopCheckout, ShopLine, ShopOrder, ShopProduct, ShopStock, ShopVoucher

logger = logging.getLogger(__name__)


class DbShop:
    order_answer_window = 0.0

    def channel_settings(self, channel_slug):
        channel = ShopChannel.objects.filter(slug=channel_slug, active=True).first()
        if channel is None:
            return None
        settings = RecoverySettings.from_plugin_configuration(channel.configuration)
        validate_for_activation(settings)
        return settings

    def load_carts(self, checkout_tokens):
        checkouts = (
            ShopCheckout.objects.select_related("channel")
            .prefetch_related(Prefetch("lines", queryset=ShopLine.objects.order_by("pk")))
            .filter(token__in=list(checkout_tokens))
        )
        return {checkout.token: snapshot(checkout) for checkout in checkouts}

    def sample_cart(self, channel_slug, language_code):
        products = ShopProduct.objects.filter(channel__slug=channel_slug, published=True).order_by("name")[:2]
        lines = tuple(
            CartLine(
                variant_id=product.variant_id,
                product_name=product.name,
                variant_name="",
                sku=f"SKU-{product.variant_id}",
                quantity=1,
                unit_price=product.price,
                total=product.price,
                image_url=product.image_url or None,
                listing_price=product.price,
            )
            for product in products
        ) or (
            CartLine("sample", "Sample product", "", "SAMPLE", 2, Decimal("24.50"), Decimal("49.00"), None),
        )
        return CartSnapshot(
            token="00000000-0000-0000-0000-000000000000",
            channel_slug=channel_slug,
            email="shopper@example.com",
            language_code=language_code,
            currency="USD",
            lines=lines,
            total=sum((line.total for line in lines), Decimal(0)),
            shop_name="Test Shop",
            first_name="Alex",
        )

    def delete_expired_vouchers(self, now):
        return ShopVoucher.objects.filter(expires_at__lt=now, used=0).delete()[0]

    def find_orders(self, lookups):
        if not lookups:
            return {}
        by_address = Q(
            channel_slug__in={lookup.channel_slug for lookup in lookups},
            created_at__gte=min(lookup.since for lookup in lookups),
            email_lower__in=[lookup.email.lower() for lookup in lookups if lookup.email],
        )
        orders = ShopOrder.objects.alias(email_lower=Lower("email")).filter(
            Q(checkout_token__in=[lookup.checkout_token for lookup in lookups]) | by_address
        )
        return match_orders(lookups, ((order_ref(o), o.channel_slug, [o.email]) for o in orders))

    def endpoint_url(self, channel_slug, path):
        return f"{settings.PUBLIC_URL}/plugins/channel/{channel_slug}/saleor_cart_recovery/{path}"

    def link_url(self, path):
        return f"{settings.PUBLIC_URL}/plugins/saleor_cart_recovery/{path}"

    def write_access(self):
        return nullcontext()

    def issue_voucher(self, channel_slug, *, discount_type, value, min_total, expires_at, name):
        channel = ShopChannel.objects.get(slug=channel_slug)
        currency = ShopCheckout.objects.filter(channel=channel).values_list("currency", flat=True).first()
        voucher = ShopVoucher.objects.create(
            code=secrets.token_hex(6).upper(),
            channel=channel,
            name=name,
            discount_type=discount_type,
            value=value,
            currency=currency or "USD",
            min_total=min_total,
            usage_limit=1,
            expires_at=expires_at,
        )
        return IssuedVoucher(
            code=voucher.code, currency=voucher.currency, expires_at=voucher.expires_at, id=str(voucher.pk)
        )

    def delete_voucher(self, voucher):
        ShopVoucher.objects.filter(pk=voucher.id).delete()

    def stock_levels(self, channel_slug, variant_ids):
        return {
            stock.variant_id: stock.quantity - stock.allocated
            for stock in ShopStock.objects.filter(variant_id__in=list(variant_ids))
        }

    def upsell_products(self, channel_slug, carts, configured, limit):
        carts = [set(cart) for cart in carts]
        listed = list(ShopProduct.objects.filter(channel__slug=channel_slug).order_by("name"))
        if configured is not None:
            by_slug = {product.slug: product for product in listed}
            for reference in configured:
                if reference not in by_slug:
                    logger.info(
                        "upsell product %s skipped: not listed in channel %s", reference, channel_slug
                    )
            listed = [by_slug[reference] for reference in configured if reference in by_slug]
        stock = self.stock_levels(channel_slug, [p.variant_id for p in listed])
        return [self._upsell(listed, stock, cart, configured is None, limit) for cart in carts]

    @staticmethod
    def _upsell(listed, stock, cart, related_only, limit):
        categories = {product.category for product in listed if product.variant_id in cart}
        chosen = []
        for product in listed:
            if product.variant_id in cart or (related_only and product.category not in categories):
                continue
            if not product.published or stock.get(product.variant_id, 0) <= 0:
                logger.info("upsell product %s skipped: unpublished or out of stock", product.slug)
                continue
            chosen.append(
                UpsellProduct(
                    product_id=str(product.pk),
                    slug=product.slug,
                    name=product.name,
                    price=product.price,
                    currency="USD",
                    image_url=product.image_url or None,
                )
            )
        return tuple(chosen[:limit])

    def staff_can_view_reports(self, request, channel_slug):
        """Test credentials: header ``X-Test-Staff: <permission>`` (``none`` = staff without it)."""
        staff = request.headers.get("X-Test-Staff")
        if staff is None:
            return None
        return staff in ("MANAGE_CHECKOUTS", "MANAGE_PLUGINS")

    def dashboard_viewer(self, token):
        """Test tokens ``staff:<email>:<permissions, joined by +>:<channel slugs, comma separated, or
        *>``; anything else is not a token (401). The real check (signature, app, extension) is
        Saleor's, tested in the Saleor suite."""
        kind, _, rest = token.partition(":")
        email, _, rest = rest.partition(":")
        permission, _, slugs = rest.partition(":")
        permissions = set(permission.split("+"))
        if kind != "staff" or not email or not slugs:
            raise DashboardRefused(401, "This page needs a token from the Saleor Dashboard.")
        if "MANAGE_CHECKOUTS" not in permissions:
            raise DashboardRefused(403, "Cart Recovery needs the MANAGE_CHECKOUTS permission.")
        channels = ShopChannel.objects.order_by("slug")
        if slugs != "*":
            channels = channels.filter(slug__in=slugs.split(","))
        return DashboardViewer(
            email=email,
            channels=tuple(DashboardChannel(c.slug, c.slug.title(), "USD", c.active) for c in channels),
            can_change_settings="MANAGE_PLUGINS" in permissions,
        )

    def stored_configuration(self, channel_slug):
        channel = ShopChannel.objects.filter(slug=channel_slug).first()
        if channel is None:
            return None
        return {item["name"]: str(item["value"]) for item in channel.configuration}

    def save_configuration(self, channel_slug, values, active):
        """A channel's first save creates it, inactive unless ``active`` says otherwise (as Saleor
        creates the plugin's row with its defaults); rolled back with everything on a bad value."""
        changes = changes_to_save(values)
        with transaction.atomic():
            channel, _ = ShopChannel.objects.select_for_update().get_or_create(
                slug=channel_slug, defaults={"active": False}
            )
            values = {**DEFAULTS, **{item["name"]: str(item["value"]) for item in channel.configuration}}
            values.update(changes)
            channel.active = channel.active if active is None else active
            validate_configuration(
                values,
                active=channel.active,
                unavailable_products=lambda refs: self.unavailable_products(channel_slug, refs),
            )
            channel.configuration = [{"name": name, "value": value} for name, value in values.items()]
            channel.save(update_fields=["active", "configuration"])
        return channel.active

    def unavailable_products(self, channel_slug, references):
        known = set(ShopProduct.objects.filter(slug__in=list(references)).values_list("slug", flat=True))
        listed = ShopProduct.objects.filter(channel__slug=channel_slug, published=True, slug__in=known)
        published = set(listed.values_list("slug", flat=True))
        problems = {}
        for reference in references:
            if reference not in known:
                problems[reference] = "no such product"
            elif reference not in published:
                problems[reference] = f"not published and available for purchase in channel {channel_slug}"
        return problems

    def staff_can_change_settings(self, request, channel_slug):
        return request.headers.get("X-Test-Staff") == "MANAGE_PLUGINS"

    def customer_email(self, customer_id):
        """Test customer IDs are ``customer:<email>``."""
        kind, _, email = customer_id.partition(":")
        return email if kind == "customer" and "@" in email else None

    def dashboard_origins(self):
        return tuple(getattr(settings, "CART_RECOVERY_TEST_DASHBOARD_ORIGINS", ()))


def snapshot(checkout: ShopCheckout) -> CartSnapshot:
    lines = tuple(
        CartLine(
            variant_id=line.variant_id,
            product_name=line.product_name,
            variant_name=line.variant_name,
            sku=f"SKU-{line.variant_id}",
            quantity=line.quantity,
            unit_price=line.unit_price,
            total=line.unit_price * line.quantity,
            image_url=line.image_url or None,
            listing_price=line.unit_price,  # the test shop prices lines live, at the listing price
        )
        for line in checkout.lines.all()
    )
    return CartSnapshot(
        token=checkout.token,
        channel_slug=checkout.channel.slug,
        email=checkout.email,
        language_code=checkout.language_code,
        currency=checkout.currency,
        lines=lines,
        total=sum((line.total for line in lines), Decimal(0)),
        shop_name="Test Shop",
        metadata=checkout.metadata,
        account_metadata=checkout.account_metadata,
        first_name=checkout.first_name,
        country=checkout.country,
    )


def order_ref(order: ShopOrder) -> OrderRef:
    return OrderRef(
        id=str(order.pk),
        number=str(order.pk),
        checkout_token=order.checkout_token,
        email=order.email,
        total=order.total,
        currency=order.currency,
        created_at=order.created_at,
    )
