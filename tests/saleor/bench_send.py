"""The send path inside real Saleor 3.23, this version side by side with an earlier one.

    PYTHONPATH=/opt/saleor-src /opt/saleor-venv/bin/python tests/saleor/bench_send.py \
        [--carts 500] [--baseline 965ffee]

For each version it copies the Saleor suite's migrated test database (``test_saleor_cr``, made by
the first run of the Saleor suite) into a scratch database, stores ``--carts`` checkouts of
two lines each the way a storefront leaves them (priced at the shopper's last visit, prices
expired since), records them through the plugin's own checkout hook, makes their first step due,
and times one in-process ``cart_recovery_dispatch`` (plan and send every due reminder) to an
aiosmtpd server on loopback. It prints emails/s, SQL queries per email (both database aliases)
and SMTP connections per email for each version. The earlier version is the package exported
from git at ``--baseline`` (default: the last commit before batched sending) and run by the same
measuring code in its own process. It is a benchmark: it asserts only that every reminder
arrived once. Without Saleor it says so and exits.
"""

import argparse
import atexit
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DB = "test_saleor_cr"
BASELINE = "965ffee"
CHANNEL = "bench"


def measure(carts: int) -> dict:
    """Runs in a child process with ``DATABASE_URL`` pointing at a scratch copy."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saleor.tests.settings")
    import django

    django.setup()
    from datetime import timedelta
    from decimal import Decimal

    import saleor.graphql.api  # noqa: F401  (Saleor's schema, loaded in its own order as at start-up)
    from django.conf import settings
    from django.contrib.sites.models import Site
    from django.core.management import call_command
    from django.db import connections
    from django.utils import timezone
    from saleor.channel.models import Channel
    from saleor.checkout import calculations
    from saleor.checkout.fetch import fetch_checkout_info, fetch_checkout_lines
    from saleor.checkout.models import Checkout, CheckoutLine
    from saleor.plugins.manager import get_plugins_manager
    from saleor.product.models import (
        Category,
        Product,
        ProductChannelListing,
        ProductType,
        ProductVariant,
        ProductVariantChannelListing,
    )
    from saleor.tax import TaxCalculationStrategy
    from saleor.tax.models import TaxConfiguration

    settings.PLUGINS = ["saleor_cart_recovery.plugin.CartRecoveryPlugin"]
    Site.objects.update(domain="shop.example.com", name="Bench Shop")

    port, inbox = mail_server()
    channel = Channel.objects.create(
        name="Bench", slug=CHANNEL, currency_code="USD", default_country="US", is_active=True
    )
    TaxConfiguration.objects.create(
        channel=channel,
        charge_taxes=True,
        prices_entered_with_tax=True,
        tax_calculation_strategy=TaxCalculationStrategy.FLAT_RATES,
    )
    product_type = ProductType.objects.create(name="Shirt", slug="shirt")
    category = Category.objects.create(name="Shirts", slug="shirts")
    variants = []
    for n in range(2):
        product = Product.objects.create(
            name=f"Shirt {n}", slug=f"shirt-{n}", product_type=product_type, category=category
        )
        ProductChannelListing.objects.create(
            product=product, channel=channel, is_published=True, available_for_purchase_at=timezone.now()
        )
        variant = ProductVariant.objects.create(product=product, sku=f"SHIRT-{n}", name="M")
        ProductVariantChannelListing.objects.create(
            variant=variant, channel=channel, price_amount=Decimal("19.90"), currency="USD"
        )
        variants.append(variant)
    manager = get_plugins_manager(allow_replica=False)
    manager.save_plugin_configuration(
        "saleor_cart_recovery",
        CHANNEL,
        {
            "active": True,
            "configuration": [
                {"name": name, "value": value}
                for name, value in {
                    "schedule": "1h, 1d, 3d",
                    "cutoff": "30m",
                    "subjects": "1: Forgot something?\n2: Your cart is waiting\n3: Still yours",
                    "storefront_url": "https://shop.example.com/cart/{token}",
                    "from_email": "Bench Shop <shop@example.com>",
                    "smtp_url": f"smtp://127.0.0.1:{port}",
                }.items()
            ],
        },
    )
    manager = get_plugins_manager(allow_replica=False)
    for n in range(carts):
        checkout = Checkout.objects.create(channel=channel, currency="USD", email=f"shopper{n}@example.com")
        for quantity, variant in enumerate(variants, start=1):
            CheckoutLine.objects.create(
                checkout=checkout,
                variant=variant,
                quantity=quantity,
                currency="USD",
                undiscounted_unit_price_amount=Decimal("19.90"),
            )
        lines, _ = fetch_checkout_lines(checkout)
        calculations.calculate_checkout_total(
            manager=manager, checkout_info=fetch_checkout_info(checkout, lines, manager), lines=lines
        )  # the storefront showed the shopper the priced cart
        manager.checkout_updated(checkout)
    now = timezone.now()
    # The shopper left two hours ago; Saleor's stored prices expired an hour later (its TTL).
    Checkout.objects.filter(channel=channel).update(
        last_change=now - timedelta(hours=2), price_expiration=now - timedelta(hours=1)
    )
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "UPDATE cart_recovery_cart SET last_activity_at = %s, next_due_at = %s",
            [now - timedelta(hours=2), now - timedelta(hours=1)],
        )
    queries = 0

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    with ExitStack() as stack:
        for alias in sorted({"default", "replica"} & set(connections)):
            stack.enter_context(connections[alias].execute_wrapper(count))
        started = time.perf_counter()
        call_command("cart_recovery_dispatch", stdout=io.StringIO())
        seconds = time.perf_counter() - started
    received = [line.split() for line in inbox.read_text().splitlines()]
    recipients = [recipient for _, recipient in received]
    assert len(recipients) == carts == len(set(recipients)), (len(recipients), carts)
    return {
        "emails": len(recipients),
        "seconds": seconds,
        "queries": queries,
        "connections": len({peer for peer, _ in received}),
    }


# A loopback SMTP server in a process of its own (as a real one is: it takes no CPU time from the
# sender's interpreter); it appends "<client port> <recipient>" per accepted message to a file.
SMTP_SERVER = """
import sys, threading
from aiosmtpd.controller import Controller
class Log:
    async def handle_DATA(self, server, session, envelope):
        with open(sys.argv[2], "a") as log:
            log.write(f"{session.peer[1]} {envelope.rcpt_tos[0]}\\n")
        return "250 OK"
Controller(Log(), hostname="127.0.0.1", port=int(sys.argv[1])).start()
print("ready", flush=True)
threading.Event().wait()
"""


def mail_server() -> tuple[int, Path]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = Path(tempfile.mkdtemp()) / "received"
    log.touch()
    server = subprocess.Popen(
        [sys.executable, "-c", SMTP_SERVER, str(port), str(log)], stdout=subprocess.PIPE, text=True
    )
    atexit.register(server.kill)
    assert server.stdout.readline().strip() == "ready"
    return port, log


def scratch_database(name: str) -> None:
    import psycopg

    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [TEMPLATE_DB]).fetchone():
            sys.exit(f"no {TEMPLATE_DB}: run the Saleor suite once first (docs/development.md, Saleor suite)")
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')


def run(label: str, package_dir: Path, carts: int) -> dict:
    database = f"bench_send_{label}"
    scratch_database(database)
    saleor_src = os.environ.get("SALEOR_SRC", "/opt/saleor-src")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(package_dir), saleor_src]),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
        "SECRET_KEY": "bench",
    }
    child = subprocess.run(
        [sys.executable, __file__, "--measure", "--carts", str(carts)],
        env=env,
        cwd=package_dir,
        capture_output=True,
        text=True,
    )
    if child.returncode:
        sys.exit(f"measuring {label} failed:\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--carts", type=int, default=500)
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.measure:
        print(json.dumps(measure(options.carts)))
        return
    try:
        import saleor  # noqa: F401
    except ImportError:
        print("skipped: Saleor 3.23 is not importable (docs/development.md#the-saleor-suite)")
        return
    with tempfile.TemporaryDirectory() as baseline_dir:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", options.baseline, "saleor_cart_recovery"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", baseline_dir], input=archive, check=True)
        results = {
            f"before ({options.baseline})": run("before", Path(baseline_dir), options.carts),
            "this version": run("now", ROOT, options.carts),
        }
    print(f"cart_recovery_dispatch in-process, {options.carts} due carts (2 lines each), real Saleor 3.23")
    row = "{:<20} | {:>6} | {:>7} | {:>8} | {:>13} | {:>16}"
    print(row.format("version", "emails", "seconds", "emails/s", "queries/email", "SMTP conn./email"))
    print("-" * 86)
    for label, figures in results.items():
        emails, seconds = figures["emails"], figures["seconds"]
        print(
            row.format(
                label,
                emails,
                f"{seconds:.2f}",
                f"{emails / seconds:.1f}",
                f"{figures['queries'] / emails:.1f}",
                f"{figures['connections'] / emails:.3f}",
            )
        )
    before, now = results.values()
    speedup = (now["emails"] / now["seconds"]) / (before["emails"] / before["seconds"])
    print(f"speed-up: {speedup:.1f}x emails/s per process")


if __name__ == "__main__":
    main()
