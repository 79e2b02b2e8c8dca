import pytest
from django.core import signing

from saleor_cart_recovery.email.tokens import (
    PREVIEW_TOKEN,
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
# Saleor's channel-less plugin path: routed whether or not the plugin is active anywhere.
ANY_CHANNEL = "/plugins/saleor_cart_recovery"


def legacy_token(channel: str, email: str, checkout_token: str) -> str:
    """An unsubscribe token as earlier versions put them in emails (still honoured)."""
    return signing.dumps(
        [channel, email, checkout_token], salt="saleor_cart_recovery.unsubscribe", compress=True
    )


@pytest.fixture
def reminder(abandoned_cart):
    cart = RecoveryCart.objects.get()
    return RecoveryMessage.objects.create(
        cart=cart,
        step=1,
        status="sent",
        recipient=abandoned_cart.email,
        planned_at=START,
        updated_at=START,
        sent_at=START,
    )


@pytest.fixture
def token(reminder):
    return unsubscribe_token(reminder.id)


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
        "other_channel": legacy_token("other", "a@example.com", "t"),
        "unknown_message": unsubscribe_token(10**9),
        "not_a_message_id": signing.dumps(-3, salt="saleor_cart_recovery.unsubscribe"),
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
        "unknown_message",
        "not_a_message_id",
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
        and '<form method="post">' in response.content.decode()
    )
    assert not Suppression.objects.exists()


def test_the_pages_speak_the_carts_language_and_say_so(client, channel, recovery_settings):
    # given a shopper whose checkout is Turkish, on an English browser
    checkout = make_checkout(channel, email="ayse@example.com", language="tr-TR")
    touch(checkout, START, recovery_settings)
    message = RecoveryMessage.objects.create(
        cart=RecoveryCart.objects.get(checkout_token=checkout.token),
        step=1,
        status="sent",
        recipient=checkout.email,
        planned_at=START,
        updated_at=START,
        sent_at=START,
    )
    link = f"{BASE}/unsubscribe/{unsubscribe_token(message.id)}"
    # when the shopper opens the link and confirms
    page = client.get(link, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    done = client.post(link, HTTP_ACCEPT_LANGUAGE="en-US").content.decode()
    # then both pages are Turkish and the document says it is
    assert '<html lang="tr">' in page and "Sepet hatırlatmalarından çıkılsın mı?" in page
    assert "ayse@example.com adresine sepet hatırlatması göndermeyi bırakacağız." in page
    assert '<html lang="tr">' in done and "Abonelikten çıktınız" in done


@pytest.mark.parametrize(
    ("cart_language", "accept_language", "lang", "title"),
    [
        ("fr", "fr-FR,tr;q=0.8,en;q=0.5", "tr", "Sepet hatırlatmalarından çıkılsın mı?"),
        ("", "de-AT,de;q=0.9", "de", "Von Warenkorb-Erinnerungen abmelden?"),
        ("pt-BR", "pt-BR,pt;q=0.9", "en", "Unsubscribe from cart reminders?"),
    ],
    ids=["unknown_language_case", "no_language_case", "nothing_we_speak_case"],
)
def test_without_a_cart_language_we_have_the_browsers_decides(
    client, reminder, cart_language, accept_language, lang, title
):
    RecoveryCart.objects.update(language_code=cart_language)
    page = client.get(
        f"{BASE}/unsubscribe/{unsubscribe_token(reminder.id)}", HTTP_ACCEPT_LANGUAGE=accept_language
    ).content.decode()
    assert f'<html lang="{lang}">' in page and title in page


def test_a_link_that_names_no_one_speaks_the_browsers_language(client, token):
    # a forged link, and the sample link of a test email, in a Turkish browser that prefers French
    turkish = "fr-FR,fr;q=0.9,tr;q=0.8"
    invalid = client.get(f"{BASE}/unsubscribe/not-a-token", HTTP_ACCEPT_LANGUAGE=turkish)
    sample = client.get(f"{BASE}/unsubscribe/{PREVIEW_TOKEN}", HTTP_ACCEPT_LANGUAGE=turkish)
    assert invalid.status_code == 400
    assert (
        '<html lang="tr">' in invalid.content.decode()
        and "Bu bağlantı geçerli değil" in invalid.content.decode()
    )
    assert '<html lang="tr">' in sample.content.decode() and "Bu bir örnek e-posta" in sample.content.decode()


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


def test_token_round_trip_and_legacy_tokens_still_read():
    assert read_unsubscribe_token(unsubscribe_token(42)) == UnsubscribeClaim(message_id=42)
    assert read_unsubscribe_token(legacy_token("main", "a@example.com", "tok")) == UnsubscribeClaim(
        channel_slug="main", email="a@example.com", checkout_token="tok"
    )


def test_unsubscribe_token_is_opaque(token, abandoned_cart):
    # nothing personal is readable in the URL: neither the address nor the checkout token
    readable = "".join(
        signing.b64_decode(part.encode()).decode("latin-1") for part in token.split(":") if part
    )
    assert abandoned_cart.email not in readable + token
    assert str(abandoned_cart.token) not in readable + token


def test_a_link_from_an_earlier_version_still_unsubscribes(client, abandoned_cart):
    old = legacy_token("main", abandoned_cart.email, str(abandoned_cart.token))
    assert client.post(f"{BASE}/unsubscribe/{old}").status_code == 200
    assert Suppression.objects.get().email == abandoned_cart.email


def test_unsubscribe_works_while_the_plugin_is_switched_off(client, token, abandoned_cart):
    # given the owner switched the plugin off in the channel
    ShopChannel.objects.filter(slug="main").update(active=False)
    # when the shopper follows the link from the email (it uses the channel-less path)
    page = client.get(f"{ANY_CHANNEL}/unsubscribe/{token}")
    done = client.post(f"{ANY_CHANNEL}/unsubscribe/{token}", {"List-Unsubscribe": "One-Click"})
    # then the confirmation shows and the address is suppressed in the message's channel
    assert page.status_code == 200 and abandoned_cart.email in page.content.decode()
    assert done.status_code == 200
    assert Suppression.objects.filter(channel_slug="main", email=abandoned_cart.email).exists()
    # and it stays suppressed when the plugin is switched on again (the table outlives the switch)
    ShopChannel.objects.filter(slug="main").update(active=True)
    assert RecoveryCart.objects.get().stop_reason == "unsubscribed"


@pytest.mark.parametrize("path", ["report", "graphql", "click/abc"], ids=lambda p: f"{p}_case")
def test_the_channel_less_path_serves_only_unsubscribe_links(client, db, path):
    assert client.get(f"{ANY_CHANNEL}/{path}").status_code == 404
    assert client.post(f"{ANY_CHANNEL}/{path}").status_code == 404


def test_click_token_round_trip():
    assert read_click_token(click_token(ClickClaim(7, "cart"))) == ClickClaim(7, "cart")


def forged_click_tokens(good: str, message: RecoveryMessage, other_channel_message: RecoveryMessage) -> dict:
    """Every way a tracked link can be wrong; none may count a click or lead anywhere."""
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
        "unknown_target",
        "product_path_escape",
        "id_as_text",
        "unknown_message",
        "other_channel",
    ],
)
def test_bad_click_tokens_get_400_and_count_nothing(client, reminder, recovery_settings, method, case):
    other = ShopChannel.objects.create(slug="other", configuration=[])
    other_checkout = make_checkout(other, email="else@example.com")
    touch(other_checkout, START, recovery_settings)
    other_message = RecoveryMessage.objects.create(
        cart=RecoveryCart.objects.get(channel_slug="other"), step=1, planned_at=START, updated_at=START
    )
    good = click_token(ClickClaim(reminder.id, "cart"))
    forged = forged_click_tokens(good, reminder, other_message)[case]
    response = getattr(client, method)(f"{BASE}/click/{forged}")
    assert response.status_code == 400
    assert "Location" not in response and "shop.example.com" not in response.content.decode()
    assert list(RecoveryMessage.objects.values_list("clicks", flat=True)) == [0, 0]


# What a valid tracked link does (page, beacon, prefetches, a real browser): test_clicks.py.
