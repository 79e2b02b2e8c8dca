"""A stand-in Saleor for the App's tests on machines without Saleor: a real HTTP server on loopback
executing the GraphQL documents it receives against a subset of Saleor 3.23's schema (same type,
field and argument names; ``tests/saleor/test_saleor_api.py`` checks it is a subset of the real one)
over an in-memory shop, with Saleor's limits (aliases, mutations) and its ways of failing; and
Saleor's signing side, made the way Saleor 3.23 makes it (``saleor/core/jwt_manager.py``,
``saleor/webhook/transport``): one RSA key with its RFC 7638 thumbprint as key id, published at
``/.well-known/jwks.json``; webhook bodies signed as a detached JWS (``b64: false``,
``crit: ["b64"]``) with Saleor's headers; JWTs with Saleor's claims and ``iss`` = the API URL, whose
``me`` it answers (:meth:`StandinSaleor.staff`). Faults, switched on by the test:

- ``fault = "down"``: the connection is closed without an answer;
- ``fault = "error"``: HTTP 502 (a proxy in front of a crashed Saleor);
- ``fault = "slow"``: the answer comes after ``delay`` seconds;
- ``fault = "unauthorized"``: HTTP 401 (Saleor refusing the token outright);
- ``lost``: the names of operations whose documents are executed, then the connection closed with
  no answer (Saleor committed, and the answer never came: a proxy's timeout, a broken connection);
- ``revoke()``: the token is deleted; Saleor then treats its requests as anonymous;
- ``app_active = False``: the app is deactivated; Saleor treats its token's requests as anonymous too.

Others extend it with :meth:`StandinSaleor.route` (e.g. an app's webhook target).
Usage::

    with StandinSaleor() as saleor:
        saleor.shop.add_channel("default-channel", "Default", "USD")
        client = SaleorClient(saleor.api_url, saleor.token)
"""

import base64
import hashlib
import itertools
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from graphql import GraphQLError, build_ast_schema, parse, validate
from graphql.execution import execute
from graphql.language import ast as graphql_ast
from jwt import api_jws
from jwt.algorithms import RSAAlgorithm

ALIAS_LIMIT = 100  # GRAPHQL_ALIAS_COUNT_LIMIT
MUTATION_LIMIT = 4  # GRAPHQL_MUTATION_COUNT_LIMIT
PAGE_LIMIT = 100  # GRAPHQL_PAGINATION_LIMIT
PERMISSION_DENIED = "PermissionDenied"

SDL = """
scalar UUID
scalar DateTime
scalar PositiveDecimal

schema { query: Query mutation: Mutation }

type Query {
  shop: Shop!
  checkout(id: ID, token: UUID): Checkout
  orders(first: Int, after: String, where: OrderWhereInput, filter: OrderFilterInput, channel: String,
         sortBy: OrderSortingInput): OrderCountableConnection
  productVariants(ids: [ID!], channel: String, first: Int, after: String): ProductVariantCountableConnection
  products(channel: String, first: Int, after: String, where: ProductWhereInput,
           sortBy: ProductOrder): ProductCountableConnection
  channel(id: ID, slug: String): Channel
  channels: [Channel!]
  app(id: ID): App
  me: User
  user(id: ID, email: String): User
  customers(first: Int, after: String, where: CustomerWhereInput): UserCountableConnection
  vouchers(filter: VoucherFilterInput, channel: String, first: Int, after: String): VoucherCountableConnection
}

type Mutation {
  voucherCreate(input: VoucherInput!): VoucherCreate
  voucherChannelListingUpdate(id: ID!, input: VoucherChannelListingInput!): VoucherChannelListingUpdate
  voucherBulkDelete(ids: [ID!]!): VoucherBulkDelete
  updateMetadata(id: ID!, input: [MetadataInput!]!): UpdateMetadata
  updatePrivateMetadata(id: ID!, input: [MetadataInput!]!): UpdatePrivateMetadata
}

type PageInfo { hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String endCursor: String }
type Shop { name: String! }
type MetadataItem { key: String! value: String! }
type Money { currency: String! amount: Float! }
type TaxedMoney { currency: String! gross: Money! net: Money! }
type CountryDisplay { code: String! country: String! }
type Address { id: ID! firstName: String! country: CountryDisplay! }
type Warehouse { id: ID! name: String! }
type Channel { id: ID! slug: String! name: String! currencyCode: String! warehouses: [Warehouse!]! }
type Category { id: ID! name: String! }
type Collection { id: ID! name: String! }
enum ProductMediaType { IMAGE VIDEO }
enum ThumbnailFormatEnum { ORIGINAL AVIF WEBP }
type ProductMedia { id: ID! type: ProductMediaType! url(size: Int, format: ThumbnailFormatEnum): String! }
type PreorderData { endDate: DateTime }
type Stock { id: ID! warehouse: Warehouse! quantity: Int! quantityAllocated: Int! }
type VariantPricingInfo { price: TaxedMoney }
type ProductVariantChannelListing { id: ID! channel: Channel! price: Money }
type ProductChannelListing {
  id: ID! channel: Channel! isPublished: Boolean! publishedAt: DateTime availableForPurchaseAt: DateTime
}
type ProductVariant {
  id: ID! name: String! sku: String trackInventory: Boolean! media: [ProductMedia!] product: Product!
  pricing: VariantPricingInfo preorder: PreorderData stocks: [Stock!]
  channelListings: [ProductVariantChannelListing!]
}
type Product {
  id: ID! name: String! slug: String! media: [ProductMedia!] category: Category collections: [Collection!]
  channelListings: [ProductChannelListing!] variants: [ProductVariant!]
}
type CheckoutLine { id: ID! quantity: Int! isGift: Boolean variant: ProductVariant! }
enum LanguageCodeEnum { EN EN_US DE FR PL PT_BR }
type Checkout {
  id: ID! token: UUID! email: String languageCode: LanguageCodeEnum! channel: Channel!
  metadata: [MetadataItem!]! privateMetadata: [MetadataItem!]! user: User
  shippingAddress: Address billingAddress: Address lines: [CheckoutLine!]!
}
enum OrderStatus {
  DRAFT UNCONFIRMED UNFULFILLED PARTIALLY_FULFILLED PARTIALLY_RETURNED RETURNED FULFILLED CANCELED EXPIRED
}
type Order {
  id: ID! number: String! checkoutId: ID userEmail: String status: OrderStatus! created: DateTime!
  user: User channel: Channel! total: TaxedMoney! totalRefunded: Money!
}
type UserPermission { code: PermissionEnum! name: String! }
type User {
  id: ID! email: String! firstName: String! isStaff: Boolean! isActive: Boolean!
  restrictedAccessToChannels: Boolean! userPermissions: [UserPermission!] accessibleChannels: [Channel!]
  metadata: [MetadataItem!]! privateMetadata: [MetadataItem!]!
}
enum PermissionEnum {
  MANAGE_CHECKOUTS MANAGE_ORDERS MANAGE_DISCOUNTS MANAGE_PRODUCTS MANAGE_USERS MANAGE_CHANNELS MANAGE_APPS
  MANAGE_PLUGINS
}
type Permission { code: PermissionEnum! name: String! }
type App { id: ID! identifier: String manifestUrl: String isActive: Boolean permissions: [Permission!] }
type VoucherCode { id: ID! code: String used: Int }
type VoucherChannelListing { id: ID! channel: Channel! }
type Voucher {
  id: ID! name: String endDate: DateTime used: Int!
  codes(first: Int, after: String): VoucherCodeCountableConnection
  channelListings: [VoucherChannelListing!]
  metadata: [MetadataItem!]! privateMetadata: [MetadataItem!]!
}
enum DiscountErrorCode { ALREADY_EXISTS GRAPHQL_ERROR INVALID NOT_FOUND REQUIRED UNIQUE }
type DiscountError { field: String message: String code: DiscountErrorCode! }
enum MetadataErrorCode { GRAPHQL_ERROR INVALID NOT_FOUND REQUIRED NOT_UPDATED }
type MetadataError { field: String message: String code: MetadataErrorCode! }
type VoucherCreate { errors: [DiscountError!]! voucher: Voucher }
type VoucherChannelListingUpdate { errors: [DiscountError!]! voucher: Voucher }
type VoucherBulkDelete { count: Int! errors: [DiscountError!]! }
type UpdateMetadata { errors: [MetadataError!]! }
type UpdatePrivateMetadata { errors: [MetadataError!]! }

type OrderCountableEdge { node: Order! cursor: String! }
type OrderCountableConnection { pageInfo: PageInfo! edges: [OrderCountableEdge!]! }
type ProductVariantCountableEdge { node: ProductVariant! cursor: String! }
type ProductVariantCountableConnection { pageInfo: PageInfo! edges: [ProductVariantCountableEdge!]! }
type ProductCountableEdge { node: Product! cursor: String! }
type ProductCountableConnection { pageInfo: PageInfo! edges: [ProductCountableEdge!]! }
type UserCountableEdge { node: User! cursor: String! }
type UserCountableConnection { pageInfo: PageInfo! edges: [UserCountableEdge!]! }
type VoucherCountableEdge { node: Voucher! cursor: String! }
type VoucherCountableConnection { pageInfo: PageInfo! edges: [VoucherCountableEdge!]! }
type VoucherCodeCountableEdge { node: VoucherCode! cursor: String! }
type VoucherCodeCountableConnection { pageInfo: PageInfo! edges: [VoucherCodeCountableEdge!]! }

input StringFilterInput { eq: String oneOf: [String!] }
input GlobalIDFilterInput { eq: ID oneOf: [ID!] }
input UUIDFilterInput { eq: UUID oneOf: [UUID!] }
input DateTimeRangeInput { gte: DateTime lte: DateTime }
input OrderWhereInput {
  ids: [ID!] channelId: GlobalIDFilterInput createdAt: DateTimeRangeInput updatedAt: DateTimeRangeInput
  userEmail: StringFilterInput checkoutToken: UUIDFilterInput AND: [OrderWhereInput!] OR: [OrderWhereInput!]
}
input CustomerWhereInput { updatedAt: DateTimeRangeInput }
input OrderFilterInput { customer: String }
enum OrderSortField { NUMBER CREATED_AT }
input OrderSortingInput { direction: OrderDirection! field: OrderSortField! }
input ProductWhereInput {
  ids: [ID!] slug: StringFilterInput category: GlobalIDFilterInput collection: GlobalIDFilterInput
  isAvailable: Boolean isPublished: Boolean AND: [ProductWhereInput!] OR: [ProductWhereInput!]
}
enum OrderDirection { ASC DESC }
enum ProductOrderField { NAME PRICE MINIMAL_PRICE }
input ProductOrder { direction: OrderDirection! field: ProductOrderField }
input MetadataFilter { key: String! value: String }
enum DiscountStatusEnum { EXPIRED }
input IntRangeInput { gte: Int lte: Int }
input VoucherFilterInput {
  status: [DiscountStatusEnum!] timesUsed: IntRangeInput search: String metadata: [MetadataFilter!]
  ids: [ID!]
}
input MetadataInput { key: String! value: String! }
enum VoucherTypeEnum { SHIPPING ENTIRE_ORDER SPECIFIC_PRODUCT }
enum DiscountValueTypeEnum { FIXED PERCENTAGE }
input VoucherInput {
  type: VoucherTypeEnum name: String addCodes: [String!] startDate: DateTime endDate: DateTime
  discountValueType: DiscountValueTypeEnum singleUse: Boolean usageLimit: Int
}
input VoucherChannelListingAddInput {
  channelId: ID! discountValue: PositiveDecimal minAmountSpent: PositiveDecimal
}
input VoucherChannelListingInput { addChannels: [VoucherChannelListingAddInput!] removeChannels: [ID!] }
"""


def global_id(kind: str, pk: Any) -> str:
    return base64.b64encode(f"{kind}:{pk}".encode()).decode()


def from_global_id(value: str) -> tuple[str, str]:
    try:
        kind, _, pk = base64.b64decode(value, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return "", ""
    return kind, pk


def _metadata(items: Mapping[str, str]) -> list[dict]:
    return [{"key": key, "value": value} for key, value in items.items()]


def _connection(nodes: list, first: int | None, after: str | None = None) -> dict:
    start = int(after) if after else 0
    first = PAGE_LIMIT if first is None else first
    if first > PAGE_LIMIT:
        raise GraphQLError(f"Requesting {first} records exceeds the `first` limit of {PAGE_LIMIT} records.")
    page = nodes[start : start + first]
    return {
        "pageInfo": {
            "hasNextPage": start + first < len(nodes),
            "hasPreviousPage": start > 0,
            "startCursor": str(start),
            "endCursor": str(start + len(page)),
        },
        "edges": [{"node": node, "cursor": str(start + index + 1)} for index, node in enumerate(page)],
    }


def _media(kind: str, url: str | None) -> list[dict]:
    return [{"id": global_id("ProductMedia", url), "type": kind, "url": url}] if url else []


@dataclass
class StandinShop:
    """The shop the stand-in answers from, as plain dicts shaped like Saleor's GraphQL types
    (so the executor's default resolvers read them); helpers build consistent records."""

    name: str = "Stand-in Shop"
    channels: dict[str, dict] = field(default_factory=dict)
    warehouses: dict[str, dict] = field(default_factory=dict)
    products: dict[str, dict] = field(default_factory=dict)
    variants: dict[str, dict] = field(default_factory=dict)
    checkouts: dict[str, dict] = field(default_factory=dict)
    orders: list[dict] = field(default_factory=list)
    users: dict[str, dict] = field(default_factory=dict)
    vouchers: dict[str, dict] = field(default_factory=dict)
    # Saleor's clock (its server's ``timezone.now()``), apart from the App's: ``None`` is the real one
    clock: datetime | None = None
    app_permissions: tuple[str, ...] = (
        "MANAGE_CHECKOUTS",
        "MANAGE_ORDERS",
        "MANAGE_DISCOUNTS",
        "MANAGE_PRODUCTS",
        "MANAGE_USERS",
    )
    _next_key: int = 0

    def key(self) -> int:
        self._next_key += 1
        return self._next_key

    def now(self) -> datetime:
        return self.clock or datetime.now(UTC)

    def add_channel(self, slug: str, name: str = "", currency: str = "USD") -> dict:
        warehouse = {"id": global_id("Warehouse", uuid.uuid4()), "name": f"{slug} warehouse"}
        self.warehouses[warehouse["id"]] = warehouse
        channel = {
            "id": global_id("Channel", self.key()),
            "slug": slug,
            "name": name or slug,
            "currencyCode": currency,
            "warehouses": [warehouse],
        }
        self.channels[slug] = channel
        return channel

    def add_product(
        self,
        channel_slug: str,
        name: str,
        prices: Iterable[Decimal | str],
        *,
        stock: int | None = 10,
        category: str = "default",
        collections: Iterable[str] = (),
        published: bool = True,
        image: str | None = None,
    ) -> dict:
        """A product with one variant per price, each with ``stock`` pieces (``None``: untracked)
        in the channel's warehouse; ``published`` False: listed but hidden."""
        channel = self.channels[channel_slug]
        pk = self.key()
        slug = name.lower().replace(" ", "-")
        product = {
            "id": global_id("Product", pk),
            "name": name,
            "slug": slug,
            "media": _media("IMAGE", image),
            "category": {"id": global_id("Category", category), "name": category},
            "collections": [{"id": global_id("Collection", c), "name": c} for c in collections],
            "channelListings": [
                {
                    "id": global_id("ProductChannelListing", pk),
                    "channel": channel,
                    "isPublished": published,
                    "publishedAt": None,
                    "availableForPurchaseAt": "2020-01-01T00:00:00+00:00",
                }
            ],
            "variants": [],
        }
        for index, price in enumerate(prices):
            variant_pk = self.key()
            amount = Decimal(price)
            money = {"currency": channel["currencyCode"], "amount": amount}
            variant = {
                "id": global_id("ProductVariant", variant_pk),
                "name": f"{name} {index + 1}",
                "sku": f"SKU-{variant_pk}",
                "trackInventory": stock is not None,
                "media": [],
                "product": product,
                "pricing": {"price": {"currency": money["currency"], "gross": money, "net": money}},
                "preorder": None,
                "stocks": [
                    {
                        "id": global_id("Stock", variant_pk),
                        "warehouse": channel["warehouses"][0],
                        "quantity": stock or 0,
                        "quantityAllocated": 0,
                    }
                ],
                "channelListings": [
                    {"id": global_id("VariantListing", variant_pk), "channel": channel, "price": money}
                ],
            }
            product["variants"].append(variant)
            self.variants[variant["id"]] = variant
        self.products[product["id"]] = product
        return product

    def add_user(self, email: str, first_name: str = "", *, staff: bool = False, metadata=None) -> dict:
        user = {
            "id": global_id("User", self.key()),
            "email": email,
            "firstName": first_name,
            "isStaff": staff,
            "metadata": _metadata(metadata or {}),
            "privateMetadata": [],
            "_updated": datetime.now(UTC).isoformat(),
        }
        self.users[user["id"]] = user
        return user

    def add_checkout(
        self,
        channel_slug: str,
        email: str,
        lines: Iterable[tuple[dict, int]],
        *,
        language: str = "EN",
        user: dict | None = None,
        metadata: Mapping[str, str] | None = None,
        private_metadata: Mapping[str, str] | None = None,
        first_name: str = "",
        country: str = "",
    ) -> dict:
        """A checkout with ``(variant, quantity)`` lines."""
        token = str(uuid.uuid4())
        address = {
            "id": global_id("Address", token),
            "firstName": first_name,
            "country": {"code": country, "country": country},
        }
        checkout = {
            "id": global_id("Checkout", token),
            "token": token,
            "email": user["email"] if user else email,
            "languageCode": language,
            "channel": self.channels[channel_slug],
            "metadata": _metadata(metadata or {}),
            "privateMetadata": _metadata(private_metadata or {}),
            "user": user,
            "shippingAddress": address if (first_name or country) else None,
            "billingAddress": None,
            "lines": [
                {
                    "id": global_id("CheckoutLine", self.key()),
                    "quantity": quantity,
                    "isGift": False,
                    "variant": variant,
                }
                for variant, quantity in lines
            ],
        }
        self.checkouts[token] = checkout
        return checkout

    def add_voucher(
        self,
        name: str,
        end_date: datetime | str | None,
        *,
        codes: Iterable[str] = (),
        channel_slug: str | None = None,
        used: int = 0,
        private_metadata: Mapping[str, str] | None = None,
        input: Mapping[str, Any] | None = None,
    ) -> dict:
        """A voucher as Saleor keeps it, made by ``voucherCreate`` (its ``input``) or by the owner in
        the Dashboard: ``codes`` (else one random code, used ``used`` times), listed in
        ``channel_slug`` (``None``: in no channel), no public metadata, starting at the input's
        ``startDate`` or now (Saleor's default)."""
        codes = list(codes) or [secrets.token_hex(6).upper()]
        start = (input or {}).get("startDate")
        voucher = {
            "id": global_id("Voucher", self.key()),
            "name": name,
            "endDate": end_date.isoformat() if isinstance(end_date, datetime) else end_date,
            "_codes": [
                {"id": global_id("VoucherCode", code), "code": code, "used": used if index == 0 else 0}
                for index, code in enumerate(codes)
            ],
            "_input": dict(input or {}),
            "_start": datetime.fromisoformat(start) if start else self.now(),
            "_listings": (
                [{"channelId": self.channels[channel_slug]["id"], "discountValue": "10"}]
                if channel_slug
                else []
            ),
            "_metadata": {},
            "_private_metadata": dict(private_metadata or {}),
        }
        self.vouchers[voucher["id"]] = voucher
        return voucher

    def add_order(
        self,
        channel_slug: str,
        email: str,
        total: Decimal | str,
        *,
        checkout_token: str = "",
        created: datetime | None = None,
        user: dict | None = None,
        status: str = "UNFULFILLED",
        refunded: Decimal | str = "0",
    ) -> dict:
        channel = self.channels[channel_slug]
        money = {"currency": channel["currencyCode"], "amount": Decimal(total)}
        order = {
            "id": global_id("Order", uuid.uuid4()),
            "number": str(len(self.orders) + 1),
            "checkoutId": global_id("Checkout", checkout_token) if checkout_token else None,
            "userEmail": email,
            "status": status,
            "created": (created or datetime.now(UTC)).isoformat(),
            "user": user,
            "channel": channel,
            "total": {"currency": money["currency"], "gross": money, "net": money},
            "totalRefunded": {"currency": money["currency"], "amount": Decimal(refunded)},
        }
        self.orders.append(order)
        return order

    def saved(self, record: dict) -> dict:
        """``record`` (an order or an account) saved by Saleor now: its ``updated_at``."""
        record["_updated"] = datetime.now(UTC).isoformat()
        return record


def _matches_string(value: str | None, condition: Mapping) -> bool:
    if "eq" in condition:
        return value == condition["eq"]
    return value in (condition.get("oneOf") or ())


def _matches_range(value: str, condition: Mapping) -> bool:
    moment = datetime.fromisoformat(value)
    return (not condition.get("gte") or moment >= datetime.fromisoformat(condition["gte"])) and (
        not condition.get("lte") or moment <= datetime.fromisoformat(condition["lte"])
    )


def _order_matches(order: dict, where: Mapping) -> bool:
    checks = {
        "ids": lambda value: order["id"] in value,
        "channelId": lambda value: _matches_string(order["channel"]["id"], value),
        "createdAt": lambda value: _matches_range(order["created"], value),
        "updatedAt": lambda value: _matches_range(order.get("_updated") or order["created"], value),
        "userEmail": lambda value: _matches_string(order["userEmail"], value),
        "checkoutToken": lambda value: _matches_string(
            from_global_id(order["checkoutId"] or "")[1] or None, value
        ),
        "AND": lambda value: all(_order_matches(order, part) for part in value),
        "OR": lambda value: any(_order_matches(order, part) for part in value),
    }
    return all(checks[name](value) for name, value in where.items())


def _customer_matches(order: dict, value: str | None) -> bool:
    """Saleor's ``filter: { customer }`` (``saleor/graphql/order/filters.py``): an email compared
    whole and regardless of case with the order's and its account's; anything else searched for in
    them and the account's first name (``ILIKE``, a part matches)."""
    if value is None:
        return True
    account = order["user"] or {}
    try:
        validate_email(value)
    except ValidationError:
        searched = (order["userEmail"], account.get("email"), account.get("firstName"))
        return any(value.lower() in (text or "").lower() for text in searched)
    return value.upper() in {(order["userEmail"] or "").upper(), (account.get("email") or "").upper()}


def _product_matches(product: dict, where: Mapping, channel_slug: str | None, now: datetime) -> bool:
    listing = next((x for x in product["channelListings"] if x["channel"]["slug"] == channel_slug), None)
    checks = {
        "ids": lambda value: product["id"] in value,
        "slug": lambda value: _matches_string(product["slug"], value),
        "category": lambda value: _matches_string((product["category"] or {}).get("id"), value),
        "collection": lambda value: any(_matches_string(c["id"], value) for c in product["collections"]),
        "isPublished": lambda value: bool(listing and listing["isPublished"]) == value,
        "isAvailable": lambda value: bool(
            listing
            and listing["availableForPurchaseAt"]
            and datetime.fromisoformat(listing["availableForPurchaseAt"]) <= now
        )
        == value,
        "AND": lambda value: all(_product_matches(product, part, channel_slug, now) for part in value),
        "OR": lambda value: any(_product_matches(product, part, channel_slug, now) for part in value),
    }
    return all(checks[name](value) for name, value in where.items())


def _voucher_matches(voucher: dict, filter: Mapping, now: datetime) -> bool:
    """Saleor's ``VoucherFilterInput`` (``saleor/graphql/discount/filters.py`` and the voucher
    queryset's ``expired``, 3.23 as 3.24-dev), ``now`` being Saleor's clock."""
    # SQL's SUM: no codes, no sum, and a comparison with it is never true
    used = sum(c["used"] for c in voucher["_codes"]) if voucher["_codes"] else None
    limit = voucher["_input"].get("usageLimit")
    ended = voucher["endDate"] is not None and datetime.fromisoformat(voucher["endDate"]) < now
    exhausted = limit is not None and used is not None and limit <= used
    # Saleor: ILIKE '%search%' on the name or any code, the value stripped (django-filter's
    # CharFilter), none when blank
    search = (filter.get("search") or "").strip().lower()
    times_used = filter.get("timesUsed") or {}
    return (
        all(item["key"] in voucher["_metadata"] for item in filter.get("metadata") or ())
        and any(
            search in text.lower()
            for text in (voucher["name"] or "", *(c["code"] for c in voucher["_codes"]))
        )
        # EXPIRED: started, and ended or its usage limit reached; an empty list selects all
        and (not filter.get("status") or (voucher["_start"] < now and (ended or exhausted)))
        and (times_used.get("gte") is None or (used is not None and used >= times_used["gte"]))
        and (times_used.get("lte") is None or (used is not None and used <= times_used["lte"]))
    )


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _generate() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# RSA keys take a while to make on a busy machine: the suite makes a few once and hands them out in
# turn, so any eight keys taken one after another (a test uses three at most) are distinct.
_POOL: list[rsa.RSAPrivateKey] = []
_TAKEN = itertools.count()
POOL_SIZE = 8


class SigningKey:
    def __init__(self) -> None:
        if not _POOL:
            _POOL.extend(_generate() for _ in range(POOL_SIZE))
        self.private = _POOL[next(_TAKEN) % POOL_SIZE]
        numbers = self.private.public_key().public_numbers()
        canonical = json.dumps(
            {"e": _b64(numbers.e), "kty": "RSA", "n": _b64(numbers.n)}, separators=(",", ":")
        )
        self.kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()

    def jwk(self) -> dict[str, Any]:
        found = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        found.update({"use": "sig", "kid": self.kid, "alg": "RS256"})
        return found


class _Denied(GraphQLError):
    """Saleor's answer to a request without the permission (or from an unknown token)."""


class _AnswerLost(Exception):
    """A document executed whose answer is not sent (see ``StandinSaleor.lost``)."""


class StandinSaleor:
    """The server: ``api_url``, ``token`` (the app's), ``shop``, fault switches, and what it
    received (``received``: one ``(operation name, variables)`` per document it executed; ``hits``:
    every HTTP request, faulted ones included; ``in_transaction``: see :meth:`watch`). ``apps``
    maps other app tokens to their ``app`` answers, ``users`` staff JWTs to their ``me`` answers;
    ``jwks_fetches`` counts key-set downloads (each answered after ``jwks_delay`` seconds). Serving
    from construction until :meth:`close`."""

    def __init__(self, shop: StandinShop | None = None):
        self.shop = shop or StandinShop()
        self.token = secrets.token_hex(15)  # 30 characters, as Saleor's app tokens
        self.app_id = global_id("App", 1)
        # What Saleor recorded of the app's manifest at install (``App.identifier``, ``manifestUrl``).
        self.identifier = "saleor-cart-recovery-app"
        self.manifest_url = "http://app.test/api/manifest"
        self.app_active = True  # False: deactivated, and Saleor takes its token as anonymous
        self.key = SigningKey()
        self.apps: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.jwks_fetches = 0
        self.jwks_delay = 0.0  # seconds the key set takes to come (to make concurrent requests overlap)
        self.jwks_body: Any = None  # when set: served as the key set instead (a malformed answer)
        self.fault: str | None = None
        self.delay = 0.0
        self.lost: set[str] = set()
        self.received: list[tuple[str, dict]] = []
        self.in_transaction: list[str] = []  # see watch()
        self._watched: tuple[Any, int] | None = None
        self._before: dict[str, Callable[[dict], None]] = {}
        self.hits = 0  # HTTP requests to the API, answered or not (a fault answers before ``received``)
        self._routes: dict[
            tuple[str, str], Callable[[BaseHTTPRequestHandler, bytes], tuple[int, dict, bytes]]
        ] = {}
        self._lock = threading.Lock()
        self.schema = build_ast_schema(parse(SDL))
        for scalar in ("UUID", "DateTime", "PositiveDecimal"):
            scalar_type = self.schema.get_type(scalar)
            scalar_type.serialize = scalar_type.parse_value = lambda value: value
            scalar_type.parse_literal = lambda node: getattr(node, "value", None)
        self._resolvers()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/graphql/"

    @property
    def graphql_requests(self) -> int:
        return len(self.received)

    def __enter__(self) -> "StandinSaleor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Saleor is gone: nothing listens at its address any more (idempotent)."""
        if not self._closed:
            self._closed = True
            self._server.shutdown()
            self._server.server_close()

    def route(self, method: str, path: str, handler) -> None:
        """Serve ``handler(request, body) -> (status, headers, body)`` at ``method path``."""
        self._routes[(method, path)] = handler

    def revoke(self) -> None:
        """The app's token is deleted (the app uninstalled)."""
        self.token = secrets.token_hex(15)

    def add_app(
        self,
        app_id: str,
        permissions: Iterable[str] | None = None,
        identifier: str | None = None,
        manifest_url: str | None = None,
    ) -> str:
        """Another app in this Saleor (a second installation, a local app): its new token, which
        the ``app`` query answers for; installed from our manifest unless ``identifier`` or
        ``manifest_url`` say otherwise."""
        token = secrets.token_hex(15)
        codes = self.shop.app_permissions if permissions is None else tuple(permissions)
        self.apps[token] = {
            "id": app_id,
            "identifier": identifier or self.identifier,
            "manifestUrl": manifest_url or self.manifest_url,
            "isActive": True,
            "permissions": [{"code": c, "name": c} for c in codes],
        }
        return token

    def operations(self) -> list[str]:
        return [name for name, _ in self.received]

    def watch(self, connection) -> None:
        """From now on, note in ``in_transaction`` the name of each document that arrives while
        ``connection`` is inside an atomic block opened after this call: Saleor asked while a
        transaction or lock of ours is open (invariant 4). ``connection``: the Django connection
        (``connections["default"]``) of the thread in this process that calls Saleor — the request
        is synchronous, so that thread waits in it while its atomic blocks are read here."""
        self._watched = (connection, len(connection.atomic_blocks))

    def before(self, operation: str, callback: Callable[[dict], None]) -> None:
        """Call ``callback`` with the variables of each ``operation`` document before answering it
        (in the server's thread): what happens elsewhere while Saleor is being asked."""
        self._before[operation] = callback

    def rotate_key(self) -> None:
        self.key = SigningKey()

    # -- what Saleor sends ----------------------------------------------------------------------

    def sign(self, body: bytes, key: SigningKey | None = None) -> str:
        key = key or self.key
        return api_jws.encode(
            body,
            key=key.private,
            algorithm="RS256",
            headers={"kid": key.kid, "crit": ["b64"]},
            is_payload_detached=True,
        )

    def webhook_headers(self, event: str, body: bytes, **overrides: str) -> dict[str, str]:
        """Saleor's headers for an async webhook (``saleor/webhook/transport/utils.py``)."""
        signature = self.sign(body)
        domain = self.url.removeprefix("http://")
        headers = {
            "X-Saleor-Event": event,
            "X-Saleor-Domain": domain,
            "X-Saleor-Signature": signature,
            "Saleor-Event": event,
            "Saleor-Domain": domain,
            "Saleor-Signature": signature,
            "Saleor-Api-Url": self.api_url,
        }
        headers.update(overrides)
        return headers

    def jwt(self, key: SigningKey | None = None, issuer: str | None = None, **claims: Any) -> str:
        """A JWT with Saleor's claims (``saleor.core.jwt.jwt_user_payload``); ``claims`` add to or
        replace them."""
        now = datetime.now(tz=UTC)
        payload = {
            "iat": now,
            "owner": "saleor",
            "iss": issuer or self.api_url,
            "exp": now + timedelta(minutes=5),
            "token": "key",
            "email": "staff@example.com",
            "type": "access",
            "user_id": "VXNlcjox",
            "is_staff": True,
        }
        payload.update(claims)
        key = key or self.key
        return jwt.encode(payload, key.private, algorithm="RS256", headers={"kid": key.kid})

    def staff(
        self, user_permissions=("MANAGE_CHECKOUTS",), channels=("main",), restricted=False, **claims
    ) -> str:
        """A staff member's JWT that this Saleor's ``me`` answers for; a token for an app
        (``type="thirdparty"``) also carries the user's permissions, as Saleor signs them in."""
        if claims.get("type") == "thirdparty":
            claims.setdefault("user_permissions", list(user_permissions))
        token = self.jwt(**claims)
        self.users[token] = {
            "email": claims.get("email", "staff@example.com"),
            "isStaff": claims.get("is_staff", True),
            "isActive": True,
            "restrictedAccessToChannels": restricted,
            "userPermissions": [{"code": code} for code in user_permissions],
            "accessibleChannels": [
                {"slug": slug, "name": slug.title(), "currencyCode": "USD"} for slug in channels
            ],
        }
        return token

    # -- GraphQL ----------------------------------------------------------------------------

    def answer(self, body: dict, token: str | None) -> dict:
        """What Saleor answers to one POSTed document."""
        try:
            document = parse(body.get("query") or "")
        except GraphQLError as exc:
            return {"errors": [{"message": str(exc), "extensions": {"exception": {"code": "GraphQLError"}}}]}
        operation = next(
            (d for d in document.definitions if isinstance(d, graphql_ast.OperationDefinition)), None
        )
        name = operation.name.value if operation and operation.name else ""
        with self._lock:
            self.received.append((name, body.get("variables") or {}))
            if self._watched is not None and len(self._watched[0].atomic_blocks) > self._watched[1]:
                self.in_transaction.append(name)
        if name in self._before:
            self._before[name](body.get("variables") or {})
        problems = validate(self.schema, document)
        aliases = sum(1 for node in _walk(document) if isinstance(node, graphql_ast.Field) and node.alias)
        if aliases > ALIAS_LIMIT:
            problems.append(GraphQLError(f"Number of aliases exceed the limit of {ALIAS_LIMIT}"))
        mutation = operation is not None and operation.operation == "mutation"
        if mutation and len(operation.selection_set.selections) > MUTATION_LIMIT:
            problems.append(GraphQLError(f"Number of mutations exceed the limit of {MUTATION_LIMIT}"))
        if problems:
            return {
                "errors": [
                    {"message": p.message, "extensions": {"exception": {"code": "GraphQLError"}}}
                    for p in problems
                ]
            }
        with self._lock:
            result = execute(
                self.schema,
                document,
                context_value={"authorized": token == self.token and self.app_active, "token": token},
                variable_values=body.get("variables") or {},
            )
        if name in self.lost:
            raise _AnswerLost(name)
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [_error(error) for error in result.errors]
        return answer

    def _resolvers(self) -> None:
        shop = self.shop

        def guarded(resolve, permission):
            def resolver(root, info, **args):
                if not info.context["authorized"] or permission not in shop.app_permissions:
                    raise _Denied(
                        f"To access this path, you need one of the following permissions: {permission}"
                    )
                return resolve(root, info, **args)

            return resolver

        def checkout(root, info, id=None, token=None):
            return shop.checkouts.get(token or from_global_id(id or "")[1])

        def orders(root, info, first=None, after=None, where=None, filter=None, channel=None, sortBy=None):
            if where and filter:
                raise GraphQLError("Only one filtering argument (filter or where) can be specified.")
            found = [
                o
                for o in reversed(shop.orders)
                if o["status"] != "DRAFT"
                and (channel is None or o["channel"]["slug"] == channel)
                and _order_matches(o, where or {})
                and _customer_matches(o, (filter or {}).get("customer"))
            ]
            if sortBy:
                by_number = sortBy["field"] == "NUMBER"
                found.sort(
                    key=lambda o: int(o["number"]) if by_number else datetime.fromisoformat(o["created"]),
                    reverse=sortBy["direction"] == "DESC",
                )
            return _connection(found, first, after)

        def product_variants(root, info, ids=None, channel=None, first=None, after=None):
            found = [shop.variants[i] for i in ids or () if i in shop.variants]
            return _connection(found, first, after)

        def products(root, info, channel=None, first=None, after=None, where=None, sortBy=None):
            found = [
                p for p in shop.products.values() if _product_matches(p, where or {}, channel, shop.now())
            ]
            if sortBy and sortBy.get("field") == "NAME":
                found.sort(key=lambda p: (p["name"], p["slug"]))
            elif sortBy:
                found.sort(
                    key=lambda p: min(
                        (v["pricing"]["price"]["gross"]["amount"] for v in p["variants"]), default=0
                    )
                )
            return _connection(found, first, after)

        def channel(root, info, id=None, slug=None):
            return next((c for c in shop.channels.values() if c["slug"] == slug or c["id"] == id), None)

        def app(root, info, id=None):
            token = info.context["token"]
            if token in self.apps:
                return self.apps[token]
            if not info.context["authorized"]:  # anonymous: neither staff nor an app
                raise _Denied(
                    "To access this path, you need one of the following permissions: "
                    "AUTHENTICATED_STAFF_USER, AUTHENTICATED_APP"
                )
            return {
                "id": self.app_id,
                "identifier": self.identifier,
                "manifestUrl": self.manifest_url,
                "isActive": self.app_active,
                "permissions": [{"code": c, "name": c} for c in shop.app_permissions],
            }

        def user(root, info, id=None, email=None):
            return shop.users.get(id or "") or next(
                (u for u in shop.users.values() if email and u["email"].lower() == email.lower()), None
            )

        def customers(root, info, first=None, after=None, where=None):
            """Saleor's customers: accounts that are not staff, or staff with orders."""
            ordered = {(o["user"] or {}).get("id") for o in shop.orders}
            found = [
                u
                for u in shop.users.values()
                if (not u["isStaff"] or u["id"] in ordered)
                and _matches_range(u["_updated"], (where or {}).get("updatedAt") or {})
            ]
            return _connection(found, first, after)

        def vouchers(root, info, filter=None, channel=None, first=None, after=None):
            now = shop.now()
            found = [v for v in shop.vouchers.values() if _voucher_matches(v, filter or {}, now)]
            return _connection(found, first, after)

        def voucher_listings(root, info):
            return [
                {
                    "id": global_id("VoucherChannelListing", f"{root['id']}:{listing['channelId']}"),
                    "channel": next(c for c in shop.channels.values() if c["id"] == listing["channelId"]),
                }
                for listing in root["_listings"]
            ]

        def voucher_codes(root, info, first=None, after=None):
            return _connection(root["_codes"], first, after)

        def voucher_create(root, info, input):
            codes = input.get("addCodes") or []
            taken = {c["code"] for v in shop.vouchers.values() for c in v["_codes"]}
            if any(code in taken for code in codes):
                return {
                    "voucher": None,
                    "errors": [{"field": "code", "message": "Code exists", "code": "ALREADY_EXISTS"}],
                }
            voucher = shop.add_voucher(input.get("name"), input.get("endDate"), codes=codes, input=input)
            return {"voucher": voucher, "errors": []}

        def voucher_listing(root, info, id, input):
            voucher = shop.vouchers.get(id)
            if voucher is None:
                return {
                    "voucher": None,
                    "errors": [{"field": "id", "message": "no voucher", "code": "NOT_FOUND"}],
                }
            added = input.get("addChannels") or ()
            percentage = voucher["_input"].get("discountValueType") == "PERCENTAGE"
            if percentage and any(Decimal(str(listing["discountValue"])) > 100 for listing in added):
                return {
                    "voucher": None,
                    "errors": [
                        {"field": "discountValue", "message": "Invalid percentage value.", "code": "INVALID"}
                    ],
                }
            voucher["_listings"].extend(added)
            return {"voucher": voucher, "errors": []}

        def update_metadata(key):
            def resolve(root, info, id, input):
                voucher = shop.vouchers.get(id)
                if voucher is None:
                    return {"errors": [{"field": "id", "message": "no object", "code": "NOT_FOUND"}]}
                voucher[key].update({item["key"]: item["value"] for item in input})
                return {"errors": []}

            return resolve

        def voucher_bulk_delete(root, info, ids):
            deleted = [shop.vouchers.pop(i) for i in ids if i in shop.vouchers]
            return {"count": len(deleted), "errors": []}

        query = self.schema.get_query_type().fields
        mutation = self.schema.get_mutation_type().fields
        for name, (resolve, permission) in {
            "checkout": (checkout, "MANAGE_CHECKOUTS"),
            "orders": (orders, "MANAGE_ORDERS"),
            "productVariants": (product_variants, "MANAGE_PRODUCTS"),
            "products": (products, "MANAGE_PRODUCTS"),
            "user": (user, "MANAGE_USERS"),
            "customers": (customers, "MANAGE_USERS"),
            "vouchers": (vouchers, "MANAGE_DISCOUNTS"),
        }.items():
            query[name].resolver = guarded(resolve, permission)
        query["shop"].resolver = lambda root, info: {"name": shop.name}
        query["channel"].resolver = channel
        query["channels"].resolver = lambda root, info: list(shop.channels.values())
        query["app"].resolver = app
        query["me"].resolver = lambda root, info: self.users.get(info.context["token"] or "")
        for name, resolve in {
            "voucherCreate": voucher_create,
            "voucherChannelListingUpdate": voucher_listing,
            "updateMetadata": update_metadata("_metadata"),
            "updatePrivateMetadata": update_metadata("_private_metadata"),
            "voucherBulkDelete": voucher_bulk_delete,
        }.items():
            mutation[name].resolver = guarded(resolve, "MANAGE_DISCOUNTS")
        voucher = self.schema.get_type("Voucher").fields
        voucher["codes"].resolver = voucher_codes
        voucher["channelListings"].resolver = voucher_listings
        voucher["used"].resolver = lambda root, info: sum(code["used"] for code in root["_codes"])
        voucher["metadata"].resolver = lambda root, info: _metadata(root["_metadata"])
        voucher["privateMetadata"].resolver = lambda root, info: _metadata(root["_private_metadata"])
        self.schema.get_type("ProductMedia").fields["url"].resolver = (
            lambda root, info, size=None, format=None: root["url"]
        )


def _walk(node):
    """Every AST node under ``node`` (graphql-core 2 has no visitor for this that is simpler)."""
    yield node
    for name in getattr(node, "__slots__", ()):
        value = getattr(node, name, None)
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, graphql_ast.Node):
                yield from _walk(child)


def _error(error: Exception) -> dict:
    original = getattr(error, "original_error", None) or error
    code = PERMISSION_DENIED if isinstance(original, _Denied) else "GraphQLError"
    formatted: dict[str, Any] = {"message": str(original), "extensions": {"exception": {"code": code}}}
    if getattr(error, "path", None):
        formatted["path"] = error.path
    return formatted


class _JSONEncoder(json.JSONEncoder):
    def default(self, o):
        if isinstance(o, Decimal):
            return float(o)
        return super().default(o)


def _handler(standin: StandinSaleor):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # quiet: the tests assert on what matters
            pass

        def _reply(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _serve(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = self.path.split("?", 1)[0]
            if (method, path) in standin._routes:
                self._reply(*standin._routes[(method, path)](self, body))
                return
            if (method, path) == ("GET", "/.well-known/jwks.json"):
                with standin._lock:
                    standin.jwks_fetches += 1
                time.sleep(standin.jwks_delay)
                self._reply(
                    200,
                    {"Content-Type": "application/json"},
                    json.dumps(
                        {"keys": [standin.key.jwk()]} if standin.jwks_body is None else standin.jwks_body
                    ).encode(),
                )
                return
            with standin._lock:
                standin.hits += 1
            if standin.fault == "down":
                self.close_connection = True
                self.connection.close()
                return
            if standin.fault == "slow":
                time.sleep(standin.delay)
            if standin.fault == "error":
                self._reply(502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>")
                return
            if standin.fault == "unauthorized":
                refused = b'{"errors": [{"message": "Invalid token"}]}'
                self._reply(401, {"Content-Type": "application/json"}, refused)
                return
            if method != "POST" or path != "/graphql/":
                self._reply(404, {"Content-Type": "text/plain"}, b"not found")
                return
            authorization = self.headers.get("Authorization") or ""
            token = authorization.removeprefix("Bearer ").strip() or None
            try:
                request = json.loads(body)
            except ValueError:
                self._reply(
                    400, {"Content-Type": "application/json"}, b'{"errors": [{"message": "bad JSON"}]}'
                )
                return
            try:
                answer = standin.answer(request, token)
            except _AnswerLost:
                self.close_connection = True
                self.connection.close()
                return
            self._reply(
                200, {"Content-Type": "application/json"}, json.dumps(answer, cls=_JSONEncoder).encode()
            )

        def do_POST(self):
            self._serve("POST")

        def do_GET(self):
            self._serve("GET")

    return Handler
