import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from saleor_cart_recovery.email.compose import build_context
from saleor_cart_recovery.email.i18n import format_money, language_for
from saleor_cart_recovery.email.offers import build_offer, offer_facts
from saleor_cart_recovery.email.render import inline_css, inline_template, render, render_reminder
from saleor_cart_recovery.settings.channel import RecoverySettings
from saleor_cart_recovery.shop import CartLine, CartSnapshot
from saleor_cart_recovery.templating import template_source
from tests.shopapp.models import ShopProduct, ShopStock
from tests.shopapp.shop import DbShop

SETTINGS = RecoverySettings.from_plugin_configuration(
    [{"name": "storefront_url", "value": "https://shop.example.com/cart/{token}"}]
)


def snapshot(language="en", lines=2, name="Blue <Hoodie>"):
    items = (
        CartLine(
            "1",
            name,
            "XL",
            "H-XL",
            2,
            Decimal("39.90"),
            Decimal("79.80"),
            "https://cdn.example.com/1.png",
            Decimal("39.90"),
        ),
        CartLine(
            "2",
            "Canvas Tote",
            "Canvas Tote",
            "T",
            1,
            Decimal("12.50"),
            Decimal("12.50"),
            None,
            Decimal("12.50"),
        ),
    )[:lines]
    return CartSnapshot(
        "tok-1", "main", "a@example.com", language, "EUR", items, Decimal("92.30"), "Tote & Co"
    )


def context(**kwargs):
    return build_context(
        snapshot(**kwargs), settings=SETTINGS, step=1, unsubscribe_url="https://x.test/u/abc"
    )


PLAIN_LEAVES = (str, int, float, bool, Decimal, type(None))


def not_plain(value, path="context"):
    """Paths of everything that is not str/int/float/bool/Decimal/None inside lists and str-keyed dicts."""
    if isinstance(value, dict):
        return [f"{path} key {k!r}" for k in value if not isinstance(k, str)] + [
            bad for k, v in value.items() for bad in not_plain(v, f"{path}[{k!r}]")
        ]
    if isinstance(value, list):
        return [bad for i, v in enumerate(value) for bad in not_plain(v, f"{path}[{i}]")]
    return [] if isinstance(value, PLAIN_LEAVES) else [f"{path}: {type(value).__name__}"]


def test_context_is_plain_data_only(channel):
    # given a cart whose hoodie is nearly sold out and whose tote got cheaper since it was left,
    # a product of the hoodie's category in stock, and a 10 % coupon above 50.00
    settings = RecoverySettings.from_plugin_configuration(
        [
            {"name": "storefront_url", "value": "https://shop.example.com/cart/{token}"},
            {"name": "coupon_step", "value": "3"},
            {"name": "coupon_type", "value": "percentage"},
            {"name": "coupon_value", "value": "10"},
            {"name": "coupon_min_total", "value": "50"},
            {"name": "upsell_products", "value": "auto"},
            {"name": "upsell_product_url", "value": "https://shop.example.com/products/{slug}"},
            {"name": "urgency_stock_threshold", "value": "3"},
        ]
    )
    ShopStock.objects.create(variant_id="1", quantity=2)
    for slug, name, variant_id in (
        ("blue-hoodie", "Blue Hoodie", "1"),
        ("green-hoodie", "Green Hoodie", "7"),
    ):
        ShopProduct.objects.create(
            channel=channel, slug=slug, name=name, category="tops", variant_id=variant_id, price=Decimal("20")
        )
    ShopStock.objects.create(variant_id="7", quantity=5)
    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    [facts] = offer_facts(DbShop(), [(settings, snapshot(), "urgency")])
    offer = build_offer(
        settings,
        snapshot(),
        content="urgency",
        voucher_code="SAVE-10",
        voucher_expires_at=now + timedelta(hours=48),
        prices_then={"listing": {"1": "39.90", "2": "15.00"}},
        now=now,
        facts=facts,
    )

    # when the templates' context is built with that offer
    built = build_context(
        snapshot(), settings=settings, step=3, unsubscribe_url="https://x.test/u/abc", offer=offer
    )

    # then it carries the coupon, both urgency lines and the upsell product ...
    assert built["offer"]["coupon"]["code"] == "SAVE-10"
    assert len(built["offer"]["urgency"]) == 2
    assert [product["slug"] for product in built["offer"]["upsell"]] == ["green-hoodie"]
    # ... and nothing in it is a model instance, dataclass or other object, however deep
    assert not_plain(built) == []


def test_preinlined_template_matches_inlining_every_email():
    html, _ = render_reminder(context())
    assert inline_css(render("email/cart_recovery/reminder.html", context())) == inline_css(html)
    assert 'style="' in html and "{%" not in html


def test_inlining_keeps_every_template_tag():
    source = template_source("email/cart_recovery/reminder.html")
    inlined = inline_template(source)
    # Block tags exactly once; the brand colour is copied into a bgcolor attribute, never dropped.
    assert inlined.count("{%") == source.count("{%")
    assert set(re.findall(r"\{\{.*?\}\}", inlined)) == set(re.findall(r"\{\{.*?\}\}", source))
    assert 'bgcolor="{{ brand.color }}"' in inlined


@pytest.mark.parametrize("language", ["en", "tr"])
def test_html_and_text_show_the_same_cart(language):
    html, text = render_reminder(context(language=language))
    for body in (html, text):
        assert "Canvas Tote" in body
        assert "https://shop.example.com/cart/tok-1" in body
        assert "https://x.test/u/abc" in body
    assert ("€79.80" if language == "en" else "€79,80") in html


def test_shopper_supplied_names_are_escaped_in_html_only():
    html, text = render_reminder(context(name="Blue <script>"))
    assert "<script>" not in html and "Blue &lt;script&gt;" in html
    assert "Blue <script>" in text


def test_variant_name_equal_to_product_name_is_not_repeated():
    _, text = render_reminder(context())
    assert "Canvas Tote (Canvas Tote)" not in text
    assert "Blue <Hoodie> (XL)" in text


@pytest.mark.parametrize(
    ("amount", "currency", "language", "expected"),
    [
        ("1234.5", "USD", "en", "$1,234.50"),
        ("1234.5", "TRY", "tr", "₺1.234,50"),
        ("10", "EUR", "de-DE", "10,00\xa0€"),
        ("10", "USD", "xx-unknown", "$10.00"),
    ],
    ids=["en_case", "tr_case", "de_case", "unknown_locale_case"],
)
def test_money_in_the_shoppers_locale(amount, currency, language, expected):
    assert format_money(Decimal(amount), currency, language) == expected


def test_unsupported_language_falls_back_to_english():
    assert (language_for("de-DE"), language_for("tr_TR"), language_for(None)) == ("en", "tr", "en")
