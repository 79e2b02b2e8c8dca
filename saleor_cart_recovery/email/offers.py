"""What a step offers and how it reads: content type, coupon, true urgency and upsell products.

The decisions (:func:`content_for_step`, :func:`urgency_facts`, …) are pure functions over plain
values; :func:`build_offer` feeds them the shop's live data and the cart's recorded prices and
returns plain template data. The send task calls :func:`issue_coupon` once per coupon message (the
code is stored on the message before the email goes out, so a retry shows the same code).
"""

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlencode, urlsplit, urlunsplit

from babel.dates import format_datetime, format_timedelta
from babel.numbers import format_percent

from ..settings.channel import CouponSettings, OfferSettings, RecoverySettings
from ..settings.formats import DISCOUNT, HELP, PERCENTAGE, REMINDER, URGENCY
from ..shop import CartLine, CartSnapshot, IssuedVoucher, Shop
from .i18n import babel_locale, format_money, offer_strings

logger = logging.getLogger(__name__)

COUPON_PARAMETER = "coupon"  # the recovery link's query parameter the storefront applies


@dataclass(frozen=True)
class UrgencyFact:
    kind: str  # "low_stock" or "price_drop"
    line: CartLine
    available: int | None = None  # low_stock: pieces left in the channel's warehouses
    was: Decimal | None = None  # price_drop: unit price when the cart was abandoned


def content_for_step(offers: OfferSettings, step: int, steps: int) -> str:
    """The owner's choice for ``step``, else: the coupon step → discount, step 1 → reminder,
    other steps → urgency (which shows only true facts, plus upsell products)."""
    chosen = dict(offers.step_content)
    if step in chosen:
        return chosen[step]
    if offers.coupon and offers.coupon.step == step:
        return DISCOUNT
    if step == 1 or steps == 1:
        return REMINDER
    return URGENCY


def coupon_due(offers: OfferSettings, step: int) -> bool:
    return offers.coupon is not None and offers.coupon.step == step


def price_now(line: CartLine) -> Decimal:
    """The price "the price dropped" compares: the variant's listing price in the channel when the
    shop knows it (the cart's own prices are frozen at the shopper's last visit), else the line's."""
    return line.listing_price if line.listing_price is not None else line.unit_price


def abandoned_prices(lines: Iterable[CartLine]) -> dict[str, str]:
    """That price per variant, as stored on the cart when its first reminder is prepared."""
    return {line.variant_id: str(price_now(line)) for line in lines}


def urgency_facts(
    lines: Iterable[CartLine],
    *,
    stock: Mapping[str, int | None],
    threshold: int,
    prices_then: Mapping[str, str] | None,
) -> list[UrgencyFact]:
    """Only what is true now: a variant whose available stock is 1..``threshold`` (variants that do
    not track stock, or are sold out, say nothing), and a unit price lower than the recorded one."""
    facts = []
    for line in lines:
        available = stock.get(line.variant_id)
        if threshold and available is not None and 0 < available <= threshold:
            facts.append(UrgencyFact("low_stock", line, available=available))
        then = (prices_then or {}).get(line.variant_id)
        if then is not None and price_now(line) < Decimal(then):
            facts.append(UrgencyFact("price_drop", line, was=Decimal(then)))
    return facts


def with_coupon(url: str, code: str) -> str:
    """The recovery link with ``?coupon=CODE`` added, keeping any query the owner's URL has."""
    parts = urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=query + urlencode({COUPON_PARAMETER: code})))


def expiry_in_words(expires_at: datetime, now: datetime, language: str | None) -> tuple[str, str]:
    """(``"2 days"``, ``"March 4, 2026 at 9:00:00 AM UTC"``) in the shopper's language."""
    locale = babel_locale(language)
    left = format_timedelta(expires_at - now, threshold=1.5, locale=locale)
    until = format_datetime(expires_at, format="long", tzinfo=expires_at.tzinfo, locale=locale)
    return left, until.replace("\u202f", " ")  # CLDR's narrow no-break space reads badly in plain text


def coupon_discount(coupon: CouponSettings, money, language: str | None) -> str:
    """``10%`` (``%10`` in Turkish) or the amount in the shopper's currency (``money`` formats it)."""
    if coupon.discount_type == PERCENTAGE:
        return format_percent(coupon.value / 100, locale=babel_locale(language), decimal_quantization=False)
    return money(coupon.value)


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
                    product=product, now=money(price_now(fact.line)), was=money(fact.was)
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
