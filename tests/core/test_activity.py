import threading
import time
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext

from saleor_cart_recovery.models import RecoveryCart
from saleor_cart_recovery.series.activity import record_order, record_refund
from saleor_cart_recovery.shop import OrderRef

from .conftest import START, make_checkout, touch


def order(token="", email="shopper@example.com", total="92.30"):
    return OrderRef("o1", "1001", token, email, Decimal(total), "USD", START)


def test_first_activity_creates_the_cart_due_after_the_first_delay(channel, recovery_settings):
    checkout = make_checkout(channel, email="Shopper@Example.com")
    with CaptureQueriesContext(connection) as queries:
        touch(checkout, START, recovery_settings)
    assert len(queries) == 1
    cart = RecoveryCart.objects.get(checkout_token=checkout.token)
    assert (cart.status, cart.email, cart.channel_slug) == ("active", "shopper@example.com", "main")
    assert cart.next_due_at == START + timedelta(hours=1)


def test_new_activity_restarts_the_clock_without_touching_progress(abandoned_cart, recovery_settings):
    RecoveryCart.objects.filter(checkout_token=abandoned_cart.token).update(steps_planned=1)
    later = START + timedelta(hours=3)
    touch(abandoned_cart, later, recovery_settings)
    cart = RecoveryCart.objects.get(checkout_token=abandoned_cart.token)
    assert cart.last_activity_at == later
    assert cart.steps_planned == 1
    assert cart.next_due_at == later + timedelta(hours=1)  # woken early; the dispatcher re-arms it


def test_an_older_activity_never_overwrites_a_newer_one(abandoned_cart, recovery_settings):
    # given a cart last touched at 3h (an App host delivers each state with its own updatedAt)
    later = START + timedelta(hours=3)
    touch(abandoned_cart, later, recovery_settings)
    RecoveryCart.objects.filter(checkout_token=abandoned_cart.token).update(
        status="stopped", stop_reason="cart_empty", next_due_at=None
    )
    before = RecoveryCart.objects.get(checkout_token=abandoned_cart.token)
    # when an older state arrives late, with another address
    abandoned_cart.email = "earlier@example.com"
    touch(abandoned_cart, START + timedelta(hours=1), recovery_settings)
    # then nothing changed: not the address, the clock, nor the stop
    after = RecoveryCart.objects.get(checkout_token=abandoned_cart.token)
    assert (after.email, after.last_activity_at, after.status, after.next_due_at, after.updated_at) == (
        before.email,
        later,
        "stopped",
        None,
        before.updated_at,
    )
    # and the same state delivered again is applied again (a retry of the newest state is harmless)
    abandoned_cart.email = "shopper@example.com"
    touch(abandoned_cart, later, recovery_settings)
    again = RecoveryCart.objects.get(checkout_token=abandoned_cart.token)
    assert (again.status, again.last_activity_at) == ("active", later)


def test_activity_reopens_an_emptied_cart(abandoned_cart, recovery_settings):
    RecoveryCart.objects.filter(checkout_token=abandoned_cart.token).update(
        status="stopped", stop_reason="cart_empty", next_due_at=None
    )
    touch(abandoned_cart, START + timedelta(hours=2), recovery_settings)
    cart = RecoveryCart.objects.get(checkout_token=abandoned_cart.token)
    assert (cart.status, cart.stop_reason) == ("active", "")
    assert cart.next_due_at is not None


def test_activity_never_reopens_a_converted_or_unsubscribed_cart(abandoned_cart, recovery_settings):
    for status, reason in [("converted", "purchased"), ("stopped", "unsubscribed")]:
        RecoveryCart.objects.filter(checkout_token=abandoned_cart.token).update(
            status=status, stop_reason=reason, next_due_at=None
        )
        touch(abandoned_cart, START + timedelta(hours=2), recovery_settings)
        cart = RecoveryCart.objects.get(checkout_token=abandoned_cart.token)
        assert (cart.status, cart.stop_reason, cart.next_due_at) == (status, reason, None)


def test_order_from_the_checkout_converts_its_cart(abandoned_cart):
    with CaptureQueriesContext(connection) as queries:
        assert record_order(order(token=abandoned_cart.token), channel_slug="main", at=START) == 1
    assert len(queries) == 1
    cart = RecoveryCart.objects.get(checkout_token=abandoned_cart.token)
    assert (cart.status, cart.stop_reason, cart.next_due_at) == ("converted", "purchased", None)
    assert (cart.order_total, cart.order_currency, cart.conversion_match) == (
        Decimal("92.30"),
        "USD",
        "token",
    )


def test_order_from_another_checkout_stops_the_buyers_recent_carts(channel, recovery_settings):
    recent, old, other = (
        make_checkout(channel),
        make_checkout(channel),
        make_checkout(channel, email="x@example.com"),
    )
    touch(recent, START - timedelta(days=1), recovery_settings)
    touch(old, START - timedelta(days=30), recovery_settings)
    touch(other, START - timedelta(days=1), recovery_settings)
    assert (
        record_order(order(token="not-tracked", email="SHOPPER@example.com"), channel_slug="main", at=START)
        == 1
    )
    statuses = dict(RecoveryCart.objects.values_list("checkout_token", "status"))
    assert statuses == {recent.token: "converted", old.token: "active", other.token: "active"}
    assert RecoveryCart.objects.get(checkout_token=recent.token).conversion_match == "email"


def test_email_fallback_stays_in_the_channel(channel, recovery_settings):
    checkout = make_checkout(channel)
    touch(checkout, START, recovery_settings)
    assert record_order(order(email="shopper@example.com"), channel_slug="other", at=START) == 0


def test_recording_an_order_twice_is_the_same_as_once(channel, recovery_settings):
    # given the buyer's checkout and another recent cart of the same shopper
    bought, other = make_checkout(channel), make_checkout(channel)
    touch(bought, START - timedelta(hours=2), recovery_settings)
    touch(other, START - timedelta(hours=1), recovery_settings)
    # when the order is recorded twice (the hook, then the send path; or a redelivered hook)
    first = record_order(order(token=bought.token), channel_slug="main", at=START)
    second = record_order(order(token=bought.token), channel_slug="main", at=START)
    # then only the checkout's own cart is converted, and the second call changed nothing
    statuses = dict(RecoveryCart.objects.values_list("checkout_token", "status"))
    assert (first, second) == (1, 0)
    assert statuses == {bought.token: "converted", other.token: "active"}


@pytest.mark.django_db(transaction=True)
def test_the_hook_gives_up_after_the_lock_timeout_and_restores_the_setting(channel, recovery_settings):
    # given a cart row held locked by another transaction of ours (e.g. a dispatcher batch)
    checkout = make_checkout(channel)
    touch(checkout, START, recovery_settings)
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        try:
            with transaction.atomic():
                RecoveryCart.objects.select_for_update().get(checkout_token=checkout.token)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        # when the shopper's update records activity
        started = time.perf_counter()
        with pytest.raises(OperationalError, match="lock timeout"):
            touch(checkout, START + timedelta(minutes=5), recovery_settings)
        waited = time.perf_counter() - started
    finally:
        release.set()
        holder.join(10)
    # then it waited about the lock timeout, not for the other transaction (the plugin's hook logs
    # the error and the shopper's mutation goes on: tests/saleor/test_hooks.py)
    assert 0.9 < waited < 3
    # and inside a caller's transaction the caller's own lock timeout is left as it was
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '7s'")
        touch(checkout, START + timedelta(minutes=6), recovery_settings)
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "7s"


def test_refunds_only_grow_and_a_cancellation_stays(abandoned_cart):
    record_order(order(token=abandoned_cart.token), channel_slug="main", at=START)
    assert record_refund(replace(order(), refunded=Decimal("20.00")), at=START) == 1
    # a late hook with an older state (10 refunded, not cancelled) takes nothing back
    assert record_refund(replace(order(), refunded=Decimal("10.00")), at=START) == 0
    assert record_refund(replace(order(), refunded=Decimal("20.00"), cancelled=True), at=START) == 1
    assert record_refund(replace(order(), refunded=Decimal("20.00")), at=START) == 0
    cart = RecoveryCart.objects.get(checkout_token=abandoned_cart.token)
    assert (cart.order_refunded, cart.order_cancelled) == (Decimal("20.000"), True)
    # an order we never matched changes nothing
    assert record_refund(replace(order(), id="unknown", cancelled=True), at=START) == 0


def test_a_converted_cart_keeps_the_activity_its_order_was_matched_against(abandoned_cart, recovery_settings):
    record_order(order(token=abandoned_cart.token), channel_slug="main", at=START)
    touch(abandoned_cart, START + timedelta(days=2), recovery_settings)
    # the report credits an email-matched order to the cart with the latest activity before it:
    # activity after the order must not move a converted cart
    assert RecoveryCart.objects.get(checkout_token=abandoned_cart.token).last_activity_at == START
