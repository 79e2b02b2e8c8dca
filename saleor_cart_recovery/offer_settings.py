"""Offer settings: the coupon step, upsell products, true urgency and what each step says.

Parsed together with the rest of a channel's settings (:mod:`config`), one message per bad field.
Whether configured upsell products exist is a question for the shop, asked on save by the plugin.
"""

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from .durations import parse_duration
from .url_templates import parse_url_template

REMINDER, HELP, URGENCY, DISCOUNT = "reminder", "help", "urgency", "discount"
CONTENT_TYPES = (REMINDER, HELP, URGENCY, DISCOUNT)
PERCENTAGE, FIXED = "percentage", "fixed"
AUTO = "auto"

MAX_UPSELL = 6
MAX_UPSELL_REFERENCES = 20
MAX_STOCK_THRESHOLD = 1000
MIN_COUPON_VALIDITY = timedelta(hours=1)
MAX_COUPON_VALIDITY = timedelta(days=30)

DEFAULTS: dict[str, str] = {
    "coupon_step": "",  # no coupon until the owner picks a step: coupons cost margin
    "coupon_type": PERCENTAGE,
    "coupon_value": "10",
    "coupon_valid_for": "48h",
    "coupon_min_total": "",
    "upsell_products": "",
    "upsell_count": "3",
    "upsell_product_url": "",
    "urgency_stock_threshold": "3",
    "step_content": "",
}
_CONTENT_LINE = re.compile(r"^(\d+)\s*:\s*([A-Za-z]+)$")


@dataclass(frozen=True)
class CouponSettings:
    step: int
    discount_type: str  # "percentage" or "fixed" (an amount in the channel's currency)
    value: Decimal
    valid_for: timedelta
    min_total: Decimal | None


@dataclass(frozen=True)
class OfferSettings:
    coupon: CouponSettings | None  # None: no step carries a coupon
    upsell_auto: bool
    upsell_products: tuple[str, ...]  # product IDs, global IDs or slugs, in the owner's order
    upsell_count: int
    upsell_product_url: str  # "" → upsell products link to the recovery link
    urgency_stock_threshold: int  # 0 → never say "only N left"
    step_content: tuple[tuple[int, str], ...]  # explicit choices; other steps use the defaults

    @property
    def upsell_enabled(self) -> bool:
        return self.upsell_auto or bool(self.upsell_products)

    def product_url(self, slug: str) -> str:
        return self.upsell_product_url.replace("{slug}", slug)


def parse(
    values: dict[str, str], errors: dict[str, str], *, schedule: tuple[timedelta, ...] | None
) -> OfferSettings | None:
    """Typed offer settings, or ``None`` after recording one message per bad field in ``errors``."""
    steps = len(schedule) if schedule else None
    found_errors = len(errors)

    def field(name, parser, *args):
        try:
            return parser(values[name], *args)
        except ValueError as exc:
            errors[name] = str(exc)
            return None

    coupon_step = field("coupon_step", _parse_coupon_step, steps)
    coupon_type = field("coupon_type", _parse_coupon_type)
    coupon_value = field("coupon_value", _parse_coupon_value, coupon_type)
    valid_for = field("coupon_valid_for", _parse_valid_for)
    min_total = field("coupon_min_total", _parse_min_total)
    upsell = field("upsell_products", _parse_upsell_products)
    upsell_count = field("upsell_count", _parse_int, 1, MAX_UPSELL, "products to show")
    product_url = field("upsell_product_url", _parse_product_url)
    threshold = field(
        "urgency_stock_threshold", _parse_int, 0, MAX_STOCK_THRESHOLD, "pieces; 0 turns stock urgency off"
    )
    step_content = field("step_content", _parse_step_content, steps, coupon_step)
    if len(errors) > found_errors:
        return None
    coupon = None
    if coupon_step:
        coupon = CouponSettings(coupon_step, coupon_type, coupon_value, valid_for, min_total)
    return OfferSettings(
        coupon=coupon,
        upsell_auto=upsell == (AUTO,),
        upsell_products=() if upsell == (AUTO,) else upsell,
        upsell_count=upsell_count,
        upsell_product_url=product_url,
        urgency_stock_threshold=threshold,
        step_content=step_content,
    )


def _parse_coupon_step(text: str, steps: int | None) -> int | None:
    value = text.strip()
    if not value or value == "0":
        return None
    if not value.isdigit():
        raise ValueError(f"'{value}' is not a step number; give e.g. 3, or leave empty for no coupon")
    step = int(value)
    if steps is not None and step > steps:
        raise ValueError(f"step {step} does not exist: the schedule has {steps} step(s)")
    return step


def _parse_coupon_type(text: str) -> str:
    value = text.strip().lower()
    if value not in (PERCENTAGE, FIXED):
        raise ValueError(f"'{text.strip()}' is not a coupon type; use percentage or fixed")
    return value


def _parse_coupon_value(text: str, coupon_type: str | None) -> Decimal:
    value = text.strip().rstrip("%").strip()
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"'{text.strip()}' is not a number; give e.g. 10") from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError("must be more than 0")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError("at most two decimals, e.g. 7.5")
    if coupon_type == PERCENTAGE and amount > 100:
        raise ValueError("a percentage coupon cannot take more than 100 %")
    return amount


def _parse_valid_for(text: str) -> timedelta:
    valid_for = parse_duration(text)
    if not MIN_COUPON_VALIDITY <= valid_for <= MAX_COUPON_VALIDITY:
        raise ValueError("must be between 1h and 30d: a short expiry is what keeps a leaked code cheap")
    return valid_for


def _parse_min_total(text: str) -> Decimal | None:
    value = text.strip()
    if not value:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"'{value}' is not an amount; give e.g. 50, or leave empty") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError("must be 0 or more")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError("at most two decimals, e.g. 49.99")
    return amount or None


def _parse_upsell_products(text: str) -> tuple[str, ...]:
    references = tuple(dict.fromkeys(p for p in re.split(r"[,\s]+", text.strip()) if p))
    if AUTO in (r.lower() for r in references):
        if len(references) > 1:
            raise ValueError("'auto' picks the products itself; give either auto or a list of products")
        return (AUTO,)
    if len(references) > MAX_UPSELL_REFERENCES:
        raise ValueError(f"at most {MAX_UPSELL_REFERENCES} products, got {len(references)}")
    return references


def _parse_int(text: str, low: int, high: int, unit: str) -> int:
    value = text.strip()
    if not value.isdigit() or not low <= int(value) <= high:
        raise ValueError(f"'{value}' is not a whole number from {low} to {high} ({unit})")
    return int(value)


def _parse_product_url(text: str) -> str:
    return parse_url_template(text, "slug", "the product's slug")


def _parse_step_content(text: str, steps: int | None, coupon_step: int | None) -> tuple[tuple[int, str], ...]:
    chosen: dict[int, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = _CONTENT_LINE.match(line)
        if not match:
            raise ValueError(f"line {number} ('{line}') must look like '2: urgency'")
        step, content = int(match.group(1)), match.group(2).lower()
        if content not in CONTENT_TYPES:
            raise ValueError(f"line {number}: '{content}' is not one of {', '.join(CONTENT_TYPES)}")
        if step < 1 or (steps is not None and step > steps):
            raise ValueError(f"line {number}: step {step} does not exist in the schedule")
        if step in chosen:
            raise ValueError(f"step {step} is given twice")
        chosen[step] = content
    for step, content in chosen.items():
        if content == DISCOUNT and step != coupon_step:
            raise ValueError(f"step {step} is set to discount but the coupon goes out with coupon_step")
        if step == coupon_step and content != DISCOUNT:
            raise ValueError(f"step {step} carries the coupon (coupon_step), so its content must be discount")
    return tuple(sorted(chosen.items()))
