"""The demo behind ``scripts/run``: one abandoned cart going through a fast series for real.

A Celery worker (Redis broker) sends through an SMTP server on loopback that prints what it gets;
this process plays beat, running a dispatch cycle every few seconds.
"""

import argparse
import email
import os
import subprocess
import sys
import time
from decimal import Decimal
from email import policy
from uuid import uuid4

import django

django.setup()

from aiosmtpd.controller import Controller  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from saleor_cart_recovery.models import RecoveryCart, RecoveryMessage  # noqa: E402
from saleor_cart_recovery.series.activity import record_activity  # noqa: E402
from saleor_cart_recovery.series.dispatch import dispatch  # noqa: E402
from saleor_cart_recovery.settings.channel import RecoverySettings  # noqa: E402
from saleor_cart_recovery.tasks import enqueue_send  # noqa: E402
from tests.celery_app import app as celery_app  # noqa: E402,F401  (send tasks to the demo broker)
from tests.shopapp.models import ShopChannel, ShopCheckout, ShopLine  # noqa: E402

SMTP_PORT = int(os.environ.get("CART_RECOVERY_DEMO_SMTP_PORT", "8025"))


class PrintingHandler:
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        text = message.get_body(("plain",)).get_content()
        print(f"\n[smtp] to {', '.join(envelope.rcpt_tos)} | subject: {message['Subject']}")
        print(f"[smtp] List-Unsubscribe: {message['List-Unsubscribe']}")
        print("\n".join(f"       {line}" for line in text.strip().splitlines()[:12]))
        return "250 OK"


def seed() -> str:
    channel, _ = ShopChannel.objects.update_or_create(
        slug="demo",
        defaults={
            "active": True,
            "configuration": [
                {"name": "schedule", "value": "20s, 40s, 60s"},
                {"name": "cutoff", "value": "10s"},
                {"name": "subjects", "value": "1: Forgot something?\n2: Still thinking?\n3: Last call"},
                {"name": "storefront_url", "value": "https://shop.example.com/cart/{token}"},
                {"name": "from_email", "value": "Demo Shop <shop@example.com>"},
                {"name": "smtp_url", "value": f"smtp://127.0.0.1:{SMTP_PORT}"},
            ],
        },
    )
    checkout = ShopCheckout.objects.create(token=str(uuid4()), channel=channel, email="shopper@example.com")
    ShopLine.objects.create(
        checkout=checkout,
        variant_id="1",
        product_name="Blue Hoodie",
        variant_name="XL",
        quantity=2,
        unit_price=Decimal("39.90"),
    )
    ShopLine.objects.create(
        checkout=checkout, variant_id="2", product_name="Canvas Tote", quantity=1, unit_price=Decimal("12.50")
    )
    record_activity(
        checkout_token=checkout.token,
        channel_slug="demo",
        email=checkout.email,
        language_code="en",
        at=timezone.now(),
        settings=RecoverySettings.from_plugin_configuration(channel.configuration),
    )
    return checkout.token


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between dispatch cycles")
    parser.add_argument("--timeout", type=float, default=180.0, help="give up after this many seconds")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    smtp = Controller(PrintingHandler(), hostname="127.0.0.1", port=SMTP_PORT)
    smtp.start()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.celery_app",
            "worker",
            "--pool=solo",
            "--loglevel=ERROR",
        ],
    )
    try:
        token = seed()
        print(f"cart {token} abandoned now; reminders due after 20s, 40s and 60s of quiet")
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            result = dispatch(send=enqueue_send)
            if result.planned or result.enqueued:
                print(f"[dispatch] {result}")
            cart = RecoveryCart.objects.get(checkout_token=token)
            pending = RecoveryMessage.objects.filter(cart=cart, status__in=["scheduled", "sending"]).exists()
            if cart.status != "active" and not pending:
                statuses = list(cart.messages.order_by("step").values_list("step", "status", "reason"))
                print(f"\nseries {cart.status}: {statuses}")
                return 0
            time.sleep(args.interval)
        print("the series did not finish in time", file=sys.stderr)
        return 1
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        smtp.stop()


if __name__ == "__main__":
    sys.exit(main())
