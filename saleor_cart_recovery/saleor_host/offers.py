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
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

import graphene
from django.contrib.sites.models import Site
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from saleor.channel.models import Channel
from saleor.core.utils.promo_code import generate_promo_code
from saleor.discount import DiscountValueType, VoucherType
from saleor.discount.models import Voucher, VoucherChannelListing, VoucherCode
from saleor.product.models import Product, ProductChannelListing, ProductVariant, ProductVariantChannelListing
from saleor.warehouse.models import Stock

from ..settings.formats import PERCENTAGE
from ..shop import IssuedVoucher, UpsellProduct

logger = logging.getLogger(__name__)


def issue_voucher(
    channel_slug: str,
    *,
    discount_type: str,
    value: Decimal,
    min_total: Decimal | None,
    expires_at: datetime,
    name: str,
) -> IssuedVoucher:
    channel = Channel.objects.get(slug=channel_slug)
    voucher = Voucher.objects.create(
        type=VoucherType.ENTIRE_ORDER,
        name=name,
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
    return IssuedVoucher(code=code.code, currency=channel.currency_code, expires_at=expires_at)


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
            problems[reference] = "no such product"
        elif product.pk not in visible:
            problems[reference] = f"not published and available for purchase in channel {channel_slug}"
    return problems


def upsell_products(
    channel_slug: str,
    cart_variant_ids: Iterable[str],
    configured: tuple[str, ...] | None,
    limit: int,
    image_url,
) -> tuple[UpsellProduct, ...]:
    channel = Channel.objects.get(slug=channel_slug)
    cart_ids = [int(v) for v in cart_variant_ids if str(v).isdigit()]
    cart_products = Product.objects.filter(variants__pk__in=cart_ids).distinct()
    visible = _visible_products(channel).exclude(pk__in=cart_products.values("pk"))
    if configured is None:
        related = Q(category_id__in=cart_products.values("category_id")) | Q(
            collections__in=Product.collections.through.objects.filter(
                product_id__in=cart_products.values("pk")
            ).values("collection_id")
        )
        candidates = list(visible.filter(related).distinct().order_by("name", "pk")[: limit * 5])
    else:
        cart_pks = set(cart_products.values_list("pk", flat=True))
        visible_pks = set(visible.values_list("pk", flat=True))
        candidates = []
        for reference, product in resolve_references(configured).items():
            if product is None:
                logger.warning("cart recovery: upsell product %s skipped: no such product", reference)
            elif product.pk in cart_pks:
                continue
            elif product.pk not in visible_pks:
                logger.warning(
                    "cart recovery: upsell product %s skipped: not published in channel %s",
                    reference,
                    channel_slug,
                )
            else:
                candidates.append(product)
    chosen = []
    for product in candidates:
        price = _price_in_stock(product, channel)
        if price is None:
            if configured is not None:
                logger.warning(
                    "cart recovery: upsell product %s skipped: out of stock or unpriced", product.slug
                )
            continue
        chosen.append(
            UpsellProduct(
                product_id=str(product.pk),
                slug=product.slug,
                name=product.name,
                price=price,
                currency=channel.currency_code,
                image_url=image_url(product.variants.order_by("pk").first(), product),
            )
        )
        if len(chosen) == limit:
            break
    return tuple(chosen)


def _price_in_stock(product: Product, channel: Channel) -> Decimal | None:
    """The lowest channel price among the product's variants that are priced and available there."""
    listings = ProductVariantChannelListing.objects.filter(
        variant__product=product, channel=channel, price_amount__isnull=False
    ).select_related("variant")
    variant_ids = [str(listing.variant_id) for listing in listings]
    stock = stock_levels(channel.slug, variant_ids)
    prices = [
        listing.discounted_price_amount
        if listing.discounted_price_amount is not None
        else listing.price_amount
        for listing in listings
        if stock.get(str(listing.variant_id), 0) is None or stock.get(str(listing.variant_id), 0) > 0
    ]
    return min(prices) if prices else None
