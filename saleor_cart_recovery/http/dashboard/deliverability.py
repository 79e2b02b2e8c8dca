"""The Settings tab's deliverability warning: the channel's bounce or complaint rate above the
level where mailbox providers start to act, and what the owner should do about it
(``dashboard/deliverability_warning.html``)."""

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ...experiments.deliverability import rates, warning_for_display
from ...formatting import Formatter

# What to do, per rate: said to a shop owner, not to a mail administrator.
ADVICE = {
    "bounce": _(
        "Mail to dead addresses makes providers distrust the whole domain. Bounced addresses are "
        "suppressed already; check where shoppers type their address (typos, fake addresses) and that "
        "the provider reports bounces here (docs/deliverability.md)."
    ),
    "complaint": _(
        "Gmail filters or blocks senders above 0.1 % (0.3 % at most). Send fewer reminders (Reminder "
        "schedule, Frequency cap), mail only shoppers who consented (Audience), keep the unsubscribe "
        "link plain, and check SPF, DKIM and DMARC for the sender's domain (docs/deliverability.md)."
    ),
}


def deliverability_warnings(channel_slug: str, fmt: Formatter) -> list[dict]:
    """``[{"what", "window", "days", "rate", "limit", "advice", …}]`` (the rates written in ``fmt``'s
    locale), empty when the rates are fine."""
    found = rates(channel_slug, timezone.now())
    return [{**warning_for_display(w, fmt), "advice": ADVICE[w["what"]]} for w in found["warnings"]]
