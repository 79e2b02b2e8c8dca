"""Build the reminder email: plain data for the templates, then the message with its headers.

A reminder and its preview or test send are built by the same code; only their :class:`Links`
differ (a reminder's links are tracked and its unsubscribe link names the message).
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings as django_settings
from django.core.mail import EmailMultiAlternatives

from ..settings.channel import RecoverySettings
from ..shop import CartSnapshot, Shop
from .copy import email_copy
from .headers import feedback_id, one_off_message_id
from .i18n import format_money, language_for, strings
from .render import render_reminder
from .tokens import PREVIEW_TOKEN, ClickClaim, click_token, unsubscribe_token


@dataclass(frozen=True)
class Links:
    unsubscribe_url: str
    track: Callable[[str, str], str]  # (click target, plain URL) → the URL the email links to
    one_click_unsubscribe: bool  # RFC 8058 List-Unsubscribe headers (real reminders only)


def reminder_links(shop: Shop, channel_slug: str, message_id: int) -> Links:
    """Tracked links: the click endpoint counts the click and redirects to the link it derives
    itself for this message (see http.links.ClickEndpoint). The unsubscribe link is served whether
    or not the plugin is active anywhere: an opt-out must always work."""

    def tracked(target: str, url: str) -> str:
        return shop.endpoint_url(channel_slug, f"click/{click_token(ClickClaim(message_id, target))}")

    return Links(shop.link_url(f"unsubscribe/{unsubscribe_token(message_id)}"), tracked, True)


def preview_links(shop: Shop) -> Links:
    """Plain links, nothing counted; the unsubscribe link opens a page that explains it is a sample."""
    return Links(shop.link_url(f"unsubscribe/{PREVIEW_TOKEN}"), lambda target, url: url, False)


def build_context(
    snapshot: CartSnapshot,
    *,
    settings: RecoverySettings,
    step: int,
    unsubscribe_url: str,
    offer: dict | None = None,
) -> dict:
    """Everything the templates show, as strings and plain containers only (invariant 7).

    ``offer`` is the step's coupon / urgency / upsell data (:func:`.offers.build_offer`);
    a coupon's recovery link carries the code."""
    offer = offer or {}
    language = snapshot.language_code
    money = lambda amount: format_money(amount, snapshot.currency, language)  # noqa: E731
    look = settings.look
    return {
        "language": language_for(language),
        "t": strings(language, shop=snapshot.shop_name),
        "copy": email_copy(
            settings,
            step=step,
            language=language,
            offer=offer,
            shop_name=snapshot.shop_name,
            first_name=snapshot.first_name,
        ),
        "brand": {"color": look.brand_color, "text": look.brand_text_color, "logo_url": look.logo_url},
        "shop_name": snapshot.shop_name,
        "step": step,
        "lines": [
            {
                "product_name": line.product_name,
                "variant_name": line.variant_name if line.variant_name != line.product_name else "",
                "quantity": line.quantity,
                "unit_price": money(line.unit_price),
                "total": money(line.total),
                "image_url": line.image_url or "",
            }
            for line in snapshot.lines
        ],
        "total": money(snapshot.total),
        "recovery_url": offer.get("recovery_url") or settings.recovery_url(snapshot.token),
        "offer": offer,
        "unsubscribe_url": unsubscribe_url,
    }


def compose_email(
    settings: RecoverySettings,
    snapshot: CartSnapshot,
    *,
    step: int,
    variant: int,
    offer: dict | None = None,
    links: Links,
    to: str | None = None,
    subject_prefix: str = "",
    message_id: str | None = None,
) -> EmailMultiAlternatives:
    """The step's email for ``snapshot`` (to the checkout's address unless ``to`` is given).
    ``message_id`` is a reminder's own (:func:`.headers.reminder_message_id`); without it the
    email gets a fresh one, on the sender's domain too."""
    subjects = settings.subject_variants(step, snapshot.language_code)
    subject = subject_prefix + subjects[variant % len(subjects)]
    context = build_context(
        snapshot, settings=settings, step=step, unsubscribe_url=links.unsubscribe_url, offer=offer
    )
    context["recovery_url"] = links.track("cart", context["recovery_url"])
    for product in context["offer"].get("upsell", []):
        product["url"] = links.track(f"product:{product['slug']}", product["url"])
    html, text = render_reminder(context)
    from_email = settings.from_email or django_settings.DEFAULT_FROM_EMAIL
    headers = {
        "Auto-Submitted": "auto-generated",
        "Message-ID": message_id or one_off_message_id(from_email),
        "Feedback-ID": feedback_id(step, variant, from_email),
    }
    if links.one_click_unsubscribe:
        # RFC 8058 one-click unsubscribe: mail clients POST to the URL without a page visit.
        headers["List-Unsubscribe"] = f"<{links.unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=from_email,
        to=[to or snapshot.email],
        headers=headers,
    )
    message.attach_alternative(html, "text/html")
    return message
