"""Fixtures for the App host's tests: the app server's URLs and shop in this process, Saleor's side on
a loopback server (:mod:`.standin_saleor`), an installation made through ``/api/register``."""

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.test import Client

from saleor_cart_recovery.app import auth
from saleor_cart_recovery.app.jwks import KEYS
from saleor_cart_recovery.app.models import ChannelSettings

from .standin_saleor import StandinSaleor, from_global_id

APP_TOKEN = "app-token-0123456789abcdefghij"  # an app token is 30 characters in Saleor
APP_ID = base64.b64encode(b"App:7").decode()
PERMISSIONS = ["MANAGE_CHECKOUTS", "MANAGE_DISCOUNTS", "MANAGE_ORDERS", "MANAGE_PRODUCTS", "MANAGE_USERS"]


def global_id(kind: str, pk) -> str:
    return base64.b64encode(f"{kind}:{pk}".encode()).decode()


@pytest.fixture
def saleor():
    with StandinSaleor() as standin:
        standin.token, standin.app_id, standin.shop.app_permissions = APP_TOKEN, APP_ID, tuple(PERMISSIONS)
        standin.shop.add_channel("main", "Main", "USD")
        yield standin


@pytest.fixture
def app_client(settings, saleor, db) -> Iterator[Client]:
    """The app server's URLs and shop, talking to the stand-in Saleor; caches start empty. Fails
    the test when this process asked Saleor while a transaction of ours was open (invariant 4)."""
    settings.SALEOR_API_URL = saleor.api_url
    settings.APP_URL = "http://app.test"
    settings.ROOT_URLCONF = "saleor_cart_recovery.app.urls"
    settings.CART_RECOVERY_SHOP = "saleor_cart_recovery.app.shop.AppShop"
    KEYS.clear()
    auth.ANSWERS.clear()
    saleor.watch(connections[DEFAULT_DB_ALIAS])
    yield Client()
    assert saleor.in_transaction == [], "Saleor asked inside a transaction of ours"


def register(client: Client, saleor: StandinSaleor, token: str = APP_TOKEN, api_url: str | None = None):
    """What Saleor's install task posts (``saleor/app/installation_utils.py``)."""
    return client.post(
        "/api/register",
        data=json.dumps({"auth_token": token}),
        content_type="application/json",
        headers={"Saleor-Api-Url": api_url or saleor.api_url, "Saleor-Domain": "127.0.0.1"},
    )


@pytest.fixture
def installed(app_client, saleor) -> Client:
    """Installed by the stand-in Saleor, active in channel ``main`` with the core suite's settings."""
    from .conftest import CONFIGURATION  # conftest imports this module for its fixtures

    assert register(app_client, saleor).status_code == 200
    ChannelSettings.objects.create(channel_slug="main", configuration=CONFIGURATION, active=True)
    return app_client


def deliver(client: Client, saleor: StandinSaleor, event: str, payload: dict | bytes, **headers: str):
    """Saleor's worker delivering ``event`` (lowercase, as in ``Saleor-Event``), signed; ``payload``
    as JSON, or the body as it is."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    path = f"/webhooks/{event.replace('_', '-')}"
    return client.post(
        path,
        data=body,
        content_type="application/json",
        headers=saleor.webhook_headers(event, body, **headers),
    )


def checkout_payload(token: str, email: str, updated_at: datetime, channel: str = "main") -> dict:
    return {
        "checkout": {
            "token": token,
            "email": email,
            "updatedAt": updated_at.isoformat(),
            "languageCode": "EN_US",
            "channel": {"slug": channel},
            "user": None,
        }
    }


def order_payload(
    pk: str,
    checkout_token: str,
    created: datetime,
    email: str = "shopper@example.com",
    total: str = "92.30",
    refunded: str = "0",
    status: str = "UNFULFILLED",
) -> dict:
    return {
        "order": {
            "id": global_id("Order", pk),
            "number": "1001",
            "checkoutId": global_id("Checkout", checkout_token) if checkout_token else None,
            "userEmail": email,
            "status": status,
            "created": created.isoformat(),
            "user": None,
            "channel": {"slug": "main"},
            "total": {"gross": {"amount": float(Decimal(total)), "currency": "USD"}},
            "totalRefunded": {"amount": float(Decimal(refunded))},
        }
    }


def saleor_has(saleor: StandinSaleor, payload: dict) -> dict:
    """Saleor has the order of ``payload`` (an :func:`order_payload`) as the payload says, and answers
    the app with it; returns the stand-in's record, for a test to change as Saleor would."""
    node = payload["order"]
    order = saleor.shop.add_order(
        node["channel"]["slug"],
        node["userEmail"],
        str(node["total"]["gross"]["amount"]),
        checkout_token=from_global_id(node["checkoutId"])[1] if node["checkoutId"] else "",
        created=datetime.fromisoformat(node["created"]),
        status=node["status"],
        refunded=str(node["totalRefunded"]["amount"]),
    )
    order.update(id=node["id"], number=node["number"])
    return order
