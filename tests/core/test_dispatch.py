import threading
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from freezegun import freeze_time

from saleor_cart_recovery.experiments.assignment import in_holdout
from saleor_cart_recovery.models import RecoveryCart, RecoveryMessage
from saleor_cart_recovery.series import dispatch as dispatch_module
from saleor_cart_recovery.series.delivery import deliver_batch
from saleor_cart_recovery.series.dispatch import (
    LEASE,
    PENDING_RECHECK,
    PREPARE_TIMEOUT,
    SENDING_TIMEOUT,
    dispatch,
)
from saleor_cart_recovery.settings.channel import RecoverySettings
from tests.shopapp.models import ShopChannel, ShopOrder

from .conftest import START, make_checkout, touch

HOUR = timedelta(hours=1)


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """One dispatch cycle; returns its result and the message ids handed to senders on commit."""

    def run(now):
        sent: list[int] = []
        with django_capture_on_commit_callbacks(execute=True):
            result = dispatch(now=now, send=sent.extend)
        return result, sent

    return run


def test_nothing_is_planned_before_the_first_step_is_due(run, abandoned_cart):
    result, sent = run(START + HOUR - timedelta(seconds=1))
    assert (result.planned, sent) == (0, [])


def test_due_step_is_planned_once_and_handed_out_after_commit(run, abandoned_cart):
    result, sent = run(START + HOUR)
    message = RecoveryMessage.objects.get()
    assert (result.planned, sent) == (1, [message.id])
    assert (message.step, message.status) == (1, "scheduled")
    cart = RecoveryCart.objects.get()
    assert (cart.steps_planned, cart.next_due_at) == (1, START + timedelta(days=1))
    again, sent_again = run(START + HOUR)
    assert (again.planned, sent_again) == (0, [])


def test_a_lost_send_task_is_handed_out_again_after_the_lease(run, abandoned_cart):
    _, sent = run(START + HOUR)
    _, within = run(START + HOUR + LEASE - timedelta(seconds=1))
    _, after = run(START + HOUR + LEASE)
    assert (within, after) == ([], sent)


def test_woken_early_cart_is_rearmed_to_its_exact_due_time(run, abandoned_cart, recovery_settings):
    run(START + HOUR)  # step 1 planned
    RecoveryMessage.objects.update(status="sent")
    touch(abandoned_cart, START + 2 * HOUR, recovery_settings)  # shopper came back
    result, sent = run(START + 3 * HOUR)
    assert (result.rearmed, sent) == (1, [])
    assert RecoveryCart.objects.get().next_due_at == START + 2 * HOUR + timedelta(days=1)


def test_whole_series_is_planned_step_by_step(run, abandoned_cart):
    planned = []
    for delay in (HOUR, timedelta(days=1), timedelta(days=3)):
        planned.append(run(START + delay)[0].planned)
        RecoveryMessage.objects.filter(status="scheduled").update(status="sent")  # the send task ran
    assert planned == [1, 1, 1]
    assert list(RecoveryMessage.objects.order_by("step").values_list("step", flat=True)) == [1, 2, 3]
    assert RecoveryCart.objects.get().next_due_at is None
    assert run(START + timedelta(days=30))[0].planned == 0


def test_cart_in_a_channel_without_the_plugin_is_stopped(run, abandoned_cart):
    ShopChannel.objects.update(active=False)
    result, sent = run(START + HOUR)
    cart = RecoveryCart.objects.get()
    assert (result.stopped, sent, cart.status, cart.stop_reason) == (1, [], "stopped", "plugin_inactive")


def test_a_cycle_plans_everything_due_in_bounded_batches(channel, recovery_settings):
    # given five due carts and batches of two
    for _ in range(5):
        touch(make_checkout(channel), START, recovery_settings)
    with CaptureQueriesContext(connection) as queries:
        result = dispatch(now=START + HOUR, send=lambda _: None, batch_size=2)
    # then one cycle plans all of them (no cap per cycle), three batches of set-based statements
    assert result.planned == 5 and len(result.enqueued) == 5
    assert RecoveryCart.objects.filter(steps_planned=0).count() == 0
    locks = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().startswith("WITH due AS")]
    assert len(locks) == 3
    # and nothing is left waiting to be planned
    assert (result.backlog.due_unplanned, result.backlog.planned_unsent) == (0, 5)


def test_a_cycle_past_its_time_budget_leaves_the_rest_as_backlog(channel, recovery_settings):
    for _ in range(5):
        touch(make_checkout(channel), START, recovery_settings)
    result = dispatch(now=START + HOUR, send=lambda _: None, batch_size=2, budget=timedelta(0))
    # one batch per pass, then the budget is spent: the rest waits for the next cycle and is reported
    assert result.planned == 2
    assert result.backlog.due_unplanned == 3 and result.backlog.oldest_due <= START + HOUR
    assert "3 due carts not yet planned" in str(result)


def test_sends_are_handed_out_in_batches_of_one_channel(channel, recovery_settings):
    other = ShopChannel.objects.create(slug="other", configuration=channel.configuration)
    for shop_channel in (channel, channel, channel, other):
        touch(make_checkout(shop_channel), START, recovery_settings)
    batches: list[list[int]] = []
    with mock.patch("django.db.transaction.on_commit", lambda hand_off, robust: hand_off()):
        result = dispatch(now=START + HOUR, send=batches.append, send_batch=2)
    channels = [
        set(RecoveryMessage.objects.filter(pk__in=batch).values_list("cart__channel_slug", flat=True))
        for batch in batches
    ]
    assert sorted(map(len, batches)) == [1, 1, 2] and all(len(c) == 1 for c in channels)
    assert result.tasks == 3 and sorted(sum(batches, [])) == sorted(result.enqueued)


def test_interrupted_send_is_recorded_as_failed_not_resent(run, abandoned_cart):
    # given a worker died after handing the message to the mail server (it may have gone out)
    run(START + HOUR)
    RecoveryMessage.objects.update(status="sending", handed_over_at=START + HOUR, updated_at=START + HOUR)
    # when the dispatcher runs after the sending timeout
    result, sent = run(START + HOUR + SENDING_TIMEOUT + timedelta(seconds=1))
    # then the message is failed/interrupted and never handed out again
    message = RecoveryMessage.objects.get()
    assert (result.interrupted, sent, message.status, message.reason) == (1, [], "failed", "interrupted")


def test_claim_that_died_before_the_hand_over_is_handed_out_again(run, abandoned_cart):
    # given a worker died while preparing the email (nothing reached the mail server)
    run(START + HOUR)
    RecoveryMessage.objects.update(status="sending", attempts=1, updated_at=START + HOUR)
    # when the dispatcher runs: not before the preparation timeout, then after it
    early, early_sent = run(START + HOUR + PREPARE_TIMEOUT - timedelta(seconds=1))
    late, late_sent = run(START + HOUR + PREPARE_TIMEOUT + timedelta(seconds=1))
    # then the message is handed out again, once
    message = RecoveryMessage.objects.get()
    assert (early.reclaimed, early_sent) == (0, [])
    assert (late.reclaimed, late.interrupted, message.status) == (1, 0, "scheduled")
    assert run(START + HOUR + PREPARE_TIMEOUT + timedelta(seconds=2))[1] == [message.id]


def test_next_step_waits_while_the_earlier_one_is_retried(run, abandoned_cart):
    # given step 1 failed temporarily and waits for its retry when step 2 falls due
    run(START + HOUR)
    RecoveryMessage.objects.update(attempts=1, attempt_after=START + timedelta(days=2))
    # when the dispatcher runs at step 2's time
    result, _ = run(START + timedelta(days=1))
    # then step 2 is not planned: steps never overtake one another
    cart = RecoveryCart.objects.get()
    assert (result.planned, result.waiting, cart.steps_planned) == (0, 1, 1)
    assert cart.next_due_at == START + timedelta(days=1) + PENDING_RECHECK
    # and once step 1 is handled (sent, or given up), step 2 follows with its configured gap
    RecoveryMessage.objects.update(status="failed", reason="retries_exhausted")
    assert run(START + timedelta(days=1) + PENDING_RECHECK)[0].planned == 1
    assert list(RecoveryMessage.objects.order_by("step").values_list("step", "status")) == [
        (1, "failed"),
        (2, "scheduled"),
    ]


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_plan_each_step_once(channel, recovery_settings):
    for _ in range(40):
        touch(make_checkout(channel), START, recovery_settings)
    sent: list[int] = []
    barrier = threading.Barrier(2)

    def worker():
        barrier.wait()
        try:
            dispatch(now=START + HOUR, send=sent.extend, batch_size=5)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert RecoveryMessage.objects.count() == 40
    assert sorted(sent) == sorted(RecoveryMessage.objects.values_list("id", flat=True))


@pytest.fixture
def half_held_out(channel):
    """The channel with a 50 % holdout: its settings, and one address held out and one not."""
    configuration = [*channel.configuration, {"name": "holdout_percent", "value": "50"}]
    channel.configuration = configuration
    channel.save()
    return RecoverySettings.from_plugin_configuration(configuration), *emails_by_holdout(
        channel.slug, Decimal(50)
    )


def test_holdout_cart_is_tracked_but_gets_no_email(run, channel, half_held_out):
    settings, held_email, _ = half_held_out
    checkout = make_checkout(channel, email=held_email)
    touch(checkout, START, settings)
    held, sent = [], []
    for delay in (HOUR, timedelta(days=1), timedelta(days=3)):
        result, handed_out = run(START + delay)
        held.append(result.held_out)
        sent.extend(handed_out)
    assert (held, sent) == ([1, 1, 1], [])
    messages = list(RecoveryMessage.objects.order_by("step").values_list("step", "status", "reason"))
    assert messages == [(1, "skipped", "holdout"), (2, "skipped", "holdout"), (3, "skipped", "holdout")]
    cart = RecoveryCart.objects.get()
    assert (cart.holdout, cart.status) == (True, "finished")


def test_a_held_out_cart_gets_the_order_check_a_reminder_would_get(channel, run, half_held_out):
    # given a held-out shopper's cart and a treated one, and both bought from another device while
    # the order hook was not running (nothing recorded)
    settings, held_email, treated_email = half_held_out
    for email in (held_email, treated_email):
        touch(make_checkout(channel, email=email), START, settings)
        ShopOrder.objects.create(
            checkout_token="other-device",
            email=email,
            total=Decimal("30.00"),
            currency="USD",
            created_at=START + HOUR / 2,
            channel_slug=channel.slug,
        )
    # when step 1 is due
    result, sent = run(START + HOUR)
    # then the held-out cart's order is found right when its email would have gone out, as the
    # send path finds the treated cart's: both converted, both steps skipped as purchased
    carts = {c.email: c for c in RecoveryCart.objects.all()}
    assert (carts[held_email].status, carts[held_email].order_total) == ("converted", Decimal("30.00"))
    assert RecoveryMessage.objects.get(cart=carts[held_email]).reason == "purchased"
    assert result.held_out == 1
    with freeze_time(START + HOUR):
        deliver_batch(sent)
    assert RecoveryCart.objects.get(email=treated_email).status == "converted"
    assert RecoveryMessage.objects.get(cart__email=treated_email).reason == "purchased"


def emails_by_holdout(channel_slug: str, percent: Decimal) -> tuple[str, str]:
    """Fixed addresses, the first ``shopper-N`` inside and the first outside a ``percent`` holdout."""
    emails = [f"shopper-{n}@example.com" for n in range(100)]
    held = next(e for e in emails if in_holdout(channel_slug, e, percent))
    treated = next(e for e in emails if not in_holdout(channel_slug, e, percent))
    return held, treated


@pytest.mark.parametrize(
    ("first", "later"),
    [("0", "50"), ("50", "0")],
    ids=["first_seen_without_holdout_case", "first_seen_with_holdout_case"],
)
def test_holdout_membership_never_changes_for_a_cart(channel, first, later):
    # given one cart whose shopper is in a 50 % holdout and one whose shopper is not
    held_email, treated_email = emails_by_holdout(channel.slug, Decimal(50))
    held, treated = make_checkout(channel, email=held_email), make_checkout(channel, email=treated_email)
    held_token, treated_token = held.token, treated.token
    settings = {
        percent: RecoverySettings.from_plugin_configuration(
            [*channel.configuration, {"name": "holdout_percent", "value": percent}]
        )
        for percent in ("0", "50")
    }

    # when both carts are first seen with the first holdout setting
    for checkout in (held, treated):
        touch(checkout, START, settings[first])
    # then membership follows the shopper's hash under that setting: both outcomes occur at 50 %
    decided = dict(RecoveryCart.objects.values_list("checkout_token", "holdout"))
    assert decided == {held_token: first == "50", treated_token: False}

    # when the shoppers come back after the owner changed the setting
    for n in range(1, 6):
        for checkout in (held, treated):
            touch(checkout, START + n * HOUR, settings[later])
    # then no cart changed group
    assert dict(RecoveryCart.objects.values_list("checkout_token", "holdout")) == decided


@pytest.mark.parametrize(
    "broken",
    [
        [{"name": "schedule", "value": "1h, 3650000d"}],  # past the 90-day bound: would overflow a date
        [{"name": "schedule", "value": "1h, 99999999999d"}],
        [{"name": "cutoff", "value": "soon"}],
        [{"name": "storefront_url", "value": ""}],  # active without what activation needs
    ],
    ids=["far_step_case", "overflowing_step_case", "unparsable_case", "missing_link_case"],
)
def test_a_channel_with_broken_stored_settings_harms_only_itself(run, channel, recovery_settings, broken):
    # given a second channel whose configuration was written past validation, next to a healthy one
    bad = ShopChannel.objects.create(slug="bad", configuration=[*channel.configuration, *broken])
    healthy_checkout = make_checkout(channel)
    bad_checkout = make_checkout(bad)
    touch(healthy_checkout, START, recovery_settings)
    touch(bad_checkout, START, recovery_settings)
    # when the dispatcher runs
    result, sent = run(START + HOUR)
    # then the healthy channel's cart is planned and handed out
    healthy = RecoveryCart.objects.get(checkout_token=healthy_checkout.token)
    assert (result.planned, len(sent), healthy.steps_planned) == (1, 1, 1)
    # and the broken channel's cart is stopped with a reason that names the cause (reopened by new
    # activity once the owner fixes the settings)
    stopped = RecoveryCart.objects.get(checkout_token=bad_checkout.token)
    assert (stopped.status, stopped.stop_reason) == ("stopped", "configuration_invalid")


def test_a_cart_whose_planning_raises_harms_only_itself(run, channel, recovery_settings, monkeypatch):
    # given two due carts, and planning one of them raises (e.g. bad stored data)
    good_checkout, bad_checkout = make_checkout(channel), make_checkout(channel)
    touch(good_checkout, START, recovery_settings)
    touch(bad_checkout, START, recovery_settings)
    real = dispatch_module.pick_subject

    def pick_subject(token, *args, **kwargs):
        if token == bad_checkout.token:
            raise OverflowError("date value out of range")
        return real(token, *args, **kwargs)

    monkeypatch.setattr(dispatch_module, "pick_subject", pick_subject)
    # when the dispatcher runs
    result, sent = run(START + HOUR)
    # then the other cart is planned, the bad one is recorded with a reason, and the cycle finished
    carts = {c.checkout_token: c for c in RecoveryCart.objects.all()}
    assert (result.planned, result.failed, len(sent)) == (1, 1, 1)
    assert carts[good_checkout.token].steps_planned == 1
    assert (carts[bad_checkout.token].status, carts[bad_checkout.token].stop_reason) == (
        "stopped",
        "planning_failed",
    )


@pytest.mark.django_db(transaction=True)
def test_one_failed_hand_off_to_the_broker_does_not_stop_the_others(channel, recovery_settings):
    # given three due carts, and the broker refuses the first hand-off
    for _ in range(3):
        touch(make_checkout(channel), START, recovery_settings)
    handed: list[int] = []

    def send(message_ids):
        [message_id] = message_ids
        if not handed:
            handed.append(-message_id)
            raise ConnectionError("broker down")
        handed.append(message_id)

    # when the dispatcher runs (for real: its hand-offs run after the commit), one message per task
    result = dispatch(now=START + HOUR, send=send, send_batch=1)
    # then the cycle finished, the other two were handed off, and the refused one waits for its lease
    assert result.planned == 3 and len(handed) == 3
    refused = -handed[0]
    assert RecoveryMessage.objects.get(pk=refused).status == "scheduled"
    RecoveryMessage.objects.filter(pk__in=handed[1:]).update(status="sent")  # their workers ran
    run_later = dispatch(now=START + HOUR + LEASE + timedelta(seconds=1), send=lambda _: None)
    assert run_later.enqueued == [refused]


def test_settings_that_cannot_be_read_this_time_defer_the_carts(run, abandoned_cart, monkeypatch):
    # given reading the channel's settings fails for a passing reason (the database hiccuped)
    def broken(shop, slug):
        raise ConnectionError("server closed the connection unexpectedly")

    monkeypatch.setattr("tests.shopapp.shop.DbShop.channel_settings", broken)
    # when the dispatcher runs
    result, sent = run(START + HOUR)
    # then the cart is neither stopped nor planned: it is looked at again shortly
    cart = RecoveryCart.objects.get()
    assert (result.deferred, result.stopped, sent) == (1, 0, [])
    assert (cart.status, cart.stop_reason, cart.next_due_at) == ("active", "", START + HOUR + PENDING_RECHECK)


def test_a_failing_order_lookup_for_held_out_carts_harms_no_one(channel, run, caplog, half_held_out):
    # given a held-out cart and a treated one due, and the shop's order lookup failing
    settings, held_email, treated_email = half_held_out
    for email in (held_email, treated_email):
        touch(make_checkout(channel, email=email), START, settings)
    with mock.patch("tests.shopapp.shop.DbShop.find_orders", side_effect=OperationalError("timeout")):
        result, sent = run(START + HOUR)
    # then the cycle planned both steps and handed out the treated one; the held-out step stays
    # recorded as holdout (its next step asks again) and the failure is logged
    assert (result.planned, result.held_out, len(sent)) == (2, 1, 1)
    assert RecoveryMessage.objects.get(cart__email=held_email).reason == "holdout"
    assert "could not look up the orders" in caplog.text
