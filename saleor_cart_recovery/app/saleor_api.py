"""The shop port's data side over Saleor's GraphQL API: what :class:`~..saleor_host.shop.SaleorShop`
reads from Saleor's database, asked of Saleor with the app's token, with the same answers.

IDs are given as the plugin gives them (database keys: a variant ``"42"``, an order's UUID), so the
core's stored facts read the same under either host; variant and product references are accepted as
keys or global IDs. Money is :class:`~decimal.Decimal` as Saleor wrote it (the client parses JSON
numbers as decimals). Every read is one request per call for a send batch (aliases, ``where`` or
``ids``), the related products one per 90 categories and collections; see :mod:`.queries` for the
limits the documents respect.

What the API cannot give that the plugin reads from the database (listed in docs/app.md):

- **Stored checkout prices.** Reading any price of a checkout or its lines re-prices the checkout
  when its stored prices are older than Saleor's ``CHECKOUT_PRICES_TTL`` (an hour), tax apps
  included — exactly what an abandoned cart's are. So a cart's lines are shown at their variant's
  price in the channel now (catalogue promotions applied), the plugin's rule for a checkout changed
  after its last pricing; vouchers, order promotions and a tax app's taxes the shopper saw are not
  in it, nor a line's price override (not exposed). A variant no longer priced in the channel
  shows 0.
- **Refunds** are Saleor's ``Order.totalRefunded``: the last payment's refunds while it is active
  or fully refunded, else the transactions'; the plugin also counts refunds of earlier payments.
- **Orders by address** are found as the plugin finds them (the order's email or its account's,
  whole and regardless of case) for every address that is an email to Django's validator; another
  string (Saleor lets a checkout keep one) is matched as written and lowercased, on the order's own
  email only.
- **Images**: an external image URL is linked through Saleor's thumbnail proxy (the API does not
  expose the original URL); an uploaded image's thumbnail URL once Saleor made it (the plugin
  always links the proxy, which redirects to the same file).
- **Stock** counts the channel's warehouses; with Saleor's legacy setting
  ``useLegacyShippingZoneStockAvailability`` the plugin counts only those in the channel's
  shipping zones.
- **Vouchers**: the cleanup finds ours by a public metadata mark (Saleor filters vouchers on public
  metadata only; the private mark the plugin uses is written too, so the plugin's cleanup finds
  the App's). Saleor's ``VoucherInput`` takes no metadata (3.23, 3.24-dev), so the mark comes in a
  second request, before the channel listing: a voucher whose ``voucherCreate`` answer was lost,
  or whose second request never reached Saleor and that could not be deleted either, stays
  unmarked and in no channel (its code works nowhere and was sent to no one); the cleanup finds
  those by name and deletes them once expired (:meth:`SaleorApi.delete_expired_vouchers` says
  which exactly). The plugin makes voucher and mark in one transaction. Vouchers the plugin issued
  are found by name but kept: they are in a channel, as an owner's voucher named like ours may be,
  and carry the plugin's private mark at most. After a move from the plugin, its expired coupons
  stay until deleted in the Dashboard.
- The **checkout's currency** is its channel's (the API has no checkout currency field).
"""

import base64
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple
from uuid import UUID

from babel.numbers import get_currency_precision
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from ..series.suppression import normalize_email
from ..shop import (
    VOUCHER_NAME,
    CartLine,
    CartSnapshot,
    IssuedVoucher,
    OrderCandidate,
    OrderLookup,
    OrderRef,
    UpsellProduct,
    match_orders,
)
from . import queries
from .client import SaleorClient, SaleorQueryError

logger = logging.getLogger(__name__)

# Metadata key on the vouchers we issue (the plugin's, so both hosts' cleanups know them).
VOUCHER_MARK = "saleor_cart_recovery"
SAMPLE_PRODUCTS = 2
SAMPLE_TOKEN = "00000000-0000-0000-0000-000000000000"
# Code length and alphabet: unambiguous capitals and digits, like Saleor's promo codes.
CODE_LENGTH = 12
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_ATTEMPTS = 3
# What the cleanup asks Saleor for, next to our mark or our name: vouchers expired and unused on
# Saleor's count (see SaleorApi.delete_expired_vouchers).
CLEANUP_CANDIDATES = {"status": ["EXPIRED"], "timesUsed": {"lte": 0}}
# How much earlier than a read Saleor may date a change the read did not show: its clock behind
# ours, the change's transaction still committing, its read replica behind (seconds, usually).
UNSEEN = timedelta(minutes=5)
# Our vouchers' name: VOUCHER_NAME and the checkout's token, a UUID as Saleor writes it.
_OUR_NAME = re.compile(rf"{re.escape(VOUCHER_NAME)} [0-9a-f]{{8}}(-[0-9a-f]{{4}}){{3}}-[0-9a-f]{{12}}")


@dataclass(frozen=True)
class AppIdentity:
    """The app the token belongs to, as Saleor says: its ID and permission codes."""

    id: str
    permissions: frozenset[str]


class VoucherRefused(SaleorQueryError):
    """Saleor refused to create or list the voucher (its ``errors``)."""


def global_id(kind: str, pk: str) -> str:
    return base64.b64encode(f"{kind}:{pk}".encode()).decode()


def database_id(value: str) -> str:
    """The key inside a global ID (``UHJvZHVjdFZhcmlhbnQ6NDI=`` → ``42``); other values unchanged."""
    if value.isdigit():  # a key already (some are valid base64)
        return value
    try:
        kind, _, pk = base64.b64decode(value, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return value
    return pk if kind and pk else value


def _as_global(kind: str, reference: str) -> str | None:
    """A key or a global ID of ``kind`` as a global ID; ``None`` for anything else."""
    reference = str(reference)
    if reference.isdigit():
        return global_id(kind, reference)
    try:
        decoded = base64.b64decode(reference, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    found, _, pk = decoded.partition(":")
    return reference if found == kind and pk.isdigit() else None


def _quantize(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-get_currency_precision(currency)))


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _datetime(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _edges(connection: Mapping | None) -> list[dict]:
    return [edge["node"] for edge in (connection or {}).get("edges") or ()]


def _metadata(*items: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    """Later lists over earlier ones (callers pass private, then public)."""
    merged: dict[str, str] = {}
    for listed in items:
        merged.update({item["key"]: item["value"] for item in listed or ()})
    return merged


def _image(*media_sets: Iterable[Mapping] | None) -> str | None:
    """The first image of the first set that has one (videos have no thumbnail)."""
    for media in media_sets:
        found = next((m for m in media or () if m.get("type") == "IMAGE"), None)
        if found is not None:
            return found.get("url") or None
    return None


def _money(value: Any, currency: str) -> Decimal:
    """An amount Saleor sent as a JSON number (``3.5``) as the database holds it (``3.50``)."""
    return _quantize(_decimal(value), currency)


def _gross(pricing: Mapping | None, currency: str) -> Decimal | None:
    price = ((pricing or {}).get("price") or {}).get("gross")
    return _money(price["amount"], currency) if price else None


def _language(code: str | None) -> str:
    """Saleor's ``LanguageCodeEnum`` (``PT_BR``) as Django names it (``pt-br``), as stored."""
    return code.lower().replace("_", "-") if code else "en"


def _available(variant: Mapping, warehouses: set[str], now: datetime) -> int | None:
    """Pieces available in ``warehouses`` (stock minus allocations), ``None`` when not tracked."""
    preorder = variant.get("preorder")
    if preorder is not None:
        end = _datetime(preorder.get("endDate"))
        if end is None or end > now:
            return None
    if not variant.get("trackInventory", True):
        return None
    return sum(
        max(stock["quantity"] - stock["quantityAllocated"], 0)
        for stock in variant.get("stocks") or ()
        if stock["warehouse"]["id"] in warehouses
    )


def _warehouses(channel: Mapping | None) -> set[str]:
    return {warehouse["id"] for warehouse in (channel or {}).get("warehouses") or ()}


def read_order(node: Mapping) -> OrderCandidate:
    """An order read with :data:`.queries.ORDER_FIELDS` (by a query or in a webhook's payload) as
    :func:`match_orders` takes it: the order, its channel's slug, its addresses (the address shown
    is the order's, else its account's). Raises ``KeyError``/``TypeError``/``ValueError`` on a node
    without those fields."""
    account_email = (node.get("user") or {}).get("email") or ""
    checkout_id = node.get("checkoutId")
    gross = node["total"]["gross"]
    order = OrderRef(
        id=database_id(node["id"]),
        number=str(node["number"]),
        checkout_token=database_id(checkout_id) if checkout_id else "",
        email=node.get("userEmail") or account_email,
        total=_money(gross["amount"], gross["currency"]),
        currency=gross["currency"],
        created_at=datetime.fromisoformat(node["created"]),
        refunded=_money((node.get("totalRefunded") or {}).get("amount") or 0, gross["currency"]),
        cancelled=node.get("status") == "CANCELED",
    )
    return order, node["channel"]["slug"], [node.get("userEmail") or "", account_email]


def _snapshot(node: Mapping, shop_name: str) -> CartSnapshot:
    channel = node["channel"]
    currency = channel["currencyCode"]
    lines = []
    for line in node.get("lines") or ():
        variant = line["variant"]
        listing_price = None if line.get("isGift") else _gross(variant.get("pricing"), currency)
        unit_price = Decimal(0) if line.get("isGift") else (listing_price or Decimal(0))
        lines.append(
            CartLine(
                variant_id=database_id(variant["id"]),
                product_name=variant["product"]["name"],
                variant_name=variant.get("name") or "",
                sku=variant.get("sku") or "",
                quantity=line["quantity"],
                unit_price=unit_price,
                total=_quantize(unit_price * line["quantity"], currency),
                image_url=_image(variant.get("media"), variant["product"].get("media")),
                listing_price=listing_price,
            )
        )
    user = node.get("user")
    addresses = [a for a in (node.get("shippingAddress"), node.get("billingAddress")) if a]
    return CartSnapshot(
        token=node["token"],
        channel_slug=channel["slug"],
        email=node.get("email") or "",
        language_code=_language(node.get("languageCode")),
        currency=currency,
        lines=tuple(lines),
        total=sum((line.total for line in lines), Decimal(0)),
        shop_name=shop_name,
        metadata=_metadata(node.get("privateMetadata"), node.get("metadata")),
        account_metadata=_metadata(user.get("privateMetadata"), user.get("metadata")) if user else {},
        first_name=next(
            (a["firstName"] for a in addresses if a.get("firstName")), (user or {}).get("firstName") or ""
        ),
        country=next((a["country"]["code"] for a in addresses if (a.get("country") or {}).get("code")), ""),
    )


def _chunks(items: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SaleorApi:
    """The shop port's reads and voucher writes, one :class:`SaleorClient` (the app's token)."""

    def __init__(self, client: SaleorClient):
        self.client = client

    # -- carts --------------------------------------------------------------------------------

    def load_carts(self, checkout_tokens: Sequence[str]) -> dict[str, CartSnapshot]:
        """One request per 50 checkouts; tokens Saleor does not know (or not UUIDs) are absent."""
        tokens = list(dict.fromkeys(str(token) for token in checkout_tokens if _is_uuid(str(token))))
        carts: dict[str, CartSnapshot] = {}
        for chunk in _chunks(tokens, queries.CARTS_PER_REQUEST):
            data = self.client.execute(
                queries.load_carts(len(chunk)),
                {f"c{index}": global_id("Checkout", token) for index, token in enumerate(chunk)},
            )
            shop_name = data["shop"]["name"]
            for index in range(len(chunk)):
                node = data.get(f"c{index}")
                if node is not None:
                    carts[node["token"]] = _snapshot(node, shop_name)
        return carts

    def sample_cart(self, channel_slug: str, language_code: str) -> CartSnapshot:
        """The channel's cheapest priced variants of published products, one of each (a made-up
        line when it sells nothing yet). The two cheapest variants are among the variants of the
        two products with the lowest price, which is all this reads."""
        data = self.client.execute(queries.SAMPLE_CART, {"channel": channel_slug, "first": SAMPLE_PRODUCTS})
        if data.get("channel") is None:
            raise SaleorQueryError([{"message": f"no channel {channel_slug}"}])
        currency = data["channel"]["currencyCode"]
        # (listing price, variant key, variant, its product): cheapest first, as the plugin orders
        offered = [
            (_money(listing["price"]["amount"], currency), int(database_id(variant["id"])), variant, product)
            for product in _edges(data.get("products"))
            for variant in product.get("variants") or ()
            for listing in variant.get("channelListings") or ()
            if listing["channel"]["slug"] == channel_slug and listing.get("price")
        ]
        lines = []
        for _, _, variant, product in sorted(offered, key=lambda item: item[:2])[:SAMPLE_PRODUCTS]:
            price = _gross(variant.get("pricing"), currency) or Decimal(0)
            lines.append(
                CartLine(
                    variant_id=database_id(variant["id"]),
                    product_name=product["name"],
                    variant_name=variant.get("name") or "",
                    sku=variant.get("sku") or "",
                    quantity=1,
                    unit_price=price,
                    total=price,
                    image_url=_image(variant.get("media"), product.get("media")),
                    listing_price=price,
                )
            )
        if not lines:
            lines.append(
                CartLine(
                    "sample", "Sample product", "", "SAMPLE", 1, Decimal("49.00"), Decimal("49.00"), None
                )
            )
        return CartSnapshot(
            token=SAMPLE_TOKEN,
            channel_slug=channel_slug,
            email="",
            language_code=language_code,
            currency=currency,
            lines=tuple(lines),
            total=sum((line.total for line in lines), Decimal(0)),
            shop_name=data["shop"]["name"],
            first_name="Alex",
        )

    # -- orders -------------------------------------------------------------------------------

    def find_orders(self, lookups: Sequence[OrderLookup]) -> dict[str, OrderRef]:
        """One request for a send batch (more only past 89 addresses or 100 orders from checkouts):
        the orders of the lookups' checkouts and, per address and channel, the newest order placed
        with that email or by an account with it, compared whole and regardless of case as the
        plugin compares (see :func:`.queries.find_orders`); :func:`match_orders` applies the rule.

        An address Saleor's filter does not take for an email (Django's validator; it would search
        names with it) is matched as written and lowercased instead, on the order's own email."""
        if not lookups:
            return {}
        tokens = sorted({lookup.checkout_token for lookup in lookups if _is_uuid(lookup.checkout_token)})
        typed = {(lookup.channel_slug, lookup.email.strip()) for lookup in lookups if lookup.email.strip()}
        by_address = sorted({(channel, email.lower()) for channel, email in typed if _is_email(email)})
        odd = sorted({form for _, email in typed if not _is_email(email) for form in (email, email.lower())})
        where: dict[str, Any] = {"checkoutToken": {"oneOf": tokens}}
        if odd:
            since = min(lookup.since for lookup in lookups).isoformat()
            where = {"OR": [where, {"AND": [{"userEmail": {"oneOf": odd}}, {"createdAt": {"gte": since}}]}]}
        found: dict[str, OrderCandidate] = {}
        chunks = list(_chunks(by_address, queries.ADDRESSES_PER_REQUEST))
        paging, after = bool(tokens or odd), None
        while paging or chunks:
            chunk = chunks.pop(0) if chunks else ()
            variables: dict[str, Any] = {"where": where, "after": after} if paging else {}
            for index, (channel_slug, email) in enumerate(chunk):
                variables.update({f"a{index}": email, f"ch{index}": channel_slug})
            data = self.client.execute(queries.find_orders(len(chunk), by_checkout=paging), variables)
            nodes = [node for index in range(len(chunk)) for node in _edges(data[f"a{index}"])]
            if paging:
                nodes += _edges(data["byCheckout"])
                page = data["byCheckout"]["pageInfo"]
                paging, after = page["hasNextPage"], page["endCursor"]
            for node in nodes:
                found.setdefault(node["id"], read_order(node))
        return match_orders(lookups, found.values())

    def find_orders_since(
        self, lookups: Sequence[OrderLookup], read_at: datetime
    ) -> dict[str, OrderRef] | None:
        """:meth:`find_orders`'s answer for ``lookups`` that its answer asked at ``read_at`` (our
        clock) found no order for, in one request whatever the lookups: the orders and accounts
        Saleor saved :data:`UNSEEN` before that or later (any channel), the orders matched by the
        rule. ``None`` when that cannot tell: more than a page of either (then asking
        :meth:`find_orders` costs less), or an account now has one of the lookups' addresses (its
        orders, older ones too, are the address's now)."""
        since = (read_at - UNSEEN).isoformat()
        data = self.client.execute(queries.CHANGED_SINCE, {"since": since})
        orders, accounts = data["orders"], data["customers"]
        if orders["pageInfo"]["hasNextPage"] or accounts["pageInfo"]["hasNextPage"]:
            return None
        addresses = {normalize_email(lookup.email) for lookup in lookups if lookup.email.strip()}
        if any(normalize_email(node["email"] or "") in addresses for node in _edges(accounts)):
            return None
        return match_orders(lookups, [read_order(node) for node in _edges(orders)])

    # -- offers -------------------------------------------------------------------------------

    def _variants(
        self, document: Callable[[int], str], ids: Sequence[str], fields_cost: int, **variables
    ) -> Iterator[tuple[dict[str, Any], list[dict]]]:
        """``(answer, variant nodes)`` per request for ``ids`` (global IDs): a page of IDs per
        alias, as many aliases per request as Saleor's limits allow (one request for a batch)."""
        per_request = queries.variant_pages_per_request(fields_cost) * queries.PAGE
        for chunk in _chunks(ids, per_request):
            pages = list(_chunks(chunk, queries.PAGE))
            data = self.client.execute(
                document(len(pages)), {**variables, **{f"v{i}": list(page) for i, page in enumerate(pages)}}
            )
            yield data, [node for index in range(len(pages)) for node in _edges(data[f"v{index}"])]

    def stock_levels(self, channel_slug: str, variant_ids: Iterable[str]) -> dict[str, int | None]:
        """One request (up to 9000 variants); variants Saleor does not know are absent."""
        ids = list(dict.fromkeys(gid for v in variant_ids if (gid := _as_global("ProductVariant", v))))
        now = datetime.now(UTC)
        levels: dict[str, int | None] = {}
        for data, variants in self._variants(
            queries.stock_levels, ids, queries.VARIANT_STOCK_COST, channel=channel_slug
        ):
            warehouses = _warehouses(data.get("channel"))
            for variant in variants:
                levels[database_id(variant["id"])] = _available(variant, warehouses, now)
        return levels

    def upsell_products(
        self,
        channel_slug: str,
        carts: Sequence[Iterable[str]],
        configured: tuple[str, ...] | None,
        limit: int,
    ) -> list[tuple[UpsellProduct, ...]]:
        """One request for the cart products' categories and collections, then one for the first
        products of each of them (one per 90 of them) or for the configured products, whatever the
        number of carts."""
        cart_variants = [{gid for v in cart if (gid := _as_global("ProductVariant", v))} for cart in carts]
        product_of: dict[str, str] = {}
        seeds: dict[str, tuple[str | None, set[str]]] = {}
        everything = sorted(set().union(*cart_variants))
        for _, variants in self._variants(queries.upsell_seeds, everything, queries.VARIANT_SEED_COST):
            for variant in variants:
                product = variant["product"]
                product_of[variant["id"]] = product["id"]
                seeds[product["id"]] = (
                    (product.get("category") or {}).get("id"),
                    {collection["id"] for collection in product.get("collections") or ()},
                )
        cart_products = [{product_of[v] for v in variants if v in product_of} for variants in cart_variants]
        if configured is None:
            candidates, currency = self._related(channel_slug, cart_products, seeds, limit * 5)
        else:
            wanted, currency = self._configured(channel_slug, configured)
            candidates = [[p for p in wanted if p.product_id not in cart] for cart in cart_products]
            for product in wanted:
                if product.price is None:
                    logger.warning(
                        "cart recovery: upsell product %s skipped: out of stock or unpriced", product.slug
                    )
        return [
            tuple(p.offer(currency) for p in products if p.price is not None)[:limit]
            for products in candidates
        ]

    def _related(
        self,
        channel_slug: str,
        cart_products: list[set[str]],
        seeds: Mapping[str, tuple[str | None, set[str]]],
        count: int,
    ) -> tuple[list[list["_Candidate"]], str]:
        """Per cart, the first ``count`` visible products by name sharing a category or collection
        with it: each group's first ``count + cart size`` read in one request (aliases)."""
        groups = sorted(
            {("category", category) for category, _ in seeds.values() if category}
            | {("collection", c) for _, collections in seeds.values() for c in collections}
        )
        # Saleor pages at 100: a cart of more products than that may see fewer suggestions
        enough = min(count + max((len(products) for products in cart_products), default=0), queries.PAGE)
        members: dict[tuple[str, str], list[_Candidate]] = {}
        currency = ""
        now = datetime.now(UTC)
        per_request = queries.groups_per_request(enough)
        for chunk in _chunks(groups, per_request) if groups else [()]:
            data = self.client.execute(
                queries.related_products(len(chunk)),
                {
                    "channel": channel_slug,
                    "n": enough,
                    **{
                        f"g{index}": {kind: {"eq": group_id}, "isPublished": True, "isAvailable": True}
                        for index, (kind, group_id) in enumerate(chunk)
                    },
                },
            )
            currency = data["channel"]["currencyCode"]
            for index, group in enumerate(chunk):
                members[group] = [
                    candidate
                    for node in _edges(data[f"g{index}"])
                    if (candidate := _Candidate.read(node, data["channel"], now)).visible
                ]
        by_name = sorted(
            {c.product_id: c for listed in members.values() for c in listed}.values(),
            key=lambda c: (
                c.name,
                int(database_id(c.product_id)) if database_id(c.product_id).isdigit() else 0,
            ),
        )
        related = []
        for cart in cart_products:
            ids: set[str] = set()
            for product_id in cart:
                category, collections = seeds.get(product_id, (None, set()))
                if category:
                    ids.update(c.product_id for c in members.get(("category", category), ()))
                for collection in collections:
                    ids.update(c.product_id for c in members.get(("collection", collection), ()))
            ids -= cart
            related.append([c for c in by_name if c.product_id in ids][:count])
        return related, currency

    def _configured(self, channel_slug: str, references: tuple[str, ...]) -> tuple[list["_Candidate"], str]:
        """The owner's products that can be shown in the channel, in the owner's order (the others
        logged with why)."""
        data, found = self._by_reference(channel_slug, references)
        wanted = []
        for reference, candidate in found.items():
            if candidate is None:
                logger.warning("cart recovery: upsell product %s skipped: no such product", reference)
            elif not candidate.visible:
                logger.warning(
                    "cart recovery: upsell product %s skipped: not published in channel %s",
                    reference,
                    channel_slug,
                )
            else:
                wanted.append(candidate)
        return wanted, data["channel"]["currencyCode"]

    def _by_reference(
        self, channel_slug: str, references: Iterable[str]
    ) -> tuple[dict[str, Any], dict[str, "_Candidate | None"]]:
        """Each reference (key, ``Product`` global ID or slug) to its product, or ``None``."""
        references = list(dict.fromkeys(str(r) for r in references))
        ids = {r: gid for r in references if (gid := _as_global("Product", r))}
        slugs = [r for r in references if r not in ids]
        where = {"OR": [{"ids": sorted(set(ids.values()))}, {"slug": {"oneOf": slugs}}]}
        data = self.client.execute(queries.PRODUCTS_BY_REFERENCE, {"channel": channel_slug, "where": where})
        if data.get("channel") is None:
            raise SaleorQueryError([{"message": f"no channel {channel_slug}"}])
        now = datetime.now(UTC)
        products = [_Candidate.read(node, data["channel"], now) for node in _edges(data["products"])]
        by_id = {p.product_id: p for p in products}
        by_slug = {p.slug: p for p in products}
        return data, {r: by_id.get(ids[r]) if r in ids else by_slug.get(r) for r in references}

    def unavailable_products(self, channel_slug: str, refs: Iterable[str]) -> dict[str, str]:
        """Why each configured product cannot be shown in the channel: unknown or not published
        (one request)."""
        _, found = self._by_reference(channel_slug, refs)
        problems = {}
        for reference, candidate in found.items():
            if candidate is None:
                problems[reference] = "no such product"
            elif not candidate.visible:
                problems[reference] = f"not published and available for purchase in channel {channel_slug}"
        return problems

    # -- vouchers -----------------------------------------------------------------------------

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
        """``voucherCreate`` with a random code (another code when Saleor says it is taken), then
        our mark and its channel listing in one request; a voucher whose listing failed is
        deleted again, and one that cannot be is marked all the same (Saleor runs the document's
        mutations in order, each whatever the others answered) for the cleanup, as is one left
        unmarked (see :meth:`delete_expired_vouchers`). Raises :class:`VoucherRefused` with
        Saleor's errors."""
        channel = self.client.execute(queries.CHANNEL, {"slug": channel_slug})["channel"]
        if channel is None:
            raise SaleorQueryError([{"message": f"no channel {channel_slug}"}])
        voucher_input = {
            "type": "ENTIRE_ORDER",
            "name": name,
            "usageLimit": 1,
            "singleUse": True,
            "startDate": datetime.now(UTC).isoformat(),
            "endDate": expires_at.isoformat(),
            "discountValueType": "PERCENTAGE" if discount_type == "percentage" else "FIXED",
        }
        for _ in range(CODE_ATTEMPTS):
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            created = self.client.execute(
                queries.VOUCHER_CREATE, {"input": {**voucher_input, "addCodes": [code]}}
            )
            errors = created["voucherCreate"]["errors"]
            if not errors:
                break
            if not any(error.get("code") in ("ALREADY_EXISTS", "UNIQUE") for error in errors):
                raise VoucherRefused(errors)
        else:
            raise VoucherRefused(errors)
        voucher_id = created["voucherCreate"]["voucher"]["id"]
        listing = {"channelId": channel["id"], "discountValue": str(value)}
        if min_total is not None:
            listing["minAmountSpent"] = str(min_total)
        try:
            listed = self.client.execute(
                queries.VOUCHER_LISTING,
                {
                    "id": voucher_id,
                    "input": {"addChannels": [listing]},
                    "mark": [{"key": VOUCHER_MARK, "value": "coupon"}],
                },
            )
            errors = [error for field in listed.values() for error in field["errors"]]
            if errors:
                raise VoucherRefused(errors)
        except Exception:
            self.client.execute(queries.VOUCHER_DELETE, {"ids": [voucher_id]})
            raise
        currency = channel["currencyCode"]
        return IssuedVoucher(code=code, currency=currency, expires_at=expires_at, id=voucher_id)

    def delete_voucher(self, voucher: IssuedVoucher) -> None:
        """``voucherBulkDelete`` of the one voucher (one request)."""
        result = self.client.execute(queries.VOUCHER_DELETE, {"ids": [voucher.id]})["voucherBulkDelete"]
        if result["errors"]:
            raise SaleorQueryError(result["errors"])

    def delete_expired_vouchers(self, now: datetime) -> int:
        """Our vouchers that ended before ``now`` unused, deleted. Ours are those with our public
        mark (Saleor's metadata filter), and those ``voucherCreate`` made whose mark never came
        (its answer lost, or the marking request never reaching Saleor and the delete failing):
        found by Saleor's ``search`` (a name or code containing ``Cart recovery``, regardless of
        case), these are deleted only when all of the following hold, so that no owner's voucher is:

        - named exactly ``Cart recovery <checkout token>`` (a lowercase UUID): the name is ours;
        - no mark, public or private: ours lacks it only when the marking request never ran (one
          with the plugin's private mark alone is the plugin's, for its own cleanup);
        - in no channel: usable nowhere, so no shopper can use it and no owner offers it;
        - ended before ``now`` and unused, as the marked ones.

        Saleor is asked for candidates only, so the cost follows the vouchers that expired unused,
        not every voucher ever issued: both selections add ``status: [EXPIRED]`` (started, and
        ended before Saleor's now or its usage limit reached) and ``timesUsed: {lte: 0}`` (its
        codes' uses summed; a voucher without codes has no sum and is left out, ours always have
        their one). The checks above still decide, on our clock. A voucher ended on our clock but
        not yet on Saleor's (Saleor's clock behind ours) is not read by this run; the next day's run
        deletes it (Saleor's clock less than a day behind), as it does a voucher that ended just
        after this run: a coupon that expired unused waits a day at most either way.

        One request per page of each selection (a voucher in both is deleted once), one per page
        of vouchers deleted."""
        selections = (
            {**CLEANUP_CANDIDATES, "metadata": [{"key": VOUCHER_MARK}]},
            {**CLEANUP_CANDIDATES, "search": VOUCHER_NAME},
        )
        expired = list(
            dict.fromkeys(
                voucher["id"]
                for selection in selections
                for voucher in self._vouchers(selection)
                if _ours_to_delete(voucher, now)
            )
        )
        if not expired:
            return 0
        deleted = 0
        for chunk in _chunks(expired, queries.PAGE):
            result = self.client.execute(queries.VOUCHER_DELETE, {"ids": list(chunk)})["voucherBulkDelete"]
            if result["errors"]:
                raise SaleorQueryError(result["errors"])
            deleted += result["count"]
        logger.info("cart recovery: deleted %s expired unused voucher(s)", deleted)
        return deleted

    def _vouchers(self, selection: Mapping[str, Any]) -> Iterator[dict]:
        """Every voucher the ``VoucherFilterInput`` ``selection`` finds, a page per request."""
        after = None
        while True:
            found = self.client.execute(queries.OUR_VOUCHERS, {"filter": selection, "after": after})[
                "vouchers"
            ]
            yield from _edges(found)
            if not found["pageInfo"]["hasNextPage"]:
                return
            after = found["pageInfo"]["endCursor"]

    # -- customers, channels, the app ---------------------------------------------------------

    def customer_email(self, customer_id: str) -> str | None:
        """A customer's email (never a staff member's); ``None`` for anything else."""
        if not _as_global("User", customer_id) or str(customer_id).isdigit():
            return None
        user = self.client.execute(queries.CUSTOMER_EMAIL, {"id": customer_id})["user"]
        return user["email"] if user and not user["isStaff"] else None

    def channels(self) -> tuple["Channel", ...]:
        """Every channel as ``(slug, name, currency)``, for the Dashboard pages."""
        return tuple(
            Channel(c["slug"], c["name"], c["currencyCode"])
            for c in self.client.execute(queries.CHANNELS)["channels"] or ()
        )

    def app_identity(self) -> AppIdentity:
        """The app the token belongs to; raises :class:`AppTokenRevoked` when it is not an app's."""
        app = self.client.execute(queries.APP_IDENTITY)["app"]
        return AppIdentity(id=app["id"], permissions=frozenset(p["code"] for p in app["permissions"]))


class Channel(NamedTuple):
    slug: str
    name: str
    currency: str


@dataclass(frozen=True)
class _Candidate:
    """A product read for the upsell: whether a shopper can see and buy it in the channel now, and
    its lowest price among its variants priced and available there (``None``: none is)."""

    product_id: str
    slug: str
    name: str
    visible: bool
    price: Decimal | None
    image_url: str | None

    def offer(self, currency: str) -> UpsellProduct:
        return UpsellProduct(
            product_id=database_id(self.product_id),
            slug=self.slug,
            name=self.name,
            price=self.price or Decimal(0),
            currency=currency,
            image_url=self.image_url,
        )

    @classmethod
    def read(cls, node: Mapping, channel: Mapping, now: datetime) -> "_Candidate":
        """``channel``: the channel's ``slug``, ``currencyCode`` and ``warehouses``."""
        channel_slug, currency, warehouses = channel["slug"], channel["currencyCode"], _warehouses(channel)
        listing = next(
            (x for x in node.get("channelListings") or () if x["channel"]["slug"] == channel_slug), None
        )
        published = _datetime((listing or {}).get("publishedAt"))
        purchasable = _datetime((listing or {}).get("availableForPurchaseAt"))
        visible = bool(
            listing
            and listing.get("isPublished")
            and (published is None or published <= now)
            and purchasable is not None
            and purchasable <= now
        )
        prices = [
            price
            for variant in node.get("variants") or ()
            if (price := _gross(variant.get("pricing"), currency)) is not None
            and _in_stock(_available(variant, warehouses, now))
        ]
        variants = sorted(node.get("variants") or (), key=lambda v: int(database_id(v["id"])))
        return cls(
            product_id=node["id"],
            slug=node["slug"],
            name=node["name"],
            visible=visible,
            price=min(prices) if prices else None,
            image_url=_image(variants[0].get("media") if variants else None, node.get("media")),
        )


def _in_stock(available: int | None) -> bool:
    return available is None or available > 0


def _is_email(address: str) -> bool:
    """Whether Saleor's ``customer`` filter compares ``address`` as an email (its validator)."""
    try:
        validate_email(address)
    except ValidationError:
        return False
    return True


def _ours_to_delete(voucher: Mapping, now: datetime) -> bool:
    """Whether the cleanup deletes ``voucher`` (see :meth:`SaleorApi.delete_expired_vouchers`)."""
    end = _datetime(voucher.get("endDate"))
    used = voucher.get("used") or any(code["used"] for code in _edges(voucher.get("codes")))
    if end is None or end >= now or used:
        return False
    if VOUCHER_MARK in _metadata(voucher.get("metadata")):
        return True
    return (
        VOUCHER_MARK not in _metadata(voucher.get("privateMetadata"))
        and not voucher.get("channelListings")
        and _OUR_NAME.fullmatch(voucher.get("name") or "") is not None
    )


def _is_uuid(token: str) -> bool:
    try:
        UUID(token)
    except ValueError:
        return False
    return True
