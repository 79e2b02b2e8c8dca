"""``bench_send.py``'s work inside Saleor's process (Saleor's test settings, ``DATABASE_URL`` a scratch
copy of the migrated template): the carts both hosts are measured on, and the plugin's measurement.

    python tests/saleor/bench_saleor.py plugin --carts N [--profile FILE]   # the figures (JSON)
    python tests/saleor/bench_saleor.py app-shop --carts N                  # the App's facts (JSON)

run by ``bench_send.py`` with this repository and Saleor's source on ``PYTHONPATH`` (the package
measured first).

The carts: ``N`` checkouts of two lines each in channel ``bench``, made the way a storefront leaves
them — priced at the shopper's last visit (flat-rate taxes), then left two hours ago, Saleor's
stored prices expired an hour later (its TTL). ``plugin`` records them through the plugin's checkout
hook, makes their first step due and times one dispatch; ``app-shop`` adds what Saleor's API needs
to answer and an app token, and prints what the App's webhooks would carry for each checkout.
"""

import argparse
import json
import os
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

CHANNEL = "bench"
SHOP_NAME = "Bench Shop"
SETTINGS = {
    "schedule": "1h, 1d, 3d",
    "cutoff": "30m",
    "subjects": "1: Forgot something?\n2: Your cart is waiting\n3: Still yours",
    "storefront_url": "https://shop.example.com/cart/{token}",
    "from_email": f"{SHOP_NAME} <shop@example.com>",
}
PRICE = Decimal("19.90")
# The shopper left this long ago; Saleor's stored prices expired an hour later (its TTL); the first
# step (the schedule's 1h) has been due for an hour.
LEFT, PRICES_EXPIRED, FIRST_STEP = timedelta(hours=2), timedelta(hours=1), timedelta(hours=1)


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saleor.tests.settings")
    import django

    django.setup()
    import saleor.graphql.api  # noqa: F401  (Saleor's schema, loaded in its own order as at start-up)


def make_channel():
    """Channel ``bench`` (flat-rate taxes, prices entered with tax) selling two shirts at 19.90:
    ``(channel, variants)``."""
    from django.utils import timezone
    from saleor.channel.models import Channel
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
            product=product,
            channel=channel,
            is_published=True,
            visible_in_listings=True,
            available_for_purchase_at=timezone.now() - LEFT * 2,
            currency="USD",
        )
        variant = ProductVariant.objects.create(product=product, sku=f"SHIRT-{n}", name="M")
        ProductVariantChannelListing.objects.create(
            variant=variant,
            channel=channel,
            price_amount=PRICE,
            discounted_price_amount=PRICE,
            currency="USD",
        )
        variants.append(variant)
    return channel, variants


def add_checkouts(channel, variants, carts: int, recorded: Callable[[Any], object]) -> list[Any]:
    """``carts`` checkouts of both variants (1 and 2 pieces), each priced for the shopper and then
    passed to ``recorded`` (the plugin's hook, or nothing); then left ``LEFT`` ago, their stored
    prices expired ``PRICES_EXPIRED`` later. The checkouts, as stored now."""
    from django.utils import timezone
    from saleor.checkout import calculations
    from saleor.checkout.fetch import fetch_checkout_info, fetch_checkout_lines
    from saleor.checkout.models import Checkout, CheckoutLine
    from saleor.plugins.manager import get_plugins_manager

    manager = get_plugins_manager(allow_replica=False)
    for n in range(carts):
        checkout = Checkout.objects.create(channel=channel, currency="USD", email=f"shopper{n}@example.com")
        for quantity, variant in enumerate(variants, start=1):
            CheckoutLine.objects.create(
                checkout=checkout,
                variant=variant,
                quantity=quantity,
                currency="USD",
                undiscounted_unit_price_amount=PRICE,
            )
        lines, _ = fetch_checkout_lines(checkout)
        calculations.calculate_checkout_total(
            manager=manager, checkout_info=fetch_checkout_info(checkout, lines, manager), lines=lines
        )  # the storefront showed the shopper the priced cart
        recorded(checkout)
    now = timezone.now()
    stored = Checkout.objects.filter(channel=channel)
    stored.update(last_change=now - LEFT, price_expiration=now - LEFT + PRICES_EXPIRED)
    return list(stored.order_by("created_at"))


def measure_plugin(carts: int, profile: Path | None) -> dict:
    """The plugin active in the channel, sending to a loopback SMTP server; the carts recorded by
    its checkout hook, their first step made due; one timed dispatch."""
    from django.conf import settings
    from django.contrib.sites.models import Site
    from django.db import connections
    from django.utils import timezone
    from saleor.plugins.manager import get_plugins_manager

    from tests.saleor.bench_dispatch import mail_server, timed_dispatch

    settings.PLUGINS = ["saleor_cart_recovery.plugin.CartRecoveryPlugin"]
    Site.objects.update(domain="shop.example.com", name=SHOP_NAME)
    port, inbox = mail_server()
    channel, variants = make_channel()
    configuration = {**SETTINGS, "smtp_url": f"smtp://127.0.0.1:{port}"}
    get_plugins_manager(allow_replica=False).save_plugin_configuration(
        "saleor_cart_recovery",
        CHANNEL,
        {"active": True, "configuration": [{"name": n, "value": v} for n, v in configuration.items()]},
    )
    add_checkouts(channel, variants, carts, get_plugins_manager(allow_replica=False).checkout_updated)
    now = timezone.now()
    with connections["default"].cursor() as cursor:  # the hook recorded the activity as now
        cursor.execute(
            "UPDATE cart_recovery_cart SET last_activity_at = %s, next_due_at = %s",
            [now - LEFT, now - LEFT + FIRST_STEP],
        )
    return timed_dispatch(carts, inbox, profile)


def app_shop(carts: int) -> dict:
    """Saleor's side of the App's measurement: the same channel and carts, the site settings its API
    needs and an app token with the App's permissions. What the App needs to know: the app's ID and
    token, and each checkout as its checkout webhook's payload carries it."""
    from tests.saleor.live_saleor import create_app_token, prepare_site

    prepare_site(SHOP_NAME)
    channel, variants = make_channel()
    checkouts = add_checkouts(channel, variants, carts, lambda checkout: None)
    app_id, token = create_app_token("Cart Recovery")
    return {
        "app_id": app_id,
        "token": token,
        "checkouts": [
            {
                "token": str(checkout.token),
                "email": checkout.email,
                "updatedAt": checkout.last_change.isoformat(),
                "languageCode": "EN_US",
                "channel": {"slug": CHANNEL},
                "user": None,
            }
            for checkout in checkouts
        ],
    }


def package() -> str:
    """Where this process imported the measured package from (``bench_send.py`` checks it)."""
    import saleor_cart_recovery

    return str(Path(saleor_cart_recovery.__file__).parent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("plugin", "app-shop"))
    parser.add_argument("--carts", type=int, required=True)
    parser.add_argument("--profile", type=Path)
    options = parser.parse_args()
    setup_django()
    if options.what == "plugin":
        result = measure_plugin(options.carts, options.profile)
    else:
        result = app_shop(options.carts)
    print(json.dumps({**result, "package": package()}))


if __name__ == "__main__":
    main()
