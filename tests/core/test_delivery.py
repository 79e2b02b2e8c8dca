import re
import smtplib
import socket
import threading
import time
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core import mail
from django.db import connection
from freezegun import freeze_time

from saleor_cart_recovery.models import RecoveryCart, RecoveryMessage, Suppression
from saleor_cart_recovery.series import delivery
from saleor_cart_recovery.series.delivery import MAX_ATTEMPTS, RETRY_BASE, deliver, deliver_batch
from saleor_cart_recovery.series.dispatch import PREPARE_TIMEOUT, dispatch
from saleor_cart_recovery.shop import OrderLookup, OrderRef, match_orders
from tests.shopapp.models import ShopCheckout, ShopOrder
from tests.shopapp.shop import DbShop

from .conftest import START, make_checkout, touch

DUE = START + timedelta(hours=1)


@pytest.fixture
def planned(abandoned_cart):
    """Step 1 of the abandoned cart, planned by the dispatcher and waiting for its send task."""
    dispatch(now=DUE, send=lambda _: None)
    return RecoveryMessage.objects.get()


def send(message):
    with freeze_time(DUE):
        return deliver(message.id)


def test_due_reminder_is_sent_with_the_live_cart(planned, abandoned_cart, client):
    assert send(planned) == "sent"
    [email] = mail.outbox
    assert email.to == ["shopper@example.com"]
    assert email.subject == "Forgot something?"
    assert email.from_email == "Shop <shop@example.com>"
    assert "Blue Hoodie" in email.body and "Canvas Tote" in email.body
    assert "$92.30" in email.body  # 2 × 39.90 + 12.50
    # the cart link is tracked: it goes through the plugin, whose page leads to the storefront's cart
    [link] = re.findall(r"http://shop\.test/plugins/channel/main/saleor_cart_recovery/click/\S+", email.body)
    page = client.get(link.removeprefix("http://shop.test")).content.decode()
    assert f'<a id="go" href="https://shop.example.com/cart/{abandoned_cart.token}"' in page
    html = email.alternatives[0][0]
    assert "https://cdn.example.com/1.png" in html and "$79.80" in html
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email.extra_headers["List-Unsubscribe"].startswith(
        "<http://shop.test/plugins/saleor_cart_recovery/unsubscribe/"
    )
    planned.refresh_from_db()
    assert (planned.status, planned.subject, planned.recipient, planned.attempts) == (
        "sent",
        "Forgot something?",
        "shopper@example.com",
        1,
    )


def test_delivering_twice_sends_once(planned):
    assert send(planned) == "sent"
    assert send(planned) == "sent"
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_the_same_message_at_once_send_it_once(planned):
    # given one planned message, and preparing its email takes a moment: a claim that is not
    # exclusive would let both workers in before either has marked the message as sending
    compose = delivery.compose_email

    def slow_compose(*args, **kwargs):
        time.sleep(0.3)
        return compose(*args, **kwargs)

    barrier = threading.Barrier(2)
    statuses: list[str] = []
    errors: list[Exception] = []

    def worker():
        barrier.wait()
        try:
            statuses.append(deliver(planned.id))
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    # when two workers (a redelivered task) deliver it at the same moment
    with mock.patch.object(delivery, "compose_email", slow_compose):
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    # then exactly one email went out and the message is sent after a single attempt
    assert (errors, len(statuses), "sent" in statuses) == ([], 2, True)
    assert len(mail.outbox) == 1
    planned.refresh_from_db()
    assert (planned.status, planned.attempts) == ("sent", 1)


def test_turkish_checkout_gets_turkish_copy_and_money(channel, recovery_settings):
    checkout = make_checkout(channel, language="tr-TR")
    touch(checkout, START, recovery_settings)
    dispatch(now=DUE, send=lambda _: None)
    send(RecoveryMessage.objects.get())
    [email] = mail.outbox
    assert email.subject == "Bir şey mi unuttunuz?"
    assert "Sepetinize dönün" in email.body
    assert "$92,30" in email.body


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda c: ShopOrder.objects.create(
                checkout_token=c.token, email=c.email, total="92.30", created_at=START
            ),
            "purchased",
        ),
        (lambda c: c.lines.all().delete(), "cart_empty"),
        (lambda c: c.delete(), "checkout_deleted"),
        (lambda c: ShopCheckout.objects.filter(pk=c.pk).update(email=""), "no_email"),
        (
            lambda c: Suppression.objects.create(
                channel_slug="main", email=c.email, source="link", created_at=START
            ),
            "unsubscribed",
        ),
    ],
    ids=["purchased_case", "emptied_case", "deleted_case", "email_removed_case", "unsubscribed_case"],
)
def test_reminder_is_skipped_and_series_stopped_with_the_reason(planned, abandoned_cart, change, reason):
    change(abandoned_cart)
    assert send(planned) == "skipped"
    assert mail.outbox == []
    planned.refresh_from_db()
    cart = RecoveryCart.objects.get()
    assert planned.reason == reason
    assert cart.stop_reason == reason and cart.next_due_at is None
    assert cart.status == ("converted" if reason == "purchased" else "stopped")


def test_order_placed_between_claim_and_send_stops_the_email(planned, abandoned_cart):
    real_find = DbShop.find_orders
    calls = []

    def find_orders(shop, lookups):
        calls.append(lookups)
        if len(calls) == 2:  # the shopper pays while the reminder is being rendered
            ShopOrder.objects.create(
                checkout_token=lookups[0].checkout_token,
                email="shopper@example.com",
                total="92.30",
                created_at=DUE,
            )
        return real_find(shop, lookups)

    with mock.patch.object(DbShop, "find_orders", find_orders):
        assert send(planned) == "skipped"
    assert mail.outbox == []
    planned.refresh_from_db()
    assert planned.reason == "purchased"
    assert RecoveryCart.objects.get().order_total is not None


def test_temporary_failure_is_retried_with_backoff_then_given_up(planned):
    with mock.patch.object(delivery, "send_on", side_effect=delivery.SendFailed("connection refused")):
        for attempt in range(1, MAX_ATTEMPTS + 1):
            status = send(planned)
            planned.refresh_from_db()
            if attempt < MAX_ATTEMPTS:
                assert status == "scheduled"
                assert planned.attempt_after == DUE + RETRY_BASE * 2 ** (attempt - 1)
    assert (planned.status, planned.reason, planned.attempts) == ("failed", "retries_exhausted", MAX_ATTEMPTS)
    assert "connection refused" in planned.error


@pytest.mark.parametrize(
    ("refusal", "reason", "suppressed"),
    [
        (
            smtplib.SMTPRecipientsRefused({"shopper@example.com": (550, b"5.1.1 no such user")}),
            "bounced",
            True,
        ),
        (smtplib.SMTPDataError(550, b"5.1.1 mailbox unavailable"), "bounced", True),
        (smtplib.SMTPDataError(554, b"no such mailbox"), "bounced", True),
        (smtplib.SMTPDataError(554, b"5.7.1 message rejected as spam"), "send_refused", False),
        (
            smtplib.SMTPSenderRefused(550, b"5.7.1 sender not allowed", "shop@example.com"),
            "send_refused",
            False,
        ),
        (
            smtplib.SMTPRecipientsRefused({"shopper@example.com": (554, b"5.7.1 Relay access denied")}),
            "send_refused",
            False,
        ),
        (
            smtplib.SMTPRecipientsRefused({"shopper@example.com": (550, b"No such user here")}),
            "bounced",
            True,
        ),
    ],
    ids=[
        "rcpt_5xx_case",
        "data_mailbox_case",
        "data_no_status_case",
        "data_policy_case",
        "sender_case",
        "rcpt_relay_denied_case",
        "rcpt_no_status_case",
    ],
)
def test_permanent_refusal_fails_for_good_and_a_bounce_suppresses_the_address(
    planned, abandoned_cart, channel, recovery_settings, refusal, reason, suppressed
):
    # given the same shopper has a second cart whose series is live
    other = make_checkout(channel, email=abandoned_cart.email)
    touch(other, START, recovery_settings)
    # when the mail server refuses the reminder for good
    with mock.patch("django.core.mail.backends.locmem.EmailBackend.send_messages", side_effect=refusal):
        assert send(planned) == "failed"
    # then the message fails with the refusal's meaning and is never retried
    planned.refresh_from_db()
    assert (planned.reason, planned.attempts) == (reason, 1)
    # and only a refusal of the address (a bounce) suppresses it and stops all its series
    assert Suppression.objects.filter(email=abandoned_cart.email, source="bounced").exists() is suppressed
    stops = set(RecoveryCart.objects.values_list("stop_reason", flat=True))
    assert stops == ({"bounced"} if suppressed else {""})


def test_a_bounced_address_gets_no_later_step_of_any_series(
    planned, abandoned_cart, channel, recovery_settings
):
    # given the address bounced on step 1
    refused = smtplib.SMTPRecipientsRefused({"shopper@example.com": (550, b"5.1.1 no such user")})
    with mock.patch("django.core.mail.backends.locmem.EmailBackend.send_messages", side_effect=refused):
        send(planned)
    # when the shopper comes back and starts a new cart with the same address
    newer = make_checkout(channel, email=abandoned_cart.email)
    touch(newer, START + timedelta(days=2), recovery_settings)
    dispatch(now=START + timedelta(days=2, hours=1), send=lambda _: None)
    # then its first step is skipped as bounced and nothing is mailed
    message = RecoveryMessage.objects.get(cart__checkout_token=newer.token)
    with freeze_time(START + timedelta(days=2, hours=1)):
        assert deliver(message.id) == "skipped"
    message.refresh_from_db()
    assert (message.reason, mail.outbox) == ("bounced", [])


def test_order_through_another_checkout_stops_the_series_at_send_time(planned, abandoned_cart):
    # given the shopper bought through a new checkout and the order hook never ran (plugin off)
    ShopOrder.objects.create(
        checkout_token="another-checkout", email="SHOPPER@example.com", total="40", created_at=DUE
    )
    # when step 1 is sent
    assert send(planned) == "skipped"
    # then the send path found the order by email, and the cart is converted by it
    planned.refresh_from_db()
    cart = RecoveryCart.objects.get()
    assert (planned.reason, mail.outbox) == ("purchased", [])
    assert (cart.status, cart.conversion_match) == ("converted", "email")


def test_an_order_from_before_the_cart_was_abandoned_does_not_stop_it(planned, abandoned_cart):
    ShopOrder.objects.create(
        checkout_token="older",
        email=abandoned_cart.email,
        total="40",
        created_at=START - timedelta(minutes=1),
    )
    assert send(planned) == "sent"


def test_last_step_finishes_the_series(abandoned_cart, django_capture_on_commit_callbacks):
    for delay in (timedelta(hours=1), timedelta(days=1), timedelta(days=3)):
        with freeze_time(START + delay), django_capture_on_commit_callbacks(execute=True):
            dispatch(send=deliver_batch)
    assert [m.subject for m in mail.outbox] == ["Forgot something?", "Still thinking?", "Last call"]
    assert RecoveryCart.objects.get().status == "finished"
    assert "last reminder" in mail.outbox[-1].body


def test_connection_broken_mid_transfer_is_failed_not_resent(planned):
    # the server may already have the message: a retry could mail the step twice
    broken = smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
    with mock.patch("django.core.mail.backends.locmem.EmailBackend.send_messages", side_effect=broken):
        assert send(planned) == "failed"
    planned.refresh_from_db()
    assert (planned.reason, planned.attempts) == ("interrupted", 1)
    assert planned.id not in dispatch(now=DUE + timedelta(hours=2), send=lambda _: None).enqueued


def test_unreachable_mail_server_is_retried(planned, channel):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel.configuration = [
        *channel.configuration,
        {"name": "smtp_url", "value": f"smtp://127.0.0.1:{port}"},
    ]
    channel.save()
    assert send(planned) == "scheduled"
    planned.refresh_from_db()
    assert "could not reach the mail server" in planned.error


def test_unsubscribe_between_claim_and_send_stops_the_email(planned, abandoned_cart):
    real_find = DbShop.find_orders
    calls = []

    def find_orders(shop, lookups):
        calls.append(lookups)
        if len(calls) == 2:  # the shopper unsubscribes while the reminder is being rendered
            Suppression.objects.create(
                channel_slug="main", email=abandoned_cart.email, source="link", created_at=DUE
            )
        return real_find(shop, lookups)

    with mock.patch.object(DbShop, "find_orders", find_orders):
        assert send(planned) == "skipped"
    planned.refresh_from_db()
    assert (planned.reason, mail.outbox) == ("unsubscribed", [])


def test_step_removed_from_the_schedule_after_planning_is_skipped(channel, abandoned_cart):
    for delay in (timedelta(hours=1), timedelta(days=1)):
        dispatch(now=START + delay, send=lambda _: None)
        RecoveryMessage.objects.filter(status="scheduled").update(status="sent")  # the send task ran
    dispatch(now=START + timedelta(days=3), send=lambda _: None)
    channel.configuration = [
        *[item for item in channel.configuration if item["name"] not in ("schedule", "subjects")],
        {"name": "schedule", "value": "1h, 1d"},
        {"name": "subjects", "value": "1: Forgot something?\n2: Still thinking?"},
    ]
    channel.save()
    step_3 = RecoveryMessage.objects.get(step=3)
    assert send(step_3) == "skipped"
    step_3.refresh_from_db()
    assert step_3.reason == "step_removed"


def test_message_that_cannot_be_prepared_is_given_up_after_the_attempts(planned):
    with mock.patch.object(delivery, "compose_email", side_effect=RuntimeError("template broke")):
        statuses = [send(planned) for _ in range(MAX_ATTEMPTS)]
    planned.refresh_from_db()
    assert statuses == ["scheduled"] * (MAX_ATTEMPTS - 1) + ["failed"]
    assert (planned.reason, planned.attempts, mail.outbox) == ("prepare_failed", MAX_ATTEMPTS, [])


def test_an_unexpected_backend_error_after_the_hand_over_is_recorded_not_left_sending(planned):
    # given an email backend that fails in its own way while sending (not an SMTP error)
    with mock.patch(
        "django.core.mail.backends.locmem.EmailBackend.send_messages", side_effect=RuntimeError("api down")
    ):
        status = send(planned)
    # then the message is not left "sending": it may have gone out, so it is interrupted, not resent
    planned.refresh_from_db()
    assert (status, planned.status, planned.reason) == ("failed", "failed", "interrupted")
    assert "api down" in planned.error


def test_a_failed_last_step_still_finishes_the_series(abandoned_cart):
    # given steps 1 and 2 went out and step 3 cannot reach the mail server five times
    for delay in (timedelta(hours=1), timedelta(days=1)):
        dispatch(now=START + delay, send=lambda _: None)
        with freeze_time(START + delay):
            deliver(RecoveryMessage.objects.get(status="scheduled").id)
    dispatch(now=START + timedelta(days=3), send=lambda _: None)
    step_3 = RecoveryMessage.objects.get(step=3)
    with mock.patch.object(delivery, "send_on", side_effect=delivery.SendFailed("down")):
        for _ in range(MAX_ATTEMPTS):
            with freeze_time(START + timedelta(days=4)):
                deliver(step_3.id)
    # then the step is given up and the series is finished, not left active forever
    step_3.refresh_from_db()
    assert (step_3.status, step_3.reason) == ("failed", "retries_exhausted")
    assert RecoveryCart.objects.get().status == "finished"


def test_a_shopper_back_on_the_site_gets_no_reminder_until_quiet_again(
    planned, abandoned_cart, recovery_settings
):
    # given the shopper touched the cart after step 1 was planned, before its send task ran
    touch(abandoned_cart, DUE + timedelta(minutes=1), recovery_settings)
    # when the send task runs
    with freeze_time(DUE + timedelta(minutes=2)):
        assert deliver(planned.id) == "scheduled"
    # then nothing went out and the step waits a full delay after the new activity, uncounted
    planned.refresh_from_db()
    assert mail.outbox == []
    assert (planned.attempts, planned.attempt_after) == (0, DUE + timedelta(minutes=1) + timedelta(hours=1))
    # and once the shopper stayed away that long, it goes out
    with freeze_time(DUE + timedelta(hours=1, minutes=2)):
        assert deliver(planned.id) == "sent"
    assert len(mail.outbox) == 1


def test_a_stale_claim_reclaimed_by_the_dispatcher_cannot_send_or_record(planned):
    # given worker A claimed the message and then stalled longer than the preparation timeout
    with freeze_time(DUE):
        attempt_a = delivery._claim([planned.id])[planned.id]
    dispatch(now=DUE + PREPARE_TIMEOUT + timedelta(seconds=1), send=lambda _: None)
    planned.refresh_from_db()
    assert planned.status == "scheduled"
    # when worker B takes it over and sends it
    with freeze_time(DUE + PREPARE_TIMEOUT + timedelta(seconds=2)):
        assert deliver(planned.id) == "sent"
    # then A, waking up, can neither prepare nor record anything for its old claim
    with freeze_time(DUE + PREPARE_TIMEOUT + timedelta(seconds=3)):
        assert delivery._prepare(DbShop(), {planned.id: attempt_a}) == []
        delivery._release(planned.id, attempt_a, "prepare_failed", error="late")
    planned.refresh_from_db()
    assert (planned.status, planned.attempts, len(mail.outbox)) == ("sent", 2, 1)


def test_a_claim_that_keeps_dying_is_given_up(planned):
    # given the message was claimed MAX_ATTEMPTS times by workers that all died while preparing
    RecoveryMessage.objects.filter(pk=planned.pk).update(
        status="sending", attempts=MAX_ATTEMPTS, updated_at=DUE
    )
    # when the dispatcher sweeps
    result = dispatch(now=DUE + PREPARE_TIMEOUT + timedelta(seconds=1), send=lambda _: None)
    # then it is failed/prepare_failed instead of being handed out forever
    planned.refresh_from_db()
    assert (result.reclaimed, planned.status, planned.reason) == (1, "failed", "prepare_failed")


def test_orders_are_matched_per_lookup_in_one_batch():
    # given orders of two shoppers in two channels, read for a batch of carts at once
    at = DUE

    def order(number, token, minutes):
        return OrderRef(
            str(number), str(number), token, "", Decimal(10), "USD", at + timedelta(minutes=minutes)
        )

    candidates = [
        (order(1, "tok-a", 0), "main", ["Ann@Example.com"]),  # cart a's own order
        (order(2, "other", 5), "main", ["", "ann@example.com"]),  # Ann, via her account, later
        (order(3, "other2", 10), "second", ["bob@example.com"]),  # Bob in another channel
        (order(4, "old", -120), "main", ["bob@example.com"]),  # Bob before his cart's activity
    ]
    lookups = [
        OrderLookup("tok-a", "main", "nobody@example.com", at),  # by token whatever the address
        OrderLookup("tok-b", "main", "ANN@example.com", at),  # by address, newest since `since`
        OrderLookup(
            "tok-c", "main", "bob@example.com", at - timedelta(hours=1)
        ),  # Bob's order is older than that
        OrderLookup("tok-d", "second", "bob@example.com", at + timedelta(minutes=11)),  # after it
    ]
    found = match_orders(lookups, candidates)
    assert {token: order.number for token, order in found.items()} == {"tok-a": "1", "tok-b": "2"}


def test_an_address_changed_while_the_email_was_prepared_gets_nothing_now(planned, abandoned_cart):
    real_find = DbShop.find_orders
    calls = []

    def find_orders(shop, lookups):
        calls.append(lookups)
        if len(calls) == 2:  # the cart's address changes after the email was rendered for the old one
            RecoveryCart.objects.update(email="new-address@example.com")
        return real_find(shop, lookups)

    with mock.patch.object(DbShop, "find_orders", find_orders):
        assert send(planned) == "scheduled"
    # nothing went to the old address; the step waits (uncounted) and is prepared again later
    planned.refresh_from_db()
    assert mail.outbox == [] and planned.attempts == 0
