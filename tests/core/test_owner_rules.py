"""The owner's sending rules on the send path: consent read at send time, quiet hours in the
shopper's zone (postponed, never bunched), the minimum cart, the frequency cap across carts (also
under two workers at once) and one coupon per address."""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, transaction
from freezegun import freeze_time

from saleor_cart_recovery.models import RecoveryCart, RecoveryMessage
from saleor_cart_recovery.series import caps
from saleor_cart_recovery.series.delivery import deliver_batch
from saleor_cart_recovery.series.dispatch import dispatch
from saleor_cart_recovery.settings.channel import RecoverySettings
from tests.shopapp.models import ShopVoucher

from .conftest import CONFIGURATION, START, make_checkout, touch

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
STEP_1, STEP_2 = START + HOUR, START + DAY  # START is 09:00 UTC


def configure(channel, **values) -> RecoverySettings:
    channel.configuration = [*CONFIGURATION, *({"name": k, "value": v} for k, v in values.items())]
    channel.save()
    return RecoverySettings.from_plugin_configuration(channel.configuration)


@pytest.fixture
def run_step(django_capture_on_commit_callbacks):
    """One dispatch cycle at ``moment`` that sends in this process, as the task would."""

    def run(moment):
        with freeze_time(moment), django_capture_on_commit_callbacks(execute=True):
            return dispatch(send=deliver_batch)

    return run


def steps(checkout) -> list[tuple[int, str, str]]:
    return list(
        RecoveryMessage.objects.filter(cart__checkout_token=checkout.token)
        .order_by("step")
        .values_list("step", "status", "reason")
    )


def test_consent_is_read_at_each_send_and_a_step_without_it_is_skipped(channel, run_step):
    # given reminders only for consenting shoppers, and a checkout without consent
    settings = configure(channel, audience="consented", consent_metadata_key="marketing_consent")
    checkout = make_checkout(channel)
    touch(checkout, START, settings)
    # when step 1 is due: skipped, no mail, the series goes on
    run_step(STEP_1)
    assert steps(checkout) == [(1, "skipped", "no_consent")] and mail.outbox == []
    assert RecoveryCart.objects.get().status == "active"
    # when the storefront records consent afterwards, on the customer account
    checkout.account_metadata = {"marketing_consent": "yes"}
    checkout.save()
    run_step(STEP_2)
    # then step 2 goes out
    assert steps(checkout) == [(1, "skipped", "no_consent"), (2, "sent", "")]
    assert [email.subject for email in mail.outbox] == ["Still thinking?"]


def test_the_checkouts_own_answer_wins_over_the_accounts(channel, run_step):
    settings = configure(channel, audience="consented")
    checkout = make_checkout(channel)
    checkout.metadata, checkout.account_metadata = (
        {"marketing_consent": "false"},
        {"marketing_consent": "true"},
    )
    checkout.save()
    touch(checkout, START, settings)
    run_step(STEP_1)
    assert steps(checkout) == [(1, "skipped", "no_consent")] and mail.outbox == []


def test_a_step_due_in_quiet_hours_waits_for_them_to_end_in_the_shoppers_zone(channel, run_step):
    # given quiet hours 21:00-08:00, a shopper in Istanbul (UTC+3) who left at 17:30 UTC
    settings = configure(channel, quiet_hours="21:00-08:00", time_zone="UTC", schedule="1h, 3h, 3d")
    checkout = make_checkout(channel)
    checkout.country = "TR"
    checkout.save()
    left = START.replace(hour=17, minute=30)
    touch(checkout, left, settings)
    # when step 1 is due at 18:30 UTC (21:30 in Istanbul)
    run_step(left + HOUR)
    # then it is not sent but waits, scheduled, until 08:00 Istanbul = 05:00 UTC
    message = RecoveryMessage.objects.get()
    assert (message.status, message.reason, message.attempts) == ("scheduled", "quiet_hours", 0)
    morning = START.replace(hour=5, minute=0) + DAY
    assert message.attempt_after == morning and mail.outbox == []
    # and nothing goes out during the night, step 2 (due 20:30 UTC) included
    for moment in (left + 3 * HOUR, morning - timedelta(minutes=1)):
        run_step(moment)
    assert mail.outbox == []
    # when the window ends, step 1 goes out ...
    run_step(morning)
    assert steps(checkout) == [(1, "sent", "")]
    # ... and step 2 keeps its configured gap (2h) after it instead of following at once
    run_step(morning + timedelta(minutes=5))
    assert len(mail.outbox) == 1
    run_step(morning + 2 * HOUR)
    assert [step for step, status, _ in steps(checkout) if status == "sent"] == [1, 2]


def test_the_checkouts_time_zone_metadata_beats_the_address(channel, run_step):
    # given a Turkish address but the browser said New York: at 18:30 UTC it is 13:30 there
    settings = configure(channel, quiet_hours="21:00-08:00")
    checkout = make_checkout(channel)
    checkout.country, checkout.metadata = "TR", {"time_zone": "America/New_York"}
    checkout.save()
    left = START.replace(hour=17, minute=30)
    touch(checkout, left, settings)
    run_step(left + HOUR)
    assert steps(checkout) == [(1, "sent", "")]


def test_a_cart_below_the_minimum_gets_nothing_until_it_grows(channel, run_step):
    # given a minimum of 100.00 and a cart of 92.30
    settings = configure(channel, min_cart_total="100")
    checkout = make_checkout(channel)
    touch(checkout, START, settings)
    run_step(STEP_1)
    cart = RecoveryCart.objects.get()
    assert (cart.status, cart.stop_reason) == ("stopped", "below_min_total") and mail.outbox == []
    assert steps(checkout) == [(1, "skipped", "below_min_total")]
    # when the shopper adds a line (137.30) and leaves again
    checkout.lines.create(variant_id="9", product_name="Boots", variant_name="42", quantity=1, unit_price=45)
    touch(checkout, STEP_1 + HOUR, settings)
    run_step(STEP_1 + HOUR + DAY)
    # then the series picks up with the next step
    assert steps(checkout)[-1] == (2, "sent", "")


def test_the_cap_counts_reminders_to_the_address_across_its_carts(channel, run_step):
    # given at most 1 reminder per 24h, and the same shopper leaves two carts an hour apart
    settings = configure(channel, frequency_cap="1 per 24h")
    first, second = make_checkout(channel), make_checkout(channel)
    other = make_checkout(channel, email="someone@example.com")
    touch(first, START, settings)
    touch(second, START + HOUR, settings)
    touch(other, START + HOUR, settings)
    run_step(STEP_1)
    run_step(STEP_1 + HOUR)
    # then the second cart's step 1 is skipped: the address had its reminder; others are not affected
    assert steps(first) == [(1, "sent", "")]
    assert steps(second) == [(1, "skipped", "frequency_cap")]
    assert steps(other) == [(1, "sent", "")]
    assert RecoveryCart.objects.get(checkout_token=second.token).status == "active"
    # and a day after its first reminder the address may get one again: one, not one per cart
    run_step(START + HOUR + DAY)
    assert steps(first)[-1] == (2, "sent", "")
    assert steps(second)[-1] == (2, "skipped", "frequency_cap")


@pytest.mark.django_db(transaction=True)
def test_a_worker_waits_for_the_address_while_another_hands_over_its_last_allowed_reminder(channel):
    # given a cap of 1 per day and two carts of one shopper, both planned
    settings = configure(channel, frequency_cap="1 per 24h")
    for checkout in (make_checkout(channel), make_checkout(channel)):
        touch(checkout, START, settings)
    dispatch(now=STEP_1, send=lambda _: None)
    first, second = RecoveryMessage.objects.order_by("pk")
    # when one worker is handing the first reminder over (address locked, marked, not yet committed)
    other_worker_marked, release = threading.Event(), threading.Event()

    def other_worker():
        try:
            with transaction.atomic():
                caps.lock_address("main", "shopper@example.com")
                RecoveryMessage.objects.filter(pk=first.pk).update(
                    status="sending", attempts=1, handed_over_at=STEP_1, recipient="shopper@example.com"
                )
                other_worker_marked.set()
                release.wait(30)
        finally:
            connection.close()

    outcome = {}

    def this_worker():
        try:
            with freeze_time(STEP_1):
                outcome.update(deliver_batch([second.pk]))
        finally:
            connection.close()

    holder = threading.Thread(target=other_worker)
    holder.start()
    assert other_worker_marked.wait(30)
    sender = threading.Thread(target=this_worker)
    sender.start()
    # then the second worker cannot hand its reminder over meanwhile ...
    sender.join(1)
    assert sender.is_alive() and mail.outbox == []
    # ... and once the first is handed over, the second is over the cap
    release.set()
    holder.join(30)
    sender.join(30)
    assert outcome == {second.pk: "skipped"} and mail.outbox == []
    second.refresh_from_db()
    assert (second.status, second.reason) == ("skipped", "frequency_cap")


def test_one_coupon_per_address_while_it_is_valid(channel, run_step):
    # given a coupon on step 1, valid 48h, and a shopper who opens a second cart
    settings = configure(channel, coupon_step="1", step_content="1: discount")
    first, second = make_checkout(channel), make_checkout(channel)
    touch(first, START, settings)
    touch(second, START + 2 * HOUR, settings)
    run_step(STEP_1)
    run_step(STEP_1 + 2 * HOUR)
    # then one voucher exists; the second cart's email has no code and reads as a plain reminder
    [voucher] = ShopVoucher.objects.all()
    coupon, plain = mail.outbox
    assert voucher.code in coupon.body and voucher.code not in plain.body
    assert "Your code" not in plain.body and "You left something in your cart" in plain.body
    contents = dict(RecoveryMessage.objects.values_list("cart__checkout_token", "content"))
    assert contents == {first.token: "discount", second.token: "reminder"}
    # and once the code expired, a new cart gets its own
    third = make_checkout(channel)
    touch(third, START + 3 * DAY, settings)
    run_step(START + 3 * DAY + HOUR)
    assert ShopVoucher.objects.count() == 2
