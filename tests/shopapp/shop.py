"""The shop port over the test shop's tables (shared by the test process and Celery workers)."""

from contextlib import nullcontext
from decimal import Decimal

from django.conf import settings

from saleor_cart_recovery.config import RecoverySettings
from saleor_cart_recovery.shop import CartLine, CartSnapshot, OrderRef

from .models import ShopChannel, ShopCheckout, ShopOrder


class DbShop:
    def channel_settings(self, channel_slug):
        channel = ShopChannel.objects.filter(slug=channel_slug, active=True).first()
        return RecoverySettings.from_plugin_configuration(channel.configuration) if channel else None

    def load_cart(self, checkout_token):
        checkout = ShopCheckout.objects.select_related("channel").filter(token=checkout_token).first()
        if checkout is None:
            return None
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
            )
            for line in checkout.lines.order_by("pk")
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
        )

    def find_order(self, checkout_token):
        order = ShopOrder.objects.filter(checkout_token=checkout_token).first()
        return order_ref(order) if order else None

    def endpoint_url(self, channel_slug, path):
        return f"{settings.PUBLIC_URL}/plugins/channel/{channel_slug}/saleor_cart_recovery/{path}"

    def write_access(self):
        return nullcontext()


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
