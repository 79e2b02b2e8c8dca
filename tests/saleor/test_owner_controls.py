"""The owner's controls against real Saleor: consent read from checkout and account metadata,
quiet hours in the shopper's own zone, erasure by Saleor's customer and account deletions, preview
and test send on the plugin endpoint, the new settings through `pluginUpdate`, and the cleanup of
the plugin's expired coupons."""

import json
from datetime import datetime, timedelta
from decimal import Decimal
from io import StringIO
from urllib.parse import urlsplit
from uuid import uuid4

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection, transaction
from freezegun import freeze_time
from saleor.account import notifications
from saleor.account.models import User
from saleor.checkout.models import Checkout
from saleor.core.jwt import create_access_token
from saleor.discount.models import Voucher, VoucherChannelListing, VoucherCode
from saleor.graphql.tests.utils import get_graphql_content
from saleor.plugins.models import PluginConfiguration

from saleor_cart_recovery.models import CartStatus, MessageStatus, RecoveryCart, RecoveryMessage, Suppression
from saleor_cart_recovery.saleor_host import offers
from saleor_cart_recovery.saleor_host.shop import PLUGIN_ID, SaleorShop
from saleor_cart_recovery.series.suppression import hashed_address

from .utils import (
    CONFIGURATION,
    DAY,
    HOUR,
    MINUTE,
    SUBJECTS,
    T0,
    create_checkout,
    dispatch_at,
    gid,
)

API = "/plugins/channel/main/saleor_cart_recovery/graphql"
CART = """
query ($token: String!) {
  cart(checkoutToken: $token) { status stopReason messages { step status reason } }
}
"""
PREVIEW = """
query ($step: Int!, $token: String, $language: String) {
  preview(step: $step, checkoutToken: $token, language: $language) { subject html text }
}
"""
SEND_TEST = """
mutation ($step: Int!, $email: String!, $token: String) {
  sendTest(step: $step, email: $email, checkoutToken: $token) { sent subject errors { field message } }
}
"""
SUPPRESSED = "query ($email: String!) { suppressed(email: $email) }"

UPDATE_METADATA = """
mutation ($id: ID!, $input: [MetadataInput!]!) {
  updateMetadata(id: $id, input: $input) {
    item { metadata { key value } }
    errors { field message code }
  }
}
"""
SHIPPING_ADDRESS_UPDATE = """
mutation ($id: ID, $address: AddressInput!) {
  checkoutShippingAddressUpdate(id: $id, shippingAddress: $address) {
    checkout { token shippingAddress { country { code } } }
    errors { field message code }
  }
}
"""
CUSTOMER_DELETE = """
mutation ($id: ID!) { customerDelete(id: $id) { user { email } errors { field message code } } }
"""
CUSTOMER_BULK_DELETE = """
mutation ($ids: [ID!]!) { customerBulkDelete(ids: $ids) { count errors { field message } } }
"""
ACCOUNT_REQUEST_DELETION = """
mutation ($redirectUrl: String!, $channel: String) {
  accountRequestDeletion(redirectUrl: $redirectUrl, channel: $channel) { errors { field message code } }
}
"""
ACCOUNT_DELETE = """
mutation ($token: String!) { accountDelete(token: $token) { errors { field message code } } }
"""

TURKISH_ADDRESS = {
    "firstName": "Ayşe",
    "lastName": "Yılmaz",
    "streetAddress1": "Moda Caddesi 1",
    "city": "Istanbul",
    "countryArea": "İstanbul",
    "postalCode": "34710",
    "country": "TR",
    "phone": "+902165550101",
}


# -- helpers ------------------------------------------------------------------------------------


def call_api(client, query: str, variables: dict, headers: dict):
    """The plugin's own GraphQL endpoint, as a developer calls it."""
    body = json.dumps({"query": query, "variables": variables})
    return client.post(API, data=body, content_type="application/json", **headers)


def messages(token) -> dict[int, tuple[str, str]]:
    return {m.step: (m.status, m.reason) for m in RecoveryMessage.objects.filter(cart__checkout_token=token)}


def set_checkout_metadata(client, token: str, key: str, value: str) -> None:
    """What a storefront does: Saleor's `updateMetadata` on the checkout, by its token."""
    response = client.post_graphql(UPDATE_METADATA, {"id": token, "input": [{"key": key, "value": value}]})
    payload = get_graphql_content(response)["data"]["updateMetadata"]
    assert payload["errors"] == [], payload["errors"]
    assert {"key": key, "value": value} in payload["item"]["metadata"]


def set_shipping_address(client, token: str, address: dict) -> None:
    checkout = Checkout.objects.get(token=token)
    response = client.post_graphql(SHIPPING_ADDRESS_UPDATE, {"id": gid(checkout), "address": address})
    payload = get_graphql_content(response)["data"]["checkoutShippingAddressUpdate"]
    assert payload["errors"] == [], payload["errors"]
    assert payload["checkout"]["shippingAddress"]["country"]["code"] == address["country"]


def stored(channel) -> dict[str, str]:
    config = PluginConfiguration.objects.get(identifier=PLUGIN_ID, channel=channel)
    return {item["name"]: item["value"] for item in config.configuration}


@pytest.fixture
def staff_headers(staff_user, permission_manage_checkouts):
    """A staff member with MANAGE_CHECKOUTS, authenticated by a Saleor JWT."""
    staff_user.user_permissions.add(permission_manage_checkouts)
    return {"HTTP_AUTHORIZATION": f"Bearer {create_access_token(staff_user)}"}


# -- 1. consent ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("legacy_update_emission", "step_2_due"),
    [(False, T0 + DAY), (True, T0 + 2 * HOUR + DAY)],
    ids=["metadata_change_is_no_cart_activity_case", "legacy_emission_reports_it_as_activity_case"],
)
def test_without_consent_a_step_is_skipped_and_consent_set_later_on_the_checkout_lets_the_next_out(
    api_client,
    client,
    enable_cart_recovery,
    site_settings,
    channel_USD,
    stocked_variant,
    run_dispatch,
    staff_headers,
    legacy_update_emission,
    step_2_due,
):
    # given only consented shoppers get reminders, and a guest left a checkout at T0 without consent
    # (with Saleor's legacy update emission on, a metadata change is also reported as a checkout
    # update, which is cart activity and restarts the clock)
    site_settings.use_legacy_update_webhook_emission = legacy_update_emission
    site_settings.save(update_fields=["use_legacy_update_webhook_emission"])
    enable_cart_recovery(audience="consented")
    with freeze_time(T0):
        token = create_checkout(api_client, channel_USD, stocked_variant, quantity=2)

    # when step 1 comes due
    dispatch_at(run_dispatch, T0 + HOUR)

    # then nothing is sent, the step says why in the API, and the series goes on
    assert mail.outbox == []
    cart = call_api(client, CART, {"token": token}, staff_headers).json()["data"]["cart"]
    assert cart == {
        "status": "active",
        "stopReason": None,
        "messages": [{"step": 1, "status": "skipped", "reason": "no_consent"}],
    }

    # when the storefront records the shopper's consent on the checkout, after checkoutCreate
    with freeze_time(T0 + 2 * HOUR):
        set_checkout_metadata(api_client, token, "marketing_consent", "true")
    assert Checkout.objects.get(token=token).metadata_storage.metadata["marketing_consent"] == "true"

    # and the dispatcher runs just before step 2 is due, and when it is
    dispatch_at(run_dispatch, step_2_due - MINUTE)
    assert mail.outbox == []
    dispatch_at(run_dispatch, step_2_due)

    # then step 2 goes out to the shopper; step 1 stays skipped
    [email] = mail.outbox
    assert email.subject == SUBJECTS[2]
    assert email.to == ["shopper@example.com"]
    assert messages(token) == {1: ("skipped", "no_consent"), 2: ("sent", "")}


def test_consent_in_the_customer_account_counts_for_a_logged_in_shoppers_checkout(
    user_api_client, customer_user, enable_cart_recovery, channel_USD, stocked_variant, run_dispatch
):
    # given only consented shoppers get reminders, and a logged-in customer left a checkout at T0
    enable_cart_recovery(audience="consented")
    with freeze_time(T0):
        token = create_checkout(user_api_client, channel_USD, stocked_variant, email=None)
    assert RecoveryCart.objects.get(checkout_token=token).email == "test@example.com"
    assert Checkout.objects.get(token=token).user == customer_user

    # when step 1 comes due while neither the checkout nor the account holds consent
    dispatch_at(run_dispatch, T0 + HOUR)
    # then it is skipped
    assert mail.outbox == []
    assert messages(token) == {1: ("skipped", "no_consent")}

    # when the customer consents in their account (the key is read on the account too)
    customer_user.store_value_in_metadata({"marketing_consent": "yes"})
    customer_user.save(update_fields=["metadata"])
    dispatch_at(run_dispatch, T0 + DAY)

    # then step 2 reaches the account's address
    [email] = mail.outbox
    assert (email.subject, email.to) == (SUBJECTS[2], ["test@example.com"])
    assert messages(token) == {1: ("skipped", "no_consent"), 2: ("sent", "")}


def test_the_checkouts_answer_comes_before_the_accounts(
    user_api_client, customer_user, enable_cart_recovery, channel_USD, stocked_variant, run_dispatch
):
    # given the account says yes under the owner's own key, but on this checkout the shopper said no
    enable_cart_recovery(audience="consented", consent_metadata_key="newsletter_ok")
    customer_user.store_value_in_metadata({"newsletter_ok": "true"})
    customer_user.save(update_fields=["metadata"])
    with freeze_time(T0):
        token = create_checkout(user_api_client, channel_USD, stocked_variant, email=None)
        set_checkout_metadata(user_api_client, token, "newsletter_ok", "false")

    # when step 1 comes due
    dispatch_at(run_dispatch, T0 + HOUR)

    # then the checkout's "false" decides
    assert mail.outbox == []
    assert messages(token) == {1: ("skipped", "no_consent")}


# -- 2. quiet hours in the shopper's zone -------------------------------------------------------

# The shopper leaves at 18:00 UTC; step 1 is due at 19:00 UTC: 22:00 in Istanbul (UTC+3), inside
# the quiet hours 21:00-08:00 there, but not in the channel's zone (UTC).
LEFT_AT = datetime.fromisoformat("2026-03-02T18:00:00+00:00")
DUE = LEFT_AT + HOUR
ISTANBUL_MORNING = datetime.fromisoformat("2026-03-03T05:00:00+00:00")  # 08:00 in Istanbul


def zone_in_metadata(api_client, token):
    set_checkout_metadata(api_client, token, "time_zone", "Europe/Istanbul")


def turkish_shipping_address(api_client, token):
    set_shipping_address(api_client, token, TURKISH_ADDRESS)


@pytest.mark.parametrize(
    "give_zone",
    [zone_in_metadata, turkish_shipping_address],
    ids=["checkout_time_zone_metadata_case", "turkish_shipping_address_case"],
)
def test_a_step_due_in_the_shoppers_quiet_hours_waits_until_they_end(
    api_client,
    client,
    enable_cart_recovery,
    channel_USD,
    stocked_variant,
    run_dispatch,
    staff_headers,
    give_zone,
):
    # given quiet hours 21:00-08:00 and a checkout whose shopper lives in Istanbul
    enable_cart_recovery(quiet_hours="21:00-08:00", time_zone="UTC")
    with freeze_time(LEFT_AT):
        token = create_checkout(api_client, channel_USD, stocked_variant)
        give_zone(api_client, token)

    # when step 1 comes due at 22:00 Istanbul time
    dispatch_at(run_dispatch, DUE)

    # then nothing is sent: the step waits, saying why, until 08:00 Istanbul time
    assert mail.outbox == []
    message = RecoveryMessage.objects.get(cart__checkout_token=token)
    assert (message.status, message.reason, message.attempt_after) == (
        MessageStatus.SCHEDULED,
        "quiet_hours",
        ISTANBUL_MORNING,
    )
    cart = call_api(client, CART, {"token": token}, staff_headers).json()["data"]["cart"]
    assert cart["messages"] == [{"step": 1, "status": "scheduled", "reason": "quiet_hours"}]

    # when the dispatcher runs a minute before the window ends, and when it ends
    dispatch_at(run_dispatch, ISTANBUL_MORNING - MINUTE)
    assert mail.outbox == []
    dispatch_at(run_dispatch, ISTANBUL_MORNING)

    # then step 1 goes out at the window's end
    [email] = mail.outbox
    assert email.subject == SUBJECTS[1]
    message.refresh_from_db()
    assert (message.status, message.sent_at) == (MessageStatus.SENT, ISTANBUL_MORNING)

    # and step 2 keeps its configured gap (23h) after it: not at its plain due time (1d after leaving)
    dispatch_at(run_dispatch, LEFT_AT + DAY)
    assert len(mail.outbox) == 1
    assert RecoveryCart.objects.get(checkout_token=token).next_due_at == ISTANBUL_MORNING + 23 * HOUR


def test_the_checkouts_time_zone_comes_before_the_address_and_the_channels_zone_is_the_last_resort(
    api_client, enable_cart_recovery, channel_USD, stocked_variant, run_dispatch
):
    # given quiet hours 21:00-08:00, one shopper in New York (metadata) shipping to Turkey, and one
    # whose zone is unknown (the channel's UTC applies)
    enable_cart_recovery(quiet_hours="21:00-08:00", time_zone="UTC")
    with freeze_time(LEFT_AT):
        new_yorker = create_checkout(api_client, channel_USD, stocked_variant, email="ny@example.com")
        set_checkout_metadata(api_client, new_yorker, "time_zone", "America/New_York")
        set_shipping_address(api_client, new_yorker, TURKISH_ADDRESS)
        unknown = create_checkout(api_client, channel_USD, stocked_variant, email="anywhere@example.com")

    # when step 1 comes due at 19:00 UTC (14:00 in New York)
    dispatch_at(run_dispatch, DUE)

    # then both go out right away
    assert sorted(m.to[0] for m in mail.outbox) == ["anywhere@example.com", "ny@example.com"]
    assert messages(new_yorker) == messages(unknown) == {1: ("sent", "")}


# -- 3. erasure ---------------------------------------------------------------------------------


def test_customer_delete_by_staff_erases_the_customers_carts_and_keeps_the_opt_out_as_a_hash(
    api_client,
    user_api_client,
    staff_api_client,
    customer_user,
    permission_manage_users,
    client,
    cart_recovery,
    channel_USD,
    stocked_variant,
    run_dispatch,
    staff_headers,
):
    # given a customer's checkout and another shopper's, both reminded once
    with freeze_time(T0):
        customer_cart = create_checkout(user_api_client, channel_USD, stocked_variant, email=None)
        other_cart = create_checkout(api_client, channel_USD, stocked_variant, email="other@example.com")
    dispatch_at(run_dispatch, T0 + HOUR)
    assert sorted(m.to[0] for m in mail.outbox) == ["other@example.com", "test@example.com"]
    # and the customer unsubscribed through the link in their reminder
    [reminder] = [m for m in mail.outbox if m.to == ["test@example.com"]]
    unsubscribe = urlsplit(reminder.extra_headers["List-Unsubscribe"].strip("<>")).path
    assert client.post(unsubscribe).status_code == 200
    assert Suppression.objects.get().email == "test@example.com"

    # when a staff member with MANAGE_USERS deletes the customer through Saleor's API
    staff_api_client.user.user_permissions.add(permission_manage_users)
    response = staff_api_client.post_graphql(CUSTOMER_DELETE, {"id": gid(customer_user)})
    payload = get_graphql_content(response)["data"]["customerDelete"]
    assert payload["errors"] == []
    assert not User.objects.filter(email="test@example.com").exists()

    # then the customer's cart and messages are gone; the other shopper's stay
    assert not RecoveryCart.objects.filter(email="test@example.com").exists()
    assert not RecoveryMessage.objects.filter(recipient="test@example.com").exists()
    assert list(RecoveryCart.objects.values_list("checkout_token", flat=True)) == [other_cart]
    assert messages(other_cart) == {1: ("sent", "")}
    assert not RecoveryCart.objects.filter(checkout_token=customer_cart).exists()
    # and the opt-out is kept as a keyed hash: the address cannot be read from the table
    suppression = Suppression.objects.get()
    assert (suppression.channel_slug, suppression.source) == ("main", "link")
    assert suppression.email == hashed_address("test@example.com")
    assert "test@" not in suppression.email

    # and it is still honoured: the API knows the address is suppressed, and a new checkout with the
    # same address gets no reminder
    response = call_api(client, SUPPRESSED, {"email": "Test@Example.com"}, staff_headers)
    assert response.json() == {"data": {"suppressed": True}}
    with freeze_time(T0 + 2 * DAY):
        again = create_checkout(api_client, channel_USD, stocked_variant, email="Test@Example.com")
    dispatch_at(run_dispatch, T0 + 2 * DAY + HOUR)
    assert [m.to[0] for m in mail.outbox].count("test@example.com") == 1
    assert messages(again) == {1: ("skipped", "unsubscribed")}


def test_customers_deleted_in_bulk_are_erased_and_a_failing_erasure_never_blocks_a_deletion(
    api_client,
    user_api_client,
    staff_api_client,
    customer_user,
    customer_user2,
    permission_manage_users,
    cart_recovery,
    channel_USD,
    stocked_variant,
    monkeypatch,
    caplog,
):
    # given carts of two customers
    with freeze_time(T0):
        create_checkout(user_api_client, channel_USD, stocked_variant, email=None)
        create_checkout(api_client, channel_USD, stocked_variant, email=customer_user2.email)
    assert RecoveryCart.objects.count() == 2
    staff_api_client.user.user_permissions.add(permission_manage_users)

    # when both are deleted at once
    response = staff_api_client.post_graphql(
        CUSTOMER_BULK_DELETE, {"ids": [gid(customer_user), gid(customer_user2)]}
    )
    assert get_graphql_content(response)["data"]["customerBulkDelete"]["errors"] == []

    # then both are erased
    assert RecoveryCart.objects.count() == 0

    # and when erasure fails in the database itself (which aborts the transaction it runs in), the
    # deletion still happens, the transaction stays usable and the failure is logged
    def broken(email):
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM cart_recovery_no_such_table")

    monkeypatch.setattr("saleor_cart_recovery.saleor_host.erasure.erase_address", broken)
    third = User.objects.create(email="third@example.com")
    with transaction.atomic():
        third.delete()
        assert not User.objects.filter(email="third@example.com").exists()
    assert not User.objects.filter(email="third@example.com").exists()
    assert "could not erase the data of deleted customer" in caplog.text


def test_account_delete_through_its_emailed_token_erases_the_account_holders_carts(
    user_api_client, api_client, cart_recovery, channel_USD, stocked_variant, run_dispatch, monkeypatch
):
    # given a logged-in customer's checkout, reminded once, and a guest's
    with freeze_time(T0):
        token = create_checkout(user_api_client, channel_USD, stocked_variant, email=None)
        guest = create_checkout(api_client, channel_USD, stocked_variant, email="guest@example.com")
    dispatch_at(run_dispatch, T0 + HOUR)
    assert messages(token) == {1: ("sent", "")}

    # when the customer asks to delete the account: Saleor mails a one-time token (captured here on
    # its way to the notification, which still goes out)
    emailed = []
    send_confirmation = notifications.send_account_delete_confirmation_notification

    def capture(*args, **kwargs):
        emailed.append(kwargs["token"])
        return send_confirmation(*args, **kwargs)

    monkeypatch.setattr(notifications, "send_account_delete_confirmation_notification", capture)
    user_api_client.regenerate_access_token()  # the one from T0 expired long ago
    response = user_api_client.post_graphql(
        ACCOUNT_REQUEST_DELETION, {"redirectUrl": "https://www.example.com/delete", "channel": "main"}
    )
    assert get_graphql_content(response)["data"]["accountRequestDeletion"]["errors"] == []
    [delete_token] = emailed

    # and confirms with that token
    response = user_api_client.post_graphql(ACCOUNT_DELETE, {"token": delete_token})
    assert get_graphql_content(response)["data"]["accountDelete"]["errors"] == []
    assert not User.objects.filter(email="test@example.com").exists()

    # then the account holder's cart and messages are erased, the guest's stay
    assert not RecoveryCart.objects.filter(email="test@example.com").exists()
    assert not RecoveryMessage.objects.filter(recipient="test@example.com").exists()
    assert list(RecoveryCart.objects.values_list("checkout_token", flat=True)) == [guest]


def test_the_erase_command_forgets_a_guest_and_keeps_the_opt_out_as_a_hash(
    api_client, client, cart_recovery, channel_USD, stocked_variant, run_dispatch
):
    # given a guest reminded once who unsubscribed through the link, and another shopper's cart
    with freeze_time(T0):
        token = create_checkout(api_client, channel_USD, stocked_variant, email="Guest@Example.com")
        other = create_checkout(api_client, channel_USD, stocked_variant, email="other@example.com")
    dispatch_at(run_dispatch, T0 + HOUR)
    [reminder] = [m for m in mail.outbox if m.to[0].lower() == "guest@example.com"]
    unsubscribe = urlsplit(reminder.extra_headers["List-Unsubscribe"].strip("<>")).path
    assert client.post(unsubscribe).status_code == 200

    # when the operator runs the guest's erasure request
    out = StringIO()
    call_command("cart_recovery_cleanup", erase="guest@example.com", stdout=out)

    # then the guest's cart and message are gone, the other shopper's stay
    assert out.getvalue().strip() == ("erased 1 cart and 1 message; kept 1 suppression as a keyed hash")
    assert not RecoveryCart.objects.filter(checkout_token=token).exists()
    assert not RecoveryMessage.objects.filter(recipient="guest@example.com").exists()
    assert list(RecoveryCart.objects.values_list("checkout_token", flat=True)) == [other]
    # and the opt-out is kept, keyed-hashed: the address cannot be read from the table
    suppression = Suppression.objects.get()
    assert suppression.email == hashed_address("guest@example.com")
    assert "guest" not in suppression.email
    # and still honoured for a new checkout with the same address
    with freeze_time(T0 + 2 * DAY):
        again = create_checkout(api_client, channel_USD, stocked_variant, email="guest@example.com")
    dispatch_at(run_dispatch, T0 + 2 * DAY + HOUR)
    assert [m.to[0].lower() for m in mail.outbox].count("guest@example.com") == 1
    assert messages(again) == {1: ("skipped", "unsubscribed")}


# -- 4. preview and test send -------------------------------------------------------------------


def test_preview_of_a_sample_cart_shows_the_channels_products_and_the_owners_words(
    client, enable_cart_recovery, product, staff_headers
):
    # given the owner's words for step 2 and a brand colour; the channel sells "Test product"
    enable_cart_recovery(email_copy="2 heading: Hi {first_name}, still deciding?", brand_color="#0B6E4F")

    # when staff previews step 2 without a checkout
    response = call_api(client, PREVIEW, {"step": 2}, staff_headers)

    # then it is step 2's email for a sample cart made of the channel's real product
    assert response.status_code == 200
    preview = response.json()["data"]["preview"]
    assert preview["subject"] == SUBJECTS[2]
    assert "Hi Alex, still deciding?" in preview["text"]
    assert "Test product — Qty 1 — $10.00" in preview["text"]
    assert "Hi Alex, still deciding?" in preview["html"] and "#0B6E4F" in preview["html"]
    # and nothing in it is tracked, nothing is recorded
    assert "/click/" not in preview["html"]
    assert not RecoveryCart.objects.exists() and not RecoveryMessage.objects.exists()


def test_preview_of_a_real_checkout_shows_its_lines_in_the_asked_language(
    client, abandoned_cart, staff_headers
):
    # when staff previews step 1 for a real checkout, in Turkish
    variables = {"step": 1, "token": abandoned_cart, "language": "tr"}
    response = call_api(client, PREVIEW, variables, staff_headers)

    # then it shows the checkout's own lines and total with the built-in Turkish copy
    preview = response.json()["data"]["preview"]
    assert "Test product — Adet 3 — $30,00" in preview["text"]
    assert "Test product with two variants — Adet 2 — $20,00" in preview["text"]
    assert "Toplam: $50,00" in preview["text"]
    assert "Sepetinize dönün: https://shop.example.com/cart/" + abandoned_cart in preview["text"]
    # and the cart's series is untouched
    assert messages(abandoned_cart) == {}


def test_send_test_mails_the_step_with_a_test_subject_and_issues_and_records_nothing(
    client, abandoned_cart, enable_cart_recovery, staff_headers
):
    # given step 3 carries a coupon
    enable_cart_recovery(coupon_step="3", coupon_type="fixed", coupon_value="5")
    cart_before = RecoveryCart.objects.values().get(checkout_token=abandoned_cart)

    # when staff sends step 3 of the real checkout to their own address
    variables = {"step": 3, "email": "Owner@Shop.example", "token": abandoned_cart}
    response = call_api(client, SEND_TEST, variables, staff_headers)

    # then the API says it went out with the test subject
    assert response.status_code == 200
    assert response.json()["data"]["sendTest"] == {
        "sent": True,
        "subject": "[Test] " + SUBJECTS[3],
        "errors": [],
    }
    # and the mail server got exactly that email, with a sample code and the checkout's lines
    [email] = mail.outbox
    assert email.subject == "[Test] " + SUBJECTS[3]
    assert email.to == ["owner@shop.example"]
    assert "Your code: SAMPLE-CODE" in email.body
    assert "Test product — Qty 3 — $30.00" in email.body
    assert "List-Unsubscribe" not in email.extra_headers
    # and no Saleor voucher was created, nothing was recorded on the cart
    assert not Voucher.objects.exists() and not VoucherCode.objects.exists()
    assert not RecoveryMessage.objects.exists()
    assert RecoveryCart.objects.values().get(checkout_token=abandoned_cart) == cart_before


@pytest.mark.parametrize(
    ("variables", "field", "message"),
    [
        ({"step": 4, "email": "owner@shop.example"}, "step", "The schedule has steps 1 to 3."),
        ({"step": 0, "email": "owner@shop.example"}, "step", "The schedule has steps 1 to 3."),
        ({"step": 1, "email": "not-an-email"}, "email", "'not-an-email' is not an email address."),
        (
            {"step": 1, "email": "owner@shop.example", "token": str(uuid4())},
            "checkoutToken",
            "No checkout with this token in this channel.",
        ),
    ],
    ids=["step_after_the_last_case", "step_zero_case", "bad_email_case", "unknown_checkout_case"],
)
def test_send_test_with_a_bad_argument_answers_in_errors_and_sends_nothing(
    client, cart_recovery, product, staff_headers, variables, field, message
):
    response = call_api(client, SEND_TEST, variables, staff_headers)
    assert response.status_code == 200
    assert response.json()["data"]["sendTest"] == {
        "sent": False,
        "subject": None,
        "errors": [{"field": field, "message": message}],
    }
    assert mail.outbox == []


def test_preview_of_a_step_that_does_not_exist_is_an_error(client, cart_recovery, staff_headers):
    response = call_api(client, PREVIEW, {"step": 4}, staff_headers)
    body = response.json()
    assert body["data"] is None
    assert [error["message"] for error in body["errors"]] == ["step: The schedule has steps 1 to 3."]


@pytest.mark.parametrize(
    ("query", "variables"),
    [(PREVIEW, {"step": 1}), (SEND_TEST, {"step": 1, "email": "owner@shop.example"})],
    ids=["preview_case", "send_test_case"],
)
def test_preview_and_send_test_without_a_token_are_refused(client, cart_recovery, product, query, variables):
    response = call_api(client, query, variables, {})
    assert response.status_code == 401
    assert "data" not in response.json() and response.json()["errors"][0]["message"]
    assert mail.outbox == []


# -- 5. the new settings through pluginUpdate ---------------------------------------------------


OWNER_CONTROLS = {
    "audience": "consented",
    "consent_metadata_key": "newsletter_ok",
    "time_zone": "Europe/Istanbul",
    "quiet_hours": "21:00-08:00, 12:30-13:30",
    "frequency_cap": "1 per 24h",
    "min_cart_total": "25",
    "email_copy": "1 heading: Your basket misses you\n1 [tr] heading: Sepetiniz sizi özledi",
    "brand_color": "#0B6E4F",
    "logo_url": "https://shop.example.com/static/logo.png",
    "retention": "90d",
}


def test_good_owner_controls_are_stored_and_read_back_by_the_plugin(
    update_plugin, cart_recovery, channel_USD
):
    # when staff saves every new field with a good value
    result = update_plugin(OWNER_CONTROLS)

    # then there are no errors and each value is stored as given
    assert result["errors"] == []
    values = stored(channel_USD)
    assert {name: values[name] for name in OWNER_CONTROLS} == OWNER_CONTROLS
    # and the plugin reads them as the rules they describe
    settings = SaleorShop().channel_settings("main")
    assert settings.rules.needs_consent and settings.rules.consent_key == "newsletter_ok"
    assert str(settings.rules.time_zone) == "Europe/Istanbul"
    assert [str(w) for w in settings.rules.quiet_hours] == ["21:00-08:00", "12:30-13:30"]
    assert (settings.rules.frequency_cap.count, settings.rules.frequency_cap.period) == (1, DAY)
    assert settings.rules.min_cart_total == Decimal(25)
    assert (settings.look.brand_color, settings.look.logo_url) == ("#0B6E4F", OWNER_CONTROLS["logo_url"])
    assert settings.retention == 90 * DAY


@pytest.mark.parametrize(
    ("name", "value", "field", "says"),
    [
        ("time_zone", "Mars/Olympus", "timeZone", "Time zone: 'Mars/Olympus' is not an IANA time zone"),
        (
            "quiet_hours",
            "21:00-08:00, 07:00-09:00",
            "quietHours",
            "Quiet hours: windows 21:00-08:00 and 07:00-09:00 overlap",
        ),
        ("quiet_hours", "25:00-08:00", "quietHours", "Quiet hours: '25:00-08:00': hours go from 00 to 23"),
        ("quiet_hours", "9pm-8am", "quietHours", "Quiet hours: '9pm-8am' is not a window"),
        (
            "quiet_hours",
            "22:00-20:00",
            "quietHours",
            "Quiet hours: the windows leave only 2h a day for reminders",
        ),
        ("frequency_cap", "0 per 24h", "frequencyCap", "Frequency cap: the count must be from 1 to 100"),
        ("frequency_cap", "1 per 10m", "frequencyCap", "Frequency cap: must be between 1h and 30d"),
        ("min_cart_total", "-5", "minCartTotal", "Minimum cart total: must be between 0 and 1000000"),
        ("email_copy", "1 subtitle: Hello", "emailCopy", "Email copy: line 1: 'subtitle' is not a field"),
        ("email_copy", "4 heading: Hello", "emailCopy", "Email copy: step 4 has copy but the schedule"),
        (
            "email_copy",
            "1 heading: Hi {firstname}",
            "emailCopy",
            "Email copy: line 1: '{firstname}' is not a placeholder",
        ),
        (
            "logo_url",
            "http://shop.example.com/logo.png",
            "logoUrl",
            "Logo: 'http://shop.example.com/logo.png' is not an https:// address",
        ),
        ("brand_color", "green", "brandColor", "Brand colour: 'green' is not a colour; write it as #RRGGBB"),
        ("brand_color", "#0B6E4", "brandColor", "Brand colour: '#0B6E4' is not a colour"),
        ("retention", "29d", "retention", "Data retention: must be between 30d and 1095d"),
        ("retention", "1096d", "retention", "Data retention: must be between 30d and 1095d"),
        ("audience", "everyone", "audience", "Audience: 'everyone' is not an audience"),
        (
            "consent_metadata_key",
            "marketing consent",
            "consentMetadataKey",
            "Consent metadata key: 'marketing consent' is not a metadata key",
        ),
    ],
    ids=[
        "unknown_time_zone_case",
        "overlapping_quiet_hours_case",
        "impossible_hour_case",
        "unreadable_window_case",
        "too_little_open_time_case",
        "zero_per_day_cap_case",
        "cap_period_too_short_case",
        "negative_min_cart_total_case",
        "unknown_copy_field_case",
        "copy_for_a_step_beyond_the_schedule_case",
        "unknown_placeholder_case",
        "plain_http_logo_case",
        "colour_name_case",
        "short_hex_colour_case",
        "retention_too_short_case",
        "retention_too_long_case",
        "unknown_audience_case",
        "consent_key_with_a_space_case",
    ],
)
def test_a_bad_owner_control_is_rejected_naming_its_field_and_nothing_is_stored(
    update_plugin, cart_recovery, channel_USD, name, value, field, says
):
    # given the plugin is configured and active
    before = stored(channel_USD)

    # when staff saves one bad value along with good ones
    result = update_plugin({**OWNER_CONTROLS, name: value})

    # then the mutation answers with one error for that field, saying what is wrong
    [error] = result["errors"]
    assert error["field"] == field
    assert error["code"] == "INVALID"
    assert error["message"].startswith(says), error["message"]
    assert result["plugin"] is None
    # and nothing changed, not even the good values saved with it
    assert stored(channel_USD) == before
    assert before["audience"] == "all" and before["schedule"] == CONFIGURATION["schedule"]


# -- 6. cleanup of the plugin's expired coupons -------------------------------------------------


def test_cleanup_deletes_the_plugins_expired_unused_vouchers_and_keeps_used_valid_and_foreign_ones(
    abandoned_cart, enable_cart_recovery, run_dispatch, api_client, complete_checkout, voucher
):
    # given a coupon the shopper really used: issued with step 1, applied and ordered with
    enable_cart_recovery(coupon_step="1", coupon_type="fixed", coupon_value="5", coupon_valid_for="48h")
    dispatch_at(run_dispatch, T0 + HOUR)
    used_code = RecoveryMessage.objects.get(cart__checkout_token=abandoned_cart).voucher_code
    checkout = Checkout.objects.get(token=abandoned_cart)
    with freeze_time(T0 + 2 * HOUR):
        applied = api_client.post_graphql(
            "mutation ($id: ID, $code: String!) { checkoutAddPromoCode(id: $id, promoCode: $code) "
            "{ errors { field code } } }",
            {"id": gid(checkout), "code": used_code},
        )
        assert get_graphql_content(applied)["data"]["checkoutAddPromoCode"]["errors"] == []
        complete_checkout(abandoned_cart)
    assert VoucherCode.objects.get(code=used_code).used == 1
    # and two coupons the adapter issued that nobody used: one expired, one still valid
    with freeze_time(T0):
        expired, valid = (
            offers.issue_voucher(
                "main",
                discount_type="percentage",
                value=Decimal(10),
                min_total=None,
                expires_at=T0 + lifetime,
                name=f"Cart recovery {uuid4()}",
            )
            for lifetime in (2 * DAY, 30 * DAY)
        )
    # and the shop's own voucher, expired and unused, which is none of the plugin's business
    voucher.end_date = T0 + DAY
    voucher.save(update_fields=["end_date"])
    expired_voucher = Voucher.objects.get(codes__code=expired.code)

    # when the daily cleanup runs ten days later
    out = StringIO()
    with freeze_time(T0 + 10 * DAY):
        call_command("cart_recovery_cleanup", stdout=out)

    # then only the plugin's expired unused voucher is gone, with its code and channel listing
    assert "and 1 expired unused voucher\n" in out.getvalue()
    assert not Voucher.objects.filter(pk=expired_voucher.pk).exists()
    assert not VoucherCode.objects.filter(code=expired.code).exists()
    assert not VoucherChannelListing.objects.filter(voucher_id=expired_voucher.pk).exists()
    assert set(VoucherCode.objects.values_list("code", flat=True)) == {
        used_code,
        valid.code,
        *voucher.codes.values_list("code", flat=True),
    }
    # and the converted cart and its message are kept (well within the retention)
    assert RecoveryCart.objects.get(checkout_token=abandoned_cart).status == CartStatus.CONVERTED
    assert messages(abandoned_cart) == {1: ("sent", "")}


def test_cleanup_deletes_carts_past_the_channels_retention_but_not_newer_ones(
    api_client, enable_cart_recovery, channel_USD, stocked_variant, run_dispatch
):
    # given a retention of 30 days, and two carts whose series finished: one old, one recent
    enable_cart_recovery(retention="30d", schedule="1h", subjects="1: Forgot something?")
    with freeze_time(T0):
        old = create_checkout(api_client, channel_USD, stocked_variant, email="old@example.com")
    with freeze_time(T0 + 20 * DAY):
        recent = create_checkout(api_client, channel_USD, stocked_variant, email="recent@example.com")
    dispatch_at(run_dispatch, T0 + HOUR)
    dispatch_at(run_dispatch, T0 + 20 * DAY + HOUR)
    assert RecoveryCart.objects.get(checkout_token=old).status == CartStatus.FINISHED
    assert RecoveryCart.objects.get(checkout_token=recent).status == CartStatus.FINISHED

    # when the cleanup runs 31 days after the old cart was last touched
    with freeze_time(T0 + 31 * DAY + timedelta(hours=2)):
        call_command("cart_recovery_cleanup", stdout=StringIO())

    # then the old cart and its message are deleted, the recent one stays
    assert list(RecoveryCart.objects.values_list("checkout_token", flat=True)) == [recent]
    assert messages(old) == {} and messages(recent) == {1: ("sent", "")}
