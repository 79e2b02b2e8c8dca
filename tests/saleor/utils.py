"""Constants, GraphQL documents and helpers shared by the Saleor suite's modules."""

import socket
from contextlib import contextmanager
from datetime import datetime, timedelta

import graphene
from aiosmtpd.controller import Controller
from freezegun import freeze_time
from saleor.graphql.tests.utils import get_graphql_content

# The moment the shopper leaves in time-travel tests, and the units the schedule is written in.
T0 = datetime.fromisoformat("2026-03-02T09:00:00+00:00")
HOUR, DAY, MINUTE = timedelta(hours=1), timedelta(days=1), timedelta(minutes=1)

PLUGIN_PATH = "saleor_cart_recovery.plugin.CartRecoveryPlugin"
STOREFRONT_URL = "https://shop.example.com/cart/{token}"
CONFIGURATION = {
    "schedule": "1h, 1d, 3d",
    "cutoff": "30m",
    "subjects": "1: Forgot something?\n2: Your cart is waiting\n3: Last call for your cart",
    "storefront_url": STOREFRONT_URL,
    "from_email": "Test Shop <shop@example.com>",
    "smtp_url": "",
}
SUBJECTS = {1: "Forgot something?", 2: "Your cart is waiting", 3: "Last call for your cart"}

PLUGIN_UPDATE = """
mutation ($id: ID!, $channelId: ID, $input: PluginUpdateInput!) {
  pluginUpdate(id: $id, channelId: $channelId, input: $input) {
    plugin {
      channelConfigurations {
        active
        channel { slug }
        configuration { name value }
      }
    }
    errors { field message code }
  }
}
"""
CHECKOUT_CREATE = """
mutation ($input: CheckoutCreateInput!) {
  checkoutCreate(input: $input) {
    checkout { id token email }
    errors { field message code }
  }
}
"""
CHECKOUT_LINES_ADD = """
mutation ($id: ID, $lines: [CheckoutLineInput!]!) {
  checkoutLinesAdd(id: $id, lines: $lines) {
    checkout { token quantity }
    errors { field message code }
  }
}
"""
CHECKOUT_LINES_DELETE = """
mutation ($id: ID, $linesIds: [ID!]!) {
  checkoutLinesDelete(id: $id, linesIds: $linesIds) {
    checkout { token quantity }
    errors { field message code }
  }
}
"""
CHECKOUT_EMAIL_UPDATE = """
mutation ($id: ID, $email: String!) {
  checkoutEmailUpdate(id: $id, email: $email) {
    checkout { token email }
    errors { field message code }
  }
}
"""


def gid(instance) -> str:
    return graphene.Node.to_global_id(type(instance).__name__, instance.pk)


def mutate(client, document: str, variables: dict, name: str) -> dict:
    """Post a mutation, fail on GraphQL or mutation errors, return the mutation's payload."""
    payload = get_graphql_content(client.post_graphql(document, variables))["data"][name]
    assert payload["errors"] == [], payload["errors"]
    return payload


def create_checkout(
    client, channel, variant, *, quantity=1, email: str | None = "shopper@example.com"
) -> str:
    """checkoutCreate through the API; returns the checkout token."""
    data = {"channel": channel.slug, "lines": [{"quantity": quantity, "variantId": gid(variant)}]}
    if email is not None:
        data["email"] = email
    return mutate(client, CHECKOUT_CREATE, {"input": data}, "checkoutCreate")["checkout"]["token"]


CHECKOUT_COMPLETE = """
mutation ($id: ID) {
  checkoutComplete(id: $id) {
    order { id number total { gross { amount currency } } }
    errors { field message code }
  }
}
"""


def dispatch_at(run, moment):
    """Run a dispatch cycle (fixture ``run_dispatch``) with the clock frozen at ``moment``."""
    with freeze_time(moment):
        return run()


@contextmanager
def loopback_smtp(handler):
    """An aiosmtpd server on a free loopback port, handing each message to ``handler``; yields
    the port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
