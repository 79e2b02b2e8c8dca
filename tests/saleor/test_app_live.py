"""The App against real Saleor 3.23 over HTTP, every part in its own process: Saleor's ASGI server
and its Celery worker (which installs apps and delivers their webhooks to loopback), the app server
(uvicorn on ``saleor_cart_recovery.app.asgi:application``), its Celery worker and the dispatcher —
all three run by the core virtualenv's Python, which has no Saleor (the app server installs
without it) — on a database made by ``saleor-cart-recovery-app migrate``, and an SMTP server on
loopback. The owner installs the app with Saleor's ``appInstall`` and configures a channel through
``updateSettings``; the shopper does only what a storefront does over Saleor's GraphQL API.

Waiting is real: the schedule is a few seconds long and the dispatcher runs (as a process, as beat
would start it) until the step is due; no clock is moved. Environment: ``CART_RECOVERY_APP_PYTHON``
(default ``.venv/bin/python`` of this repository), ``CART_RECOVERY_LIVE_DB``,
``CART_RECOVERY_BROKER_URL`` (the Redis database Saleor and the app share, on separate queues).
"""

import contextlib
import email
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from email.message import Message
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from saleor.account.models import Group, User
from saleor.core.db.connection import allow_writer
from saleor.permission.models import Permission

from saleor_cart_recovery.app.manifest import PERMISSIONS

from .live_saleor import (
    APP_PYTHON,
    PGHOST,
    PGUSER,
    LiveSaleor,
    copy_database,
    create_shop,
    database_url,
    drop_database,
    free_port,
    live_saleor,
    saleor_database,
    stop_process_group,
    storefront_order,
)
from .utils import loopback_smtp

DATABASE = os.environ.get(
    "CART_RECOVERY_LIVE_DB", "saleor_live_" + os.environ.get("CART_RECOVERY_DB_NAME", "cr")
)
BROKER = os.environ.get("CART_RECOVERY_BROKER_URL", "redis://127.0.0.1:6379/4")
OWNER_EMAIL, OWNER_PASSWORD = "owner@example.com", "a-long-owner-password-0123"
# appInstall needs MANAGE_APPS and every permission the app asks for; updateSettings MANAGE_PLUGINS
OWNER_PERMISSIONS = ("MANAGE_APPS", "MANAGE_PLUGINS", *PERMISSIONS)
SHOPPER = "ann@example.com"
STEP_1, STEP_2 = 15, 45  # seconds of quiet after the last activity: the schedule below
SETTINGS = {
    "schedule": f"{STEP_1}s, {STEP_2}s",
    "cutoff": "10s",
    "subjects": "1: Forgot something?\n2: Still thinking?",
    "storefront_url": "https://shop.example.com/checkout?checkout={checkout_id}",
    "from_email": "Live Tea Shop <shop@example.com>",
    "coupon_step": "1",
    "coupon_type": "percentage",
    "coupon_value": "10",
}
UPDATE_SETTINGS = """
mutation ($active: Boolean, $input: [SettingInput!]) {
  updateSettings(active: $active, input: $input) { active settings { name value } errors { field message } }
}"""
TIMEOUT = 120.0


# -- Saleor's side: the owner and their token ---------------------------------------------------


def create_owner() -> None:
    """A staff member with the permissions an owner installing and configuring the app has, in the
    current database (see :func:`saleor_database`); the password hashed as Saleor's server checks
    it (PBKDF2, few iterations)."""
    hasher = PBKDF2PasswordHasher()
    with allow_writer():
        user = User.objects.create(email=OWNER_EMAIL, is_staff=True, is_active=True)
        user.password = hasher.encode(OWNER_PASSWORD, hasher.salt(), iterations=1000)
        user.save(update_fields=["password"])
        group = Group.objects.create(name="Owners", restricted_access_to_channels=False)
        group.permissions.set(Permission.objects.filter(codename__in=[p.lower() for p in OWNER_PERMISSIONS]))
        user.groups.add(group)


def owner_token(saleor: LiveSaleor) -> str:
    document = """mutation ($email: String!, $password: String!) {
      tokenCreate(email: $email, password: $password) { token errors { field message } } }"""
    return saleor.graphql(document, {"email": OWNER_EMAIL, "password": OWNER_PASSWORD})["tokenCreate"][
        "token"
    ]


def install(saleor: LiveSaleor, token: str, manifest_url: str) -> None:
    """``appInstall`` from the manifest URL, as the Dashboard's "Install external app" does; returns
    once Saleor's worker finished the installation (Saleor deletes the job when it succeeds)."""
    document = """mutation ($input: AppInstallInput!) {
      appInstall(input: $input) { appInstallation { id status } errors { field code message } } }"""
    saleor.graphql(
        document,
        {
            "input": {
                "appName": "Cart Recovery",
                "manifestUrl": manifest_url,
                "permissions": list(PERMISSIONS),
                "activateAfterInstallation": True,
            }
        },
        token=token,
    )
    jobs: list = []
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        jobs = saleor.graphql("{ appsInstallations { status message } }", token=token)["appsInstallations"]
        assert all(job["status"] != "FAILED" for job in jobs), jobs
        if not jobs:
            return
        time.sleep(1)
    raise AssertionError(f"the installation did not finish in {TIMEOUT}s: {jobs}")


def storefront(saleor: LiveSaleor, document: str, **variables: Any) -> dict:
    """One anonymous call, as a storefront makes it; the mutation's payload."""
    (payload,) = saleor.graphql(document, variables).values()
    return payload


CHECKOUT_CREATE = """mutation ($input: CheckoutCreateInput!) {
  checkoutCreate(input: $input) { checkout { id token } errors { field message } } }"""
SHIPPING_ADDRESS = """mutation ($id: ID!, $address: AddressInput!) {
  checkoutShippingAddressUpdate(id: $id, shippingAddress: $address) { errors { field message } } }"""
BILLING_ADDRESS = """mutation ($id: ID!, $address: AddressInput!) {
  checkoutBillingAddressUpdate(id: $id, billingAddress: $address) { errors { field message } } }"""
PROMO_CODE = """mutation ($id: ID!, $code: String!) {
  checkoutAddPromoCode(id: $id, promoCode: $code) {
    checkout { voucherCode discount { amount } totalPrice { gross { amount } } } errors { field message }
  } }"""
ADDRESS = {
    "firstName": "Ann",
    "lastName": "Shopper",
    "streetAddress1": "Unter den Linden 1",
    "city": "Berlin",
    "postalCode": "10117",
    "country": "DE",
}


# -- The app's side: its processes and its database ---------------------------------------------


class AppProcesses:
    """The app's processes (logs in ``log_dir``) with ``env``; each killed with its process group."""

    def __init__(self, env: dict[str, str], log_dir: Path):
        self.env, self.log_dir = env, log_dir
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def command(self) -> str:
        return str(APP_PYTHON.parent / "saleor-cart-recovery-app")

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def spawn(self, name: str, command: Sequence[str]) -> subprocess.Popen:
        with open(self.log_dir / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes[name] = process
        return process

    def run(self, name: str, *args: str) -> str:
        """``saleor-cart-recovery-app <args>`` to the end; its output (logged under ``name``)."""
        done = subprocess.run(
            [self.command, *args], env=self.env, capture_output=True, text=True, timeout=TIMEOUT
        )
        with open(self.log_dir / f"{name}.log", "a") as log:
            log.write(f"$ {' '.join(args)}\n{done.stdout}{done.stderr}")
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def wait_until(self, what: str, ready: Callable[[], bool], process: str | None = None) -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if process and self.processes[process].poll() is not None:
                raise AssertionError(f"the app's {process} exited:\n{self.log(process)[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                if ready():
                    return
            time.sleep(0.5)
        raise AssertionError(f"{what} not within {TIMEOUT}s")

    def stop(self) -> None:
        for process in self.processes.values():
            stop_process_group(process)


@contextlib.contextmanager
def app_server(saleor: LiveSaleor, database: str, smtp_port: int, log_dir: Path) -> Iterator[AppProcesses]:
    """The app's database migrated by its command, then its server and worker, as an operator runs
    them; every process killed at the end."""
    port = free_port()
    env = {
        **{name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ},
        "DATABASE_URL": database_url(database),
        "CELERY_BROKER_URL": BROKER,
        "SECRET_KEY": os.urandom(24).hex(),
        "APP_URL": f"http://127.0.0.1:{port}",
        "SALEOR_API_URL": saleor.api_url,
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
    }
    app = AppProcesses(env, log_dir)
    try:
        app.run("migrate", "migrate", "--no-input")
        server = [str(APP_PYTHON), "-m", "uvicorn", "saleor_cart_recovery.app.asgi:application"]
        app.spawn("server", [*server, "--host", "127.0.0.1", "--port", str(port), "--log-level", "info"])
        app.wait_until(
            "the app server answering",
            lambda: requests.get(f"{env['APP_URL']}/api/manifest", timeout=5).status_code == 200,
            "server",
        )
        worker = [str(APP_PYTHON), "-m", "celery", "-A", "saleor_cart_recovery.app.celery", "worker"]
        app.spawn("worker", [*worker, "--pool", "solo", "--loglevel", "info", "--without-gossip"])
        app.wait_until("the app's worker ready", lambda: " ready." in app.log("worker"), "worker")
        yield app
    finally:
        app.stop()


def app_rows(database: str, sql: str, *params: Any) -> list[tuple]:
    with psycopg.connect(database_url(database), autocommit=True) as connection:
        return connection.execute(sql, params).fetchall()


def messages_of(inbox: list[bytes]) -> list[Message]:
    return [email.message_from_bytes(raw) for raw in inbox]


def text_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            text = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
            return text.replace("\r\n", "\n")
    raise AssertionError("no text part")


@pytest.fixture
def databases():
    """Saleor's database copied from the template, and an empty one for the app; both dropped."""
    saleor_db, app_db = DATABASE, f"{DATABASE}_app"
    url = copy_database(saleor_db)
    drop_database(app_db)
    subprocess.run(["createdb", "-h", PGHOST, "-U", PGUSER, app_db], check=True, capture_output=True)
    yield url, app_db
    drop_database(app_db)
    drop_database(saleor_db)


def test_the_app_installed_in_real_saleor_recovers_a_cart_end_to_end(databases, django_db_blocker):
    # the app server's Python has no Saleor: the App installs without it
    without_saleor = subprocess.run([str(APP_PYTHON), "-c", "import saleor"], capture_output=True)
    assert APP_PYTHON.exists() and without_saleor.returncode != 0, f"{APP_PYTHON} must exist, without Saleor"
    saleor_url, app_db = databases
    with django_db_blocker.unblock(), saleor_database(saleor_url):
        shop = create_shop()
        create_owner()
    inbox: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            inbox.append(envelope.content)
            return "250 OK"

    with (
        tempfile.TemporaryDirectory(prefix="live-app-") as log_dir,
        loopback_smtp(Handler()) as smtp_port,
        live_saleor(saleor_url, broker_url=BROKER, worker=True) as saleor,
        app_server(saleor, app_db, smtp_port, Path(log_dir)) as app,
    ):
        try:
            scenario(saleor, app, app_db, shop, inbox)
        except BaseException:
            for name in ("server", "worker"):
                print(f"--- Saleor's {name} ---\n{saleor.log(name)[-6000:]}")
            for name in ("migrate", "server", "worker", "dispatch"):
                print(f"--- the app's {name} ---\n{app.log(name)[-6000:]}")
            raise


def scenario(saleor: LiveSaleor, app: AppProcesses, app_db: str, shop, inbox: list[bytes]) -> None:
    app_url = app.env["APP_URL"]
    # given the owner installs the app from its manifest URL with appInstall
    token = owner_token(saleor)
    install(saleor, token, f"{app_url}/api/manifest")
    # then Saleor registered it with the app, which stored the installation
    [(app_id, uninstalled_at)] = app_rows(
        app_db, "SELECT app_id, uninstalled_at FROM cart_recovery_app_installation"
    )
    apps = saleor.graphql("{ apps(first: 5) { edges { node { id isActive } } } }", token=token)["apps"]
    assert {"id": app_id, "isActive": True} in [edge["node"] for edge in apps["edges"]]
    assert uninstalled_at is None

    # when the owner configures the channel through the app's API with a short schedule
    api = f"{app_url}/channel/{shop.channel_slug}/graphql"

    def update_settings(variables: dict) -> dict:
        response = requests.post(
            api,
            json={"query": UPDATE_SETTINGS, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        return response.json()["data"]["updateSettings"]

    saved = update_settings(
        {"active": True, "input": [{"name": name, "value": value} for name, value in SETTINGS.items()]}
    )
    assert saved["errors"] == [] and saved["active"] is True
    stored = app_rows(app_db, "SELECT active, configuration FROM cart_recovery_app_channel_settings")
    # a bad value is refused by name and nothing is stored
    refused = update_settings({"input": [{"name": "cutoff", "value": "soon"}]})
    assert [error["field"] for error in refused["errors"]] == ["cutoff"]
    assert refused["errors"][0]["message"].startswith("Abandonment cutoff: 'soon' is not a duration")
    assert app_rows(app_db, "SELECT active, configuration FROM cart_recovery_app_channel_settings") == stored

    # and a shopper fills a cart as a storefront does, then leaves
    checkout = storefront(
        saleor,
        CHECKOUT_CREATE,
        input={
            "channel": shop.channel_slug,
            "email": SHOPPER,
            "lines": [{"variantId": shop.variant_ids["Tea pot"][0], "quantity": 1}],
        },
    )["checkout"]
    assert storefront(saleor, SHIPPING_ADDRESS, id=checkout["id"], address=ADDRESS)["errors"] == []
    assert storefront(saleor, BILLING_ADDRESS, id=checkout["id"], address=ADDRESS)["errors"] == []
    # then Saleor's worker delivers the webhooks and the app records the cart
    app.wait_until(
        "the cart recorded",
        lambda: bool(
            app_rows(app_db, "SELECT 1 FROM cart_recovery_cart WHERE checkout_token = %s", checkout["token"])
        ),
    )

    # when the dispatcher runs (a process, as beat starts it) until step 1 is due
    def dispatch_until(what: str, done: Callable[[], bool], until: float) -> None:
        while True:
            app.run("dispatch", "cart_recovery_dispatch", "--enqueue")
            deadline = time.monotonic() + 10  # the worker's send
            while time.monotonic() < deadline and not done():
                time.sleep(0.5)
            if done() or time.monotonic() > until:
                assert done(), what
                return

    dispatch_until("step 1 sent", lambda: len(inbox) >= 1, time.monotonic() + TIMEOUT)
    # then the shopper receives step 1, from the app's worker, with a coupon and links to the app
    (reminder,) = messages_of(inbox)
    assert reminder["Subject"] == "Forgot something?" and SHOPPER in reminder["To"]
    text = text_of(reminder)
    assert f"Return to your cart: {app_url}/channel/{shop.channel_slug}/click/" in text
    code = re.search(r": ([A-HJ-NP-Z2-9]{12})\n", text)
    assert code, text
    unsubscribe = re.search(rf"{re.escape(app_url)}/unsubscribe/\S+", text)
    assert unsubscribe, text

    # when the shopper uses the code in the checkout: Saleor accepts the voucher the app made
    applied = storefront(saleor, PROMO_CODE, id=checkout["id"], code=code.group(1))
    assert applied["errors"] == [] and applied["checkout"]["voucherCode"] == code.group(1)
    assert applied["checkout"]["discount"]["amount"] == pytest.approx(3.0)  # 10 % of the tea pot
    # and completes the checkout (the channel allows unpaid orders)
    order = storefront_order(saleor, checkout["id"], shop.shipping_method_id)
    # then the series stops: the app learns of the order, and no step 2 ever goes out, even once due
    app.wait_until(
        "the order recorded",
        lambda: app_rows(app_db, "SELECT status, order_number FROM cart_recovery_cart")[0][1]
        == str(order["number"]),
    )
    time.sleep(STEP_2 + 5)  # past step 2's time after any activity
    app.run("dispatch", "cart_recovery_dispatch", "--enqueue")
    time.sleep(5)  # what a send would take the worker
    assert len(inbox) == 1
    [(status, stop_reason)] = app_rows(app_db, "SELECT status, stop_reason FROM cart_recovery_cart")
    assert status != "active", (status, stop_reason)
    assert app_rows(app_db, "SELECT step, status FROM cart_recovery_message ORDER BY step") == [(1, "sent")]

    # when the shopper follows the unsubscribe link: a confirmation page, and the POST unsubscribes
    page = requests.get(unsubscribe.group(0), timeout=30)
    assert page.status_code == 200 and "<form" in page.text
    assert requests.post(unsubscribe.group(0), timeout=30).status_code == 200
    # then the address is suppressed in the channel (kept as a keyed hash)
    assert app_rows(app_db, "SELECT channel_slug FROM cart_recovery_suppression") == [(shop.channel_slug,)]
