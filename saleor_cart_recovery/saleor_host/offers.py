"""Offers with Saleor's own data: single-use vouchers, stock as Saleor counts it, upsell products.

- Vouchers: one ``Voucher`` (entire order, ``usage_limit=1``, ``single_use``, ``end_date``) with one
  ``VoucherCode`` from Saleor's promo-code generator (unique across vouchers and gift cards) and
  one ``VoucherChannelListing`` for the cart's channel, in the channel's currency.
- Stock: quantity minus allocations in the warehouses that serve the channel, the way Saleor's
  ``quantityAvailable`` counts it (through shipping zones when the site uses the legacy setting).
- Products are shown only when published, available for purchase and priced in the channel, with
  at least one variant in stock there.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

import graphene
from django.contrib.sites.models import Site
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Prefetch, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from django.utils.translation import gettext as _
from saleor.channel.models import Channel
from saleor.core.utils.promo_code import generate_promo_code
from saleor.discount import DiscountValueType, VoucherType
from saleor.discount.models import Voucher, VoucherChannelListing, VoucherCode
from saleor.product.models import (
    CollectionProduct,
    Product,
    ProductChannelListing,
    ProductVariant,
    ProductVariantChannelListing,
)
from saleor.warehouse.models import Stock

from ..models import RecoveryMessage
from ..settings.formats import PERCENTAGE
from ..shop import CartLine, CartSnapshot, IssuedVoucher, UpsellProduct

logger = logging.getLogger(__name__)

# Private metadata key on the vouchers this plugin issues: cleanup deletes only its own.
VOUCHER_MARK = "saleor_cart_recovery"


def issue_voucher(
    channel_slug: str,
    *,
    discount_type: str,
    value: Decimal,
    min_total: Decimal | None,
    expires_at: datetime,
    name: str,
) -> IssuedVoucher:
    """The voucher, its code and its listing in one short transaction of Saleor's database (the
    send path calls this outside any transaction of its own)."""
    channel = Channel.objects.get(slug=channel_slug)
    with transaction.atomic():
        voucher = Voucher.objects.create(
            type=VoucherType.ENTIRE_ORDER,
            name=name,
            private_metadata={VOUCHER_MARK: "coupon"},
            usage_limit=1,
            single_use=True,
            start_date=timezone.now(),
            end_date=expires_at,
            discount_value_type=(
                DiscountValueType.PERCENTAGE if discount_type == PERCENTAGE else DiscountValueType.FIXED
            ),
        )
        code = VoucherCode.objects.create(voucher=voucher, code=generate_promo_code())
        VoucherChannelListing.objects.create(
            voucher=voucher,
            channel=channel,
            discount_value=value,
            currency=channel.currency_code,
            min_spent_amount=min_total,
        )
    return IssuedVoucher(
        code=code.code, currency=channel.currency_code, expires_at=expires_at, id=str(voucher.pk)
    )


def delete_voucher(voucher: IssuedVoucher) -> None:
    """With its code and channel listing."""
    Voucher.objects.filter(pk=voucher.id).delete()


def _channel_stocks(channel_slug: str):
    legacy = Site.objects.get_current().settings.use_legacy_shipping_zone_stock_availability
    return Stock.objects.for_channel_or_country(channel_slug, None, include_shipping_zones=legacy)


def stock_levels(channel_slug: str, variant_ids: Iterable[str]) -> dict[str, int | None]:
    ids = [int(v) for v in variant_ids if str(v).isdigit()]
    variants = ProductVariant.objects.filter(pk__in=ids).only("pk", "track_inventory", "is_preorder")
    untracked = {str(v.pk) for v in variants if not v.track_inventory or v.is_preorder_active()}
    levels: dict[str, int | None] = defaultdict(int)
    stocks = _channel_stocks(channel_slug).filter(product_variant_id__in=ids).annotate_available_quantity()
    for variant_id, available in stocks.values_list("product_variant_id", "available_quantity"):
        levels[str(variant_id)] += max(available, 0)
    result = {str(v.pk): levels.get(str(v.pk), 0) for v in variants}
    result.update(dict.fromkeys(untracked))
    return result


def _visible_products(channel: Channel):
    """Products a shopper can see and buy in the channel now."""
    now = timezone.now()
    listings = ProductChannelListing.objects.filter(
        Q(published_at__isnull=True) | Q(published_at__lte=now),
        product_id=OuterRef("pk"),
        channel=channel,
        is_published=True,
        available_for_purchase_at__lte=now,
    )
    return Product.objects.filter(Exists(listings))


def resolve_references(references: Iterable[str]) -> dict[str, Product | None]:
    """Each reference (numeric ID, ``Product`` global ID or slug) to its product, or ``None``."""
    found: dict[str, Product | None] = {}
    for reference in references:
        pk = reference if reference.isdigit() else None
        if pk is None:
            try:
                kind, node_id = graphene.Node.from_global_id(reference)
            except Exception:  # not base64 of "Type:id": a slug
                kind, node_id = "", ""
            if kind == "Product" and str(node_id).isdigit():
                pk = node_id
        query = Product.objects.filter(pk=int(pk)) if pk else Product.objects.filter(slug=reference)
        found[reference] = query.first()
    return found


def unavailable_products(channel_slug: str, references: Iterable[str]) -> dict[str, str]:
    """Why each configured product cannot be shown in the channel: unknown or not published."""
    channel = Channel.objects.filter(slug=channel_slug).first()
    problems = {}
    visible = set(_visible_products(channel).values_list("pk", flat=True)) if channel else set()
    for reference, product in resolve_references(references).items():
        if product is None:
            problems[reference] = _("no such product")
        elif product.pk not in visible:
            problems[reference] = _("not published and available for purchase in channel %(channel)s") % {
                "channel": channel_slug
            }
    return problems


def upsell_products(
    channel_slug: str,
    carts: Sequence[Iterable[str]],
    configured: tuple[str, ...] | None,
    limit: int,
    image_url,
) -> list[tuple[UpsellProduct, ...]]:
    """Per cart, up to ``limit`` products to suggest (see the shop port), read for all carts at
    once: the candidates, their prices and stock and their images in a fixed number of queries."""
    channel = Channel.objects.get(slug=channel_slug)
    cart_variants = [{int(v) for v in cart if str(v).isdigit()} for cart in carts]
    product_of = dict(
        ProductVariant.objects.filter(pk__in=set().union(*cart_variants)).values_list("pk", "product_id")
    )
    cart_products = [{product_of[v] for v in variants if v in product_of} for variants in cart_variants]
    visible = _visible_products(channel)
    if configured is None:
        candidates = _related(visible, cart_products, limit * 5)
    else:
        wanted = _configured(visible, configured, channel_slug)
        candidates = [[product for product in wanted if product.pk not in cart] for cart in cart_products]
    prices = _prices_in_stock({product.pk for products in candidates for product in products}, channel)
    if configured is not None:
        for product in wanted:
            if product.pk not in prices:
                logger.warning(
                    "cart recovery: upsell product %s skipped: out of stock or unpriced", product.slug
                )
    chosen = [[product for product in products if product.pk in prices][:limit] for products in candidates]
    images = _images({product.pk for products in chosen for product in products}, image_url)
    return [
        tuple(
            UpsellProduct(
                product_id=str(product.pk),
                slug=product.slug,
                name=product.name,
                price=prices[product.pk],
                currency=channel.currency_code,
                image_url=images.get(product.pk),
            )
            for product in products
        )
        for products in chosen
    ]


def _related(visible, cart_products: list[set[int]], count: int) -> list[list[Product]]:
    """Per cart, the first ``count`` visible products by name sharing a category or a collection
    with its products (not in the cart): the first few of each category and collection are read
    for all carts in two queries, enough for any cart's first ``count``."""
    everything = set().union(*cart_products)
    category_of = dict(Product.objects.filter(pk__in=everything).values_list("pk", "category_id"))
    collections_of: dict[int, set[int]] = defaultdict(set)
    for product_id, collection_id in CollectionProduct.objects.filter(product_id__in=everything).values_list(
        "product_id", "collection_id"
    ):
        collections_of[product_id].add(collection_id)
    # A cart's first `count` after removing its own products are within the first `count + size`
    # of each of its categories and collections.
    enough = count + max((len(products) for products in cart_products), default=0)
    name_order = [F("name").asc(), F("pk").asc()]
    in_category = (
        visible.filter(category_id__in={c for c in category_of.values() if c is not None})
        .annotate(rank=Window(RowNumber(), partition_by=F("category_id"), order_by=name_order))
        .filter(rank__lte=enough)
    )
    members = (
        CollectionProduct.objects.filter(
            collection_id__in=set().union(*collections_of.values()), product_id__in=visible.values("pk")
        )
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=F("collection_id"),
                order_by=[F("product__name").asc(), F("product_id").asc()],
            )
        )
        .filter(rank__lte=enough)
        .values_list("collection_id", "product_id")
    )
    of_category: dict[int, list[int]] = defaultdict(list)
    for category_id, product_id in in_category.values_list("category_id", "pk"):
        of_category[category_id].append(product_id)
    of_collection: dict[int, list[int]] = defaultdict(list)
    for collection_id, product_id in members:
        of_collection[collection_id].append(product_id)
    # All candidates in one query, in the database's order by name (its collation, as the windows)
    every = {pk for pks in [*of_category.values(), *of_collection.values()] for pk in pks}
    by_name = list(Product.objects.filter(pk__in=every).order_by("name", "pk"))
    related = []
    for cart in cart_products:
        pks = set()
        for product_id in cart:
            pks.update(of_category.get(category_of.get(product_id), ()))
            for collection_id in collections_of.get(product_id, ()):
                pks.update(of_collection[collection_id])
        pks -= cart
        related.append([product for product in by_name if product.pk in pks][:count])
    return related


def _configured(visible, references: tuple[str, ...], channel_slug: str) -> list[Product]:
    """The owner's products that can be shown in the channel, in the owner's order (others logged)."""
    found = resolve_references(references)
    visible_pks = set(
        visible.filter(pk__in=[p.pk for p in found.values() if p is not None]).values_list("pk", flat=True)
    )
    products = []
    for reference, product in found.items():
        if product is None:
            logger.warning("cart recovery: upsell product %s skipped: no such product", reference)
        elif product.pk not in visible_pks:
            logger.warning(
                "cart recovery: upsell product %s skipped: not published in channel %s",
                reference,
                channel_slug,
            )
        else:
            products.append(product)
    return products


def _prices_in_stock(product_ids: set[int], channel: Channel) -> dict[int, Decimal]:
    """Per product, the lowest channel price among its variants priced and available there."""
    listings = list(
        ProductVariantChannelListing.objects.filter(
            variant__product_id__in=product_ids, channel=channel, price_amount__isnull=False
        ).values_list("variant_id", "variant__product_id", "price_amount", "discounted_price_amount")
    )
    stock = stock_levels(channel.slug, [str(variant_id) for variant_id, *_ in listings])
    prices: dict[int, Decimal] = {}
    for variant_id, product_id, price, discounted in listings:
        available = stock.get(str(variant_id), 0)
        if available is None or available > 0:
            price = discounted if discounted is not None else price
            prices[product_id] = min(price, prices.get(product_id, price))
    return prices


def _images(product_ids: set[int], image_url) -> dict[int, str | None]:
    """Each product's image (its first variant's, else its own), read for all of them at once."""
    variants = Prefetch("variants", queryset=ProductVariant.objects.order_by("pk").prefetch_related("media"))
    products = Product.objects.filter(pk__in=product_ids).prefetch_related(variants, "media")
    return {product.pk: image_url(next(iter(product.variants.all()), None), product) for product in products}


def delete_expired_vouchers(now) -> int:
    """The plugin's vouchers (marked, or named in its messages by versions before the mark) that
    expired before ``now`` with no code used; deleted with their codes and channel listings."""
    recorded = RecoveryMessage.objects.exclude(voucher_code="").values("voucher_code")
    ours = Voucher.objects.filter(
        Q(private_metadata__has_key=VOUCHER_MARK) | Q(codes__code__in=recorded), end_date__lt=now
    )
    used = VoucherCode.objects.filter(voucher=OuterRef("pk"), used__gt=0)
    ids = list(ours.exclude(Exists(used)).values_list("pk", flat=True).distinct())
    if not ids:
        return 0
    Voucher.objects.filter(pk__in=ids).delete()
    logger.info("cart recovery: deleted %s expired unused voucher(s)", len(ids))
    return len(ids)


SAMPLE_PRODUCTS = 2


def sample_cart(channel_slug: str, language_code: str, image_url) -> CartSnapshot:
    """A few of the channel's published, priced products (cheapest first), one of each; a made-up
    line when the channel sells nothing yet."""
    channel = Channel.objects.get(slug=channel_slug)
    listings = list(
        ProductVariantChannelListing.objects.filter(
            channel=channel,
            price_amount__isnull=False,
            variant__product__channel_listings__channel=channel,
            variant__product__channel_listings__is_published=True,
        )
        .select_related("variant__product")
        .prefetch_related("variant__media", "variant__product__media")
        .order_by("price_amount", "variant_id")[:SAMPLE_PRODUCTS]
    )
    lines = []
    for listing in listings:
        price = (
            listing.discounted_price_amount
            if listing.discounted_price_amount is not None
            else listing.price_amount
        )
        variant = listing.variant
        lines.append(
            CartLine(
                variant_id=str(variant.pk),
                product_name=variant.product.name,
                variant_name=variant.name,
                sku=variant.sku or "",
                quantity=1,
                unit_price=price,
                total=price,
                image_url=image_url(variant, variant.product),
                listing_price=price,
            )
        )
    if not lines:
        lines.append(
            CartLine("sample", "Sample product", "", "SAMPLE", 1, Decimal("49.00"), Decimal("49.00"), None)
        )
    return CartSnapshot(
        token="00000000-0000-0000-0000-000000000000",
        channel_slug=channel_slug,
        email="",
        language_code=language_code,
        currency=channel.currency_code,
        lines=tuple(lines),
        total=sum((line.total for line in lines), Decimal(0)),
        shop_name=Site.objects.get_current().name,
        first_name="Alex",
    )
