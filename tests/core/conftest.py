from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest

from saleor_cart_recovery.series.activity import record_activity
from saleor_cart_recovery.settings.channel import RecoverySettings
from tests.shopapp.models import ShopChannel, ShopCheckout, ShopLine

from .app_host import app_client, installed, saleor  # noqa: F401  (fixtures)
from .realparts import SUMMARY_SECTIONS, celery_for_real, inbox, smtp_server, worker  # noqa: F401  (fixtures)


def pytest_terminal_summary(terminalreporter):
    """The real-parts scenarios' figures, printed whether or not output is captured."""
    for title, lines in SUMMARY_SECTIONS.items():
        if lines:
            terminalreporter.section(title)
            for line in lines:
                terminalreporter.write_line(line)


START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

CONFIGURATION = [
    {"name": "schedule", "value": "1h, 1d, 3d"},
    {"name": "cutoff", "value": "30m"},
    {
        "name": "subjects",
        "value": "1: Forgot something?\n2: Still thinking?\n3: Last call\n1 [tr]: Bir şey mi unuttunuz?",
    },
    {"name": "storefront_url", "value": "https://shop.example.com/cart/{token}"},
    {"name": "from_email", "value": "Shop <shop@example.com>"},
    {"name": "smtp_url", "value": ""},
]


def with_smtp(port: int, configuration=CONFIGURATION) -> list[dict]:
    """``configuration`` sending through the SMTP server on loopback ``port``."""
    smtp = {"name": "smtp_url", "value": f"smtp://127.0.0.1:{port}"}
    return [item for item in configuration if item["name"] != "smtp_url"] + [smtp]


@pytest.fixture
def channel(db):
    return ShopChannel.objects.create(slug="main", configuration=CONFIGURATION)


@pytest.fixture
def recovery_settings(channel):
    return RecoverySettings.from_plugin_configuration(channel.configuration)


def make_checkout(channel, *, email="shopper@example.com", language="en", lines=2):
    checkout = ShopCheckout.objects.create(
        token=str(uuid4()), channel=channel, email=email, language_code=language, currency="USD"
    )
    catalog = [("Blue Hoodie", "XL", 2, "39.90"), ("Canvas Tote", "", 1, "12.50"), ("Socks", "M", 3, "5.00")]
    for index, (product, variant, quantity, price) in enumerate(catalog[:lines]):
        ShopLine.objects.create(
            checkout=checkout,
            variant_id=str(index + 1),
            product_name=product,
            variant_name=variant or product,
            quantity=quantity,
            unit_price=Decimal(price),
            image_url=f"https://cdn.example.com/{index + 1}.png",
        )
    return checkout


def touch(checkout, at, settings):
    """What the plugin's checkout hooks do."""
    record_activity(
        checkout_token=checkout.token,
        channel_slug=checkout.channel.slug,
        email=checkout.email,
        language_code=checkout.language_code,
        at=at,
        settings=settings,
    )


@pytest.fixture
def abandoned_cart(channel, recovery_settings):
    checkout = make_checkout(channel)
    touch(checkout, START, recovery_settings)
    return checkout
