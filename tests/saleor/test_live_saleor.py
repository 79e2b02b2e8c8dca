"""The live-Saleor harness itself: Saleor's server and Celery worker as subprocesses deliver an
app's webhook, signed, to a loopback target — what the App's end-to-end tests stand on."""

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from saleor.app.models import App
from saleor.core.db.connection import allow_writer
from saleor.webhook.event_types import WebhookEventAsyncType
from saleor.webhook.models import Webhook, WebhookEvent

from .live_saleor import (
    copy_database,
    create_app_token,
    create_shop,
    drop_database,
    live_saleor,
    saleor_database,
    storefront_checkout,
)

DATABASE = os.environ.get(
    "CART_RECOVERY_LIVE_DB", "saleor_live_" + os.environ.get("CART_RECOVERY_DB_NAME", "cr")
)
BROKER = os.environ.get("CART_RECOVERY_BROKER_URL", "redis://127.0.0.1:6379/4")
SUBSCRIPTION = "subscription { event { ... on CheckoutCreated { checkout { token email } } } }"


@pytest.fixture
def webhook_target():
    """A loopback HTTP server keeping each POST's headers and JSON body."""
    received: list[tuple[dict, dict]] = []

    class Target(BaseHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append((dict(self.headers), json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/webhooks", received
    server.shutdown()
    server.server_close()


def test_the_worker_delivers_a_signed_webhook_to_a_loopback_app(webhook_target):
    target_url, received = webhook_target
    url = copy_database(DATABASE)
    try:
        with saleor_database(url):
            shop = create_shop()
            create_app_token("Webhook receiver")
            with allow_writer():
                webhook = Webhook.objects.create(
                    name="checkouts",
                    app=App.objects.get(name="Webhook receiver"),
                    target_url=target_url,
                    subscription_query=SUBSCRIPTION,
                )
                WebhookEvent.objects.create(
                    webhook=webhook, event_type=WebhookEventAsyncType.CHECKOUT_CREATED
                )
        with live_saleor(url, broker_url=BROKER, worker=True) as saleor:
            _, token = storefront_checkout(
                saleor,
                shop.channel_slug,
                "ann@example.com",
                [(shop.variant_ids["Green tea"][0], 1)],
            )
            deadline = time.monotonic() + 60
            while not received and time.monotonic() < deadline:
                time.sleep(0.2)

            assert received, saleor.log("worker")[-3000:]
            headers, body = received[0]
            assert body["checkout"] == {"token": token, "email": "ann@example.com"}
            assert headers["Saleor-Event"] == "checkout_created"
            assert headers["Saleor-Api-Url"].startswith(saleor.url)
            assert headers["Saleor-Signature"].count(".") == 2  # a detached JWS: header..signature
    finally:
        drop_database(DATABASE)
