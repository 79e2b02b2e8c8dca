"""Preview and test send through the developer API: the step as the series would send it, to a
real SMTP server on loopback for the test send, with nothing issued, tracked or recorded."""

import json
import re

import pytest

from saleor_cart_recovery.models import RecoveryCart, RecoveryMessage
from tests.shopapp.models import ShopProduct, ShopVoucher

from .conftest import CONFIGURATION, with_smtp

URL = "/plugins/channel/main/saleor_cart_recovery/graphql"
STAFF = {"HTTP_X_TEST_STAFF": "MANAGE_CHECKOUTS"}
PREVIEW = """
query ($step: Int!, $token: String, $language: String, $variant: Int) {
  preview(step: $step, checkoutToken: $token, language: $language, variant: $variant) { subject html text }
}
"""
SEND_TEST = """
mutation ($step: Int!, $email: String!, $token: String, $language: String) {
  sendTest(step: $step, email: $email, checkoutToken: $token, language: $language) {
    sent subject errors { field message }
  }
}
"""


def post(client, query, variables, headers=STAFF):
    body = json.dumps({"query": query, "variables": variables})
    return client.post(URL, data=body, content_type="application/json", **headers)


@pytest.fixture
def owner_channel(channel, smtp_server):
    """Sends through the loopback SMTP server, with a coupon on step 3 and the owner's own words."""
    controller, _ = smtp_server
    extra = [
        {"name": "coupon_step", "value": "3"},
        {
            "name": "email_copy",
            "value": "2 heading: Hi {first_name}, still deciding?\n2 [tr] heading: Merhaba!",
        },
        {"name": "brand_color", "value": "#0B6E4F"},
    ]
    channel.configuration = with_smtp(controller.port, [*CONFIGURATION, *extra])
    channel.save()
    ShopProduct.objects.create(
        channel=channel, slug="wool-hat", name="Wool Hat", category="hats", variant_id="77", price="19.00"
    )
    return channel


def test_preview_of_a_sample_cart_uses_the_channels_products_and_the_owners_words(client, owner_channel):
    response = post(client, PREVIEW, {"step": 2})
    assert response.status_code == 200
    preview = response.json()["data"]["preview"]
    assert preview["subject"] == "Still thinking?"
    assert "Hi Alex, still deciding?" in preview["text"] and "Wool Hat" in preview["text"]
    assert "Hi Alex, still deciding?" in preview["html"] and "#0B6E4F" in preview["html"]
    # nothing in it is tracked, and its unsubscribe link opens a page that says it is a sample
    assert "/click/" not in preview["html"]
    [unsubscribe] = re.findall(
        r"http://shop\.test(/plugins/saleor_cart_recovery/unsubscribe/\S+)", preview["text"]
    )
    page = client.get(unsubscribe)
    assert page.status_code == 200 and "This is a sample email" in page.content.decode()


def test_preview_of_a_real_checkout_in_another_language(client, owner_channel, abandoned_cart):
    response = post(client, PREVIEW, {"step": 2, "token": abandoned_cart.token, "language": "tr"})
    preview = response.json()["data"]["preview"]
    assert "Merhaba!" in preview["html"] and "Blue Hoodie" in preview["html"]
    assert "Sepetinize dönün" in preview["text"]


def test_the_coupon_step_shows_a_sample_code_and_issues_nothing(client, owner_channel):
    preview = post(client, PREVIEW, {"step": 3}).json()["data"]["preview"]
    assert "Your code: SAMPLE-CODE" in preview["text"] and "Valid for 2 days" in preview["text"]
    assert ShopVoucher.objects.count() == 0


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"step": 4}, "step: The schedule has steps 1 to 3."),
        ({"step": 1, "token": "nope"}, "checkoutToken: No checkout with this token in this channel."),
        ({"step": 1, "language": "english!"}, "language: 'english!' is not a language code"),
        ({"step": 1, "variant": 1}, "variant: Step 1 has subject variants 0 to 0."),
    ],
    ids=["step_case", "token_case", "language_case", "variant_case"],
)
def test_a_preview_that_cannot_be_built_says_which_argument(client, owner_channel, variables, message):
    response = post(client, PREVIEW, variables)
    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert error["message"].startswith(message)


def test_send_test_mails_the_step_marked_as_a_test_and_records_nothing(
    client, owner_channel, abandoned_cart, inbox
):
    cart_before = RecoveryCart.objects.values().get()
    response = post(
        client, SEND_TEST, {"step": 3, "email": "Owner@Example.com", "token": abandoned_cart.token}
    )
    assert response.json()["data"]["sendTest"] == {
        "sent": True,
        "subject": "[Test] Last call",
        "errors": [],
    }
    [received] = inbox.received
    assert received.rcpt_tos == ("owner@example.com",)
    assert received.message["Subject"] == "[Test] Last call"
    assert received.message["List-Unsubscribe"] is None
    text = received.part("text/plain")
    assert "SAMPLE-CODE" in text and "/click/" not in text
    assert f"https://shop.example.com/cart/{abandoned_cart.token}?coupon=SAMPLE-CODE" in text
    assert RecoveryCart.objects.values().get() == cart_before
    assert (RecoveryMessage.objects.count(), ShopVoucher.objects.count()) == (0, 0)


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"step": 0, "email": "owner@example.com"}, "step"),
        ({"step": 1, "email": "not an address"}, "email"),
        ({"step": 1, "email": "owner@example.com", "token": "nope"}, "checkoutToken"),
    ],
    ids=["step_case", "email_case", "token_case"],
)
def test_send_test_answers_bad_arguments_in_errors_and_sends_nothing(
    client, owner_channel, inbox, variables, field
):
    result = post(client, SEND_TEST, variables).json()["data"]["sendTest"]
    assert result["sent"] is False and [e["field"] for e in result["errors"]] == [field]
    assert inbox.received == []


def test_send_test_reports_a_mail_server_that_cannot_be_reached(client, channel):
    channel.configuration = with_smtp(1)  # nothing listens on port 1
    channel.save()
    result = post(client, SEND_TEST, {"step": 1, "email": "owner@example.com"}).json()["data"]["sendTest"]
    assert result["sent"] is False
    [error] = result["errors"]
    assert error["field"] is None and error["message"].startswith("Not sent: could not reach the mail server")


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"HTTP_X_TEST_STAFF": "none"}, 403)],
    ids=["anonymous_case", "staff_case"],
)
def test_preview_and_send_test_need_the_permission(client, owner_channel, inbox, headers, status):
    assert post(client, PREVIEW, {"step": 1}, headers).status_code == status
    assert post(client, SEND_TEST, {"step": 1, "email": "a@example.com"}, headers).status_code == status
    assert inbox.received == []
