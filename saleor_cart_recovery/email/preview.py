"""Previews and test sends: a step's email exactly as the series would build it, for a real
checkout or a sample cart, with nothing issued, tracked or recorded.

The same functions as a reminder build it (:func:`.offers.build_offer`, :func:`.compose.compose_email`);
only the coupon (a sample code, no voucher) and the links (untracked, a sample unsubscribe page)
differ. The developer API's ``preview`` and ``sendTest`` use it.
"""

import re
from dataclasses import dataclass, replace

from django.core.mail import EmailMultiAlternatives
from django.utils import timezone
from django.utils.translation import gettext as _

from ..exceptions import CartRecoveryError
from ..models import RecoveryCart
from ..settings.channel import RecoverySettings
from ..shop import Shop
from .compose import compose_email, preview_links
from .offers import build_offer, content_for_step, coupon_due, offer_facts
from .transport import close_connection, open_connection, send_on

SAMPLE_CODE = "SAMPLE-CODE"
TEST_PREFIX = "[Test] "
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})?$")


class PreviewError(CartRecoveryError):
    """A preview or test send cannot be built as asked; ``field`` names the argument at fault."""

    def __init__(self, field: str | None, message: str):
        self.field, self.message = field, message
        super().__init__(message)


@dataclass(frozen=True)
class Preview:
    subject: str
    html: str
    text: str
    email: EmailMultiAlternatives


def build_preview(
    shop: Shop,
    settings: RecoverySettings,
    channel_slug: str,
    *,
    step: int,
    checkout_token: str | None = None,
    language: str | None = None,
    variant: int = 0,
    to: str | None = None,
    test: bool = False,
) -> Preview:
    """The step's email for the checkout (of this channel) or a sample cart; raises
    :class:`PreviewError` for a step, checkout, language or variant that does not exist."""
    if not 1 <= step <= settings.steps:
        raise PreviewError("step", _("The schedule has steps 1 to %(steps)s.") % {"steps": settings.steps})
    if language is not None and not _LANGUAGE.match(language):
        raise PreviewError(
            "language",
            _("'%(language)s' is not a language code such as en, tr or pt-BR.") % {"language": language},
        )
    if checkout_token:
        snapshot = shop.load_carts([checkout_token]).get(checkout_token)
        if snapshot is None or snapshot.channel_slug != channel_slug:
            raise PreviewError("checkoutToken", _("No checkout with this token in this channel."))
        if not snapshot.lines:
            raise PreviewError(
                "checkoutToken", _("The checkout has no lines: its reminder would not go out.")
            )
    else:
        snapshot = shop.sample_cart(channel_slug, language or "en")
    if language is not None:
        snapshot = replace(snapshot, language_code=language)
    variants = settings.subject_variants(step, snapshot.language_code)
    if not 0 <= variant < len(variants):
        raise PreviewError(
            "variant",
            _("Step %(step)s has subject variants 0 to %(last)s.")
            % {"step": step, "last": len(variants) - 1},
        )
    now = timezone.now()
    content = content_for_step(settings.offers, step, settings.steps)
    coupon = settings.offers.coupon if coupon_due(settings.offers, step) else None
    prices_then = (
        RecoveryCart.objects.filter(checkout_token=checkout_token)
        .values_list("abandoned_prices", flat=True)
        .first()
        if checkout_token
        else None
    )
    offer = build_offer(
        settings,
        snapshot,
        content=content,
        voucher_code=SAMPLE_CODE if coupon else "",
        voucher_expires_at=now + coupon.valid_for if coupon else None,
        prices_then=prices_then,
        now=now,
        facts=offer_facts(shop, [(settings, snapshot, content)])[0],
    )
    email = compose_email(
        settings,
        snapshot,
        step=step,
        variant=variant,
        offer=offer,
        links=preview_links(shop),
        to=to,
        subject_prefix=TEST_PREFIX if test else "",
    )
    html = next(body for body, mimetype in email.alternatives if mimetype == "text/html")
    return Preview(str(email.subject), str(html), str(email.body), email)


def send_test(settings: RecoverySettings, preview: Preview) -> None:
    """Hand the test email to the channel's mail server now; raises the transport's errors
    (:class:`..exceptions.SendFailed` and friends) for the caller to report."""
    connection = open_connection(settings.smtp)
    try:
        send_on(connection, preview.email)
    finally:
        close_connection(connection)
