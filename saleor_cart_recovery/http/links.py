"""The links in a reminder: one-click unsubscribe and tracked cart / product links.

Both carry their credential in a signed token and answer 400 for anything not signed by us, and
neither acts on a GET: mail-security scanners and link previewers fetch every link of a new email
(GET or HEAD) but neither submit forms nor run scripts. Unsubscribing takes the confirmation page's
POST; a click is counted from the POST that the click page's script sends.
"""

import base64
import hashlib
import logging
from dataclasses import dataclass

from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from ..email.offers import with_coupon
from ..email.tokens import PREVIEW_TOKEN, read_click_token, read_unsubscribe_token
from ..exceptions import BadToken
from ..languages import for_shopper, speaking
from ..models import RecoveryCart, RecoveryMessage
from ..series.suppression import suppress
from ..shop import get_shop, settings_or_none
from ..templating import render
from .base import Endpoint

logger = logging.getLogger(__name__)


# The click page's one script, the same bytes on every page so that its CSP can allow exactly it by
# hash: count the click with a POST to this same URL (a beacon survives the navigation), then open
# the link's own href, which the server derived.
CLICK_SCRIPT = (
    'var link=document.getElementById("go");'
    "try{navigator.sendBeacon(location.href)}catch(e){}"
    "location.replace(link.href);"
)
CLICK_SCRIPT_HASH = base64.b64encode(hashlib.sha256(CLICK_SCRIPT.encode()).digest()).decode()
CLICK_PAGE_CSP = (
    f"default-src 'none'; script-src 'sha256-{CLICK_SCRIPT_HASH}'; connect-src 'self'; "
    "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)
# How browsers and previewers mark a fetch that no person asked for: (header, word in its value).
_SPECULATIVE = (
    ("Sec-Purpose", "prefetch"),
    ("Sec-Purpose", "prerender"),
    ("Purpose", "prefetch"),
    ("Purpose", "prerender"),
    ("X-Moz", "prefetch"),
    ("X-Purpose", "preview"),
)


def _page(
    request: HttpRequest, cart_language: str | None, page: str, status: int = 200, **data
) -> HttpResponse:
    """One of the small pages (``link_page.html``), in the shopper's language: the cart's, else the
    browser's (a link that names no one, or a cart in a language we have no catalog for); its
    ``<html lang>`` names the language it speaks."""
    with speaking(for_shopper(cart_language, request.headers.get("Accept-Language"))):
        html = render("cart_recovery/link_page.html", {"page": page, **data})
    response = HttpResponse(html, status=status, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


@dataclass(frozen=True)
class Recipient:
    """Who an unsubscribe link speaks for, resolved from its token."""

    channel_slug: str
    email: str
    language: str


class UnsubscribeEndpoint(Endpoint):
    """GET shows a confirmation (link scanners must not unsubscribe anyone); POST unsubscribes,
    which is also what mail clients do for RFC 8058 one-click unsubscribe.

    Served on the channel's path and on the channel-less one (``/plugins/saleor_cart_recovery/…``)
    that Saleor routes whether or not the plugin is active: the channel then comes from the token."""

    methods = ("GET", "POST")
    serves_without_channel = True

    def validate(self, channel_slug: str | None, arg: str) -> Recipient | None:
        if arg == PREVIEW_TOKEN:
            return None  # the link of a preview or test send: nobody to unsubscribe
        claim = read_unsubscribe_token(arg)
        if claim.message_id is not None:
            message = (
                RecoveryMessage.objects.filter(pk=claim.message_id)
                .values("recipient", "cart__email", "cart__channel_slug", "cart__language_code")
                .first()
            )
            if message is None:
                raise BadToken("unsubscribe token for an unknown message")
            recipient = Recipient(
                message["cart__channel_slug"],
                message["recipient"] or message["cart__email"],
                message["cart__language_code"],
            )
        else:  # a link from an email sent by an earlier version
            language = (
                RecoveryCart.objects.filter(checkout_token=claim.checkout_token)
                .values_list("language_code", flat=True)
                .first()
            )
            recipient = Recipient(claim.channel_slug, claim.email, language or "")
        if channel_slug is not None and recipient.channel_slug != channel_slug:
            raise BadToken("token issued for another channel")
        return recipient

    def invalid(self, request):
        return _page(request, None, "invalid", status=400)

    def get(self, request, recipient):
        if recipient is None:  # the link of a preview or a test send: the browser's language
            return _page(request, None, "sample")
        return _page(request, recipient.language, "confirm", email=recipient.email)

    def post(self, request, recipient):
        if recipient is None:
            return _page(request, None, "sample")
        source = "one_click" if "List-Unsubscribe" in request.POST else "link"
        suppress(recipient.channel_slug, recipient.email, source=source)
        return _page(request, recipient.language, "done", email=recipient.email)


@dataclass(frozen=True)
class TrackedLink:
    """A tracked link resolved from its token: the reminder it counts for and what it leads to."""

    message_id: int
    channel_slug: str
    checkout_token: str
    voucher_code: str
    language: str
    target: str  # "cart" or "product:<slug>" (see email.tokens)


def _destination(link: TrackedLink) -> str | None:
    """Where the link leads, derived from the channel's settings (never from the request, so it
    cannot be an open redirect); ``None`` while the channel has no usable storefront."""
    settings = settings_or_none(link.channel_slug)
    if settings is None or not settings.storefront_url:
        return None
    kind, _colon, slug = link.target.partition(":")
    if kind == "product" and settings.offers.upsell_product_url:
        return settings.offers.product_url(slug)
    url = settings.recovery_url(link.checkout_token)
    return with_coupon(url, link.voucher_code) if link.voucher_code else url


def _speculative(request: HttpRequest) -> bool:
    """Whether the browser says it fetched without a person asking (prefetch, prerender, preview)."""
    return any(word in request.headers.get(header, "").lower() for header, word in _SPECULATIVE)


class ClickEndpoint(Endpoint):
    """A tracked link in a reminder. GET answers a small page whose script POSTs to the same URL (a
    beacon) and then opens the destination; only that POST counts the click. Mail scanners and link
    previewers fetch links with GET or HEAD and, unlike a person's browser, neither run scripts nor
    POST, so they count nothing (one that runs pages in a full browser is counted like a person); a
    POST marked as prefetch/prerender/preview does not count. Visitors without JavaScript reach the
    destination through the page's ``<noscript>`` refresh or its link, uncounted.

    HEAD is not served (405). Without a usable storefront (plugin off, no ``storefront_url``) GET and
    POST both answer 404 and count nothing; a forged token or another channel's message gets 400."""

    methods = ("GET", "POST")

    def validate(self, channel_slug: str | None, arg: str) -> TrackedLink:
        claim = read_click_token(arg)
        message = (
            RecoveryMessage.objects.filter(pk=claim.message_id, cart__channel_slug=channel_slug)
            .values_list(
                "id", "cart__channel_slug", "cart__checkout_token", "voucher_code", "cart__language_code"
            )
            .first()
        )
        if message is None:
            raise BadToken("click token for an unknown message or another channel")
        message_id, channel, checkout_token, voucher_code, language = message
        return TrackedLink(
            message_id, channel, checkout_token, voucher_code or "", language or "", claim.target
        )

    def get(self, request, link):
        url = _destination(link)
        if url is None:
            return HttpResponse(status=404)
        target = "product" if link.target.startswith("product:") else "cart"
        response = _page(request, link.language, "open", url=url, target=target, script=CLICK_SCRIPT)
        response["Referrer-Policy"] = "no-referrer"
        response["Content-Security-Policy"] = CLICK_PAGE_CSP
        return response

    def post(self, request, link):
        if _destination(link) is None:
            return HttpResponse(status=404)
        if not _speculative(request):
            now = timezone.now()
            with get_shop().write_access():
                RecoveryMessage.objects.filter(pk=link.message_id).update(
                    clicks=F("clicks") + 1, first_clicked_at=Coalesce("first_clicked_at", Value(now))
                )
        response = HttpResponse(status=204)
        response["Cache-Control"] = "no-store"
        return response
