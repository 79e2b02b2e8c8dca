"""End to end with real parts: PostgreSQL, a Redis broker, a Celery worker process and an SMTP server.

The test process records cart activity and runs the dispatcher exactly as beat would; a separate
``celery worker`` process (pointed at pytest's test database) runs the send tasks and talks SMTP
to an aiosmtpd server on loopback. Assertions are made on the mail the server RECEIVED and on
the rows the worker left behind.

Time control without freezegun (the worker has its own clock): activity is recorded in the past,
and later steps are planned by calling ``dispatch(now=...)`` with an explicit future moment.
"""

import re
from datetime import timedelta
from decimal import Decimal
from email.utils import parseaddr

import pytest
from django.utils import timezone

from saleor_cart_recovery.email.tokens import read_click_token, read_unsubscribe_token
from saleor_cart_recovery.models import CartStatus, MessageStatus, Reason, RecoveryCart, RecoveryMessage
from saleor_cart_recovery.series.dispatch import dispatch
from saleor_cart_recovery.settings.channel import RecoverySettings
from saleor_cart_recovery.tasks import enqueue_send, send_reminder
from tests.shopapp.models import ShopChannel, ShopOrder, ShopVoucher

from .conftest import make_checkout, touch, with_smtp
from .realparts import Inbox, Worker, dispatchers_at_once, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def channel(smtp_server):
    controller, _ = smtp_server
    return ShopChannel.objects.create(slug="e2e", configuration=with_smtp(controller.port))


def all_handled() -> bool:
    """No message is waiting for or inside a send task."""
    return not RecoveryMessage.objects.filter(
        status__in=[MessageStatus.SCHEDULED, MessageStatus.SENDING]
    ).exists()


def redeliver_all(worker: Worker):
    """What a broker redelivery or a second worker does: every message handed out again, twice."""
    ids = [
        send_reminder.delay(message_id).id
        for message_id in RecoveryMessage.objects.values_list("id", flat=True)
        for _ in range(2)
    ]
    wait_until(lambda: worker.finished(ids), f"{len(ids)} redelivered send tasks", worker)


def steps_received(inbox: Inbox) -> list[tuple[str, str]]:
    return sorted((r.rcpt_tos[0], str(r.message["Subject"])) for r in inbox.received)


# --- tests -------------------------------------------------------------------------------------


def test_due_carts_get_exactly_one_reminder_over_real_smtp(
    celery_for_real, inbox, channel, recovery_settings
):
    worker = celery_for_real
    now = timezone.now()
    alice = make_checkout(channel, email="alice@example.com", lines=2)
    bob = make_checkout(channel, email="bob@example.com", lines=3)
    carol = make_checkout(channel, email="carol@example.com", lines=1)  # bought: gets nothing
    dave = make_checkout(channel, email="dave@example.com", lines=1)  # left 10 minutes ago: not due
    for checkout in (alice, bob, carol):
        touch(checkout, now - 2 * HOUR, recovery_settings)
    touch(dave, now - timedelta(minutes=10), recovery_settings)
    ShopOrder.objects.create(
        checkout_token=carol.token, email=carol.email, total=Decimal("12.50"), created_at=now - HOUR
    )

    # Two dispatchers at the same moment (beat fired twice, two beat processes, ...).
    results = dispatchers_at_once(2)
    assert sum(r.planned for r in results) == 3
    enqueued = [message_id for r in results for message_id in r.enqueued]
    assert len(enqueued) == len(set(enqueued)) == 3

    wait_until(lambda: len(inbox.received) >= 2 and all_handled(), "2 reminders at the SMTP server", worker)

    # And once more in a row, then every send task redelivered twice: nothing new goes out.
    again = dispatch(send=enqueue_send)
    assert (again.planned, again.enqueued) == (0, [])
    redeliver_all(worker)
    assert steps_received(inbox) == [
        ("alice@example.com", "Forgot something?"),
        ("bob@example.com", "Forgot something?"),
    ]

    # What Alice's mail server received.
    (mail,) = inbox.to("alice@example.com")
    assert mail.rcpt_tos == ("alice@example.com",)
    assert mail.mail_from == "shop@example.com"
    assert parseaddr(str(mail.message["From"])) == ("Shop", "shop@example.com")
    assert str(mail.message["To"]) == "alice@example.com"
    assert str(mail.message["Subject"]) == "Forgot something?"
    text = mail.part("text/plain")
    assert "- Blue Hoodie (XL) — Qty 2 — $79.80" in text
    assert "- Canvas Tote — Qty 1 — $12.50" in text
    assert "Total: $92.30" in text
    # the cart link is tracked: a signed click token naming Alice's step-1 message
    link = re.search(r"Return to your cart: (http://shop\.test/plugins/channel/e2e/\S+/click/(\S+))", text)
    assert link, text
    clicked = RecoveryMessage.objects.get(pk=read_click_token(link.group(2)).message_id)
    assert (clicked.cart.checkout_token, clicked.step) == (alice.token, 1)

    html = mail.part("text/html")
    assert "Blue Hoodie" in html and "Canvas Tote" in html
    assert "Qty 2 × $39.90" in html and "Qty 1 × $12.50" in html
    assert "$79.80" in html and "$92.30" in html
    assert f'href="{link.group(1)}"' in html
    assert 'src="https://cdn.example.com/1.png"' in html
    assert "style=" in html  # CSS was inlined for mail clients

    unsubscribe = str(mail.message["List-Unsubscribe"]).strip()  # long: folded after the colon
    match = re.fullmatch(r"<(https?://[^>]+/unsubscribe/([^>/]+))>", unsubscribe)
    assert match, unsubscribe
    # the link names Alice's reminder (opaque: no address in it) and works on the channel-less path
    claim = read_unsubscribe_token(match.group(2))
    reminder = RecoveryMessage.objects.get(pk=claim.message_id)
    assert (reminder.cart.checkout_token, reminder.recipient) == (alice.token, "alice@example.com")
    assert "/plugins/saleor_cart_recovery/unsubscribe/" in match.group(1)
    assert str(mail.message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert match.group(1) in text and f'href="{match.group(1)}"' in html

    # Bob's cart: three lines.
    (mail,) = inbox.to("bob@example.com")
    bob_text = mail.part("text/plain")
    assert "Socks (M) — Qty 3 — $15.00" in bob_text
    assert "Total: $107.30" in bob_text
    bob_link = re.search(r"Return to your cart: \S+/click/(\S+)", bob_text)
    bob_message = RecoveryMessage.objects.get(pk=read_click_token(bob_link.group(1)).message_id)
    assert bob_message.cart.checkout_token == bob.token

    # What the worker recorded.
    sent = RecoveryMessage.objects.filter(status=MessageStatus.SENT).select_related("cart")
    assert sorted((m.cart.checkout_token, m.step) for m in sent) == sorted([(alice.token, 1), (bob.token, 1)])
    for message in sent:
        assert message.subject == "Forgot something?"
        assert message.sent_at is not None and message.attempts == 1 and message.error == ""
    (skipped,) = RecoveryMessage.objects.exclude(status=MessageStatus.SENT)
    assert (skipped.cart.checkout_token, skipped.status, skipped.reason) == (
        carol.token,
        MessageStatus.SKIPPED,
        Reason.PURCHASED,
    )
    carol_cart = RecoveryCart.objects.get(checkout_token=carol.token)
    assert (carol_cart.status, carol_cart.next_due_at, carol_cart.order_total) == (
        CartStatus.CONVERTED,
        None,
        Decimal("12.50"),
    )
    assert not RecoveryMessage.objects.filter(cart__checkout_token=dave.token).exists()
    assert RecoveryCart.objects.get(checkout_token=dave.token).next_due_at > now


def test_series_runs_step_by_step_and_finishes(celery_for_real, inbox, channel, recovery_settings):
    worker = celery_for_real
    now = timezone.now()
    checkout = make_checkout(channel, email="erin@example.com", lines=2)
    # Gone for two days: step 2's delay has passed too, but the series starts at step 1 and keeps
    # the configured gap (23 h) before step 2 — no backlog of reminders minutes apart.
    touch(checkout, now - 2 * DAY, recovery_settings)

    schedule = [
        (now, "Forgot something?", "You left something in your cart"),
        (now + 23 * HOUR + timedelta(minutes=1), "Still thinking?", "Your cart at Test Shop is still saved."),
        (now + 3 * DAY, "Last call", "This is the last reminder we will send about this cart."),
    ]
    for count, (moment, subject, wording) in enumerate(schedule, start=1):
        result = dispatch(now=moment, send=enqueue_send)
        assert (result.planned, len(result.enqueued)) == (1, 1), (count, str(result))
        wait_until(
            lambda count=count: len(inbox.received) >= count and all_handled(), f"step {count}", worker
        )
        latest = inbox.received[-1]
        assert str(latest.message["Subject"]) == subject
        assert wording in latest.part("text/plain")
        assert "Total: $92.30" in latest.part("text/plain")
        # Nothing else is due at that moment.
        assert dispatch(now=moment, send=enqueue_send).planned == 0

    redeliver_all(worker)
    assert [str(r.message["Subject"]) for r in inbox.received] == [s for _, s, _ in schedule]
    assert list(RecoveryMessage.objects.order_by("step").values_list("step", "status")) == [
        (1, MessageStatus.SENT),
        (2, MessageStatus.SENT),
        (3, MessageStatus.SENT),
    ]
    cart = RecoveryCart.objects.get(checkout_token=checkout.token)
    assert (cart.status, cart.steps_planned, cart.next_due_at) == (CartStatus.FINISHED, 3, None)
    assert dispatch(now=now + 30 * DAY, send=enqueue_send).planned == 0


def test_coupon_step_mails_one_single_use_code_over_real_smtp(celery_for_real, inbox, channel):
    worker = celery_for_real
    channel.configuration = [
        *channel.configuration,
        {"name": "coupon_step", "value": "1"},
        {"name": "coupon_type", "value": "fixed"},
        {"name": "coupon_value", "value": "5"},
        {"name": "coupon_valid_for", "value": "48h"},
    ]
    channel.save()
    settings = RecoverySettings.from_plugin_configuration(channel.configuration)
    now = timezone.now()
    checkout = make_checkout(channel, email="frank@example.com", lines=2)
    touch(checkout, now - 2 * HOUR, settings)

    assert dispatch(now=now, send=enqueue_send).planned == 1
    wait_until(lambda: len(inbox.received) == 1 and all_handled(), "the coupon email", worker)
    redeliver_all(worker)  # a redelivered task must neither mail again nor issue a second code

    [voucher] = ShopVoucher.objects.all()
    assert (voucher.usage_limit, voucher.value, voucher.channel.slug) == (1, Decimal("5.00"), "e2e")
    [received] = inbox.received
    text, html = received.part("text/plain"), received.part("text/html")
    for body in (text, html):
        assert voucher.code in body and "$5.00" in body
    assert "It works once and only in this shop." in text
    message = RecoveryMessage.objects.get(cart__checkout_token=checkout.token)
    assert (message.status, message.content, message.voucher_code) == (
        MessageStatus.SENT,
        "discount",
        voucher.code,
    )
