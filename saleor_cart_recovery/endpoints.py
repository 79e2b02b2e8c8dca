"""HTTP endpoints served under ``/plugins/channel/<slug>/saleor_cart_recovery/<path>``.

Each endpoint validates first (signed token, channel) and answers 4xx for anything it cannot
trust; only then does it act. Saleor does no authentication for plugin URLs.
"""

import logging

from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.utils import timezone
from django.utils.html import escape

from . import api
from .exceptions import BadToken
from .i18n import language_for
from .models import RecoveryCart, RecoveryMessage
from .offers import with_coupon
from .report import build_report
from .report_page import parse_since, render_report_page
from .shop import get_shop
from .suppression import suppress
from .tokens import UnsubscribeClaim, read_click_token, read_unsubscribe_token

logger = logging.getLogger(__name__)

_PAGES = {
    "en": {
        "confirm_title": "Unsubscribe from cart reminders?",
        "confirm_text": "We will stop sending cart reminders to {email}.",
        "confirm_button": "Unsubscribe",
        "done_title": "You are unsubscribed",
        "done_text": "{email} will not get cart reminders from this shop any more.",
        "invalid_title": "This link is not valid",
        "invalid_text": "The unsubscribe link is damaged or was not issued by this shop.",
    },
    "tr": {
        "confirm_title": "Sepet hatırlatmalarından çıkılsın mı?",
        "confirm_text": "{email} adresine sepet hatırlatması göndermeyi bırakacağız.",
        "confirm_button": "Abonelikten çık",
        "done_title": "Abonelikten çıktınız",
        "done_text": "{email} artık bu mağazadan sepet hatırlatması almayacak.",
        "invalid_title": "Bu bağlantı geçerli değil",
        "invalid_text": "Abonelikten çıkma bağlantısı bozuk ya da bu mağaza tarafından verilmemiş.",
    },
}


def _page(title: str, text: str, status: int = 200, form: str = "") -> HttpResponse:
    body = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title></head>"
        "<body style='font-family:Helvetica,Arial,sans-serif;max-width:480px;margin:48px auto;"
        "padding:0 16px'>"
        f"<h1 style='font-size:22px'>{escape(title)}</h1><p>{escape(text)}</p>{form}</body></html>"
    )
    response = HttpResponse(body, status=status, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


class Endpoint:
    """Validate, then act. Subclasses implement :meth:`validate` and the HTTP methods they allow."""

    methods: tuple[str, ...] = ()
    needs_arg = True  # the path carries a credential or id after the endpoint's name

    def __call__(self, request: HttpRequest, channel_slug: str, arg: str) -> HttpResponse:
        if request.method not in self.methods:
            response = HttpResponse(status=405)
            response["Allow"] = ", ".join(self.methods)
            return response
        refused = self.authorize(request, channel_slug)
        if refused is not None:
            return refused
        try:
            claim = self.validate(channel_slug, arg)
        except BadToken:
            return self.invalid(request)
        return getattr(self, request.method.lower())(request, claim)

    def authorize(self, request: HttpRequest, channel_slug: str) -> HttpResponse | None:
        """A 401/403 response for a request that may not use this endpoint; links in emails
        carry their credential in the token instead, so the default lets everyone through."""
        return None

    def validate(self, channel_slug: str, arg: str):
        raise NotImplementedError

    def invalid(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(status=400)


class UnsubscribeEndpoint(Endpoint):
    """GET shows a confirmation (link scanners must not unsubscribe anyone); POST unsubscribes,
    which is also what mail clients do for RFC 8058 one-click unsubscribe."""

    methods = ("GET", "POST")

    def validate(self, channel_slug: str, arg: str) -> UnsubscribeClaim:
        claim = read_unsubscribe_token(arg)
        if claim.channel_slug != channel_slug:
            raise BadToken("token issued for another channel")
        return claim

    def invalid(self, request):
        strings = _PAGES[language_for(request.headers.get("Accept-Language", "")[:2])]
        return _page(strings["invalid_title"], strings["invalid_text"], status=400)

    def _strings(self, claim):
        language = (
            RecoveryCart.objects.filter(checkout_token=claim.checkout_token)
            .values_list("language_code", flat=True)
            .first()
        )
        return _PAGES[language_for(language)]

    def get(self, request, claim):
        strings = self._strings(claim)
        form = (
            "<form method='post'><button type='submit' style='font-size:16px;padding:10px 20px'>"
            f"{escape(strings['confirm_button'])}</button></form>"
        )
        return _page(strings["confirm_title"], strings["confirm_text"].format(email=claim.email), form=form)

    def post(self, request, claim):
        unsubscribe(claim, source="one_click" if "List-Unsubscribe" in request.POST else "link")
        strings = self._strings(claim)
        return _page(strings["done_title"], strings["done_text"].format(email=claim.email))


def unsubscribe(claim: UnsubscribeClaim, *, source: str) -> None:
    """Record the suppression and stop every live series for the address in the channel."""
    suppress(claim.channel_slug, claim.email, source=source)


class ClickEndpoint(Endpoint):
    """A tracked link in a reminder: count the click, then redirect to the link the plugin derives
    for the message itself (never to a URL from the request, so it cannot be an open redirect)."""

    methods = ("GET",)

    def validate(self, channel_slug: str, arg: str) -> dict:
        claim = read_click_token(arg)
        message = (
            RecoveryMessage.objects.filter(pk=claim.message_id, cart__channel_slug=channel_slug)
            .values("id", "voucher_code", "cart__checkout_token", "cart__channel_slug")
            .first()
        )
        if message is None:
            raise BadToken("click token for an unknown message or another channel")
        return {**message, "target": claim.target}

    def get(self, request, message):
        shop = get_shop()
        settings = shop.channel_settings(message["cart__channel_slug"])
        if settings is None or not settings.storefront_url:
            return HttpResponse(status=404)
        kind, _, slug = message["target"].partition(":")
        if kind == "product" and settings.offers.upsell_product_url:
            url = settings.offers.product_url(slug)
        else:
            url = settings.recovery_url(message["cart__checkout_token"])
            if message["voucher_code"]:
                url = with_coupon(url, message["voucher_code"])
        now = timezone.now()
        with shop.write_access():
            RecoveryMessage.objects.filter(pk=message["id"]).update(
                clicks=F("clicks") + 1, first_clicked_at=Coalesce("first_clicked_at", Value(now))
            )
        response = HttpResponseRedirect(url)
        response["Cache-Control"] = "no-store"
        response["Referrer-Policy"] = "no-referrer"
        return response


class StaffEndpoint(Endpoint):
    """For staff users and apps with MANAGE_CHECKOUTS or MANAGE_PLUGINS only (Saleor's own tokens):
    401 without valid credentials, 403 without the permission or without access to the channel."""

    def authorize(self, request, channel_slug):
        allowed = get_shop().staff_can_view_reports(request, channel_slug)
        if allowed is None:
            response = self.refuse("authentication required", 401)
            response["WWW-Authenticate"] = 'Bearer realm="saleor"'
            return response
        if not allowed:
            return self.refuse(
                "MANAGE_CHECKOUTS or MANAGE_PLUGINS permission (and access to this channel) required", 403
            )
        return None

    def refuse(self, message: str, status: int) -> HttpResponse:
        return HttpResponse(message, status=status, content_type="text/plain")


class ReportEndpoint(StaffEndpoint):
    """The owner's report page."""

    methods = ("GET",)
    needs_arg = False

    def validate(self, channel_slug: str, arg: str) -> str:
        if arg:
            raise BadToken("the report takes no argument")
        return channel_slug

    def invalid(self, request):
        return HttpResponse(status=404)

    def get(self, request, channel_slug):
        since_text = request.GET.get("since", "")
        try:
            since = parse_since(since_text) if since_text else None
        except ValueError as exc:
            return HttpResponse(str(exc), status=400, content_type="text/plain")
        shop = get_shop()
        reports = build_report(channel=channel_slug, since=since, settings_for=shop.channel_settings)
        response = HttpResponse(
            render_report_page(channel_slug, reports, since=since_text),
            content_type="text/html; charset=utf-8",
        )
        response["Cache-Control"] = "no-store"
        response["X-Robots-Tag"] = "noindex"
        return response


class GraphQLEndpoint(StaffEndpoint):
    """The developer API (:mod:`api`): POST ``{"query", "variables", "operationName"}`` as JSON;
    every answer is JSON, a body that is no GraphQL request gets 400."""

    methods = ("POST",)
    needs_arg = False

    def refuse(self, message, status):
        return _json({"errors": [{"message": message}]}, status)

    def validate(self, channel_slug: str, arg: str) -> str:
        if arg:
            raise BadToken("the API takes no argument")
        return channel_slug

    def invalid(self, request):
        return HttpResponse(status=404)

    def post(self, request, channel_slug):
        try:
            operation = api.parse_body(request.body)
        except api.BadRequest as exc:
            return _json({"errors": [{"message": str(exc)}]}, 400)
        return _json(*api.execute(operation, channel_slug))


def _json(data: dict, status: int) -> JsonResponse:
    response = JsonResponse(data, status=status)
    response["Cache-Control"] = "no-store"
    return response


ROUTES = {
    "unsubscribe": UnsubscribeEndpoint(),
    "click": ClickEndpoint(),
    "report": ReportEndpoint(),
    "graphql": GraphQLEndpoint(),
}


def handle(request: HttpRequest, channel_slug: str, path: str) -> HttpResponse:
    """Route ``<name>/<argument>`` to its endpoint; unknown paths are 404."""
    name, _, arg = path.strip("/").partition("/")
    endpoint = ROUTES.get(name)
    if endpoint is None or (endpoint.needs_arg and not arg) or "/" in arg:
        return HttpResponse(status=404)
    return endpoint(request, channel_slug, arg)
