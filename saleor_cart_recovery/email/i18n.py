"""The shopper-facing copy in English and Turkish, and money in the shopper's locale."""

from decimal import Decimal

from babel.core import Locale, UnknownLocaleError
from babel.numbers import format_currency

from ..settings.parsers import normalize_language

DEFAULT_LANGUAGE = "en"

# Built-in words per step role (see .copy): the first reminder, a plain reminder worded anew, news
# that is true now (low stock, a lower price), and the last one. Nothing here claims what is not
# so: no expiry, no scarcity; a coupon's real expiry is said by the coupon box itself.
STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "heading_first": "You left something in your cart",
        "intro_first": "We saved your cart at {shop}. It is ready whenever you are.",
        "heading_again": "Still thinking it over?",
        "intro_again": "Your cart at {shop} is still saved. Here is what is in it, in case you want "
        "another look.",
        "heading_news": "An update on your cart",
        "intro_news": "Something changed at {shop} since you left your cart:",
        "heading_last": "Your cart is still waiting",
        "intro_last": "This is the last reminder we will send about this cart.",
        "quantity": "Qty",
        "total": "Total",
        "button": "Return to your cart",
        "link_hint": "Or copy this link into your browser:",
        "footer": "You received this email because you started a checkout at {shop} with this address.",
        "unsubscribe": "Unsubscribe from cart reminders",
    },
    "tr": {
        "heading_first": "Sepetinizde ürün bıraktınız",
        "intro_first": "{shop} sepetinizi sizin için sakladık. Hazır olduğunuzda sizi bekliyor.",
        "heading_again": "Hâlâ karar veremediniz mi?",
        "intro_again": "{shop} sepetiniz hâlâ kayıtlı. Bir kez daha bakmak isterseniz içindekiler aşağıda.",
        "heading_news": "Sepetinizle ilgili bir gelişme",
        "intro_news": "Sepetinizden ayrıldığınızdan beri {shop} mağazasında bir şey değişti:",
        "heading_last": "Sepetiniz hâlâ sizi bekliyor",
        "intro_last": "Bu sepet hakkında göndereceğimiz son hatırlatma bu.",
        "quantity": "Adet",
        "total": "Toplam",
        "button": "Sepetinize dönün",
        "link_hint": "Ya da bu bağlantıyı tarayıcınıza kopyalayın:",
        "footer": "Bu e-postayı, bu adresle {shop} üzerinde alışverişe başladığınız için aldınız.",
        "unsubscribe": "Sepet hatırlatmalarından çık",
    },
}


def language_for(code: str | None) -> str:
    """The supported language closest to a checkout's ``language_code`` (``tr-TR`` → ``tr``)."""
    base = normalize_language(code).split("-")[0]
    return base if base in STRINGS else DEFAULT_LANGUAGE


def strings(language: str, **values: str) -> dict[str, str]:
    return {key: text.format(**values) for key, text in STRINGS[language_for(language)].items()}


def babel_locale(language: str | None) -> Locale:
    """The CLDR locale for a checkout's ``language_code``; unknown ones fall back to English."""
    try:
        return Locale.parse(normalize_language(language).replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse(DEFAULT_LANGUAGE)


def format_money(amount: Decimal, currency: str, language: str | None) -> str:
    """``Decimal('1234.5'), 'USD', 'tr-TR'`` → ``$1.234,50``."""
    return format_currency(amount, currency, locale=babel_locale(language))


# Offer copy; placeholders are filled per email by offers.build_offer (strings() knows only {shop}).
OFFER_STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "heading_help": "Can we help with your order?",
        "intro_help": "Questions about sizes, delivery or payment? Reply to this email and we will help.",
        "heading_discount": "A little something to help you decide",
        "intro_discount": "Use this code to get {discount} off the items in your cart.",
        "coupon_label": "Your code",
        "coupon_min_total": "For orders over {amount}.",
        "coupon_expiry": "Valid for {left}, until {until}. It works once and only in this shop.",
        "coupon_applied": "The button below takes the code with it to your cart.",
        "low_stock": "Only {count} left: {product}",
        "price_drop": "Price dropped: {product} is now {now} (was {was})",
        "upsell_heading": "You might also like",
        "upsell_view": "View",
    },
    "tr": {
        "heading_help": "Siparişinizde yardımcı olabilir miyiz?",
        "intro_help": (
            "Beden, teslimat ya da ödeme hakkında sorunuz mu var? Bu e-postayı yanıtlayın, yardımcı olalım."
        ),
        "heading_discount": "Karar vermenize küçük bir katkı",
        "intro_discount": "Sepetinizdeki ürünlerde {discount} indirim için bu kodu kullanın.",
        "coupon_label": "Kodunuz",
        "coupon_min_total": "{amount} üzerindeki siparişlerde geçerlidir.",
        "coupon_expiry": (
            "{left} boyunca, {until} tarihine kadar geçerli. "
            "Yalnızca bir kez ve yalnızca bu mağazada kullanılabilir."
        ),
        "coupon_applied": "Aşağıdaki düğme kodu sepetinize taşır.",
        "low_stock": "Son {count} adet: {product}",
        "price_drop": "Fiyatı düştü: {product} şimdi {now} (önce {was})",
        "upsell_heading": "Bunlar da ilginizi çekebilir",
        "upsell_view": "İncele",
    },
}


def offer_strings(language: str | None) -> dict[str, str]:
    return OFFER_STRINGS[language_for(language)]
