"""Real parts for the end-to-end and chaos suites: an aiosmtpd server on loopback that records what
it received, ``celery worker`` processes on pytest's test database, the App's server process, and a
Redis broker.

Fixtures here are made available to every core test module through ``conftest.py``; nothing starts
unless a test asks for it.
"""

import asyncio
import email
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from functools import cached_property
from pathlib import Path

import kombu.pools
import pytest
import redis
import requests
from aiosmtpd.controller import Controller
from django.db import connection

from saleor_cart_recovery.series.dispatch import dispatch
from saleor_cart_recovery.tasks import enqueue_send
from tests.celery_app import app

ROOT = Path(__file__).resolve().parents[2]
REDIS_HOST = os.environ.get("CART_RECOVERY_REDIS_HOST", "127.0.0.1")
# A Redis database of its own, purged at start: nothing else's tasks can reach our worker.
REDIS_DB = int(os.environ.get("CART_RECOVERY_E2E_REDIS_DB", "12"))
BROKER_URL = f"redis://{REDIS_HOST}:6379/{REDIS_DB}"
# Figures the real-parts scenarios report, printed at the end of the run under each section's title
# (conftest's terminal summary): the chaos scenarios' in FIGURES, the flash sale's in FLASH_SALE_FIGURES.
FIGURES: list[str] = []
FLASH_SALE_FIGURES: list[str] = []
SUMMARY_SECTIONS = {"chaos figures": FIGURES, "flash-sale figures": FLASH_SALE_FIGURES}
WORKER_START_TIMEOUT = 30
MAIL_TIMEOUT = 30
POLL = 0.1


# --- SMTP server -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    # Wall-clock time (``time.time()``) at which the server accepted the message.
    accepted_at: float = field(default_factory=time.time)

    @cached_property
    def message(self) -> EmailMessage:
        """Parsed when a test reads it, not while the server receives (parsing costs more CPU than
        sending: a server under load must not slow the senders it measures)."""
        return email.message_from_bytes(self.content, policy=policy.default)

    def part(self, content_type: str) -> str:
        body = self.message.get_body(preferencelist=(content_type.split("/")[1],))
        assert body is not None and body.get_content_type() == content_type, f"no {content_type} part"
        return body.get_content()


class Inbox:
    """aiosmtpd handler that keeps every accepted envelope with its parsed message.

    ``stall`` (a :class:`threading.Event`) holds every message in DATA until it is set — the server
    has the whole message by then, as a real one that stalls before answering would."""

    def __init__(self):
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self.stall: threading.Event | None = None
        self.in_data = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.in_data.set()
        if self.stall is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.stall.wait, 60)
        accepted_at = time.time()
        with self._lock:
            self._received.append(
                Received(envelope.mail_from, tuple(envelope.rcpt_tos), envelope.content, accepted_at)
            )
        return "250 Message accepted for delivery"

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]

    def clear(self):
        with self._lock:
            self._received.clear()
        self.stall = None
        self.in_data.clear()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        if inbox.stall is not None:
            inbox.stall.set()
        controller.stop()


@pytest.fixture
def inbox(smtp_server):
    _, inbox = smtp_server
    inbox.clear()
    return inbox


# --- Celery workers ----------------------------------------------------------------------------


class Worker:
    def __init__(self, process: subprocess.Popen, log: Path):
        self.process = process
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def check_alive(self):
        if self.process.poll() is not None:
            pytest.fail(f"the Celery worker exited with code {self.process.returncode}:\n{self.output()}")

    def finished(self, task_ids) -> bool:
        """Whether the worker logged an outcome for every one of these task ids."""
        text = self.output()
        return all(
            re.search(rf"\[{re.escape(task_id)}\] (succeeded|raised|failed)", text) for task_id in task_ids
        )

    def kill(self):
        """SIGKILL: no cleanup, no acknowledgement, connections dropped mid-conversation."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def launch_worker(
    log: Path,
    *,
    broker_url: str,
    name: str,
    concurrency: int = 4,
    env: dict | None = None,
    celery_app: str = "tests.celery_app",
) -> Worker:
    """A ``celery worker`` subprocess on pytest's test database, ready to take tasks; ``celery_app``
    and ``env`` run another host's worker (the App's reads its settings from ``env``)."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        # django_db_setup has switched the connection over to the test database by now.
        "CART_RECOVERY_DB_NAME": connection.settings_dict["NAME"],
        "CART_RECOVERY_BROKER_URL": broker_url,
        "CART_RECOVERY_CELERY_EAGER": "0",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    environment.pop("CELERY_BROKER_URL", None)  # would override the test settings inside Celery
    environment.update(env or {})
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        celery_app,
        "worker",
        # Threads: several send tasks really run at the same time (redelivery races).
        "--pool=threads",
        f"--concurrency={concurrency}",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--hostname",
        f"{name}-{os.getpid()}@%h",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    worker = Worker(process, log)
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    while " ready." not in worker.output():
        if process.poll() is not None or time.monotonic() > deadline:
            worker.stop()
            pytest.fail(f"the Celery worker {name} did not start:\n{worker.output()}")
        time.sleep(POLL)
    return worker


class AppServer:
    """The App's server as an operator runs it: ``uvicorn saleor_cart_recovery.app.asgi:application``
    in its own process, configured by ``environment`` (its ``APP_URL`` names the port, so a restart
    comes back at the same URL)."""

    def __init__(self, environment: dict, log: Path):
        self.environment = environment
        self.url = environment["APP_URL"]
        self.log = log
        self.process: subprocess.Popen | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def start(self) -> "AppServer":
        port = self.url.rsplit(":", 1)[1]
        command = [sys.executable, "-m", "uvicorn", "saleor_cart_recovery.app.asgi:application"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*command, "--port", port, "--no-access-log"],
                cwd=ROOT,
                env=self.environment,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while True:
            try:
                requests.get(f"{self.url}/api/manifest", timeout=10)
                return self
            except requests.RequestException:  # not listening yet, or still loading Django
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"the app server did not start:\n{self.output()}")
                time.sleep(POLL)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def redis_client(url_host: str = REDIS_HOST, port: int = 6379, db: int = REDIS_DB) -> redis.Redis:
    client = redis.Redis(host=url_host, port=port, db=db, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"the test needs Redis at {url_host}:{port}/{db}: {exc}")
    return client


@pytest.fixture(scope="module")
def worker(django_db_setup, tmp_path_factory):
    """One real worker on the shared Redis (a private database of it), for the whole module."""
    client = redis_client()
    client.flushdb()
    running = launch_worker(
        tmp_path_factory.mktemp("celery") / "worker.log", broker_url=BROKER_URL, name="e2e"
    )
    try:
        yield running
    finally:
        running.stop()
        client.flushdb()
        client.close()


def use_broker(settings, broker_url: str):
    """This process publishes to ``broker_url`` instead of running tasks inline.

    The Celery app reads Django's settings live (``CELERY_`` namespace), so overriding them is
    enough; the broker connection pool is dropped so no connection to another broker is reused.
    """
    reset_broker_pool()
    settings.CELERY_BROKER_URL = broker_url
    settings.CELERY_TASK_ALWAYS_EAGER = False
    assert (app.conf.broker_url, app.conf.task_always_eager) == (broker_url, False)


def reset_broker_pool():
    """Close this process's broker connections and forget the pools bound to the old broker URL."""
    kombu.pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def celery_for_real(worker, settings):
    use_broker(settings, BROKER_URL)
    yield worker
    reset_broker_pool()


def dispatchers_at_once(count: int, **kwargs) -> list:
    """``count`` dispatch cycles started at the same instant from threads (two beat processes);
    returns their results, failing the test if one raised or hung."""
    barrier, results, errors = threading.Barrier(count), [], []

    def run():
        try:
            barrier.wait(timeout=10)
            results.append(dispatch(send=enqueue_send, **kwargs))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a dispatcher hung"
    assert errors == [], errors
    return results


def wait_until(condition, what: str, *workers: Worker, timeout: float = MAIL_TIMEOUT, state=None):
    """Poll ``condition``; on time-out fail with ``state()`` (if given) and the workers' log tails."""
    deadline = time.monotonic() + timeout
    while not condition():
        for running in workers:
            running.check_alive()
        if time.monotonic() > deadline:
            logs = "\n".join(running.output()[-4000:] for running in workers)
            seen = f" (state: {state()})" if state else ""
            pytest.fail(f"timed out after {timeout}s waiting for {what}{seen}; worker logs:\n{logs}")
        time.sleep(POLL)


CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)


def chromium(*args: str, javascript: bool = True, timeout: int = 120) -> subprocess.CompletedProcess:
    """Headless Debian chromium with a fresh profile, quiet (no updates, no background fetches).
    Without ``javascript`` the profile blocks scripts as a user's setting would (Chromium 156's
    headless mode loads nothing at all with ``--blink-settings=scriptEnabled=false``)."""
    profile = Path(tempfile.mkdtemp())
    if not javascript:
        (profile / "Default").mkdir()
        blocked = {"profile": {"default_content_setting_values": {"javascript": 2}}}
        (profile / "Default" / "Preferences").write_text(json.dumps(blocked))
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run([str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=timeout)
