"""The installation: registering the token Saleor posts, reading it for calls, and uninstalling.

Uninstalled (``APP_DELETED``, or Saleor refusing the token on any call) is a state, not an error
to retry: every channel reads as inactive (sending stops with the reason ``plugin_inactive``) until
Saleor registers the app again.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import DateTimeField, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..exceptions import CartRecoveryError
from .models import Installation
from .token_crypto import decrypt, encrypt

logger = logging.getLogger(__name__)


class NotInstalled(CartRecoveryError):
    """Saleor has not installed the app (or uninstalled it): nothing can be asked of Saleor."""


@dataclass(frozen=True)
class Installed:
    """What calls to Saleor need; ``repr`` never shows the token."""

    api_url: str
    app_id: str
    token: str

    def __repr__(self) -> str:
        return f"Installed({self.api_url!r}, {self.app_id!r})"


def same_saleor(api_url: str | None) -> bool:
    """Whether ``api_url`` (as a request names its Saleor) is this deployment's ``SALEOR_API_URL``
    (a trailing slash aside: Saleor names its API with one)."""
    return api_url is not None and api_url.rstrip("/") == settings.SALEOR_API_URL.rstrip("/")


def record(*, app_id: str, token: str, permissions: list[str]) -> Installation:
    """Store (or replace) the installation of ``SALEOR_API_URL``; a reinstall clears the uninstall."""
    installation, _ = Installation.objects.update_or_create(
        saleor_api_url=settings.SALEOR_API_URL,
        defaults={
            "app_id": app_id,
            "token_ciphertext": encrypt(token),
            "permissions": sorted(permissions),
            "installed_at": timezone.now(),
            "uninstalled_at": None,
            "uninstall_reason": "",
            "status_changed_at": None,
        },
    )
    logger.info("cart recovery app: installed by %s as %s", settings.SALEOR_API_URL, app_id)
    return installation


def stored() -> Installation | None:
    """The row of ``SALEOR_API_URL``, installed or not."""
    return Installation.objects.filter(saleor_api_url=settings.SALEOR_API_URL).first()


def current() -> Installed | None:
    """The installation while it is installed and its token readable; else ``None``."""
    installation = stored()
    if installation is None or not installation.installed:
        return None
    token = decrypt(installation.token_ciphertext)
    if token is None:
        logger.error("cart recovery app: the stored token is unreadable (SECRET_KEY changed?): reinstall")
        return None
    return Installed(installation.saleor_api_url, installation.app_id, token)


DELETED = "the app was deleted in Saleor (APP_DELETED)"
DEACTIVATED = "the app was deactivated in Saleor"


def status_changed(app_id: str, active: bool, at: datetime) -> bool:
    """Saleor (de)activated the app at ``at``: deactivated stops sending like an uninstall, activated
    resumes it — unless Saleor deleted the app, or a later status change was applied already
    (deliveries may come out of order). Whether anything changed."""
    current = Installation.objects.filter(saleor_api_url=settings.SALEOR_API_URL, app_id=app_id).exclude(
        uninstall_reason=DELETED
    )
    current = current.filter(Q(status_changed_at__isnull=True) | Q(status_changed_at__lt=at))
    if active:
        changed = current.update(uninstalled_at=None, uninstall_reason="", status_changed_at=at)
    else:
        changed = current.update(
            uninstalled_at=Coalesce(F("uninstalled_at"), Value(timezone.now(), output_field=DateTimeField())),
            uninstall_reason=DEACTIVATED,
            status_changed_at=at,
        )
    if changed:
        logger.warning(
            "cart recovery app: %s in %s", "activated" if active else DEACTIVATED, settings.SALEOR_API_URL
        )
    return bool(changed)


def uninstall(reason: str) -> bool:
    """Mark the installation uninstalled (once: a repeated call changes nothing); whether it was
    installed."""
    changed = Installation.objects.filter(
        saleor_api_url=settings.SALEOR_API_URL, uninstalled_at__isnull=True
    ).update(uninstalled_at=timezone.now(), uninstall_reason=reason[:255])
    if changed:
        logger.warning("cart recovery app: uninstalled from %s: %s", settings.SALEOR_API_URL, reason)
    return bool(changed)
