"""The developer GraphQL API inside real Saleor: Saleor's staff JWTs and app tokens, a cart made by
real checkoutCreate, and a stop that really keeps the reminders away."""

import json

import pytest
from django.core import mail
from freezegun import freeze_time
from saleor.core.jwt import create_access_token

from saleor_cart_recovery.models import RecoveryCart

from .utils import HOUR, T0, create_checkout, dispatch_at

URL = "/plugins/channel/main/saleor_cart_recovery/graphql"
CART = """
query ($token: String!) {
  cart(checkoutToken: $token) {
    checkoutToken status stopReason email lastActivityAt nextDueAt messages { step status }
  }
}
"""
STOP = """
mutation ($token: String!) {
  stopCart(checkoutToken: $token) { cart { status stopReason nextDueAt } errors { field message } }
}
"""


def post(client, query, variables, **headers):
    body = json.dumps({"query": query, "variables": variables})
    return client.post(URL, data=body, content_type="application/json", **headers)


@pytest.fixture
def left_cart(api_client, cart_recovery, channel_USD, stocked_variant):
    """A checkout created through Saleor's checkoutCreate at T0; returns its token."""
    with freeze_time(T0):
        return create_checkout(api_client, channel_USD, stocked_variant, quantity=2)


def test_staff_with_manage_checkouts_reads_and_stops_a_real_cart(
    client, left_cart, staff_user, permission_manage_checkouts, run_dispatch
):
    staff_user.user_permissions.add(permission_manage_checkouts)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {create_access_token(staff_user)}"}

    response = post(client, CART, {"token": left_cart}, **headers)
    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "cart": {
                "checkoutToken": left_cart,
                "status": "active",
                "stopReason": None,
                "email": "shopper@example.com",
                "lastActivityAt": "2026-03-02T09:00:00+00:00",
                "nextDueAt": "2026-03-02T10:00:00+00:00",
                "messages": [],
            }
        }
    }

    response = post(client, STOP, {"token": left_cart}, **headers)
    assert response.status_code == 200
    assert response.json()["data"]["stopCart"] == {
        "cart": {"status": "stopped", "stopReason": "manual", "nextDueAt": None},
        "errors": [],
    }

    # the first reminder would have been due now: nothing goes out
    dispatch_at(run_dispatch, T0 + 2 * HOUR)
    assert mail.outbox == []
    assert post(client, CART, {"token": left_cart}, **headers).json()["data"]["cart"]["messages"] == []


def test_an_app_with_manage_plugins_may_use_it(client, left_cart, app, permission_manage_plugins):
    app.permissions.add(permission_manage_plugins)
    _, token = app.tokens.create(name="api")
    response = post(client, CART, {"token": left_cart}, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response.json()["data"]["cart"]["status"] == "active"


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("anonymous", 401),
        ("garbage", 401),
        ("app_without_permission", 403),
        ("staff_without_permission", 403),
        ("customer", 403),
    ],
)
def test_everyone_else_is_refused_and_nothing_changes(
    client, left_cart, app, staff_user, customer_user, who, status
):
    _, app_token = app.tokens.create(name="api")
    headers = {
        "anonymous": {},
        "garbage": {"HTTP_AUTHORIZATION": "Bearer not-a-token"},
        "app_without_permission": {"HTTP_AUTHORIZATION": f"Bearer {app_token}"},
        "staff_without_permission": {"HTTP_AUTHORIZATION": f"Bearer {create_access_token(staff_user)}"},
        "customer": {"HTTP_AUTHORIZATION": f"Bearer {create_access_token(customer_user)}"},
    }[who]
    response = post(client, STOP, {"token": left_cart}, **headers)
    assert response.status_code == status
    assert "data" not in response.json() and response.json()["errors"][0]["message"]
    assert RecoveryCart.objects.get(checkout_token=left_cart).status == "active"
