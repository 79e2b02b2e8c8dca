"""The plugin inside Saleor's Dashboard: one local App "Cart Recovery" whose extensions load the
plugin's pages, and the check of the token the Dashboard hands those pages.

The Dashboard loads an extension's page in an iframe and posts it a JWT in its AppBridge handshake:
for an ``app_page`` extension the App's token (``App.accessToken``,
``saleor.core.jwt.create_access_token_for_app``), for a ``popup`` the extension's
(``AppExtension.accessToken``, ``create_access_token_for_app_extension``, with an
``app_extension`` claim). Both are Saleor "thirdparty" tokens carrying the app's global ID and the
intersection of the app's and the staff user's permissions. We accept one only when Saleor signed
it, it has not expired, it names our app (and, if any, one of our app's extensions), its user is
still an active staff member with the same token key, and both the token and the user have
MANAGE_CHECKOUTS; the channels shown are those the user's permission groups give access to. The
settings may be saved by a user who also has MANAGE_PLUGINS.
"""

import json
import logging

import graphene
import jwt
from django.db import transaction
from django.utils.translation import gettext as _
from saleor.account.models import User
from saleor.app.models import App, AppExtension
from saleor.app.types import AppType
from saleor.channel.models import Channel
from saleor.core.jwt import JWT_THIRDPARTY_ACCESS_TYPE, get_user_from_payload, jwt_decode
from saleor.permission.enums import CheckoutPermissions, PluginsPermissions, get_permissions_from_names
from saleor.plugins.models import PluginConfiguration

from ..exceptions import DashboardRefused
from ..shop import DashboardChannel, DashboardInstall, DashboardViewer

logger = logging.getLogger(__name__)

APP_IDENTIFIER = "saleor-cart-recovery"
APP_NAME = "Cart Recovery"
PERMISSION = CheckoutPermissions.MANAGE_CHECKOUTS
# App metadata key: the Dashboard origins allowed to frame the pages (CSP frame-ancestors).
ORIGINS_KEY = "cart_recovery.dashboard_origins"


# (identifier, label, mount, target, path under app_url): the mounts and targets Saleor 3.23 accepts
# are in saleor/app/migrations/0034_alter_appextension_mount.py and saleor/app/types.py. An
# app_page's URL is relative to the app's URL (the Dashboard joins them); a popup's is absolute.
# The app's URL is the pages' shell itself (…/saleor_cart_recovery/dashboard): the Dashboard also
# frames the bare app URL (its installed-extensions list opens it).
EXTENSIONS = (
    ("cart-recovery-page", "Cart recovery", "navigation_customers", "app_page", "/"),
    ("cart-recovery-customer", "Cart recovery", "customer_details_more_actions", "popup", "/customer"),
)


def _app() -> App | None:
    """Ours: the oldest app with our identifier (Saleor does not keep identifiers unique)."""
    return App.objects.filter(identifier=APP_IDENTIFIER, removed_at__isnull=True).order_by("pk").first()


def install(app_url: str, origins: tuple[str, ...]) -> DashboardInstall:
    """Create or update the app, its permission and its extensions (idempotent: a second run
    changes nothing but what the arguments changed)."""
    permissions = list(get_permissions_from_names([PERMISSION.name]))
    with transaction.atomic():
        app = _app()
        created = app is None
        if app is None:
            app = App(identifier=APP_IDENTIFIER)
        # THIRDPARTY: Saleor gives the Dashboard an App.accessToken (the app page's handshake token)
        # only for third-party apps (saleor/graphql/app/resolvers.py, resolve_access_token_for_app)
        app.type, app.name, app.app_url = AppType.THIRDPARTY, APP_NAME, app_url
        app.is_active, app.is_installed = True, True
        app.about_app = "Abandoned-cart recovery: the report, each cart's story and test sends."
        app.store_value_in_private_metadata({ORIGINS_KEY: json.dumps(list(origins))})
        app.save()
        app.permissions.set(permissions)
        kept = []
        for identifier, label, mount, target, path in EXTENSIONS:
            url = path if target == "app_page" else f"{app_url}{path}"
            extension, _created = AppExtension.objects.update_or_create(
                app=app,
                identifier=identifier,
                defaults={"label": label, "url": url, "mount": mount, "target": target, "settings": {}},
            )
            extension.permissions.set(permissions)
            kept.append(extension.pk)
        AppExtension.objects.filter(app=app).exclude(pk__in=kept).delete()
    return DashboardInstall(
        app_id=graphene.Node.to_global_id("App", app.pk),
        created=created,
        app_url=app_url,
        extensions=tuple(f"{label} ({mount}, {target})" for _key, label, mount, target, _path in EXTENSIONS),
    )


def remove() -> bool:
    app = _app()
    if app is None:
        return False
    app.delete()  # its extensions and tokens go with it (cascade)
    return True


def origins() -> tuple[str, ...]:
    app = _app()
    if app is None:
        return ()
    try:
        return tuple(json.loads(app.get_value_from_private_metadata(ORIGINS_KEY, "[]")))
    except (TypeError, ValueError):
        return ()


def viewer(token: str, plugin_id: str) -> DashboardViewer:
    """See the module docstring; raises :class:`DashboardRefused`."""
    try:
        payload = jwt_decode(token)
    except jwt.ExpiredSignatureError:
        expired = _("The Dashboard session expired: close Cart Recovery and open it again.")
        raise DashboardRefused(401, expired) from None
    except jwt.PyJWTError as exc:
        logger.info("cart recovery dashboard: rejected token: %s", exc)
        raise DashboardRefused(401, _("This page needs a token from the Saleor Dashboard.")) from None
    if payload.get("type") != JWT_THIRDPARTY_ACCESS_TYPE or "app" not in payload:
        raise DashboardRefused(401, _("This page needs the Dashboard's token for the Cart Recovery app."))
    app = _app()
    if app is None or not app.is_active or payload["app"] != graphene.Node.to_global_id("App", app.pk):
        raise DashboardRefused(403, _("The token was issued for another app."))
    extension = payload.get("app_extension")
    if extension is not None and not _is_extension_of(app, extension):
        raise DashboardRefused(403, _("The token was issued for another app's extension."))
    try:
        user = get_user_from_payload(payload)
    except jwt.PyJWTError:
        raise DashboardRefused(401, _("The Dashboard session is no longer valid: sign in again.")) from None
    if user is None or not user.is_staff:
        raise DashboardRefused(403, _("Only staff members may open Cart Recovery."))
    if PERMISSION.name not in (payload.get("permissions") or ()) or not user.has_perm(PERMISSION):
        raise DashboardRefused(403, _("Cart Recovery needs the MANAGE_CHECKOUTS permission."))
    channels = _channels_of(user, plugin_id)
    if not channels:
        raise DashboardRefused(403, _("Your permission groups give you access to no channel."))
    # Saving the settings is pluginUpdate's permission, the user's own: the token carries the
    # intersection with our app's permissions, and the app asks only for MANAGE_CHECKOUTS (what
    # showing the pages needs), so the token never holds MANAGE_PLUGINS; it proves who the user is.
    return DashboardViewer(
        email=user.email,
        channels=channels,
        can_change_settings=user.has_perm(PluginsPermissions.MANAGE_PLUGINS),
    )


def _is_extension_of(app: App, global_id) -> bool:
    try:
        kind, pk = graphene.Node.from_global_id(str(global_id))
    except Exception:
        return False
    return kind == "AppExtension" and AppExtension.objects.filter(app=app, pk=pk).exists()


def _channels_of(user: User, plugin_id: str) -> tuple[DashboardChannel, ...]:
    """Saleor's rule for orders: every channel for a superuser, for a user in no channel-restricted
    group or in any unrestricted one; else the channels of the user's groups."""
    channels = Channel.objects.order_by("name")
    groups = user.groups.all()
    if (
        not user.is_superuser
        and groups.filter(restricted_access_to_channels=True).exists()
        and not groups.filter(restricted_access_to_channels=False).exists()
    ):
        channels = channels.filter(pk__in=groups.values("channels"))
    active = set(
        PluginConfiguration.objects.filter(
            identifier=plugin_id, active=True, channel__isnull=False
        ).values_list("channel_id", flat=True)
    )
    return tuple(
        DashboardChannel(slug=c.slug, name=c.name, currency=c.currency_code, active=c.pk in active)
        for c in channels
    )


def customer_email(customer_id: str) -> str | None:
    """A customer's email (never a staff member's: the action is on customer pages, and seeing a
    staff address needs MANAGE_STAFF)."""
    try:
        kind, pk = graphene.Node.from_global_id(customer_id)
    except Exception:
        return None
    if kind != "User" or not str(pk).isdigit():
        return None
    return User.objects.filter(pk=pk, is_staff=False).values_list("email", flat=True).first()
