import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core import mail
from freezegun import freeze_time

from saleor_cart_recovery.email.offers import (
    abandoned_prices,
    content_for_step,
    coupon_discount,
    expiry_in_words,
    urgency_facts,
    with_coupon,
)
from saleor_cart_recovery.email.tokens import read_click_token
from saleor_cart_recovery.exceptions import ConfigurationError
from saleor_cart_recovery.models import RecoveryCart, RecoveryMessage
from saleor_cart_recovery.series import delivery
from saleor_cart_recovery.series.delivery import deliver_batch
from saleor_cart_recovery.series.dispatch import dispatch
from saleor_cart_recovery.settings.channel import RecoverySettings
from saleor_cart_recovery.shop import CartLine
from tests.shopapp.models import ShopChannel, ShopLine, ShopProduct, ShopStock, ShopVoucher

from .conftest import CONFIGURATION, START

STEP_1, STEP_2, STEP_3 = START + timedelta(hours=1), START + timedelta(days=1), START + timedelta(days=3)


def settings_with(**values):
    return RecoverySettings.from_plugin_configuration(
        [*CONFIGURATION, *({"name": k, "value": v} for k, v in values.items())]
    )


def configure(channel, **values):
    channel.configuration = [*CONFIGURATION, *({"name": k, "value": v} for k, v in values.items())]
    channel.save()


@pytest.fixture
def run_step(django_capture_on_commit_callbacks):
    """One dispatch cycle at ``moment`` that sends in this process, as the task would."""

    def run(moment):
        with freeze_time(moment), django_capture_on_commit_callbacks(execute=True):
            dispatch(send=deliver_batch)

    return run


def line(variant_id="1", price="39.90"):
    """A line priced at its listing price."""
    return CartLine(
        variant_id, "Blue Hoodie", "XL", "SKU", 1, Decimal(price), Decimal(price), None, Decimal(price)
    )


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"coupon_step": "4"}, "coupon_step", "step 4 does not exist"),
        ({"coupon_step": "x"}, "coupon_step", "not a step number"),
        ({"coupon_type": "free"}, "coupon_type", "use percentage or fixed"),
        ({"coupon_value": "150"}, "coupon_value", "more than 100"),
        ({"coupon_value": "-5", "coupon_type": "fixed"}, "coupon_value", "more than 0"),
        ({"coupon_valid_for": "10m"}, "coupon_valid_for", "between 1h and 30d"),
        ({"coupon_min_total": "lots"}, "coupon_min_total", "not an amount"),
        ({"upsell_products": "auto, hoodie"}, "upsell_products", "either auto or a list"),
        ({"upsell_count": "9"}, "upsell_count", "from 1 to 6"),
        ({"upsell_count": "²"}, "upsell_count", "from 1 to 6"),
        ({"coupon_step": "³"}, "coupon_step", "not a step number"),
        ({"urgency_stock_threshold": "-1"}, "urgency_stock_threshold", "from 0 to 1000"),
        ({"upsell_product_url": "https://shop.example.com/p"}, "upsell_product_url", "{slug}"),
        ({"step_content": "2: shout"}, "step_content", "not one of reminder, help, urgency, discount"),
        ({"step_content": "2: discount"}, "step_content", "coupon_step"),
        ({"coupon_step": "3", "step_content": "3: help"}, "step_content", "must be discount"),
        ({"step_content": "5: help"}, "step_content", "step 5 does not exist"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_offer_settings_are_rejected_naming_the_field(values, field, message):
    # when the owner saves a bad offer setting
    with pytest.raises(ConfigurationError) as error:
        settings_with(**values)
    # then the error names the field and says what is wrong
    assert message in error.value.errors[field]


def test_default_content_is_reminder_then_urgency_and_the_coupon_step_gets_discount():
    offers = settings_with(coupon_step="3").offers
    assert [content_for_step(offers, step, 3) for step in (1, 2, 3)] == ["reminder", "urgency", "discount"]
    chosen = settings_with(step_content="1: help\n2: reminder").offers
    assert [content_for_step(chosen, step, 3) for step in (1, 2, 3)] == ["help", "reminder", "urgency"]


def test_urgency_facts_are_only_what_is_true():
    hoodie, tote, socks, mug = line("1"), line("2", "12.50"), line("3", "5.00"), line("4", "8.00")
    stock = {"1": 2, "2": 10, "3": 0, "4": None}
    prices_then = {"listing": {"1": "39.90", "2": "15.00", "3": "4.00"}}
    facts = urgency_facts([hoodie, tote, socks, mug], stock=stock, threshold=3, prices_then=prices_then)
    # low stock only for 1..threshold pieces, price drop only below the recorded price
    assert [(f.kind, f.line.variant_id, f.available, f.was) for f in facts] == [
        ("low_stock", "1", 2, None),
        ("price_drop", "2", None, Decimal("15.00")),
    ]
    assert urgency_facts([hoodie], stock=stock, threshold=0, prices_then=None) == []


def test_expiry_and_coupon_link_read_well():
    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert expiry_in_words(now + timedelta(hours=48), now, "en") == (
        "2 days",
        "March 4, 2026, 10:00:00 AM UTC",
    )
    assert expiry_in_words(now + timedelta(hours=48), now, "tr-TR")[0] == "2 gün"
    assert with_coupon("https://s.example/cart/t", "AB-CD") == "https://s.example/cart/t?coupon=AB-CD"
    assert with_coupon("https://s.example/c?t=1", "X") == "https://s.example/c?t=1&coupon=X"


def test_coupon_step_issues_one_single_use_code_and_shows_it(channel, abandoned_cart, run_step):
    # given step 1 carries a 5.00 fixed coupon valid for 48h above 50.00
    configure(
        channel,
        coupon_step="1",
        coupon_type="fixed",
        coupon_value="5",
        coupon_valid_for="48h",
        coupon_min_total="50",
    )
    # when the first send fails temporarily and the retry succeeds
    with mock.patch.object(delivery, "send_on", side_effect=delivery.SendFailed("down")):
        run_step(STEP_1)
    assert mail.outbox == [] and RecoveryMessage.objects.get().status == "scheduled"
    run_step(STEP_1 + timedelta(minutes=2))
    # then one voucher exists for the channel, single use, expiring 48h after the first attempt
    [voucher] = ShopVoucher.objects.all()
    assert (voucher.channel.slug, voucher.usage_limit, voucher.value, voucher.min_total) == (
        "main",
        1,
        Decimal("5.00"),
        Decimal("50.00"),
    )
    assert voucher.expires_at == STEP_1 + timedelta(hours=48)
    # and the one email shows that code, the discount in the shopper's currency and the expiry
    [email] = mail.outbox
    assert f"Your code: {voucher.code}" in email.body
    assert "$5.00 · For orders over $50.00." in email.body
    assert "Valid for 2 days, until March 4, 2026" in email.body
    assert voucher.code in email.alternatives[0][0]
    message = RecoveryMessage.objects.get()
    assert (message.content, message.voucher_code) == ("discount", voucher.code)


def test_urgency_step_says_only_true_things_and_suggests_products(channel, abandoned_cart, run_step):
    # given auto upsell and stock of the cart's hoodie (variant 1) at 2, the tote (variant 2) plenty
    configure(channel, upsell_products="auto", urgency_stock_threshold="3")
    ShopStock.objects.create(variant_id="1", quantity=5, allocated=3)
    ShopStock.objects.create(variant_id="2", quantity=40)
    catalog = [
        ("blue-hoodie", "Blue Hoodie", "tops", "1", True, 10),
        ("green-hoodie", "Green Hoodie", "tops", "7", True, 4),
        ("red-hoodie", "Red Hoodie", "tops", "8", True, 0),
        ("secret-hoodie", "Secret Hoodie", "tops", "9", False, 4),
        ("mug", "Mug", "kitchen", "10", True, 4),
    ]
    for slug, name, category, variant_id, published, stock in catalog:
        ShopProduct.objects.create(
            channel=channel,
            slug=slug,
            name=name,
            category=category,
            variant_id=variant_id,
            price=Decimal("20"),
            published=published,
        )
        if variant_id != "1":
            ShopStock.objects.create(variant_id=variant_id, quantity=stock)
    # when step 1 (reminder) goes out, the tote's price drops, and step 2 (urgency) goes out
    run_step(STEP_1)
    ShopLine.objects.filter(variant_id="2").update(unit_price=Decimal("10.00"))
    run_step(STEP_2)
    # then the reminder says nothing urgent and suggests nothing
    first, second = mail.outbox
    assert (
        "left:" not in first.body and "Price dropped" not in first.body and "Green Hoodie" not in first.body
    )
    # and the urgency step tells the true stock and price drop, and suggests only the in-stock,
    # published product of the cart's category that is not in the cart
    assert "Only 2 left: Blue Hoodie (XL)" in second.body
    assert "Price dropped: Canvas Tote is now $10.00 (was $12.50)" in second.body
    assert "You might also like:\n- Green Hoodie — $20.00" in second.body
    for absent in ("Red Hoodie", "Secret Hoodie", "Mug", "- Blue Hoodie — $20.00"):
        assert absent not in second.body
    assert RecoveryCart.objects.get().abandoned_prices == {"listing": {"1": "39.90", "2": "12.50"}}
    # and the suggested product's link is tracked like the cart link
    tokens = re.findall(r"/saleor_cart_recovery/click/([^\"\s<]+)", second.alternatives[0][0])
    assert {read_click_token(token).target for token in tokens} == {"cart", "product:green-hoodie"}


def test_plenty_of_stock_and_unchanged_prices_mean_no_urgency(channel, abandoned_cart, run_step):
    configure(channel, urgency_stock_threshold="3")
    ShopStock.objects.create(variant_id="1", quantity=4)
    run_step(STEP_1)
    run_step(STEP_2)
    assert "left:" not in mail.outbox[1].body and "Price dropped" not in mail.outbox[1].body
    assert ShopChannel.objects.get().slug == "main"


def test_coupon_discount_reads_as_percent_or_money_in_the_shoppers_language():
    coupon = settings_with(coupon_step="3", coupon_type="percentage", coupon_value="12.5").offers.coupon
    money = lambda amount: f"${amount}"  # noqa: E731
    assert coupon_discount(coupon, money, "en") == "12.5%"
    assert coupon_discount(coupon, money, "tr-TR") == "%12,5"
    fixed = settings_with(coupon_step="3", coupon_type="fixed", coupon_value="5").offers.coupon
    assert coupon_discount(fixed, money, "en") == "$5"


def test_a_price_drop_compares_listing_prices_only():
    # the cart shows the price the shopper saw (frozen), the listing price moved since
    line = CartLine(
        "1", "Hoodie", "XL", "H", 1, Decimal("39.90"), Decimal("39.90"), None, listing_price=Decimal("29.90")
    )
    assert abandoned_prices([line]) == {"listing": {"1": "29.90"}}
    [fact] = urgency_facts([line], stock={}, threshold=0, prices_then={"listing": {"1": "34.90"}})
    assert (fact.kind, fact.was) == ("price_drop", Decimal("34.90"))
    assert urgency_facts([line], stock={}, threshold=0, prices_then={"listing": {"1": "29.90"}}) == []
    # prices recorded by earlier versions were cart prices (taxes included): never compared
    assert urgency_facts([line], stock={}, threshold=0, prices_then={"1": "49.90"}) == []
    # a line whose listing price is unknown is neither recorded nor compared
    unlisted = CartLine("2", "Mug", "", "M", 1, Decimal("8"), Decimal("8"), None)
    assert abandoned_prices([unlisted]) == {"listing": {}}
    assert urgency_facts([unlisted], stock={}, threshold=0, prices_then={"listing": {"2": "9"}}) == []
