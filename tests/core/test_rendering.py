from decimal import Decimal

import pytest

from saleor_cart_recovery.email.compose import build_context
from saleor_cart_recovery.email.i18n import format_money, language_for
from saleor_cart_recovery.email.render import inline_css, inline_template, render, render_reminder
from saleor_cart_recovery.settings.channel import RecoverySettings
from saleor_cart_recovery.shop import CartLine, CartSnapshot
from saleor_cart_recovery.templating import template_source

SETTINGS = RecoverySettings.from_plugin_configuration(
    [{"name": "storefront_url", "value": "https://shop.example.com/cart/{token}"}]
)


def snapshot(language="en", lines=2, name="Blue <Hoodie>"):
    items = (
        CartLine(
            "1", name, "XL", "H-XL", 2, Decimal("39.90"), Decimal("79.80"), "https://cdn.example.com/1.png"
        ),
        CartLine("2", "Canvas Tote", "Canvas Tote", "T", 1, Decimal("12.50"), Decimal("12.50"), None),
    )[:lines]
    return CartSnapshot(
        "tok-1", "main", "a@example.com", language, "EUR", items, Decimal("92.30"), "Tote & Co"
    )


def context(**kwargs):
    return build_context(
        snapshot(**kwargs), settings=SETTINGS, step=1, unsubscribe_url="https://x.test/u/abc"
    )


def test_context_is_plain_data_only():
    def plain(value):
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return isinstance(value, str | int | bool)

    assert plain(context())


def test_preinlined_template_matches_inlining_every_email():
    html, _ = render_reminder(context())
    assert inline_css(render("email/cart_recovery/reminder.html", context())) == inline_css(html)
    assert 'style="' in html and "{%" not in html


def test_inlining_keeps_every_template_tag():
    source = template_source("email/cart_recovery/reminder.html")
    inlined = inline_template(source)
    assert inlined.count("{%") == source.count("{%") and inlined.count("{{") == source.count("{{")


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
