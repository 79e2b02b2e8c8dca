"""The App's shop port (SaleorApi, over HTTP) against real Saleor 3.23 — its ASGI server in a
subprocess on its own database — giving the same answers as the plugin's SaleorShop reading that
database in this process: carts made by a storefront, orders after ``checkoutComplete`` (found by
address whatever its case), cancellation and refunds, stock, upsell, vouchers Saleor accepts (and
deletes: one left behind by a refused listing or by a lost ``voucherCreate`` answer included, an
owner's named like ours never), customer email; a 50-cart send batch's reads in at most 5
requests, with 150 distinct variants too; a deleted token told from a missing permission. And the
stand-in Saleor of the core tests speaks a subset of this Saleor's schema, and selects the
cleanup's vouchers (expired, unused) as this Saleor does."""

import json
import os
import re
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from uuid import uuid4

import graphene
import graphql
import pytest
import requests
from django.contrib.sites.models import Site
from django.db.models import F
from django.utils import timezone
from graphql import build_ast_schema, parse
from saleor.account.models import User
from saleor.app.models import AppToken
from saleor.channel.models import Channel
from saleor.core.db.connection import allow_writer
from saleor.discount.models import Voucher, VoucherChannelListing, VoucherCode
from saleor.graphql.api import schema as saleor_schema
from saleor.graphql.core.validators import validate_query
from saleor.graphql.query_cost_map import COST_MAP
from saleor.order import OrderStatus
from saleor.order.models import Order
from saleor.payment.models import TransactionItem
from saleor.product.models import Product, ProductChannelListing, ProductMedia, ProductVariant, VariantMedia
from saleor.warehouse.models import Stock

from saleor_cart_recovery.app import queries
from saleor_cart_recovery.app.client import (
    WHO_AM_I,
    AppTokenRevoked,
    SaleorClient,
    SaleorQueryError,
    SaleorUnavailable,
)
from saleor_cart_recovery.app.saleor_api import CLEANUP_CANDIDATES, VOUCHER_MARK, SaleorApi
from saleor_cart_recovery.saleor_host.shop import SaleorShop
from saleor_cart_recovery.shop import OrderLookup
from tests.core.standin_saleor import SDL as STANDIN_SDL
from tests.core.standin_saleor import StandinSaleor

from .live_saleor import (
    copy_database,
    create_app_token,
    create_shop,
    drop_database,
    live_saleor,
    saleor_database,
    storefront_checkout,
    storefront_order,
)

DATABASE = os.environ.get(
    "CART_RECOVERY_LIVE_DB", f"saleor_live_{os.environ.get('CART_RECOVERY_DB_NAME', 'cr')}"
)
BROKER = os.environ.get("CART_RECOVERY_BROKER_URL", "redis://127.0.0.1:6379/4")
BATCH = 50
VARIANT = "UHJvZHVjdFZhcmlhbnQ6MQ=="  # ProductVariant:1
# graphene 2 (Saleor 3.23) is the schema; graphene 3 (3.24-dev) wraps it
SALEOR_SCHEMA = getattr(saleor_schema, "graphql_schema", saleor_schema)


@pytest.fixture(scope="module")
def live(django_db_blocker):
    """Saleor's server on a copy of the template, with a shop and an app token."""
    url = copy_database(DATABASE)
    try:
        with django_db_blocker.unblock(), saleor_database(url):
            shop = create_shop(
                products=(
                    ("Green tea", "Tea", ("4.50",), 10),
                    ("Black tea", "Tea", ("6.00", "5.00"), 3),
                    ("White tea", "Tea", ("9.00",), 0),
                    ("Tea pot", "Ware", ("30.00",), None),
                    ("Cup", "Ware", ("3.00",), 20),
                )
            )
            _, token = create_app_token("Cart Recovery")
            _add_images(shop)
        with live_saleor(url, broker_url=BROKER) as saleor:
            yield saleor, shop, token, url
    finally:
        drop_database(DATABASE)


def test_what_changed_since_a_read_answers_the_check_after_it_as_the_plugin_does(saleor, shop, api, plugin):
    # given two orders Saleor dates ten minutes back (Old's and Cy's), then the batch's read, then
    # an order from Ann's cart's checkout, one by Bo, typed in capitals, from another checkout than
    # his cart's, and Cy's saved again (a draft completed, an email corrected)
    cup, channel = shop.variant_ids["Cup"][0], shop.channel_slug
    ten_minutes_ago = timezone.now() - timedelta(minutes=10)
    earlier = {}
    for email in ("old@example.com", "cy@example.com"):
        checkout_id, _ = storefront_checkout(saleor, channel, email, [(cup, 1)])
        earlier[email] = storefront_order(saleor, checkout_id, shop.shipping_method_id)["number"]
    with allow_writer():
        Order.objects.filter(number__in=earlier.values()).update(
            created_at=ten_minutes_ago, updated_at=ten_minutes_ago
        )
    since = timezone.now() - timedelta(hours=1)
    read_at = timezone.now()
    ann_id, ann_token = storefront_checkout(saleor, channel, "ann@example.com", [(cup, 1)])
    ann = storefront_order(saleor, ann_id, shop.shipping_method_id)
    _, bo_token = storefront_checkout(saleor, channel, "bo@example.com", [(cup, 2)])
    other_id, _ = storefront_checkout(saleor, channel, "Bo@Example.com", [(cup, 1)])
    bo = storefront_order(saleor, other_id, shop.shipping_method_id)
    with allow_writer():
        Order.objects.get(number=earlier["cy@example.com"]).save(update_fields=["status", "updated_at"])
    carts = {email: str(uuid4()) for email in ("cy@example.com", "old@example.com")}
    lookups = [
        OrderLookup(ann_token, channel, "ann@example.com", since),
        OrderLookup(bo_token, channel, "bo@example.com", since),
        OrderLookup(carts["cy@example.com"], channel, "cy@example.com", since),
    ]
    # when the check right before the sends asks about what changed since that read
    found = api.find_orders_since(lookups, read_at)
    # then it finds exactly what the plugin's check finds; Old's order, unchanged since before the
    # read's margin, is left to the read
    assert found == plugin.find_orders(lookups)
    assert {token: order.number for token, order in found.items()} == {
        ann_token: str(ann["number"]),
        bo_token: str(bo["number"]),
        carts["cy@example.com"]: str(earlier["cy@example.com"]),
    }
    old = OrderLookup(carts["old@example.com"], channel, "old@example.com", since)
    assert api.find_orders_since([old], read_at) == {} and plugin.find_orders([old]) != {}
    # and once an account has one of the addresses since the read, it cannot tell
    with allow_writer():
        User.objects.create(email="dee@example.com")
    dee = OrderLookup(str(uuid4()), channel, "Dee@Example.com", since)
    assert api.find_orders_since([dee], read_at) is None


def _add_images(shop):
    """The green tea's variant has its own image; the black tea only a product image."""
    green = shop.products["Green tea"]
    with allow_writer():
        variant_image = ProductMedia.objects.create(product=green, image="products/green.png", alt="")
        VariantMedia.objects.create(variant=green.variants.get(), media=variant_image)
        ProductMedia.objects.create(product=shop.products["Black tea"], image="products/black.png", alt="")


@pytest.fixture
def saleor(live):
    return live[0]


@pytest.fixture
def shop(live):
    return live[1]


@pytest.fixture
def api(live):
    return SaleorApi(SaleorClient(live[0].api_url, live[2]))


@pytest.fixture
def plugin(live, django_db_blocker, settings):
    """The plugin's shop reading the same database, with Saleor's public URL (absolute links)."""
    settings.PUBLIC_URL = live[0].url
    with django_db_blocker.unblock(), saleor_database(live[3]):
        settings.SITE_ID = Site.objects.values_list("pk", flat=True).get()  # Saleor's, not the test's
        Site.objects.clear_cache()
        yield SaleorShop()
    Site.objects.clear_cache()


def test_carts_read_over_the_api_equal_the_plugins(saleor, shop, api, plugin):
    variants = shop.variant_ids
    ann_id, ann = storefront_checkout(
        saleor,
        shop.channel_slug,
        "ann@example.com",
        [(variants["Green tea"][0], 3), (variants["Black tea"][1], 1), (variants["Tea pot"][0], 1)],
        language="PT_BR",
    )
    saleor.graphql(
        "mutation M($id: ID!, $m: [MetadataInput!]!) "
        "{ updateMetadata(id: $id, input: $m) { errors { code } } }",
        {"id": ann_id, "m": [{"key": "campaign", "value": "spring"}]},
    )
    _, bo = storefront_checkout(
        saleor, shop.channel_slug, "bo@example.com", [(variants["Cup"][0], 2)], address=None
    )

    over_api = api.load_carts([ann, bo, "3f2e9d1c-0000-4000-8000-000000000000", "junk"])

    assert over_api == plugin.load_carts([ann, bo, "3f2e9d1c-0000-4000-8000-000000000000", "junk"])
    cart = over_api[ann]
    assert [(line.quantity, line.unit_price, line.total) for line in cart.lines] == [
        (3, Decimal("4.50"), Decimal("13.50")),
        (1, Decimal("5.00"), Decimal("5.00")),
        (1, Decimal("30.00"), Decimal("30.00")),
    ]
    assert cart.lines[0].image_url.startswith(f"{saleor.url}/thumbnail/")
    assert cart.lines[1].image_url.startswith(f"{saleor.url}/thumbnail/")
    assert (cart.language_code, cart.first_name, cart.country, cart.metadata) == (
        "pt-br",
        "Ann",
        "DE",
        {"campaign": "spring"},
    )
    assert over_api[bo].first_name == "" and over_api[bo].country == ""


def test_orders_cancellations_and_refunds_equal_the_plugins(saleor, shop, api, plugin):
    variants = shop.variant_ids
    since = timezone.now() - timedelta(minutes=1)
    placed_id, placed = storefront_checkout(
        saleor, shop.channel_slug, "cy@example.com", [(variants["Cup"][0], 1)]
    )
    order = storefront_order(saleor, placed_id, shop.shipping_method_id)
    # another cart of the same shopper, stopped by that order (same address, after its activity)
    _, other = storefront_checkout(saleor, shop.channel_slug, "cy@example.com", [(variants["Cup"][0], 2)])
    _, unrelated = storefront_checkout(
        saleor, shop.channel_slug, "dee@example.com", [(variants["Cup"][0], 1)]
    )
    lookups = [
        OrderLookup(placed, shop.channel_slug, "cy@example.com", since),
        OrderLookup(other, shop.channel_slug, "cy@example.com", since),
        OrderLookup(unrelated, shop.channel_slug, "dee@example.com", since),
        OrderLookup(other, shop.channel_slug, "cy@example.com", timezone.now() + timedelta(minutes=5)),
    ]

    found = api.find_orders(lookups)
    assert found == plugin.find_orders(lookups)
    assert set(found) == {placed, other}
    assert found[placed].number == str(order["number"]) and found[placed].checkout_token == placed
    assert not found[placed].cancelled and found[placed].refunded == 0

    saved = Order.objects.get(number=order["number"])
    with allow_writer():
        TransactionItem.objects.create(
            order_id=saved.pk,
            currency=saved.currency,
            refunded_value=Decimal("2.50"),
            charged_value=Decimal("8.00"),
        )
        Order.objects.filter(pk=saved.pk).update(status=OrderStatus.CANCELED)

    found = api.find_orders(lookups[:1])
    assert found == plugin.find_orders(lookups[:1])
    assert (found[placed].cancelled, found[placed].refunded) == (True, Decimal("2.50"))


def test_orders_by_the_same_address_are_found_whatever_its_case_as_the_plugin_finds_them(
    saleor, shop, api, plugin
):
    # given orders placed with addresses typed in capitals, in small letters, and one containing
    # another, and an order whose staff account (not its own email) has the address
    cup = shop.variant_ids["Cup"][0]
    since = timezone.now() - timedelta(minutes=1)
    placed = {}
    for email in (
        "Jane.Doe@Example.com",
        "kim.lee@example.com",
        "x.jane.doe@example.com",
        "lou.old@example.com",
    ):
        checkout_id, token = storefront_checkout(saleor, shop.channel_slug, email, [(cup, 1)])
        placed[email] = (token, storefront_order(saleor, checkout_id, shop.shipping_method_id))
    with allow_writer():
        lou = User.objects.create(email="Lou.Staff@Example.com", is_staff=True)
        Order.objects.filter(number=placed["lou.old@example.com"][1]["number"]).update(user=lou)
    # when the order check asks by the carts' addresses, recorded in other casings
    lookups = {
        "jane": OrderLookup(
            "3f2e9d1c-0000-4000-8000-000000000001", shop.channel_slug, "jane.doe@example.com", since
        ),
        "kim": OrderLookup(
            "3f2e9d1c-0000-4000-8000-000000000002", shop.channel_slug, "Kim.Lee@EXAMPLE.com", since
        ),
        "lou": OrderLookup(
            "3f2e9d1c-0000-4000-8000-000000000003", shop.channel_slug, "lou.staff@example.com", since
        ),
        "doe": OrderLookup(
            "3f2e9d1c-0000-4000-8000-000000000004", shop.channel_slug, "doe@example.com", since
        ),
        "later": OrderLookup(
            "3f2e9d1c-0000-4000-8000-000000000005", shop.channel_slug, "jane.doe@example.com", timezone.now()
        ),
    }
    found = api.find_orders(list(lookups.values()))
    # then each shopper's order is found, exactly the plugin's answer, none by a part of an address
    assert found == plugin.find_orders(list(lookups.values()))
    numbers = {
        name: found[lookup.checkout_token].number
        for name, lookup in lookups.items()
        if lookup.checkout_token in found
    }
    assert numbers == {
        "jane": str(placed["Jane.Doe@Example.com"][1]["number"]),
        "kim": str(placed["kim.lee@example.com"][1]["number"]),
        "lou": str(placed["lou.old@example.com"][1]["number"]),
    }


def test_stock_equals_the_plugins(saleor, shop, api, plugin):
    variants = [v for ids in shop.variant_ids.values() for v in ids]
    keys = [str(graphene.Node.from_global_id(v)[1]) for v in variants]
    _, allocated = storefront_checkout(
        saleor, shop.channel_slug, "eve@example.com", [(shop.variant_ids["Cup"][0], 1)]
    )

    levels = api.stock_levels(shop.channel_slug, [*keys, "999999"])

    assert levels == plugin.stock_levels(shop.channel_slug, [*keys, "999999"])
    assert levels[keys[0]] is not None and None in levels.values()  # the tea pot is not tracked
    assert Stock.objects.filter(quantity__gt=0).exists()


def test_upsell_and_unavailable_products_equal_the_plugins(shop, api, plugin):
    green = str(ProductVariant.objects.get(product=shop.products["Green tea"]).pk)
    cup = str(ProductVariant.objects.get(product=shop.products["Cup"]).pk)
    hidden = Product.objects.create(
        name="Hidden tea",
        slug="live-hidden-tea",
        product_type=shop.products["Cup"].product_type,
        category=shop.products["Green tea"].category,
    )
    with allow_writer():
        ProductChannelListing.objects.create(
            product=hidden,
            channel_id=ProductChannelListing.objects.first().channel_id,
            is_published=False,
            currency="USD",
        )
    carts = [[green], [cup], [green, cup], []]
    configured = (
        "live-cup",
        str(shop.products["Tea pot"].pk),
        graphene.Node.to_global_id("Product", hidden.pk),
        "live-white-tea",
        "no-such-product",
    )

    related = api.upsell_products(shop.channel_slug, carts, None, 2)
    assert related == plugin.upsell_products(shop.channel_slug, carts, None, 2)
    assert [p.name for p in related[0]] == ["Black tea"]  # white tea is sold out, hidden tea hidden
    chosen = api.upsell_products(shop.channel_slug, carts, configured, 3)
    assert chosen == plugin.upsell_products(shop.channel_slug, carts, configured, 3)
    assert [p.name for p in chosen[1]] == ["Tea pot"]
    assert api.unavailable_products(shop.channel_slug, configured) == {
        graphene.Node.to_global_id("Product", hidden.pk): (
            f"not published and available for purchase in channel {shop.channel_slug}"
        ),
        "no-such-product": "no such product",
    }


def test_sample_cart_equals_the_plugins(shop, api, plugin):
    assert api.sample_cart(shop.channel_slug, "de") == plugin.sample_cart(shop.channel_slug, "de")


def test_a_voucher_saleor_accepts_once_in_its_channel_and_its_cleanup(saleor, shop, api, plugin):
    now = timezone.now()
    issued = api.issue_voucher(
        shop.channel_slug,
        discount_type="percentage",
        value=Decimal("10"),
        min_total=Decimal("5"),
        expires_at=now + timedelta(hours=1),
        name="Your cart",
    )
    unused = api.issue_voucher(
        shop.channel_slug,
        discount_type="fixed",
        value=Decimal("3"),
        min_total=None,
        expires_at=now + timedelta(hours=1),
        name="Your cart",
    )
    cup = shop.variant_ids["Cup"][0]
    checkout_id, _ = storefront_checkout(saleor, shop.channel_slug, "fay@example.com", [(cup, 5)])

    applied = apply_code(saleor, checkout_id, issued.code)
    assert applied["errors"] == [] and applied["checkout"]["voucherCode"] == issued.code
    assert Decimal(str(applied["checkout"]["subtotalPrice"]["gross"]["amount"])) == Decimal("13.50")
    storefront_order(saleor, checkout_id, shop.shipping_method_id)  # the code is used now
    again = apply_code(
        saleor, storefront_checkout(saleor, shop.channel_slug, "g@example.com", [(cup, 5)])[0], issued.code
    )
    assert [error["field"] for error in again["errors"]] == ["promoCode"]  # single use

    for host in (api, plugin):  # a voucher of a lost claim, deleted at once
        doomed = host.issue_voucher(
            shop.channel_slug,
            discount_type="fixed",
            value=Decimal("3"),
            min_total=None,
            expires_at=now + timedelta(hours=1),
            name="Your cart",
        )
        host.delete_voucher(doomed)
        assert not VoucherCode.objects.filter(code=doomed.code).exists()
    assert api.delete_expired_vouchers(now) == 0  # not expired yet
    later = two_hours_later()
    assert api.delete_expired_vouchers(later) == 1  # the unused one only
    assert plugin.delete_expired_vouchers(later) == 0  # the plugin sees the same
    gone = apply_code(
        saleor, storefront_checkout(saleor, shop.channel_slug, "h@example.com", [(cup, 5)])[0], unused.code
    )
    assert [error["code"] for error in gone["errors"]] == ["INVALID"]


def test_a_voucher_whose_listing_saleor_refused_and_that_could_not_be_deleted_is_usable_nowhere_and_cleaned(
    saleor, shop, live, api, plugin
):
    # given Saleor refusing the listing (a percentage over 100), then unreachable for the deletion
    now = timezone.now()
    expires = now + timedelta(hours=1)
    with lossy_proxy(saleor.api_url, down={"DeleteVouchers"}) as url, pytest.raises(SaleorUnavailable):
        SaleorApi(SaleorClient(url, live[2])).issue_voucher(
            shop.channel_slug,
            discount_type="percentage",
            value=Decimal("150"),
            min_total=None,
            expires_at=expires,
            name="Left behind",
        )

    # then the voucher Saleor keeps carries both marks (written in the listing's document, which
    # Saleor ran to its end), ends when it would have, and is in no channel: its code is refused
    voucher = Voucher.objects.get(name="Left behind")
    assert voucher.metadata == voucher.private_metadata == {VOUCHER_MARK: "coupon"}
    assert voucher.end_date == expires and not voucher.channel_listings.exists()
    cup = shop.variant_ids["Cup"][0]
    checkout_id, _ = storefront_checkout(saleor, shop.channel_slug, "ida@example.com", [(cup, 5)])
    refused = apply_code(saleor, checkout_id, voucher.codes.get().code)
    assert [error["code"] for error in refused["errors"]] == ["INVALID"]
    # and the cleanup finds it: kept until it expired, deleted after
    api.delete_expired_vouchers(now)
    assert Voucher.objects.filter(pk=voucher.pk).exists()
    api.delete_expired_vouchers(two_hours_later())
    assert not Voucher.objects.filter(pk=voucher.pk).exists()


def test_a_voucher_whose_creation_answer_was_lost_is_cleaned_and_an_owners_named_like_it_kept(
    saleor, shop, live, api, plugin
):
    # given Saleor creating a voucher whose answer is lost
    now = timezone.now()
    expires = now + timedelta(hours=1)
    name = f"Cart recovery {uuid4()}"
    with lossy_proxy(saleor.api_url, lost={"IssueVoucher"}) as url, pytest.raises(SaleorUnavailable):
        SaleorApi(SaleorClient(url, live[2])).issue_voucher(
            shop.channel_slug,
            discount_type="fixed",
            value=Decimal("3"),
            min_total=None,
            expires_at=expires,
            name=name,
        )
    # and owner's vouchers that ended unused: one named like ours but in the channel, one in no
    # channel named otherwise
    with allow_writer():
        channel = Channel.objects.get(slug=shop.channel_slug)
        listed = Voucher.objects.create(name=f"Cart recovery {uuid4()}", end_date=now - timedelta(days=1))
        VoucherChannelListing.objects.create(
            voucher=listed, channel=channel, discount_value=Decimal("5"), currency=channel.currency_code
        )
        other = Voucher.objects.create(name="Cart recovery sale", end_date=now - timedelta(days=1))
        for voucher in (listed, other):
            VoucherCode.objects.create(voucher=voucher, code=f"OWNER-{voucher.pk}")

    # then Saleor keeps ours unmarked and in no channel
    voucher = Voucher.objects.get(name=name)
    assert voucher.metadata == voucher.private_metadata == {} and not voucher.channel_listings.exists()
    assert voucher.end_date == expires
    # and the cleanup deletes it once it expired, not before, and never the owner's
    api.delete_expired_vouchers(now)
    assert Voucher.objects.filter(pk=voucher.pk).exists()
    api.delete_expired_vouchers(two_hours_later())
    assert not Voucher.objects.filter(pk=voucher.pk).exists()
    assert Voucher.objects.filter(pk__in=(listed.pk, other.pk)).count() == 2


def two_hours_later() -> datetime:
    """Two hours on for Saleor and the cleanup, returned as the cleanup's ``now``: Saleor's server
    keeps the real clock, so every voucher's dates move two hours back instead."""
    with allow_writer():
        Voucher.objects.update(
            start_date=F("start_date") - timedelta(hours=2), end_date=F("end_date") - timedelta(hours=2)
        )
    return timezone.now()


def test_the_cleanups_selection_is_the_standins(api, plugin):
    """Saleor's ``status: [EXPIRED]`` and ``timesUsed: {lte: 0}``, as the stand-in of the core tests
    answers them, for the same vouchers."""
    # given vouchers (in no channel, none of ours) differing in start, end, codes' uses and limit
    tag = f"selection {uuid4()}"
    now = timezone.now()
    cases = {  # days to start, days to end (None: no end), each code's uses, usage limit, selected
        "ended unused": (-2, -1, (0,), None, True),
        "ended used": (-2, -1, (1,), None, False),
        "ended, one of two codes used": (-2, -1, (0, 1), None, False),
        "ended without codes": (-2, -1, (), None, False),
        "running": (-2, 1, (0,), None, False),
        "without end": (-2, None, (0,), None, False),
        "not started": (1, -1, (0,), None, False),
        "running, its limit of 0 reached": (-2, 1, (0,), 0, True),
    }
    with StandinSaleor() as standin:
        for case, (start, end, uses, limit, _) in cases.items():
            start_date = now + timedelta(days=start)
            end_date = None if end is None else now + timedelta(days=end)
            with allow_writer():
                voucher = Voucher.objects.create(
                    name=f"{tag} {case}", start_date=start_date, end_date=end_date, usage_limit=limit
                )
                for index, used in enumerate(uses):
                    VoucherCode.objects.create(voucher=voucher, code=f"{voucher.pk}-{index}", used=used)
            copy = standin.shop.add_voucher(
                f"{tag} {case}",
                end_date,
                codes=[f"{voucher.pk}-{index}" for index in range(len(uses))],
                input={"startDate": start_date.isoformat(), "usageLimit": limit},
            )
            # its codes used as Saleor's (no uses: none, add_voucher's own code taken away)
            copy["_codes"] = [
                {**code, "used": used} for code, used in zip(copy["_codes"], uses, strict=False)
            ]

        # when both are asked for the cleanup's candidates among them
        selection = {"filter": {**CLEANUP_CANDIDATES, "search": tag}, "after": None}
        answers = [
            {
                edge["node"]["name"]
                for edge in client.execute(queries.OUR_VOUCHERS, selection)["vouchers"]["edges"]
            }
            for client in (api.client, SaleorClient(standin.api_url, standin.token))
        ]

    # then both select the same: started and ended (or its limit reached), no code used
    assert answers[0] == answers[1] == {f"{tag} {case}" for case, (*_, selected) in cases.items() if selected}


@contextmanager
def lossy_proxy(api_url: str, *, down: Collection[str] = (), lost: Collection[str] = ()) -> Iterator[str]:
    """A GraphQL URL on loopback passing documents on to Saleor, except that the connection is
    closed unanswered for the operations in ``down`` (Saleor down for those requests) and, after
    Saleor answered, for those in ``lost`` (Saleor committed, and its answer never came)."""

    class Proxy(BaseHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

        def hang_up(self):
            self.close_connection = True
            self.connection.close()

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            found = re.match(r"\s*(?:query|mutation)\s+(\w+)", json.loads(body)["query"])
            name = found and found.group(1)
            if name in down:
                return self.hang_up()
            headers = {"Content-Type": "application/json", "Authorization": self.headers["Authorization"]}
            answer = requests.post(api_url, data=body, headers=headers, timeout=30)
            if name in lost:
                return self.hang_up()
            self.send_response(answer.status_code)
            self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/graphql/"
    finally:
        server.shutdown()
        server.server_close()


def apply_code(saleor, checkout_id: str, code: str) -> dict:
    return saleor.graphql(
        """mutation Apply($id: ID!, $code: String!) {
          checkoutAddPromoCode(id: $id, promoCode: $code) {
            checkout { voucherCode subtotalPrice { gross { amount } } } errors { field code message }
          }
        }""",
        {"id": checkout_id, "code": code},
        mutation_errors=True,
    )["checkoutAddPromoCode"]


def test_customer_email_equals_the_plugins(api, plugin):
    with allow_writer():
        customer = User.objects.create(email="hal@example.com")
        staff = User.objects.create(email="boss@example.com", is_staff=True)
    for user in (customer, staff):
        user_id = graphene.Node.to_global_id("User", user.pk)
        assert api.customer_email(user_id) == plugin.customer_email(user_id)
    assert api.customer_email(graphene.Node.to_global_id("User", customer.pk)) == "hal@example.com"


def test_a_send_batch_of_50_carts_reads_in_at_most_5_requests(saleor, shop, api, plugin):
    variants = shop.variant_ids
    tokens = [
        storefront_checkout(
            saleor,
            shop.channel_slug,
            f"batch{index}@example.com",
            [(variants["Green tea"][0], 1), (variants["Cup"][0], 1 + index % 3)],
            address=None,
        )[1]
        for index in range(BATCH)
    ]
    since = timezone.now() - timedelta(hours=1)
    client = api.client
    before = client.requests_made

    carts = api.load_carts(tokens)
    orders = api.find_orders([OrderLookup(t, shop.channel_slug, carts[t].email, since) for t in tokens])
    variant_ids = sorted({line.variant_id for cart in carts.values() for line in cart.lines})
    stock = api.stock_levels(shop.channel_slug, variant_ids)
    upsell = api.upsell_products(
        shop.channel_slug, [[line.variant_id for line in c.lines] for c in carts.values()], None, 2
    )

    assert client.requests_made - before <= 5
    assert len(carts) == BATCH and orders == {} and len(upsell) == BATCH
    assert carts == plugin.load_carts(tokens)
    assert stock == plugin.stock_levels(shop.channel_slug, variant_ids)


def test_a_send_batch_of_150_distinct_variants_reads_in_at_most_5_requests(saleor, api, plugin):
    # given a channel of 50 teas in 10 categories, three variants each, and 50 carts of one tea each
    wide = create_shop(
        "wide",
        products=[
            (f"Wide tea {index:02}", f"Kind {index % 10}", ("5.00", "6.00", "7.00"), 10)
            for index in range(BATCH)
        ],
    )
    tokens = [
        storefront_checkout(
            saleor, wide.channel_slug, f"wide{index}@example.com", [(v, 1) for v in variants], address=None
        )[1]
        for index, variants in enumerate(wide.variant_ids.values())
    ]
    since = timezone.now() - timedelta(hours=1)
    before = api.client.requests_made
    # when a send batch reads them
    carts = api.load_carts(tokens)
    orders = api.find_orders([OrderLookup(t, wide.channel_slug, carts[t].email, since) for t in tokens])
    variant_ids = sorted({line.variant_id for cart in carts.values() for line in cart.lines})
    stock = api.stock_levels(wide.channel_slug, variant_ids)
    in_carts = [[line.variant_id for line in cart.lines] for cart in carts.values()]
    upsell = api.upsell_products(wide.channel_slug, in_carts, None, 2)
    # then in five requests, Saleor's limits kept, with the plugin's answers
    assert api.client.requests_made - before <= 5
    assert len(variant_ids) == 150 and orders == {}
    assert stock == plugin.stock_levels(wide.channel_slug, variant_ids)
    assert upsell == plugin.upsell_products(wide.channel_slug, in_carts, None, 2)
    assert all(len(products) == 2 for products in upsell)


def test_a_deleted_token_is_revoked_and_a_missing_permission_is_not(live, api, django_db_blocker):
    saleor, _, _, url = live
    with django_db_blocker.unblock(), saleor_database(url):
        _, limited = create_app_token("Checkouts only", ["MANAGE_CHECKOUTS"])
        _, doomed = create_app_token("Doomed")
        with allow_writer():
            AppToken.objects.filter(app__name="Doomed").delete()
    lookups = [OrderLookup("3f2e9d1c-0000-4000-8000-000000000000", "live", "a@example.com", timezone.now())]

    assert api.app_identity().permissions >= {"MANAGE_CHECKOUTS", "MANAGE_ORDERS", "MANAGE_DISCOUNTS"}
    with pytest.raises(AppTokenRevoked):
        SaleorApi(SaleorClient(saleor.api_url, doomed)).find_orders(lookups)
    with pytest.raises(SaleorQueryError) as refused:
        SaleorApi(SaleorClient(saleor.api_url, limited)).find_orders(lookups)
    assert not isinstance(refused.value, AppTokenRevoked)
    assert SaleorApi(SaleorClient(saleor.api_url, limited)).app_identity().permissions == {"MANAGE_CHECKOUTS"}


def test_the_standin_speaks_a_subset_of_saleors_schema():
    """Every type, field and argument of the core tests' stand-in exists in Saleor with the same
    type, so a document the stand-in accepts is one Saleor accepts."""
    standin = build_ast_schema(parse(STANDIN_SDL))
    real = SALEOR_SCHEMA
    missing = []
    for name, kind in standin.get_type_map().items():
        if name.startswith("__") or name in ("String", "Int", "Float", "Boolean", "ID"):
            continue
        theirs = real.get_type(name)
        if theirs is None:
            missing.append(name)
            continue
        for field_name, field in getattr(kind, "fields", {}).items():
            their_field = theirs.fields.get(field_name)
            if their_field is None or str(their_field.type) != str(field.type):
                missing.append(
                    f"{name}.{field_name}: {field.type} (Saleor: {their_field and their_field.type})"
                )
                continue
            for arg_name, arg in getattr(field, "args", {}).items():
                their_arg = their_field.args.get(arg_name)
                if their_arg is None or str(their_arg.type) != str(arg.type):
                    missing.append(f"{name}.{field_name}({arg_name}: {arg.type})")
        their_values = getattr(theirs, "values", None) or ()
        their_names = set(their_values) if isinstance(their_values, dict) else {v.name for v in their_values}
        for value in getattr(kind, "values", ()):
            if value.name not in their_names:
                missing.append(f"{name}.{value.name}")
    assert missing == []


def _variant_document(document, fields_cost: int) -> tuple[str, dict]:
    """A document reading pages of variants, with as many full pages as one request may ask."""
    pages = queries.variant_pages_per_request(fields_cost)
    return document(pages), {f"v{index}": [VARIANT] * queries.PAGE for index in range(pages)}


def _documents():
    """Every document SaleorApi sends, at its largest, with worst-case variables."""
    return {
        "load_carts": (queries.load_carts(queries.CARTS_PER_REQUEST), {}),
        "related_products": (
            queries.related_products(queries.groups_per_request(queries.PAGE)),
            {"n": queries.PAGE},
        ),
        "find_orders": (queries.find_orders(queries.ADDRESSES_PER_REQUEST, by_checkout=True), {}),
        "stock_levels": _variant_document(queries.stock_levels, queries.VARIANT_STOCK_COST),
        "upsell_seeds": _variant_document(queries.upsell_seeds, queries.VARIANT_SEED_COST),
        **{
            name: (getattr(queries, name), {})
            for name in (
                "SAMPLE_CART",
                "PRODUCTS_BY_REFERENCE",
                "CHANNELS",
                "CHANNEL",
                "APP_IDENTITY",
                "CUSTOMER_EMAIL",
                "OUR_VOUCHERS",
                "ORDER_BY_ID",
                "CHANGED_SINCE",
            )
        },
        "VOUCHER_CREATE": (queries.VOUCHER_CREATE, {"input": {"name": "x"}}),
        "VOUCHER_LISTING": (
            queries.VOUCHER_LISTING,
            {"id": "Vm91Y2hlcjox", "input": {}, "mark": [{"key": "k", "value": "v"}]},
        ),
        "VOUCHER_DELETE": (queries.VOUCHER_DELETE, {"ids": ["Vm91Y2hlcjox"]}),
        "probe": (WHO_AM_I, {}),
    }


@pytest.mark.parametrize("name", sorted(_documents()), ids=lambda name: f"{name}_case")
def test_every_document_is_valid_and_within_saleors_limits(name):
    document, variables = _documents()[name]
    ast = graphql.parse(document)

    assert [error.message for error in graphql.validate(SALEOR_SCHEMA, ast)] == []
    cost, errors = validate_query(
        schema=SALEOR_SCHEMA, document_ast=ast, variables=variables, cost_map=COST_MAP
    )
    assert errors is None, (cost, errors)
    assert cost <= queries.MAX_COST


def test_the_cost_of_a_related_product_is_what_the_batching_assumes():
    ast = graphql.parse(queries.related_products(1))
    one, _ = validate_query(schema=SALEOR_SCHEMA, document_ast=ast, variables={"n": 1}, cost_map=COST_MAP)
    ten, _ = validate_query(schema=SALEOR_SCHEMA, document_ast=ast, variables={"n": 11}, cost_map=COST_MAP)
    assert (ten - one) / 10 <= queries.PRODUCT_COST


@pytest.mark.parametrize(
    ("document", "fields_cost"),
    [(queries.stock_levels, queries.VARIANT_STOCK_COST), (queries.upsell_seeds, queries.VARIANT_SEED_COST)],
    ids=["stock_levels_case", "upsell_seeds_case"],
)
def test_the_cost_of_a_page_of_variants_is_what_the_batching_assumes(document, fields_cost):
    def cost(pages):
        variables = {f"v{index}": [VARIANT] * queries.PAGE for index in range(pages)}
        found, _ = validate_query(
            schema=SALEOR_SCHEMA,
            document_ast=graphql.parse(document(pages)),
            variables=variables,
            cost_map=COST_MAP,
        )
        return found

    assert cost(2) - cost(1) <= queries.PAGE * fields_cost
