"""Coupons, upsell and true urgency against real Saleor vouchers, stock and product listings."""

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from freezegun import freeze_time
from saleor.checkout.models import Checkout
from saleor.discount.models import Voucher
from saleor.product.models import Product, ProductChannelListing, ProductVariant, ProductVariantChannelListing
from saleor.warehouse.models import Stock

from saleor_cart_recovery.models import RecoveryMessage
from saleor_cart_recovery.saleor_host.shop import SaleorShop

from .utils import DAY, HOUR, MINUTE, T0, create_checkout, dispatch_at, gid

ADD_PROMO_CODE = """
mutation ($id: ID, $promoCode: String!) {
  checkoutAddPromoCode(id: $id, promoCode: $promoCode) {
    checkout { voucherCode totalPrice { gross { amount currency } } }
    errors { field code }
  }
}
"""
CHECKOUT_TOTAL = "query ($id: ID) { checkout(id: $id) { totalPrice { gross { amount } } } }"
COUPON = {"coupon_step": "1", "coupon_type": "fixed", "coupon_value": "5", "coupon_valid_for": "48h"}


def add_promo_code(client, token, code) -> dict:
    checkout = Checkout.objects.get(token=token)
    response = client.post_graphql(ADD_PROMO_CODE, {"id": gid(checkout), "promoCode": code})
    return response.json()["data"]["checkoutAddPromoCode"]


@pytest.fixture
def issued_code(abandoned_cart, enable_cart_recovery, run_dispatch):
    """Step 1 with a 5.00 USD coupon went out at T0 + 1h; returns the code the email shows."""
    enable_cart_recovery(**COUPON)
    dispatch_at(run_dispatch, T0 + HOUR)
    [email] = mail.outbox
    return re.search(r"Your code: (\S+)", email.body).group(1)


def test_the_coupon_is_a_single_use_voucher_of_the_carts_channel(issued_code, abandoned_cart):
    # then the email's code is one voucher, usable once, only in channel "main", until 48h after the send
    voucher = Voucher.objects.get(codes__code=issued_code)
    assert (voucher.usage_limit, voucher.single_use, voucher.discount_value_type) == (1, True, "fixed")
    assert voucher.end_date == T0 + HOUR + 48 * HOUR
    [listing] = voucher.channel_listings.all()
    assert (listing.channel.slug, listing.currency, listing.discount_value) == ("main", "USD", Decimal("5"))
    # and the email shows the discount in the shopper's currency and the expiry in words
    body = mail.outbox[0].body
    assert "Use this code to get $5.00 off" in body
    assert "Valid for 2 days, until March 4, 2026, 10:00:00 AM UTC" in body
    assert RecoveryMessage.objects.get().voucher_code == issued_code


def test_the_code_reduces_the_shoppers_total_by_the_configured_amount(
    issued_code, abandoned_cart, api_client
):
    # when the shopper applies the code from the email to the abandoned checkout
    with freeze_time(T0 + 2 * HOUR):
        payload = add_promo_code(api_client, abandoned_cart, issued_code)
    # then Saleor accepts it and the total drops from 50.00 to 45.00
    assert payload["errors"] == []
    assert payload["checkout"]["voucherCode"] == issued_code
    assert payload["checkout"]["totalPrice"]["gross"] == {"amount": 45.0, "currency": "USD"}


def test_the_code_is_rejected_after_expiry(issued_code, abandoned_cart, api_client):
    with freeze_time(T0 + HOUR + 48 * HOUR + MINUTE):
        payload = add_promo_code(api_client, abandoned_cart, issued_code)
    assert payload["errors"] == [{"field": "promoCode", "code": "INVALID"}]


def test_the_code_is_rejected_after_one_use(
    issued_code, abandoned_cart, api_client, complete_checkout, stocked_variant
):
    # given the shopper used the code on the order
    with freeze_time(T0 + 2 * HOUR):
        assert add_promo_code(api_client, abandoned_cart, issued_code)["errors"] == []
        order = complete_checkout(abandoned_cart)
    assert order.total_gross_amount == Decimal("45.00")
    # when anyone tries it again on another checkout
    with freeze_time(T0 + 3 * HOUR):
        other = create_checkout(api_client, order.channel, stocked_variant, email="friend@example.com")
        payload = add_promo_code(api_client, other, issued_code)
    # then Saleor refuses it
    assert payload["errors"] == [{"field": "promoCode", "code": "INVALID"}]


def test_the_code_is_rejected_in_another_channel(issued_code, api_client, channel_PLN, stocked_variant):
    # given a checkout in another channel with the same product
    ProductChannelListing.objects.create(
        product=stocked_variant.product,
        channel=channel_PLN,
        is_published=True,
        currency="PLN",
        available_for_purchase_at=datetime(2000, 1, 1, tzinfo=UTC),
    )
    ProductVariantChannelListing.objects.create(
        variant=stocked_variant,
        channel=channel_PLN,
        price_amount=Decimal(40),
        discounted_price_amount=Decimal(40),
        currency="PLN",
    )
    checkout = Checkout.objects.create(channel=channel_PLN, currency="PLN", email="shopper@example.com")
    checkout.lines.create(variant=stocked_variant, quantity=1, undiscounted_unit_price_amount=Decimal(40))
    # when the code is applied there
    with freeze_time(T0 + 2 * HOUR):
        payload = add_promo_code(api_client, checkout.token, issued_code)
    # then it is refused
    assert payload["errors"] == [{"field": "promoCode", "code": "INVALID"}]


def make_product(product_type, category, warehouse, channel, name, *, stock=5, published=True, price=15):
    product = Product.objects.create(
        name=name, slug=name.lower().replace(" ", "-"), product_type=product_type, category=category
    )
    ProductChannelListing.objects.create(
        product=product,
        channel=channel,
        is_published=published,
        visible_in_listings=True,
        available_for_purchase_at=datetime(2000, 1, 1, tzinfo=UTC),
        currency=channel.currency_code,
    )
    variant = ProductVariant.objects.create(product=product, sku=f"sku-{product.slug}")
    ProductVariantChannelListing.objects.create(
        variant=variant, channel=channel, price_amount=Decimal(price), currency=channel.currency_code
    )
    Stock.objects.create(warehouse=warehouse, product_variant=variant, quantity=stock)
    return product


def test_auto_upsell_suggests_published_in_stock_products_of_the_carts_category(
    abandoned_cart,
    client,
    enable_cart_recovery,
    run_dispatch,
    product_type,
    category,
    categories,
    warehouse,
    channel_USD,
):
    # given products in the cart's category: one to suggest, one sold out, one unpublished;
    # and one in stock in another category
    for name, kwargs in [
        ("Matching Scarf", {}),
        ("Sold Out Scarf", {"stock": 0}),
        ("Hidden Scarf", {"published": False}),
    ]:
        make_product(product_type, category, warehouse, channel_USD, name, **kwargs)
    make_product(product_type, categories[0], warehouse, channel_USD, "Unrelated Lamp")
    enable_cart_recovery(upsell_products="auto", step_content="1: urgency")

    # when step 1 goes out
    dispatch_at(run_dispatch, T0 + HOUR)

    # then it suggests only the published, in-stock product of the cart's category, priced in USD
    [email] = mail.outbox
    # up to the footer's "--" line (a signed link token may itself contain "--")
    suggested = email.body.split("You might also like:")[1].split("\n--\n")[0]
    [line] = suggested.strip().splitlines()
    assert line.startswith("- Matching Scarf — $15.00 — https://example.com/plugins/channel/main/")
    # and its tracked link leads to the cart (no product page URL is configured)
    path = line.split("https://example.com", 1)[1]
    response = client.get(path)
    assert response.status_code == 200, (response.status_code, path, response.content[:200])
    assert f'href="https://shop.example.com/cart/{abandoned_cart}"' in response.content.decode()
    assert "Matching Scarf" in email.alternatives[0][0]


def test_configured_upsell_products_must_exist_and_be_published(enable_cart_recovery, product):
    # when the owner saves an unknown slug
    with pytest.raises(ValidationError) as error:
        enable_cart_recovery(upsell_products=f"{product.slug}, no-such-thing")
    # then the save is rejected naming the field and the product
    assert "'no-such-thing': no such product" in str(error.value.message_dict["upsell_products"])
    # and a published product by global ID is accepted
    assert enable_cart_recovery(upsell_products=gid(product)).active


def test_urgency_appears_only_when_true(abandoned_cart, enable_cart_recovery, run_dispatch, stocked_variant):
    # given urgency content on steps 1 and 2 and a low-stock threshold of 3
    enable_cart_recovery(step_content="1: urgency\n2: urgency", urgency_stock_threshold="3")
    # when step 1 goes out while 10 are in stock at the cart's price
    dispatch_at(run_dispatch, T0 + HOUR)
    # then it claims nothing
    assert "left:" not in mail.outbox[0].body and "Price dropped" not in mail.outbox[0].body

    # when stock falls to 2 available (5 in stock, 3 allocated) and the price drops to 8.00
    Stock.objects.filter(product_variant=stocked_variant).update(quantity=2)
    ProductVariantChannelListing.objects.filter(variant=stocked_variant).update(
        price_amount=Decimal(8), discounted_price_amount=Decimal(8)
    )
    dispatch_at(run_dispatch, T0 + DAY)

    # then step 2 says so, for that product only
    body = mail.outbox[1].body
    assert "Only 2 left: Test product" in body
    assert "Price dropped: Test product is now $8.00 (was $10.00)" in body
    assert body.count("left:") == 1 and body.count("Price dropped") == 1


def test_upsell_for_a_batch_of_carts_costs_the_same_queries_as_for_one(
    cart_recovery, product_type, category, categories, warehouse, channel_USD
):
    # given two categories with products to suggest, and carts of one product each
    scarves = [make_product(product_type, category, warehouse, channel_USD, f"Scarf {n}") for n in range(4)]
    lamps = [make_product(product_type, categories[0], warehouse, channel_USD, f"Lamp {n}") for n in range(4)]
    carts = [[str(scarves[0].variants.get().pk)], [str(lamps[0].variants.get().pk)]] * 3
    shop = SaleorShop()
    shop.upsell_products("main", carts[:1], None, 2)  # the Site's settings are cached after this

    # when products are chosen for one cart, then for six carts at once
    with CaptureQueriesContext(connection) as one:
        [alone] = shop.upsell_products("main", carts[:1], None, 2)
    with CaptureQueriesContext(connection) as six:
        batch = shop.upsell_products("main", carts, None, 2)

    # then the same few queries, and each cart gets the first products of its own category by name,
    # never the product already in it
    assert len(six.captured_queries) == len(one.captured_queries) <= 15
    assert [p.name for p in alone] == ["Scarf 1", "Scarf 2"]
    assert [[p.name for p in products] for products in batch] == [
        ["Scarf 1", "Scarf 2"],
        ["Lamp 1", "Lamp 2"],
    ] * 3
    assert {p.price for products in batch for p in products} == {Decimal(15)}
