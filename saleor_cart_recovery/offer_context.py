"""The offer part of a reminder: coupon, true urgency and upsell products, as plain template data.

The send task calls :func:`issue_coupon` once per coupon message (the code is stored on the
message before the email goes out, so a retry shows the same code) and :func:`build_offer` for
every message; the decisions themselves are the pure functions in :mod:`offers`.
"""

import logging
from datetime import datetime

from .config import RecoverySettings
from .i18n import format_money, offer_strings
from .offer_settings import DISCOUNT, HELP, URGENCY, CouponSettings
from .offers import coupon_discount, expiry_in_words, urgency_facts, with_coupon
from .shop import CartSnapshot, IssuedVoucher, Shop

logger = logging.getLogger(__name__)


def issue_coupon(
    shop: Shop, coupon: CouponSettings, snapshot: CartSnapshot, *, now: datetime
) -> IssuedVoucher:
    """A new single-use voucher for this cart, valid ``coupon.valid_for`` from now, in its channel."""
    issued = shop.issue_voucher(
        snapshot.channel_slug,
        discount_type=coupon.discount_type,
        value=coupon.value,
        min_total=coupon.min_total,
        expires_at=now + coupon.valid_for,
        name=f"Cart recovery {snapshot.token}",
    )
    logger.info("cart %s: issued voucher %s until %s", snapshot.token, issued.code, issued.expires_at)
    return issued


def build_offer(
    shop: Shop,
    settings: RecoverySettings,
    snapshot: CartSnapshot,
    *,
    content: str,
    voucher_code: str,
    voucher_expires_at: datetime | None,
    prices_then: dict[str, str] | None,
    now: datetime,
) -> dict:
    """Template data for the step's content; strings and plain containers only."""
    offers = settings.offers
    language = snapshot.language_code
    text = offer_strings(language)
    money = lambda amount: format_money(amount, snapshot.currency, language)  # noqa: E731
    offer: dict = {
        "content": content,
        "heading": "",
        "intro": "",
        "coupon": None,
        "urgency": [],
        "upsell": [],
    }
    if content == HELP:
        offer["heading"], offer["intro"] = text["heading_help"], text["intro_help"]
    if voucher_code and offers.coupon is not None and voucher_expires_at is not None:
        discount = coupon_discount(offers.coupon, money, language)
        left, until = expiry_in_words(voucher_expires_at, now, language)
        offer["coupon"] = {
            "label": text["coupon_label"],
            "code": voucher_code,
            "discount": discount,
            "min_total": (
                text["coupon_min_total"].format(amount=money(offers.coupon.min_total))
                if offers.coupon.min_total
                else ""
            ),
            "expiry": text["coupon_expiry"].format(left=left, until=until),
            "applied": text["coupon_applied"],
        }
        offer["recovery_url"] = with_coupon(settings.recovery_url(snapshot.token), voucher_code)
        if content == DISCOUNT:
            offer["heading"] = text["heading_discount"]
            offer["intro"] = text["intro_discount"].format(discount=discount)
    if content == URGENCY:
        offer["urgency"] = _urgency(shop, settings, snapshot, prices_then, text, money)
        if offers.upsell_enabled:
            offer["upsell"] = _upsell(shop, settings, snapshot, money)
            offer["upsell_heading"], offer["upsell_view"] = text["upsell_heading"], text["upsell_view"]
    return offer


def _urgency(shop, settings, snapshot, prices_then, text, money) -> list[str]:
    threshold = settings.offers.urgency_stock_threshold
    variant_ids = [line.variant_id for line in snapshot.lines]
    stock = shop.stock_levels(snapshot.channel_slug, variant_ids) if threshold else {}
    notes = []
    for fact in urgency_facts(snapshot.lines, stock=stock, threshold=threshold, prices_then=prices_then):
        product = fact.line.product_name
        if fact.line.variant_name and fact.line.variant_name != product:
            product = f"{product} ({fact.line.variant_name})"
        if fact.kind == "low_stock":
            notes.append(text["low_stock"].format(count=fact.available, product=product))
        else:
            notes.append(
                text["price_drop"].format(
                    product=product, now=money(fact.line.unit_price), was=money(fact.was)
                )
            )
    return notes


def _upsell(shop, settings, snapshot, money) -> list[dict]:
    offers = settings.offers
    products = shop.upsell_products(
        snapshot.channel_slug,
        [line.variant_id for line in snapshot.lines],
        None if offers.upsell_auto else offers.upsell_products,
        offers.upsell_count,
    )
    return [
        {
            "name": product.name,
            "slug": product.slug,
            "price": format_money(product.price, product.currency, snapshot.language_code),
            "image_url": product.image_url or "",
            "url": (
                offers.product_url(product.slug)
                if offers.upsell_product_url
                else settings.recovery_url(snapshot.token)
            ),
        }
        for product in products[: offers.upsell_count]
    ]
