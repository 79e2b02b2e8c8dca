"""Send tasks carry a batch of messages over one SMTP connection; each message is still claimed,
re-checked and recorded on its own, so a fault harms only the message it hits.

The mail goes to a real aiosmtpd server on loopback (``inbox``)."""

import socket
import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from freezegun import freeze_time

from saleor_cart_recovery.models import RecoveryMessage
from saleor_cart_recovery.series import delivery
from saleor_cart_recovery.series.delivery import deliver_batch
from saleor_cart_recovery.series.dispatch import dispatch
from tests.shopapp.shop import DbShop

from .conftest import CONFIGURATION, START, make_checkout, touch, with_smtp
from .realparts import free_port

DUE = START + timedelta(hours=1)


@pytest.fixture
def mail_server(smtp_server, inbox, channel):
    """The channel sends through the loopback server."""
    controller, _ = smtp_server
    channel.configuration = with_smtp(controller.port, channel.configuration)
    channel.save()
    return inbox


def plan(channel, recovery_settings, count: int) -> list[int]:
    """``count`` abandoned carts of distinct shoppers, step 1 planned; their message ids in order."""
    for n in range(count):
        touch(make_checkout(channel, email=f"shopper{n}@example.com"), START, recovery_settings)
    dispatch(now=DUE, send=lambda _: None)
    return list(RecoveryMessage.objects.order_by("pk").values_list("pk", flat=True))


def statuses(ids) -> list[tuple[str, str]]:
    return [tuple(RecoveryMessage.objects.values_list("status", "reason").get(pk=pk)) for pk in ids]


def test_a_batch_goes_over_one_connection_with_a_few_queries_per_email(
    mail_server, channel, recovery_settings
):
    ids = plan(channel, recovery_settings, 25)
    opened = mock.patch.object(delivery, "open_connection", wraps=delivery.open_connection)
    with freeze_time(DUE), opened as open_connection:
        with CaptureQueriesContext(connection) as small:
            assert set(deliver_batch(ids[:5]).values()) == {"sent"}
        with CaptureQueriesContext(connection) as large:
            assert set(deliver_batch(ids[5:]).values()) == {"sent"}
    # one connection per batch, every shopper mailed once
    assert open_connection.call_count == 2
    assert sorted(r.rcpt_tos[0] for r in mail_server.received) == sorted(
        f"shopper{n}@example.com" for n in range(25)
    )
    # a constant cost per batch plus a few queries per email: re-check and mark, record
    per_email = (len(large.captured_queries) - len(small.captured_queries)) / 15
    assert per_email <= 4, [q["sql"][:80] for q in large.captured_queries]
    assert len(large.captured_queries) <= 12 * 20


def test_a_connection_the_server_closed_between_messages_is_replaced(mail_server, channel, recovery_settings):
    ids = plan(channel, recovery_settings, 3)
    real_send_on = delivery.send_on

    def send_then_drop(mail, message):
        real_send_on(mail, message)
        if len(mail_server.received) == 1:  # the server hangs up after the first message
            mail.connection.sock.shutdown(socket.SHUT_RDWR)

    opened = mock.patch.object(delivery, "open_connection", wraps=delivery.open_connection)
    with freeze_time(DUE), mock.patch.object(delivery, "send_on", send_then_drop), opened as open_connection:
        outcome = deliver_batch(ids)
    # the dead connection was noticed before the next message and replaced: nothing lost
    assert set(outcome.values()) == {"sent"} and len(mail_server.received) == 3
    assert open_connection.call_count == 2


def test_a_connection_that_breaks_during_a_transfer_fails_only_that_message(
    mail_server, channel, recovery_settings
):
    ids = plan(channel, recovery_settings, 4)
    real_send_on = delivery.send_on
    calls = []

    def break_the_second(mail, message):
        calls.append(message.to[0])
        if len(calls) == 2:
            # the line drops after the server took the message's data, before it answered
            mail_server.stall = threading.Event()
            mail_server.in_data.clear()

            def drop():
                mail_server.in_data.wait(10)
                mail.connection.sock.shutdown(socket.SHUT_RDWR)
                mail_server.stall.set()

            threading.Thread(target=drop).start()
        real_send_on(mail, message)

    with freeze_time(DUE), mock.patch.object(delivery, "send_on", break_the_second):
        deliver_batch(ids)
    # the message on the wire may have reached the server: failed/interrupted, never resent; the
    # others went out over a new connection, each once
    assert statuses(ids) == [("sent", ""), ("failed", "interrupted"), ("sent", ""), ("sent", "")]
    received = [r.rcpt_tos[0] for r in mail_server.received]
    assert [received.count(address) for address in calls] in ([1, 0, 1, 1], [1, 1, 1, 1])


def test_claims_waiting_behind_a_slow_mail_server_stay_with_their_worker(
    mail_server, channel, recovery_settings, monkeypatch
):
    # given a batch whose mail server takes six minutes per message, and beat running meanwhile
    ids = plan(channel, recovery_settings, 3)
    real_send_on = delivery.send_on
    reclaimed = []
    with freeze_time(DUE) as clock:

        def slow(mail, message):
            real_send_on(mail, message)
            clock.tick(timedelta(minutes=6))
            reclaimed.append(dispatch(send=lambda _: None).reclaimed)

        with mock.patch.object(delivery, "send_on", slow):
            outcome = deliver_batch(ids)
    # then the claims that waited their turn were kept (touched while the worker lived): the
    # dispatcher never took them for a dead worker's, and the batch sent all three
    assert reclaimed == [0, 0, 0] and set(outcome.values()) == {"sent"}
    assert len(mail_server.received) == 3


def test_an_unreachable_server_gives_the_whole_batch_back_after_one_try(channel, recovery_settings):
    channel.configuration = with_smtp(free_port(), channel.configuration)
    channel.save()
    ids = plan(channel, recovery_settings, 5)
    opened = mock.patch.object(delivery, "open_connection", wraps=delivery.open_connection)
    with freeze_time(DUE), opened as open_connection:
        outcome = deliver_batch(ids)
    # nothing was handed over: every message waits for a retry with the reason, one connect tried
    assert set(outcome.values()) == {"scheduled"} and open_connection.call_count == 1
    errors = set(RecoveryMessage.objects.values_list("error", flat=True))
    assert len(errors) == 1 and "could not reach the mail server" in errors.pop()
    assert set(RecoveryMessage.objects.values_list("attempts", flat=True)) == {1}


def test_a_message_that_cannot_be_prepared_fails_only_itself(mail_server, channel, recovery_settings):
    ids = plan(channel, recovery_settings, 3)
    real_compose = delivery.compose_email

    def compose(settings, snapshot, **kwargs):
        if snapshot.email == "shopper1@example.com":
            raise ValueError("template blew up")
        return real_compose(settings, snapshot, **kwargs)

    with freeze_time(DUE), mock.patch.object(delivery, "compose_email", compose):
        outcome = deliver_batch(ids)
    assert sorted(outcome.values()) == ["scheduled", "sent", "sent"]
    broken = RecoveryMessage.objects.get(status="scheduled")
    assert "template blew up" in broken.error and broken.cart.email == "shopper1@example.com"
    assert len(mail_server.received) == 2


def test_a_batch_spanning_two_mail_servers_uses_one_connection_each(mail_server, channel, recovery_settings):
    # given two carts of a channel with its own SMTP server and two of one using Django's backend
    ids = plan(channel, recovery_settings, 2)
    other = type(channel).objects.create(slug="other", configuration=CONFIGURATION)
    for n in range(2):
        touch(make_checkout(other, email=f"other{n}@example.com"), START, recovery_settings)
    dispatch(now=DUE, send=lambda _: None)
    every = list(RecoveryMessage.objects.order_by("pk").values_list("pk", flat=True))
    assert len(every) == 4 and every[:2] == ids
    opened = mock.patch.object(delivery, "open_connection", wraps=delivery.open_connection)
    with freeze_time(DUE), opened as open_connection:
        assert set(deliver_batch(every).values()) == {"sent"}
    # then each mail server got its own messages over one connection
    assert open_connection.call_count == 2
    assert sorted(r.rcpt_tos[0] for r in mail_server.received) == [
        "shopper0@example.com",
        "shopper1@example.com",
    ]
    assert sorted(m.to[0] for m in mail.outbox) == ["other0@example.com", "other1@example.com"]


def test_a_cart_that_breaks_the_batch_read_costs_only_its_own_attempt(
    mail_server, channel, recovery_settings
):
    # given one cart whose data makes the shop's batch read fail
    ids = plan(channel, recovery_settings, 3)
    poisoned = RecoveryMessage.objects.get(pk=ids[1]).cart.checkout_token
    real_load = DbShop.load_carts

    def load_carts(shop, tokens):
        if poisoned in tokens:
            raise ValueError("unreadable line")
        return real_load(shop, tokens)

    with freeze_time(DUE), mock.patch.object(DbShop, "load_carts", load_carts):
        outcome = deliver_batch(ids)
    # then the batch is prepared message by message: the others go out, that one waits for a retry
    assert [outcome[pk] for pk in ids] == ["sent", "scheduled", "sent"]
    assert "unreadable line" in RecoveryMessage.objects.get(pk=ids[1]).error
    assert len(mail_server.received) == 2
