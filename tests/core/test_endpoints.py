from datetime import timedelta

import pytest
from django.core import signing
from freezegun import freeze_time

from saleor_cart_recovery.email.tokens import (
    ClickClaim,
    UnsubscribeClaim,
    click_token,
    read_click_token,
    read_unsubscribe_token,
    unsubscribe_token,
)
from saleor_cart_recovery.models import RecoveryCart, RecoveryMessage, Suppression
from tests.shopapp.models import ShopChannel

from .conftest import START, make_checkout, touch

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


@pytest.mark.parametrize(
    "path", ["", "unsubscribe", "unsubscribe/", "nope/abc", "unsubscribe/a/b", "click", "click/"]
)
def test_unknown_paths_are_404(client, db, path):
    assert client.get(f"{BASE}/{path}").status_code == 404


def test_other_methods_are_405(client, token):
    response = client.put(f"{BASE}/unsubscribe/{token}")
    assert response.status_code == 405 and response["Allow"] == "GET, POST"


def test_token_round_trip():
    claim = UnsubscribeClaim("main", "a@example.com", "tok")
    assert read_unsubscribe_token(unsubscribe_token(claim)) == claim


def test_click_token_round_trip():
    assert read_click_token(click_token(ClickClaim(7, "cart"))) == ClickClaim(7, "cart")


@pytest.fixture
def sent_message(abandoned_cart):
    cart = RecoveryCart.objects.get()
    return RecoveryMessage.objects.create(
        cart=cart, step=1, status="sent", planned_at=START, updated_at=START, sent_at=START
    )


def forged_click_tokens(good: str, message: RecoveryMessage, other_channel_message: RecoveryMessage) -> dict:
    """Every way a tracked link can be wrong; none may count a click or redirect anywhere."""
    salt = "saleor_cart_recovery.click"
    return {
        **{name: token for name, token in forged_tokens(good).items() if name != "other_channel"},
        "other_key": signing.dumps([message.id, "cart"], key="attacker", salt=salt),
        "other_salt": signing.dumps([message.id, "cart"], salt="saleor_cart_recovery.unsubscribe"),
        "wrong_shape": signing.dumps({"message": message.id}, salt=salt),
        "unknown_target": signing.dumps([message.id, "https://evil.example"], salt=salt),
        "product_path_escape": signing.dumps([message.id, "product:../../evil"], salt=salt),
        "id_as_text": signing.dumps([str(message.id), "cart"], salt=salt),
        "unknown_message": click_token(ClickClaim(message.id + 1000, "cart")),
        "other_channel": click_token(ClickClaim(other_channel_message.id, "cart")),
    }


@pytest.mark.parametrize(
    "case",
    [
        "garbage",
        "empty_signature",
        "flipped_signature",
        "other_key",
        "other_salt",
        "wrong_shape",
        "unknown_target",
        "product_path_escape",
        "id_as_text",
        "unknown_message",
        "other_channel",
    ],
)
def test_bad_click_tokens_get_400_and_count_nothing(client, sent_message, recovery_settings, case):
    other = ShopChannel.objects.create(slug="other", configuration=[])
    other_checkout = make_checkout(other, email="else@example.com")
    touch(other_checkout, START, recovery_settings)
    other_message = RecoveryMessage.objects.create(
        cart=RecoveryCart.objects.get(channel_slug="other"), step=1, planned_at=START, updated_at=START
    )
    good = click_token(ClickClaim(sent_message.id, "cart"))
    response = client.get(f"{BASE}/click/{forged_click_tokens(good, sent_message, other_message)[case]}")
    assert response.status_code == 400
    assert "Location" not in response
    assert list(RecoveryMessage.objects.values_list("clicks", flat=True)) == [0, 0]


def test_click_is_counted_and_redirects_to_the_cart_only(client, sent_message, abandoned_cart):
    token = click_token(ClickClaim(sent_message.id, "cart"))
    with freeze_time(START + timedelta(hours=2)):
        first = client.get(f"{BASE}/click/{token}?next=https://evil.example/")
    with freeze_time(START + timedelta(hours=3)):
        second = client.get(f"{BASE}/click/{token}")
    for response in (first, second):
        assert response.status_code == 302
        assert response["Location"] == f"https://shop.example.com/cart/{abandoned_cart.token}"
    sent_message.refresh_from_db()
    assert (sent_message.clicks, sent_message.first_clicked_at) == (2, START + timedelta(hours=2))


def test_click_on_a_coupon_email_keeps_the_coupon_in_the_link(client, sent_message, abandoned_cart):
    RecoveryMessage.objects.filter(pk=sent_message.pk).update(voucher_code="CR-ABC123")
    response = client.get(f"{BASE}/click/{click_token(ClickClaim(sent_message.id, 'cart'))}")
    assert response["Location"] == f"https://shop.example.com/cart/{abandoned_cart.token}?coupon=CR-ABC123"


def test_upsell_click_is_counted_and_leads_to_the_product_page(client, sent_message, channel):
    channel.configuration = [
        *channel.configuration,
        {"name": "upsell_product_url", "value": "https://shop.example.com/products/{slug}"},
    ]
    channel.save()
    response = client.get(f"{BASE}/click/{click_token(ClickClaim(sent_message.id, 'product:wool-socks'))}")
    assert (response.status_code, response["Location"]) == (
        302,
        "https://shop.example.com/products/wool-socks",
    )
    sent_message.refresh_from_db()
    assert sent_message.clicks == 1


def test_upsell_click_without_product_pages_leads_to_the_cart(client, sent_message, abandoned_cart):
    response = client.get(f"{BASE}/click/{click_token(ClickClaim(sent_message.id, 'product:wool-socks'))}")
    assert response["Location"] == f"https://shop.example.com/cart/{abandoned_cart.token}"


def test_click_endpoint_allows_only_get(client, sent_message):
    response = client.post(f"{BASE}/click/{click_token(ClickClaim(sent_message.id, 'cart'))}")
    assert response.status_code == 405 and response["Allow"] == "GET"
