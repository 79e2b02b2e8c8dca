"""One suite of missing, bad, forged and foreign credentials run against every App endpoint (as
anymail's ``webhook_cases`` runs one against every provider): each is refused with a 4xx and changes
nothing; the same request with good credentials goes through (so each case can fail).

Forgeries cover what an attacker can get: a key of their own under Saleor's key id, a body changed
after signing, a token Saleor really signed but for something else (a shopper's JWT as a webhook
signature, a staff token where the Dashboard's app token is needed), another Saleor's signature.
"""

import json
from dataclasses import dataclass
from datetime import timedelta
from html import unescape
from uuid import uuid4

import pytest
from django.forms.models import model_to_dict

from saleor_cart_recovery.app import installation
from saleor_cart_recovery.app.models import Installation
from saleor_cart_recovery.app.webhooks import WEBHOOKS
from saleor_cart_recovery.models import RecoveryCart

from .app_host import APP_ID, APP_TOKEN, checkout_payload, order_payload
from .conftest import START
from .standin_saleor import SigningKey, StandinSaleor

TOKEN = str(uuid4())
ORDER = str(uuid4())


def _payload(event: str) -> dict:
    if event.startswith("CHECKOUT"):
        return checkout_payload(str(uuid4()), "new@example.com", START)
    if event.startswith("ORDER"):
        return order_payload(ORDER, TOKEN, START, refunded="10", status="CANCELED")
    if event == "CUSTOMER_DELETED":
        return {"user": {"email": "shopper@example.com"}}
    if event == "APP_STATUS_CHANGED":
        return {"issuedAt": START.isoformat(), "app": {"id": APP_ID, "isActive": False}}
    return {"app": {"id": APP_ID}}


@pytest.fixture
def shop_state(installed, saleor):
    """A cart with an order, so that every webhook would change something; returns a snapshot."""
    body = checkout_payload(TOKEN, "shopper@example.com", START)
    _post(installed, saleor, "checkout_updated", json.dumps(body).encode())
    body = order_payload(ORDER, TOKEN, START + timedelta(hours=1))
    assert _post(installed, saleor, "order_created", json.dumps(body).encode()).status_code == 204
    return _snapshot


def _snapshot():
    return (
        [model_to_dict(cart) for cart in RecoveryCart.objects.order_by("pk")],
        [model_to_dict(found) for found in Installation.objects.all()],
    )


def _post(client, saleor: StandinSaleor, event: str, body: bytes, **headers):
    return client.post(
        f"/webhooks/{event.replace('_', '-')}",
        data=body,
        content_type="application/json",
        headers=saleor.webhook_headers(event, body, **headers),
    )


def _forger(saleor: StandinSaleor) -> SigningKey:
    """A key of the attacker's own, published under Saleor's key id."""
    forged = SigningKey()
    forged.kid = saleor.key.kid
    return forged


# (id, expected status, headers to send instead of Saleor's, given the standin and the body)
WEBHOOK_CASES = [
    ("missing_signature", 401, lambda s, body: {"Saleor-Signature": ""}),
    ("garbage_signature", 401, lambda s, body: {"Saleor-Signature": "not-a-jws"}),
    ("forged_key_under_saleors_key_id", 401, lambda s, body: {"Saleor-Signature": s.sign(body, _forger(s))}),
    ("body_changed_after_signing", 401, lambda s, body: {"Saleor-Signature": s.sign(body + b" ")}),
    ("saleor_jwt_not_over_the_body", 401, lambda s, body: {"Saleor-Signature": s.jwt(type="access")}),
    ("unknown_key_of_another_saleor", 401, lambda s, body: {"Saleor-Signature": s.sign(body, SigningKey())}),
    ("foreign_api_url", 403, lambda s, body: {"Saleor-Api-Url": "http://other-saleor.test/graphql/"}),
    ("missing_api_url", 403, lambda s, body: {"Saleor-Api-Url": ""}),
    ("wrong_event_header", 400, lambda s, body: {"Saleor-Event": "checkout_deleted"}),
]  # fmt: skip


@pytest.mark.parametrize("webhook", WEBHOOKS, ids=lambda webhook: f"{webhook.event.lower()}_case")
@pytest.mark.parametrize("case", WEBHOOK_CASES, ids=lambda case: f"{case[0]}_case")
def test_every_webhook_refuses_bad_credentials_and_changes_nothing(
    installed, saleor, shop_state, webhook, case
):
    _, status, headers = case
    event = webhook.event.lower()
    body = json.dumps(_payload(webhook.event)).encode()
    before = shop_state()
    # when the request comes without Saleor's credentials
    response = _post(installed, saleor, event, body, **headers(saleor, body))
    # then it is refused and nothing changed
    assert response.status_code == status
    assert shop_state() == before
    # and the same request as Saleor sends it goes through
    assert _post(installed, saleor, event, body).status_code == 204


def test_an_unknown_key_id_refetches_saleors_keys_once(installed, saleor):
    body = json.dumps(_payload("CHECKOUT_UPDATED")).encode()
    fetched = saleor.jwks_fetches
    # when Saleor rotated its key
    saleor.rotate_key()
    assert _post(installed, saleor, "checkout_updated", body).status_code == 204
    assert saleor.jwks_fetches == fetched + 1
    # and a forger repeats a key id Saleor does not have: one refetch, then refused from the cache
    stranger = SigningKey()
    for _ in range(3):
        response = _post(
            installed, saleor, "checkout_updated", body, **{"Saleor-Signature": saleor.sign(body, stranger)}
        )
        assert response.status_code == 401
    assert saleor.jwks_fetches == fetched + 2


def test_webhooks_answer_503_while_saleors_keys_are_out_of_reach(app_client, saleor):
    body = json.dumps(_payload("CHECKOUT_UPDATED")).encode()
    headers = saleor.webhook_headers("checkout_updated", body)
    saleor.close()
    response = app_client.post(
        "/webhooks/checkout-updated", data=body, content_type="application/json", headers=headers
    )
    assert response.status_code == 503  # Saleor retries later
    assert not RecoveryCart.objects.exists()


@dataclass(frozen=True)
class Caller:
    """How a case authenticates: a function of the standin returning the Authorization header."""

    name: str
    api_status: int  # on the developer API and the report
    dashboard_status: int  # on a Dashboard page
    authorization: object


def _app_token(s: StandinSaleor, **claims) -> str:
    """The Dashboard's token for an app (``create_access_token_for_app``)."""
    defaults = {"type": "thirdparty", "app": APP_ID, "permissions": ["MANAGE_CHECKOUTS"]}
    return s.staff(**{**defaults, **claims})


CALLERS = [
    Caller("missing", 401, 401, lambda s: ""),
    Caller("not_bearer", 401, 401, lambda s: f"Basic {s.staff()}"),
    Caller("garbage", 401, 401, lambda s: "Bearer a.b.c"),
    Caller("forged_key_under_saleors_key_id", 401, 401, lambda s: f"Bearer {s.jwt(key=_forger(s))}"),
    Caller("another_saleors_token", 401, 401,
           lambda s: f"Bearer {s.jwt(key=SigningKey(), issuer='http://other-saleor.test/graphql/')}"),
    Caller("issued_for_another_saleor", 401, 401, lambda s: f"Bearer {s.staff(iss='http://other-saleor.test/graphql/')}"),
    Caller("expired", 401, 401, lambda s: f"Bearer {s.staff(exp=START)}"),
    Caller("unknown_app_token", 401, 401, lambda s: "Bearer app-token-saleor-never-issued"),
    Caller("staff_without_permission", 403, 401, lambda s: f"Bearer {s.staff(user_permissions=())}"),
    Caller("staff_of_another_channel", 403, 401,
           lambda s: f"Bearer {s.staff(channels=('other',), restricted=True)}"),
    Caller("dashboard_token_of_another_channel", 403, 403,
           lambda s: f"Bearer {_app_token(s, channels=('other',), restricted=True)}"),
    Caller("dashboard_token_of_a_customer", 403, 403,
           lambda s: f"Bearer {_app_token(s, is_staff=False)}"),
    Caller("another_apps_dashboard_token", 200, 403, lambda s: f"Bearer {_app_token(s, app='QXBwOjk5')}"),
    Caller("dashboard_token_without_permission", 200, 403,
           lambda s: f"Bearer {_app_token(s, permissions=[])}"),
    Caller("staff_token", 200, 401, lambda s: f"Bearer {s.staff()}"),
    Caller("app_token", 200, 401, lambda s: f"Bearer {APP_TOKEN}"),
    Caller("dashboard_token", 200, 200, lambda s: f"Bearer {_app_token(s)}"),
]  # fmt: skip

REQUESTS = {
    "graphql": lambda client, headers: client.post(
        "/channel/main/graphql",
        data='{"query": "{ __typename }"}',
        content_type="application/json",
        headers=headers,
    ),
    "report": lambda client, headers: client.get("/channel/main/report", headers=headers),
    "dashboard": lambda client, headers: client.post(
        "/dashboard/overview", data={"channel": "main"}, headers=headers
    ),
}


@pytest.mark.parametrize("endpoint", sorted(REQUESTS), ids=lambda name: f"{name}_case")
@pytest.mark.parametrize("caller", CALLERS, ids=lambda caller: f"{caller.name}_case")
def test_every_staff_endpoint_checks_the_caller_with_saleor(installed, saleor, endpoint, caller):
    authorization = caller.authorization(saleor)
    headers = {"Authorization": authorization} if authorization else {}
    response = REQUESTS[endpoint](installed, headers)
    expected = caller.dashboard_status if endpoint == "dashboard" else caller.api_status
    assert response.status_code == expected, response.content[:300]


def test_the_dashboard_says_when_the_app_is_uninstalled(installed, saleor):
    installation.uninstall(installation.DELETED)
    response = REQUESTS["dashboard"](installed, {"Authorization": f"Bearer {_app_token(saleor)}"})
    assert response.status_code == 403
    assert b"uninstalled" in response.content


def test_the_dashboard_and_the_api_say_it_in_the_owners_language(installed, saleor):
    # given an app Saleor deleted, and an owner whose Dashboard and API client speak Turkish / German
    installation.uninstall(installation.DELETED)
    token = {"Authorization": f"Bearer {_app_token(saleor)}", "X-Dashboard-Locale": "tr-TR"}
    page = REQUESTS["dashboard"](installed, token).content.decode()
    api = REQUESTS["graphql"](
        installed, {"Authorization": f"Bearer {saleor.staff()}", "Accept-Language": "de"}
    )
    # then the refusal and the API's note are theirs
    assert "Sepet Kurtarma bu Saleor'dan kaldırıldı: hiçbir hatırlatma gönderilmiyor." in unescape(page)
    assert api.json()["extensions"]["cartRecovery"]["message"].startswith(
        "Die Warenkorb-Rückgewinnung ist aus Saleor entfernt"
    )


def test_the_api_says_when_the_app_is_uninstalled(installed, saleor):
    installation.uninstall(installation.DELETED)
    response = REQUESTS["graphql"](installed, {"Authorization": f"Bearer {saleor.staff()}"})
    assert response.status_code == 200
    assert response.json()["extensions"]["cartRecovery"]["installation"] == "uninstalled"


def test_saleor_is_asked_once_per_token_while_the_answer_is_fresh(installed, saleor):
    headers = {"Authorization": f"Bearer {saleor.staff()}"}
    asked = saleor.graphql_requests
    for _ in range(3):
        assert REQUESTS["report"](installed, headers).status_code == 200
    assert saleor.graphql_requests == asked + 1
