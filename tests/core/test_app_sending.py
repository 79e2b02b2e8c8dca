"""The App host's send path and settings save in this process against the stand-in Saleor: Saleor is
never asked while a transaction or lock of ours is open (invariant 4; the ``app_client`` fixture
fails every App test that does), so a coupon is reserved, created in Saleor and then stored — and
deleted at once when the claim was lost meanwhile —, the order check right before the send is asked
before the message is locked, and the upsell products are checked before the settings row is."""

import threading
import time
from datetime import datetime, timedelta

import pytest
from django.core import mail
from django.db import connection
from django.db.models import F
from django.utils import timezone

from saleor_cart_recovery.app import saleor_api
from saleor_cart_recovery.app.models import ChannelSettings
from saleor_cart_recovery.exceptions import ConfigurationError
from saleor_cart_recovery.models import RecoveryCart, RecoveryMessage
from saleor_cart_recovery.series.delivery import deliver, deliver_batch
from saleor_cart_recovery.series.dispatch import dispatch
from saleor_cart_recovery.shop import get_shop

from .app_host import checkout_payload
from .app_host import deliver as deliver_webhook

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
COUPON = {"coupon_step": "1", "coupon_type": "percentage", "coupon_value": "10", "coupon_valid_for": "48h"}


@pytest.fixture
def tea(installed, saleor):
    return saleor.shop.add_product("main", "Green tea", ["4.50"])


def configure(**values: str) -> None:
    row = ChannelSettings.objects.get(channel_slug="main")
    row.configuration = [
        *(item for item in row.configuration if item["name"] not in values),
        *({"name": name, "value": value} for name, value in values.items()),
    ]
    row.save()


def abandoned(client, saleor, tea, email: str = "ann@example.com") -> dict:
    """A checkout in Saleor, recorded by its webhook two hours ago: its first step is due."""
    checkout = saleor.shop.add_checkout("main", email, [(tea["variants"][0], 2)])
    payload = checkout_payload(checkout["token"], email, timezone.now() - 2 * HOUR)
    assert deliver_webhook(client, saleor, "checkout_updated", payload).status_code == 204
    return checkout


def planned(checkout: dict) -> RecoveryMessage:
    dispatch(send=lambda ids: None)
    return RecoveryMessage.objects.get(cart__checkout_token=checkout["token"])


def test_a_coupon_is_created_in_saleor_between_short_transactions(installed, saleor, tea):
    # given a coupon on step 1
    configure(**COUPON)
    message = planned(abandoned(installed, saleor, tea))
    saleor.received.clear()
    # when the step is sent
    assert deliver(message.pk) == "sent"
    # then Saleor created one voucher, named as the cleanup knows ours, none of it asked inside a
    # transaction of ours (fixture)
    [voucher] = saleor.shop.vouchers.values()
    assert voucher["name"] == f"Cart recovery {message.cart.checkout_token}"
    code = voucher["_codes"][0]["code"]
    message.refresh_from_db()
    assert message.voucher_code == code and code in mail.outbox[0].body
    assert saleor.operations() == [
        "FindOrders",
        "LoadCarts",
        "Channel",
        "IssueVoucher",
        "ListVoucher",
        "ChangedSince",
    ]


@pytest.mark.django_db(transaction=True)
def test_a_coupon_whose_claim_was_lost_meanwhile_is_deleted_at_once(installed, saleor, tea):
    # given a coupon on step 1, and another worker taking the claim over while Saleor creates it
    configure(**COUPON)
    message = planned(abandoned(installed, saleor, tea))

    def take_over(variables):
        RecoveryMessage.objects.filter(pk=message.pk).update(attempts=F("attempts") + 1)
        connection.close()  # the server thread's own connection

    saleor.before("IssueVoucher", take_over)
    # when this worker sends the step
    assert deliver(message.pk) == "sending"  # the other worker's now
    # then the voucher it created is gone from Saleor, and nothing was sent
    assert saleor.shop.vouchers == {} and "DeleteVouchers" in saleor.operations()
    assert mail.outbox == []
    message.refresh_from_db()
    assert (message.voucher_code, message.attempts) == ("", 2)


def test_a_coupon_saleor_failed_to_create_leaves_no_reservation_behind(installed, saleor, tea):
    # given a coupon on step 1, and Saleor failing from the voucher's creation on
    configure(**COUPON)
    message = planned(abandoned(installed, saleor, tea))
    saleor.before("Channel", lambda variables: setattr(saleor, "fault", "error"))
    # when the step is sent
    assert deliver(message.pk) == "scheduled"
    # then it waits for a retry with neither a code nor a reservation, nothing sent
    message.refresh_from_db()
    assert (message.voucher_code, message.voucher_expires_at, message.attempts) == ("", None, 1)
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_a_coupon_being_created_counts_for_the_address_of_a_second_cart(installed, saleor, tea):
    # given a coupon on step 1, and two carts of one shopper due at once
    configure(**COUPON)
    first = planned(abandoned(installed, saleor, tea))
    second = planned(abandoned(installed, saleor, tea))
    outcome = {}

    def second_worker(variables):
        if second.pk not in outcome:  # another worker sends the second cart meanwhile
            worker = threading.Thread(target=lambda: outcome.update({second.pk: deliver(second.pk)}))
            worker.start()
            worker.join(30)
            connection.close()

    saleor.before("IssueVoucher", second_worker)
    # when the first cart's coupon is being created in Saleor
    assert deliver(first.pk) == "sent"
    # then the second cart's reminder went without a code, and one voucher exists
    assert outcome == {second.pk: "sent"}
    [voucher] = saleor.shop.vouchers.values()
    contents = dict(RecoveryMessage.objects.values_list("pk", "content"))
    assert contents == {first.pk: "discount", second.pk: "reminder"}
    with_code = [email for email in mail.outbox if voucher["_codes"][0]["code"] in email.body]
    assert len(mail.outbox) == 2 and len(with_code) == 1


@pytest.mark.django_db(transaction=True)
def test_an_order_placed_while_the_step_was_prepared_stops_it_with_the_answer_asked_before_any_lock(
    installed, saleor, tea
):
    # given the shopper orders from the checkout after the step was prepared, before its send
    checkout = abandoned(installed, saleor, tea)
    message = planned(checkout)
    saleor.before(
        "LoadCarts",  # after the batch's orders were read, before the check right before the send
        lambda variables: saleor.shop.add_order(
            "main", "ann@example.com", "9.00", checkout_token=checkout["token"]
        ),
    )
    saleor.received.clear()
    # when the step is sent
    assert deliver(message.pk) == "skipped"
    # then the order stopped it: recorded as the purchase, nothing sent
    message.refresh_from_db()
    assert (message.status, message.reason) == ("skipped", "purchased")
    assert RecoveryCart.objects.get().status == "converted"
    assert mail.outbox == [] and saleor.operations() == ["FindOrders", "LoadCarts", "ChangedSince"]


def test_a_forged_checkout_webhook_gets_no_mail_to_its_address(installed, saleor, tea):
    # given Ann's checkout in Saleor, recorded by its webhook two hours ago, and a body another app
    # of the same Saleor forged for that checkout a minute later, with an address of its own
    checkout = abandoned(installed, saleor, tea)
    forged = checkout_payload(checkout["token"], "mallory@example.com", timezone.now() - 2 * HOUR + MINUTE)
    assert deliver_webhook(installed, saleor, "checkout_updated", forged).status_code == 204
    assert RecoveryCart.objects.get().email == "mallory@example.com"  # the checkout webhook is trusted
    # when the step is sent
    message = planned(checkout)
    assert deliver(message.pk) == "sent"
    # then it went only to the address Saleor's checkout has, which is the cart's again
    assert [email.to for email in mail.outbox] == [["ann@example.com"]]
    message.refresh_from_db()
    assert (message.recipient, RecoveryCart.objects.get().email) == ("ann@example.com", "ann@example.com")


def test_an_order_by_the_checkouts_own_address_stops_the_send_when_the_batchs_read_asked_about_another(
    installed, saleor, tea
):
    # given Ann's checkout, a forged webhook body giving the cart another address (so the batch's
    # read asks Saleor about that one), and Ann's order from another checkout half an hour ago,
    # after the cart's last activity but long before the batch is read
    checkout = abandoned(installed, saleor, tea)
    forged = checkout_payload(checkout["token"], "mallory@example.com", timezone.now() - 2 * HOUR + MINUTE)
    assert deliver_webhook(installed, saleor, "checkout_updated", forged).status_code == 204
    saleor.shop.add_order("main", "ann@example.com", "9.00", created=timezone.now() - 30 * MINUTE)
    message = planned(checkout)
    saleor.received.clear()
    # when the step is sent
    assert deliver(message.pk) == "skipped"
    # then the check right before the send asked about Ann's address in full, not only about what
    # changed since the read, and her order stopped the step
    message.refresh_from_db()
    assert (message.reason, mail.outbox) == ("purchased", [])
    assert saleor.operations() == ["FindOrders", "LoadCarts", "FindOrders"]


def test_the_upsell_products_are_checked_in_saleor_before_the_settings_row_is_locked(installed, saleor, tea):
    saleor.shop.add_product("main", "Secret blend", ["9.00"], published=False)
    shop = get_shop()

    assert shop.save_configuration("main", {"upsell_products": "green-tea"}, None) is True
    with pytest.raises(ConfigurationError) as refused:
        shop.save_configuration("main", {"upsell_products": "green-tea, secret-blend"}, None)

    assert "'secret-blend': not published" in refused.value.errors["upsell_products"]
    assert shop.stored_configuration("main")["upsell_products"] == "green-tea"
    assert saleor.operations().count("ProductsByReference") == 2


def batch_of(client, saleor, tea, emails: list[str]) -> list[int]:
    """A planned first step for a cart of each address, as one batch's message ids."""
    for email in emails:
        abandoned(client, saleor, tea, email)
    dispatch(send=lambda ids: None)
    return list(RecoveryMessage.objects.values_list("pk", flat=True))


@pytest.mark.django_db(transaction=True)
def test_one_order_check_before_the_first_send_answers_for_the_next_messages_while_it_is_fresh(
    installed, saleor, tea, monkeypatch
):
    # given three steps in one batch, and an answer that stands for a minute (so that this test's
    # pace cannot matter; the App's own window is 250 ms)
    monkeypatch.setattr(type(get_shop()), "order_answer_window", 60.0)
    ids = batch_of(installed, saleor, tea, ["ann@example.com", "bob@example.com", "cem@example.com"])
    saleor.received.clear()
    # when the batch is sent
    assert set(deliver_batch(ids).values()) == {"sent"}
    # then Saleor was asked about the three carts' orders in full while preparing, and right before
    # the first send for what changed since (five minutes' margin before that read): the other two
    # sends relied on that answer
    assert len(mail.outbox) == 3
    assert saleor.operations() == ["FindOrders", "LoadCarts", "ChangedSince"]
    [(_, read), (_, check)] = [(n, v) for n, v in saleor.received if n in ("FindOrders", "ChangedSince")]
    assert {v for k, v in read.items() if k[0] == "a" and k[1:].isdigit()} == {
        "ann@example.com",
        "bob@example.com",
        "cem@example.com",
    }
    since = datetime.fromisoformat(check["since"])
    assert timezone.now() - 5 * MINUTE - 10 * SECOND < since < timezone.now() - 5 * MINUTE


@pytest.mark.django_db(transaction=True)
def test_an_answer_older_than_the_window_is_asked_again_and_an_order_placed_meanwhile_stops_the_send(
    installed, saleor, tea
):
    # given two steps in one batch, and Saleor slower than the App's window to answer the check
    # right before the first send (about both carts)
    ids = batch_of(installed, saleor, tea, ["ann@example.com", "bob@example.com"])
    checks = []

    def saleor_meanwhile(variables):
        checks.append(variables)
        if len(checks) == 1:  # the check right before the first send: its answer arrives stale
            time.sleep(get_shop().order_answer_window + 0.1)
        if len(checks) == 2:  # the second send asks again; its shopper has just ordered
            [sent] = [message.to[0] for message in mail.outbox]
            [other] = {"ann@example.com", "bob@example.com"} - {sent}
            token = RecoveryCart.objects.get(email=other).checkout_token
            saleor.shop.add_order("main", other, "9.00", checkout_token=token)

    saleor.before("ChangedSince", saleor_meanwhile)
    # when the batch is sent
    statuses = deliver_batch(ids)
    # then the first went out on its own answer; the second was asked about again and not sent
    assert sorted(statuses.values()) == ["sent", "skipped"] and len(checks) == 2
    assert len(mail.outbox) == 1
    assert RecoveryMessage.objects.get(status="skipped").reason == "purchased"


@pytest.mark.django_db(transaction=True)
def test_an_order_dated_before_the_batchs_read_but_shown_only_after_it_stops_the_send(installed, saleor, tea):
    # given a step, and an order by its shopper from another checkout that Saleor dates two
    # minutes before the batch's orders were read but shows only after that read (a replica behind,
    # a transaction still committing)
    message = planned(abandoned(installed, saleor, tea))
    saleor.before(
        "LoadCarts",
        lambda variables: saleor.shop.add_order(
            "main", "Ann@Example.com", "9.00", created=timezone.now() - 2 * MINUTE
        ),
    )
    # when the step is sent
    assert deliver(message.pk) == "skipped"
    # then the check right before the send found it
    message.refresh_from_db()
    assert (message.status, message.reason, mail.outbox) == ("skipped", "purchased", [])


def test_a_draft_order_completed_after_the_batchs_read_stops_the_send(installed, saleor, tea):
    # given a step, and a draft order for its shopper that staff started half an hour ago (after the
    # cart's last activity; Saleor shows no draft as an order) and complete once the batch was read
    message = planned(abandoned(installed, saleor, tea))
    draft = saleor.shop.add_order(
        "main", "ann@example.com", "9.00", created=timezone.now() - 30 * MINUTE, status="DRAFT"
    )
    saleor.before("LoadCarts", lambda variables: saleor.shop.saved(draft).update(status="UNFULFILLED"))
    # when the step is sent
    assert deliver(message.pk) == "skipped"
    # then the check right before the send found the order, dated before the read but saved after it
    message.refresh_from_db()
    assert (message.reason, mail.outbox) == ("purchased", [])


def test_an_account_given_the_carts_address_after_the_batchs_read_stops_the_send_with_its_orders(
    installed, saleor, tea
):
    # given a step, and an account that ordered half an hour ago under another address and is given
    # the cart's address once the batch was read
    message = planned(abandoned(installed, saleor, tea))
    account = saleor.shop.add_user("ann.old@example.com", "Ann")
    saleor.shop.add_order("main", "", "9.00", user=account, created=timezone.now() - 30 * MINUTE)
    saleor.before("LoadCarts", lambda variables: saleor.shop.saved(account).update(email="Ann@Example.com"))
    saleor.received.clear()
    # when the step is sent
    assert deliver(message.pk) == "skipped"
    # then the check right before the send, told an account has that address now, asked about the
    # address in full and found the account's order
    message.refresh_from_db()
    assert (message.reason, mail.outbox) == ("purchased", [])
    assert saleor.operations() == ["FindOrders", "LoadCarts", "ChangedSince", "FindOrders"]


def test_with_more_accounts_saved_since_than_a_page_the_check_asks_by_address(installed, saleor, tea):
    # given a step, and more accounts saved in the last minutes than Saleor gives in one page (one
    # of them may have been given the cart's address)
    message = planned(abandoned(installed, saleor, tea))
    for n in range(101):
        saleor.shop.add_user(f"customer{n}@example.com")
    saleor.received.clear()
    # when the step is sent
    assert deliver(message.pk) == "sent"
    # then the check right before the send asked about the address in full
    assert saleor.operations() == ["FindOrders", "LoadCarts", "ChangedSince", "FindOrders"]


@pytest.mark.django_db(transaction=True)
def test_in_one_batch_only_the_lookups_the_read_covered_rely_on_what_changed_since(
    installed, saleor, tea, monkeypatch
):
    # given Bob's step and then Ann's in one batch, an answer that stands for a minute, a forged
    # webhook body giving Ann's cart another address (so the batch's read asks about that one), and
    # Ann's order from another checkout half an hour ago
    monkeypatch.setattr(type(get_shop()), "order_answer_window", 60.0)
    bob = abandoned(installed, saleor, tea, "bob@example.com")
    ann = abandoned(installed, saleor, tea, "ann@example.com")
    forged = checkout_payload(ann["token"], "mallory@example.com", timezone.now() - 2 * HOUR + MINUTE)
    assert deliver_webhook(installed, saleor, "checkout_updated", forged).status_code == 204
    saleor.shop.add_order("main", "ann@example.com", "9.00", created=timezone.now() - 30 * MINUTE)
    dispatch(send=lambda ids: None)
    ids = sorted(RecoveryMessage.objects.values_list("pk", flat=True))
    assert RecoveryMessage.objects.get(pk=ids[0]).cart.checkout_token == bob["token"]
    saleor.received.clear()
    # when the batch is sent
    statuses = deliver_batch(ids)
    # then Bob's went out on what changed since the read; Ann's was asked about by address and her
    # order stopped it
    assert [statuses[pk] for pk in ids] == ["sent", "skipped"]
    assert [email.to for email in mail.outbox] == [["bob@example.com"]]
    assert saleor.operations() == ["FindOrders", "LoadCarts", "ChangedSince", "FindOrders"]


def test_what_changed_since_is_counted_from_before_the_batchs_read(installed, saleor, tea, monkeypatch):
    # given no margin for Saleor's clock, and an order by the shopper from another checkout that
    # Saleor dates while it answers the batch's read but shows only after that read
    monkeypatch.setattr(saleor_api, "UNSEEN", timedelta(0))
    message = planned(abandoned(installed, saleor, tea))
    moments = []
    saleor.before("FindOrders", lambda variables: moments.append(timezone.now()))
    saleor.before(
        "LoadCarts",
        lambda variables: saleor.shop.add_order("main", "ann@example.com", "9.00", created=moments[0]),
    )
    # when the step is sent
    assert deliver(message.pk) == "skipped"
    # then the check right before the send found it: it asked from the moment the read was asked
    message.refresh_from_db()
    assert (message.reason, mail.outbox) == ("purchased", [])


@pytest.mark.django_db(transaction=True)
def test_with_more_orders_changed_since_than_a_page_the_check_asks_about_at_most_sixteen_messages(
    installed, saleor, tea, monkeypatch
):
    # given twenty steps in one batch, an answer that stands for a minute, and a busy shop: more
    # orders saved in the last minutes than Saleor gives in one page
    monkeypatch.setattr(type(get_shop()), "order_answer_window", 60.0)
    emails = [f"shopper{n:02}@example.com" for n in range(20)]
    ids = batch_of(installed, saleor, tea, emails)
    for n in range(101):
        saleor.shop.add_order("main", f"other{n}@example.com", "5.00", created=timezone.now() - MINUTE)
    checks = []
    saleor.before("FindOrders", checks.append)
    saleor.received.clear()
    # when the batch is sent
    assert set(deliver_batch(ids).values()) == {"sent"}
    # then, after the one read while preparing and one question about what changed since (more
    # than a page: not asked again), the check before the first send asked about the first
    # sixteen and the check before the seventeenth about the other four
    assert saleor.operations().count("ChangedSince") == 1
    asked = [{v for k, v in check.items() if k[0] == "a" and k[1:].isdigit()} for check in checks[1:]]
    assert [len(addresses) for addresses in asked] == [16, 4] and set().union(*asked) == set(emails)
    assert len(mail.outbox) == 20


@pytest.mark.django_db(transaction=True)
def test_an_order_saleor_cannot_answer_for_costs_only_the_message_whose_check_it_is(
    installed, saleor, tea, monkeypatch
):
    # given three steps in one batch, and, once they are prepared, an order by the last one's
    # shopper that Saleor cannot answer with (its creation date is unreadable)
    monkeypatch.setattr(type(get_shop()), "order_answer_window", 60.0)
    ids = batch_of(installed, saleor, tea, ["ann@example.com", "bob@example.com", "cem@example.com"])
    last = RecoveryMessage.objects.select_related("cart").get(pk=max(ids)).cart

    def broken_order(variables):
        order = saleor.shop.add_order("main", last.email, "9.00")
        order["created"] = "not a date"

    saleor.before("LoadCarts", broken_order)
    saleor.received.clear()
    # when the batch is sent
    statuses = deliver_batch(ids)
    # then the two others went out, each asked about alone once the questions about all failed;
    # the last is given back for a later attempt, nothing sent
    assert statuses == {pk: "sent" if pk != max(ids) else "scheduled" for pk in ids}
    assert sorted(message.to[0] for message in mail.outbox) == sorted(
        {"ann@example.com", "bob@example.com", "cem@example.com"} - {last.email}
    )
    assert saleor.operations().count("ChangedSince") == 1  # failed once: not asked again


@pytest.mark.django_db(transaction=True)
def test_saleor_failing_at_the_check_before_the_sends_gives_the_whole_batch_back(installed, saleor, tea):
    # given three steps in one batch, and Saleor failing from the moment the carts were read
    ids = batch_of(installed, saleor, tea, ["ann@example.com", "bob@example.com", "cem@example.com"])
    saleor.before("LoadCarts", lambda variables: setattr(saleor, "fault", "error"))
    hits = saleor.hits
    # when the batch is sent
    statuses = deliver_batch(ids)
    # then nothing went out and every step waits for a later attempt, after one request that failed
    # (read, cart load, then the check: Saleor is not asked again about each message alone)
    assert mail.outbox == [] and set(statuses.values()) == {"scheduled"}
    assert saleor.hits - hits == 3
    assert all("could not be asked" in m.error for m in RecoveryMessage.objects.all())
