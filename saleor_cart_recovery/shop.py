"""The port through which the core reaches the shop.

The Saleor adapter (:mod:`saleor_cart_recovery.saleor_host.shop`) implements it with Saleor's models;
tests use a small database-backed shop. Everything crossing the port is plain data, so templates
and tasks never hold a host model instance.
"""

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Protocol

from django.conf import settings as django_settings
from django.utils.module_loading import import_string

from .exceptions import ConfigurationError
from .models import Reason
from .settings.channel import RecoverySettings

logger = logging.getLogger(__name__)


DEFAULT_SHOP = "saleor_cart_recovery.saleor_host.shop.SaleorShop"
# A cart's voucher is named this and its checkout's token (either host): how Saleor's voucher list
# shows it, and how the App's cleanup knows one whose mark never came (app/saleor_api.py).
VOUCHER_NAME = "Cart recovery"


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
    # The variant's current price in the channel (catalogue promotions applied), the same kind of
    # price then and now: what "the price dropped" compares. ``None``: unknown, never compared.
    listing_price: Decimal | None = None


@dataclass(frozen=True)
class CartSnapshot:
    """The checkout as the shopper last saw it: its lines now, priced as the shop stored them at
    the shopper's last visit (see the adapter for where prices come from)."""

    token: str
    channel_slug: str
    email: str
    language_code: str
    currency: str
    lines: tuple[CartLine, ...]
    total: Decimal  # the lines' total: the cart's subtotal
    shop_name: str
    # What the owner's sending rules read (see series.rules): the checkout's metadata (public keys
    # over private ones), then the customer account's; the first name and country of the shipping,
    # else billing, address (the account's first name when no address has one).
    metadata: Mapping[str, str] = field(default_factory=dict)
    account_metadata: Mapping[str, str] = field(default_factory=dict)
    first_name: str = ""
    country: str = ""  # ISO 3166 code


@dataclass(frozen=True)
class IssuedVoucher:
    """A single-use voucher the shop created for one cart (``id``: the shop's, to delete it)."""

    code: str
    currency: str
    expires_at: datetime
    id: str


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
class OrderLookup:
    """Which order stops a cart: the one from its checkout, else one by the same shopper in the
    channel at or after ``since`` (the cart's last activity)."""

    checkout_token: str
    channel_slug: str
    email: str
    since: datetime


@dataclass(frozen=True)
class OrderRef:
    id: str
    number: str
    checkout_token: str
    email: str
    total: Decimal
    currency: str
    created_at: datetime
    refunded: Decimal = Decimal(0)  # refunded so far (the report's net revenue takes it off)
    cancelled: bool = False


@dataclass(frozen=True)
class DashboardChannel:
    slug: str
    name: str
    currency: str
    active: bool  # the plugin is active in the channel


@dataclass(frozen=True)
class DashboardViewer:
    """A staff user looking at the plugin's pages inside the Saleor Dashboard, as the Dashboard's
    token for our app says: who, and the channels they may see (by name)."""

    email: str
    channels: tuple[DashboardChannel, ...]
    # MANAGE_PLUGINS: may save the settings (seeing them needs only MANAGE_CHECKOUTS)
    can_change_settings: bool = False

    def channel(self, slug: str) -> DashboardChannel | None:
        return next((channel for channel in self.channels if channel.slug == slug), None)


@dataclass(frozen=True)
class DashboardInstall:
    """What ``cart_recovery_dashboard`` left in the shop: the app and its extensions."""

    app_id: str
    created: bool
    app_url: str
    extensions: tuple[str, ...]  # "label (mount, target)"


class Shop(Protocol):
    """Any method reading or writing the shop's data may raise :class:`ShopUnavailable` when the
    shop cannot be asked right now (a host reaching it over the network): the send path then gives
    its whole batch back for a later retry instead of asking again once per message."""

    # Seconds one answer may stand for the order check right before a send (invariant 3): 0 asks
    # :meth:`find_orders` about each message alone; more asks about the next messages of the batch
    # at once and relies on that answer while it is younger (:mod:`.series.order_check`). Such a
    # host may also offer ``find_orders_since(lookups, read_at) -> dict[str, OrderRef] | None``:
    # :meth:`find_orders`'s answer for lookups that its answer asked at ``read_at`` found no order
    # for, from what changed in the shop since (``None``: that cannot tell, ask :meth:`find_orders`),
    # so the check after the batch's full read asks only about the changes.
    order_answer_window: float

    def channel_settings(self, channel_slug: str) -> RecoverySettings | None:
        """The channel's settings while the plugin is active there, else ``None``; raises
        :class:`ConfigurationError` when the stored configuration does not parse or lacks what an
        active plugin needs (callers go through :func:`usable_settings`)."""

    def load_carts(self, checkout_tokens: Sequence[str]) -> dict[str, CartSnapshot]:
        """The checkouts that still exist, by token, read with a bounded number of queries
        whatever their number (no pricing run, no webhook per cart)."""

    def sample_cart(self, channel_slug: str, language_code: str) -> CartSnapshot:
        """A cart for previews and test sends when no checkout is named: a few of the channel's
        products at their channel prices, in its currency (made-up lines when it has none)."""

    def delete_expired_vouchers(self, now: datetime) -> int:
        """Delete the vouchers this plugin issued that expired before ``now`` without being used;
        how many were deleted."""

    def find_orders(self, lookups: Sequence[OrderLookup]) -> dict[str, OrderRef]:
        """Per lookup's checkout token, the order placed from that checkout; else the newest order
        in its channel placed at or after ``since`` by its email (as the order's email or its
        customer account's). Tokens with no such order are absent. A bounded number of queries."""

    def endpoint_url(self, channel_slug: str, path: str) -> str:
        """Absolute URL of the plugin endpoint ``path`` in the channel (served while active)."""

    def link_url(self, path: str) -> str:
        """Absolute URL of ``path`` that reaches the plugin whether or not it is active in any
        channel: the unsubscribe link must keep working after the plugin is switched off."""

    def write_access(self) -> AbstractContextManager:
        """Context in which background code may write to the database."""

    def staff_can_view_reports(self, request, channel_slug: str) -> bool | None:
        """Whether the request comes from staff or an app allowed to read the report and use the
        API of the channel (MANAGE_CHECKOUTS or MANAGE_PLUGINS, and access to the channel);
        ``None`` when it carries no valid credentials."""

    def dashboard_viewer(self, token: str) -> DashboardViewer:
        """The staff user the Dashboard's token (handed to our page in its handshake) was issued
        to, for our app or one of its extensions, with MANAGE_CHECKOUTS; raises
        :class:`DashboardRefused` (401: forged, expired, another app's; 403: not allowed)."""

    def stored_configuration(self, channel_slug: str) -> dict[str, str] | None:
        """The channel's configuration as saved in the Dashboard (active or not, parsed or not);
        ``None`` when it was never saved."""

    def save_configuration(
        self, channel_slug: str, values: Mapping[str, str | None], active: bool | None
    ) -> bool:
        """Save the named settings of the channel (the others stay as stored) and, unless ``None``,
        whether the plugin is active there; whether it is active after the save. The values are
        what :func:`.settings.validation.changes_to_save` makes of them (a secret given blank or
        masked keeps its stored value, ``None`` resets a field to its default) and the whole result
        is checked by :func:`.settings.validation.validate_configuration` with the upsell products
        checked in the channel; raises :class:`ConfigurationError` naming every bad (or unknown)
        field, and then nothing at all is stored."""

    def unavailable_products(self, channel_slug: str, references: Iterable[str]) -> dict[str, str]:
        """Why each of the configured upsell products (IDs, global IDs or slugs) cannot be shown in
        the channel ("no such product", not published or purchasable there); the others are absent."""

    def staff_can_change_settings(self, request, channel_slug: str) -> bool:
        """Whether the request (already allowed to use the API, see :meth:`staff_can_view_reports`)
        comes from staff or an app with MANAGE_PLUGINS, which saving the settings needs."""

    def customer_email(self, customer_id: str) -> str | None:
        """The email of a customer account named by its (global) ID; ``None`` when unknown."""

    def install_dashboard(self, app_url: str, origins: Sequence[str] = ()) -> DashboardInstall:
        """Create or update the Dashboard app and its extensions pointing at ``app_url``;
        ``origins`` (empty: any) are the Dashboard origins allowed to frame its pages."""

    def dashboard_origins(self) -> tuple[str, ...]:
        """The origins given at install (empty: any Dashboard may frame the pages)."""

    def remove_dashboard(self) -> bool:
        """Remove the Dashboard app; whether there was one."""

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

    def delete_voucher(self, voucher: IssuedVoucher) -> None:
        """Delete a voucher :meth:`issue_voucher` just created that no one will be sent (the claim
        it was issued for was lost meanwhile)."""

    def stock_levels(self, channel_slug: str, variant_ids: Iterable[str]) -> dict[str, int | None]:
        """Pieces available now (stock minus allocations) in the channel's warehouses, per variant;
        ``None`` for a variant that does not track stock (it is never "almost gone")."""

    def upsell_products(
        self,
        channel_slug: str,
        carts: Sequence[Iterable[str]],
        configured: tuple[str, ...] | None,
        limit: int,
    ) -> list[tuple[UpsellProduct, ...]]:
        """Per cart (its variant IDs), up to ``limit`` products published, purchasable and in stock
        in the channel, none of them in that cart: the ``configured`` ones (IDs, global IDs or slugs;
        unavailable ones are skipped with a logged reason), or with ``None`` products sharing a
        category or collection with the cart's products, by name. A bounded number of queries for
        any number of carts."""


# An order as :func:`match_orders` takes it: the order, its channel's slug, its addresses (the
# order's email, its account's).
OrderCandidate = tuple[OrderRef, str, Iterable[str]]


def match_orders(lookups: Sequence[OrderLookup], candidates: Iterable[OrderCandidate]) -> dict[str, OrderRef]:
    """The rule of :meth:`Shop.find_orders`, applied to the orders a shop read for the lookups:
    each candidate with its channel slug and its addresses (order email, account email)."""
    by_token: dict[str, OrderRef] = {}
    by_address: dict[tuple[str, str], list[OrderRef]] = {}
    for candidate, channel_slug, emails in candidates:
        if candidate.checkout_token:
            by_token.setdefault(candidate.checkout_token, candidate)
        for email in {e.strip().lower() for e in emails if e}:
            by_address.setdefault((channel_slug, email), []).append(candidate)
    found = {}
    for lookup in lookups:
        order: OrderRef | None = by_token.get(lookup.checkout_token)
        if order is None and lookup.email:
            later = [
                other
                for other in by_address.get((lookup.channel_slug, lookup.email.strip().lower()), ())
                if other.created_at >= lookup.since
            ]
            order = max(later, key=lambda other: other.created_at, default=None)
        if order is not None:
            found[lookup.checkout_token] = order
    return found


ShopFactory = Callable[[], Shop]


@cache
def _factory(path: str) -> ShopFactory:
    return import_string(path)


def usable_settings(
    channel_slug: str, shop: Shop | None = None
) -> tuple[RecoverySettings | None, str | None]:
    """The channel's settings, or ``None`` and why not: ``plugin_inactive``, or
    ``configuration_invalid`` (stored values that no longer parse — written past validation or by
    an older version; logged). Any other error reading them (the database hiccuped) is raised:
    it says nothing about the channel, so callers retry instead of stopping its carts."""
    try:
        found = (shop or get_shop()).channel_settings(channel_slug)
    except ConfigurationError as exc:
        logger.error("cart recovery is active in channel %s but misconfigured: %s", channel_slug, exc)
        return None, Reason.CONFIGURATION_INVALID
    return (found, None) if found is not None else (None, Reason.PLUGIN_INACTIVE)


def settings_or_none(channel_slug: str) -> RecoverySettings | None:
    """The channel's usable settings, for readers (report, API, links) that only need to know."""
    try:
        return usable_settings(channel_slug)[0]
    except Exception:
        logger.exception("cart recovery: could not read the settings of channel %s", channel_slug)
        return None


def get_shop() -> Shop:
    """The configured shop; ``CART_RECOVERY_SHOP`` names it (default: the Saleor adapter)."""
    return _factory(getattr(django_settings, "CART_RECOVERY_SHOP", DEFAULT_SHOP))()
