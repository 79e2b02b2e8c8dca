"""The unsubscribe link from a real reminder, through Saleor's plugin URL and middleware."""

from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.signing import dumps
from saleor.plugins.manager import get_plugins_manager

from saleor_cart_recovery.models import CartStatus, RecoveryCart, RecoveryMessage, Suppression
from saleor_cart_recovery.saleor_host.shop import PLUGIN_ID

from .utils import CONFIGURATION, DAY, HOUR, T0, dispatch_at

BASE = "/plugins/channel/main/saleor_cart_recovery/"


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
    assert "<form method='post'>" in page
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
    responses = [client.post(f"{BASE}unsubscribe/{bad}") for bad in (garbled, forged, "x")]

    # then each gets 400 with an explanation, and nobody is unsubscribed
    assert [r.status_code for r in responses] == [400, 400, 400]
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

    # when main's link is used under the other channel
    path = unsubscribe_path.replace("/channel/main/", f"/channel/{channel_PLN.slug}/")
    response = client.post(path)

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
