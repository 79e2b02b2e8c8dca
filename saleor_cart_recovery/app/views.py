"""The app server's own endpoints: the manifest, the registration Saleor posts the token to, the
webhooks, and the plugin's paths mirrored under ``APP_URL`` through the core router.

Every request from Saleor is checked before anything changes: ``Saleor-Api-Url`` must be
``SALEOR_API_URL`` (403 otherwise), a webhook's ``Saleor-Signature`` must verify against that
Saleor's keys (401), its body must be the payload its subscription asks for (400). Saleor's keys
or API out of reach: 503, and Saleor retries.
"""

import json
import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from ..http import router
from . import auth, installation, manifest
from .client import SaleorUnavailable
from .jwks import KEYS, KeysUnavailable, SignatureInvalid, verify_body
from .webhooks import BY_PATH, PayloadInvalid

logger = logging.getLogger(__name__)

API_URL_HEADER = "Saleor-Api-Url"
SIGNATURE_HEADER = "Saleor-Signature"
EVENT_HEADER = "Saleor-Event"
UNINSTALLED = (
    "Cart Recovery is uninstalled from Saleor: no reminder goes out. Install the app again "
    "(Extensions → Install external app) to resume."
)


def _refuse(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _from_our_saleor(request: HttpRequest) -> bool:
    return installation.same_saleor(request.headers.get(API_URL_HEADER))


@require_GET
def manifest_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(manifest.build(settings.APP_URL))


@require_POST
def register(request: HttpRequest) -> JsonResponse:
    """Saleor posts ``{"auth_token": …}`` at install. Only ``SALEOR_API_URL`` may install; the token
    is stored only once Saleor confirms it is an app's (the install then shows as failed in Saleor
    when it is not), and never appears in a log or an answer."""
    if not _from_our_saleor(request):
        return _refuse(403, f"{API_URL_HEADER} is not the Saleor this app serves")
    try:
        token = json.loads(request.body or b"{}").get("auth_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token.strip():
        return _refuse(400, "auth_token: a non-empty string is required")

    try:
        KEYS.refresh(settings.SALEOR_API_URL)
    except KeysUnavailable as exc:
        return _refuse(503, str(exc))
    try:
        app = (auth.ask_with(token, auth.APP) or {}).get("app")
    except SaleorUnavailable as exc:
        return _refuse(503, str(exc))
    if not app or not app.get("id"):
        return _refuse(403, "Saleor does not accept this token as an app's")
    installation.record(
        app_id=app["id"], token=token.strip(), permissions=[p["code"] for p in app.get("permissions") or ()]
    )
    return JsonResponse({"success": True})


@require_POST
def webhook(request: HttpRequest, name: str) -> HttpResponse:
    definition = BY_PATH.get(f"webhooks/{name}")
    if definition is None:
        return _refuse(404, f"no webhook {name}")
    if not _from_our_saleor(request):
        return _refuse(403, f"{API_URL_HEADER} is not the Saleor this app serves")
    try:
        verify_body(request.body, request.headers.get(SIGNATURE_HEADER, ""))
    except SignatureInvalid as exc:
        logger.warning("cart recovery app: refused a %s webhook: %s", name, exc)
        return _refuse(401, f"{SIGNATURE_HEADER}: {exc}")
    except KeysUnavailable as exc:
        return _refuse(503, str(exc))
    event = request.headers.get(EVENT_HEADER, "")
    if event.upper() != definition.event:
        return _refuse(400, f"{EVENT_HEADER}: expected {definition.event.lower()}, got {event!r}")
    try:
        payload = json.loads(request.body)
        if not isinstance(payload, dict):
            raise PayloadInvalid("the body is not a JSON object")
        definition.handler(payload)
    except (ValueError, PayloadInvalid) as exc:
        return _refuse(400, f"{definition.event}: {exc}")
    except DatabaseError:
        logger.exception("cart recovery app: could not record a %s webhook", name)
        return _refuse(503, "could not record it now; retry")
    return HttpResponse(status=204)


def channel_path(request: HttpRequest, channel_slug: str, path: str) -> HttpResponse:
    """The plugin's ``/plugins/channel/<slug>/saleor_cart_recovery/<path>``. While the app is
    uninstalled the developer API still answers (its data are ours), and says so in its answer's
    ``extensions``."""
    response = router.handle(request, channel_slug, path)
    if path.strip("/") == "graphql" and response.status_code == 200 and _uninstalled():
        body = json.loads(response.content)
        body.setdefault("extensions", {})["cartRecovery"] = {
            "installation": "uninstalled",
            "message": UNINSTALLED,
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
