"""The whole reminder series against real Saleor checkouts and orders, with a frozen clock."""

import re
from decimal import Decimal
from urllib.parse import urlsplit

from django.core import mail
from freezegun import freeze_time
from saleor.checkout.models import Checkout

from saleor_cart_recovery.models import CartStatus, MessageStatus, RecoveryCart, RecoveryMessage
from saleor_cart_recovery.series import delivery

from .utils import CHECKOUT_LINES_DELETE, DAY, HOUR, MINUTE, SUBJECTS, T0, dispatch_at, gid, mutate


def messages(token):
    return {m.step: (m.status, m.reason) for m in RecoveryMessage.objects.filter(cart__checkout_token=token)}


def test_each_step_goes_out_once_when_due_with_the_live_cart(abandoned_cart, run_dispatch, client):
    token = abandoned_cart
    # when the dispatcher runs just before the first step is due
    dispatch_at(run_dispatch, T0 + HOUR - MINUTE)
    # then nothing is sent
    assert mail.outbox == []

    # when it runs at the due moment of step 1, and again right after
    dispatch_at(run_dispatch, T0 + HOUR)
    dispatch_at(run_dispatch, T0 + HOUR + MINUTE)

    # then exactly one email went out, addressed to the shopper, with the configured subject
    assert len(mail.outbox) == 1
    first = mail.outbox[0]
    assert first.subject == SUBJECTS[1]
    assert first.to == ["shopper@example.com"]
    assert first.from_email == "Test Shop <shop@example.com>"
    # and it shows every line with name and quantity, the total with its currency and the link
    html = first.alternatives[0][0]
    assert "Test product — Qty 3 — $30.00" in first.body
    assert "Test product with two variants — Qty 2 — $20.00" in first.body
    assert "Total: $50.00" in first.body
    # and the cart link is tracked through the plugin's click endpoint, landing on the cart page
    [link] = re.findall(
        r"Return to your cart: (https://example\.com/plugins/channel/main/\S+/click/\S+)", first.body
    )
    assert f'href="{link}"' in html and "$50.00" in html
    page = client.get(urlsplit(link).path).content.decode()
    assert f'href="https://shop.example.com/cart/{token}"' in page
    # and it carries RFC 8058 one-click unsubscribe headers pointing at the plugin's endpoint
    unsubscribe = first.extra_headers["List-Unsubscribe"]
    # on the channel-less path, which Saleor serves even while the plugin is switched off
    assert unsubscribe.startswith("<https://example.com/plugins/saleor_cart_recovery/unsubscribe/")
    assert unsubscribe.endswith(">")
    assert first.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe[1:-1] in first.body

    # when the dispatcher runs before, at and after step 2's moment (1d after the last activity)
    dispatch_at(run_dispatch, T0 + DAY - MINUTE)
    assert len(mail.outbox) == 1
    dispatch_at(run_dispatch, T0 + DAY)
    assert [m.subject for m in mail.outbox] == [SUBJECTS[1], SUBJECTS[2]]

    # and step 3 (3d)
    dispatch_at(run_dispatch, T0 + 3 * DAY - MINUTE)
    assert len(mail.outbox) == 2
    dispatch_at(run_dispatch, T0 + 3 * DAY)
    assert [m.subject for m in mail.outbox] == [SUBJECTS[1], SUBJECTS[2], SUBJECTS[3]]
    assert "This is the last reminder" in mail.outbox[2].body

    # then later cycles send nothing more and the series is finished
    dispatch_at(run_dispatch, T0 + 30 * DAY)
    dispatch_at(run_dispatch, T0 + 30 * DAY)
    assert len(mail.outbox) == 3
    assert messages(token) == {step: (MessageStatus.SENT, "") for step in (1, 2, 3)}
    assert RecoveryCart.objects.get(checkout_token=token).status == CartStatus.FINISHED


def test_the_management_command_runs_a_cycle(abandoned_cart, run_dispatch_command):
    # when an operator runs the command before anything is due
    with freeze_time(T0 + 30 * MINUTE):
        output = run_dispatch_command()
    # then it says it did nothing and sends nothing
    assert "planned 0 messages " in output
    assert mail.outbox == []

    # when it runs once step 1 is due, and again
    with freeze_time(T0 + 2 * HOUR):
        output = run_dispatch_command()
        again = run_dispatch_command()

    # then one reminder was sent, and the second run had nothing to do
    assert "planned 1 message " in output and "sent: 1" in output
    assert "planned 0 messages " in again and "enqueued 0 sends " in again
    assert [m.subject for m in mail.outbox] == [SUBJECTS[1]]


def test_an_order_stops_the_series_and_keeps_the_real_total(abandoned_cart, run_dispatch, complete_checkout):
    token = abandoned_cart
    # given step 1 went out
    dispatch_at(run_dispatch, T0 + HOUR)
    assert len(mail.outbox) == 1

    # when the shopper places the order from this checkout
    with freeze_time(T0 + 2 * HOUR):
        order = complete_checkout(token)

    # then the cart is converted with the order's real total and number
    cart = RecoveryCart.objects.get(checkout_token=token)
    assert cart.status == CartStatus.CONVERTED
    assert cart.stop_reason == "purchased"
    assert cart.order_total == order.total_gross_amount
    assert cart.order_total >= Decimal("50.00")
    assert cart.order_currency == "USD"
    assert cart.order_number == str(order.number)
    assert cart.conversion_match == "token"

    # and when step 2 would have been due, nothing is sent
    dispatch_at(run_dispatch, T0 + DAY)
    dispatch_at(run_dispatch, T0 + 3 * DAY)
    assert len(mail.outbox) == 1
    assert messages(token) == {1: (MessageStatus.SENT, "")}


def test_an_order_placed_between_claim_and_send_gets_no_email(
    abandoned_cart, run_dispatch, complete_checkout, monkeypatch
):
    token = abandoned_cart
    # given the shopper completes the checkout right after the send task claimed step 1
    claim = delivery._claim

    def claim_then_order(message_id):
        attempt = claim(message_id)
        complete_checkout(token)
        return attempt

    monkeypatch.setattr(delivery, "_claim", claim_then_order)

    # when step 1 is dispatched
    dispatch_at(run_dispatch, T0 + HOUR)

    # then no email went out and the step is recorded as skipped because of the purchase
    assert mail.outbox == []
    assert messages(token) == {1: (MessageStatus.SKIPPED, "purchased")}
    assert RecoveryCart.objects.get(checkout_token=token).status == CartStatus.CONVERTED


def test_an_order_the_hook_missed_is_found_before_sending(
    abandoned_cart, run_dispatch, complete_checkout, enable_cart_recovery, monkeypatch
):
    token = abandoned_cart
    # given the order was placed while the order hook failed (nothing recorded by it)
    monkeypatch.setattr("saleor_cart_recovery.plugin.record_order", lambda *a, **k: 1 / 0)
    with freeze_time(T0 + 10 * MINUTE):
        order = complete_checkout(token)
    assert RecoveryCart.objects.get(checkout_token=token).status == CartStatus.ACTIVE

    # when step 1 comes due
    dispatch_at(run_dispatch, T0 + HOUR)

    # then the send task finds the order by the checkout token and sends nothing
    assert mail.outbox == []
    assert messages(token) == {1: (MessageStatus.SKIPPED, "purchased")}
    cart = RecoveryCart.objects.get(checkout_token=token)
    assert cart.status == CartStatus.CONVERTED
    assert cart.order_total == order.total_gross_amount


def test_a_deleted_checkout_is_skipped(abandoned_cart, run_dispatch):
    token = abandoned_cart
    # given Saleor deleted the checkout (e.g. its expired-checkout cleanup); no hook fires then
    Checkout.objects.filter(token=token).delete()

    # when step 1 comes due
    dispatch_at(run_dispatch, T0 + HOUR)

    # then nothing is sent, the step records why, and the series stops
    assert mail.outbox == []
    assert messages(token) == {1: (MessageStatus.SKIPPED, "checkout_deleted")}
    cart = RecoveryCart.objects.get(checkout_token=token)
    assert (cart.status, cart.stop_reason, cart.next_due_at) == (CartStatus.STOPPED, "checkout_deleted", None)
    dispatch_at(run_dispatch, T0 + 3 * DAY)
    assert mail.outbox == []


def test_an_emptied_checkout_is_skipped(abandoned_cart, api_client, run_dispatch):
    token = abandoned_cart
    # given the shopper removes every line through the API
    checkout = Checkout.objects.get(token=token)
    with freeze_time(T0 + 10 * MINUTE):
        mutate(
            api_client,
            CHECKOUT_LINES_DELETE,
            {"id": gid(checkout), "linesIds": [gid(line) for line in checkout.lines.all()]},
            "checkoutLinesDelete",
        )
    assert not checkout.lines.exists()

    # when step 1 comes due (1h after that last activity)
    dispatch_at(run_dispatch, T0 + 10 * MINUTE + HOUR)

    # then nothing is sent and the step is skipped because the cart is empty
    assert mail.outbox == []
    assert messages(token) == {1: (MessageStatus.SKIPPED, "cart_empty")}
    assert RecoveryCart.objects.get(checkout_token=token).stop_reason == "cart_empty"
