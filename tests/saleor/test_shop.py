"""The shop port implemented with Saleor: what the emails show must match what Saleor charges."""

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import graphene
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from saleor.checkout import calculations
from saleor.checkout.models import Checkout
from saleor.graphql.tests.utils import get_graphql_content
from saleor.product.models import ProductVariantChannelListing

from saleor_cart_recovery.saleor_host.shop import SaleorShop
from saleor_cart_recovery.shop import OrderLookup

from .utils import CHECKOUT_LINES_ADD, CONFIGURATION, create_checkout, gid, mutate

CHECKOUT_PRICES = """
query ($id: ID) {
  checkout(id: $id) {
    token
    email
    languageCode
    totalPrice { gross { amount currency } }
    lines {
      quantity
      unitPrice { gross { amount } }
      totalPrice { gross { amount } }
      variant { id name sku product { name } }
    }
  }
}
"""


def load(checkout):
    return SaleorShop().load_carts([str(checkout.token)]).get(str(checkout.token))


def find(token, **shopper):
    return SaleorShop().find_orders([OrderLookup(token, **shopper)]).get(token)


def storefront_view(api_client, checkout) -> dict:
    """The checkout as Saleor's storefront API prices it."""
    response = api_client.post_graphql(CHECKOUT_PRICES, {"id": gid(checkout)})
    return get_graphql_content(response)["data"]["checkout"]


@pytest.mark.parametrize("fixture", ["checkout_with_item", "checkout_with_item_on_promotion"])
def test_load_carts_shows_the_prices_saleor_showed_the_shopper(request, api_client, fixture, cart_recovery):
    # given one of Saleor's own checkouts: 3 × "Test product" at 10.00 USD, once with a promotion
    checkout = request.getfixturevalue(fixture)
    expected = storefront_view(api_client, checkout)

    # when the adapter loads the cart the storefront just showed the shopper
    cart = load(checkout)

    # then every line and the total are what Saleor's API reported, without pricing it again
    assert cart.token == expected["token"] == str(checkout.token)
    assert cart.channel_slug == "main"
    assert cart.email == expected["email"] == "user@email.com"
    assert cart.currency == expected["totalPrice"]["gross"]["currency"] == "USD"
    assert cart.total == Decimal(str(expected["totalPrice"]["gross"]["amount"]))
    assert [
        (line.variant_id, line.product_name, line.sku, line.quantity, line.unit_price, line.total)
        for line in cart.lines
    ] == [
        (
            str(graphene.Node.from_global_id(line["variant"]["id"])[1]),
            line["variant"]["product"]["name"],
            line["variant"]["sku"],
            line["quantity"],
            Decimal(str(line["unitPrice"]["gross"]["amount"])),
            Decimal(str(line["totalPrice"]["gross"]["amount"])),
        )
        for line in expected["lines"]
    ]
    [line] = cart.lines
    assert (line.product_name, line.quantity) == ("Test product", 3)
    if fixture == "checkout_with_item":
        assert (line.unit_price, line.total, cart.total) == (
            Decimal("10.00"),
            Decimal("30.00"),
            Decimal("30.00"),
        )
    else:
        assert cart.total < Decimal("30.00")  # the promotion's discount is in the price shown


def test_load_cart_gives_an_absolute_thumbnail_url_when_the_product_has_media(
    checkout_with_item, product_with_image, cart_recovery
):
    # given the product in the cart has an image
    media = product_with_image.media.get()

    # when the adapter loads the cart
    [line] = load(checkout_with_item).lines

    # then the line points at Saleor's thumbnail endpoint for that image, absolute for emails
    assert line.image_url == f"https://example.com/thumbnail/{gid(media)}/256/"


def test_load_cart_without_media_has_no_image(checkout_with_item, cart_recovery):
    [line] = load(checkout_with_item).lines
    assert line.image_url is None


def test_load_cart_of_a_deleted_checkout_is_none(checkout_with_item, cart_recovery):
    token = str(checkout_with_item.token)
    checkout_with_item.delete()
    assert SaleorShop().load_carts([token, "not-a-uuid"]) == {}


def test_channel_settings_only_while_active_and_valid(enable_cart_recovery):
    shop = SaleorShop()
    # given the plugin was never configured
    assert shop.channel_settings("main") is None

    # when it is saved active with valid values
    enable_cart_recovery(active=True)
    settings = shop.channel_settings("main")
    assert settings.recovery_url("abc") == CONFIGURATION["storefront_url"].replace("{token}", "abc")

    # when it is turned off
    enable_cart_recovery(active=False)
    assert shop.channel_settings("main") is None
    assert shop.channel_settings("no-such-channel") is None


def test_find_order_by_checkout_token(order, cart_recovery):
    # given one of Saleor's orders placed from a checkout
    order.checkout_token = "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"
    order.save(update_fields=["checkout_token"])

    # then the adapter finds it with its real total, and nothing for another token
    shopper = {"channel_slug": order.channel.slug, "email": "nobody@example.com", "since": order.created_at}
    found = find(order.checkout_token, **shopper)
    assert (found.id, found.number, found.total, found.currency) == (
        str(order.pk),
        str(order.number),
        order.total_gross_amount,
        order.currency,
    )
    assert find("00000000-0000-0000-0000-000000000000", **shopper) is None


def test_find_order_by_the_shoppers_email_in_the_channel_since_a_moment(order, cart_recovery):
    # given one of Saleor's orders placed from another checkout by the shopper
    order.checkout_token = "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"
    order.user_email = "Shopper@Example.com"
    order.save(update_fields=["checkout_token", "user_email"])
    other_token = "00000000-0000-0000-0000-000000000000"
    since = order.created_at - timedelta(minutes=1)

    # then it is found for any cart of that address (case aside) in the channel since before it
    found = find(other_token, channel_slug=order.channel.slug, email="shopper@example.com", since=since)
    assert found.id == str(order.pk)
    # and not for an order placed before the cart's last activity, another channel or address
    later = order.created_at + timedelta(seconds=1)
    assert (
        find(other_token, channel_slug=order.channel.slug, email="shopper@example.com", since=later) is None
    )
    assert find(other_token, channel_slug="elsewhere", email="shopper@example.com", since=since) is None
    assert find(other_token, channel_slug=order.channel.slug, email="x@example.com", since=since) is None


def test_endpoint_url_is_absolute_and_routed_to_the_plugin(client, cart_recovery):
    url = SaleorShop().endpoint_url("main", "unsubscribe/abc")
    assert url == "https://example.com/plugins/channel/main/saleor_cart_recovery/unsubscribe/abc"
    # the route exists: a bad token reaches our endpoint (400), not Saleor's 404
    assert client.get(url.removeprefix("https://example.com")).status_code == 400


def test_load_cart_skips_videos_and_prefers_the_variants_own_image(
    checkout_with_item, product, image, media_root, cart_recovery
):
    # given the product's first media is a video, its second an image, and the variant has its own image
    from saleor.product.models import ProductMedia, VariantMedia

    ProductMedia.objects.create(
        product=product, type="VIDEO", external_url="https://youtu.be/x", sort_order=0
    )
    product_image = ProductMedia.objects.create(product=product, image=image, sort_order=1)
    [line] = load(checkout_with_item).lines
    # then without a variant image the product's image is used, not the video
    assert line.image_url == f"https://example.com/thumbnail/{gid(product_image)}/256/"

    # when the variant gets an image of its own (an external one)
    variant_image = ProductMedia.objects.create(
        product=product, external_url="https://cdn.example.com/blue.jpg", sort_order=2
    )
    VariantMedia.objects.create(variant=product.variants.get(), media=variant_image)

    # then that one is shown
    [line] = load(checkout_with_item).lines
    assert line.image_url == "https://cdn.example.com/blue.jpg"


def test_a_cart_changed_since_it_was_last_priced_shows_the_channel_price(
    api_client, channel_USD, stocked_variant, cart_recovery
):
    # given a checkout created through the API and never priced since (nobody asked for totals)
    token = create_checkout(api_client, channel_USD, stocked_variant, quantity=3)
    checkout = Checkout.objects.get(token=token)
    assert checkout.price_expiration <= checkout.last_change

    # then each line shows the variant's price in the channel now, without a pricing run
    with mock.patch.object(calculations, "fetch_checkout_data", side_effect=AssertionError("priced")):
        [line] = load(checkout).lines
    assert (line.unit_price, line.total, line.listing_price) == (
        Decimal("10.00"),
        Decimal("30.00"),
        Decimal("10.00"),
    )


def test_a_priced_cart_keeps_the_price_the_shopper_saw_and_knows_todays_listing_price(
    api_client, checkout_with_item, cart_recovery
):
    # given the storefront showed the shopper the priced cart (3 × 10.00), then the price dropped
    storefront_view(api_client, checkout_with_item)
    [checkout_line] = checkout_with_item.lines.all()
    ProductVariantChannelListing.objects.filter(variant=checkout_line.variant).update(
        price_amount=Decimal("8.00"), discounted_price_amount=Decimal("8.00")
    )

    # then the email shows what the shopper saw, and "the price dropped" can compare today's price
    cart = load(checkout_with_item)
    [line] = cart.lines
    assert (line.unit_price, line.total, cart.total) == (Decimal("10.00"), Decimal("30.00"), Decimal("30.00"))
    assert line.listing_price == Decimal("8.00")


def test_load_carts_reads_any_number_of_carts_with_the_same_few_queries(
    api_client, channel_USD, stocked_variant, product_with_two_variants, cart_recovery
):
    # given five checkouts of two lines each
    other = product_with_two_variants.variants.order_by("pk").first()
    tokens = []
    for n in range(5):
        token = create_checkout(api_client, channel_USD, stocked_variant, email=f"s{n}@example.com")
        mutate(
            api_client,
            CHECKOUT_LINES_ADD,
            {
                "id": gid(Checkout.objects.get(token=token)),
                "lines": [{"quantity": 1, "variantId": gid(other)}],
            },
            "checkoutLinesAdd",
        )
        tokens.append(token)
    shop = SaleorShop()
    shop.load_carts(tokens[:1])  # the Site is cached after the first read

    # when one cart and then all five are loaded
    with CaptureQueriesContext(connection) as one:
        shop.load_carts(tokens[:1])
    with CaptureQueriesContext(connection) as five:
        carts = shop.load_carts(tokens)

    # then the number of queries does not grow with the batch, and every line is there
    assert len(five.captured_queries) == len(one.captured_queries) <= 6
    assert sorted(len(cart.lines) for cart in carts.values()) == [2] * 5


def test_find_orders_answers_a_batch_and_matches_the_account_email(order, cart_recovery):
    # given an order whose own email is empty: only its customer account has the address
    order.checkout_token = "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"
    order.user_email = ""
    order.save(update_fields=["checkout_token", "user_email"])
    assert order.user is not None
    since = order.created_at - timedelta(minutes=1)
    lookups = [
        OrderLookup(order.checkout_token, "elsewhere", "nobody@example.com", since),  # its own checkout
        OrderLookup(
            "00000000-0000-0000-0000-000000000001", order.channel.slug, order.user.email.upper(), since
        ),
        OrderLookup("00000000-0000-0000-0000-000000000002", order.channel.slug, "x@example.com", since),
        OrderLookup(
            "00000000-0000-0000-0000-000000000003",
            order.channel.slug,
            order.user.email,
            order.created_at + timedelta(seconds=1),  # activity after the order
        ),
    ]
    # when the send path asks for all of them at once, then each gets its own answer
    with CaptureQueriesContext(connection) as queries:
        found = SaleorShop().find_orders(lookups)
    assert {token: ref.id for token, ref in found.items()} == {
        order.checkout_token: str(order.pk),
        "00000000-0000-0000-0000-000000000001": str(order.pk),
    }
    assert len(queries.captured_queries) == 1
