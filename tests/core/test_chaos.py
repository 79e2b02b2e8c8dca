"""Faults with real parts: PostgreSQL, a private Redis broker, Celery worker processes and an SMTP
server on loopback. Each scenario prints and asserts what a shop owner cares about:

- delivered: carts whose reminder reached the mail server,
- duplicates: extra copies of a reminder (must be 0),
- lost: carts with neither a delivered reminder nor a recorded reason why not (must be 0),
- interrupted: sends cut off after the hand-over, recorded failed/interrupted and never resent.

Time control without freezegun (the workers have their own clocks): carts are abandoned in the
past, and the dispatcher's later cycles are run with an explicit ``now`` past the lease or the
retry backoff, as beat would run them minutes later.
"""

import shutil
import subprocess
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from saleor_cart_recovery.models import MessageStatus, Reason, RecoveryMessage
from saleor_cart_recovery.series.dispatch import LEASE, PREPARE_TIMEOUT, SENDING_TIMEOUT, dispatch
from saleor_cart_recovery.settings.channel import RecoverySettings
from saleor_cart_recovery.tasks import enqueue_send
from tests.shopapp.models import ShopChannel

from .conftest import make_checkout, touch, with_smtp
from .realparts import (
    FIGURES,
    Inbox,
    dispatchers_at_once,
    free_port,
    launch_worker,
    redis_client,
    reset_broker_pool,
    use_broker,
    wait_until,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        shutil.which("redis-server") is None, reason="needs redis-server for a private broker"
    ),
]

# Later than every timeout of the send path: a cycle run this far ahead hands out lost work again.
LATER = max(LEASE, PREPARE_TIMEOUT, SENDING_TIMEOUT) + timedelta(minutes=1)


class Broker:
    """A private redis-server on a free loopback port, without persistence: a restart loses every
    queued task, as a broker that crashed would."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self):
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis_client(port=self.port, db=0).close()
                return
            except BaseException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def broker():
    server = Broker()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def workers(broker, settings, tmp_path):
    """Start workers on the private broker; all are stopped at the end."""
    started = []
    use_broker(settings, broker.url)

    def start(name: str, **env: str):
        worker = launch_worker(tmp_path / f"{name}.log", broker_url=broker.url, name=name, env=env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
    reset_broker_pool()


@pytest.fixture
def mail_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    if inbox.stall is not None:
        inbox.stall.set()
    controller.stop()


def shop_channel(port: int) -> ShopChannel:
    return ShopChannel.objects.create(slug="chaos", configuration=with_smtp(port))


def abandon(channel: ShopChannel, count: int) -> list[str]:
    """``count`` carts, each with its own address, left two hours ago; returns the addresses."""
    settings = RecoverySettings.from_plugin_configuration(channel.configuration)
    left = timezone.now() - timedelta(hours=2)
    addresses = [f"cart-{n}@example.com" for n in range(count)]
    for address in addresses:
        touch(make_checkout(channel, email=address, lines=1), left, settings)
    return addresses


def state() -> dict:
    """Messages by (status, reason, attempts): what a failing wait reports."""
    return dict(Counter(RecoveryMessage.objects.values_list("status", "reason", "attempts", "error")))


def _quiet() -> bool:
    recent = timezone.now() - timedelta(seconds=3)
    return not RecoveryMessage.objects.filter(status=MessageStatus.SENDING, updated_at__gt=recent).exists()


def handled() -> bool:
    return not RecoveryMessage.objects.filter(
        status__in=[MessageStatus.SCHEDULED, MessageStatus.SENDING]
    ).exists()


class Beat:
    """The dispatcher as beat runs it, minutes apart: each cycle's ``now`` is later than every lease,
    timeout and retry backoff of the cycles before, so whatever a fault left behind is due again."""

    def __init__(self):
        self.now = timezone.now()

    def tick(self):
        # Beat runs minutes later: by then a live worker's sends have finished. Wait until no claim
        # has moved for a few seconds, so the sweep only meets claims whose worker is gone.
        wait_until(_quiet, "live sends to settle", timeout=60, state=state)
        self.now = max(self.now, timezone.now()) + LATER
        return dispatch(now=self.now, send=enqueue_send)

    def until_handled(self, *workers, cycles: int = 8):
        for _ in range(cycles):
            self.tick()
            try:
                wait_until(handled, "the cycle's sends", *workers, timeout=30)
                return
            except pytest.fail.Exception:
                continue
        wait_until(handled, f"every message handled after {cycles} cycles", *workers, timeout=1, state=state)


def tally(name: str, inbox: Inbox, addresses: list[str]) -> dict[str, int]:
    copies = Counter(r.rcpt_tos[0] for r in inbox.received)
    interrupted = set(
        RecoveryMessage.objects.filter(status=MessageStatus.FAILED, reason=Reason.INTERRUPTED).values_list(
            "recipient", flat=True
        )
    )
    figures = {
        "delivered": sum(1 for a in addresses if copies[a]),
        "duplicates": sum(max(count - 1, 0) for count in copies.values()),
        "lost": sum(1 for a in addresses if not copies[a] and a not in interrupted),
        "interrupted": len(interrupted),
    }
    FIGURES.append(f"{name}: " + ", ".join(f"{key} {value}" for key, value in figures.items()))
    return figures


def test_two_dispatchers_and_two_workers_over_a_thousand_due_carts(workers, mail_server):
    controller, inbox = mail_server
    addresses = abandon(shop_channel(controller.port), 1000)
    first, second = workers("first"), workers("second")
    # two dispatchers at the same moment (two beat processes), each handing sends to the workers
    dispatchers_at_once(2)
    wait_until(handled, "1000 reminders handled", first, second, timeout=600, state=state)
    assert tally("two dispatchers, two workers", inbox, addresses) == {
        "delivered": 1000,
        "duplicates": 0,
        "lost": 0,
        "interrupted": 0,
    }
    # and both workers took part
    assert "succeeded" in first.output() and "succeeded" in second.output()


def test_a_worker_killed_mid_send(workers, mail_server):
    controller, inbox = mail_server
    addresses = abandon(shop_channel(controller.port), 20)
    # given the mail server holds every message in DATA, and one worker with 4 threads taking send
    # tasks of 5 messages (so 4 transfers are on the wire at once, the other 16 claimed and waiting)
    inbox.stall = threading.Event()
    doomed = workers("doomed")
    dispatch(send=enqueue_send, send_batch=5)
    wait_until(
        lambda: RecoveryMessage.objects.filter(handed_over_at__isnull=False).count() == 4,
        "4 sends on the wire",
        doomed,
        state=state,
    )
    # when the worker is killed with SIGKILL in the middle of those transfers
    doomed.kill()
    inbox.stall.set()
    # and a new worker comes up while beat keeps running the dispatcher
    survivor = workers("survivor")
    Beat().until_handled(survivor)
    # then the 4 sends cut off are interrupted and never resent (the server dropped them with the
    # connection here; another server might have kept them), every other cart got its reminder once
    figures = tally("worker killed mid-send", inbox, addresses)
    assert (figures["duplicates"], figures["lost"], figures["interrupted"]) == (0, 0, 4)
    assert figures["delivered"] + figures["interrupted"] == 20


def test_the_mail_server_down_for_several_rounds_then_up(workers):
    # given the channel's mail server refuses connections
    port = free_port()
    addresses = abandon(shop_channel(port), 30)
    worker = workers("retrying")
    beat, failed_rounds = Beat(), 2
    for attempt in range(1, failed_rounds + 1):
        # when each cycle runs while the server is still down
        beat.tick()
        wait_until(
            lambda attempt=attempt: RecoveryMessage.objects.filter(
                status=MessageStatus.SCHEDULED, attempts=attempt
            ).count()
            == 30,
            f"retry round {attempt}",
            worker,
            state=state,
        )
    # and the server comes back on the same port
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        beat.until_handled(worker)
    finally:
        controller.stop()
    # then every cart got its reminder exactly once, after the failed rounds
    figures = tally(f"mail server down for {failed_rounds} rounds", inbox, addresses)
    assert figures == {"delivered": 30, "duplicates": 0, "lost": 0, "interrupted": 0}
    assert set(RecoveryMessage.objects.values_list("status", flat=True)) == {MessageStatus.SENT}
    assert min(RecoveryMessage.objects.values_list("attempts", flat=True)) == failed_rounds + 1


def test_a_mail_server_that_stalls_past_the_timeout(workers, mail_server):
    controller, inbox = mail_server
    addresses = abandon(shop_channel(controller.port), 8)
    # given the server stalls after each message, and workers give up after 2 s
    inbox.stall = threading.Event()
    worker = workers("impatient", CART_RECOVERY_SMTP_TIMEOUT="2")
    dispatch(send=enqueue_send)
    wait_until(handled, "every send timed out", worker, timeout=60, state=state)
    inbox.stall.set()
    # when beat keeps running long after
    again = Beat().tick()
    # then the sends cut off mid-transfer are interrupted and never handed out again (a server that
    # kept them delivered them; sending again could mail the step twice)
    assert again.enqueued == []
    figures = tally("mail server stalls past the timeout", inbox, addresses)
    assert (figures["duplicates"], figures["lost"], figures["interrupted"]) == (0, 0, 8)


def test_the_broker_restarted_during_a_run(workers, mail_server, broker):
    controller, inbox = mail_server
    addresses = abandon(shop_channel(controller.port), 200)
    # given the mail server is slow for a moment, so sends pile up in the broker
    inbox.stall = threading.Event()
    worker = workers("steady")
    dispatch(send=enqueue_send)
    wait_until(lambda: inbox.in_data.is_set(), "the first send on the wire", worker, state=state)
    # when the broker crashes and comes back empty (no persistence: queued tasks are gone)
    broker.stop()
    broker.start()
    reset_broker_pool()
    inbox.stall.set()
    # and beat keeps running the dispatcher (minutes later: the sends in flight have finished)
    wait_until(
        lambda: not RecoveryMessage.objects.filter(status=MessageStatus.SENDING).exists(),
        "the sends in flight to finish",
        worker,
        state=state,
    )
    Beat().until_handled(worker)
    # then nothing was lost and nothing doubled
    figures = tally("broker restarted", inbox, addresses)
    assert figures == {"delivered": 200, "duplicates": 0, "lost": 0, "interrupted": 0}
