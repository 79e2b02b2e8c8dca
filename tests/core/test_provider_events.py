"""The mail provider's later reports: each provider's documented event shapes posted to
``esp/<provider>/tracking/`` (tests/provider_payloads.py), what they do to the address, the story,
the API and the rates; refused requests change nothing; a replay counts once. Reminders go to a
loopback SMTP server that answers DATA the way Amazon SES's relay does (``250 Ok <id>``)."""

import email
import hashlib
import hmac
import itertools
import json
import threading
from datetime import timedelta
from html import unescape
from io import StringIO
from uuid import uuid4

import pytest
from aiosmtpd.controller import Controller
from django.core.mail import EmailMessage
from django.core.management import call_command
from django.db import IntegrityError, connection
from django.db.migrations.executor import MigrationExecutor
from freezegun import freeze_time

from saleor_cart_recovery.app.models import ChannelSettings
from saleor_cart_recovery.email.headers import one_off_message_id, our_message_ids, reminder_message_id
from saleor_cart_recovery.email.transport import provider_message_id
from saleor_cart_recovery.exceptions import ConfigurationError
from saleor_cart_recovery.experiments.deliverability import rates as deliverability_rates
from saleor_cart_recovery.http.esp import PROVIDERS
from saleor_cart_recovery.models import ProviderEvent, RecoveryCart, RecoveryMessage, Suppression
from saleor_cart_recovery.series.delivery import deliver
from saleor_cart_recovery.series.dispatch import dispatch
from saleor_cart_recovery.series.provider_events import (
    SOFT_BOUNCE_LIMIT,
    ReportedEvent,
    _record_one,
    record_events,
)
from saleor_cart_recovery.series.retention import cleanup, erase_address
from saleor_cart_recovery.settings.channel import RecoverySettings
from saleor_cart_recovery.settings.formats import ESP_PROVIDERS
from saleor_cart_recovery.shop import settings_or_none
from tests.provider_payloads import MAILGUN_KEY, SECRET, SIGNING_KEYS, SUPPORTED, Sent, basic_auth, post
from tests.shopapp.models import ShopChannel
from tests.shopapp.shop import DbShop

from . import app_host
from .conftest import CONFIGURATION, START, make_checkout, touch, with_smtp
from .realparts import Inbox, free_port
from .test_dashboard import get

URL = "/plugins/saleor_cart_recovery/esp/{}/tracking/"
API = "/plugins/channel/main/saleor_cart_recovery/graphql"
STAFF = {"HTTP_X_TEST_STAFF": "MANAGE_CHECKOUTS"}
DUE = START + timedelta(hours=1)
CASES = [(provider, kind) for provider, kinds in SUPPORTED.items() for kind in kinds]
EFFECT = {  # kind → the suppression reason it leaves (None: none)
    "bounce": "bounced",
    "soft_bounce": None,
    "complaint": "complained",
    "unsubscribe": "unsubscribed",
    "delivery": None,
}
STORED_KIND = {
    "bounce": "bounced",
    "soft_bounce": "soft_bounced",
    "complaint": "complained",
    "unsubscribe": "unsubscribed",
    "delivery": "delivered",
}


class RelayInbox(Inbox):
    """Answers DATA like Amazon SES's SMTP interface: with the id it gave the message."""

    ids = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        await super().handle_DATA(server, session, envelope)
        return f"250 Ok 0100018c-relay-{next(self.ids):06d}-000000"


@pytest.fixture(scope="module")
def relay():
    inbox = RelayInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, inbox
    finally:
        controller.stop()


def webhook_settings(port: int, provider: str = "postmark", secret: str = SECRET) -> list[dict]:
    extra = [{"name": "esp_provider", "value": provider}, {"name": "esp_webhook_secret", "value": secret}]
    if provider in SIGNING_KEYS:
        extra.append({"name": "esp_signing_key", "value": SIGNING_KEYS[provider]})
    return with_smtp(port, CONFIGURATION) + extra


def mail_step(checkout, step_due) -> RecoveryMessage:
    """Plan and send the cart's due step to the relay; the message as recorded."""
    dispatch(now=step_due, send=lambda _: None)
    message = RecoveryMessage.objects.filter(cart__checkout_token=checkout.token).order_by("-step").first()
    with freeze_time(step_due):
        assert deliver(message.id) == "sent"
    message.refresh_from_db()
    return message


def mailed_cart(channel, settings_port, *, email_address="shopper@example.com", provider="postmark"):
    channel.configuration = webhook_settings(settings_port, provider)
    channel.save()
    checkout = make_checkout(channel, email=email_address)
    touch(checkout, START, RecoverySettings.from_plugin_configuration(channel.configuration))
    return checkout, mail_step(checkout, DUE)


def sent_of(message: RecoveryMessage, event_id: str = "event-1") -> Sent:
    return Sent(
        recipient=message.recipient,
        header_id=message.message_id,
        provider_id=message.provider_message_id,
        event_id=event_id,
    )


def graphql(client, query, **variables):
    response = client.post(
        API, json.dumps({"query": query, "variables": variables}), content_type="application/json", **STAFF
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_a_reminder_carries_its_own_message_id_and_feedback_id(channel, relay):
    port, inbox = relay
    inbox.clear()
    _, message = mailed_cart(channel, port)
    [received] = inbox.to("shopper@example.com")
    headers = email.message_from_bytes(received.content)
    assert headers["Message-ID"] == message.message_id
    assert message.message_id.startswith(f"<cart-recovery.{message.pk}.") and message.message_id.endswith(
        "@example.com>"
    )  # the sender's domain (Shop <shop@example.com>), not the server's host name
    assert headers["Feedback-ID"] == "step1:A:cart-recovery:example.com"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # the id the relay answered DATA with is kept: events that name only it still find the message
    assert message.provider_message_id.startswith("0100018c-relay-")


@pytest.mark.parametrize(("provider", "kind"), CASES, ids=[f"{p}_{k}_case" for p, k in CASES])
def test_each_provider_event_is_matched_and_acted_on(client, channel, relay, provider, kind):
    checkout, message = mailed_cart(channel, relay[0], provider=provider)

    response = post(client, URL.format(provider), provider, kind, sent_of(message))

    assert response.status_code == 200, response.content
    assert response.json()["recorded"] == 1
    [event] = ProviderEvent.objects.all()
    assert (event.kind, event.provider, event.channel_slug, event.email, event.message_id) == (
        STORED_KIND[kind],
        provider,
        "main",
        "shopper@example.com",
        message.pk,
    )
    reason = EFFECT[kind]
    suppressed = list(Suppression.objects.values_list("channel_slug", "email", "source"))
    cart = RecoveryCart.objects.get(checkout_token=checkout.token)
    if reason is None:
        assert suppressed == []
        assert cart.status == "active"
    else:
        assert suppressed == [("main", "shopper@example.com", f"{reason}:{provider}")]
        assert (cart.status, cart.stop_reason) == ("stopped", reason)


@pytest.mark.parametrize("provider", sorted(SUPPORTED), ids=lambda p: f"{p}_case")
def test_a_replayed_event_counts_once(client, channel, relay, provider, caplog):
    _, message = mailed_cart(channel, relay[0], provider=provider)
    first = post(client, URL.format(provider), provider, "soft_bounce", sent_of(message))
    with caplog.at_level("ERROR", logger="saleor_cart_recovery"):
        replays = [
            post(client, URL.format(provider), provider, "soft_bounce", sent_of(message)) for _ in range(3)
        ]
    assert caplog.records == []  # known as a replay (the event key's unique violation), not an error
    assert first.json()["recorded"] == 1
    assert [r.json()["recorded"] for r in replays] == [0, 0, 0]
    assert ProviderEvent.objects.count() == 1
    assert not Suppression.objects.exists()  # one soft bounce, however often it is posted


def refused_requests():
    """Every way a request must be refused: (name, provider, kind, post keyword arguments, status)."""
    return [
        ("no_credentials", "postmark", "bounce", {"secret": None}, 401),
        ("wrong_secret", "postmark", "bounce", {"secret": "events:not-the-secret-at-all"}, 403),
        ("wrong_user", "sendgrid", "complaint", {"secret": "other:0f3c9a7d2b51e8a4c6"}, 403),
        ("ses_wrong_secret", "amazon_ses", "complaint", {"secret": "events:0f3c9a7d2b51e8a4c7"}, 403),
        ("mailgun_forged_signature", "mailgun", "bounce", {"signing_key": "key-forged"}, 403),
        ("mailersend_forged_signature", "mailersend", "complaint", {"signing_key": "forged-key"}, 403),
    ]


@pytest.mark.parametrize(
    ("provider", "kind", "options", "status"),
    [case[1:] for case in refused_requests()],
    ids=[f"{case[0]}_case" for case in refused_requests()],
)
def test_refused_requests_change_nothing(client, channel, relay, provider, kind, options, status):
    _, message = mailed_cart(channel, relay[0], provider=provider)
    response = post(client, URL.format(provider), provider, kind, sent_of(message), **options)
    assert response.status_code == status
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Basic ")  # Amazon SNS needs the challenge
    assert not ProviderEvent.objects.exists() and not Suppression.objects.exists()


@pytest.mark.parametrize("path", ["postmark", "sparkpost", "amazon_ses", "sendgrid"])
def test_a_signing_key_cannot_be_bypassed_through_another_providers_path(client, channel, relay, path):
    _, message = mailed_cart(channel, relay[0], provider="mailgun")  # secret + Mailgun's signing key
    forged = Sent(recipient="shopper@example.com", header_id=message.message_id, event_id="forged")
    response = post(client, URL.format(path), path, "complaint", forged)  # the secret alone, no signature
    assert response.status_code == 403
    assert not ProviderEvent.objects.exists() and not Suppression.objects.exists()


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"esp_webhook_secret": SECRET}, "required with a provider webhook secret"),
        ({"esp_provider": "resend", "esp_webhook_secret": SECRET}, "must be one of amazon_ses, brevo"),
        ({"esp_provider": "mailgun", "esp_webhook_secret": SECRET}, "mailgun signs its webhooks"),
        (
            {"esp_provider": "postmark", "esp_webhook_secret": SECRET, "esp_signing_key": "key-1"},
            "postmark does not sign its webhooks",
        ),
    ],
    ids=["no_provider_case", "unknown_provider_case", "mailgun_without_key_case", "key_unsigned_case"],
)
def test_the_provider_setting_ties_the_secret_to_one_provider(values, error):
    configuration = CONFIGURATION + [{"name": name, "value": value} for name, value in values.items()]
    with pytest.raises(ConfigurationError) as raised:
        RecoverySettings.from_plugin_configuration(configuration)
    assert error in raised.value.errors["esp_provider"]


def test_the_webhook_paths_are_the_settings_providers():
    assert set(PROVIDERS) == set(ESP_PROVIDERS)


@pytest.mark.parametrize(
    ("provider", "body", "content_type", "headers", "status"),
    [
        ("postmark", b"{not json", "application/json", {}, 400),
        ("sendgrid", b'{"event": "bounce"}', "application/json", {}, 400),
        ("amazon_ses", b"{not json", "text/plain", {"x-amz-sns-message-type": "Notification"}, 400),
        (
            "amazon_ses",
            json.dumps({"Type": "Notification", "MessageId": "1", "Message": "{"}).encode(),
            "text/plain",
            {"x-amz-sns-message-type": "Notification", "x-amz-sns-message-id": "1"},
            400,
        ),
        ("mailgun", b"{}", "application/json", {}, 403),  # no signature block: not authenticated
        ("resend", b"{}", "application/json", {}, 404),  # not a provider we serve
    ],
    ids=[
        "postmark_garbage_case",
        "sendgrid_not_a_list_case",
        "ses_garbage_case",
        "ses_bad_message_case",
        "mailgun_unsigned_case",
        "unknown_provider_case",
    ],
)
def test_malformed_posts_are_4xx_and_change_nothing(
    client, channel, relay, provider, body, content_type, headers, status
):
    mailed_cart(channel, relay[0], provider=provider if provider in SUPPORTED else "postmark")
    response = client.post(
        URL.format(provider),
        data=body,
        content_type=content_type,
        headers={**headers, "Authorization": basic_auth()},
    )
    assert response.status_code == status, response.content
    assert not ProviderEvent.objects.exists() and not Suppression.objects.exists()


def test_a_channel_without_a_webhook_secret_takes_no_events(client, channel, relay):
    _, message = mailed_cart(channel, relay[0])
    channel.configuration = with_smtp(relay[0], CONFIGURATION)  # the secret removed again
    channel.save()
    response = post(client, URL.format("postmark"), "postmark", "complaint", sent_of(message))
    assert response.status_code == 403
    assert client.get(URL.format("postmark")).status_code == 405
    assert not ProviderEvent.objects.exists() and not Suppression.objects.exists()


@freeze_time(START + timedelta(days=4))  # the events' own times (2 March) are within the period
def test_soft_bounces_suppress_only_when_different_reminders_keep_failing(client, channel, relay):
    checkout, first = mailed_cart(channel, relay[0])
    for n in range(SOFT_BOUNCE_LIMIT + 1):  # the same reminder reported again and again: one soft bounce
        post(client, URL.format("postmark"), "postmark", "soft_bounce", sent_of(first, f"retry-{n}"))
    assert ProviderEvent.objects.count() == SOFT_BOUNCE_LIMIT + 1
    assert not Suppression.objects.exists()
    # later steps to the same address soft-bounce too: the limit counts different reminders
    second = mail_step(checkout, START + timedelta(days=1, hours=1))
    post(client, URL.format("postmark"), "postmark", "soft_bounce", sent_of(second, "step-2"))
    assert not Suppression.objects.exists()
    third = mail_step(checkout, START + timedelta(days=3, hours=1))
    post(client, URL.format("postmark"), "postmark", "soft_bounce", sent_of(third, "step-3"))
    assert list(Suppression.objects.values_list("source", flat=True)) == ["bounced:postmark"]


def test_a_complaint_stops_every_later_step(client, channel, relay):
    port, inbox = relay
    inbox.clear()
    checkout, message = mailed_cart(channel, port, provider="sendgrid")
    other = make_checkout(channel, email="shopper@example.com")  # a second cart of the same shopper
    touch(
        other, START + timedelta(hours=2), RecoverySettings.from_plugin_configuration(channel.configuration)
    )
    assert post(client, URL.format("sendgrid"), "sendgrid", "complaint", sent_of(message)).status_code == 200

    for day in (1, 2, 4, 7):
        at = START + timedelta(days=day, hours=1)
        dispatch(now=at, send=lambda ids, at=at: [deliver(i) for i in ids])
    assert len(inbox.to("shopper@example.com")) == 1  # only the reminder sent before the complaint
    assert set(RecoveryCart.objects.values_list("status", "stop_reason")) == {("stopped", "complained")}


def test_an_event_naming_no_message_applies_where_the_address_was_mailed(client, channel, relay):
    _, message = mailed_cart(channel, relay[0])
    ShopChannel.objects.create(slug="other", configuration=webhook_settings(relay[0]))
    unknown = Sent(recipient="shopper@example.com", provider_id="not-one-of-ours", event_id="e-addr")

    response = post(client, URL.format("postmark"), "postmark", "bounce", unknown)

    assert response.json()["recorded"] == 1
    [event] = ProviderEvent.objects.all()
    assert (event.channel_slug, event.message_id) == ("main", None)  # not mailed in "other"
    assert list(Suppression.objects.values_list("channel_slug", "source")) == [("main", "bounced:postmark")]
    stranger = Sent(recipient="someone@else.example", provider_id="x", event_id="e-stranger")
    response = post(client, URL.format("postmark"), "postmark", "bounce", stranger)
    assert (response.status_code, response.json()["recorded"]) == (200, 0)  # another sender's mail


def test_a_channels_secret_speaks_only_for_that_channel(client, channel, relay):
    _, message = mailed_cart(channel, relay[0], provider="sendgrid")
    other = ShopChannel.objects.create(
        slug="other",
        configuration=webhook_settings(relay[0], "sendgrid", secret="events:another-secret-0123"),
    )
    checkout = make_checkout(other, email="shopper@example.com")
    touch(checkout, START, RecoverySettings.from_plugin_configuration(other.configuration))
    in_other = mail_step(checkout, DUE)
    # main's secret, an event about the message sent in "other": "other" did not send it
    response = post(client, URL.format("sendgrid"), "sendgrid", "bounce", sent_of(in_other))
    assert response.status_code == 200
    assert list(Suppression.objects.values_list("channel_slug", flat=True)) == ["main"]  # by address
    response = post(
        client,
        URL.format("sendgrid"),
        "sendgrid",
        "complaint",
        sent_of(in_other, "e-2"),
        secret="events:another-secret-0123",
    )
    assert set(Suppression.objects.values_list("channel_slug", "source")) == {
        ("main", "bounced:sendgrid"),
        ("other", "complained:sendgrid"),
    }
    assert message.pk != in_other.pk


def test_the_story_the_api_and_the_rates_show_the_reports(client, channel, relay):
    checkout, message = mailed_cart(channel, relay[0])
    post(client, URL.format("postmark"), "postmark", "delivery", sent_of(message, "d-1"))
    post(client, URL.format("postmark"), "postmark", "bounce", sent_of(message, "b-1"))

    with freeze_time(START + timedelta(days=1)):
        data = graphql(
            client,
            """query ($token: String!, $email: String!) {
          cart(checkoutToken: $token) { stopReason messages { messageId providerMessageId
            providerEvents { kind provider reportedBy } } }
          suppression(email: $email) { reason source reportedBy }
          deliverability
        }""",
            token=checkout.token,
            email="shopper@example.com",
        )["data"]
    [step] = data["cart"]["messages"]
    assert data["cart"]["stopReason"] == "bounced"
    assert (
        step["messageId"] == message.message_id and step["providerMessageId"] == message.provider_message_id
    )
    assert step["providerEvents"] == [
        {"kind": "delivered", "provider": "postmark", "reportedBy": "Postmark"},
        {"kind": "bounced", "provider": "postmark", "reportedBy": "Postmark"},
    ]
    assert data["suppression"] == {"reason": "bounced", "source": "postmark", "reportedBy": "Postmark"}
    rates = (
        json.loads(data["deliverability"])
        if isinstance(data["deliverability"], str)
        else data["deliverability"]
    )
    week = rates["7d"]
    assert (week["sent"], week["delivered"], week["bounced"], week["bounce_rate_pct"]) == (1, 1, 1, 100.0)
    assert rates["warnings"] == []  # one reminder says too little to warn about

    story = get(client, "cart", token=checkout.token).content.decode()
    assert "Step 1: bounced (reported by Postmark)" in story
    assert "The address bounced, reported by Postmark; no more reminders in this channel." in story
    turkish = unescape(get(client, "cart", locale="tr-TR", token=checkout.token).content.decode())
    assert "1. adım: geri döndü (Postmark bildirdi)" in turkish
    assert "Adres geri döndü, Postmark bildirdi; bu kanalda başka hatırlatma gönderilmeyecek." in turkish


def test_erasure_and_retention_forget_the_reports(client, channel, relay):
    _, message = mailed_cart(channel, relay[0])
    post(client, URL.format("postmark"), "postmark", "delivery", sent_of(message, "d-1"))
    post(client, URL.format("postmark"), "postmark", "complaint", sent_of(message, "c-1"))
    assert ProviderEvent.objects.count() == 2

    cleanup(START + timedelta(days=364), settings_or_none, DbShop())  # within the 365-day retention
    assert ProviderEvent.objects.count() == 2
    erased = erase_address("Shopper@Example.com")

    assert ProviderEvent.objects.count() == 0
    assert erased.suppressions_kept == 1  # the complaint's suppression stays, as a keyed hash
    _, again = mailed_cart(channel, relay[0], email_address="later@example.com")
    post(client, URL.format("postmark"), "postmark", "soft_bounce", sent_of(again, "s-1"))
    cleanup(START + timedelta(days=400), settings_or_none, DbShop())
    assert not ProviderEvent.objects.exists()


def test_an_sns_subscription_request_is_logged_for_the_owner_to_confirm(client, channel, relay, caplog):
    mailed_cart(channel, relay[0], provider="amazon_ses")
    body = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37",
        "TopicArn": "arn:aws:sns:us-west-2:123456789012:SES_Events",
        "Message": "You have chosen to subscribe to the topic …",
        "SubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f37",
        "Timestamp": "2026-03-02T10:00:00.000Z",
    }
    headers = {"x-amz-sns-message-id": body["MessageId"], "x-amz-sns-message-type": body["Type"]}

    with caplog.at_level("WARNING", logger="saleor_cart_recovery"):
        unauthenticated = client.post(
            URL.format("amazon_ses"), data=json.dumps(body), content_type="text/plain", headers=headers
        )
        assert unauthenticated.status_code == 401 and "SubscribeURL" not in caplog.text
        assert body["SubscribeURL"] not in caplog.text
        response = client.post(
            URL.format("amazon_ses"),
            data=json.dumps(body),
            content_type="text/plain",
            headers={**headers, "Authorization": basic_auth()},
        )

    assert response.status_code == 200
    assert body["SubscribeURL"] in caplog.text and "SES_Events" in caplog.text
    assert not ProviderEvent.objects.exists()


def test_the_dashboard_warns_above_two_percent_bounces_and_a_tenth_of_a_percent_complaints(
    client, channel, relay
):
    channel.configuration = webhook_settings(relay[0], "sendgrid")
    channel.save()
    settings = RecoverySettings.from_plugin_configuration(channel.configuration)
    checkouts = [make_checkout(channel, email=f"shopper{n}@example.com") for n in range(20)]
    for checkout in checkouts:
        touch(checkout, START, settings)
    dispatch(now=DUE, send=lambda _: None)
    with freeze_time(DUE):
        assert {deliver(m.id) for m in RecoveryMessage.objects.all()} == {"sent"}
    later = START + timedelta(days=1)
    with freeze_time(later):
        quiet = get(client, "settings").content.decode()
    first, second = RecoveryMessage.objects.order_by("pk")[:2]
    post(client, URL.format("sendgrid"), "sendgrid", "bounce", sent_of(first, "b-1"))
    post(client, URL.format("sendgrid"), "sendgrid", "complaint", sent_of(second, "c-1"))

    with freeze_time(later):
        settings_page = get(client, "settings").content.decode()
        overview = get(client, "overview").content.decode()
        turkish = get(client, "settings", locale="tr-TR").content.decode()
        # German sets a no-break space before the percent sign
        german = get(client, "overview", locale="de-DE").content.decode().replace("\xa0", " ")
        out = StringIO()
        call_command("cart_recovery_report", "--channel", "main", "--fresh", stdout=out, stderr=StringIO())

    assert 'id="deliverability-warnings"' not in quiet  # 20 reminders, nothing reported yet
    assert "Bounce rate 5% over the last 7 days is above 2%." in settings_page
    assert "Complaint rate 5% over the last 7 days is above 0.1%." in settings_page
    # each rate written as the owner's locale writes a percentage
    assert "Son 7 gündeki geri dönme oranı %5, %2 sınırının üzerinde." in turkish
    assert (
        "<td>5 %</td>" in german
        and "Die Beschwerderate von 5 % in den letzten 7 Tagen liegt über 0,1 %" in german
    )
    assert "Frequency cap" in settings_page  # and it says what to do
    assert 'id="deliverability"' in overview and "<td>last 7 days</td><td>20</td>" in overview
    assert "WARNING: complaint rate 5.0 % over the last 7 days is above 0.1 %" in out.getvalue()


@pytest.mark.parametrize(
    ("provider", "options"),
    [("sparkpost", {"bounce_class": "50"}), ("sparkpost", {"bounce_class": "51"})],
    ids=["sparkpost_mail_block_case", "sparkpost_spam_block_case"],
)
def test_a_bounce_that_blames_the_sender_suppresses_nobody(client, channel, relay, provider, options):
    _, message = mailed_cart(channel, relay[0], provider=provider)
    response = post(client, URL.format(provider), provider, "bounce", sent_of(message), **options)
    assert (response.status_code, response.json()["recorded"]) == (200, 0)
    assert not Suppression.objects.exists() and not ProviderEvent.objects.exists()


def sendgrid_events(*events: dict) -> dict:
    """Keyword arguments posting raw SendGrid ``events`` with the channel's secret."""
    return {
        "data": json.dumps(list(events)),
        "content_type": "application/json",
        "headers": {"Authorization": basic_auth()},
    }


def other_mail(event: str, n: int, **extra) -> dict:
    """A SendGrid event about an order confirmation to the shopper: mail that is not ours."""
    return {
        "email": "shopper@example.com",
        "timestamp": 1772445600 + n * 600,
        "event": event,
        "sg_event_id": f"{event}-{n}",
        "sg_message_id": f"orderconf{n}.filter1",
        "smtp-id": f"<order-{n}@shop.example.com>",
        **extra,
    }


@freeze_time(START + timedelta(days=1))
def test_deliveries_and_deferrals_of_other_mail_change_nothing(client, channel, relay):
    _, message = mailed_cart(channel, relay[0], provider="sendgrid")
    retries = [other_mail("deferred", n, response="451 4.7.1 greylisted", attempt=str(n)) for n in range(4)]
    deliveries = [other_mail("delivered", n, response="250 OK") for n in range(10, 20)]
    soft = other_mail("bounce", 30, type="blocked", status="4.2.2", reason="452 4.2.2 Mailbox full")

    response = client.post(URL.format("sendgrid"), **sendgrid_events(*retries, *deliveries, soft))

    assert response.json() == {"events": 15, "recorded": 0}
    assert not ProviderEvent.objects.exists() and not Suppression.objects.exists()
    assert RecoveryCart.objects.get().status == "active"
    week = json.loads(json.dumps(deliverability_rates("main", START + timedelta(days=1))))["7d"]
    assert (week["sent"], week["delivered"], week["soft_bounced"]) == (1, 0, 0)
    # our own reminder's deferral is no bounce either: only SendGrid's final "blocked" is
    ours = {**other_mail("deferred", 40), "smtp-id": message.message_id}
    assert client.post(URL.format("sendgrid"), **sendgrid_events(ours)).json()["recorded"] == 0


def test_the_rates_count_only_events_about_our_reminders(client, channel, relay):
    _, message = mailed_cart(channel, relay[0], provider="sendgrid")
    hard = other_mail("bounce", 1, type="bounce", status="5.1.1", reason="550 5.1.1 no such user")
    # an order confirmation's hard bounce still says the address is dead: it suppresses
    assert client.post(URL.format("sendgrid"), **sendgrid_events(hard)).json()["recorded"] == 1
    assert list(Suppression.objects.values_list("source", flat=True)) == ["bounced:sendgrid"]
    week = deliverability_rates("main", START + timedelta(days=1))["7d"]
    assert (week["sent"], week["bounced"], week["bounce_rate_pct"]) == (1, 0, 0.0)  # not our reminder's


def test_one_event_the_database_cannot_store_does_not_poison_the_batch(client, channel, relay):
    mailed_cart(channel, relay[0], provider="sendgrid")
    mailed_cart(channel, relay[0], provider="sendgrid", email_address="second@example.com")
    too_long = {**other_mail("bounce", 1, type="bounce", status="5.1.1"), "email": "a" * 250 + "@example.com"}
    with_nul = other_mail("bounce", 2, type="bounce", status="5.1.1", reason="550 5.1.1 bad\x00mailbox")
    complaint = {**other_mail("spamreport", 3), "email": "second@example.com"}

    response = client.post(URL.format("sendgrid"), **sendgrid_events(too_long, with_nul, complaint))

    assert (response.status_code, response.json()["recorded"]) == (200, 2)
    assert sorted(Suppression.objects.values_list("email", "source")) == [
        ("second@example.com", "complained:sendgrid"),
        ("shopper@example.com", "bounced:sendgrid"),
    ]
    assert ProviderEvent.objects.get(email="shopper@example.com").description == "550 5.1.1 badmailbox"


def sparkpost_rejection(bounce_class: str, reason: str) -> dict:
    event = {
        "event_id": f"pr-{bounce_class}",
        "transmission_id": "t-1",
        "raw_rcpt_to": "shopper@example.com",
        "rcpt_to": "shopper@example.com",
        "timestamp": "1772445644",
        "type": "policy_rejection",
        "bounce_class": bounce_class,
        "raw_reason": reason,
    }
    return {
        "data": json.dumps([{"msys": {"message_event": event}}]),
        "content_type": "application/json",
        "headers": {"Authorization": basic_auth()},
    }


def mailgun_failure(message: RecoveryMessage, reason: str, code: int, text: str) -> dict:
    token = f"tok-{reason}"
    signature = hmac.new(MAILGUN_KEY.encode(), f"1772445644{token}".encode(), hashlib.sha256).hexdigest()
    data = {
        "event": "failed",
        "severity": "permanent",
        "reason": reason,
        "recipient": "shopper@example.com",
        "timestamp": 1772445644.0,
        "id": token,
        "delivery-status": {"code": code, "message": text, "description": ""},
        "message": {"headers": {"message-id": message.message_id.strip("<>")}},
    }
    body = {
        "signature": {"timestamp": "1772445644", "token": token, "signature": signature},
        "event-data": data,
    }
    return {
        "data": json.dumps(body),
        "content_type": "application/json",
        "headers": {"Authorization": basic_auth()},
    }


@pytest.mark.parametrize(
    ("bounce_class", "reason"),
    [("51", "554 5.7.1 listed at a spam blocklist"), ("52", "550 5.7.1 content looks like spam")],
    ids=["spam_block_case", "spam_content_case"],
)
def test_a_rejection_of_the_content_as_spam_is_no_complaint(client, channel, relay, bounce_class, reason):
    mailed_cart(channel, relay[0], provider="sparkpost")
    response = client.post(URL.format("sparkpost"), **sparkpost_rejection(bounce_class, reason))
    assert (response.status_code, response.json()["recorded"]) == (200, 0)
    assert not Suppression.objects.exists() and not ProviderEvent.objects.exists()


@pytest.mark.parametrize(
    ("reason", "code", "text", "source"),
    [
        ("espblock", 550, "5.7.1 Message rejected as spam by content filter", None),
        ("generic", 554, "5.7.0 Sender address rejected: policy", None),
        ("generic", 550, "5.6.0 Message content rejected", None),
        ("bounce", 550, "5.1.1 The email account that you tried to reach does not exist.", "bounced:mailgun"),
        ("bounce", 550, "5.5.0 Requested action not taken: mailbox unavailable", "bounced:mailgun"),
        (
            "suppress-complaint",
            607,
            "Not delivering to a user who marked your messages as spam",
            "complained:mailgun",
        ),
    ],
    ids=[
        "espblock_case",
        "policy_case",
        "content_case",
        "mailbox_case",
        "mailbox_unavailable_5_5_0_case",
        "previous_complainer_case",
    ],
)
def test_a_permanent_failure_blames_the_address_unless_its_status_blames_the_sender(
    client, channel, relay, reason, code, text, source
):
    _, message = mailed_cart(channel, relay[0], provider="mailgun")
    response = client.post(URL.format("mailgun"), **mailgun_failure(message, reason, code, text))
    assert response.status_code == 200
    assert list(Suppression.objects.values_list("source", flat=True)) == ([source] if source else [])


def test_sendgrid_dropping_a_previous_complainer_is_a_complaint(client, channel, relay):
    mailed_cart(channel, relay[0], provider="sendgrid")
    dropped = other_mail("dropped", 1, reason="Spam Reporting Address")
    spam_content = other_mail("dropped", 2, reason="Spam Content")
    assert (
        client.post(URL.format("sendgrid"), **sendgrid_events(dropped, spam_content)).json()["recorded"] == 1
    )
    assert list(Suppression.objects.values_list("source", flat=True)) == ["complained:sendgrid"]


def test_a_wrong_secret_learns_nothing_about_the_body(client, channel, relay):
    mailed_cart(channel, relay[0], provider="amazon_ses")
    response = client.post(
        URL.format("amazon_ses"),
        data=b"{garbage",
        content_type="text/plain",
        headers={
            "Authorization": basic_auth("events:wrongwrongwrongwrong"),
            "x-amz-sns-message-type": "Notification",
        },
    )
    assert response.status_code == 403
    malformed = client.post(
        URL.format("amazon_ses"),
        data=b"{garbage",
        content_type="text/plain",
        headers={"Authorization": basic_auth(), "x-amz-sns-message-type": "Notification"},
    )
    assert (malformed.status_code, malformed.content) == (400, b"malformed amazon_ses webhook")


@freeze_time(START + timedelta(days=1))
def test_an_event_from_a_provider_clock_ahead_is_dated_now(client, channel, relay):
    _, message = mailed_cart(channel, relay[0], provider="sendgrid")
    ahead = {
        **other_mail("spamreport", 1),
        "smtp-id": message.message_id,
        "timestamp": int((START + timedelta(days=400)).timestamp()),
    }
    assert client.post(URL.format("sendgrid"), **sendgrid_events(ahead)).json()["recorded"] == 1
    assert ProviderEvent.objects.get().occurred_at == START + timedelta(days=1)


def test_a_message_deleted_meanwhile_is_no_replay(channel, relay):
    _, message = mailed_cart(channel, relay[0])
    event = ReportedEvent(
        provider="postmark", kind="complained", email="shopper@example.com", occurred_at=START, identity="c-1"
    )
    RecoveryMessage.objects.filter(pk=message.pk).delete()  # retention, between matching and storing
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # as at the commit the test's transaction hides
    with pytest.raises(IntegrityError):  # not swallowed as if it were a replay
        _record_one(event, "main", "shopper@example.com", message, START)
    assert not ProviderEvent.objects.exists()


@pytest.fixture
def slow_event_inserts(transactional_db):
    """Each provider event insert holds its transaction half a second: concurrent ones overlap."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION cr_test_slow_insert() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(0.5); "
            "RETURN NEW; END $$ LANGUAGE plpgsql; CREATE TRIGGER cr_test_slow_insert AFTER INSERT ON "
            "cart_recovery_provider_event FOR EACH ROW EXECUTE FUNCTION cr_test_slow_insert()"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute(
            "DROP TRIGGER cr_test_slow_insert ON cart_recovery_provider_event; "
            "DROP FUNCTION cr_test_slow_insert()"
        )


@pytest.mark.django_db(transaction=True)
def test_two_soft_bounces_at_once_cannot_both_miss_the_limit(channel, relay, slow_event_inserts):
    checkout, first = mailed_cart(channel, relay[0])
    later = [mail_step(checkout, START + timedelta(days=day, hours=1)) for day in (1, 3)]
    now = START + timedelta(days=4)

    def soft_bounce(message: RecoveryMessage) -> ReportedEvent:
        return ReportedEvent(
            provider="postmark",
            kind="soft_bounced",
            email=message.recipient,
            occurred_at=now,
            identity=f"soft-{message.pk}",
            provider_message_id=message.provider_message_id,
        )

    assert record_events([soft_bounce(first)], ["main"], now=now) == 1
    start = threading.Barrier(len(later))

    def report(message: RecoveryMessage) -> None:
        try:
            start.wait()
            record_events([soft_bounce(message)], ["main"], now=now)
        finally:
            connection.close()

    threads = [threading.Thread(target=report, args=(message,)) for message in later]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert ProviderEvent.objects.count() == SOFT_BOUNCE_LIMIT
    assert list(Suppression.objects.values_list("source", flat=True)) == ["bounced:postmark"]


INDEXES = ("cart_recovery_msg_handed_over", "cart_recovery_msg_provider_id")


def valid_indexes() -> dict[str, bool]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = ANY(%s)",
            [list(INDEXES)],
        )
        return dict(cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_the_concurrent_index_migrations_run_again_after_a_failed_build():
    app = "saleor_cart_recovery"
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes(app)
    MigrationExecutor(connection).migrate([(app, "0011_provider_events")])
    assert valid_indexes() == {}
    with connection.cursor() as cursor:  # what a killed CREATE INDEX CONCURRENTLY leaves behind
        for name in INDEXES:
            cursor.execute(f"CREATE INDEX {name} ON cart_recovery_message (id)")
            cursor.execute(f"UPDATE pg_index SET indisvalid = false WHERE indexrelid = '{name}'::regclass")
    assert valid_indexes() == dict.fromkeys(INDEXES, False)

    MigrationExecutor(connection).migrate(latest)

    assert valid_indexes() == dict.fromkeys(INDEXES, True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_indexdef('cart_recovery_msg_handed_over'::regclass)")
        assert "WHERE (handed_over_at IS NOT NULL)" in cursor.fetchone()[0]  # rebuilt, not the leftover


@pytest.mark.parametrize(
    ("reply", "found"),
    [
        (b"Ok 0100018c-relay-000001-000000", "0100018c-relay-000001-000000"),  # Amazon SES
        (b"Ok: queued as 4Xyz1H2cz3z5vK", "4Xyz1H2cz3z5vK"),  # SendGrid, Postfix
        (b"2.0.0 OK  1709380800 d9443c01a7336-1dcb2f8f7f4si123456pla.5 - gsmtp", ""),  # Gmail: a time
    ],
    ids=["ses_case", "queued_as_case", "gmail_case"],
)
def test_only_a_relay_reply_that_names_the_message_is_kept_as_its_id(reply, found):
    assert provider_message_id(EmailMessage(), [reply]) == found


def test_an_internationalized_sender_domain_is_encoded_in_the_message_id():
    sender = "Bücher <shop@bücher.example>"
    assert reminder_message_id(7, sender).endswith("@xn--bcher-kva.example>")
    assert one_off_message_id(sender).endswith("@xn--bcher-kva.example>")
    assert our_message_ids(reminder_message_id(7, sender)) == {7}


def test_the_app_host_answers_on_its_esp_path(installed, saleor):
    webhooks = [
        {"name": "esp_provider", "value": "sendgrid"},
        {"name": "esp_webhook_secret", "value": SECRET},
    ]
    ChannelSettings.objects.filter(channel_slug="main").update(configuration=CONFIGURATION + webhooks)
    body = app_host.checkout_payload(str(uuid4()), "shopper@example.com", START)
    assert app_host.deliver(installed, saleor, "checkout_updated", body).status_code < 300
    url = "/esp/sendgrid/tracking/"  # {APP_URL}/esp/<provider>/tracking/

    assert installed.head(url).status_code == 200
    assert installed.post(url, data="[]", content_type="application/json").status_code == 401
    wrong = sendgrid_events(other_mail("delivered", 1))
    wrong["headers"] = {"Authorization": basic_auth("events:not-the-secret-at-all")}
    assert installed.post(url, **wrong).status_code == 403
    response = installed.post(url, **sendgrid_events(other_mail("delivered", 1)))
    assert (response.status_code, response.json()) == (200, {"events": 1, "recorded": 0})
