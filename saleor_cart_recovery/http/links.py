"""The links in a reminder: one-click unsubscribe and tracked cart / product links.

Both carry their credential in a signed token and answer 400 for anything not signed by us.
"""

import logging
from dataclasses import dataclass

from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.http import HttpResponse, HttpResponseRedirect
from django.utils import timezone
from django.utils.html import escape

from ..email.i18n import language_for
from ..email.offers import with_coupon
from ..email.tokens import read_click_token, read_unsubscribe_token
from ..exceptions import BadToken
from ..models import RecoveryCart, RecoveryMessage
from ..series.suppression import suppress
from ..shop import get_shop, settings_or_none
from .base import Endpoint

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

    def validate(self, channel_slug: str | None, arg: str) -> Recipient:
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
        strings = _PAGES[language_for(request.headers.get("Accept-Language", "")[:2])]
        return _page(strings["invalid_title"], strings["invalid_text"], status=400)

    def get(self, request, recipient):
        strings = _PAGES[language_for(recipient.language)]
        form = (
            "<form method='post'><button type='submit' style='font-size:16px;padding:10px 20px'>"
            f"{escape(strings['confirm_button'])}</button></form>"
        )
        text = strings["confirm_text"].format(email=recipient.email)
        return _page(strings["confirm_title"], text, form=form)

    def post(self, request, recipient):
        source = "one_click" if "List-Unsubscribe" in request.POST else "link"
        suppress(recipient.channel_slug, recipient.email, source=source)
        strings = _PAGES[language_for(recipient.language)]
        return _page(strings["done_title"], strings["done_text"].format(email=recipient.email))


class ClickEndpoint(Endpoint):
    """A tracked link in a reminder: count the click, then redirect to the link the plugin derives
    for the message itself (never to a URL from the request, so it cannot be an open redirect)."""

    methods = ("GET",)

    def validate(self, channel_slug: str | None, arg: str) -> dict:
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
        settings = settings_or_none(message["cart__channel_slug"])
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
