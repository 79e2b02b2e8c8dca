"""The developer GraphQL API against the test shop: what a developer posts and what JSON comes back."""

import base64
import json
import smtplib
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from unittest import mock

import pytest
from django.core import mail
from django.core.management import call_command
from freezegun import freeze_time

from saleor_cart_recovery.experiments.rollup import rollup
from saleor_cart_recovery.models import RecoveryCart, Suppression
from saleor_cart_recovery.series.activity import record_order, record_refund
from saleor_cart_recovery.series.delivery import deliver, deliver_batch
from saleor_cart_recovery.series.dispatch import dispatch
from tests.shopapp.models import ShopChannel, ShopOrder
from tests.shopapp.shop import DbShop, order_ref

from .conftest import CONFIGURATION, START, make_checkout, touch

URL = "/plugins/channel/main/saleor_cart_recovery/graphql"
STAFF = {"HTTP_X_TEST_STAFF": "MANAGE_CHECKOUTS"}
HOUR = timedelta(hours=1)
UNKNOWN_CART = "No cart with this checkout token in this channel."

CART = """
query ($token: String!) {
  cart(checkoutToken: $token) {
    checkoutToken status stopReason email languageCode holdout cadence experiment
    lastActivityAt nextDueAt stepsPlanned
    conversion {
      orderId orderNumber total { amount currency } refunded { amount } cancelled convertedAt match
    }
    messages {
      step status reason variant subject content voucherCode voucherExpiresAt attempts sentAt
      clicks firstClickedAt
    }
  }
}
"""
CARTS = """
query ($status: String, $email: String, $first: Int, $after: String) {
  carts(status: $status, email: $email, first: $first, after: $after) {
    edges { cursor node { checkoutToken } }
    nodes { checkoutToken status }
    pageInfo { hasNextPage endCursor }
  }
}
"""
STOP = """
mutation ($token: String!) {
  stopCart(checkoutToken: $token) {
    cart { checkoutToken status stopReason nextDueAt }
    errors { field message }
  }
}
"""
SUPPRESS = """
mutation ($email: String!) {
  suppress(email: $email) { email suppressed stoppedCarts errors { field message } }
}
"""
UNSUPPRESS = """
mutation ($email: String!) {
  unsuppress(email: $email) { email suppressed errors { field message } }
}
"""
SUPPRESSED = "query ($email: String!) { suppressed(email: $email) }"


def post(client, query, variables=None, *, url=URL, headers=STAFF):
    body = json.dumps({"query": query, "variables": variables or {}})
    return client.post(url, data=body, content_type="application/json", **headers)


def data(client, query, variables=None, **kwargs) -> dict:
    """The ``data`` of a request that must succeed without any error."""
    response = post(client, query, variables, **kwargs)
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]


def errors(client, query, variables=None) -> list[str]:
    """The GraphQL error messages of a request that runs but fails (never a 500)."""
    response = post(client, query, variables)
    assert response.status_code == 200, response.content
    return [error["message"] for error in response.json()["errors"]]


def run_dispatch(django_capture_on_commit_callbacks, at):
    with freeze_time(at), django_capture_on_commit_callbacks(execute=True):
        dispatch(now=at, send=deliver_batch)


@pytest.fixture
def other_channel(db):
    return ShopChannel.objects.create(slug="other", configuration=CONFIGURATION)


def test_cart_shows_the_series_as_it_stands(client, abandoned_cart, django_capture_on_commit_callbacks):
    run_dispatch(django_capture_on_commit_callbacks, START + HOUR)
    assert len(mail.outbox) == 1
    cart = data(client, CART, {"token": abandoned_cart.token})["cart"]
    experiment = RecoveryCart.objects.get().experiment
    assert cart == {
        "checkoutToken": abandoned_cart.token,
        "status": "active",
        "stopReason": None,
        "email": "shopper@example.com",
        "languageCode": "en",
        "holdout": False,
        "cadence": None,
        "experiment": experiment,
        "lastActivityAt": "2026-03-02T09:00:00+00:00",
        "nextDueAt": "2026-03-03T09:00:00+00:00",
        "stepsPlanned": 1,
        "conversion": None,
        "messages": [
            {
                "step": 1,
                "status": "sent",
                "reason": None,
                "variant": 0,
                "subject": "Forgot something?",
                "content": "reminder",
                "voucherCode": None,
                "voucherExpiresAt": None,
                "attempts": 1,
                "sentAt": "2026-03-02T10:00:00+00:00",
                "clicks": 0,
                "firstClickedAt": None,
            }
        ],
    }


def test_a_converted_cart_shows_its_order_and_cannot_be_stopped(client, abandoned_cart):
    order = ShopOrder.objects.create(
        checkout_token=abandoned_cart.token,
        email=abandoned_cart.email,
        total=Decimal("92.30"),
        currency="USD",
        created_at=START + 2 * HOUR,
    )
    record_order(order_ref(order), channel_slug="main", at=START + 2 * HOUR)
    cart = data(client, CART, {"token": abandoned_cart.token})["cart"]
    assert (cart["status"], cart["stopReason"], cart["nextDueAt"]) == ("converted", "purchased", None)
    assert cart["conversion"] == {
        "orderId": str(order.pk),
        "orderNumber": str(order.pk),
        "total": {"amount": 92.3, "currency": "USD"},
        "refunded": {"amount": 0.0},
        "cancelled": False,
        "convertedAt": "2026-03-02T11:00:00+00:00",
        "match": "token",
    }
    # a later refund shows on the conversion
    record_refund(replace(order_ref(order), refunded=Decimal("12.30")), at=START + 24 * HOUR)
    assert data(client, CART, {"token": abandoned_cart.token})["cart"]["conversion"]["refunded"] == {
        "amount": 12.3
    }
    payload = data(client, STOP, {"token": abandoned_cart.token})["stopCart"]
    assert payload == {
        "cart": None,
        "errors": [
            {
                "field": "checkoutToken",
                "message": f"The cart was converted (order {order.pk}); it is left as it is.",
            }
        ],
    }
    assert RecoveryCart.objects.get().status == "converted"


def test_unknown_tokens_and_carts_of_another_channel_are_invisible(
    client, abandoned_cart, other_channel, recovery_settings
):
    elsewhere = make_checkout(other_channel)
    touch(elsewhere, START, recovery_settings)
    assert data(client, CART, {"token": "no-such-token"}) == {"cart": None}
    assert data(client, CART, {"token": elsewhere.token}) == {"cart": None}
    listed = data(client, CARTS)["carts"]["nodes"]
    assert [cart["checkoutToken"] for cart in listed] == [abandoned_cart.token]
    # the other channel's own URL shows it
    other_url = "/plugins/channel/other/saleor_cart_recovery/graphql"
    assert data(client, CART, {"token": elsewhere.token}, url=other_url)["cart"]["status"] == "active"


def test_a_cart_of_another_channel_cannot_be_stopped(client, other_channel, recovery_settings):
    elsewhere = make_checkout(other_channel)
    touch(elsewhere, START, recovery_settings)
    payload = data(client, STOP, {"token": elsewhere.token})["stopCart"]
    assert payload == {
        "cart": None,
        "errors": [{"field": "checkoutToken", "message": UNKNOWN_CART}],
    }
    assert RecoveryCart.objects.get().status == "active"


def test_stop_cart_stops_the_series_for_good(
    client, abandoned_cart, recovery_settings, django_capture_on_commit_callbacks
):
    with freeze_time(START + HOUR / 2):
        payload = data(client, STOP, {"token": abandoned_cart.token})["stopCart"]
    assert payload == {
        "cart": {
            "checkoutToken": abandoned_cart.token,
            "status": "stopped",
            "stopReason": "manual",
            "nextDueAt": None,
        },
        "errors": [],
    }
    # new activity does not restart it, and no reminder goes out
    touch(abandoned_cart, START + HOUR, recovery_settings)
    run_dispatch(django_capture_on_commit_callbacks, START + 3 * HOUR)
    assert mail.outbox == []
    cart = data(client, CART, {"token": abandoned_cart.token})["cart"]
    assert (cart["status"], cart["stopReason"], cart["messages"]) == ("stopped", "manual", [])
    # stopping again answers with the cart as it is
    again = data(client, STOP, {"token": abandoned_cart.token})["stopCart"]
    assert again["errors"] == [] and again["cart"]["stopReason"] == "manual"


def test_stop_cart_for_an_unknown_token_is_an_error(client, db):
    payload = data(client, STOP, {"token": "no-such-token"})["stopCart"]
    assert payload["cart"] is None
    assert payload["errors"] == [{"field": "checkoutToken", "message": UNKNOWN_CART}]


def test_suppress_stops_the_address_everywhere_in_the_channel_only(
    client, channel, other_channel, recovery_settings
):
    carts = [make_checkout(channel), make_checkout(channel), make_checkout(other_channel)]
    for checkout in carts:
        touch(checkout, START, recovery_settings)
    payload = data(client, SUPPRESS, {"email": "  Shopper@Example.COM "})["suppress"]
    assert payload == {"email": "shopper@example.com", "suppressed": True, "stoppedCarts": 2, "errors": []}
    for checkout in carts[:2]:
        cart = data(client, CART, {"token": checkout.token})["cart"]
        assert (cart["status"], cart["stopReason"], cart["nextDueAt"]) == ("stopped", "unsubscribed", None)
    assert RecoveryCart.objects.get(checkout_token=carts[2].token).status == "active"
    assert list(Suppression.objects.values_list("channel_slug", "email", "source")) == [
        ("main", "shopper@example.com", "api")
    ]
    assert data(client, SUPPRESSED, {"email": "SHOPPER@example.com"}) == {"suppressed": True}
    # a second call changes nothing
    again = data(client, SUPPRESS, {"email": "shopper@example.com"})["suppress"]
    assert (again["stoppedCarts"], again["errors"]) == (0, [])


def test_unsuppress_lifts_the_suppression(client, abandoned_cart):
    data(client, SUPPRESS, {"email": "shopper@example.com"})
    payload = data(client, UNSUPPRESS, {"email": "Shopper@example.com"})["unsuppress"]
    assert payload == {"email": "shopper@example.com", "suppressed": False, "errors": []}
    assert data(client, SUPPRESSED, {"email": "shopper@example.com"}) == {"suppressed": False}
    assert not Suppression.objects.exists()
    # the series the suppression stopped stays stopped
    assert data(client, CART, {"token": abandoned_cart.token})["cart"]["stopReason"] == "unsubscribed"
    payload = data(client, UNSUPPRESS, {"email": "shopper@example.com"})["unsuppress"]
    assert payload["errors"] == [{"field": "email", "message": "The address is not suppressed."}]


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("not-an-address", "'not-an-address' is not an email address."),
        ("", "'' is not an email address."),
        ("a@b@example.com", "'a@b@example.com' is not an email address."),
        ("x" * 250 + "@example.com", "An email address has at most 254 characters."),
    ],
    ids=["no_at_case", "empty_case", "two_ats_case", "too_long_case"],
)
def test_invalid_addresses_are_refused(client, abandoned_cart, email, message):
    for document, name in ((SUPPRESS, "suppress"), (UNSUPPRESS, "unsuppress")):
        payload = data(client, document, {"email": email})[name]
        assert payload["errors"] == [{"field": "email", "message": message}]
        assert payload["email"] is None
    assert errors(client, SUPPRESSED, {"email": email}) == [f"email: {message}"]
    assert not Suppression.objects.exists()
    assert RecoveryCart.objects.get().status == "active"


@pytest.fixture
def many_carts(channel, other_channel, recovery_settings):
    """Seven carts in "main" in several states (oldest first) and one in "other"."""
    tokens = []
    for n in range(7):
        checkout = make_checkout(channel, email=f"shopper{n % 2}@example.com")
        touch(checkout, START + n * HOUR, recovery_settings)
        tokens.append(checkout.token)
    RecoveryCart.objects.filter(checkout_token__in=tokens[1::3]).update(
        status="stopped", stop_reason="manual"
    )
    RecoveryCart.objects.filter(checkout_token=tokens[2]).update(status="converted", stop_reason="purchased")
    touch(make_checkout(other_channel), START, recovery_settings)
    return tokens


def test_carts_come_in_pages_newest_first(client, many_carts, recovery_settings, channel):
    pages, after = [], None
    first_page_cursor = None
    while True:
        carts = data(client, CARTS, {"first": 3, "after": after})["carts"]
        pages.append([node["checkoutToken"] for node in carts["nodes"]])
        assert [edge["node"]["checkoutToken"] for edge in carts["edges"]] == pages[-1]
        assert carts["pageInfo"]["endCursor"] == carts["edges"][-1]["cursor"]
        first_page_cursor = first_page_cursor or carts["pageInfo"]["endCursor"]
        if not carts["pageInfo"]["hasNextPage"]:
            break
        after = carts["pageInfo"]["endCursor"]
        if len(pages) == 1:  # a cart arriving meanwhile does not shift the later pages
            touch(make_checkout(channel), START + 8 * HOUR, recovery_settings)
    newest_first = many_carts[::-1]
    assert pages == [newest_first[:3], newest_first[3:6], newest_first[6:]]
    # the same cursor gives the same page again
    again = data(client, CARTS, {"first": 3, "after": first_page_cursor})["carts"]
    assert [node["checkoutToken"] for node in again["nodes"]] == newest_first[3:6]
    # the new cart heads the list
    assert len(data(client, CARTS)["carts"]["nodes"]) == 8


def test_carts_filter_by_status_and_email(client, many_carts):
    stopped = data(client, CARTS, {"status": "stopped"})["carts"]
    assert [node["checkoutToken"] for node in stopped["nodes"]] == [many_carts[4], many_carts[1]]
    assert {node["status"] for node in stopped["nodes"]} == {"stopped"}
    by_email = data(client, CARTS, {"email": "Shopper1@example.com", "first": 2})["carts"]
    assert [node["checkoutToken"] for node in by_email["nodes"]] == [many_carts[5], many_carts[3]]
    assert by_email["pageInfo"]["hasNextPage"] is True
    rest = data(client, CARTS, {"email": "shopper1@example.com", "after": by_email["pageInfo"]["endCursor"]})
    assert [node["checkoutToken"] for node in rest["carts"]["nodes"]] == [many_carts[1]]
    assert rest["carts"]["pageInfo"] == {
        "hasNextPage": False,
        "endCursor": rest["carts"]["edges"][0]["cursor"],
    }
    active_of_one = data(client, CARTS, {"status": "active", "email": "shopper0@example.com"})["carts"]
    assert [node["checkoutToken"] for node in active_of_one["nodes"]] == [many_carts[6], many_carts[0]]


def test_an_empty_page(client, db):
    assert data(client, CARTS)["carts"] == {
        "edges": [],
        "nodes": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    }


def test_a_page_costs_the_same_whatever_its_size(client, many_carts, django_assert_max_num_queries):
    # ids (one bounded index range per status), the carts, their messages
    with django_assert_max_num_queries(3):
        data(client, CARTS, {"first": 100})
    with django_assert_max_num_queries(3):
        data(client, CARTS, {"first": 1})


def cursor_of(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"first": 0}, "first: must be between 1 and 100."),
        ({"first": 101}, "first: must be between 1 and 100."),
        ({"first": -5}, "first: must be between 1 and 100."),
        ({"status": "lost"}, "status: must be one of active, finished, converted, stopped."),
    ],
    ids=["zero_case", "too_many_case", "negative_case", "unknown_status_case"],
)
def test_invalid_page_arguments_are_graphql_errors(client, many_carts, variables, message):
    assert errors(client, CARTS, variables) == [message]


@pytest.mark.parametrize(
    "cursor",
    ["garbage!", "", "%%%", cursor_of("cart:abc"), cursor_of("cart:0"), cursor_of("cart:" + "9" * 30)],
    ids=["not_base64_case", "empty_case", "symbols_case", "text_id_case", "zero_id_case", "huge_id_case"],
)
def test_a_bad_cursor_is_a_graphql_error(client, many_carts, cursor):
    assert errors(client, CARTS, {"after": cursor}) == [
        "after: not a cursor from this API; pass pageInfo.endCursor of a previous page."
    ]


def test_report_is_what_the_command_prints(client, abandoned_cart, other_channel, recovery_settings):
    touch(make_checkout(other_channel), START, recovery_settings)
    # built now, both say the same (but for the moment each was computed)
    out = StringIO()
    call_command("cart_recovery_report", "--json", "--channel", "main", stdout=out)
    printed = json.loads(out.getvalue())
    report = json.loads(data(client, "{ report }")["report"])
    assert [{**r, "computed_at": ""} for r in report] == [{**r, "computed_at": ""} for r in printed]
    assert [r["channel"] for r in report] == ["main"] and report[0]["treated"]["carts"] == 1
    # once the rollup stored the report, both show exactly that one
    rollup(START + 2 * HOUR, DbShop().channel_settings)
    out = StringIO()
    call_command("cart_recovery_report", "--json", "--channel", "main", stdout=out)
    stored = json.loads(data(client, "{ report }")["report"])
    assert stored == json.loads(out.getvalue()) and stored[0]["computed_at"] == "2026-03-02T11:00:00+00:00"
    fresh = json.loads(data(client, "{ report(fresh: true) }")["report"])
    assert fresh[0]["computed_at"] != stored[0]["computed_at"]
    later = data(
        client, "query ($since: DateTime) { report(since: $since) }", {"since": "2026-03-03T00:00:00"}
    )
    assert json.loads(later["report"]) == []


def test_a_bad_date_is_refused(client, abandoned_cart):
    response = post(client, "query ($since: DateTime) { report(since: $since) }", {"since": "yesterday"})
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["message"].startswith('Variable "$since" got invalid value "yesterday".')


def test_a_failure_inside_is_reported_without_its_details(client, abandoned_cart, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("password=hunter2")

    monkeypatch.setattr("saleor_cart_recovery.http.api.queries.report_data", broken)
    response = post(client, "{ report }")
    assert response.status_code == 200
    assert response.json()["errors"][0]["message"] == "Internal error; the server log has the details."
    assert "hunter2" not in response.content.decode()
    [logged] = [r for r in caplog.records if r.name == "saleor_cart_recovery.http.api.view"]
    assert "hunter2" in logged.getMessage() and logged.exc_info[0] is RuntimeError


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "Authentication required: send a Saleor staff or app token (Authorization: Bearer …)."),
        (
            {"HTTP_X_TEST_STAFF": "none"},
            403,
            "This needs the MANAGE_CHECKOUTS or MANAGE_PLUGINS permission and access to this channel.",
        ),
        (
            {"HTTP_ACCEPT_LANGUAGE": "tr-TR,tr;q=0.9"},
            401,
            "Kimlik doğrulaması gerekli: bir Saleor personel veya uygulama token'ı gönderin "
            "(Authorization: Bearer …).",
        ),
        (
            {"HTTP_X_TEST_STAFF": "none", "HTTP_ACCEPT_LANGUAGE": "de-DE"},
            403,
            "Dafür sind die Berechtigung MANAGE_CHECKOUTS oder MANAGE_PLUGINS und der Zugriff auf diesen "
            "Kanal nötig.",
        ),
    ],
    ids=["anonymous_case", "no_permission_case", "anonymous_turkish_case", "no_permission_german_case"],
)
def test_only_staff_with_the_permission_may_use_it(client, abandoned_cart, headers, status, message):
    for document in (CART, STOP):
        response = post(client, document, {"token": abandoned_cart.token}, headers=headers)
        assert response.status_code == status
        assert response.json() == {"errors": [{"message": message}]}
    assert RecoveryCart.objects.get().status == "active"
    if status == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="saleor"'


def test_manage_plugins_is_enough(client, abandoned_cart):
    headers = {"HTTP_X_TEST_STAFF": "MANAGE_PLUGINS"}
    assert data(client, CART, {"token": abandoned_cart.token}, headers=headers)["cart"]["status"] == "active"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "The body is not JSON."),
        ("", "The body is not JSON."),
        ('["query"]', 'The body must be a JSON object: {"query": …, "variables": …, "operationName": …}.'),
        ("{}", "Must provide a query string."),
        ('{"query": "  "}', "Must provide a query string."),
        ('{"query": 42}', "Must provide a query string."),
        ('{"query": "{ report }", "variables": [1]}', "variables must be a JSON object."),
        ('{"query": "{ report }", "operationName": 7}', "operationName must be a string."),
    ],
    ids=[
        "malformed_case",
        "empty_case",
        "array_case",
        "no_query_case",
        "blank_query_case",
        "number_query_case",
        "variables_case",
        "operation_name_case",
    ],
)
def test_a_body_that_is_no_graphql_request_gets_400(client, db, body, message):
    response = client.post(URL, data=body, content_type="application/json", **STAFF)
    assert response.status_code == 400
    assert response.json() == {"errors": [{"message": message}]}


@pytest.mark.parametrize(
    "query",
    ["{ cart(", "{ nope }", "{ cart { status } }", "query ($t: Int!) { cart(checkoutToken: $t) { status } }"],
    ids=["syntax_case", "unknown_field_case", "missing_argument_case", "wrong_variable_type_case"],
)
def test_a_document_that_cannot_run_gets_400(client, db, query):
    response = post(client, query, {"t": 1})
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"]


def test_get_is_not_allowed(client, db):
    response = client.get(URL, {"query": "{ report }"}, **STAFF)
    assert response.status_code == 405 and response["Allow"] == "POST"


def test_nothing_lives_below_the_endpoint(client, db):
    response = post(client, "{ report }", url=f"{URL}/more")
    assert response.status_code == 404


SUPPRESSION = "query ($email: String!) { suppression(email: $email) { email reason source createdAt } }"


def test_a_bounce_shows_in_the_api_and_the_report(client, abandoned_cart):
    # given the recipient's mail server refuses step 1 for good
    refused = smtplib.SMTPRecipientsRefused({"shopper@example.com": (550, b"5.1.1 no such user")})
    with (
        freeze_time(START + HOUR),
        mock.patch("django.core.mail.backends.locmem.EmailBackend.send_messages", side_effect=refused),
    ):
        [message_id] = dispatch(send=lambda _: None).enqueued
        deliver(message_id)
    # then the API shows the message as bounced, the cart stopped, and the address suppressed
    cart = data(client, CART, {"token": abandoned_cart.token})["cart"]
    assert [(m["status"], m["reason"]) for m in cart["messages"]] == [("failed", "bounced")]
    assert (cart["status"], cart["stopReason"]) == ("stopped", "bounced")
    suppression = data(client, SUPPRESSION, {"email": "Shopper@example.com"})["suppression"]
    assert (suppression["email"], suppression["reason"], suppression["source"]) == (
        "shopper@example.com",
        "bounced",
        "bounced",
    )
    assert data(client, SUPPRESSION, {"email": "other@example.com"}) == {"suppression": None}
    # and the report counts it, per step and for the experiment
    [report] = json.loads(data(client, "{ report }")["report"])
    assert report["treated"]["bounced"] == 1
    assert report["steps"][0]["total"]["bounced"] == 1


def test_suppress_leaves_carts_stopped_for_another_reason_as_they_are(client, channel, recovery_settings):
    # given one live cart and one the staff stopped of the same shopper
    live, stopped = make_checkout(channel), make_checkout(channel)
    for checkout in (live, stopped):
        touch(checkout, START, recovery_settings)
    data(client, STOP, {"token": stopped.token})
    # when the address is suppressed
    payload = data(client, SUPPRESS, {"email": "shopper@example.com"})["suppress"]
    # then only the live series is stopped by it; the other keeps its reason
    reasons = dict(RecoveryCart.objects.values_list("checkout_token", "stop_reason"))
    assert payload["stoppedCarts"] == 1
    assert reasons == {live.token: "unsubscribed", stopped.token: "manual"}


BACKLOG = "{ backlog { dueUnplanned plannedUnsent oldestDue } }"


def test_backlog_counts_this_channels_waiting_work(client, channel, other_channel, recovery_settings):
    # given three carts due in this channel at START + 1h, and one in another channel later
    for _ in range(3):
        touch(make_checkout(channel), START, recovery_settings)
    touch(make_checkout(other_channel), START + HOUR / 2, recovery_settings)
    with freeze_time(START + 2 * HOUR):
        assert data(client, BACKLOG)["backlog"] == {
            "dueUnplanned": 3,
            "plannedUnsent": 0,
            "oldestDue": (START + HOUR).isoformat(),
        }
        # when a cycle runs out of time after one batch of two
        dispatch(now=START + 2 * HOUR, send=lambda ids: None, batch_size=2, budget=timedelta(0))
        # then what it left in this channel is reported: one cart still due since START + 1h, and
        # the two planned messages waiting for their worker
        assert data(client, BACKLOG)["backlog"] == {
            "dueUnplanned": 1,
            "plannedUnsent": 2,
            "oldestDue": (START + HOUR).isoformat(),
        }
