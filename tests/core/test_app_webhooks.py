"""The App host's webhooks: each records what the plugin's hook records, idempotently and in any order;
an uninstall stops every send."""

import copy
import json
from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from saleor_cart_recovery.app import installation
from saleor_cart_recovery.app.client import AppTokenRevoked
from saleor_cart_recovery.app.models import ChannelSettings, Installation
from saleor_cart_recovery.email.tokens import unsubscribe_token
from saleor_cart_recovery.models import RecoveryCart, RecoveryMessage, Suppression
from saleor_cart_recovery.series.dispatch import dispatch
from saleor_cart_recovery.series.suppression import suppress
from saleor_cart_recovery.shop import get_shop

from .app_host import APP_ID, checkout_payload, deliver, global_id, order_payload, register, saleor_has
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
    statements = [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]
    # the installation (is it installed? and again for the channel), the lock timeout, the channel's
    # settings, the upsert: milliseconds
    assert len(statements) <= 5, statements


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
    placed = order_payload(order_id, token, START + HOUR)
    saleor_has(saleor, placed)
    for _ in range(2):
        assert deliver(installed, saleor, "order_created", placed).status_code == 204
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
    placed = order_payload(order_id, token, START + HOUR)
    order = saleor_has(saleor, placed)
    deliver(installed, saleor, "order_created", placed)
    # when Saleor refunds 20, then 50 in all, and the webhook of the second arrives first
    more = order_payload(order_id, token, START + HOUR, refunded="50")
    less = order_payload(order_id, token, START + HOUR, refunded="20")
    order["totalRefunded"]["amount"] = Decimal(50)
    for payload in (more, less):
        assert deliver(installed, saleor, "order_refunded", payload).status_code == 204
    # and then cancels it, and an older state is delivered late
    order["status"] = "CANCELED"
    cancelled = order_payload(order_id, token, START + HOUR, refunded="50", status="CANCELED")
    assert deliver(installed, saleor, "order_cancelled", cancelled).status_code == 204
    assert deliver(installed, saleor, "order_fully_refunded", less).status_code == 204
    # then the cart has the order as it is now
    cart = RecoveryCart.objects.get()
    assert (cart.order_refunded, cart.order_cancelled) == (Decimal(50), True)


@pytest.mark.parametrize("event", ["customer_deleted", "account_deleted"])
def test_a_deleted_account_erases_the_shoppers_carts_and_keeps_the_opt_out(installed, saleor, token, event):
    # given a shopper's cart and opt-out, and another shopper's cart
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "gone@example.com", START))
    deliver(installed, saleor, "checkout_updated", checkout_payload(str(uuid4()), "kept@example.com", START))
    suppress("main", "gone@example.com", source="link")
    # when Saleor says the account is deleted: by staff (customerDelete: CUSTOMER_DELETED) or by the
    # customer (accountDelete: ACCOUNT_DELETED), delivered twice
    for _ in range(2):
        assert deliver(installed, saleor, event, {"user": {"email": "Gone@example.com"}}).status_code == 204
    # then that shopper's carts are gone, the other's kept, and the opt-out kept as a keyed hash
    assert list(RecoveryCart.objects.values_list("email", flat=True)) == ["kept@example.com"]
    assert Suppression.objects.count() == 1
    assert "gone@example.com" not in str(list(Suppression.objects.values()))


def test_app_deleted_stops_all_sending_without_a_retry_loop(
    installed, saleor, token, django_capture_on_commit_callbacks
):
    # given a cart whose first step is due
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "shopper@example.com", START))
    # when Saleor deletes the app (and its token with it)
    app_id = installation.stored().app_id
    saleor.revoke()
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
    saleor.app_active = False
    assert deliver(installed, saleor, "app_status_changed", status(app_id, False, START)).status_code == 204
    # then no channel sends
    assert (installation.stored().uninstall_reason, get_shop().channel_settings("main")) == (
        installation.DEACTIVATED,
        None,
    )
    # when it is activated again, and the deactivation is delivered again, late
    saleor.app_active = True
    deliver(installed, saleor, "app_status_changed", status(app_id, True, START + HOUR))
    deliver(installed, saleor, "app_status_changed", status(app_id, False, START))
    # then it sends again: the older event changed nothing
    assert installation.stored().installed and get_shop().channel_settings("main") is not None


def test_activating_a_deleted_app_changes_nothing(installed, saleor):
    app_id = installation.stored().app_id
    saleor.revoke()
    deliver(installed, saleor, "app_deleted", {"app": {"id": app_id}})
    deliver(installed, saleor, "app_status_changed", status(app_id, True, START + HOUR))
    assert installation.stored().uninstall_reason == installation.DELETED


def test_another_apps_deletion_changes_nothing(installed, saleor):
    assert deliver(installed, saleor, "app_deleted", {"app": {"id": "QXBwOjk5"}}).status_code == 204
    assert installation.stored().installed


def test_app_deleted_is_final_whatever_arrives_after_it(installed, saleor, token):
    # given a cart with its order, and an app Saleor deactivated, then deleted
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "shopper@example.com", START))
    order_id = str(uuid4())
    placed = order_payload(order_id, token, START + HOUR)
    order = saleor_has(saleor, placed)
    deliver(installed, saleor, "order_created", placed)
    app_id = installation.stored().app_id
    saleor.app_active = False
    assert deliver(installed, saleor, "app_status_changed", status(app_id, False, START)).status_code == 204
    saleor.revoke()
    assert deliver(installed, saleor, "app_deleted", {"app": {"id": app_id}}).status_code == 204
    before = _state()
    # when webhooks signed with Saleor's key arrive after it: the activation issued before the
    # deletion but delivered late, a checkout, an order's refund, a retry of the deletion
    late = [
        ("app_status_changed", status(app_id, True, START + HOUR), 410),
        ("checkout_updated", checkout_payload(str(uuid4()), "new@example.com", START + 2 * HOUR), 410),
        ("order_refunded", order_payload(order_id, token, START + HOUR, refunded="50"), 410),
        ("customer_deleted", {"user": {"email": "shopper@example.com"}}, 410),
        ("app_deleted", {"app": {"id": app_id}}, 204),
    ]
    for event, payload, expected in late:
        response = deliver(installed, saleor, event, payload)
        assert response.status_code == expected, event
    # then the app stays deleted and nothing was recorded
    assert _state() == before
    assert installation.stored().uninstall_reason == installation.DELETED
    # and only a new registration installs it again (with the token Saleor makes for it)
    saleor.app_active = True
    assert register(installed, saleor, token=saleor.token).status_code == 200
    order["totalRefunded"]["amount"] = Decimal(50)
    assert deliver(installed, saleor, "order_refunded", late[2][1]).status_code == 204
    assert RecoveryCart.objects.get().order_refunded == Decimal(50)


def _state():
    return (
        [model_to_dict(cart) for cart in RecoveryCart.objects.order_by("pk")],
        [model_to_dict(found) for found in Installation.objects.all()],
        [model_to_dict(found) for found in Suppression.objects.order_by("pk")],
    )


def _changed(payload: dict, path: str, value) -> dict:
    """``payload`` with the field at the dotted ``path`` set to ``value``."""
    changed = copy.deepcopy(payload)
    *parents, name = path.split(".")
    node = changed
    for parent in parents:
        node = node[parent]
    node[name] = value
    return changed


CHECKOUT = checkout_payload(str(uuid4()), "shopper@example.com", START + HOUR)
ORDER_PK = str(uuid4())
ORDER = order_payload(ORDER_PK, "", START + HOUR, refunded="10")
USER = {"user": {"email": "shopper@example.com"}}
LONG_EMAIL = "a" * 250 + "@example.com"

# (id, event, body as sent): each is refused with 400 and changes nothing
BAD_BODIES = [
    ("not_json", "checkout_updated", b"{'checkout': 1}"),
    ("not_utf8", "checkout_updated", b'{"checkout": {"email": "\xff\xfe"}}'),
    ("utf16", "checkout_updated", json.dumps(CHECKOUT).encode("utf-16")),
    ("array", "checkout_updated", b"[]"),
    ("string", "order_created", b'"order"'),
    ("number", "customer_deleted", b"42"),
    ("null", "app_deleted", b"null"),
    ("nested_too_deep", "checkout_updated", b"[" * 100_000 + b"]" * 100_000),
]
BAD_PAYLOADS = [
    ("checkout_is_a_string", "checkout_updated", {"checkout": "not an object"}),
    ("checkout_is_a_list", "checkout_created", {"checkout": [CHECKOUT["checkout"]]}),
    ("channel_is_a_string", "checkout_updated", _changed(CHECKOUT, "checkout.channel", "main")),
    ("user_is_a_string", "checkout_updated",
     _changed(_changed(CHECKOUT, "checkout.email", None), "checkout.user", "shopper@example.com")),
    ("email_too_long", "checkout_updated", _changed(CHECKOUT, "checkout.email", LONG_EMAIL)),
    ("email_a_number", "checkout_updated", _changed(CHECKOUT, "checkout.email", 42)),
    ("email_lone_surrogate", "checkout_updated", _changed(CHECKOUT, "checkout.email", "a\ud800@example.com")),
    ("email_with_nul", "checkout_updated", _changed(CHECKOUT, "checkout.email", "a\x00b@example.com")),
    ("token_not_a_uuid", "checkout_updated", _changed(CHECKOUT, "checkout.token", "not-a-uuid")),
    ("token_too_long", "checkout_updated", _changed(CHECKOUT, "checkout.token", "0" * 10_000)),
    ("token_an_object", "checkout_updated", _changed(CHECKOUT, "checkout.token", {"id": 1})),
    ("without_time", "checkout_updated", _changed(CHECKOUT, "checkout.updatedAt", None)),
    ("naive_time", "checkout_updated", _changed(CHECKOUT, "checkout.updatedAt", "2026-03-02T09:00:00")),
    ("time_a_number", "checkout_updated", _changed(CHECKOUT, "checkout.updatedAt", 1772442000)),
    ("language_too_long", "checkout_updated", _changed(CHECKOUT, "checkout.languageCode", "EN_" * 100)),
    ("language_an_object", "checkout_updated", _changed(CHECKOUT, "checkout.languageCode", {"code": "EN"})),
    ("slug_too_long", "checkout_updated", _changed(CHECKOUT, "checkout.channel.slug", "s" * 300)),
    ("order_is_a_string", "order_created", {"order": "not an object"}),
    ("order_id_not_global", "order_created", {"order": {"id": "not-a-global-id"}}),
    ("order_id_too_long", "order_created", _changed(ORDER, "order.id", "x" * 300)),
    ("order_id_of_a_checkout", "order_refunded",
     _changed(ORDER, "order.id", global_id("Checkout", ORDER_PK))),
    ("order_id_not_a_uuid", "order_created", _changed(ORDER, "order.id", global_id("Order", "1001"))),
    ("order_number_a_number", "order_created", _changed(ORDER, "order.number", 1001)),
    ("order_naive_created", "order_created", _changed(ORDER, "order.created", "2026-03-02T09:00:00")),
    ("order_total_a_string", "order_created", _changed(ORDER, "order.total.gross.amount", "92.30")),
    ("order_total_true", "order_created", _changed(ORDER, "order.total.gross.amount", True)),
    ("order_total_nan", "order_created", _changed(ORDER, "order.total.gross.amount", float("nan"))),
    ("order_total_infinite", "order_created", _changed(ORDER, "order.total.gross.amount", float("inf"))),
    ("order_total_absurd", "order_created", _changed(ORDER, "order.total.gross.amount", 1e20)),
    ("order_total_negative", "order_created", _changed(ORDER, "order.total.gross.amount", -5)),
    ("order_total_a_string_object", "order_refunded", _changed(ORDER, "order.total", "92.30 USD")),
    ("order_currency_a_name", "order_created", _changed(ORDER, "order.total.gross.currency", "DOLLARS")),
    ("order_refund_absurd", "order_refunded", _changed(ORDER, "order.totalRefunded.amount", 10**30)),
    ("order_refund_a_string", "order_fully_refunded", _changed(ORDER, "order.totalRefunded.amount", "x")),
    ("order_email_too_long", "order_cancelled", _changed(ORDER, "order.userEmail", LONG_EMAIL)),
    ("order_channel_a_string", "order_created", _changed(ORDER, "order.channel", "main")),
    ("user_email_a_number", "customer_deleted", {"user": {"email": 42}}),
    ("user_is_a_string", "account_deleted", {"user": "shopper@example.com"}),
    ("user_email_too_long", "customer_deleted", _changed(USER, "user.email", LONG_EMAIL)),
    ("app_is_a_string", "app_deleted", {"app": "QXBwOjc="}),
    ("app_id_a_list", "app_deleted", {"app": {"id": ["QXBwOjc="]}}),
    ("status_not_a_boolean", "app_status_changed",
     {"issuedAt": START.isoformat(), "app": {"id": APP_ID, "isActive": "yes"}}),
    ("status_time_a_number", "app_status_changed", {"issuedAt": 5, "app": {"id": APP_ID, "isActive": False}}),
    ("status_app_id_too_long", "app_status_changed",
     {"issuedAt": START.isoformat(), "app": {"id": "x" * 300, "isActive": False}}),
]  # fmt: skip
SHAPES = BAD_BODIES + [(name, event, json.dumps(payload).encode()) for name, event, payload in BAD_PAYLOADS]


@pytest.mark.parametrize(("name", "event", "body"), SHAPES, ids=[f"{shape[0]}_case" for shape in SHAPES])
def test_a_payload_that_is_not_what_the_subscription_asks_for_is_400_and_changes_nothing(
    installed, saleor, token, name, event, body
):
    # given a shopper's cart converted by an order, and their opt-out: something each webhook changes
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "shopper@example.com", START))
    placed = order_payload(ORDER_PK, token, START + HOUR)
    saleor_has(saleor, placed)
    deliver(installed, saleor, "order_created", placed)
    suppress("main", "shopper@example.com", source="link")
    before, asked = _state(), saleor.operations()
    # when Saleor's signature covers a body that is not the subscription's payload
    response = deliver(installed, saleor, event, body)
    # then it is refused, naming the event, without asking Saleor, and nothing changed (the
    # database still answers)
    assert response.status_code == 400, response.content[:300]
    assert event.upper() in response.json()["error"]
    assert (_state(), saleor.operations()) == (before, asked)


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
    installation.delete(installation.stored().app_id)
    response = installed.post(link.removeprefix("http://app.test"), {"List-Unsubscribe": "One-Click"})
    # then the address is suppressed all the same
    assert response.status_code == 200
    assert Suppression.objects.filter(channel_slug="main").count() == 1
    assert RecoveryCart.objects.get().stop_reason == "unsubscribed"


def test_saleor_refusing_the_app_token_uninstalls_and_stops_sending(installed, saleor, token):
    # given a recorded cart, and Saleor no longer accepting the app's token (deleted in Saleor)
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "shopper@example.com", START))
    saleor.revoke()
    # when the send path asks Saleor for the cart
    with pytest.raises(AppTokenRevoked):
        get_shop().load_carts([token])
    # then the app counts as uninstalled: no channel sends, nothing is retried
    assert not installation.stored().installed
    assert get_shop().channel_settings("main") is None


# Another app of the same Saleor gets webhooks signed with the same key, and Saleor-Event is not signed:
# it could post a body of these shapes here. Each is applied only as Saleor confirms it.
# A deletion Saleor does not show yet is answered 503: its read replica may lag, and it retries.
FORGED = [
    ("app_deleted", lambda app_id: {"app": {"id": app_id}}, "CartRecoveryAppState", 204),
    ("app_status_changed", lambda app_id: status(app_id, False, START + HOUR), "CartRecoveryAppState", 204),
    ("customer_deleted", lambda _: {"user": {"email": "Shopper@example.com"}}, "CartRecoveryUserExists", 503),
    ("account_deleted", lambda _: {"user": {"email": "shopper@example.com"}}, "CartRecoveryUserExists", 503),
]
FORGED_IDS = [f"{forged[0]}_case" for forged in FORGED]


@pytest.mark.parametrize(("event", "payload", "asked", "answer"), FORGED, ids=FORGED_IDS)
def test_a_destructive_event_saleor_does_not_confirm_changes_nothing(
    installed, saleor, token, event, payload, asked, answer
):
    # given a shopper's cart and opt-out, the shopper still a customer in Saleor, the app active there
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "shopper@example.com", START))
    suppress("main", "shopper@example.com", source="link")
    saleor.shop.add_user("shopper@example.com")
    before = _state()
    # when a body of the event's shape arrives, signed with Saleor's key
    response = deliver(installed, saleor, event, payload(installation.stored().app_id))
    # then Saleor was asked, and since it says otherwise, nothing changed
    assert response.status_code == answer
    assert asked in saleor.operations()
    assert _state() == before and installation.stored().installed


def test_an_activation_saleor_does_not_confirm_leaves_the_app_deactivated(installed, saleor):
    app_id = installation.stored().app_id
    saleor.app_active = False
    deliver(installed, saleor, "app_status_changed", status(app_id, False, START))
    # when an activation arrives while Saleor still has the app deactivated
    assert (
        deliver(installed, saleor, "app_status_changed", status(app_id, True, START + HOUR)).status_code
        == 204
    )
    # then it stays deactivated
    assert installation.stored().uninstall_reason == installation.DEACTIVATED


@pytest.mark.parametrize("fault", ["down", "error"])
@pytest.mark.parametrize(("event", "payload", "asked", "answer"), FORGED, ids=FORGED_IDS)
def test_a_destructive_event_saleor_cannot_confirm_now_is_503_and_changes_nothing(
    installed, saleor, token, event, payload, asked, answer, fault
):
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "shopper@example.com", START))
    app_id = installation.stored().app_id
    before = _state()
    # when Saleor is out of reach while the event arrives
    saleor.fault = fault
    response = deliver(installed, saleor, event, payload(app_id))
    # then it is answered 503 (Saleor retries), and nothing changed
    assert response.status_code == 503, response.content[:300]
    assert _state() == before


def test_a_deletion_saleor_does_not_show_yet_is_erased_when_saleor_retries_it(installed, saleor, token):
    # given a shopper's cart, and Saleor's API still showing the account (its replica lags)
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "shopper@example.com", START))
    saleor.shop.add_user("shopper@example.com")
    deletion = {"user": {"email": "shopper@example.com"}}
    # when the deletion arrives: 503, nothing erased
    assert deliver(installed, saleor, "customer_deleted", deletion).status_code == 503
    assert RecoveryCart.objects.filter(email="shopper@example.com").exists()
    # and when Saleor retries it once its API no longer shows the account, the address is erased
    saleor.shop.users.clear()
    assert deliver(installed, saleor, "customer_deleted", deletion).status_code == 204
    assert not RecoveryCart.objects.filter(email="shopper@example.com").exists()


def test_a_checkout_time_far_ahead_of_ours_is_taken_as_five_minutes_ahead(installed, saleor, token):
    # given a checkout update dated a day ahead (a clock far off, or a forged body)
    sent = timezone.now()
    ahead = sent + timedelta(days=1)
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "shopper@example.com", ahead))
    # then it is recorded as five minutes from now, so a real update six minutes later is newer
    recorded = RecoveryCart.objects.get().last_activity_at
    assert sent + timedelta(minutes=5) <= recorded <= timezone.now() + timedelta(minutes=5)
    later = timezone.now() + timedelta(minutes=6)
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "other@example.com", later))
    assert RecoveryCart.objects.get().email == "other@example.com"


def test_two_updates_a_little_ahead_of_our_clock_keep_saleors_order(installed, saleor, token):
    # given two updates of Saleor's, a minute ahead of our clock, the newer delivered first
    newer = timezone.now() + timedelta(minutes=1)
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "new@example.com", newer))
    older = newer - timedelta(seconds=1)
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "old@example.com", older))
    # then the older one, arriving late, does not overwrite the newer
    assert RecoveryCart.objects.get().email == "new@example.com"


def test_an_account_deletion_while_saleor_refuses_our_token_is_503_and_erases_nothing(
    installed, saleor, token
):
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "shopper@example.com", START))
    saleor.app_active = False  # Saleor takes our token as anonymous: it cannot say whether the user is gone
    response = deliver(installed, saleor, "customer_deleted", {"user": {"email": "shopper@example.com"}})
    assert response.status_code == 503
    assert RecoveryCart.objects.filter(email="shopper@example.com").exists()


# An order event is applied as Saleor has the order, asked by the body's order ID: a body that
# another app forged names an order Saleor does not have, or says other things of one it has.
def _someone_elses(saleor, token: str) -> dict:
    """A real order, from another checkout by another shopper, posted as if from ``token``'s."""
    order_id = str(uuid4())
    saleor_has(saleor, order_payload(order_id, str(uuid4()), START + HOUR, email="other@example.com"))
    return order_payload(order_id, token, START + HOUR)


# a forged body, and Saleor's answer: an order Saleor does not have is 503 (its read replica may lag
# behind its own event; Saleor never retries a body it did not send)
FORGED_ORDERS = {
    "unknown_order": (lambda saleor, token: order_payload(str(uuid4()), token, START + HOUR), 503),
    "someone_elses_order": (_someone_elses, 204),
}


@pytest.mark.parametrize(
    ("forged", "answer"), FORGED_ORDERS.values(), ids=[f"{name}_case" for name in FORGED_ORDERS]
)
def test_a_forged_order_created_stops_no_series(installed, saleor, token, forged, answer):
    # given a shopper's cart
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "shopper@example.com", START))
    body = forged(saleor, token)
    before = _state()
    # when a body says an order was placed from it, signed with Saleor's key
    response = deliver(installed, saleor, "order_created", body)
    # then Saleor was asked, and since its order is not from that cart, the series goes on
    assert response.status_code == answer
    assert "OrderById" in saleor.operations()
    assert _state() == before
    assert RecoveryCart.objects.get().status == "active"


# (event, what the body says) of an order recorded with nothing refunded that Saleor now has at
# 92.30, with 10 refunded, not cancelled: older than Saleor's answer yet newer than the record, or
# not Saleor's
POSTED = [
    ("order_created", {"total": "1.00"}),
    ("order_refunded", {"refunded": "5"}),
    ("order_fully_refunded", {"total": "1.00", "email": "other@example.com", "refunded": "5"}),
    ("order_cancelled", {"refunded": "5"}),
]


@pytest.mark.parametrize(("event", "says"), POSTED, ids=[f"{event}_case" for event, _ in POSTED])
def test_an_order_event_records_the_order_as_saleor_has_it_not_as_posted(
    installed, saleor, token, event, says
):
    # given a shopper's cart and their order in Saleor, recorded unless this is its creation
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "shopper@example.com", START))
    order_id = str(uuid4())
    placed = order_payload(order_id, token, START + HOUR, refunded="0")
    order = saleor_has(saleor, placed)
    if event != "order_created":
        assert deliver(installed, saleor, "order_created", placed).status_code == 204
        assert RecoveryCart.objects.get().order_refunded == 0
    order["totalRefunded"]["amount"] = Decimal(10)  # refunded in Saleor since
    asked = len(saleor.operations())
    # when a body about that order says otherwise, nothing Saleor's answer lacks
    response = deliver(installed, saleor, event, order_payload(order_id, token, START + HOUR, **says))
    # then the cart has Saleor's figures, asked in one request
    assert response.status_code == 204
    assert saleor.operations()[asked:] == ["OrderById"]
    cart = RecoveryCart.objects.get()
    assert (cart.status, cart.order_total, cart.order_refunded, cart.order_cancelled) == (
        "converted",
        Decimal("92.30"),
        Decimal(10),
        False,
    )


# (event, what the body says of an order Saleor's answer has at 20 refunded, not cancelled — or not
# yet, for its creation —, words of the answer)
BEHIND = [
    ("order_created", {}, "does not show order 1001 yet"),
    ("order_refunded", {"refunded": "50"}, "shows 20.00 USD refunded for order 1001, less than"),
    ("order_cancelled", {"status": "CANCELED"}, "does not show order 1001 as cancelled yet"),
]


@pytest.mark.parametrize(("event", "says", "words"), BEHIND, ids=[f"{event}_case" for event, *_ in BEHIND])
def test_an_order_event_ahead_of_saleors_answer_is_503_until_saleor_has_caught_up(
    installed, saleor, token, caplog, event, says, words
):
    # given a shopper's cart, and their order in Saleor recorded with 20 refunded unless this is its
    # creation
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "shopper@example.com", START))
    order_id = str(uuid4())
    placed = order_payload(order_id, token, START + HOUR, refunded="20")
    order = None
    if event != "order_created":
        order = saleor_has(saleor, placed)
        assert deliver(installed, saleor, "order_created", placed).status_code == 204
    body = order_payload(order_id, token, START + HOUR, **{"refunded": "20", **says})
    before, asked = _state(), len(saleor.operations())
    # when its event arrives while Saleor's read replica does not have that state yet
    caplog.set_level("INFO", logger="saleor_cart_recovery.app.views")
    response = deliver(installed, saleor, event, body)
    # then it is answered 503, saying why, logged at info, and nothing changed
    assert response.status_code == 503, response.content[:300]
    assert words in response.json()["error"]
    assert saleor.operations()[asked:] == ["OrderById"]
    assert _state() == before
    [logged] = [r for r in caplog.records if r.name == "saleor_cart_recovery.app.views"]
    assert (logged.levelname, words in logged.getMessage()) == ("INFO", True)
    # and Saleor's retry, once its answer has caught up, applies the order
    if order is not None:
        saleor.shop.orders.remove(order)
    saleor_has(saleor, body)
    assert deliver(installed, saleor, event, body).status_code == 204
    cart = RecoveryCart.objects.get()
    assert (cart.status, cart.order_refunded, cart.order_cancelled) == (
        "converted",
        Decimal(says.get("refunded", "20")),
        "status" in says,
    )


@pytest.mark.parametrize("fault", ["down", "error", "token_refused"])
@pytest.mark.parametrize("event", ["order_created", "order_refunded"])
def test_an_order_event_saleor_cannot_confirm_now_is_503_and_its_retry_applies_it(
    installed, saleor, token, event, fault
):
    # given a shopper's cart and their order in Saleor (recorded, then refunded in part, for a refund)
    deliver(installed, saleor, "checkout_updated", checkout_payload(token, "shopper@example.com", START))
    placed = order_payload(str(uuid4()), token, START + HOUR)
    order = saleor_has(saleor, placed)
    if event == "order_refunded":
        deliver(installed, saleor, "order_created", placed)
        order["totalRefunded"]["amount"] = Decimal(30)
    before = _state()
    # when the event arrives while Saleor is out of reach, or takes our token as anonymous
    if fault == "token_refused":
        saleor.app_active = False
    else:
        saleor.fault = fault
    response = deliver(installed, saleor, event, placed)
    # then it is answered 503 (Saleor retries), and nothing changed
    assert response.status_code == 503, response.content[:300]
    assert _state() == before
    # and Saleor's retry, once it answers again, applies the order as Saleor has it
    saleor.fault, saleor.app_active = None, True
    assert deliver(installed, saleor, event, placed).status_code == 204
    cart = RecoveryCart.objects.get()
    refunded = Decimal(30) if event == "order_refunded" else 0
    assert (cart.status, cart.order_refunded) == ("converted", refunded)
