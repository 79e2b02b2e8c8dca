"""The App host's webhooks: each records what the plugin's hook records, idempotently and in any order;
an uninstall stops every send."""

from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from saleor_cart_recovery.app import installation
from saleor_cart_recovery.app.client import AppTokenRevoked
from saleor_cart_recovery.app.models import ChannelSettings
from saleor_cart_recovery.email.tokens import unsubscribe_token
from saleor_cart_recovery.models import RecoveryCart, RecoveryMessage, Suppression
from saleor_cart_recovery.series.dispatch import dispatch
from saleor_cart_recovery.series.suppression import suppress
from saleor_cart_recovery.shop import get_shop

from .app_host import checkout_payload, deliver, order_payload
from .conftest import START

HOUR = timedelta(hours=1)


@pytest.fixture
def token():
    return str(uuid4())


def test_checkout_webhooks_record_activity_at_the_checkouts_time(installed, saleor, token):
    # when Saleor delivers a checkout's creation and its update
    assert (
        deliver(installed, saleor, "checkout_created", checkout_payload(token, "", START)).status_code == 204
    )
    assert not RecoveryCart.objects.exists()  # no address yet: nothing to record, as in the plugin
    with CaptureQueriesContext(connection) as queries:
        response = deliver(
            installed, saleor, "checkout_updated", checkout_payload(token, "Ann@Example.com", START)
        )
    # then one cart, timed by the checkout's updatedAt, due after the first delay
    assert response.status_code == 204
    cart = RecoveryCart.objects.get()
    assert (cart.checkout_token, cart.email, cart.language_code) == (token, "ann@example.com", "en-us")
    assert (cart.last_activity_at, cart.next_due_at) == (START, START + HOUR)
    assert len(queries) <= 4  # the installation, the channel's settings, the upsert: milliseconds


def test_checkout_webhooks_delivered_twice_and_out_of_order_keep_the_newest_state(installed, saleor, token):
    newer = checkout_payload(token, "new@example.com", START + 2 * HOUR)
    older = checkout_payload(token, "old@example.com", START)
    for payload in (newer, older, newer, older):  # a retry and a late delivery of each
        assert deliver(installed, saleor, "checkout_updated", payload).status_code == 204
    cart = RecoveryCart.objects.get()
    assert (cart.email, cart.last_activity_at) == ("new@example.com", START + 2 * HOUR)


def test_a_checkout_in_a_channel_where_cart_recovery_is_inactive_is_not_recorded(installed, saleor, token):
    ChannelSettings.objects.update(active=False)
    assert (
        deliver(
            installed, saleor, "checkout_updated", checkout_payload(token, "a@example.com", START)
        ).status_code
        == 204
    )
    assert not RecoveryCart.objects.exists()


def test_order_created_converts_the_cart_once(installed, saleor, token):
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "shopper@example.com", START))
    order_id = str(uuid4())
    for _ in range(2):
        response = deliver(installed, saleor, "order_created", order_payload(order_id, token, START + HOUR))
        assert response.status_code == 204
    cart = RecoveryCart.objects.get()
    assert (cart.status, cart.stop_reason, cart.order_id, cart.order_total) == (
        "converted",
        "purchased",
        order_id,
        Decimal("92.30"),
    )


def test_refunds_and_cancellation_reach_the_converted_cart_in_any_order(installed, saleor, token):
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "shopper@example.com", START))
    order_id = str(uuid4())
    deliver(installed, saleor, "order_created", order_payload(order_id, token, START + HOUR))
    more = order_payload(order_id, token, START + HOUR, refunded="50")
    less = order_payload(order_id, token, START + HOUR, refunded="20")
    cancelled = order_payload(order_id, token, START + HOUR, refunded="50", status="CANCELED")
    for event, payload in [
        ("order_refunded", more),
        ("order_refunded", less),
        ("order_cancelled", cancelled),
    ]:
        assert deliver(installed, saleor, event, payload).status_code == 204
    deliver(installed, saleor, "order_fully_refunded", less)  # a late, older state
    cart = RecoveryCart.objects.get()
    assert (cart.order_refunded, cart.order_cancelled) == (Decimal(50), True)


def test_customer_deleted_erases_the_shoppers_carts_and_keeps_the_opt_out(installed, saleor, token):
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "gone@example.com", START))
    suppress("main", "gone@example.com", source="link")
    for _ in range(2):
        assert (
            deliver(
                installed, saleor, "customer_deleted", {"user": {"email": "Gone@example.com"}}
            ).status_code
            == 204
        )
    assert not RecoveryCart.objects.exists()
    assert Suppression.objects.count() == 1
    assert "gone@example.com" not in str(list(Suppression.objects.values()))  # kept as a keyed hash


def test_app_deleted_stops_all_sending_without_a_retry_loop(
    installed, saleor, token, django_capture_on_commit_callbacks
):
    # given a cart whose first step is due
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "shopper@example.com", START))
    # when Saleor deletes the app
    app_id = installation.stored().app_id
    assert deliver(installed, saleor, "app_deleted", {"app": {"id": app_id}}).status_code == 204
    assert deliver(installed, saleor, "app_deleted", {"app": {"id": app_id}}).status_code == 204  # a retry
    # then the installation is uninstalled and the due step is recorded as not sent, once
    stored = installation.stored()
    assert (stored.installed, stored.uninstall_reason) == (
        False,
        "the app was deleted in Saleor (APP_DELETED)",
    )
    sent: list[int] = []
    with django_capture_on_commit_callbacks(execute=True):
        dispatch(now=START + HOUR, send=sent.extend)
    cart = RecoveryCart.objects.get()
    assert (sent, cart.status, cart.stop_reason, cart.next_due_at) == ([], "stopped", "plugin_inactive", None)
    assert not RecoveryMessage.objects.filter(status="scheduled").exists()
    # and a later checkout update records nothing
    other = str(uuid4())
    deliver(installed, saleor, "checkout_updated", checkout_payload(other, "shopper@example.com", START))
    assert not RecoveryCart.objects.filter(checkout_token=other).exists()


def status(app_id: str, active: bool, at) -> dict:
    return {"issuedAt": at.isoformat(), "app": {"id": app_id, "isActive": active}}


def test_deactivating_stops_sending_and_activating_resumes_it_in_the_order_saleor_issued(installed, saleor):
    app_id = installation.stored().app_id
    # when Saleor deactivates the app
    assert deliver(installed, saleor, "app_status_changed", status(app_id, False, START)).status_code == 204
    # then no channel sends
    assert (installation.stored().uninstall_reason, get_shop().channel_settings("main")) == (
        installation.DEACTIVATED,
        None,
    )
    # when it is activated again, and the deactivation is delivered again, late
    deliver(installed, saleor, "app_status_changed", status(app_id, True, START + HOUR))
    deliver(installed, saleor, "app_status_changed", status(app_id, False, START))
    # then it sends again: the older event changed nothing
    assert installation.stored().installed and get_shop().channel_settings("main") is not None


def test_activating_a_deleted_app_changes_nothing(installed, saleor):
    app_id = installation.stored().app_id
    deliver(installed, saleor, "app_deleted", {"app": {"id": app_id}})
    deliver(installed, saleor, "app_status_changed", status(app_id, True, START + HOUR))
    assert installation.stored().uninstall_reason == installation.DELETED


def test_another_apps_deletion_changes_nothing(installed, saleor):
    assert deliver(installed, saleor, "app_deleted", {"app": {"id": "QXBwOjk5"}}).status_code == 204
    assert installation.stored().installed


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("checkout_updated", {"checkout": {"token": "t", "channel": {"slug": "main"}, "email": "a@b.c"}}),
        ("checkout_updated", {"checkout": "not an object"}),
        ("checkout_updated", {"checkout": {"token": "t", "channel": {"slug": "main"}, "email": "a@b.c",
                                           "updatedAt": "2026-03-02T09:00:00"}}),
        ("order_created", {"order": {"id": "not-a-global-id"}}),
        ("order_refunded", {"order": {"id": "T3JkZXI6MQ==", "number": "1",
                                      "total": {"gross": {"amount": "x"}}}}),
        ("customer_deleted", {"user": {"email": 42}}),
    ],
    ids=["checkout_without_time_case", "checkout_not_object_case", "naive_time_case", "bad_order_id_case",
         "bad_amount_case", "email_not_string_case"],
)  # fmt: skip
def test_a_payload_that_is_not_what_the_subscription_asks_for_is_400_and_changes_nothing(
    installed, saleor, event, payload
):
    response = deliver(installed, saleor, event, payload)
    assert response.status_code == 400
    assert event.upper() in response.json()["error"]
    assert not RecoveryCart.objects.exists()


def test_unsubscribe_links_point_at_the_app_and_work_while_it_is_uninstalled(installed, saleor, token):
    # given a reminder sent for a cart recorded by a webhook
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "shopper@example.com", START))
    cart = RecoveryCart.objects.get()
    message = RecoveryMessage.objects.create(
        cart=cart,
        step=1,
        status="sent",
        recipient=cart.email,
        planned_at=START,
        updated_at=START,
        sent_at=START,
    )
    link = get_shop().link_url(f"unsubscribe/{unsubscribe_token(message.id)}")
    assert link.startswith("http://app.test/unsubscribe/")
    assert get_shop().endpoint_url("main", "click/x") == "http://app.test/channel/main/click/x"
    # when the app is uninstalled and the shopper follows the link (one-click, RFC 8058)
    installation.uninstall(installation.DELETED)
    response = installed.post(link.removeprefix("http://app.test"), {"List-Unsubscribe": "One-Click"})
    # then the address is suppressed all the same
    assert response.status_code == 200
    assert Suppression.objects.filter(channel_slug="main").count() == 1
    assert RecoveryCart.objects.get().stop_reason == "unsubscribed"


def test_saleor_refusing_the_app_token_uninstalls_and_stops_sending(installed, saleor, token):
    pytest.importorskip("saleor_cart_recovery.app.saleor_api")  # the data side (a sibling branch) asks
    # given a recorded cart, and Saleor no longer accepting the app's token (deleted in Saleor)
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "shopper@example.com", START))
    saleor.apps.clear()
    # when the send path asks Saleor for the cart
    with pytest.raises(AppTokenRevoked):
        get_shop().load_carts([token])
    # then the app counts as uninstalled: no channel sends, nothing is retried
    assert not installation.stored().installed
    assert get_shop().channel_settings("main") is None
