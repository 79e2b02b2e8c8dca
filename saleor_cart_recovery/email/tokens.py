"""Signed tokens for links in emails (Django's signing: HMAC with SECRET_KEY, constant-time check)."""

import re
from dataclasses import dataclass

from django.core import signing

from ..exceptions import BadToken

_UNSUBSCRIBE_SALT = "saleor_cart_recovery.unsubscribe"
# The unsubscribe link of previews and test sends: no shopper behind it, the page says so.
PREVIEW_TOKEN = "preview"


@dataclass(frozen=True)
class UnsubscribeClaim:
    """What an unsubscribe link names: the reminder it was sent in (``message_id``), or — in links
    sent by earlier versions, which keep working — the channel, address and checkout directly."""

    message_id: int | None = None
    channel_slug: str = ""
    email: str = ""
    checkout_token: str = ""


def unsubscribe_token(message_id: int) -> str:
    """Opaque: a signed message id, no address or checkout token readable in the URL."""
    return signing.dumps(message_id, salt=_UNSUBSCRIBE_SALT)


def read_unsubscribe_token(token: str) -> UnsubscribeClaim:
    """Decode a token from a link; raise :class:`BadToken` for anything not signed by us."""
    try:
        value = signing.loads(token, salt=_UNSUBSCRIBE_SALT)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise BadToken("invalid unsubscribe token") from exc
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return UnsubscribeClaim(message_id=value)
    if isinstance(value, list) and len(value) == 3 and all(isinstance(v, str) for v in value):
        channel_slug, email, checkout_token = value
        return UnsubscribeClaim(channel_slug=channel_slug, email=email, checkout_token=checkout_token)
    raise BadToken("invalid unsubscribe token")


_CLICK_SALT = "saleor_cart_recovery.click"
# What a tracked link may lead to: the cart, or an upsell product by slug. The URL itself is never
# in the token; the endpoint derives it from the channel's settings.
_CLICK_TARGET = re.compile(r"^(cart|product:[-\w]{1,255})$")


@dataclass(frozen=True)
class ClickClaim:
    message_id: int
    target: str


def click_token(claim: ClickClaim) -> str:
    return signing.dumps([claim.message_id, claim.target], salt=_CLICK_SALT, compress=True)


def read_click_token(token: str) -> ClickClaim:
    """Decode a tracked link's token; raise :class:`BadToken` for anything not signed by us."""
    try:
        message_id, target = signing.loads(token, salt=_CLICK_SALT)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise BadToken("invalid click token") from exc
    if (
        not isinstance(message_id, int)
        or isinstance(message_id, bool)
        or not isinstance(target, str)
        or not _CLICK_TARGET.match(target)
    ):
        raise BadToken("invalid click token")
    return ClickClaim(message_id, target)
