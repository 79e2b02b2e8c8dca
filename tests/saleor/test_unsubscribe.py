"""The unsubscribe link from a real reminder, through Saleor's plugin URL and middleware."""

from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.signing import b64_decode, dumps
from saleor.plugins.manager import get_plugins_manager

from saleor_cart_recovery.models import CartStatus, RecoveryCart, RecoveryMessage, Suppression
from saleor_cart_recovery.saleor_host.shop import PLUGIN_ID

from .utils import CONFIGURATION, DAY, HOUR, T0, dispatch_at

BASE = "/plugins/channel/main/saleor_cart_recovery/"
ANY_CHANNEL = "/plugins/saleor_cart_recovery/"
PATHS = (BASE, ANY_CHANNEL)


@pytest.fixture
def unsubscribe_path(abandoned_cart, run_dispatch):
    """The path of the List-Unsubscribe link of the first reminder the shopper received."""
    dispatch_at(run_dispatch, T0 + HOUR)
    [email] = mail.outbox
    url = email.extra_headers["List-Unsubscribe"].strip("<>")
    return urlsplit(url).path


def test_the_link_shows_a_confirmation_page_and_changes_nothing(client, unsubscribe_path):
    # when the shopper (or a link scanner) opens the link
    response = client.get(unsubscribe_path)

    # then a confirmation page with a form is shown and nothing is recorded yet
    page = response.content.decode()
    assert response.status_code == 200
    assert "Unsubscribe from cart reminders?" in page
    assert "shopper@example.com" in page
    assert '<form method="post">' in page
    assert response["Cache-Control"] == "no-store"
    assert not Suppression.objects.exists()
    assert RecoveryCart.objects.get().status == CartStatus.ACTIVE


def test_confirming_records_the_suppression_and_stops_the_series(client, unsubscribe_path, run_dispatch):
    # when the shopper confirms
    response = client.post(unsubscribe_path)

    # then the page says so, the address is suppressed in channel "main" and the cart is stopped
    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    suppression = Suppression.objects.get()
    assert (suppression.channel_slug, suppression.email, suppression.source) == (
        "main",
        "shopper@example.com",
        "link",
    )
    cart = RecoveryCart.objects.get()
    assert (cart.status, cart.stop_reason, cart.next_due_at) == (CartStatus.STOPPED, "unsubscribed", None)

    # and no further reminder goes out
    dispatch_at(run_dispatch, T0 + 5 * DAY)
    assert len(mail.outbox) == 1
    assert list(RecoveryMessage.objects.values_list("step", flat=True)) == [1]


def test_one_click_unsubscribe_from_the_mail_client(client, unsubscribe_path):
    # when the mail client POSTs the RFC 8058 body, twice
    for _ in range(2):
        response = client.post(unsubscribe_path, {"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200

    # then one suppression is recorded, marked as one-click
    assert list(Suppression.objects.values_list("email", "source")) == [("shopper@example.com", "one_click")]


def test_a_garbled_or_forged_token_is_rejected(client, unsubscribe_path, abandoned_cart):
    token = unsubscribe_path.rsplit("/", 1)[1]
    garbled = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    forged = dumps(
        ["main", "shopper@example.com", abandoned_cart], salt="saleor_cart_recovery.unsubscribe", key="guess"
    )

    # when someone posts a damaged or self-made token
    responses = [client.post(f"{path}unsubscribe/{bad}") for bad in (garbled, forged, "x") for path in PATHS]

    # then each gets 400 with an explanation, on both paths, and nobody is unsubscribed
    assert [r.status_code for r in responses] == [400] * 6
    assert "This link is not valid" in responses[0].content.decode()
    assert not Suppression.objects.exists()
    assert RecoveryCart.objects.get().status == CartStatus.ACTIVE


def test_a_token_used_in_another_channel_is_rejected(client, unsubscribe_path, channel_PLN):
    # given the plugin is active in a second channel too
    manager = get_plugins_manager(allow_replica=False)
    configuration = [{"name": k, "value": v} for k, v in CONFIGURATION.items()]
    manager.save_plugin_configuration(
        PLUGIN_ID, channel_PLN.slug, {"active": True, "configuration": configuration}
    )

    # when main's link is used under the other channel's path
    token = unsubscribe_path.rsplit("/", 1)[1]
    response = client.post(f"/plugins/channel/{channel_PLN.slug}/saleor_cart_recovery/unsubscribe/{token}")

    # then it is refused
    assert response.status_code == 400
    assert not Suppression.objects.exists()


def test_unknown_paths_and_methods(client, unsubscribe_path):
    # then an unknown endpoint is 404, a missing token 404, and other methods 405
    assert client.get(f"{BASE}subscribe/abc").status_code == 404
    assert client.get(f"{BASE}unsubscribe/").status_code == 404
    assert client.get(BASE).status_code == 404
    response = client.put(unsubscribe_path)
    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"


def test_the_link_works_while_the_plugin_is_off_and_lasts_after_it_is_on_again(
    client, unsubscribe_path, enable_cart_recovery, run_dispatch
):
    # given the owner switched the plugin off after the first reminder
    enable_cart_recovery(active=False)
    assert client.get(f"{BASE}report").status_code == 404  # Saleor serves nothing per channel now

    # when the shopper opens and confirms the link from the email
    page = client.get(unsubscribe_path)
    done = client.post(unsubscribe_path)

    # then both answer, and the address is suppressed in the email's channel
    assert (page.status_code, done.status_code) == (200, 200)
    assert "shopper@example.com" in page.content.decode()
    assert Suppression.objects.filter(channel_slug="main", email="shopper@example.com").exists()

    # and after the plugin is switched on again the shopper gets nothing more, even on new activity
    enable_cart_recovery(active=True)
    dispatch_at(run_dispatch, T0 + 5 * DAY)
    assert len(mail.outbox) == 1


def test_the_channel_less_path_serves_nothing_but_unsubscribe_links(client, cart_recovery):
    for path in ("report", "graphql", "click/abc", "dashboard/x"):
        assert client.get(f"{ANY_CHANNEL}{path}").status_code == 404
        assert client.post(f"{ANY_CHANNEL}{path}").status_code == 404


def test_the_link_carries_no_address_or_checkout_token(unsubscribe_path, abandoned_cart):
    token = unsubscribe_path.rsplit("/", 1)[1]
    readable = "".join(b64_decode(part.encode()).decode("latin-1") for part in token.split(":") if part)
    assert "shopper" not in readable + token and abandoned_cart not in readable + token
