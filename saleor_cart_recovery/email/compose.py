"""Build the reminder email: plain data for the templates, then the message with its headers."""

from django.conf import settings as django_settings
from django.core.mail import EmailMultiAlternatives

from ..settings.channel import RecoverySettings
from ..shop import CartSnapshot, Shop
from .i18n import format_money, language_for, strings
from .render import render_reminder
from .tokens import ClickClaim, click_token, unsubscribe_token


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
    return {
        "language": language_for(language),
        "t": strings(language, shop=snapshot.shop_name),
        "shop_name": snapshot.shop_name,
        "step": step,
        "is_last_step": step == settings.steps,
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
    shop: Shop,
    settings: RecoverySettings,
    snapshot: CartSnapshot,
    *,
    step: int,
    variant: int,
    offer: dict | None = None,
    message_id: int,
) -> EmailMultiAlternatives:
    subjects = settings.subject_variants(step, snapshot.language_code)
    subject = subjects[variant % len(subjects)]
    # Served whether or not the plugin is active anywhere: an opt-out must always work.
    unsubscribe_url = shop.link_url(f"unsubscribe/{unsubscribe_token(message_id)}")
    context = build_context(
        snapshot, settings=settings, step=step, unsubscribe_url=unsubscribe_url, offer=offer
    )

    # Tracked links: the click endpoint counts the click and redirects to the link it derives
    # itself for this message (see http.links.ClickEndpoint).
    def tracked(target: str) -> str:
        return shop.endpoint_url(
            snapshot.channel_slug, f"click/{click_token(ClickClaim(message_id, target))}"
        )

    context["recovery_url"] = tracked("cart")
    for product in context["offer"].get("upsell", []):
        product["url"] = tracked(f"product:{product['slug']}")
    html, text = render_reminder(context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.from_email or django_settings.DEFAULT_FROM_EMAIL,
        to=[snapshot.email],
        headers={
            # RFC 8058 one-click unsubscribe: mail clients POST to the URL without a page visit.
            "List-Unsubscribe": f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
        },
    )
    message.attach_alternative(html, "text/html")
    return message
