"""The shop port over Saleor's GraphQL API, against the stand-in Saleor (a real HTTP server on
loopback): the answers, the request budget of a send batch, and each failure sorted as the caller
needs it. The same answers against real Saleor, next to the plugin's: tests/saleor/test_saleor_api.py."""

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from saleor_cart_recovery.app.client import AppTokenRevoked, SaleorClient, SaleorQueryError, SaleorUnavailable
from saleor_cart_recovery.app.saleor_api import VOUCHER_MARK, SaleorApi, database_id, global_id
from saleor_cart_recovery.shop import CartLine, OrderLookup

from .standin_saleor import StandinSaleor

NOW = datetime.now(UTC)
BATCH = 50


@pytest.fixture
def saleor():
    with StandinSaleor() as standin:
        shop = standin.shop
        shop.name = "Tea & Co"
        shop.add_channel("default-channel", "Default", "USD")
        shop.add_channel("eu", "Europe", "EUR")
        yield standin


@pytest.fixture
def api(saleor):
    return SaleorApi(SaleorClient(saleor.api_url, saleor.token, timeout=2))


def pk(node) -> str:
    return database_id(node["id"])


def cleanup(saleor, api, now) -> int:
    """The cleanup run at ``now``, Saleor's clock showing the same time."""
    saleor.shop.clock = now
    return api.delete_expired_vouchers(now)


def test_a_cart_reads_as_the_plugin_reads_it(saleor, api):
    shop = saleor.shop
    tea = shop.add_product("default-channel", "Green tea", ["4.50"], image="https://cdn.example/tea.png")
    pot = shop.add_product("default-channel", "Tea pot", ["30.00"])
    user = shop.add_user("ann@example.com", "Annie", metadata={"tier": "gold"})
    checkout = shop.add_checkout(
        "default-channel",
        "",
        [(tea["variants"][0], 3), (pot["variants"][0], 1)],
        language="PT_BR",
        user=user,
        metadata={"source": "public", "campaign": "spring"},
        private_metadata={"source": "private", "note": "vip"},
        first_name="Ann",
        country="PL",
    )

    carts = api.load_carts([checkout["token"], "not-a-uuid", "8b0c9a1e-0000-4000-8000-000000000000"])

    assert list(carts) == [checkout["token"]]
    cart = carts[checkout["token"]]
    assert cart.lines == (
        CartLine(
            variant_id=pk(tea["variants"][0]),
            product_name="Green tea",
            variant_name="Green tea 1",
            sku=tea["variants"][0]["sku"],
            quantity=3,
            unit_price=Decimal("4.50"),
            total=Decimal("13.50"),
            image_url="https://cdn.example/tea.png",
            listing_price=Decimal("4.50"),
        ),
        CartLine(
            variant_id=pk(pot["variants"][0]),
            product_name="Tea pot",
            variant_name="Tea pot 1",
            sku=pot["variants"][0]["sku"],
            quantity=1,
            unit_price=Decimal("30.00"),
            total=Decimal("30.00"),
            image_url=None,
            listing_price=Decimal("30.00"),
        ),
    )
    assert (cart.total, cart.currency, cart.channel_slug, cart.shop_name) == (
        Decimal("43.50"),
        "USD",
        "default-channel",
        "Tea & Co",
    )
    assert (cart.email, cart.language_code, cart.first_name, cart.country) == (
        "ann@example.com",
        "pt-br",
        "Ann",
        "PL",
    )
    assert cart.metadata == {"source": "public", "campaign": "spring", "note": "vip"}
    assert cart.account_metadata == {"tier": "gold"}


def test_a_cart_without_an_address_takes_the_accounts_first_name(saleor, api):
    shop = saleor.shop
    tea = shop.add_product("default-channel", "Green tea", ["4.50"])
    user = shop.add_user("bo@example.com", "Bo")
    checkout = shop.add_checkout("default-channel", "", [(tea["variants"][0], 1)], user=user)

    cart = api.load_carts([checkout["token"]])[checkout["token"]]

    assert (cart.first_name, cart.country, cart.language_code) == ("Bo", "", "en")


def test_a_send_batch_reads_everything_in_five_requests_or_fewer(saleor, api):
    shop = saleor.shop
    products = [
        shop.add_product("default-channel", f"Tea {index:02}", ["5.00"], category=f"cat{index % 4}")
        for index in range(12)
    ]
    checkouts = [
        shop.add_checkout(
            "default-channel",
            f"shopper{index}@example.com",
            [(products[index % 12]["variants"][0], 1), (products[(index + 5) % 12]["variants"][0], 2)],
        )
        for index in range(BATCH)
    ]
    shop.add_order("default-channel", "shopper3@example.com", "5.00", checkout_token=checkouts[3]["token"])

    carts = api.load_carts([c["token"] for c in checkouts])
    orders = api.find_orders(
        [OrderLookup(c["token"], "default-channel", c["email"], NOW - timedelta(days=1)) for c in checkouts]
    )
    variant_ids = sorted({line.variant_id for cart in carts.values() for line in cart.lines})
    stock = api.stock_levels("default-channel", variant_ids)
    upsell = api.upsell_products(
        "default-channel", [[line.variant_id for line in cart.lines] for cart in carts.values()], None, 2
    )

    assert len(carts) == BATCH and list(orders) == [checkouts[3]["token"]]
    assert stock == dict.fromkeys(variant_ids, 10)
    assert len(upsell) == BATCH and all(len(products) == 2 for products in upsell)
    assert api.client.requests_made == len(saleor.received) <= 5
    assert saleor.operations() == ["LoadCarts", "FindOrders", "StockLevels", "UpsellSeeds", "RelatedProducts"]


def test_a_send_batch_of_150_distinct_variants_reads_in_five_requests_too(saleor, api):
    shop = saleor.shop
    products = [
        shop.add_product(
            "default-channel",
            f"Tea {index:02}",
            ["5.00", "6.00", "7.00"],
            category=f"cat{index % 10}",
            collections=[f"collection{index % 3}"],
        )
        for index in range(BATCH)
    ]
    checkouts = [
        shop.add_checkout("default-channel", f"s{index}@example.com", [(v, 1) for v in product["variants"]])
        for index, product in enumerate(products)
    ]

    carts = api.load_carts([c["token"] for c in checkouts])
    api.find_orders(
        [OrderLookup(c["token"], "default-channel", c["email"], NOW - timedelta(days=1)) for c in checkouts]
    )
    variant_ids = sorted({line.variant_id for cart in carts.values() for line in cart.lines})
    stock = api.stock_levels("default-channel", variant_ids)
    upsell = api.upsell_products(
        "default-channel", [[line.variant_id for line in cart.lines] for cart in carts.values()], None, 2
    )

    assert len(variant_ids) == 150 and stock == dict.fromkeys(variant_ids, 10)
    assert all(len(products) == 2 for products in upsell)
    assert saleor.operations() == ["LoadCarts", "FindOrders", "StockLevels", "UpsellSeeds", "RelatedProducts"]


def test_more_carts_than_one_document_may_alias_are_read_in_several(saleor, api):
    tea = saleor.shop.add_product("default-channel", "Green tea", ["4.50"])
    tokens = [
        saleor.shop.add_checkout("default-channel", f"s{i}@example.com", [(tea["variants"][0], 1)])["token"]
        for i in range(120)
    ]

    assert len(api.load_carts(tokens)) == 120
    assert saleor.operations() == ["LoadCarts"] * 3  # 50 + 50 + 20 aliases: Saleor allows 100


def test_orders_by_checkout_then_by_address_since_the_last_activity(saleor, api):
    shop = saleor.shop
    since = NOW - timedelta(hours=5)
    ann = shop.add_user("ann@example.com", "Ann")
    by_token = shop.add_order(
        "default-channel", "other@example.com", "20.00", checkout_token="11111111-1111-4111-8111-111111111111"
    )
    shop.add_order("default-channel", "bo@example.com", "9.00", created=since - timedelta(minutes=1))
    newest_of_bo = shop.add_order(
        "default-channel", "bo@example.com", "12.00", created=since + timedelta(hours=1)
    )
    shop.add_order("default-channel", "bo@example.com", "11.00", created=since + timedelta(minutes=5))
    shop.add_order("eu", "cy@example.com", "30.00")
    # Ann's order carries another address than her account's: found through the account
    ann_order = shop.add_order(
        "default-channel", "ann.old@example.com", "40.00", user=ann, status="CANCELED", refunded="15.00"
    )
    shop.add_order("default-channel", "dee@example.com", "7.00", status="DRAFT")

    found = api.find_orders(
        [
            OrderLookup("11111111-1111-4111-8111-111111111111", "default-channel", "x@example.com", since),
            OrderLookup("22222222-2222-4222-8222-222222222222", "default-channel", "bo@example.com", since),
            OrderLookup("33333333-3333-4333-8333-333333333333", "default-channel", "cy@example.com", since),
            OrderLookup("44444444-4444-4444-8444-444444444444", "default-channel", "ann@example.com", since),
            OrderLookup("55555555-5555-4555-8555-555555555555", "default-channel", "dee@example.com", since),
        ]
    )

    assert {token: order.id for token, order in found.items()} == {
        "11111111-1111-4111-8111-111111111111": pk(by_token),
        "22222222-2222-4222-8222-222222222222": pk(newest_of_bo),
        "44444444-4444-4444-8444-444444444444": pk(ann_order),
    }
    ann_ref = found["44444444-4444-4444-8444-444444444444"]
    assert (ann_ref.cancelled, ann_ref.refunded, ann_ref.total, ann_ref.currency) == (
        True,
        Decimal("15.00"),
        Decimal("40.00"),
        "USD",
    )
    assert (
        found["11111111-1111-4111-8111-111111111111"].checkout_token,
        found["11111111-1111-4111-8111-111111111111"].number,
    ) == (
        "11111111-1111-4111-8111-111111111111",
        by_token["number"],
    )
    assert saleor.operations() == ["FindOrders"]


@pytest.mark.parametrize(
    ("ordered_as", "cart_as"),
    [("Jane.Doe@Example.com", "jane.doe@example.com"), ("jane.doe@example.com", "JANE.Doe@EXAMPLE.com")],
    ids=["order_typed_with_capitals_case", "cart_typed_with_capitals_case"],
)
def test_an_order_by_the_same_address_is_found_whatever_its_case(saleor, api, ordered_as, cart_as):
    shop = saleor.shop
    since = NOW - timedelta(hours=1)
    shop.add_order("default-channel", ordered_as, "10.00", created=since - timedelta(minutes=1))
    newest = shop.add_order("default-channel", ordered_as, "12.00", created=since + timedelta(minutes=5))
    shop.add_order("eu", ordered_as, "13.00", created=since + timedelta(minutes=9))  # another channel
    shop.add_order("default-channel", f"x.{ordered_as}", "14.00")  # an address containing it
    account = shop.add_user(ordered_as.replace("jane", "kim").replace("Jane", "Kim"))
    by_account = shop.add_order("default-channel", "kim.old@example.com", "15.00", user=account)
    token, kims = "66666666-6666-4666-8666-666666666666", "77777777-7777-4777-8777-777777777777"

    found = api.find_orders(
        [
            OrderLookup(token, "default-channel", cart_as, since),
            OrderLookup(
                kims, "default-channel", cart_as.replace("jane", "kim").replace("JANE", "KIM"), since
            ),
            OrderLookup("88888888-8888-4888-8888-888888888888", "default-channel", "doe@example.com", since),
        ]
    )

    assert {key: order.id for key, order in found.items()} == {token: pk(newest), kims: pk(by_account)}
    assert saleor.operations() == ["FindOrders"]


def test_an_address_that_is_not_an_email_is_matched_as_written_or_lowercased(saleor, api):
    since = NOW - timedelta(hours=1)
    as_written = saleor.shop.add_order("default-channel", "Jane Doe", "10.00")
    saleor.shop.add_order("default-channel", "Jane Doe Junior", "11.00")
    token = "66666666-6666-4666-8666-666666666666"

    assert api.find_orders([OrderLookup(token, "default-channel", "Jane Doe", since)])[token].id == pk(
        as_written
    )
    assert api.find_orders([OrderLookup(token, "default-channel", "jane doe", since)]) == {}


def test_more_addresses_than_one_document_may_alias_are_asked_in_several(saleor, api):
    since = NOW - timedelta(hours=1)
    lookups = [
        OrderLookup(
            f"{index:08}-0000-4000-8000-000000000000", "default-channel", f"s{index}@example.com", since
        )
        for index in range(150)
    ]
    bought = saleor.shop.add_order("default-channel", "S149@Example.com", "5.00")

    found = api.find_orders(lookups)

    assert {token: order.id for token, order in found.items()} == {lookups[149].checkout_token: pk(bought)}
    assert saleor.operations() == ["FindOrders", "FindOrders"]  # 89 addresses, then 61


def test_stock_counts_the_channels_warehouses_and_untracked_variants_have_none(saleor, api):
    shop = saleor.shop
    tea = shop.add_product("default-channel", "Green tea", ["4.50", "8.00"], stock=5)
    gift = shop.add_product("default-channel", "Gift card", ["10.00"], stock=None)
    tea["variants"][1]["stocks"][0]["quantityAllocated"] = 7  # more allocated than in stock: 0, not -2
    other_warehouse = {"id": global_id("Warehouse", "elsewhere"), "name": "elsewhere"}
    tea["variants"][0]["stocks"].append(
        {"id": "x", "warehouse": other_warehouse, "quantity": 50, "quantityAllocated": 0}
    )

    levels = api.stock_levels(
        "default-channel",
        [pk(tea["variants"][0]), tea["variants"][1]["id"], pk(gift["variants"][0]), "999", "junk"],
    )

    assert levels == {pk(tea["variants"][0]): 5, pk(tea["variants"][1]): 0, pk(gift["variants"][0]): None}


def test_related_products_share_a_category_or_collection_and_can_be_bought(saleor, api):
    shop = saleor.shop
    in_cart = shop.add_product(
        "default-channel", "Green tea", ["4.50"], category="tea", collections=["spring"]
    )
    shop.add_product(
        "default-channel", "Black tea", ["6.00", "5.00"], category="tea", image="https://cdn/b.png"
    )
    shop.add_product("default-channel", "Hidden tea", ["1.00"], category="tea", published=False)
    shop.add_product("default-channel", "Sold out tea", ["1.00"], category="tea", stock=0)
    shop.add_product("default-channel", "Cup", ["3.00"], category="ware", collections=["spring"])
    shop.add_product("default-channel", "Spoon", ["2.00"], category="ware")

    (suggested,) = api.upsell_products("default-channel", [[pk(in_cart["variants"][0])]], None, 3)

    assert [(p.name, p.price, p.currency, p.image_url) for p in suggested] == [
        ("Black tea", Decimal("5.00"), "USD", "https://cdn/b.png"),
        ("Cup", Decimal("3.00"), "USD", None),
    ]


def test_configured_products_in_the_owners_order_and_the_unavailable_ones_logged(saleor, api, caplog):
    shop = saleor.shop
    cup = shop.add_product("default-channel", "Cup", ["3.00"])
    pot = shop.add_product("default-channel", "Pot", ["20.00"])
    hidden = shop.add_product("default-channel", "Hidden", ["1.00"], published=False)
    sold_out = shop.add_product("default-channel", "Sold out", ["1.00"], stock=0)
    configured = (pot["slug"], pk(cup), hidden["id"], "no-such-thing", sold_out["slug"])

    with caplog.at_level(logging.WARNING):
        first, second = api.upsell_products("default-channel", [[pk(cup["variants"][0])], []], configured, 5)

    assert [p.name for p in first] == ["Pot"]  # the cup is in the cart
    assert [p.name for p in second] == ["Pot", "Cup"]
    assert "upsell product no-such-thing skipped: no such product" in caplog.text
    assert f"upsell product {hidden['id']} skipped: not published in channel default-channel" in caplog.text
    assert "upsell product sold-out skipped: out of stock or unpriced" in caplog.text
    assert api.unavailable_products("default-channel", configured) == {
        hidden["id"]: "not published and available for purchase in channel default-channel",
        "no-such-thing": "no such product",
    }


def test_a_voucher_is_single_use_bound_to_its_channel_expiring_and_marked(saleor, api):
    expires = NOW + timedelta(days=2)

    issued = api.issue_voucher(
        "eu",
        discount_type="percentage",
        value=Decimal("10"),
        min_total=Decimal("50"),
        expires_at=expires,
        name="Cart",
    )

    (voucher,) = saleor.shop.vouchers.values()
    assert (issued.code, issued.currency, issued.expires_at) == (voucher["_codes"][0]["code"], "EUR", expires)
    assert len(issued.code) >= 12
    assert voucher["_input"]["usageLimit"] == 1 and voucher["_input"]["singleUse"] is True
    assert (voucher["_input"]["type"], voucher["_input"]["discountValueType"]) == (
        "ENTIRE_ORDER",
        "PERCENTAGE",
    )
    assert voucher["_input"]["endDate"] == expires.isoformat()
    assert voucher["_listings"] == [
        {"channelId": saleor.shop.channels["eu"]["id"], "discountValue": "10", "minAmountSpent": "50"}
    ]
    assert voucher["_metadata"] == voucher["_private_metadata"] == {VOUCHER_MARK: "coupon"}
    assert saleor.operations() == ["Channel", "IssueVoucher", "ListVoucher"]


def test_expired_unused_vouchers_of_ours_are_deleted_and_nothing_else(saleor, api):
    def issue(days):
        return api.issue_voucher(
            "default-channel",
            discount_type="fixed",
            value=Decimal("5"),
            min_total=None,
            expires_at=NOW + timedelta(days=days),
            name="Cart",
        ).code

    issue(-1)  # expired, never used: the one deleted
    used, running = issue(-1), issue(3)
    by_code = {v["_codes"][0]["code"]: v for v in saleor.shop.vouchers.values()}
    by_code[used]["_codes"][0]["used"] = 1
    theirs = saleor.shop.add_voucher("Summer sale", NOW - timedelta(days=5))

    assert api.delete_expired_vouchers(NOW) == 1
    assert {v["id"] for v in saleor.shop.vouchers.values()} == {
        by_code[used]["id"],
        by_code[running]["id"],
        theirs["id"],
    }
    assert api.delete_expired_vouchers(NOW) == 0


@pytest.mark.parametrize("listing", ["refused", "lost"])
def test_a_voucher_given_up_on_and_not_deleted_is_marked_so_the_cleanup_deletes_it(saleor, api, listing):
    # given Saleor refusing the listing (a percentage over 100) or executing it with its answer
    # lost, and down for the voucher's deletion that follows
    saleor.before("ListVoucher", lambda variables: setattr(saleor, "fault", "down"))
    if listing == "lost":
        saleor.lost.add("ListVoucher")
    expires = NOW + timedelta(days=2)

    with pytest.raises(SaleorUnavailable):
        api.issue_voucher(
            "eu",
            discount_type="percentage",
            value=Decimal("150" if listing == "refused" else "10"),
            min_total=None,
            expires_at=expires,
            name="Cart",
        )

    # then the voucher stays, marked as ours and ending when it would have
    assert saleor.operations() == ["Channel", "IssueVoucher", "ListVoucher"]
    (voucher,) = saleor.shop.vouchers.values()
    assert voucher["_metadata"] == voucher["_private_metadata"] == {VOUCHER_MARK: "coupon"}
    assert voucher["endDate"] == expires.isoformat()
    assert len(voucher["_listings"]) == (0 if listing == "refused" else 1)  # refused: in no channel
    # and once Saleor is back, the cleanup deletes it when it expired, not before
    saleor.fault = None
    assert cleanup(saleor, api, expires - timedelta(seconds=1)) == 0
    assert cleanup(saleor, api, expires + timedelta(seconds=1)) == 1
    assert saleor.shop.vouchers == {}


def test_a_voucher_whose_creation_answer_was_lost_is_deleted_by_the_cleanup_once_expired(saleor, api):
    # given Saleor creating the voucher, then its answer lost
    saleor.lost.add("IssueVoucher")
    expires = NOW + timedelta(days=2)

    with pytest.raises(SaleorUnavailable):
        api.issue_voucher(
            "eu",
            discount_type="fixed",
            value=Decimal("5"),
            min_total=None,
            expires_at=expires,
            name=f"Cart recovery {uuid4()}",
        )

    # then Saleor keeps it unmarked and in no channel (its code works nowhere)
    assert saleor.operations() == ["Channel", "IssueVoucher"]
    (voucher,) = saleor.shop.vouchers.values()
    assert voucher["_metadata"] == voucher["_private_metadata"] == {} and voucher["_listings"] == []
    # and the cleanup deletes it once it expired, not before
    assert cleanup(saleor, api, expires - timedelta(seconds=1)) == 0
    assert cleanup(saleor, api, expires + timedelta(seconds=1)) == 1
    assert saleor.shop.vouchers == {}


@pytest.mark.parametrize(
    ("name", "listed", "used", "ended", "private_mark"),
    [
        ("Cart recovery sale", False, 0, True, False),
        (f"Cart recovery {uuid4()} (copy)", False, 0, True, False),
        (f"cart recovery {uuid4()}", False, 0, True, False),
        (f"Cart recovery {str(uuid4()).upper()}", False, 0, True, False),
        (f"Cart recovery {uuid4()}", True, 0, True, False),
        (f"Cart recovery {uuid4()}", False, 1, True, False),
        (f"Cart recovery {uuid4()}", False, 0, False, False),
        (f"Cart recovery {uuid4()}", False, 0, True, True),
    ],
    ids=[
        "another_name_case",
        "our_name_and_more_case",
        "our_name_in_lowercase_case",
        "an_uppercase_uuid_case",
        "listed_in_a_channel_case",
        "used_case",
        "not_ended_case",
        "marked_by_the_plugin_case",
    ],
)
def test_an_owners_voucher_named_like_ours_is_never_deleted(
    saleor, api, name, listed, used, ended, private_mark
):
    # given, next to an unmarked voucher of ours in no channel that ended unused, an owner's voucher
    # differing from it in one way only
    saleor.shop.add_voucher(f"Cart recovery {uuid4()}", NOW - timedelta(days=1))
    theirs = saleor.shop.add_voucher(
        name,
        NOW + timedelta(days=-1 if ended else 1),
        channel_slug="eu" if listed else None,
        used=used,
        private_metadata={VOUCHER_MARK: "coupon"} if private_mark else None,
    )

    deleted = api.delete_expired_vouchers(NOW)

    # then ours is deleted and theirs kept
    assert deleted == 1
    assert list(saleor.shop.vouchers) == [theirs["id"]]


def test_the_cleanup_reads_both_selections_in_pages_and_deletes_each_voucher_once(saleor, api):
    # given 100 marked vouchers of ours (named as ours too: in both selections) and 50 unmarked
    # ones in no channel, all ended unused
    for marked in [True] * 100 + [False] * 50:
        voucher = saleor.shop.add_voucher(f"Cart recovery {uuid4()}", NOW - timedelta(days=1))
        if marked:
            voucher["_metadata"][VOUCHER_MARK] = "coupon"

    deleted = api.delete_expired_vouchers(NOW)

    # then all are deleted: one page of the marked, two of the named, one request per 100 deleted
    assert deleted == 150 and saleor.shop.vouchers == {}
    assert saleor.operations() == ["OurVouchers"] * 3 + ["DeleteVouchers"] * 2


def test_the_cleanup_reads_no_used_or_running_voucher(saleor, api):
    # given, next to 2 vouchers of ours that ended unused, 150 that ended used and 150 still running,
    # all marked and named as ours (in both selections)
    for ended, used in [(True, 0)] * 2 + [(True, 1)] * 150 + [(False, 0)] * 150:
        voucher = saleor.shop.add_voucher(
            f"Cart recovery {uuid4()}", NOW + timedelta(days=-1 if ended else 1), used=used
        )
        voucher["_metadata"][VOUCHER_MARK] = "coupon"

    deleted = api.delete_expired_vouchers(NOW)

    # then Saleor is asked for the 2 only: one page of each selection, and one delete
    assert deleted == 2 and len(saleor.shop.vouchers) == 300
    assert saleor.operations() == ["OurVouchers", "OurVouchers", "DeleteVouchers"]


def test_a_voucher_ended_on_our_clock_and_not_yet_on_saleors_is_deleted_by_the_next_run(saleor, api):
    # given a voucher of ours, and Saleor's clock a minute behind ours when it ends
    expires = NOW + timedelta(days=2)
    api.issue_voucher(
        "eu", discount_type="fixed", value=Decimal("5"), min_total=None, expires_at=expires, name="Cart"
    )
    saleor.shop.clock = expires - timedelta(seconds=30)

    # when the cleanup runs half a minute after it ended on our clock, then the next day
    first = api.delete_expired_vouchers(expires + timedelta(seconds=30))
    saleor.shop.clock += timedelta(days=1)
    second = api.delete_expired_vouchers(expires + timedelta(days=1, seconds=30))

    # then Saleor does not offer it the first time, and the next day's run deletes it
    assert (first, second) == (0, 1) and saleor.shop.vouchers == {}


def test_customer_email_is_a_customers_never_staffs(saleor, api):
    customer = saleor.shop.add_user("ann@example.com")
    staff = saleor.shop.add_user("boss@example.com", staff=True)

    assert api.customer_email(customer["id"]) == "ann@example.com"
    assert api.customer_email(staff["id"]) is None
    assert api.customer_email(global_id("User", 424242)) is None
    assert api.customer_email("not an id") is None
    assert api.customer_email(global_id("Order", 1)) is None
    assert saleor.operations() == ["CustomerEmail"] * 3


def test_channels_and_the_apps_identity(saleor, api):
    assert api.channels() == (
        ("default-channel", "Default", "USD"),
        ("eu", "Europe", "EUR"),
    )
    identity = api.app_identity()
    assert identity.id == saleor.app_id
    assert identity.permissions == set(saleor.shop.app_permissions)


def test_sample_cart_offers_the_cheapest_variants(saleor, api):
    shop = saleor.shop
    shop.add_product("default-channel", "Pot", ["20.00"])
    tea = shop.add_product("default-channel", "Tea", ["4.00", "3.00"])
    cup = shop.add_product("default-channel", "Cup", ["3.50"])

    sample = api.sample_cart("default-channel", "de")

    assert [(line.variant_id, str(line.unit_price)) for line in sample.lines] == [
        (pk(tea["variants"][1]), "3.00"),
        (pk(cup["variants"][0]), "3.50"),
    ]
    assert (sample.language_code, sample.currency, sample.total, sample.shop_name) == (
        "de",
        "USD",
        Decimal("6.50"),
        "Tea & Co",
    )
    empty = api.sample_cart("eu", "en")
    assert [line.variant_id for line in empty.lines] == ["sample"] and empty.currency == "EUR"


# -- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["down", "error", "slow"], ids=lambda fault: f"{fault}_case")
def test_saleor_down_failing_or_slow_is_unavailable(saleor, fault):
    saleor.fault, saleor.delay = fault, 1.5
    api = SaleorApi(SaleorClient(saleor.api_url, saleor.token, timeout=0.5))

    with pytest.raises(SaleorUnavailable):
        api.find_orders(
            [OrderLookup("11111111-1111-4111-8111-111111111111", "default-channel", "a@b.c", NOW)]
        )


def test_nothing_listening_is_unavailable(saleor):
    api = SaleorApi(SaleorClient(saleor.url.rsplit(":", 1)[0] + ":9/graphql/", saleor.token))

    with pytest.raises(SaleorUnavailable):
        api.channels()


def test_a_deleted_token_is_revoked_after_one_probe(saleor, api):
    saleor.revoke()

    with pytest.raises(AppTokenRevoked):
        api.load_carts(["11111111-1111-4111-8111-111111111111"])
    assert saleor.operations() == ["LoadCarts", "AppProbe"]


def test_a_missing_permission_is_a_query_error_not_a_revoked_token(saleor, api):
    saleor.shop.app_permissions = ("MANAGE_CHECKOUTS",)

    with pytest.raises(SaleorQueryError) as raised:
        api.find_orders(
            [OrderLookup("11111111-1111-4111-8111-111111111111", "default-channel", "a@b.c", NOW)]
        )

    assert not isinstance(raised.value, AppTokenRevoked)
    assert "MANAGE_ORDERS" in str(raised.value)
    assert saleor.operations() == ["FindOrders", "AppProbe"]
