"""The mail provider's later reports: each provider's documented event shapes posted to
``esp/<provider>/tracking/`` (tests/provider_payloads.py), what they do to the address, the story,
the API and the rates; refused requests change nothing; a replay counts once. Reminders go to a
loopback SMTP server that answers DATA the way Amazon SES's relay does (``250 Ok <id>``)."""

import email
import itertools
import json
from datetime import timedelta
from io import StringIO

import pytest
from aiosmtpd.controller import Controller
from django.core.management import call_command
from freezegun import freeze_time

from saleor_cart_recovery.models import ProviderEvent, RecoveryCart, RecoveryMessage, Suppression
from saleor_cart_recovery.series.delivery import deliver
from saleor_cart_recovery.series.dispatch import dispatch
from saleor_cart_recovery.series.provider_events import SOFT_BOUNCE_LIMIT
from saleor_cart_recovery.series.retention import cleanup, erase_address
from saleor_cart_recovery.settings.channel import RecoverySettings
from saleor_cart_recovery.shop import settings_or_none
from tests.provider_payloads import SECRET, SIGNING_KEYS, SUPPORTED, Sent, basic_auth, post
from tests.shopapp.models import ShopChannel
from tests.shopapp.shop import DbShop

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


def webhook_settings(port: int, provider: str = "", secret: str = SECRET) -> list[dict]:
    extra = [{"name": "esp_webhook_secret", "value": secret}]
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


def mailed_cart(channel, settings_port, *, email_address="shopper@example.com", provider=""):
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
def test_a_replayed_event_counts_once(client, channel, relay, provider):
    _, message = mailed_cart(channel, relay[0], provider=provider)
    first = post(client, URL.format(provider), provider, "soft_bounce", sent_of(message))
    replays = [
        post(client, URL.format(provider), provider, "soft_bounce", sent_of(message)) for _ in range(3)
    ]
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
    mailed_cart(channel, relay[0], provider=provider if provider in SUPPORTED else "")
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
    checkout, message = mailed_cart(channel, port)
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
    _, message = mailed_cart(channel, relay[0])
    other = ShopChannel.objects.create(
        slug="other", configuration=webhook_settings(relay[0], secret="events:another-secret-0123")
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
    assert "Step 1 bounced — reported by Postmark" in story
    assert "bounced — reported by Postmark; no more reminders in this channel" in story


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
    mailed_cart(channel, relay[0])
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
    channel.configuration = webhook_settings(relay[0])
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
        out = StringIO()
        call_command("cart_recovery_report", "--channel", "main", "--fresh", stdout=out, stderr=StringIO())

    assert 'id="deliverability-warnings"' not in quiet  # 20 reminders, nothing reported yet
    assert "Bounce rate 5.0 % over the last 7 days is above 2.0 %." in settings_page
    assert "Complaint rate 5.0 % over the last 7 days is above 0.1 %." in settings_page
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
