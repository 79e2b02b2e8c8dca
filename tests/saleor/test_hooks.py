"""Checkout hooks, driven through Saleor's real GraphQL mutations."""

import logging

from django.db import connection
from django.test.utils import CaptureQueriesContext
from freezegun import freeze_time
from saleor.checkout.models import Checkout

from saleor_cart_recovery.models import CartStatus, RecoveryCart

from .utils import CHECKOUT_EMAIL_UPDATE, CHECKOUT_LINES_ADD, create_checkout, gid, mutate


def test_checkout_create_with_email_starts_tracking_the_cart(
    api_client, cart_recovery, channel_USD, stocked_variant
):
    # given the plugin is active in channel "main"
    # when a shopper creates a checkout with an email and a line
    with freeze_time("2026-03-02 09:00:00"):
        token = create_checkout(api_client, channel_USD, stocked_variant, email="Shopper@Example.com")

    # then the cart is tracked with the checkout's token, channel, email and activity time
    cart = RecoveryCart.objects.get()
    assert cart.checkout_token == token
    assert cart.channel_slug == "main"
    assert cart.email == "shopper@example.com"
    assert cart.status == CartStatus.ACTIVE
    assert cart.last_activity_at.isoformat() == "2026-03-02T09:00:00+00:00"
    # and the first look is due after the first step's delay (1h; cutoff 30m)
    assert cart.next_due_at.isoformat() == "2026-03-02T10:00:00+00:00"


def test_checkout_without_email_is_not_tracked(api_client, cart_recovery, channel_USD, stocked_variant):
    # when a shopper creates a checkout without an email
    token = create_checkout(api_client, channel_USD, stocked_variant, email=None)

    # then the checkout exists but nothing is tracked
    assert Checkout.objects.filter(token=token).exists()
    assert not RecoveryCart.objects.exists()


def test_lines_add_and_email_update_move_the_activity_clock(
    api_client, cart_recovery, channel_USD, stocked_variant, product_with_two_variants
):
    # given a checkout created without an email
    with freeze_time("2026-03-02 09:00:00"):
        token = create_checkout(api_client, channel_USD, stocked_variant, email=None)
    checkout = Checkout.objects.get(token=token)

    # when the shopper adds an email later
    with freeze_time("2026-03-02 09:10:00"):
        mutate(
            api_client,
            CHECKOUT_EMAIL_UPDATE,
            {"id": gid(checkout), "email": "late@example.com"},
            "checkoutEmailUpdate",
        )

    # then the cart is tracked from then on
    cart = RecoveryCart.objects.get(checkout_token=token)
    assert cart.email == "late@example.com"
    assert cart.last_activity_at.isoformat() == "2026-03-02T09:10:00+00:00"

    # when the shopper adds a line later still
    other = product_with_two_variants.variants.first()
    with freeze_time("2026-03-02 09:40:00"):
        mutate(
            api_client,
            CHECKOUT_LINES_ADD,
            {"id": gid(checkout), "lines": [{"quantity": 2, "variantId": gid(other)}]},
            "checkoutLinesAdd",
        )

    # then the same row records the new activity (no second row)
    cart = RecoveryCart.objects.get()
    assert cart.last_activity_at.isoformat() == "2026-03-02T09:40:00+00:00"
    assert cart.next_due_at.isoformat() == "2026-03-02T10:40:00+00:00"


def _lines_add_queries(api_client, checkout, variant):
    variables = {"id": gid(checkout), "lines": [{"quantity": 1, "variantId": gid(variant)}]}
    with CaptureQueriesContext(connection) as captured:
        mutate(api_client, CHECKOUT_LINES_ADD, variables, "checkoutLinesAdd")
    return [query["sql"] for query in captured.captured_queries]


def test_hook_adds_at_most_two_queries_to_the_mutation(
    api_client, enable_cart_recovery, channel_USD, stocked_variant
):
    # given two identical checkouts with an email, the plugin active, and warm caches
    enable_cart_recovery(active=True)
    first = Checkout.objects.get(token=create_checkout(api_client, channel_USD, stocked_variant))
    second = Checkout.objects.get(token=create_checkout(api_client, channel_USD, stocked_variant))
    _lines_add_queries(api_client, first, stocked_variant)
    _lines_add_queries(api_client, second, stocked_variant)

    # when the same mutation runs once with the plugin active and once with it inactive
    active = _lines_add_queries(api_client, first, stocked_variant)
    enable_cart_recovery(active=False)
    inactive = _lines_add_queries(api_client, second, stocked_variant)

    # then the hook costs at most two queries, and only one of them touches our tables
    assert len(active) - len(inactive) <= 2, (len(active), len(inactive))
    ours = [sql for sql in active if "cart_recovery_" in sql]
    assert len(ours) == 1 and "INSERT INTO cart_recovery_cart" in ours[0], ours
    assert not [sql for sql in inactive if "cart_recovery_" in sql]


def test_a_failing_hook_is_logged_and_the_mutation_still_succeeds(
    api_client, cart_recovery, channel_USD, stocked_variant, monkeypatch, caplog
):
    # given recording activity blows up
    def broken(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr("saleor_cart_recovery.plugin.record_activity", broken)
    caplog.set_level(logging.ERROR, logger="saleor_cart_recovery")

    # when a shopper creates a checkout
    token = create_checkout(api_client, channel_USD, stocked_variant, quantity=2)

    # then the shopper's checkout was created as usual
    checkout = Checkout.objects.get(token=token)
    assert checkout.lines.get().quantity == 2
    # and the failure was logged with its traceback, and nothing was tracked
    failures = [r for r in caplog.records if "could not record activity" in r.getMessage()]
    assert failures and failures[0].exc_info[1].args == ("database on fire",)
    assert not RecoveryCart.objects.exists()
