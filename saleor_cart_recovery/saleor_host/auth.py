"""Who may read the report: Saleor staff (JWT) or apps (app token) with the right permission.

Saleor authenticates nothing for plugin URLs, so the adapter does it with Saleor's own functions:
``Authorization: Bearer <token>`` carries either a staff JWT or an app's 30-character token.
"""

import logging

import jwt
from django.db.models import Q
from saleor.account.models import User
from saleor.core.auth_backend import load_user_from_request
from saleor.graphql.app.dataloaders.utils import get_app_promise
from saleor.permission.enums import CheckoutPermissions, PluginsPermissions

logger = logging.getLogger(__name__)


def staff_can_view_reports(request, channel_slug: str) -> bool | None:
    """``True``/``False`` for an authenticated staff user or app; ``None`` without valid credentials.

    Staff whose permission groups are all restricted to other channels are refused, as Saleor
    refuses them that channel's orders; MANAGE_PLUGINS (which configures every channel) and apps
    are not channel-restricted in Saleor either."""
    principal = _principal(request)
    if principal is None:
        return None
    if principal.has_perm(PluginsPermissions.MANAGE_PLUGINS):
        return True
    if not principal.has_perm(CheckoutPermissions.MANAGE_CHECKOUTS):
        return False
    return not isinstance(principal, User) or _has_channel_access(principal, channel_slug)


def staff_can_change_settings(request) -> bool:
    """MANAGE_PLUGINS, which ``pluginUpdate`` needs (it configures every channel)."""
    principal = _principal(request)
    return principal is not None and principal.has_perm(PluginsPermissions.MANAGE_PLUGINS)


def _has_channel_access(user: User, channel_slug: str) -> bool:
    """Only channel-restricted permission groups limit a user; a user in none of them (or with
    the permission granted directly) is not restricted."""
    if user.is_superuser or not user.groups.filter(restricted_access_to_channels=True).exists():
        return True
    return user.groups.filter(
        Q(restricted_access_to_channels=False) | Q(channels__slug=channel_slug)
    ).exists()


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
