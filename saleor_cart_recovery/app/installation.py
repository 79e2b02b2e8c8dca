"""The installation: registering the token Saleor posts, reading it for calls, and uninstalling.

Uninstalled (``APP_DELETED``, Saleor refusing the token on any call, the app deactivated) is a
state, not an error to retry: every channel reads as inactive (sending stops with the reason
``plugin_inactive``) until Saleor registers the app again (or activates it again). ``APP_DELETED``
is final: only a new registration installs again.

One app holds the installation: while Saleor still accepts its token, a registration by another
app (Saleor names each app by its ID) is refused, so a second app made in the same Saleor cannot
take over the deployment (its token, the Dashboard pages, the uninstall).
"""

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from ..exceptions import CartRecoveryError
from .client import READ_TIMEOUT, SaleorClient
from .models import Installation
from .token_crypto import decrypt, encrypt

logger = logging.getLogger(__name__)
RECORD_ATTEMPTS = 3  # registrations racing each other: look again this many times, then refuse


class NotInstalled(CartRecoveryError):
    """Saleor has not installed the app (or uninstalled it): nothing can be asked of Saleor."""


class InstalledByAnotherApp(CartRecoveryError):
    """A registration by an app other than the one installed, which Saleor still accepts."""


@dataclass(frozen=True)
class Installed:
    """What calls to Saleor need; ``repr`` never shows the token."""

    api_url: str
    app_id: str
    token: str
    ciphertext: str = field(default="", compare=False)  # the stored token: which registration this is

    def __repr__(self) -> str:
        return f"Installed({self.api_url!r}, {self.app_id!r})"

    @property
    def client(self) -> SaleorClient:
        """The process's client for this registration (``SALEOR_API_TIMEOUT``; its HTTP session is
        per thread): a worker keeps its connections to Saleor open across batches (a reinstall
        brings a new token, hence a new client); the app server runs each request on a new thread."""
        return _client(self.api_url, self.token)


@functools.lru_cache(maxsize=2)
def _client(api_url: str, token: str) -> SaleorClient:
    return SaleorClient(api_url, token, timeout=getattr(settings, "SALEOR_API_TIMEOUT", READ_TIMEOUT))


def same_saleor(api_url: str | None) -> bool:
    """Whether ``api_url`` (as a request names its Saleor) is this deployment's ``SALEOR_API_URL``
    (a trailing slash aside: Saleor names its API with one)."""
    return api_url is not None and api_url.rstrip("/") == settings.SALEOR_API_URL.rstrip("/")


def record(
    *, app_id: str, token: str, permissions: list[str], accepted: Callable[[Installed], bool]
) -> Installation:
    """Store (or replace) the installation of ``SALEOR_API_URL``; a reinstall clears the uninstall.

    Another app than the one stored may register only once that one is gone: deleted
    (``APP_DELETED``), its token unreadable here, or no longer ``accepted`` by Saleor (asked with
    it: :class:`.client.SaleorUnavailable` propagates). Else :class:`InstalledByAnotherApp`, and
    nothing changes. Saleor is asked before the row is locked (no lock of ours is held while
    Saleor answers); the locked row must still be the one Saleor was asked about, else this looks
    again, so two registrations cannot both pass."""
    values = {
        "app_id": app_id,
        "token_ciphertext": encrypt(token),
        "permissions": sorted(permissions),
        "installed_at": timezone.now(),
        "uninstalled_at": None,
        "uninstall_reason": "",
        "status_changed_at": None,
    }
    for _attempt in range(RECORD_ATTEMPTS):
        seen = stored()
        holder = None if seen is None or is_deleted(seen) else _installed(seen)
        refused = holder is not None and holder.app_id != app_id and accepted(holder)
        with transaction.atomic():
            found, created = Installation.objects.select_for_update().get_or_create(
                saleor_api_url=settings.SALEOR_API_URL, defaults=values
            )
            if created:
                break
            if seen is None or _state(found) != _state(seen):
                continue  # registered or uninstalled meanwhile: ask about what is there now
            if refused:
                raise InstalledByAnotherApp(
                    _(
                        "Cart Recovery is installed in this Saleor as another app (%(app)s), which "
                        "Saleor still accepts: delete that app in the Dashboard (Extensions → Installed) "
                        "before installing it again."
                    )
                    % {"app": found.app_id}
                )
            for name, value in values.items():
                setattr(found, name, value)
            found.save(update_fields=list(values))
            break
    else:
        raise InstalledByAnotherApp(_("Another installation was registered at the same time: install again."))
    logger.info("cart recovery app: installed by %s as %s", settings.SALEOR_API_URL, app_id)
    return found


def _state(installation: Installation) -> tuple:
    return (installation.app_id, installation.token_ciphertext, installation.uninstalled_at)


def stored() -> Installation | None:
    """The row of ``SALEOR_API_URL``, installed or not."""
    return Installation.objects.filter(saleor_api_url=settings.SALEOR_API_URL).first()


def current() -> Installed | None:
    """The installation while it is installed and its token readable; else ``None``."""
    installation = stored()
    if installation is None or not installation.installed:
        return None
    return _installed(installation)


def registered() -> Installed | None:
    """The registration Saleor made last, installed or deactivated, with its token (to ask Saleor
    about it); ``None`` when there is none, Saleor deleted it, or its token is unreadable."""
    installation = stored()
    return None if installation is None or is_deleted(installation) else _installed(installation)


def _installed(installation: Installation) -> Installed | None:
    token = decrypt(installation.token_ciphertext)
    if token is None:
        logger.error("cart recovery app: the stored token is unreadable (SECRET_KEY changed?): reinstall")
        return None
    return Installed(installation.saleor_api_url, installation.app_id, token, installation.token_ciphertext)


DELETED = "the app was deleted in Saleor (APP_DELETED)"
DEACTIVATED = "the app was deactivated in Saleor"


def is_deleted(installation: Installation | None) -> bool:
    """Whether Saleor deleted the app (or never installed it): nothing it sends counts until a new
    registration."""
    return installation is None or installation.uninstall_reason == DELETED


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


def delete(app_id: str) -> bool:
    """Saleor deleted the app ``app_id`` (``APP_DELETED``): uninstalled for good, whatever the state
    before (deactivated too: a late activation must not bring it back). Whether anything changed
    (a repeat, or another app's deletion, changes nothing)."""
    changed = (
        Installation.objects.filter(saleor_api_url=settings.SALEOR_API_URL, app_id=app_id)
        .exclude(uninstall_reason=DELETED)
        .update(
            uninstalled_at=Coalesce(F("uninstalled_at"), Value(timezone.now(), output_field=DateTimeField())),
            uninstall_reason=DELETED,
        )
    )
    if changed:
        logger.warning("cart recovery app: uninstalled from %s: %s", settings.SALEOR_API_URL, DELETED)
    return bool(changed)


def token_refused(refused: Installed, detail: str) -> bool:
    """Saleor refused the token of ``refused``: that registration is uninstalled (once; a newer
    registration's token, stored meanwhile, is left alone). Whether it was installed."""
    reason = f"Saleor refused the app token: {detail}"
    changed = Installation.objects.filter(
        saleor_api_url=settings.SALEOR_API_URL,
        token_ciphertext=refused.ciphertext,
        uninstalled_at__isnull=True,
    ).update(uninstalled_at=timezone.now(), uninstall_reason=reason[:255])
    if changed:
        logger.warning("cart recovery app: uninstalled from %s: %s", settings.SALEOR_API_URL, reason)
    return bool(changed)
