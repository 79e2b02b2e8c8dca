"""Real Saleor over HTTP for tests: its ASGI server (and, when wanted, its Celery worker, which
delivers webhooks and installs apps) as subprocesses on loopback, against a database of its own
copied from the migrated template, plus helpers to put shop data into that database from the test
process and to call its API.

    database = copy_database("saleor_live_mine")            # from the session's template
    with live_saleor(database, broker_url="redis://127.0.0.1:6379/4", worker=True) as saleor:
        with saleor_database(database):                     # this process's ORM on that database
            token = create_app_token("Cart Recovery", APP_PERMISSIONS)
        saleor.graphql("{ shop { name } }", token=token)

Every process is killed when the ``with`` ends (or the test fails). Environment knobs:
``SALEOR_PYTHON`` (default /opt/saleor-venv/bin/python), ``SALEOR_SRC`` (/opt/saleor-src),
``SALEOR_TEMPLATE_DB`` (default: a copy of the running Saleor suite's own migrated test database,
made once per session by ``fixtures.live_saleor_template``, so each Saleor version's run copies its
own schema), ``CART_RECOVERY_APP_PYTHON`` (the App's processes' Python, default ``.venv/bin/python``
of this repository), ``PGHOST``/``PGUSER``.
"""

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

REPO = Path(__file__).resolve().parents[2]
SALEOR_PYTHON = os.environ.get("SALEOR_PYTHON", "/opt/saleor-venv/bin/python")
SALEOR_SRC = os.environ.get("SALEOR_SRC", "/opt/saleor-src")
# The app server's Python: the core virtualenv, which has no Saleor (the App installs without it).
APP_PYTHON = Path(os.environ.get("CART_RECOVERY_APP_PYTHON", str(REPO / ".venv" / "bin" / "python")))
TEMPLATE_DB = os.environ.get("SALEOR_TEMPLATE_DB", "")  # set by fixtures.live_saleor_template
PGHOST = os.environ.get("PGHOST", "127.0.0.1")
PGUSER = os.environ.get("PGUSER", "postgres")
# What the App asks for (see the manifest): every read and the vouchers.
APP_PERMISSIONS = (
    "MANAGE_CHECKOUTS",
    "MANAGE_ORDERS",
    "MANAGE_DISCOUNTS",
    "MANAGE_PRODUCTS",
    "MANAGE_USERS",
)
START_TIMEOUT = 120.0  # seconds: Saleor imports for a while on a busy machine


def database_url(name: str) -> str:
    return f"postgres://{PGUSER}@{PGHOST}:5432/{name}"


def copy_database(name: str, template: str | None = None, attempts: int = 20) -> str:
    """A fresh ``name`` copied from ``template`` (by default the migrated template, recreated if
    it exists); its URL. PostgreSQL refuses to copy a database someone is connected to: retried
    for a while."""
    template = template or TEMPLATE_DB
    if not template:
        raise RuntimeError("no template database: SALEOR_TEMPLATE_DB, or the Saleor suite's session fixture")
    drop_database(name)
    for attempt in range(attempts):
        done = subprocess.run(
            ["createdb", "-h", PGHOST, "-U", PGUSER, "-T", template, name], capture_output=True, text=True
        )
        if done.returncode == 0:
            return database_url(name)
        if "being accessed by other users" not in done.stderr or attempt == attempts - 1:
            raise RuntimeError(f"createdb {name} from {template} failed: {done.stderr.strip()}")
        time.sleep(3)
    raise AssertionError("unreachable")


def drop_database(name: str) -> None:
    subprocess.run(
        ["dropdb", "-h", PGHOST, "-U", PGUSER, "--if-exists", "--force", name],
        check=True,
        capture_output=True,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rsa_private_key() -> str:
    """A new key per run: Saleor signs JWTs and webhooks with it (server and worker share it)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop a process started in its own session and everything it spawned: TERM, then KILL after
    10 s."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@dataclass
class LiveSaleor:
    """A running Saleor: ``url``, ``api_url``, the ``env`` its processes share, their logs."""

    port: int
    env: dict[str, str]
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/graphql/"

    def _spawn(self, name: str, command: Sequence[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            command,
            env=self.env,
            cwd=SALEOR_SRC,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start_server(self) -> None:
        """Saleor's ASGI application under uvicorn; returns once it answers GraphQL."""
        process = self._spawn(
            "server",
            [
                SALEOR_PYTHON,
                "-m",
                "uvicorn",
                "saleor.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"Saleor's server exited ({process.returncode}):\n{self.log('server')[-3000:]}"
                )
            with contextlib.suppress(requests.RequestException):
                if (
                    requests.post(self.api_url, json={"query": "{ shop { name } }"}, timeout=5).status_code
                    == 200
                ):
                    return
            time.sleep(0.5)
        raise RuntimeError(
            f"Saleor's server did not answer in {START_TIMEOUT}s:\n{self.log('server')[-3000:]}"
        )

    def start_worker(self) -> None:
        """Saleor's Celery worker (webhook deliveries, app installations), one process, every
        queue Saleor routes to by default; returns once it is ready."""
        self._spawn(
            "worker",
            [
                SALEOR_PYTHON,
                "-m",
                "celery",
                "-A",
                "saleor.celeryconf:app",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "info",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            process = self.processes["worker"]
            if process.poll() is not None:
                raise RuntimeError(
                    f"Saleor's worker exited ({process.returncode}):\n{self.log('worker')[-3000:]}"
                )
            if " ready." in self.log("worker"):
                return
            time.sleep(0.5)
        raise RuntimeError(
            f"Saleor's worker was not ready in {START_TIMEOUT}s:\n{self.log('worker')[-3000:]}"
        )

    def stop(self) -> None:
        """Kill every process started (their whole process groups), the worker first."""
        for name in sorted(self.processes, key=lambda name: name != "worker"):
            process = self.processes.pop(name)
            stop_process_group(process)

    def graphql(
        self,
        document: str,
        variables: Mapping[str, Any] | None = None,
        *,
        token: str | None = None,
        mutation_errors: bool = False,
    ) -> dict:
        """POST one document (as a storefront, or with ``token``); its ``data``. Fails on GraphQL
        errors, and on a mutation's ``errors`` unless ``mutation_errors`` (the caller checks them)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = requests.post(
            self.api_url,
            json={"query": document, "variables": dict(variables or {})},
            headers=headers,
            timeout=60,
        )
        body = response.json()
        assert response.status_code == 200 and not body.get("errors"), body
        for result in body["data"].values():
            if not mutation_errors and isinstance(result, dict) and result.get("errors"):
                raise AssertionError(result["errors"])
        return body["data"]


@contextlib.contextmanager
def live_saleor(
    database: str,
    *,
    broker_url: str,
    worker: bool = False,
    env: Mapping[str, str] | None = None,
    python_path: Sequence[str] = (),
) -> Iterator[LiveSaleor]:
    """Saleor's server (and worker) on a free loopback port against the database URL ``database``;
    ``broker_url`` is the Celery broker, a Redis database of the caller's, emptied first (tasks a
    server queued for an earlier database must not reach this worker); ``env`` adds to or
    overrides the environment; ``python_path`` goes before this repository and Saleor's source."""
    import redis

    redis.Redis.from_url(broker_url).flushdb()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {
        **{name: value for name, value in os.environ.items() if name in ("PATH", "HOME", "LANG", "TMPDIR")},
        "DJANGO_SETTINGS_MODULE": "saleor.settings",
        "PYTHONPATH": os.pathsep.join([*python_path, str(REPO), SALEOR_SRC]),
        "DATABASE_URL": database,
        "SECRET_KEY": os.urandom(24).hex(),
        "RSA_PRIVATE_KEY": rsa_private_key(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "ALLOWED_CLIENT_HOSTS": "127.0.0.1,localhost",
        "DEBUG": "False",
        "PUBLIC_URL": url,
        "HTTP_IP_FILTER_ALLOW_LOOPBACK_IPS": "True",
        "CELERY_BROKER_URL": broker_url,
        "PLAYGROUND_ENABLED": "False",
        **(env or {}),
    }
    with tempfile.TemporaryDirectory(prefix="live-saleor-") as log_dir:
        saleor = LiveSaleor(port=port, env=environment, log_dir=Path(log_dir))
        try:
            saleor.start_server()
            if worker:
                saleor.start_worker()
            yield saleor
        finally:
            saleor.stop()


@contextlib.contextmanager
def saleor_database(database: str) -> Iterator[None]:
    """This thread's Django connections (Saleor's ``default`` and ``replica`` aliases) to the
    database ``database`` (a URL or a name) while inside: new connections in autocommit, so what
    is written is committed and Saleor's processes see it; the test's own connection (and its open
    transaction) is put back untouched. Inside a test, or with pytest-django's
    ``django_db_blocker.unblock()``."""
    from django.db import connections

    name = database.rsplit("/", 1)[-1]
    aliases = [alias for alias in ("default", "replica") if alias in connections.databases]
    saved = {alias: connections[alias] for alias in aliases}
    writer = saved["default"]
    live = type(writer)({**writer.settings_dict, "NAME": name}, alias="default")
    for alias in aliases:
        connections[alias] = live
    try:
        yield
    finally:
        live.close()
        for alias, connection in saved.items():
            connections[alias] = connection


def create_app_token(name: str, permissions: Sequence[str] = APP_PERMISSIONS) -> tuple[str, str]:
    """A local app with ``permissions`` (codenames) and one token, made with Saleor's models in
    the current database: ``(the app's global ID, the token)``."""
    import graphene
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from saleor.app.models import App, AppToken
    from saleor.core.db.connection import allow_writer
    from saleor.permission.models import Permission

    with allow_writer():
        app = App.objects.create(name=name, is_active=True, identifier=name.lower().replace(" ", "-"))
        codenames = [permission.lower() for permission in permissions]
        app.permissions.set(Permission.objects.filter(codename__in=codenames))
        token = secrets.token_hex(15)  # Saleor reads only 30-character app tokens
        # Hashed as Saleor's own settings hash (PBKDF2; Saleor's test settings hash with a dummy
        # the server does not know), with few iterations: Saleor checks the token per request.
        hasher = PBKDF2PasswordHasher()
        AppToken(
            app=app,
            name="tests",
            auth_token=hasher.encode(token, hasher.salt(), iterations=1000),
            token_last_4=token[-4:],
        ).save()
    return graphene.Node.to_global_id("App", app.pk), token


def prepare_site(name: str = "Live Tea Shop") -> None:
    """The site settings Saleor's API needs to answer at all (the template has only the ``Site``
    row), and the shop's name; in the current database (see :func:`saleor_database`)."""
    from django.contrib.sites.models import Site
    from saleor.core.db.connection import allow_writer
    from saleor.site.models import SiteSettings

    with allow_writer():
        # the server's site (saleor.settings.SITE_ID), whatever this process's settings say
        site, _ = Site.objects.get_or_create(pk=1, defaults={"domain": "localhost", "name": name})
        Site.objects.filter(pk=site.pk).update(name=name)
        SiteSettings.objects.get_or_create(
            site=site,
            defaults={"default_mail_sender_name": name, "default_mail_sender_address": "shop@example.com"},
        )
        Site.objects.clear_cache()


@dataclass
class LiveShop:
    """What :func:`create_shop` made: the channel (slug, global ID), its shipping method's global
    ID, and each product by name with its variants' global IDs."""

    channel_slug: str
    channel_id: str
    shipping_method_id: str
    products: dict[str, Any]  # name -> Product (Saleor's model)
    variant_ids: dict[str, list[str]]  # product name -> its variants' global IDs


def create_shop(
    channel_slug: str = "live",
    currency: str = "USD",
    products: Sequence[tuple[str, str, Sequence[str], int | None]] = (
        ("Green tea", "Tea", ("4.50",), 10),
        ("Black tea", "Tea", ("6.00", "5.00"), 3),
        ("Tea pot", "Ware", ("30.00",), 10),
    ),
    *,
    country: str = "DE",
) -> LiveShop:
    """A channel that sells without payment (``allowUnpaidOrders``), without taxes, shipping to
    ``country`` from one warehouse, and ``products`` as ``(name, category, variant prices, stock)``
    (stock ``None``: not tracked), published and purchasable, made with Saleor's models in the
    current database (see :func:`saleor_database`)."""
    import datetime

    import graphene
    from prices import Money
    from saleor.account.models import Address
    from saleor.channel.models import Channel
    from saleor.core.db.connection import allow_writer
    from saleor.product.models import (
        Category,
        Product,
        ProductChannelListing,
        ProductType,
        ProductVariant,
        ProductVariantChannelListing,
    )
    from saleor.shipping import ShippingMethodType
    from saleor.shipping.models import ShippingMethodChannelListing, ShippingZone
    from saleor.tax import TaxCalculationStrategy
    from saleor.tax.models import TaxConfiguration
    from saleor.warehouse.models import Stock, Warehouse

    prepare_site()
    since = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    with allow_writer():
        channel = Channel.objects.create(
            name=channel_slug.title(),
            slug=channel_slug,
            currency_code=currency,
            default_country=country,
            is_active=True,
            allow_unpaid_orders=True,
        )
        TaxConfiguration.objects.create(
            channel=channel, charge_taxes=False, tax_calculation_strategy=TaxCalculationStrategy.FLAT_RATES
        )
        zone = ShippingZone.objects.create(name=f"{channel_slug} zone", countries=[country])
        zone.channels.add(channel)
        method = zone.shipping_methods.create(name="Post", type=ShippingMethodType.PRICE_BASED)
        ShippingMethodChannelListing.objects.create(
            channel=channel,
            shipping_method=method,
            currency=currency,
            minimum_order_price=Money(0, currency),
            price=Money(5, currency),
        )
        address = Address.objects.create(
            first_name="Store",
            last_name="Keeper",
            street_address_1="Hauptstr. 1",
            city="BERLIN",
            postal_code="10115",
            country=country,
        )
        warehouse = Warehouse.objects.create(
            address=address,
            name=f"{channel_slug} warehouse",
            slug=f"{channel_slug}-warehouse",
            email="store@example.com",
        )
        warehouse.shipping_zones.add(zone)
        warehouse.channels.add(channel)
        product_type, _ = ProductType.objects.get_or_create(
            slug="live-goods", defaults={"name": "Goods", "has_variants": True, "is_shipping_required": True}
        )
        made: dict[str, Any] = {}
        variant_ids: dict[str, list[str]] = {}
        for name, category_name, prices, stock in products:
            slug = name.lower().replace(" ", "-")
            category, _ = Category.objects.get_or_create(
                slug=f"{channel_slug}-{category_name.lower()}", defaults={"name": category_name}
            )
            product = Product.objects.create(
                name=name, slug=f"{channel_slug}-{slug}", product_type=product_type, category=category
            )
            ProductChannelListing.objects.create(
                product=product,
                channel=channel,
                is_published=True,
                published_at=since,
                visible_in_listings=True,
                available_for_purchase_at=since,
                currency=currency,
                discounted_price_amount=min(Decimal(p) for p in prices),
            )
            variant_ids[name] = []
            for index, price in enumerate(prices):
                variant = ProductVariant.objects.create(
                    product=product,
                    sku=f"{channel_slug}-{slug}-{index}",
                    name=f"{name} {index + 1}" if len(prices) > 1 else "",
                    track_inventory=stock is not None,
                )
                ProductVariantChannelListing.objects.create(
                    variant=variant,
                    channel=channel,
                    price_amount=Decimal(price),
                    discounted_price_amount=Decimal(price),
                    currency=currency,
                )
                Stock.objects.create(warehouse=warehouse, product_variant=variant, quantity=stock or 0)
                variant_ids[name].append(graphene.Node.to_global_id("ProductVariant", variant.pk))
            made[name] = product
    return LiveShop(
        channel_slug=channel_slug,
        channel_id=graphene.Node.to_global_id("Channel", channel.pk),
        shipping_method_id=graphene.Node.to_global_id("ShippingMethod", method.pk),
        products=made,
        variant_ids=variant_ids,
    )


CHECKOUT_CREATE = """
mutation Create($input: CheckoutCreateInput!) {
  checkoutCreate(input: $input) { checkout { id token } errors { field code message } }
}"""
CHECKOUT_DELIVERY = """
mutation Delivery($id: ID!, $method: ID!) {
  checkoutDeliveryMethodUpdate(id: $id, deliveryMethodId: $method) { errors { field code message } }
}"""
CHECKOUT_COMPLETE = """
mutation Complete($id: ID!) {
  checkoutComplete(id: $id) { order { id number } errors { field code message } }
}"""
ADDRESS = {
    "firstName": "Ann",
    "lastName": "Shopper",
    "streetAddress1": "Unter den Linden 1",
    "city": "Berlin",
    "postalCode": "10117",
    "country": "DE",
}


def storefront_checkout(
    saleor: LiveSaleor,
    channel_slug: str,
    email: str,
    lines: Sequence[tuple[str, int]],
    *,
    address: Mapping[str, str] | None = ADDRESS,
    language: str = "EN",
) -> tuple[str, str]:
    """A checkout made as a storefront makes it (anonymous ``checkoutCreate``): ``(ID, token)``."""
    checkout_input: dict[str, Any] = {
        "channel": channel_slug,
        "email": email,
        "lines": [{"variantId": variant, "quantity": quantity} for variant, quantity in lines],
        "languageCode": language,
    }
    if address:
        checkout_input.update(shippingAddress=dict(address), billingAddress=dict(address))
    checkout = saleor.graphql(CHECKOUT_CREATE, {"input": checkout_input})["checkoutCreate"]["checkout"]
    return checkout["id"], checkout["token"]


def storefront_order(saleor: LiveSaleor, checkout_id: str, shipping_method_id: str) -> dict:
    """Delivery chosen and ``checkoutComplete`` (the channel allows unpaid orders): the order."""
    saleor.graphql(CHECKOUT_DELIVERY, {"id": checkout_id, "method": shipping_method_id})
    return saleor.graphql(CHECKOUT_COMPLETE, {"id": checkout_id})["checkoutComplete"]["order"]
