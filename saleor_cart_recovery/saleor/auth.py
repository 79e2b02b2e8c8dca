"""Who may read the report: Saleor staff (JWT) or apps (app token) with the right permission.

Saleor authenticates nothing for plugin URLs, so the adapter does it with Saleor's own functions:
``Authorization: Bearer <token>`` carries either a staff JWT or an app's 30-character token.
"""

import logging

import jwt
from saleor.core.auth_backend import load_user_from_request
from saleor.graphql.app.dataloaders.utils import get_app_promise
from saleor.permission.enums import CheckoutPermissions, PluginsPermissions

logger = logging.getLogger(__name__)

REPORT_PERMISSIONS = (CheckoutPermissions.MANAGE_CHECKOUTS, PluginsPermissions.MANAGE_PLUGINS)


def staff_can_view_reports(request) -> bool | None:
    """``True``/``False`` for an authenticated staff user or app; ``None`` without valid credentials."""
    principal = _principal(request)
    if principal is None:
        return None
    return any(principal.has_perm(permission) for permission in REPORT_PERMISSIONS)


def _principal(request):
    try:
        user = load_user_from_request(request)
    except jwt.PyJWTError as exc:  # expired, forged, user gone: not authenticated
        logger.info("cart recovery report: rejected token: %s", exc)
        return None
    if user is not None:
        return user if user.is_active and user.is_staff else _NoPermissions()
    app = get_app_promise(request).get()
    if app is not None and app.is_active:
        return app
    return None


class _NoPermissions:
    """An authenticated customer: known, but never allowed."""

    def has_perm(self, permission) -> bool:
        return False
