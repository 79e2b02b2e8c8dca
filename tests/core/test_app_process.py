"""The app server as an operator runs it: its own database made by ``saleor-cart-recovery-app
migrate``, uvicorn on the ASGI application in its own process, installed and fed by (the stand-in
for) Saleor over HTTP."""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
import requests
from django.conf import settings

from saleor_cart_recovery.series.beat import SCHEDULE

from .app_host import APP_TOKEN, checkout_payload
from .conftest import CONFIGURATION, START
from .realparts import AppServer, free_port
from .standin_saleor import SigningKey

COMMAND = str(Path(sys.executable).parent / "saleor-cart-recovery-app")


def _connect(dbname: str) -> psycopg.Connection:
    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"],
        port=db["PORT"],
        user=db["USER"],
        password=db["PASSWORD"],
        dbname=dbname,
        autocommit=True,
    )


@pytest.fixture
def app_database():
    """A database of its own, as an operator's would be; dropped afterwards."""
    name = f"{settings.DATABASES['default']['NAME']}_app_process"
    with _connect("postgres") as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield name
    with _connect("postgres") as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def environment(app_database, saleor):
    db = settings.DATABASES["default"]
    port = free_port()
    saleor.manifest_url = f"http://127.0.0.1:{port}/api/manifest"  # installed from this server's manifest
    return {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{app_database}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "SECRET_KEY": "a-secret-key-for-the-app-process-test-0123456789",
        "APP_URL": f"http://127.0.0.1:{port}",
        "SALEOR_API_URL": saleor.api_url,
        "EMAIL_URL": "smtp://127.0.0.1:2525",
    }


def _manage(environment: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([COMMAND, *args], env=environment, capture_output=True, text=True, timeout=300)


@pytest.fixture
def app_server(environment, tmp_path):
    """``saleor-cart-recovery-app migrate``, then uvicorn serving the app; killed at the end."""
    migrated = _manage(environment, "migrate", "--no-input")
    assert migrated.returncode == 0, migrated.stderr
    server = AppServer(environment, tmp_path / "app-server.log").start()
    yield server.url
    server.stop()


def test_a_missing_or_bad_variable_stops_the_command_with_its_name(environment):
    without = {name: value for name, value in environment.items() if name != "APP_URL"}
    failed = _manage(without, "check")
    assert failed.returncode != 0 and "APP_URL is not set" in failed.stderr
    failed = _manage({**environment, "DATABASE_URL": "mysql://db/shop"}, "check")
    assert failed.returncode != 0 and "DATABASE_URL must name a PostgreSQL database" in failed.stderr
    failed = _manage({**environment, "EMAIL_URL": "ftp://mail.example.com"}, "check")
    assert failed.returncode != 0 and "EMAIL_URL is not a valid URL" in failed.stderr
    failed = _manage({**environment, "SALEOR_API_TIMEOUT": "soon"}, "check")
    assert failed.returncode != 0 and "SALEOR_API_TIMEOUT must be a number of seconds" in failed.stderr


def test_the_celery_app_runs_the_cores_tasks_with_beat_reading_the_database(environment):
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "from saleor_cart_recovery.app.celery import app; app.loader.import_default_modules(); "
            "print(app.conf.beat_scheduler); print(' '.join(sorted(app.tasks)))",
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    scheduler, tasks = shown.stdout.splitlines()
    assert scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
    assert {entry.task for entry in SCHEDULE} | {"saleor_cart_recovery.send_reminders"} <= set(tasks.split())


def test_the_app_server_installs_and_records_webhooks_in_its_own_process(
    app_server, environment, saleor, app_database
):
    # given the app server's own database, with the core's tables and the beat entries
    with _connect(app_database) as db:
        beat = {
            row[0] for row in db.execute("SELECT name FROM django_celery_beat_periodictask WHERE enabled")
        }
        assert {entry.task for entry in SCHEDULE} <= beat
    # when Saleor reads the manifest and posts the token
    manifest = requests.get(f"{app_server}/api/manifest", timeout=10).json()
    assert manifest["tokenTargetUrl"] == f"{app_server}/api/register"
    registered = requests.post(
        manifest["tokenTargetUrl"],
        json={"auth_token": APP_TOKEN},
        headers={"Saleor-Api-Url": saleor.api_url},
        timeout=10,
    )
    assert registered.status_code == 200
    with _connect(app_database) as db:
        db.execute(
            "INSERT INTO cart_recovery_app_channel_settings (channel_slug, configuration, active, "
            "updated_at) VALUES ('main', %s, true, now())",
            [json.dumps(CONFIGURATION)],
        )
    # and delivers a checkout webhook, then a forged one
    token = str(uuid4())
    body = json.dumps(checkout_payload(token, "shopper@example.com", START)).encode()
    target = next(
        hook["targetUrl"] for hook in manifest["webhooks"] if hook["asyncEvents"] == ["CHECKOUT_UPDATED"]
    )
    delivered = requests.post(
        target, data=body, headers=saleor.webhook_headers("checkout_updated", body), timeout=10
    )
    forged_body = json.dumps(checkout_payload(str(uuid4()), "forged@example.com", START)).encode()
    forged = requests.post(
        target, data=forged_body, headers=saleor.webhook_headers("checkout_updated", body), timeout=10
    )
    # then the real one is recorded, the forged one refused, and the token is stored encrypted only
    assert (delivered.status_code, forged.status_code) == (204, 401)
    with _connect(app_database) as db:
        carts = db.execute("SELECT checkout_token, email FROM cart_recovery_cart").fetchall()
        assert carts == [(token, "shopper@example.com")]
        (ciphertext,) = db.execute("SELECT token_ciphertext FROM cart_recovery_app_installation").fetchone()
        assert APP_TOKEN not in ciphertext
    # and the manage command runs the core's commands against the same database
    dispatched = _manage(environment, "cart_recovery_dispatch")
    assert dispatched.returncode == 0, dispatched.stderr


def test_the_app_server_fetches_saleors_keys_once_for_a_flood_of_unknown_key_ids(app_server, saleor):
    # given the app server installed by Saleor (which fetched Saleor's keys)
    registered = requests.post(
        f"{app_server}/api/register",
        json={"auth_token": APP_TOKEN},
        headers={"Saleor-Api-Url": saleor.api_url},
        timeout=10,
    )
    assert registered.status_code == 200
    fetched = saleor.jwks_fetches
    saleor.jwks_delay = 0.5
    body = json.dumps(checkout_payload(str(uuid4()), "shopper@example.com", START)).encode()

    def forged(index: int) -> int:
        key = SigningKey()
        key.kid = f"forged-{index}"
        headers = saleor.webhook_headers(
            "checkout_updated", body, **{"Saleor-Signature": saleor.sign(body, key)}
        )
        return requests.post(
            f"{app_server}/webhooks/checkout-updated", data=body, headers=headers, timeout=30
        ).status_code

    # when 30 webhooks, each signed under a key id of its own, reach the ASGI server at once
    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(forged, range(30)))
    # then all are refused after one fetch of Saleor's keys between them
    assert statuses == [401] * 30
    assert saleor.jwks_fetches == fetched + 1
