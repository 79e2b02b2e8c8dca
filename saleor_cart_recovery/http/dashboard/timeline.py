"""A cart's story for support staff: every recorded decision in time order, each in words — the
answer to "why did this cart get no email?" without reading tables."""

from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext, ngettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from ...formatting import Formatter
from ...models import CartStatus, MessageStatus, ProviderEvent, Reason, RecoveryCart
from ...series.provider_events import KIND_TEXT, provider_name
from ...series.suppression import reason_for, reported_by

# What each recorded reason means, said the way support staff would explain it to the shop owner.
REASONS = {
    Reason.PURCHASED: _("the shopper placed an order"),
    Reason.CART_EMPTY: _("the cart was empty"),
    Reason.CHECKOUT_DELETED: _("the checkout no longer exists in Saleor"),
    Reason.NO_EMAIL: _("the checkout has no email address"),
    Reason.UNSUBSCRIBED: _("the address unsubscribed in this channel"),
    Reason.PLUGIN_INACTIVE: _("Cart Recovery was switched off in this channel"),
    Reason.SEND_REFUSED: _("the mail server refused the message (not the address)"),
    Reason.RETRIES_EXHAUSTED: _("the mail server could not be reached, retries ran out"),
    Reason.INTERRUPTED: _("the connection broke during the transfer; not resent, to never send twice"),
    Reason.HOLDOUT: _("the shopper is in the holdout group (gets no email, for measuring the lift)"),
    Reason.SERIES_FINISHED: _("every step of the series went out"),
    Reason.STEP_REMOVED: _("the step was removed from the schedule"),
    Reason.PREPARE_FAILED: _("the email could not be prepared (logged)"),
    Reason.MANUAL: _("stopped by staff through the API"),
    Reason.BOUNCED: _("the address bounced: it cannot receive mail"),
    Reason.COMPLAINED: _("the shopper marked a reminder as spam"),
    Reason.CONFIGURATION_INVALID: _("the channel's settings are invalid"),
    Reason.PLANNING_FAILED: _("an error while planning (logged)"),
    Reason.NO_CONSENT: _("no marketing consent in the checkout's or the account's metadata"),
    Reason.FREQUENCY_CAP: _("the address had its allowed reminders for the period (frequency cap)"),
    Reason.QUIET_HOURS: _("waiting for the shopper's quiet hours to end"),
    Reason.BELOW_MIN_TOTAL: _("the cart is below the minimum total"),
}
VARIANTS = "ABCDEFGHIJ"
# Why an address is suppressed, as a provider reported it: one sentence per reason.
REPORTED_SUPPRESSIONS = {
    "bounced": _("The address bounced, reported by %(provider)s; no more reminders in this channel."),
    "complained": _(
        "The shopper marked a reminder as spam, reported by %(provider)s; no more reminders in this channel."
    ),
    "unsubscribed": _("The shopper unsubscribed at %(provider)s; no more reminders in this channel."),
}
# What a step's email is about (the step_content setting's words).
CONTENTS = {
    "reminder": pgettext_lazy("step content", "reminder"),
    "help": pgettext_lazy("step content", "help"),
    "urgency": pgettext_lazy("step content", "urgency"),
    "discount": pgettext_lazy("step content", "discount"),
}


# A cart's status as the pages show it (the stored value stays the CSS class).
STATUSES = {
    CartStatus.ACTIVE: pgettext_lazy("cart status", "active"),
    CartStatus.FINISHED: pgettext_lazy("cart status", "finished"),
    CartStatus.CONVERTED: pgettext_lazy("cart status", "converted"),
    CartStatus.STOPPED: pgettext_lazy("cart status", "stopped"),
}
# A step still waiting to go out, as the story's title says it.
WAITING = {
    MessageStatus.SCHEDULED.value: _("Step %(step)s scheduled"),
    MessageStatus.SENDING.value: _("Step %(step)s being sent"),
}


def reason_text(reason: str) -> str:
    return str(REASONS.get(reason, reason)) if reason else ""  # type: ignore[call-overload]


def status_text(status: str) -> str:
    return str(STATUSES.get(status, status))  # type: ignore[call-overload]


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str  # activity, planned, sent, skipped, failed, waiting, clicked, coupon, order, stopped,
    # unsubscribe, provider, due
    title: str
    detail: str = ""


def _reported(event: ProviderEvent, step: int | None) -> Event:
    """What the mail provider reported about a step's email (or, ``step`` ``None``, about the
    address without naming one of ours)."""
    said = {
        "step": step,
        "kind": KIND_TEXT.get(event.kind) or event.kind,  # type: ignore[call-overload]
        "provider": provider_name(event.provider),
    }
    if step is None:
        title = gettext("The address: %(kind)s (reported by %(provider)s)") % said
    else:
        title = gettext("Step %(step)s: %(kind)s (reported by %(provider)s)") % said
    return Event(event.occurred_at, "provider", title, event.description)


def timeline(
    cart: RecoveryCart,
    suppression: tuple[str, datetime] | None,
    fmt: Formatter,
    address_events: list[ProviderEvent] | tuple = (),
) -> list[dict]:
    """The events of ``cart`` (its messages and their provider events prefetched) oldest first;
    ``suppression`` is the address's opt-out in the channel (source, when), if any;
    ``address_events`` what the mail provider reported about the address without naming a message."""
    events = [
        Event(
            cart.created_at,
            "activity",
            gettext("Cart first seen"),
            " ".join(
                part
                for part in (
                    gettext("In the holdout group: gets no email.") if cart.holdout else "",
                    gettext("Cadence %(cadence)s.") % {"cadence": cart.cadence} if cart.cadence else "",
                    gettext("Experiment %(experiment)s.") % {"experiment": cart.experiment}
                    if cart.experiment
                    else "",
                )
                if part
            ),
        )
    ]
    if cart.last_activity_at != cart.created_at:
        events.append(
            Event(
                cart.last_activity_at,
                "activity",
                gettext("Last cart activity"),
                gettext("The series is timed from here."),
            )
        )
    for message in sorted(cart.messages.all(), key=lambda m: m.step):
        step = {"step": message.step}
        variant = (
            gettext("subject %(variant)s") % {"variant": VARIANTS[message.variant]}
            if message.variant < len(VARIANTS)
            else ""
        )
        events.append(
            Event(
                message.planned_at,
                "planned",
                gettext("Step %(step)s planned") % step,
                ", ".join(
                    part for part in (str(CONTENTS.get(message.content, message.content)), variant) if part
                ),
            )
        )
        if message.status == MessageStatus.SENT and message.sent_at:
            events.append(
                Event(
                    message.sent_at,
                    "sent",
                    gettext("Step %(step)s sent to %(recipient)s") % {**step, "recipient": message.recipient},
                    gettext("“%(subject)s”") % {"subject": message.subject},
                )
            )
        elif message.status == MessageStatus.SKIPPED:
            events.append(
                Event(
                    message.updated_at,
                    "skipped",
                    gettext("Step %(step)s not sent") % step,
                    reason_text(message.reason),
                )
            )
        elif message.status == MessageStatus.FAILED:
            events.append(
                Event(
                    message.updated_at,
                    "failed",
                    gettext("Step %(step)s failed") % step,
                    reason_text(message.reason) or message.error,
                )
            )
        else:
            waiting = reason_text(message.reason) or gettext("waiting for a worker to send it")
            if message.attempt_after:
                waiting = gettext("%(waiting)s (from %(when)s)") % {
                    "waiting": waiting,
                    "when": fmt.when(message.attempt_after),
                }
            title = str(WAITING.get(message.status, _("Step %(step)s planned"))) % step
            events.append(Event(message.updated_at, "waiting", title, waiting))
        if message.voucher_code:
            expires = fmt.when(message.voucher_expires_at) if message.voucher_expires_at else "—"
            events.append(
                Event(
                    message.sent_at or message.updated_at,
                    "coupon",
                    gettext("Step %(step)s coupon %(code)s") % {**step, "code": message.voucher_code},
                    gettext("single use, valid until %(expires)s") % {"expires": expires},
                )
            )
        events += [_reported(event, message.step) for event in message.provider_events.all()]
        if message.first_clicked_at:
            events.append(
                Event(
                    message.first_clicked_at,
                    "clicked",
                    gettext("Step %(step)s clicked") % step,
                    ngettext(
                        "%(clicks)s click on the email's links in a browser",
                        "%(clicks)s clicks on the email's links in a browser",
                        message.clicks,
                    )
                    % {"clicks": message.clicks},
                )
            )
    if cart.converted_at:
        total = fmt.money(cart.order_total, cart.order_currency)
        details = [gettext("total %(total)s") % {"total": total}]
        if cart.order_refunded:
            refunded = fmt.money(cart.order_refunded, cart.order_currency)
            details.append(gettext("refunded %(refunded)s") % {"refunded": refunded})
        if cart.order_cancelled:
            details.append(gettext("cancelled"))
        number = {"number": cart.order_number}
        title = {
            "token": gettext("Order %(number)s from this checkout") % number,
            "email": gettext("Order %(number)s by the same address") % number,
        }.get(cart.conversion_match, gettext("Order %(number)s") % number)
        events.append(Event(cart.converted_at, "order", title, ", ".join(details)))
    if cart.status in (CartStatus.STOPPED, CartStatus.FINISHED):
        title = (
            gettext("Series finished") if cart.status == CartStatus.FINISHED else gettext("Series stopped")
        )
        events.append(Event(cart.updated_at, "stopped", title, reason_text(cart.stop_reason)))
    events += [_reported(event, None) for event in address_events]
    if suppression is not None:
        source, at = suppression
        reason, provider = reason_for(source), reported_by(source)
        title = {"bounced": gettext("Address bounced"), "complained": gettext("Marked as spam")}.get(
            reason, gettext("Unsubscribed")
        )
        if provider and reason in REPORTED_SUPPRESSIONS:
            detail = str(REPORTED_SUPPRESSIONS[reason]) % {"provider": provider_name(provider)}
        else:
            detail = gettext("Source: %(source)s; no more reminders in this channel.") % {"source": source}
        events.append(Event(at, "unsubscribe", title, detail))
    events.sort(key=lambda event: event.at)
    if cart.next_due_at:
        events.append(
            Event(
                cart.next_due_at,
                "due",
                gettext("Next look"),
                gettext("The dispatcher looks at the cart again then."),
            )
        )
    return [
        {
            "when": fmt.when(event.at),
            "iso": event.at.isoformat(),
            "kind": event.kind,
            "title": event.title,
            "detail": event.detail,
        }
        for event in events
    ]
