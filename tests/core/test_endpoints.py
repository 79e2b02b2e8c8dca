import pytest
from django.core import signing

from saleor_cart_recovery.models import RecoveryCart, Suppression
from saleor_cart_recovery.tokens import UnsubscribeClaim, read_unsubscribe_token, unsubscribe_token

BASE = "/plugins/channel/main/saleor_cart_recovery"


@pytest.fixture
def token(abandoned_cart):
    return unsubscribe_token(UnsubscribeClaim("main", abandoned_cart.email, abandoned_cart.token))


def forged_tokens(good: str) -> dict[str, str]:
    """Every way a credential in a link can be wrong; each endpoint must answer 4xx to all."""
    return {
        "garbage": "not-a-token",
        "empty_signature": good.rsplit(":", 1)[0] + ":",
        "flipped_signature": good[:-1] + ("A" if good[-1] != "A" else "B"),
        "other_key": signing.dumps(
            ["main", "a@example.com", "t"], key="attacker", salt="saleor_cart_recovery.unsubscribe"
        ),
        "other_salt": signing.dumps(["main", "a@example.com", "t"], salt="elsewhere"),
        "wrong_shape": signing.dumps({"email": "a@example.com"}, salt="saleor_cart_recovery.unsubscribe"),
        "other_channel": unsubscribe_token(UnsubscribeClaim("other", "a@example.com", "t")),
    }


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize(
    "case",
    [
        "garbage",
        "empty_signature",
        "flipped_signature",
        "other_key",
        "other_salt",
        "wrong_shape",
        "other_channel",
    ],
)
def test_bad_tokens_get_400_and_change_nothing(client, token, method, case):
    response = getattr(client, method)(f"{BASE}/unsubscribe/{forged_tokens(token)[case]}")
    assert response.status_code == 400
    assert "not valid" in response.content.decode()
    assert not Suppression.objects.exists()
    assert RecoveryCart.objects.get().status == "active"


def test_get_only_asks_for_confirmation(client, token):
    response = client.get(f"{BASE}/unsubscribe/{token}")
    assert response.status_code == 200
    assert (
        "shopper@example.com" in response.content.decode()
        and "<form method='post'>" in response.content.decode()
    )
    assert not Suppression.objects.exists()


def test_one_click_post_unsubscribes_and_stops_the_series(client, token):
    response = client.post(f"{BASE}/unsubscribe/{token}", {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    suppression = Suppression.objects.get()
    assert (suppression.channel_slug, suppression.email, suppression.source) == (
        "main",
        "shopper@example.com",
        "one_click",
    )
    cart = RecoveryCart.objects.get()
    assert (cart.status, cart.stop_reason, cart.next_due_at) == ("stopped", "unsubscribed", None)


def test_unsubscribing_twice_is_harmless(client, token):
    for _ in range(2):
        assert client.post(f"{BASE}/unsubscribe/{token}").status_code == 200
    assert Suppression.objects.get().source == "link"


@pytest.mark.parametrize("path", ["", "unsubscribe", "unsubscribe/", "nope/abc", "unsubscribe/a/b"])
def test_unknown_paths_are_404(client, db, path):
    assert client.get(f"{BASE}/{path}").status_code == 404


def test_other_methods_are_405(client, token):
    response = client.put(f"{BASE}/unsubscribe/{token}")
    assert response.status_code == 405 and response["Allow"] == "GET, POST"


def test_token_round_trip():
    claim = UnsubscribeClaim("main", "a@example.com", "tok")
    assert read_unsubscribe_token(unsubscribe_token(claim)) == claim
