"""The app server's own endpoints: the manifest, the registration Saleor posts the token to, the
webhooks, and the plugin's paths mirrored under ``APP_URL`` through the core router.

Every request from Saleor is checked before anything changes: ``Saleor-Api-Url`` must be
``SALEOR_API_URL`` (403 otherwise), a webhook's ``Saleor-Signature`` must verify against that
Saleor's keys (401), the app must be installed (410 once Saleor deleted it: only a new registration
counts then), its body must be the payload its subscription asks for (400, as is a value the
database refuses: the handler runs in a transaction of its own, so nothing is half-written).
A deletion, a status change or an order's event is applied only as Saleor confirms it (an order as
Saleor has it), asked before that transaction; an order's event or a deletion ahead of Saleor's
answer (its read replica lags) is 503, and Saleor retries it.
Saleor's keys or API out of reach: 503, and Saleor retries.
"""

import json
import logging
import re
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError, connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from ..http import router
from ..languages import from_accept_language, speaking
from ..series.activity import LOCK_TIMEOUT
from ..settings.parsers import labelled
from . import auth, installation, manifest
from .client import SaleorUnavailable
from .jwks import KEYS, KeysUnavailable, SignatureInvalid, verify_body
from .webhooks import BY_PATH, PayloadInvalid, SaleorBehind, Unconfirmed

logger = logging.getLogger(__name__)

API_URL_HEADER = "Saleor-Api-Url"
SIGNATURE_HEADER = "Saleor-Signature"
EVENT_HEADER = "Saleor-Event"
APP_DELETED = "APP_DELETED"  # its retries still answer 204 (changing nothing) once the app is deleted
MAX_TOKEN_LENGTH = 255  # Saleor's app tokens are 30 characters
# What an ``Authorization`` header can carry (anything else would fail in ``requests``, not in Saleor).
TOKEN = re.compile(rf"[\x21-\x7e]{{1,{MAX_TOKEN_LENGTH}}}")
UNINSTALLED = gettext_lazy(
    "Cart Recovery is uninstalled from Saleor: no reminder goes out. Install the app again "
    "(Extensions → Installed → Add Extension → Install from manifest) to resume."
)
NOT_INSTALLED = gettext_lazy(
    "Cart Recovery is not installed in this Saleor (or Saleor deleted it): nothing is recorded until "
    "Saleor installs the app again."
)


def _refuse(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _in_the_callers_language(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The view's messages in the request's ``Accept-Language`` (Saleor's own requests send none:
    English, which is what Saleor shows an owner of a failed installation or delivery)."""

    @wraps(view)
    def speaking_view(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        with speaking(from_accept_language(request.headers.get("Accept-Language"))):
            return view(request, *args, **kwargs)

    return speaking_view


def _not_our_saleor() -> JsonResponse:
    return _refuse(403, _("%(header)s is not the Saleor this app serves") % {"header": API_URL_HEADER})


def _from_our_saleor(request: HttpRequest) -> bool:
    return installation.same_saleor(request.headers.get(API_URL_HEADER))


@require_GET
def manifest_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(manifest.build(settings.APP_URL))


@require_POST
@_in_the_callers_language
def register(request: HttpRequest) -> JsonResponse:
    """Saleor posts ``{"auth_token": …}`` at install. Only ``SALEOR_API_URL`` may install; the token
    is stored only once Saleor confirms it is the token of an app it installed from this
    deployment's manifest (identifier and manifest URL; the install shows as failed otherwise),
    and never appears in a log or an answer. While another app holds the installation and Saleor
    still accepts its token as this deployment's app, the answer is 409 and nothing changes."""
    if not _from_our_saleor(request):
        return _not_our_saleor()
    try:
        token = json.loads(request.body or b"{}").get("auth_token")
    except (ValueError, AttributeError, RecursionError):
        token = None
    token = token.strip() if isinstance(token, str) else ""
    if not TOKEN.fullmatch(token):
        return _refuse(
            400,
            _("auth_token: %(min)d to %(max)d printable ASCII characters without spaces")
            % {"min": 1, "max": MAX_TOKEN_LENGTH},
        )
    try:
        app = _app_of(token)
        if app is None:
            return _refuse(403, _("Saleor does not accept this token as an app's"))
        if not _installed_from_our_manifest(app):
            return _refuse(
                403,
                _(
                    "This token belongs to an app Saleor did not install from this deployment's "
                    "manifest (%(url)s): install Cart Recovery from that manifest."
                )
                % {"url": _manifest_url()},
            )
        KEYS.refresh(settings.SALEOR_API_URL)
        installation.record(
            app_id=app["id"],
            token=token,
            permissions=[p["code"] for p in app.get("permissions") or ()],
            accepted=_still_accepted,
        )
    except installation.InstalledByAnotherApp as exc:
        return _refuse(409, str(exc))
    except (KeysUnavailable, SaleorUnavailable) as exc:
        return _refuse(503, str(exc))
    return JsonResponse({"success": True})


def _app_of(token: str) -> dict | None:
    """Saleor's ``app`` for ``token`` (its ID, manifest, permissions), or ``None`` when Saleor
    refuses it."""
    app = (auth.ask_with(token, auth.APP) or {}).get("app")
    return app if app and isinstance(app.get("id"), str) and app["id"] else None


def _manifest_url() -> str:
    return f"{settings.APP_URL.rstrip('/')}/api/manifest"


def _installed_from_our_manifest(app: dict) -> bool:
    """Whether Saleor installed ``app`` from this deployment's manifest: any app's token answers
    ``app { id }``, so the ID alone would let another app of the same Saleor (a local app, another
    deployment's) take this one's place."""
    manifest_url = app.get("manifestUrl")
    return (
        app.get("identifier") == manifest.APP_IDENTIFIER
        and isinstance(manifest_url, str)
        and manifest_url.rstrip("/") == _manifest_url()
    )


def _still_accepted(holder: installation.Installed) -> bool:
    """Whether Saleor still accepts the installed registration's token, as this deployment's app."""
    app = _app_of(holder.token)
    return app is not None and app["id"] == holder.app_id and _installed_from_our_manifest(app)


@require_POST
@_in_the_callers_language
def webhook(request: HttpRequest, name: str) -> HttpResponse:
    definition = BY_PATH.get(f"webhooks/{name}")
    if definition is None:
        return _refuse(404, _("no webhook %(name)s") % {"name": name})
    if not _from_our_saleor(request):
        return _not_our_saleor()
    try:
        verify_body(request.body, request.headers.get(SIGNATURE_HEADER, ""))
    except SignatureInvalid as exc:
        logger.warning("cart recovery app: refused a %s webhook: %s", name, exc)
        return _refuse(401, labelled(SIGNATURE_HEADER, str(exc)))
    except KeysUnavailable as exc:
        return _refuse(503, str(exc))
    event = request.headers.get(EVENT_HEADER, "")
    if event.upper() != definition.event:
        expected = {"header": EVENT_HEADER, "expected": definition.event.lower(), "got": repr(event)}
        return _refuse(400, _("%(header)s: expected %(expected)s, got %(got)s") % expected)
    try:
        if definition.event != APP_DELETED and installation.is_deleted(installation.stored()):
            return _refuse(410, str(NOT_INSTALLED))
        payload = json.loads(request.body.decode())
        if not isinstance(payload, dict):
            raise PayloadInvalid(_("the body is not a JSON object"))
        if definition.confirm is not None:  # Saleor is asked here, before our transaction
            confirmed = definition.confirm(payload)
            if confirmed is None:
                return HttpResponse(status=204)
            payload = dict(confirmed)
        with transaction.atomic():
            _bounded_lock_waits()
            definition.handler(payload)
    except SaleorBehind as exc:  # Saleor's replica lags: its retry is expected to pass
        logger.info("cart recovery app: a %s webhook is ahead of Saleor's answer: %s", name, exc)
        return _refuse(503, str(exc))
    except (SaleorUnavailable, Unconfirmed) as exc:
        logger.warning("cart recovery app: could not confirm a %s webhook with Saleor: %s", name, exc)
        return _refuse(503, str(exc))
    except (ValueError, RecursionError, PayloadInvalid) as exc:  # UnicodeDecodeError is a ValueError
        return _refuse(400, labelled(definition.event, str(exc)))
    except (DataError, IntegrityError) as exc:
        logger.warning("cart recovery app: refused a %s webhook the database cannot store: %s", name, exc)
        return _refuse(400, labelled(definition.event, _("a value the database cannot store")))
    except DatabaseError:
        logger.exception("cart recovery app: could not record a %s webhook", name)
        return _refuse(503, _("could not record it now; retry"))
    return HttpResponse(status=204)


def _bounded_lock_waits() -> None:
    """Inside the webhook's transaction a lock of ours is waited for at most ``LOCK_TIMEOUT``, as
    the plugin's hooks wait (past it: 503, and Saleor retries)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [LOCK_TIMEOUT])


def channel_path(request: HttpRequest, channel_slug: str, path: str) -> HttpResponse:
    """The plugin's ``/plugins/channel/<slug>/saleor_cart_recovery/<path>``. While the app is
    uninstalled the developer API still answers (its data are ours), and says so in its answer's
    ``extensions`` (the message in the caller's ``Accept-Language``, as the API's own)."""
    response = router.handle(request, channel_slug, path)
    if path.strip("/") == "graphql" and response.status_code == 200 and _uninstalled():
        body = json.loads(response.content)
        with speaking(from_accept_language(request.headers.get("Accept-Language"))):
            message = str(UNINSTALLED)
        body.setdefault("extensions", {})["cartRecovery"] = {
            "installation": "uninstalled",
            "message": message,
        }
        response.content = json.dumps(body)
    return response


def _uninstalled() -> bool:
    found = installation.stored()
    return found is None or not found.installed


def channel_less_path(request: HttpRequest, path: str) -> HttpResponse:
    """The plugin's ``/plugins/saleor_cart_recovery/<path>``: unsubscribe (always, installed or not),
    the Dashboard pages, the email providers' tracking."""
    return router.handle(request, None, path)
