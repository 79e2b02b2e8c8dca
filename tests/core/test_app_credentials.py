"""One suite of missing, bad, forged and foreign credentials run against every App endpoint (as
anymail's ``webhook_cases`` runs one against every provider): each is refused with a 4xx and changes
nothing; the same request with good credentials goes through (so each case can fail).

Forgeries cover what an attacker can get: a key of their own under Saleor's key id, a body changed
after signing, a token Saleor really signed but for something else (a shopper's JWT as a webhook
signature, a staff token where the Dashboard's app token is needed), another Saleor's signature.
"""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from html import unescape
from uuid import uuid4

import pytest
from django.forms.models import model_to_dict
from django.test import Client

from saleor_cart_recovery.app import auth, installation, jwks
from saleor_cart_recovery.app.auth import AnswerCache
from saleor_cart_recovery.app.models import Installation
from saleor_cart_recovery.app.webhooks import WEBHOOKS
from saleor_cart_recovery.models import RecoveryCart

from .app_host import APP_ID, APP_TOKEN, checkout_payload, order_payload, saleor_has
from .conftest import START
from .standin_saleor import SigningKey, StandinSaleor

TOKEN = str(uuid4())
ORDER = str(uuid4())


def _payload(event: str) -> dict:
    if event.startswith("CHECKOUT"):
        return checkout_payload(str(uuid4()), "new@example.com", START)
    if event.startswith("ORDER"):
        return order_payload(ORDER, TOKEN, START, refunded="10", status="CANCELED")
    if event in ("CUSTOMER_DELETED", "ACCOUNT_DELETED"):
        return {"user": {"email": "shopper@example.com"}}
    if event == "APP_STATUS_CHANGED":
        return {"issuedAt": START.isoformat(), "app": {"id": APP_ID, "isActive": False}}
    return {"app": {"id": APP_ID}}


@pytest.fixture
def shop_state(installed, saleor):
    """A cart with an order, which Saleor has since refunded in part and cancelled, so that every
    webhook would change something; returns a snapshot."""
    body = checkout_payload(TOKEN, "shopper@example.com", START)
    _post(installed, saleor, "checkout_updated", json.dumps(body).encode())
    body = order_payload(ORDER, TOKEN, START + timedelta(hours=1))
    order = saleor_has(saleor, body)
    assert _post(installed, saleor, "order_created", json.dumps(body).encode()).status_code == 204
    order["totalRefunded"]["amount"], order["status"] = Decimal(10), "CANCELED"
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


def _signed_with_unknown_key(saleor: StandinSaleor, body: bytes, kid: str) -> dict[str, str]:
    forged = SigningKey()
    forged.kid = kid
    return {"Saleor-Signature": saleor.sign(body, forged)}


def test_an_unknown_key_id_refetches_saleors_keys_once(installed, saleor):
    body = json.dumps(_payload("CHECKOUT_UPDATED")).encode()
    fetched = saleor.jwks_fetches
    # when Saleor rotated its key
    saleor.rotate_key()
    assert _post(installed, saleor, "checkout_updated", body).status_code == 204
    assert saleor.jwks_fetches == fetched + 1
    # and forgers name key ids Saleor does not have, within the refetch interval: refused from the
    # cache, Saleor not asked again
    for kid in ("forged-1", "forged-2", "forged-1"):
        headers = _signed_with_unknown_key(saleor, body, kid)
        assert _post(installed, saleor, "checkout_updated", body, **headers).status_code == 401
    assert saleor.jwks_fetches == fetched + 1
    # and Saleor's own key still verifies, from the cache
    assert _post(installed, saleor, "checkout_updated", body).status_code == 204
    assert saleor.jwks_fetches == fetched + 1


def test_a_flood_of_unknown_key_ids_at_once_costs_saleor_one_fetch(installed, saleor, monkeypatch):
    body = json.dumps(_payload("CHECKOUT_UPDATED")).encode()
    fetched = saleor.jwks_fetches
    saleor.jwks_delay = 0.5  # the requests all arrive while the first fetch is under way
    monkeypatch.setattr(jwks, "REFETCH_INTERVAL", 2.0)

    def forged(index: int) -> int:
        headers = _signed_with_unknown_key(saleor, body, f"forged-{index}")
        return _post(Client(), saleor, "checkout_updated", body, **headers).status_code

    # when 24 requests, each naming a key id of its own, come at once
    with ThreadPoolExecutor(max_workers=24) as pool:
        statuses = list(pool.map(forged, range(24)))
    # then all are refused, and they shared one fetch of Saleor's keys
    assert statuses == [401] * 24
    assert saleor.jwks_fetches == fetched + 1
    # and once the interval has passed, an unknown key id may fetch again, once
    time.sleep(2.1)
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(forged, range(100, 108))) == [401] * 8
    assert saleor.jwks_fetches == fetched + 2


def test_saleors_keys_failing_are_asked_for_once_per_interval(app_client, saleor, monkeypatch):
    body = json.dumps(_payload("CHECKOUT_UPDATED")).encode()
    attempts = []

    def failing(request, body):
        attempts.append(1)
        return 502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>"

    saleor.route("GET", "/.well-known/jwks.json", failing)
    monkeypatch.setattr(jwks, "REFETCH_INTERVAL", 1.0)
    # while Saleor's keys fail, every webhook is answered 503 (Saleor retries), one fetch for all
    for _ in range(5):
        assert _post(app_client, saleor, "checkout_updated", body).status_code == 503
    assert len(attempts) == 1
    # and once they are back and the interval has passed, webhooks verify again
    saleor.route(
        "GET",
        "/.well-known/jwks.json",
        lambda request, body: (
            200,
            {"Content-Type": "application/json"},
            json.dumps({"keys": [saleor.key.jwk()]}).encode(),
        ),
    )
    time.sleep(1.1)
    assert _post(app_client, saleor, "checkout_updated", body).status_code == 410  # verified; not installed


def test_webhooks_answer_503_while_saleors_keys_are_out_of_reach(app_client, saleor):
    body = json.dumps(_payload("CHECKOUT_UPDATED")).encode()
    headers = saleor.webhook_headers("checkout_updated", body)
    saleor.close()
    response = app_client.post(
        "/webhooks/checkout-updated", data=body, content_type="application/json", headers=headers
    )
    assert response.status_code == 503  # Saleor retries later
    assert not RecoveryCart.objects.exists()


@pytest.mark.parametrize(
    "answer", [[], {}, {"keys": "none"}, {"keys": [{"kty": "RSA"}]}, {"keys": [1]}], ids=lambda a: f"{a}_case"
)
def test_a_key_set_that_is_not_one_is_503_not_a_crash(app_client, saleor, answer):
    # given Saleor (or a proxy in front of it) answering JSON that is no key set
    body = json.dumps(_payload("CHECKOUT_UPDATED")).encode()
    headers = saleor.webhook_headers("checkout_updated", body)
    saleor.jwks_body = answer
    # then a webhook is answered 503 (Saleor retries), and nothing is recorded
    response = app_client.post(
        "/webhooks/checkout-updated", data=body, content_type="application/json", headers=headers
    )
    assert response.status_code == 503, response.content[:300]
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
    Caller("another_apps_dashboard_token", 403, 403, lambda s: f"Bearer {_app_token(s, app='QXBwOjk5')}"),
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


@pytest.mark.parametrize(
    ("app", "allowed"), [(APP_ID, True), ("QXBwOjk5", False)], ids=["ours", "another_apps"]
)
def test_only_the_installed_apps_dashboard_token_may_change_settings(installed, saleor, rf, app, allowed):
    # given a Dashboard token of a staff member who holds MANAGE_PLUGINS, made for ``app``
    token = _app_token(saleor, app=app, user_permissions=("MANAGE_CHECKOUTS", "MANAGE_PLUGINS"))
    request = rf.post("/", headers={"Authorization": f"Bearer {token}"})
    # then only a token made for the installed app may change the settings
    assert auth.staff_can_change_settings(request) is allowed


@pytest.mark.parametrize("endpoint", sorted(REQUESTS), ids=lambda name: f"{name}_case")
@pytest.mark.parametrize("caller", CALLERS, ids=lambda caller: f"{caller.name}_case")
def test_every_staff_endpoint_checks_the_caller_with_saleor(installed, saleor, endpoint, caller):
    authorization = caller.authorization(saleor)
    headers = {"Authorization": authorization} if authorization else {}
    response = REQUESTS[endpoint](installed, headers)
    expected = caller.dashboard_status if endpoint == "dashboard" else caller.api_status
    assert response.status_code == expected, response.content[:300]


def test_the_dashboard_says_when_the_app_is_uninstalled(installed, saleor):
    installation.delete(APP_ID)
    response = REQUESTS["dashboard"](installed, {"Authorization": f"Bearer {_app_token(saleor)}"})
    assert response.status_code == 403
    assert b"uninstalled" in response.content


def test_the_dashboard_and_the_api_say_it_in_the_owners_language(installed, saleor):
    # given an app Saleor deleted, and an owner whose Dashboard and API client speak Turkish / German
    assert installation.delete(APP_ID)
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
    installation.delete(APP_ID)
    response = REQUESTS["graphql"](installed, {"Authorization": f"Bearer {saleor.staff()}"})
    assert response.status_code == 200
    assert response.json()["extensions"]["cartRecovery"]["installation"] == "uninstalled"


def test_saleor_is_asked_once_per_token_while_the_answer_is_fresh(installed, saleor):
    headers = {"Authorization": f"Bearer {saleor.staff()}"}
    asked = saleor.graphql_requests
    for _ in range(3):
        assert REQUESTS["report"](installed, headers).status_code == 200
    assert saleor.graphql_requests == asked + 1


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_answers_cache_keeps_the_tokens_used_last_and_no_more():
    answers = AnswerCache(size=3, clock=Clock())
    asked: list[str] = []

    def get(token: str):
        return answers.get(token, lambda: asked.append(token) or token)

    # when more tokens come than it holds, one used again meanwhile
    for token in ("a", "b", "c", "a", "d", "e"):
        get(token)
    # then it holds its size, the least recently used went first, the one used again stayed
    assert len(answers) == 3
    asked.clear()
    assert [get(token) for token in ("a", "d", "e", "b", "c")] == ["a", "d", "e", "b", "c"]
    assert asked == ["b", "c"]
    # and however many tokens a flood brings, it never grows past its size
    for index in range(10_000):
        get(f"flood-{index}")
    assert len(answers) == 3


def test_an_answer_is_never_kept_past_its_tokens_expiry():
    clock = Clock()
    answers = AnswerCache(clock=clock)
    asked: list[int] = []

    def get(expires_at=None):
        return answers.get("token", lambda: asked.append(1) or len(asked), expires_at=expires_at)

    # a token expiring in 5 seconds: answered from the cache until then, asked again after
    assert get(clock.now + 5) == 1
    clock.now += 4
    assert get(clock.now + 1) == 1
    clock.now += 2
    assert get(clock.now - 1) == 2  # expired: not from the cache (the caller refuses it anyway)
    # an app token (no expiry) is kept CACHE_SECONDS
    answers.clear()
    asked.clear()
    get()
    clock.now += auth.CACHE_SECONDS - 1
    get()
    clock.now += 2
    get()
    assert len(asked) == 2
