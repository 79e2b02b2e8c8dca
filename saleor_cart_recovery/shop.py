"""The port through which the core reaches the shop.

The Saleor adapter (:mod:`saleor_cart_recovery.saleor_host.shop`) implements it with Saleor's models;
tests use a small database-backed shop. Everything crossing the port is plain data, so templates
and tasks never hold a host model instance.
"""

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Protocol

from django.conf import settings as django_settings
from django.utils.module_loading import import_string

from .settings.channel import RecoverySettings

DEFAULT_SHOP = "saleor_cart_recovery.saleor_host.shop.SaleorShop"


@dataclass(frozen=True)
class CartLine:
    variant_id: str
    product_name: str
    variant_name: str
    sku: str
    quantity: int
    unit_price: Decimal
    total: Decimal
    image_url: str | None


@dataclass(frozen=True)
class CartSnapshot:
    """The live checkout, priced as the shop would price it now."""

    token: str
    channel_slug: str
    email: str
    language_code: str
    currency: str
    lines: tuple[CartLine, ...]
    total: Decimal
    shop_name: str


@dataclass(frozen=True)
class IssuedVoucher:
    """A single-use voucher the shop created for one cart."""

    code: str
    currency: str
    expires_at: datetime


@dataclass(frozen=True)
class UpsellProduct:
    """A product suggested next to the cart, priced in the channel's currency."""

    product_id: str
    slug: str
    name: str
    price: Decimal
    currency: str
    image_url: str | None


@dataclass(frozen=True)
class OrderRef:
    id: str
    number: str
    checkout_token: str
    email: str
    total: Decimal
    currency: str
    created_at: datetime


class Shop(Protocol):
    def channel_settings(self, channel_slug: str) -> RecoverySettings | None:
        """The channel's valid settings while the plugin is active there, else ``None``."""

    def load_cart(self, checkout_token: str) -> CartSnapshot | None:
        """The checkout as it is now, or ``None`` when it no longer exists."""

    def find_order(self, checkout_token: str) -> OrderRef | None:
        """The order placed from this checkout, if any."""

    def endpoint_url(self, channel_slug: str, path: str) -> str:
        """Absolute URL of the plugin endpoint ``path`` in the channel."""

    def write_access(self) -> AbstractContextManager:
        """Context in which background code may write to the database."""

    def staff_can_view_reports(self, request, channel_slug: str) -> bool | None:
        """Whether the request comes from staff or an app allowed to read the report and use the
        API of the channel (MANAGE_CHECKOUTS or MANAGE_PLUGINS, and access to the channel);
        ``None`` when it carries no valid credentials."""

    def issue_voucher(
        self,
        channel_slug: str,
        *,
        discount_type: str,
        value: Decimal,
        min_total: Decimal | None,
        expires_at: datetime,
        name: str,
    ) -> IssuedVoucher:
        """Create a voucher with one unique random code, usable once, only in ``channel_slug``
        (in its currency), until ``expires_at``; ``discount_type`` is "percentage" or "fixed"."""

    def stock_levels(self, channel_slug: str, variant_ids: Iterable[str]) -> dict[str, int | None]:
        """Pieces available now (stock minus allocations) in the channel's warehouses, per variant;
        ``None`` for a variant that does not track stock (it is never "almost gone")."""

    def upsell_products(
        self,
        channel_slug: str,
        cart_variant_ids: Iterable[str],
        configured: tuple[str, ...] | None,
        limit: int,
    ) -> tuple[UpsellProduct, ...]:
        """Up to ``limit`` products published, purchasable and in stock in the channel, none of them
        in the cart: the ``configured`` ones (IDs, global IDs or slugs; unavailable ones are skipped
        with a logged reason), or with ``None`` products sharing a category or collection with the
        cart's products."""


ShopFactory = Callable[[], Shop]


@cache
def _factory(path: str) -> ShopFactory:
    return import_string(path)


def get_shop() -> Shop:
    """The configured shop; ``CART_RECOVERY_SHOP`` names it (default: the Saleor adapter)."""
    return _factory(getattr(django_settings, "CART_RECOVERY_SHOP", DEFAULT_SHOP))()
