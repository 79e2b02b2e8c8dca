"""``bench_send.py``'s measurement of the App host, in the app server's own process (its settings,
``saleor_cart_recovery.app.settings``, from the environment; no Saleor imported): its database
migrated fresh, the installation recorded with the app token ``bench_saleor.py app-shop`` made, the
channel's settings stored and active, every checkout recorded by the App's own checkout webhook
handler from the payload Saleor would deliver, then one timed dispatch whose reads and order checks
go over HTTP to the real Saleor server at ``SALEOR_API_URL``.

    python tests/saleor/bench_app.py --carts N --facts FILE [--profile FILE]   # the figures (JSON)
"""

import argparse
import inspect
import json
import os
from pathlib import Path


def measure_app(carts: int, facts: dict, profile: Path | None) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saleor_cart_recovery.app.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from saleor_cart_recovery.app import installation
    from saleor_cart_recovery.app.manifest import PERMISSIONS
    from saleor_cart_recovery.app.models import ChannelSettings
    from saleor_cart_recovery.app.webhooks import on_checkout
    from tests.saleor.bench_dispatch import mail_server, timed_dispatch
    from tests.saleor.bench_saleor import CHANNEL, SETTINGS

    call_command("migrate", verbosity=0)
    port, inbox = mail_server()
    # A fresh database: no earlier installation for Saleor to be asked about (a baseline from before
    # ``accepted`` existed records without it).
    asks = "accepted" in inspect.signature(installation.record).parameters
    installation.record(
        app_id=facts["app_id"],
        token=facts["token"],
        permissions=list(PERMISSIONS),
        **({"accepted": lambda _: True} if asks else {}),
    )
    configuration = {**SETTINGS, "smtp_url": f"smtp://127.0.0.1:{port}"}
    ChannelSettings.objects.create(
        channel_slug=CHANNEL,
        configuration=[{"name": name, "value": value} for name, value in configuration.items()],
        active=True,
    )
    for checkout in facts["checkouts"]:
        # the activity is the checkout's updatedAt (left two hours ago): the first step is due
        on_checkout({"checkout": checkout})
    return timed_dispatch(carts, inbox, profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--carts", type=int, required=True)
    parser.add_argument("--facts", type=Path, required=True)
    parser.add_argument("--profile", type=Path)
    options = parser.parse_args()
    from tests.saleor.bench_saleor import package

    figures = measure_app(options.carts, json.loads(options.facts.read_text()), options.profile)
    print(json.dumps({**figures, "package": package()}))


if __name__ == "__main__":
    main()
