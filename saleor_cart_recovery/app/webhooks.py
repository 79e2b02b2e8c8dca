"""The webhooks Saleor sends the app: one definition per webhook — the event, the subscription
query with exactly the fields its handler reads, the handler, the path — and the manifest's
``webhooks`` generated from them (as saleor/apps does), so manifest and handlers cannot drift.

Each handler does what the plugin's hook does, with the same core functions, on the payload alone
(no call back to Saleor): one upsert or one or two UPDATEs. All are idempotent under Saleor's retries
and out-of-order delivery: a checkout's activity time is its ``updatedAt`` (the upsert ignores an
older one), an order's refunds are absolute values, erasure of an erased address changes nothing.
"""

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from ..series.activity import record_activity, record_order, record_refund
from ..series.retention import erase_address
from ..shop import OrderRef, get_shop, usable_settings
from . import installation
from .queries import ORDER_FIELDS
from .saleor_api import read_order

logger = logging.getLogger(__name__)


class PayloadInvalid(ValueError):
    """The body is not the payload this webhook's subscription asks for (400: Saleor will not fix
    it by retrying, and nothing was changed)."""


@dataclass(frozen=True)
class Webhook:
    """``event_type`` is the subscription's event type (``CheckoutUpdated``); ``fields`` what the
    handler reads of it; the handler gets the event's payload (the ``event`` object)."""

    event_type: str
    fields: str
    handler: Callable[[Mapping[str, Any]], None]
    fragments: str = ""  # the fragments ``fields`` spreads

    @property
    def event(self) -> str:
        """Saleor's ``WebhookEventTypeAsyncEnum`` name: ``CheckoutUpdated`` → ``CHECKOUT_UPDATED``."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.event_type).upper()

    @property
    def path(self) -> str:
        return f"webhooks/{self.event.lower().replace('_', '-')}"

    @property
    def query(self) -> str:
        return f"subscription {{ event {{ ... on {self.event_type} {{ {self.fields} }} }} }}{self.fragments}"

    def manifest_entry(self, app_url: str) -> dict[str, Any]:
        return {
            "name": f"Cart Recovery: {self.event.lower().replace('_', ' ')}",
            "identifier": f"cart-recovery-{self.event.lower().replace('_', '-')}",
            "asyncEvents": [self.event],
            "query": self.query,
            "targetUrl": f"{app_url}/{self.path}",
            "isActive": True,
        }


def _when(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise PayloadInvalid(_("not a date and time: %(value)s") % {"value": repr(value)}) from None
    if parsed.tzinfo is None:
        raise PayloadInvalid(_("a date and time without a zone: %(value)s") % {"value": repr(value)})
    return parsed


def _object(payload: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    found = payload.get(name)
    if found is not None and not isinstance(found, Mapping):
        raise PayloadInvalid(_("%(name)s is not an object") % {"name": name})
    return found


CHECKOUT_FIELDS = "checkout { token email updatedAt languageCode channel { slug } user { email } }"


def on_checkout(payload: Mapping[str, Any]) -> None:
    """The plugin's ``checkout_created`` / ``checkout_updated``: one upsert, timed by the checkout's
    ``updatedAt`` so a late delivery of an older state is ignored by the upsert."""
    checkout = _object(payload, "checkout")
    if checkout is None:  # deleted before Saleor built the payload: nothing to record
        return
    try:
        token, channel_slug = str(checkout["token"]), str(checkout["channel"]["slug"])
        email = checkout.get("email") or (checkout.get("user") or {}).get("email") or ""
        at = _when(checkout["updatedAt"])
    except (KeyError, TypeError):
        raise PayloadInvalid(_("checkout lacks token, channel or updatedAt")) from None
    if not email:
        return
    settings = usable_settings(channel_slug, get_shop())[0]
    if settings is None:  # inactive, uninstalled or misconfigured: nothing recorded, as in the plugin
        return
    language = str(checkout.get("languageCode") or "EN").lower().replace("_", "-")
    record_activity(
        checkout_token=token,
        channel_slug=channel_slug,
        email=email,
        language_code=language,
        at=at,
        settings=settings,
    )


def _order(payload: Mapping[str, Any]) -> tuple[OrderRef, str] | None:
    """The payload's order and its channel's slug (read as the API's answers are)."""
    node = _object(payload, "order")
    if node is None:
        return None
    try:
        order, channel_slug, _addresses = read_order(node)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        raise PayloadInvalid(_("order lacks id, number, total, created or channel")) from None
    return order, channel_slug


def on_order_created(payload: Mapping[str, Any]) -> None:
    """The plugin's ``order_created``: stop the series of the order's checkout (or the buyer's
    recent carts), while Cart Recovery is active in the channel; a repeat changes nothing."""
    found = _order(payload)
    if found is None:
        return
    order, channel_slug = found
    if usable_settings(channel_slug, get_shop())[0] is None:
        return
    record_order(order, channel_slug=channel_slug, at=timezone.now())


def on_order_changed(payload: Mapping[str, Any]) -> None:
    """The plugin's ``order_cancelled`` / ``order_refunded`` / ``order_fully_refunded``: the order's
    refunds and cancellation as they are now, copied onto the carts it converted."""
    found = _order(payload)
    if found is not None:
        record_refund(found[0], at=timezone.now())


def on_customer_deleted(payload: Mapping[str, Any]) -> None:
    """What the plugin host does on a user row's deletion: erase the address's carts and messages
    (suppression stays, as a keyed hash). Owed whether or not any channel is active."""
    user = _object(payload, "user")
    email = (user or {}).get("email") or ""
    if not isinstance(email, str):
        raise PayloadInvalid(_("user.email is not a string"))
    if email:
        erase_address(email)


def on_app_deleted(payload: Mapping[str, Any]) -> None:
    """Saleor deleted the app: all sending stops until it is installed again. Only the app this
    deployment registered counts (an older installation's late webhook does not)."""
    app = _object(payload, "app")
    found = installation.stored()
    if found is not None and app is not None and app.get("id") == found.app_id:
        installation.uninstall(installation.DELETED)


def on_app_status_changed(payload: Mapping[str, Any]) -> None:
    """Saleor (de)activated the app: a deactivated app gets no webhooks and its token is refused, so
    sending stops; activated again, it resumes with the token it has (Saleor sends no new one)."""
    app = _object(payload, "app")
    if app is None or not isinstance(app.get("isActive"), bool):
        raise PayloadInvalid(_("app.isActive is missing"))
    installation.status_changed(str(app.get("id")), app["isActive"], _when(payload.get("issuedAt")))


ORDER = "order { ...OrderFields }"
WEBHOOKS = (
    Webhook("CheckoutCreated", CHECKOUT_FIELDS, on_checkout),
    Webhook("CheckoutUpdated", CHECKOUT_FIELDS, on_checkout),
    Webhook("OrderCreated", ORDER, on_order_created, ORDER_FIELDS),
    Webhook("OrderCancelled", ORDER, on_order_changed, ORDER_FIELDS),
    Webhook("OrderRefunded", ORDER, on_order_changed, ORDER_FIELDS),
    Webhook("OrderFullyRefunded", ORDER, on_order_changed, ORDER_FIELDS),
    Webhook("CustomerDeleted", "user { email }", on_customer_deleted),
    Webhook("AppDeleted", "app { id }", on_app_deleted),
    Webhook("AppStatusChanged", "issuedAt app { id isActive }", on_app_status_changed),
)
BY_PATH = {webhook.path: webhook for webhook in WEBHOOKS}
