"""What a step offers and how it reads: content type, coupon, true urgency and upsell products.

The decisions (:func:`content_for_step`, :func:`urgency_facts`, …) are pure functions over plain
values; :func:`offer_facts` reads the shop's live data (stock, products to suggest) for a whole
batch of carts at once, and :func:`build_offer` turns it and the cart's recorded prices into plain
template data. The send task calls :func:`issue_coupon` once per coupon message (the
code is stored on the message before the email goes out, so a retry shows the same code).
"""

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlencode, urlsplit, urlunsplit

from babel.dates import format_datetime, format_timedelta
from babel.numbers import format_percent

from ..settings.channel import CouponSettings, OfferSettings, RecoverySettings
from ..settings.formats import DISCOUNT, PERCENTAGE, REMINDER, URGENCY
from ..shop import VOUCHER_NAME, CartLine, CartSnapshot, IssuedVoucher, Shop, UpsellProduct
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


# The key under which a cart's recorded prices are channel listing prices. Versions before it stored
# a flat {variant: price} of calculated cart prices (taxes and vouchers included); those are not
# comparable with listing prices and are never used for a price-drop claim.
LISTING = "listing"


def abandoned_prices(lines: Iterable[CartLine]) -> dict[str, dict[str, str]]:
    """The variants' listing prices, as stored on the cart when its first reminder is prepared
    (lines whose listing price the shop does not know are left out: nothing to compare)."""
    return {
        LISTING: {
            line.variant_id: str(line.listing_price) for line in lines if line.listing_price is not None
        }
    }


def urgency_facts(
    lines: Iterable[CartLine],
    *,
    stock: Mapping[str, int | None],
    threshold: int,
    prices_then: Mapping | None,
) -> list[UrgencyFact]:
    """Only what is true now: a variant whose available stock is 1..``threshold`` (variants that do
    not track stock, or are sold out, say nothing), and a listing price lower than the recorded
    listing price (``prices_then`` as :func:`abandoned_prices` made it)."""
    recorded = (prices_then or {}).get(LISTING)
    listed = recorded if isinstance(recorded, Mapping) else {}
    facts = []
    for line in lines:
        available = stock.get(line.variant_id)
        if threshold and available is not None and 0 < available <= threshold:
            facts.append(UrgencyFact("low_stock", line, available=available))
        then = listed.get(line.variant_id)
        if then is not None and line.listing_price is not None and line.listing_price < Decimal(then):
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
        name=f"{VOUCHER_NAME} {snapshot.token}",
    )
    logger.info("cart %s: issued voucher %s until %s", snapshot.token, issued.code, issued.expires_at)
    return issued


@dataclass(frozen=True)
class OfferFacts:
    """What a step may say about the shop now, read for a whole batch of carts at once: stock of the
    cart's variants and products to suggest (both only for urgency steps)."""

    stock: Mapping[str, int | None] = field(default_factory=dict)
    upsell: tuple[UpsellProduct, ...] = ()


NO_FACTS = OfferFacts()


def offer_facts(shop: Shop, carts: Sequence[tuple[RecoverySettings, CartSnapshot, str]]) -> list[OfferFacts]:
    """The facts of each ``(settings, snapshot, content)``, with one stock read per channel and one
    upsell read per channel and upsell setting, whatever the number of carts."""
    stock_wanted: dict[str, set[str]] = {}
    upsell_wanted: dict[tuple, list[int]] = {}
    for index, (settings, snapshot, content) in enumerate(carts):
        if content != URGENCY:
            continue
        offers = settings.offers
        if offers.urgency_stock_threshold:
            variant_ids = (line.variant_id for line in snapshot.lines)
            stock_wanted.setdefault(snapshot.channel_slug, set()).update(variant_ids)
        if offers.upsell_enabled:
            configured = None if offers.upsell_auto else offers.upsell_products
            key = (snapshot.channel_slug, configured, offers.upsell_count)
            upsell_wanted.setdefault(key, []).append(index)
    stock = {slug: shop.stock_levels(slug, sorted(ids)) for slug, ids in stock_wanted.items()}
    upsell: dict[int, tuple[UpsellProduct, ...]] = {}
    for (slug, configured, limit), indexes in upsell_wanted.items():
        found = shop.upsell_products(
            slug, [[line.variant_id for line in carts[i][1].lines] for i in indexes], configured, limit
        )
        upsell.update(zip(indexes, found, strict=True))
    return [
        OfferFacts(stock=stock.get(snapshot.channel_slug, {}), upsell=upsell.get(index, ()))
        for index, (_, snapshot, _) in enumerate(carts)
    ]


def build_offer(
    settings: RecoverySettings,
    snapshot: CartSnapshot,
    *,
    content: str,
    voucher_code: str,
    voucher_expires_at: datetime | None,
    prices_then: Mapping | None,
    now: datetime,
    facts: OfferFacts = NO_FACTS,
) -> dict:
    """Template data for the step's content; strings and plain containers only. ``facts`` comes
    from :func:`offer_facts`. (What the heading and intro say is decided by :mod:`.copy`.)"""
    offers = settings.offers
    language = snapshot.language_code
    text = offer_strings(language)
    money = lambda amount: format_money(amount, snapshot.currency, language)  # noqa: E731
    offer: dict = {
        "content": content,
        "coupon": None,
        "urgency": [],
        "upsell": [],
    }
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
    if content == URGENCY:
        offer["urgency"] = _urgency(settings, snapshot, facts.stock, prices_then, text, money)
        if offers.upsell_enabled:
            offer["upsell"] = _upsell(settings, snapshot, facts.upsell)
            offer["upsell_heading"], offer["upsell_view"] = text["upsell_heading"], text["upsell_view"]
    return offer


def _urgency(settings, snapshot, stock, prices_then, text, money) -> list[str]:
    threshold = settings.offers.urgency_stock_threshold
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
                    product=product, now=money(fact.line.listing_price), was=money(fact.was)
                )
            )
    return notes


def _upsell(settings, snapshot, products) -> list[dict]:
    offers = settings.offers
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
