"""The mail provider's later reports through Saleor's real plugin URL (the channel-less
``/plugins/saleor_cart_recovery/esp/<provider>/tracking/``), for a reminder the series really sent
from a cart made with checkoutCreate; and the ``{checkout_id}`` link resolving through Saleor's own
``checkout(id:)`` query."""

import json
import re
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.core.management import call_command
from freezegun import freeze_time
from saleor.core.jwt import create_access_token
from saleor.graphql.tests.utils import get_graphql_content

from saleor_cart_recovery.models import ProviderEvent, RecoveryCart, RecoveryMessage, Suppression
from tests.provider_payloads import ECHO_MESSAGE_ID, SECRET, SIGNING_KEYS, SUPPORTED, Sent, post

from .utils import CONFIGURATION, DAY, HOUR, T0, dispatch_at

URL = "/plugins/saleor_cart_recovery/esp/{}/tracking/"
API = "/plugins/channel/main/saleor_cart_recovery/graphql"
CASES = [(provider, kind) for provider, kinds in SUPPORTED.items() for kind in kinds]
SUPPRESSES = {"bounce": "bounced", "complaint": "complained", "unsubscribe": "unsubscribed"}
STORED = {
    "bounce": "bounced",
    "soft_bounce": "soft_bounced",
    "complaint": "complained",
    "unsubscribe": "unsubscribed",
    "delivery": "delivered",
}


@pytest.fixture
def reminded(enable_cart_recovery, abandoned_cart, run_dispatch):
    """Step 1 of a real cart sent; the channel takes provider events (``configure(provider)``
    sets the secret, and Mailgun's signing key for Mailgun). Returns (token, message, configure)."""

    def configure(provider: str = "postmark", **values):
        key = SIGNING_KEYS.get(provider, "")
        enable_cart_recovery(esp_provider=provider, esp_webhook_secret=SECRET, esp_signing_key=key, **values)

    configure()
    dispatch_at(run_dispatch, T0 + HOUR)
    assert len(mail.outbox) == 1
    return abandoned_cart, RecoveryMessage.objects.get(), configure


def sent_of(message, event_id="event-1") -> Sent:
    return Sent(message.recipient, message.message_id, message.provider_message_id or "none", event_id)


@pytest.mark.parametrize(("provider", "kind"), CASES, ids=[f"{p}_{k}_case" for p, k in CASES])
def test_each_provider_event_through_saleor(client, reminded, provider, kind):
    token, message, configure = reminded
    configure(provider)
    # the reminder as the shopper's server got it carries the Message-ID the row keeps
    assert mail.outbox[0].extra_headers["Message-ID"] == message.message_id
    assert message.message_id.endswith("@example.com>")

    # when the provider posts its event to Saleor's plugin URL
    response = post(client, URL.format(provider), provider, kind, sent_of(message))

    # then it is recorded for the reminder; when the provider names only its own id (Saleor's email
    # backend gives none) a bounce, complaint or unsubscribe applies by address, the rest is ignored
    assert response.status_code == 200, response.content
    reason = SUPPRESSES.get(kind)
    if provider in ECHO_MESSAGE_ID or reason:
        [event] = ProviderEvent.objects.all()
        assert (event.kind, event.provider, event.channel_slug) == (STORED[kind], provider, "main")
        assert event.message_id == (message.pk if provider in ECHO_MESSAGE_ID else None)
    else:
        assert not ProviderEvent.objects.exists()
    # and a bounce, complaint or unsubscribe suppresses the address with the provider as source
    expected = [("main", "shopper@example.com", f"{reason}:{provider}")] if reason else []
    assert list(Suppression.objects.values_list("channel_slug", "email", "source")) == expected
    cart = RecoveryCart.objects.get(checkout_token=token)
    assert (cart.status, cart.stop_reason) == (("stopped", reason) if reason else ("active", ""))


@pytest.mark.parametrize(
    ("provider", "options", "status"),
    [
        ("amazon_ses", {"secret": None}, 401),
        ("amazon_ses", {"secret": "events:wrong-secret-000000"}, 403),
        ("postmark", {"secret": "events:wrong-secret-000000"}, 403),
        ("sendgrid", {"secret": "other:0f3c9a7d2b51e8a4c6"}, 403),
        ("mailgun", {"signing_key": "key-forged"}, 403),
    ],
    ids=[
        "ses_no_auth_case",
        "ses_wrong_case",
        "postmark_wrong_case",
        "sendgrid_wrong_case",
        "mailgun_forged_case",
    ],
)
def test_wrong_credentials_are_refused_and_change_nothing(client, reminded, provider, options, status):
    _, message, configure = reminded
    configure(provider)
    response = post(client, URL.format(provider), provider, "complaint", sent_of(message), **options)
    assert response.status_code == status
    assert not ProviderEvent.objects.exists() and not Suppression.objects.exists()
    assert RecoveryCart.objects.get().status == "active"


def test_a_replayed_bounce_counts_once_and_no_later_step_goes_out(client, reminded, run_dispatch):
    _, message, configure = reminded
    configure("amazon_ses")
    responses = [
        post(client, URL.format("amazon_ses"), "amazon_ses", "bounce", sent_of(message)) for _ in "abc"
    ]
    assert [r.json()["recorded"] for r in responses] == [1, 0, 0]
    assert ProviderEvent.objects.count() == 1
    # the series is stopped: steps 2 and 3 never go out
    dispatch_at(run_dispatch, T0 + 5 * DAY)
    assert len(mail.outbox) == 1
    assert list(RecoveryMessage.objects.values_list("step", flat=True)) == [1]


def test_the_api_and_the_report_show_what_sendgrid_reported(
    client, reminded, staff_user, permission_manage_checkouts
):
    token, message, configure = reminded
    configure("sendgrid")
    post(client, URL.format("sendgrid"), "sendgrid", "delivery", sent_of(message, "d-1"))
    post(client, URL.format("sendgrid"), "sendgrid", "bounce", sent_of(message, "b-1"))

    staff_user.user_permissions.add(permission_manage_checkouts)
    query = """query ($email: String!) {
      suppression(email: $email) { reason source reportedBy } deliverability
    }"""
    with freeze_time(T0 + DAY):
        response = client.post(
            API,
            data=json.dumps({"query": query, "variables": {"email": "shopper@example.com"}}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {create_access_token(staff_user)}",
        )
        out = StringIO()
        call_command("cart_recovery_report", "--channel", "main", "--fresh", stdout=out, stderr=StringIO())
    data = response.json()["data"]
    assert data["suppression"] == {"reason": "bounced", "source": "sendgrid", "reportedBy": "SendGrid"}
    rates = json.loads(data["deliverability"])
    assert (rates["7d"]["sent"], rates["7d"]["delivered"], rates["7d"]["bounced"]) == (1, 1, 1)
    assert (
        "deliverability, last 7 days: 1 sent, 1 delivered (reported), bounce rate 100.0 % (1)"
        in out.getvalue()
    )


def test_a_checkout_id_link_restores_the_same_checkout_through_saleor(
    client, api_client, update_plugin, reminded, run_dispatch
):
    token, _, _ = reminded
    # the owner saves a link for Saleor's reference storefront; a placeholder of another name is refused
    link = "https://shop.example.com/checkout?checkout={checkout_id}"
    good = {**CONFIGURATION, "storefront_url": link}
    refused = update_plugin({**good, "storefront_url": "https://shop.example.com/checkout?checkout={id}"})
    assert [error["field"] for error in refused["errors"]] == ["storefrontUrl"]
    assert update_plugin(good)["errors"] == []

    # when step 2 goes out and the shopper follows its link
    dispatch_at(run_dispatch, T0 + DAY)
    [tracked] = re.findall(r"https?://\S+/click/\S+", mail.outbox[-1].body)
    page = client.get(urlsplit(tracked).path).content.decode()
    [target] = re.findall(r'id="go" href="([^"]+)"', page)
    assert target.startswith("https://shop.example.com/checkout?checkout=")

    # then the storefront's checkout(id:) query finds the shopper's checkout
    [checkout_id] = parse_qs(urlsplit(target.replace("&amp;", "&")).query)["checkout"]
    query = "query ($id: ID!) { checkout(id: $id) { token email } }"
    found = get_graphql_content(api_client.post_graphql(query, {"id": checkout_id}))["data"]["checkout"]
    assert found == {"token": token, "email": "shopper@example.com"}


def test_a_signed_channel_takes_nothing_through_another_providers_path(client, reminded):
    _, message, configure = reminded
    configure("mailgun")  # the secret and Mailgun's signing key
    response = post(client, URL.format("postmark"), "postmark", "complaint", sent_of(message))
    assert response.status_code == 403  # the secret alone, unsigned: not on Mailgun's path
    assert not ProviderEvent.objects.exists() and not Suppression.objects.exists()
