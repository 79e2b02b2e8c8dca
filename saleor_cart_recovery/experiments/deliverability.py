"""Bounce and complaint rates per channel over the last 7 and 30 days: the numbers mailbox
providers judge a sender by (Gmail acts on complaints above 0.1 % and blocks above 0.3 %; a bounce
rate above 2 % says the list holds dead addresses).

- **sent**: reminders handed to the mail server in the window;
- **bounced**: reminders refused for good — by the mail server while sending, or reported later by
  the provider as a hard bounce or permanent rejection (a soft bounce that reached the limit
  suppresses the address but is counted under **soft_bounced**, like every final soft bounce);
- **complained**, **unsubscribed**: spam complaints and unsubscribes the provider reported;
- **delivered**: deliveries the provider reported. When it reports them, the complaint rate is
  per delivered message (what Gmail measures); else per sent one.

Only events matched to one of our reminders count: a bounce of an order confirmation to the same
address suppresses it but says nothing about our sending. Events count in the window they
occurred in. Two queries per channel whatever the window, each
bounded by the window (messages by ``handed_over_at``, events by the (channel, kind, time) index).
"""

from datetime import datetime, timedelta

from django.db.models import Count, Q

from ..formatting import Formatter
from ..models import MessageStatus, ProviderEvent, ProviderEventKind, Reason, RecoveryMessage

WINDOWS = (7, 30)  # days
BOUNCE_WARNING = 0.02  # above it the owner is warned: clean the list, check the address capture
COMPLAINT_WARNING = 0.001  # Gmail's level; above it the owner is warned
# Fewer messages than this in a window say too little for a warning (one bounce in ten is 10 %).
MIN_SENT_FOR_WARNING = 20


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def rates(channel_slug: str, now: datetime) -> dict:
    """``{"7d": {...}, "30d": {...}, "warnings": [...]}`` for the channel (see the module docstring);
    a warning is ``{"what": "bounce"|"complaint", "window": "7d", "days": 7, "rate_pct", "limit_pct"}``
    (the shorter window first: the one that shows a recent change)."""
    since = {days: now - timedelta(days=days) for days in WINDOWS}
    longest = since[max(WINDOWS)]
    messages = RecoveryMessage.objects.filter(
        cart__channel_slug=channel_slug, handed_over_at__gte=longest, handed_over_at__lte=now
    ).aggregate(
        **{f"sent_{d}": Count("id", filter=Q(handed_over_at__gte=since[d])) for d in WINDOWS},
        **{
            f"refused_{d}": Count(
                "id",
                filter=Q(handed_over_at__gte=since[d], status=MessageStatus.FAILED, reason=Reason.BOUNCED),
            )
            for d in WINDOWS
        },
    )
    events = ProviderEvent.objects.filter(
        channel_slug=channel_slug, occurred_at__gte=longest, occurred_at__lte=now, message__isnull=False
    ).aggregate(
        **{
            f"{kind}_{d}": Count("id", filter=Q(kind=kind, occurred_at__gte=since[d]))
            for kind in ProviderEventKind.values
            for d in WINDOWS
        }
    )
    result: dict = {"warnings": []}
    for days in WINDOWS:
        sent = messages[f"sent_{days}"]
        delivered = events[f"delivered_{days}"]
        bounced = messages[f"refused_{days}"] + events[f"bounced_{days}"]
        complained = events[f"complained_{days}"]
        window = {
            "days": days,
            "sent": sent,
            "delivered": delivered,
            "bounced": bounced,
            "soft_bounced": events[f"soft_bounced_{days}"],
            "complained": complained,
            "unsubscribed": events[f"unsubscribed_{days}"],
            "bounce_rate_pct": _pct(bounced, sent),
            "complaint_rate_pct": _pct(complained, delivered or sent),
        }
        result[f"{days}d"] = window
        if sent >= MIN_SENT_FOR_WARNING:
            for what, limit in (("bounce", BOUNCE_WARNING), ("complaint", COMPLAINT_WARNING)):
                rate = window[f"{what}_rate_pct"]
                if (
                    rate is not None
                    and rate > limit * 100
                    and all(w["what"] != what for w in result["warnings"])
                ):
                    result["warnings"].append(
                        {
                            "what": what,
                            "window": f"{days}d",
                            "days": days,
                            "rate_pct": rate,
                            "limit_pct": round(limit * 100, 2),
                        }
                    )
    return result


def for_display(found: dict | None, fmt: Formatter) -> dict | None:
    """:func:`rates` as the pages' include (``includes/deliverability_rates.html``) reads it: counts
    and rates written for people in ``fmt``'s locale ("%2,5" in Turkish, "2,5 %" in German)."""
    if not found:
        return None
    windows = [
        {
            "days": window["days"],
            **{
                name: fmt.number(window[name])
                for name in ("sent", "delivered", "bounced", "soft_bounced", "complained", "unsubscribed")
            },
            "bounce_rate": fmt.pct(window["bounce_rate_pct"]),
            "complaint_rate": fmt.pct(window["complaint_rate_pct"]),
        }
        for window in (found[f"{days}d"] for days in WINDOWS)
    ]
    return {"windows": windows, "warnings": [warning_for_display(w, fmt) for w in found["warnings"]]}


def warning_for_display(warning: dict, fmt: Formatter) -> dict:
    """A warning of :func:`rates` with its ``rate`` and ``limit`` written in ``fmt``'s locale."""
    return {**warning, "rate": fmt.pct(warning["rate_pct"]), "limit": fmt.pct(warning["limit_pct"])}
