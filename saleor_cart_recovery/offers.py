"""Pure decisions about offers: what a step says, which urgency is true, how a coupon reads.

Nothing here touches the database or the shop; :mod:`offer_context` feeds these functions with
the shop's live data and the cart's recorded prices.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlencode, urlsplit, urlunsplit

from babel.core import Locale, UnknownLocaleError
from babel.dates import format_datetime, format_timedelta
from babel.numbers import format_percent

from .config import normalize_language
from .offer_settings import DISCOUNT, PERCENTAGE, REMINDER, URGENCY, CouponSettings, OfferSettings
from .shop import CartLine

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


def abandoned_prices(lines: Iterable[CartLine]) -> dict[str, str]:
    """Unit price per variant, as stored on the cart when its first reminder is prepared."""
    return {line.variant_id: str(line.unit_price) for line in lines}


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
        if then is not None and line.unit_price < Decimal(then):
            facts.append(UrgencyFact("price_drop", line, was=Decimal(then)))
    return facts


def with_coupon(url: str, code: str) -> str:
    """The recovery link with ``?coupon=CODE`` added, keeping any query the owner's URL has."""
    parts = urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=query + urlencode({COUPON_PARAMETER: code})))


def _locale(language: str | None) -> Locale:
    try:
        return Locale.parse(normalize_language(language).replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def expiry_in_words(expires_at: datetime, now: datetime, language: str | None) -> tuple[str, str]:
    """(``"2 days"``, ``"March 4, 2026 at 9:00:00 AM UTC"``) in the shopper's language."""
    locale = _locale(language)
    left = format_timedelta(expires_at - now, threshold=1.5, locale=locale)
    until = format_datetime(expires_at, format="long", tzinfo=expires_at.tzinfo, locale=locale)
    return left, until.replace("\u202f", " ")  # CLDR's narrow no-break space reads badly in plain text


def coupon_discount(coupon: CouponSettings, money, language: str | None) -> str:
    """``10%`` (``%10`` in Turkish) or the amount in the shopper's currency (``money`` formats it)."""
    if coupon.discount_type == PERCENTAGE:
        return format_percent(coupon.value / 100, locale=_locale(language), decimal_quantization=False)
    return money(coupon.value)
