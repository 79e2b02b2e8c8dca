"""Who is calling: the developer API's tokens and the Dashboard's, checked the way the App host can —
with Saleor's public keys and by asking Saleor — never with Saleor's database.

- A JWT (a staff token from ``tokenCreate``, or the Dashboard's token for our app) is first checked
  against the installing Saleor's JWKS: signature, expiry, issuer ``SALEOR_API_URL``. Forged or
  foreign ones are refused without a request to Saleor.
- Then Saleor is asked with the token itself (``me``: is the user still an active staff member with
  that token key, their permissions, their channels; or ``app`` for an app token), cached per token
  so a page's fragments cost one request, not one each: for ``CACHE_SECONDS``, never past a JWT's
  expiry, for the ``CACHE_SIZE`` tokens used last.
"""

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from ..exceptions import DashboardRefused
from ..shop import DashboardChannel, DashboardViewer
from . import installation
from .client import AppTokenRevoked, SaleorClient, SaleorQueryError, SaleorUnavailable
from .jwks import KeysUnavailable, SignatureInvalid, TokenExpired, verify_jwt
from .models import ChannelSettings

logger = logging.getLogger(__name__)

CACHE_SECONDS = 60.0
CACHE_SIZE = 1000
PERMISSION = "MANAGE_CHECKOUTS"
ALSO_ALLOWED = "MANAGE_PLUGINS"  # configures every channel in Saleor: may read every report
THIRDPARTY = "thirdparty"  # saleor.core.jwt.JWT_THIRDPARTY_ACCESS_TYPE: a token Saleor made for an app

ME = """query CartRecoveryMe {
  me { email isStaff isActive restrictedAccessToChannels userPermissions { code }
       accessibleChannels { slug name currencyCode } }
}"""
APP = "query CartRecoveryCaller { app { id identifier manifestUrl isActive permissions { code } } }"


class AnswerCache:
    """Saleor's answers per token (by hash: tokens are never kept), least recently used first out
    past ``size`` tokens, each for ``CACHE_SECONDS`` at most and never past the token's own expiry
    (a JWT's ``exp``): an expired token is never answered from here."""

    def __init__(self, size: int = CACHE_SIZE, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._answers: OrderedDict[str, tuple[float, Any]] = OrderedDict()  # hash -> (until, answer)
        self._size = size
        self._clock = clock

    def get(self, token: str, ask: Callable[[], Any], expires_at: float | None = None) -> Any:
        """The cached answer for ``token``, else ``ask()``'s, kept until ``expires_at`` (seconds
        since the epoch) at the latest."""
        key = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            found = self._answers.get(key)
            if found is not None and self._clock() < found[0]:
                self._answers.move_to_end(key)
                return found[1]
        answer = ask()
        until = self._clock() + CACHE_SECONDS
        if expires_at is not None:
            until = min(until, expires_at)
        with self._lock:
            self._answers[key] = (until, answer)
            self._answers.move_to_end(key)
            while len(self._answers) > self._size:
                self._answers.popitem(last=False)
        return answer

    def __len__(self) -> int:
        return len(self._answers)

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()


ANSWERS = AnswerCache()


def ask_with(token: str, document: str) -> dict[str, Any] | None:
    """Saleor's ``data`` for ``document`` asked with ``token``; ``None`` when Saleor refuses the
    token. :class:`SaleorUnavailable` propagates (nothing can be said)."""
    try:
        return SaleorClient(settings.SALEOR_API_URL, token).execute(document)
    except (AppTokenRevoked, SaleorQueryError) as exc:
        logger.info("cart recovery app: Saleor refused a caller's token: %s", exc)
        return None


def _bearer(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _is_jwt(token: str) -> bool:
    return token.count(".") == 2


def _me(token: str, claims: dict[str, Any]) -> dict[str, Any] | None:
    """Saleor's ``me`` for a JWT it signed (``claims`` verified), cached no longer than it is valid."""
    data = ANSWERS.get(token, lambda: ask_with(token, ME), expires_at=float(claims["exp"]))
    return (data or {}).get("me")


def _app(token: str) -> dict[str, Any] | None:
    """Saleor's ``app`` for an app token (which does not expire: cached ``CACHE_SECONDS``)."""
    return (ANSWERS.get(token, lambda: ask_with(token, APP)) or {}).get("app")


def staff_can_view_reports(request, channel_slug: str) -> bool | None:
    """The port's rule (see :meth:`Shop.staff_can_view_reports`) with Saleor's answers: staff with
    MANAGE_PLUGINS, or MANAGE_CHECKOUTS and access to the channel; apps with either permission."""
    token = _bearer(request)
    if token is None:
        return None
    try:
        if _is_jwt(token):
            claims = verify_jwt(token)
            if claims.get("type") not in ("access", THIRDPARTY):
                return None
            if _for_another_app(claims):
                return False
            return _staff_allowed(_me(token, claims), channel_slug)
        return _app_allowed(_app(token))
    except SignatureInvalid as exc:
        logger.info("cart recovery app: refused a caller's token: %s", exc)
        return None
    except (KeysUnavailable, SaleorUnavailable) as exc:
        logger.warning("cart recovery app: could not check a caller's token: %s", exc)
        return None


def staff_can_change_settings(request) -> bool:
    """The port's rule (see :meth:`Shop.staff_can_change_settings`): MANAGE_PLUGINS, which
    ``pluginUpdate`` needs, held by the caller's own token as Saleor answers for it (an active staff
    member, or an active app); the same checks as :func:`staff_can_view_reports`, cached alike."""
    token = _bearer(request)
    if token is None:
        return False
    try:
        if _is_jwt(token):
            claims = verify_jwt(token)
            if claims.get("type") not in ("access", THIRDPARTY) or _for_another_app(claims):
                return False
            me = _me(token, claims)
            if not (me and me.get("isStaff") and me.get("isActive")):
                return False
            return ALSO_ALLOWED in _codes(me.get("userPermissions"))
        app = _app(token)
        return bool(app and app.get("isActive") and ALSO_ALLOWED in _codes(app.get("permissions")))
    except SignatureInvalid as exc:
        logger.info("cart recovery app: refused a caller's token: %s", exc)
        return False
    except (KeysUnavailable, SaleorUnavailable) as exc:
        logger.warning("cart recovery app: could not check a caller's token: %s", exc)
        return False


def _for_another_app(claims: dict[str, Any]) -> bool:
    """A token Saleor made for an app (the Dashboard's, ``thirdparty``) counts only when made for the
    installed app: another app of the same Saleor must not act here with the tokens it is given."""
    if claims.get("type") != THIRDPARTY:
        return False
    found = installation.stored()
    return found is None or claims.get("app") != found.app_id


def _codes(permissions) -> set[str]:
    return {permission["code"] for permission in permissions or ()}


def _staff_allowed(me: dict[str, Any] | None, channel_slug: str) -> bool | None:
    if not me:
        return None
    if not (me.get("isStaff") and me.get("isActive")):
        return False
    codes = _codes(me.get("userPermissions"))
    if ALSO_ALLOWED in codes:
        return True
    if PERMISSION not in codes:
        return False
    channels = {channel["slug"] for channel in me.get("accessibleChannels") or ()}
    return not me.get("restrictedAccessToChannels") or channel_slug in channels


def _app_allowed(app: dict[str, Any] | None) -> bool | None:
    if not app or not app.get("isActive"):
        return None
    return bool(_codes(app.get("permissions")) & {PERMISSION, ALSO_ALLOWED})


def dashboard_viewer(token: str) -> DashboardViewer:
    """The port's :meth:`Shop.dashboard_viewer`: a token Saleor signed for the installed app (or one
    of its extensions: Saleor names the app in those too) with MANAGE_CHECKOUTS, whose user Saleor
    still accepts; the channels are those Saleor says the user may access."""
    try:
        claims = verify_jwt(token)
    except TokenExpired:
        raise DashboardRefused(
            401, _("The Dashboard session expired: close Cart Recovery and open it again.")
        ) from None
    except SignatureInvalid as exc:
        logger.info("cart recovery dashboard: rejected token: %s", exc)
        raise DashboardRefused(401, _("This page needs a token from the Saleor Dashboard.")) from None
    if claims.get("type") != THIRDPARTY or "app" not in claims:
        raise DashboardRefused(401, _("This page needs the Dashboard's token for the Cart Recovery app."))
    found = installation.stored()
    if found is None or not found.installed:
        raise DashboardRefused(
            403,
            _("Cart Recovery is uninstalled from this Saleor: no reminder goes out. Install the app again."),
        )
    if claims["app"] != found.app_id:
        raise DashboardRefused(403, _("The token was issued for another app."))
    if not claims.get("is_staff"):
        raise DashboardRefused(403, _("Only staff members may open Cart Recovery."))
    if PERMISSION not in (claims.get("permissions") or ()):
        raise DashboardRefused(403, _("Cart Recovery needs the MANAGE_CHECKOUTS permission."))
    # Saleor or its keys out of reach (KeysUnavailable, SaleorUnavailable) propagate: the page
    # answers 503 "could not be checked right now", not a refusal.
    me = _me(token, claims)
    if not me or not me.get("isActive"):
        raise DashboardRefused(401, _("The Dashboard session is no longer valid: sign in again."))
    if not me.get("isStaff"):
        raise DashboardRefused(403, _("Only staff members may open Cart Recovery."))
    active = set(ChannelSettings.objects.filter(active=True).values_list("channel_slug", flat=True))
    channels = tuple(
        DashboardChannel(
            slug=channel["slug"],
            name=channel["name"],
            currency=channel["currencyCode"],
            active=channel["slug"] in active,
        )
        for channel in sorted(me.get("accessibleChannels") or (), key=lambda channel: channel["name"])
    )
    if not channels:
        raise DashboardRefused(403, _("Your permission groups give you access to no channel."))
    # Saleor signs the user's own permissions into the token (``user_permissions``): saving needs
    # MANAGE_PLUGINS, as pluginUpdate does, whether or not the app holds it.
    return DashboardViewer(
        email=me["email"],
        channels=channels,
        can_change_settings=ALSO_ALLOWED in (claims.get("user_permissions") or ()),
    )
