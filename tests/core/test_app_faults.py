"""Faults of the App host with real processes: the app server (uvicorn) and app Celery workers in
their own processes over a Redis broker, the stand-in Saleor on loopback playing Saleor's API (with
its fault switches) and signing its webhooks as Saleor does, and an aiosmtpd server.

Beat is played by this process as in the chaos suite (:class:`.test_chaos.Beat`: each cycle's
``now`` later than every lease and backoff of the cycles before). Each scenario prints its figures
under "chaos figures": delivered, duplicates and lost must read as a shop owner expects.
"""

import json
import os
from collections import Counter
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.utils import timezone

from saleor_cart_recovery.app.models import ChannelSettings, Installation
from saleor_cart_recovery.models import CartStatus, MessageStatus, Reason, RecoveryCart, RecoveryMessage

from .app_host import checkout_payload, order_payload
from .conftest import CONFIGURATION, with_smtp
from .realparts import (
    BROKER_URL,
    FIGURES,
    AppServer,
    dispatchers_at_once,
    free_port,
    launch_worker,
    redis_client,
    reset_broker_pool,
    use_broker,
    wait_until,
)
from .standin_saleor import StandinSaleor, from_global_id
from .test_chaos import Beat, handled, state, tally

pytestmark = pytest.mark.django_db(transaction=True)

SECRET_KEY = "a-secret-key-for-the-app-fault-scenarios-0123456789"
# The workers wait this long for Saleor's answer before giving a batch back (SALEOR_API_TIMEOUT).
SALEOR_TIMEOUT = 2
# The App's own queue (CELERY_TASK_DEFAULT_QUEUE in saleor_cart_recovery/app/settings.py).
APP_QUEUE = "cart_recovery"


class Saleor:
    """Saleor as the App meets it: the stand-in's GraphQL API, which also publishes Saleor's signing
    keys at its origin (``/.well-known/jwks.json``, counted in ``jwks_fetches``) and signs the
    webhooks with them."""

    def __init__(self):
        self.api = StandinSaleor()
        self.api.shop.add_channel("main")
        self.variant = self.api.shop.add_product("main", "Blue Hoodie", ["39.90"])["variants"][0]

    @property
    def jwks_fetches(self) -> int:
        return self.api.jwks_fetches

    def headers(self, event: str, body: bytes) -> dict[str, str]:
        return self.api.webhook_headers(event, body)

    def requests_during(self, action) -> int:
        """How many requests the App sent to Saleor's API while ``action`` ran."""
        before = self.api.hits
        action()
        return self.api.hits - before

    def close(self):
        self.api.close()


@pytest.fixture(scope="module")
def saleor_standin():
    standin = Saleor()
    yield standin
    standin.close()


@pytest.fixture(scope="module")
def app_environment(django_db_setup, saleor_standin):
    """The App's environment, on pytest's test database (so this process reads what the App's
    processes wrote) and the suite's Redis database."""
    db = connection.settings_dict
    app_url = f"http://127.0.0.1:{free_port()}"
    saleor_standin.api.manifest_url = f"{app_url}/api/manifest"  # installed from the App's manifest
    return {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "saleor_cart_recovery.app.settings",
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": BROKER_URL,
        "SECRET_KEY": SECRET_KEY,
        "APP_URL": app_url,
        "SALEOR_API_URL": saleor_standin.api.api_url,
        "SALEOR_API_TIMEOUT": str(SALEOR_TIMEOUT),
    }


@pytest.fixture(scope="module")
def app_server(app_environment, tmp_path_factory):
    server = AppServer(app_environment, tmp_path_factory.mktemp("app") / "server.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app_workers(app_environment, tmp_path_factory):
    """``start(name)`` starts an App worker on the suite's broker; all stop with the module."""
    client = redis_client()
    client.flushdb()
    started = []
    logs = tmp_path_factory.mktemp("app-workers")

    def start(name: str):
        worker = launch_worker(
            logs / f"{name}.log",
            broker_url=BROKER_URL,
            name=name,
            env=app_environment,
            celery_app="saleor_cart_recovery.app.celery",
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def app_worker(app_workers):
    return app_workers("app")


class App:
    """The App as Saleor and a shop owner use it, over HTTP to its server process."""

    def __init__(self, server: AppServer, saleor: Saleor):
        self.server, self.saleor = server, saleor

    def deliver(self, event: str, payload: dict) -> requests.Response:
        body = json.dumps(payload).encode()
        path = event.replace("_", "-")
        return requests.post(
            f"{self.server.url}/webhooks/{path}",
            data=body,
            headers=self.saleor.headers(event, body),
            timeout=10,
        )

    def register(self) -> requests.Response:
        return requests.post(
            f"{self.server.url}/api/register",
            json={"auth_token": self.saleor.api.token},
            headers={"Saleor-Api-Url": self.saleor.api.api_url},
            timeout=30,
        )

    def abandon(self, count: int, prefix: str = "cart", left: timedelta = timedelta(hours=2)) -> dict:
        """``count`` checkouts in Saleor, each with its own address, last updated ``left`` ago as
        Saleor's webhooks tell the App; returns their tokens by address."""
        at = timezone.now() - left
        tokens = {}
        for n in range(count):
            address = f"{prefix}-{n}@example.com"
            checkout = self.saleor.api.shop.add_checkout("main", address, [(self.saleor.variant, 1)])
            delivered = self.deliver("checkout_updated", checkout_payload(checkout["token"], address, at))
            assert delivered.status_code == 204, delivered.content
            tokens[address] = checkout["token"]
        return tokens

    def order(self, address: str, token: str) -> dict:
        """An order placed in Saleor from that checkout (no webhook: Saleor's is delivered or not)."""
        return self.saleor.api.shop.add_order("main", address, "39.90", checkout_token=token)

    def dashboard(self) -> requests.Response:
        """The Dashboard's Cart recovery page, opened with the token Saleor's Dashboard gives it."""
        found = Installation.objects.get()
        token = self.saleor.api.staff(
            type="thirdparty",
            app=found.app_id,
            permissions=["MANAGE_CHECKOUTS"],
            issuer=self.saleor.api.api_url,
        )
        return requests.post(
            f"{self.server.url}/dashboard/overview",
            data={"channel": "main"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )


@pytest.fixture
def app(app_server, saleor_standin, smtp_server, settings):
    """Installed by the stand-in Saleor through the server, active in channel ``main`` sending to the
    loopback SMTP server; this process plays beat with the App's shop, publishing to the broker."""
    controller, inbox = smtp_server
    inbox.clear()
    saleor_standin.api.fault, saleor_standin.api.delay = None, 0.0
    settings.SECRET_KEY = SECRET_KEY
    settings.SALEOR_API_URL = saleor_standin.api.api_url
    settings.APP_URL = app_server.url
    settings.CART_RECOVERY_SHOP = "saleor_cart_recovery.app.shop.AppShop"
    use_broker(settings, BROKER_URL)
    # This process plays the App's beat: it publishes where the App's workers listen.
    settings.CELERY_TASK_DEFAULT_QUEUE = APP_QUEUE
    running = App(app_server, saleor_standin)
    assert running.register().status_code == 200
    ChannelSettings.objects.create(
        channel_slug="main", configuration=with_smtp(controller.port, CONFIGURATION), active=True
    )
    yield running
    saleor_standin.api.fault = None
    reset_broker_pool()


def by_status() -> dict:
    return dict(Counter(RecoveryMessage.objects.values_list("status", "reason")))


def retried(count: int, attempt: int):
    return lambda: (
        RecoveryMessage.objects.filter(status=MessageStatus.SCHEDULED, attempts=attempt).count() == count
    )


@pytest.mark.parametrize("fault", ["down", "error", "slow"])
def test_saleor_down_failing_or_slow_during_sends(app, app_worker, smtp_server, fault):
    _, inbox = smtp_server
    carts = app.abandon(10)
    buyer, buyer_token = next(iter(app.abandon(1, "buyer").items()))
    # given Saleor's API does not answer (closes the connection, answers 502, or answers after the
    # workers stopped waiting)
    app.saleor.api.fault, app.saleor.api.delay = fault, SALEOR_TIMEOUT + 1
    beat, rounds, asked = Beat(), 2, []
    for attempt in range(1, rounds + 1):
        # when the dispatcher hands the due reminders to the worker while it lasts
        asked.append(
            app.saleor.requests_during(
                lambda attempt=attempt: (
                    beat.tick(),
                    wait_until(retried(11, attempt), f"retry round {attempt}", app_worker, state=state),
                )
            )
        )
        # and the shopper buys from one of the carts meanwhile (its webhook is not delivered)
        if attempt == 1:
            app.order(buyer, buyer_token)
    # and Saleor answers again
    app.saleor.api.fault = None
    beat.until_handled(app_worker)
    # then each cart got its reminder once, after the rounds that waited, and the buyer none: the
    # order check before the send asked Saleor
    figures = tally(f"App: Saleor {fault} for {rounds} rounds", inbox, list(carts))
    FIGURES.append(f"App: Saleor {fault}: requests to Saleor per failed round {asked} for 11 reminders")
    assert figures == {"delivered": 10, "duplicates": 0, "lost": 0, "interrupted": 0}
    assert inbox.to(buyer) == []
    assert by_status() == {(MessageStatus.SENT, ""): 10, (MessageStatus.SKIPPED, Reason.PURCHASED): 1}
    assert RecoveryCart.objects.get(checkout_token=buyer_token).status == CartStatus.CONVERTED
    assert min(RecoveryMessage.objects.values_list("attempts", flat=True)) == rounds + 1
    # and a batch that could not ask Saleor gave up after one wait, not one per reminder
    assert max(asked) <= 2


def test_saleor_slow_within_the_timeout_only_delays_the_batch(app, app_worker, smtp_server):
    _, inbox = smtp_server
    carts = app.abandon(5)
    app.saleor.api.fault, app.saleor.api.delay = "slow", 0.3
    Beat().until_handled(app_worker)
    figures = tally("App: Saleor slow (0.3 s an answer)", inbox, list(carts))
    assert figures == {"delivered": 5, "duplicates": 0, "lost": 0, "interrupted": 0}
    assert set(RecoveryMessage.objects.values_list("attempts", flat=True)) == {1}


def test_webhooks_delivered_twice_and_out_of_order(app, app_worker, smtp_server):
    _, inbox = smtp_server
    now = timezone.now()
    earlier, later = now - timedelta(hours=3), now - timedelta(hours=2)
    shop = app.saleor.api.shop
    # given a checkout updated twice, whose webhooks arrive newest first, each twice
    changed = shop.add_checkout("main", "new@example.com", [(app.saleor.variant, 1)])
    for payload in [checkout_payload(changed["token"], "new@example.com", later)] * 2 + [
        checkout_payload(changed["token"], "old@example.com", earlier)
    ] * 2:
        assert app.deliver("checkout_updated", payload).status_code == 204
    # and a checkout whose order's webhook arrives before the checkout's, both twice
    bought = shop.add_checkout("main", "buyer@example.com", [(app.saleor.variant, 1)])
    order = app.order("buyer@example.com", bought["token"])
    pk = from_global_id(order["id"])[1]
    for _ in range(2):
        placed = order_payload(pk, bought["token"], now - timedelta(minutes=90), "buyer@example.com", "39.90")
        assert app.deliver("order_created", placed).status_code == 204
    for _ in range(2):
        updated = checkout_payload(bought["token"], "buyer@example.com", later)
        assert app.deliver("checkout_updated", updated).status_code == 204
    # and a checkout whose order's webhook arrives after the checkout's, both twice
    paid = shop.add_checkout("main", "payer@example.com", [(app.saleor.variant, 1)])
    for _ in range(2):
        updated = checkout_payload(paid["token"], "payer@example.com", later)
        assert app.deliver("checkout_updated", updated).status_code == 204
    paid_order = app.order("payer@example.com", paid["token"])
    for _ in range(2):
        placed = order_payload(from_global_id(paid_order["id"])[1], paid["token"], now, "payer@example.com")
        assert app.deliver("order_created", placed).status_code == 204
    # then the newest checkout state stands, and the order placed after its checkout converted it once
    cart = RecoveryCart.objects.get(checkout_token=changed["token"])
    assert (cart.email, cart.last_activity_at) == ("new@example.com", later)
    assert RecoveryCart.objects.get(checkout_token=paid["token"]).status == CartStatus.CONVERTED
    # when the reminders are due
    Beat().until_handled(app_worker)
    # then the newest address got one reminder, and neither buyer any: the order recorded before its
    # checkout was found by the order check; each order is counted on one cart, once
    assert Counter(r.rcpt_tos[0] for r in inbox.received) == {"new@example.com": 1}
    converted = RecoveryCart.objects.filter(status=CartStatus.CONVERTED)
    assert sorted(converted.values_list("checkout_token", flat=True)) == sorted(
        [bought["token"], paid["token"]]
    )
    assert Counter(converted.values_list("order_id", flat=True)) == {
        pk: 1,
        from_global_id(paid_order["id"])[1]: 1,
    }
    assert RecoveryCart.objects.count() == 3


@pytest.mark.parametrize("how", ["app_deleted", "token_revoked", "saleor_401"])
def test_the_app_uninstalled_mid_series(app, app_worker, smtp_server, how):
    _, inbox = smtp_server
    app.abandon(4, "first")
    # given the first reminders went out
    beat = Beat()
    beat.until_handled(app_worker)
    assert len(inbox.received) == 4
    # and the second steps are due for the first carts, the first steps for new ones
    later = app.abandon(4, "later")
    if how == "app_deleted":
        # when Saleor deletes the app, its token with it (and retries the webhook)
        app.saleor.api.revoke()
        for _ in range(2):
            assert app.deliver("app_deleted", {"app": {"id": app.saleor.api.app_id}}).status_code == 204
    elif how == "token_revoked":
        # when the app's token is deleted in Saleor, unknown to the App until it asks (Saleor then
        # takes its requests as anonymous)
        app.saleor.api.revoke()
    else:
        # when Saleor (or a proxy in front of it) answers 401 to the token
        app.saleor.api.fault = "unauthorized"
    beat.now += timedelta(days=1)
    asked = app.saleor.requests_during(lambda: beat.until_handled(app_worker))
    # then nothing more goes out, the due steps are recorded as not sent, at most one request told the
    # App the token is gone
    assert len(inbox.received) == 4 and not inbox.to(next(iter(later)))
    found = Installation.objects.get()
    assert not found.installed, found.uninstall_reason
    assert asked <= {"app_deleted": 0, "token_revoked": 2, "saleor_401": 1}[how], app.saleor.api.operations()
    unsent = RecoveryMessage.objects.exclude(status=MessageStatus.SENT)
    assert set(unsent.values_list("status", "reason", "attempts")) <= {
        (MessageStatus.SKIPPED, Reason.PLUGIN_INACTIVE, 0),
        (MessageStatus.SKIPPED, Reason.PLUGIN_INACTIVE, 1),
    }, by_status()
    assert set(RecoveryCart.objects.values_list("status", "stop_reason")) == {
        (CartStatus.STOPPED, Reason.PLUGIN_INACTIVE)
    }
    # and no further cycle asks Saleor anything
    quiet = app.saleor.requests_during(lambda: [beat.tick() for _ in range(3)])
    assert quiet == 0
    FIGURES.append(f"App uninstalled ({how}): {asked} request(s) to Saleor after, then 0 over 3 cycles")
    # and the Dashboard's page says so
    shown = app.dashboard()
    assert shown.status_code == 403 and "uninstalled" in shown.text


def test_the_app_server_restarted_between_webhooks(app, app_server, app_worker, smtp_server):
    _, inbox = smtp_server
    first = app.abandon(2, "before")
    fetched = app.saleor.jwks_fetches
    # when the server is killed, a webhook meanwhile fails to be delivered, and the server restarts
    app_server.stop()
    retried = "retried@example.com"
    checkout = app.saleor.api.shop.add_checkout("main", retried, [(app.saleor.variant, 1)])
    payload = checkout_payload(checkout["token"], retried, timezone.now() - timedelta(hours=2))
    with pytest.raises(requests.ConnectionError):
        app.deliver("checkout_updated", payload)
    app_server.start()
    # then Saleor's retry of that webhook and the next ones are verified after fetching Saleor's keys
    # once, with the installation the server had (no new registration)
    assert app.deliver("checkout_updated", payload).status_code == 204
    second = app.abandon(3, "after")
    assert app.saleor.jwks_fetches == fetched + 1
    assert Installation.objects.get().installed
    Beat().until_handled(app_worker)
    figures = tally("App server restarted", inbox, [*first, retried, *second])
    assert figures == {"delivered": 6, "duplicates": 0, "lost": 0, "interrupted": 0}


def test_two_app_workers_send_each_step_once(app, app_workers, app_worker, smtp_server):
    _, inbox = smtp_server
    carts = app.abandon(60)
    second = app_workers("second")
    # two dispatchers at the same moment (two beat processes), batches of 5 over two workers
    dispatchers_at_once(2, send_batch=5)
    wait_until(handled, "60 reminders handled", app_worker, second, timeout=120, state=state)
    figures = tally("App: two dispatchers, two workers", inbox, list(carts))
    assert figures == {"delivered": 60, "duplicates": 0, "lost": 0, "interrupted": 0}
    assert "succeeded" in app_worker.output() and "succeeded" in second.output()
