"""The webhooks Saleor sends the app: one definition per webhook — the event, the subscription
query with exactly the fields its handler reads, the handler, the path — and the manifest's
``webhooks`` generated from them (as saleor/apps does), so manifest and handlers cannot drift.

Each handler does what the plugin's hook does, with the same core functions, on the payload: one
upsert or one or two UPDATEs. The destructive events and the order events are first confirmed
with Saleor (``confirm``, one request, outside any transaction of ours): Saleor signs every app's
webhooks with one key and does not sign ``Saleor-Event``, so another app of the same Saleor could
post a body of their shape here (docs/app.md, "Webhooks"); an order event applies the order as
Saleor has it, not as posted, once Saleor's answer is not behind the body (503 until then). All
are idempotent under Saleor's retries and out-of-order delivery: a checkout's activity time is its
``updatedAt`` (the upsert ignores an older one; one more than :data:`AHEAD` ahead of our clock
counts as that far ahead, so a forged one cannot hold off real updates for long), an order's
refunds are absolute values, erasure of an erased address changes nothing.
Every field a handler reads is checked before anything is written — its type, its length, an
amount's range —: a payload that is not what the subscription asks for is refused (400).
"""

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.utils import timezone
from django.utils.translation import gettext as _

from ..exceptions import CartRecoveryError
from ..series.activity import record_activity, record_order, record_refund
from ..series.retention import erase_address
from ..shop import OrderRef, get_shop, usable_settings
from . import installation
from .client import AppTokenRevoked, SaleorQueryError
from .queries import ORDER_BY_ID, ORDER_FIELDS
from .saleor_api import database_id, global_id, read_order

logger = logging.getLogger(__name__)


class Unconfirmed(CartRecoveryError):
    """Saleor could not confirm an event now (it refused our token, or answered with an error):
    nothing changes, and the answer is 503 so that Saleor retries."""


class SaleorBehind(Unconfirmed):
    """Saleor's answer is older than the posted body: Saleor answers queries from its read replica,
    which may lag behind the write that sent the event. Nothing changes and the answer is 503, so
    that Saleor retries (it retries only what it sent: a forged body gains nothing from a 503)."""


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
    # Asks Saleor before the handler's transaction: the payload to apply as Saleor confirms it, or
    # ``None`` (nothing to do). Raises :class:`Unconfirmed` or ``SaleorUnavailable`` (503: retried).
    confirm: Callable[[Mapping[str, Any]], Mapping[str, Any] | None] | None = None

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


# Bounds of what Saleor sends (and the core's columns hold): anything past them is not Saleor's.
EMAIL_LENGTH = 254
SLUG_LENGTH = 255
ID_LENGTH = 255  # a global ID, base64 of "Type:key"
ORDER_KEY_LENGTH = 64
MAX_AMOUNT = Decimal(10) ** 12
AHEAD = timedelta(minutes=5)  # how far a checkout's time may be ahead of the app's clock
LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:_[A-Za-z0-9]{2,8})*")  # LanguageCodeEnum: EN, PT_BR, ZH_HANS_CN
CURRENCY = re.compile(r"[A-Z]{3}")


def _at(payload: Mapping[str, Any], path: str) -> Any:
    """The value at the dotted ``path`` (``checkout.channel.slug``), ``None`` past a ``null``
    object (Saleor sends ``null`` for a deleted or absent one); anything else on the way: 400."""
    node: Any = payload
    names = path.split(".")
    for depth, name in enumerate(names):
        if node is None:
            return None
        if not isinstance(node, Mapping):
            raise PayloadInvalid(f"{'.'.join(names[:depth])} is not an object")
        node = node.get(name)
    return node


def _object(payload: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    found = _at(payload, path)
    if found is not None and not isinstance(found, Mapping):
        raise PayloadInvalid(f"{path} is not an object")
    return found


def _text(
    payload: Mapping[str, Any],
    path: str,
    max_length: int,
    *,
    required: bool = True,
    pattern: re.Pattern | None = None,
) -> str:
    """A string ("" when optional and absent); too long, unencodable or off ``pattern``: 400."""
    value = _at(payload, path)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise PayloadInvalid(f"{path} is not a non-empty string")
    if len(value) > max_length:
        raise PayloadInvalid(f"{path} is longer than {max_length} characters")
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape: no text column holds it
        raise PayloadInvalid(f"{path} is not valid Unicode") from None
    if pattern is not None and not pattern.fullmatch(value):
        raise PayloadInvalid(f"{path} is not what Saleor sends: {value!r:.80}")
    return value


def _when(payload: Mapping[str, Any], path: str) -> datetime:
    """A date and time with its zone, as Saleor's ``DateTime`` serializes."""
    value = _text(payload, path, 64)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PayloadInvalid(f"{path} is not a date and time: {value!r:.80}") from None
    if parsed.tzinfo is None:
        raise PayloadInvalid(f"{path} is a date and time without a zone: {value!r}")
    return parsed


def _amount(payload: Mapping[str, Any], path: str, *, required: bool = True) -> None:
    """An amount Saleor sends as a JSON number (a ``Decimal`` in its answer to a query, as the client
    reads numbers): finite, not negative, not absurd."""
    value = _at(payload, path)
    if value is None and not required:
        return
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise PayloadInvalid(f"{path} is not a number")
    if not 0 <= value <= MAX_AMOUNT:  # NaN and the infinities fail too
        raise PayloadInvalid(f"{path} is out of range: {value!r:.80}")


CHECKOUT_FIELDS = "checkout { token email updatedAt languageCode channel { slug } user { email } }"


def on_checkout(payload: Mapping[str, Any]) -> None:
    """The plugin's ``checkout_created`` / ``checkout_updated``: one upsert, timed by the checkout's
    ``updatedAt`` so a late delivery of an older state is ignored by the upsert."""
    if _object(payload, "checkout") is None:  # deleted before Saleor built the payload
        return
    token = _text(payload, "checkout.token", 36)
    try:
        token = str(UUID(token))
    except ValueError:
        raise PayloadInvalid("checkout.token is not a checkout token") from None
    channel_slug = _text(payload, "checkout.channel.slug", SLUG_LENGTH)
    # A time far ahead of ours (a forged body, a clock far off) is taken as AHEAD from now: a later
    # update must not look older than it for long. Within AHEAD, Saleor's own order is kept.
    at = min(_when(payload, "checkout.updatedAt"), timezone.now() + AHEAD)
    email = _text(payload, "checkout.email", EMAIL_LENGTH, required=False) or _text(
        payload, "checkout.user.email", EMAIL_LENGTH, required=False
    )
    language = _text(payload, "checkout.languageCode", 35, required=False, pattern=LANGUAGE) or "EN"
    if not email:
        return
    settings = usable_settings(channel_slug, get_shop())[0]
    if settings is None:  # inactive, uninstalled or misconfigured: nothing recorded, as in the plugin
        return
    record_activity(
        checkout_token=token,
        channel_slug=channel_slug,
        email=email,
        language_code=language.lower().replace("_", "-"),
        at=at,
        settings=settings,
    )


def _order(payload: Mapping[str, Any]) -> tuple[OrderRef, str] | None:
    """The payload's order and its channel's slug: each field checked, then read as the API's
    answers are."""
    node = _object(payload, "order")
    if node is None:
        return None
    order_id = _text(payload, "order.id", ID_LENGTH)
    try:  # Saleor's form of an order's ID: "Order:" and its UUID, in base64
        ours = global_id("Order", str(UUID(database_id(order_id)))) == order_id
    except ValueError:
        ours = False
    if not ours:
        raise PayloadInvalid("order.id is not an order's")
    _text(payload, "order.number", ORDER_KEY_LENGTH)
    _text(payload, "order.checkoutId", ID_LENGTH, required=False)
    _text(payload, "order.userEmail", EMAIL_LENGTH, required=False)
    _text(payload, "order.status", 32, required=False)
    _when(payload, "order.created")
    _text(payload, "order.user.email", EMAIL_LENGTH, required=False)
    _text(payload, "order.channel.slug", SLUG_LENGTH)
    _amount(payload, "order.total.gross.amount")
    _text(payload, "order.total.gross.currency", 3, pattern=CURRENCY)
    _amount(payload, "order.totalRefunded.amount", required=False)
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
    """What the plugin host does on a user row's deletion (:mod:`..saleor_host.erasure`), for both of
    Saleor's events: ``CUSTOMER_DELETED`` (staff deleted the customer) and ``ACCOUNT_DELETED`` (the
    customer deleted their own account, ``accountDelete``). Erase the address's carts and messages
    (suppression stays, as a keyed hash). Owed whether or not any channel is active."""
    _object(payload, "user")
    email = _text(payload, "user.email", EMAIL_LENGTH, required=False)
    if email:
        erase_address(email)


def on_app_deleted(payload: Mapping[str, Any]) -> None:
    """Saleor deleted the app: all sending stops until it is installed again. Only the app this
    deployment registered counts (an older installation's late webhook does not)."""
    _object(payload, "app")
    app_id = _text(payload, "app.id", ID_LENGTH, required=False)
    if app_id:
        installation.delete(app_id)


def on_app_status_changed(payload: Mapping[str, Any]) -> None:
    """Saleor (de)activated the app: a deactivated app gets no webhooks and its token is refused, so
    sending stops; activated again, it resumes with the token it has (Saleor sends no new one)."""
    installation.status_changed(*_status(payload))


def _status(payload: Mapping[str, Any]) -> tuple[str, bool, datetime]:
    active = _at(payload, "app.isActive")
    if not isinstance(active, bool):
        raise PayloadInvalid("app.isActive is not a boolean")
    return _text(payload, "app.id", ID_LENGTH), active, _when(payload, "issuedAt")


APP_STATE = "query CartRecoveryAppState { app { id isActive } }"
USER_EXISTS = "query CartRecoveryUserExists($email: String!) { user(email: $email) { id } }"


def _ask(holder: installation.Installed, document: str, variables: Mapping[str, Any] | None = None):
    """Saleor's ``data`` for ``document`` asked with the registration's token; ``None`` when Saleor
    refuses the token. ``SaleorUnavailable`` propagates."""
    try:
        return holder.client.execute(document, variables)
    except AppTokenRevoked:
        return None
    except SaleorQueryError as exc:
        raise Unconfirmed(_("Saleor could not confirm the event: %(problem)s") % {"problem": exc}) from None


def _ask_registered(document: str, variables: Mapping[str, Any]) -> dict[str, Any]:
    """Saleor's ``data`` for ``document`` asked with the registration's token; :class:`Unconfirmed`
    when there is none or Saleor refuses it (then nothing can be confirmed: Saleor retries)."""
    holder = installation.registered()
    data = _ask(holder, document, variables) if holder is not None else None
    if data is None:
        raise Unconfirmed(_("Saleor could not confirm the event: the app's token is not accepted"))
    return data


def _ours(app_id: str) -> installation.Installed | None:
    holder = installation.registered()
    return holder if holder is not None and holder.app_id == app_id else None


def confirm_app_deleted(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Deleted only once Saleor refuses the registration's token (a deleted app's token goes with it)."""
    _object(payload, "app")
    holder = _ours(_text(payload, "app.id", ID_LENGTH, required=False))
    if holder is None:
        return None
    if _ask(holder, APP_STATE) is not None:
        logger.info("cart recovery app: ignored an APP_DELETED while Saleor still accepts the app's token")
        return None
    return payload


def confirm_app_status_changed(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The status Saleor reports now, not the payload's (a deactivated app's token is refused, so an
    app Saleor answers for is active), when it is not the installation's already; timed now, when
    Saleor said it."""
    holder = _ours(_status(payload)[0])
    if holder is None:
        return None
    app = (_ask(holder, APP_STATE) or {}).get("app")
    active = bool(app and app.get("id") == holder.app_id and app.get("isActive") is True)
    if active == (installation.current() is not None):
        logger.info("cart recovery app: an APP_STATUS_CHANGED changes nothing Saleor reports")
        return None
    return {"issuedAt": timezone.now().isoformat(), "app": {"id": holder.app_id, "isActive": active}}


def confirm_customer_deleted(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Erased only once Saleor knows no user of that address (``user(email:)``, MANAGE_USERS). While
    it still shows one, :class:`SaleorBehind` (503): its read replica may not have the deletion yet,
    and Saleor retries the event (a forged one is never retried)."""
    _object(payload, "user")
    email = _text(payload, "user.email", EMAIL_LENGTH, required=False)
    if not email:
        return None
    if _ask_registered(USER_EXISTS, {"email": email}).get("user") is not None:
        raise SaleorBehind(
            _(
                "Saleor's API still shows an account with this address (it may lag behind the event): "
                "nothing erased; Saleor will retry the event"
            )
        )
    return payload


def confirm_order(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The order as Saleor has it now (one ``orders`` request by the payload's ID, ``MANAGE_ORDERS``):
    its total, refunds, status, channel, checkout and addresses are Saleor's, not the poster's, when
    Saleor's answer is as new as the payload or newer. The payload is checked first (400 without
    asking). An answer behind it — no such order, less refunded, not cancelled where the payload is —
    raises :class:`SaleorBehind` (503)."""
    found = _order(payload)
    if found is None:
        return None
    posted = found[0]
    data = _ask_registered(ORDER_BY_ID, {"id": _at(payload, "order.id")})
    edges = (data.get("orders") or {}).get("edges") or ()
    confirmed = {"order": edges[0].get("node") if edges else None}
    answer = _order(confirmed)
    if answer is None:
        raise SaleorBehind(
            _(
                "Saleor's API does not show order %(number)s yet (it may lag behind the event): nothing "
                "changed; Saleor will retry the event"
            )
            % {"number": posted.number}
        )
    order = answer[0]
    if order.refunded < posted.refunded:
        raise SaleorBehind(
            _(
                "Saleor's API shows %(saleor)s %(currency)s refunded for order %(number)s, less than "
                "the event's %(posted)s (it may lag behind the event): nothing changed; Saleor will "
                "retry the event"
            )
            % {
                "saleor": order.refunded,
                "currency": order.currency,
                "posted": posted.refunded,
                "number": posted.number,
            }
        )
    if posted.cancelled and not order.cancelled:
        raise SaleorBehind(
            _(
                "Saleor's API does not show order %(number)s as cancelled yet, as the event does (it "
                "may lag behind the event): nothing changed; Saleor will retry the event"
            )
            % {"number": posted.number}
        )
    logger.info(
        "cart recovery app: order %s applied as Saleor has it, %s",
        order.number,
        "as the event says" if order == posted else "which is ahead of the event or differs from it",
    )
    return confirmed


ORDER = "order { ...OrderFields }"
WEBHOOKS = (
    Webhook("CheckoutCreated", CHECKOUT_FIELDS, on_checkout),
    Webhook("CheckoutUpdated", CHECKOUT_FIELDS, on_checkout),
    Webhook("OrderCreated", ORDER, on_order_created, ORDER_FIELDS, confirm_order),
    Webhook("OrderCancelled", ORDER, on_order_changed, ORDER_FIELDS, confirm_order),
    Webhook("OrderRefunded", ORDER, on_order_changed, ORDER_FIELDS, confirm_order),
    Webhook("OrderFullyRefunded", ORDER, on_order_changed, ORDER_FIELDS, confirm_order),
    Webhook("CustomerDeleted", "user { email }", on_customer_deleted, confirm=confirm_customer_deleted),
    Webhook("AccountDeleted", "user { email }", on_customer_deleted, confirm=confirm_customer_deleted),
    Webhook("AppDeleted", "app { id }", on_app_deleted, confirm=confirm_app_deleted),
    Webhook(
        "AppStatusChanged",
        "issuedAt app { id isActive }",
        on_app_status_changed,
        confirm=confirm_app_status_changed,
    ),
)
BY_PATH = {webhook.path: webhook for webhook in WEBHOOKS}
