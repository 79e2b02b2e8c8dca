"""Fixtures of our own, on top of Saleor's (loaded from conftest.py only when Saleor is here)."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, connections
from freezegun import freeze_time
from saleor.checkout import calculations
from saleor.checkout.fetch import fetch_checkout_info, fetch_checkout_lines
from saleor.checkout.models import Checkout
from saleor.checkout.payment_utils import update_checkout_payment_statuses
from saleor.graphql.tests.utils import get_graphql_content
from saleor.order.models import Order
from saleor.plugins.manager import get_plugins_manager
from saleor.plugins.models import PluginConfiguration

from saleor_cart_recovery.saleor_host.shop import PLUGIN_ID
from saleor_cart_recovery.series.delivery import deliver_batch
from saleor_cart_recovery.series.dispatch import dispatch

from . import live_saleor
from .utils import (
    CHECKOUT_COMPLETE,
    CHECKOUT_LINES_ADD,
    CONFIGURATION,
    PLUGIN_PATH,
    PLUGIN_UPDATE,
    T0,
    create_checkout,
    gid,
    mutate,
)


@pytest.fixture(scope="session", autouse=True)
def live_saleor_template(django_db_setup, django_db_blocker):
    """The template the live-Saleor tests copy Saleor's database from: this session's own migrated
    test database, copied once at the start (while nothing holds it), so a run on each Saleor
    version copies that version's schema and never waits for its own open connection."""
    if live_saleor.TEMPLATE_DB:
        return
    with django_db_blocker.unblock():
        test_database = connection.settings_dict["NAME"]
        connections.close_all()
        template = f"{test_database}_template"
        live_saleor.copy_database(template, template=test_database)
    live_saleor.TEMPLATE_DB = template


@pytest.fixture
def enable_cart_recovery(settings, channel_USD):
    """Save the plugin's configuration for channel "main" the way the Dashboard does."""
    settings.PLUGINS = [PLUGIN_PATH]

    def enable(active=True, **values):
        configuration = [
            {"name": name, "value": value} for name, value in {**CONFIGURATION, **values}.items()
        ]
        manager = get_plugins_manager(allow_replica=False)
        manager.save_plugin_configuration(
            PLUGIN_ID, channel_USD.slug, {"active": active, "configuration": configuration}
        )
        return PluginConfiguration.objects.get(identifier=PLUGIN_ID, channel=channel_USD)

    return enable


@pytest.fixture
def cart_recovery(enable_cart_recovery):
    """The plugin, active in channel "main" with the standard test configuration."""
    return enable_cart_recovery()


@pytest.fixture
def update_plugin(staff_api_client, permission_manage_plugins, channel_USD, settings):
    """Saleor's `pluginUpdate` for channel "main" by staff with MANAGE_PLUGINS, as the Dashboard
    calls it; returns the mutation's payload."""
    settings.PLUGINS = [PLUGIN_PATH]
    staff_api_client.user.user_permissions.add(permission_manage_plugins)

    def update(values: dict, active: bool = True) -> dict:
        variables = {
            "id": PLUGIN_ID,
            "channelId": gid(channel_USD),
            "input": {
                "active": active,
                "configuration": [{"name": k, "value": v} for k, v in values.items()],
            },
        }
        response = staff_api_client.post_graphql(PLUGIN_UPDATE, variables)
        return get_graphql_content(response)["data"]["pluginUpdate"]

    return update


@pytest.fixture
def stocked_variant(product):
    """Saleor's "Test product" variant: 10.00 USD in channel "main", 10 in stock."""
    return product.variants.get()


@pytest.fixture
def run_dispatch(django_capture_on_commit_callbacks):
    """One dispatch cycle that sends in this process, as the Celery task would after commit."""

    def run():
        with django_capture_on_commit_callbacks(execute=True):
            return dispatch(send=deliver_batch)

    return run


@pytest.fixture
def run_dispatch_command(django_capture_on_commit_callbacks):
    """The `cart_recovery_dispatch` management command; returns what it printed."""

    def run():
        out = StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            call_command("cart_recovery_dispatch", stdout=out)
        return out.getvalue()

    return run


@pytest.fixture
def complete_checkout(api_client, address, checkout_delivery, transaction_item_generator):
    """Place the order for real: address, delivery, a fully charged transaction, checkoutComplete."""

    def complete(token) -> Order:
        checkout = Checkout.objects.get(token=token)
        checkout.shipping_address = address.get_copy()
        checkout.billing_address = address.get_copy()
        checkout.assigned_delivery = checkout_delivery(checkout)
        checkout.save()
        manager = get_plugins_manager(allow_replica=False)
        lines, _ = fetch_checkout_lines(checkout)
        checkout_info = fetch_checkout_info(checkout, lines, manager)
        total = calculations.calculate_checkout_total_with_gift_cards(manager, checkout_info, lines)
        transaction_item_generator(checkout_id=checkout.pk, charged_value=total.gross.amount)
        update_checkout_payment_statuses(
            checkout=checkout_info.checkout, checkout_total_gross=total.gross, checkout_has_lines=bool(lines)
        )
        payload = mutate(api_client, CHECKOUT_COMPLETE, {"id": gid(checkout)}, "checkoutComplete")
        order = Order.objects.get(checkout_token=str(token))
        assert payload["order"]["id"] == gid(order)
        return order

    return complete


@pytest.fixture
def abandoned_cart(api_client, cart_recovery, channel_USD, stocked_variant, product_with_two_variants):
    """A checkout left at T0, built through the API: 3 × Test product and 2 × a second product.

    Returns its token; the plugin is active in channel "main".
    """
    with freeze_time(T0):
        token = create_checkout(api_client, channel_USD, stocked_variant, quantity=3)
        other = product_with_two_variants.variants.order_by("pk").first()
        checkout = Checkout.objects.get(token=token)
        variables = {"id": gid(checkout), "lines": [{"quantity": 2, "variantId": gid(other)}]}
        mutate(api_client, CHECKOUT_LINES_ADD, variables, "checkoutLinesAdd")
    return token
