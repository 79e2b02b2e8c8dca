"""A cart's story for support staff: every recorded decision in time order, each in words — the
answer to "why did this cart get no email?" without reading tables."""

from dataclasses import dataclass
from datetime import datetime

from ...models import CartStatus, MessageStatus, ProviderEvent, Reason, RecoveryCart
from ...series.provider_events import KIND_TEXT, provider_name
from ...series.suppression import reason_for, reported_by
from .formatting import Formatter

# What each recorded reason means, said the way support staff would explain it to the shop owner.
REASONS = {
    Reason.PURCHASED: "the shopper placed an order",
    Reason.CART_EMPTY: "the cart was empty",
    Reason.CHECKOUT_DELETED: "the checkout no longer exists in Saleor",
    Reason.NO_EMAIL: "the checkout has no email address",
    Reason.UNSUBSCRIBED: "the address unsubscribed in this channel",
    Reason.PLUGIN_INACTIVE: "Cart Recovery was switched off in this channel",
    Reason.SEND_REFUSED: "the mail server refused the message (not the address)",
    Reason.RETRIES_EXHAUSTED: "the mail server could not be reached, retries ran out",
    Reason.INTERRUPTED: "the connection broke during the transfer; not resent, to never send twice",
    Reason.HOLDOUT: "the shopper is in the holdout group (gets no email, for measuring the lift)",
    Reason.SERIES_FINISHED: "every step of the series went out",
    Reason.STEP_REMOVED: "the step was removed from the schedule",
    Reason.PREPARE_FAILED: "the email could not be prepared (logged)",
    Reason.MANUAL: "stopped by staff through the API",
    Reason.BOUNCED: "the address bounced: it cannot receive mail",
    Reason.COMPLAINED: "the shopper marked a reminder as spam",
    Reason.CONFIGURATION_INVALID: "the channel's settings are invalid",
    Reason.PLANNING_FAILED: "an error while planning (logged)",
    Reason.NO_CONSENT: "no marketing consent in the checkout's or the account's metadata",
    Reason.FREQUENCY_CAP: "the address had its allowed reminders for the period (frequency cap)",
    Reason.QUIET_HOURS: "waiting for the shopper's quiet hours to end",
    Reason.BELOW_MIN_TOTAL: "the cart is below the minimum total",
}
VARIANTS = "ABCDEFGHIJ"


def reason_text(reason: str) -> str:
    return REASONS.get(reason, reason) if reason else ""  # type: ignore[call-overload]


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str  # activity, planned, sent, skipped, failed, waiting, clicked, coupon, order, stopped,
    # unsubscribe, provider, due
    title: str
    detail: str = ""


def _reported(event: ProviderEvent, what: str) -> Event:
    title = f"{what} {KIND_TEXT.get(event.kind, event.kind)} — reported by {provider_name(event.provider)}"
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
            "Cart first seen",
            ("In the holdout group: gets no email. " if cart.holdout else "")
            + (f"Cadence {cart.cadence}. " if cart.cadence else "")
            + (f"Experiment {cart.experiment}." if cart.experiment else ""),
        )
    ]
    if cart.last_activity_at != cart.created_at:
        events.append(
            Event(cart.last_activity_at, "activity", "Last cart activity", "The series is timed from here.")
        )
    for message in sorted(cart.messages.all(), key=lambda m: m.step):
        step = f"Step {message.step}"
        variant = f"subject {VARIANTS[message.variant]}" if message.variant < len(VARIANTS) else ""
        events.append(
            Event(message.planned_at, "planned", f"{step} planned", f"{message.content}, {variant}")
        )
        if message.status == MessageStatus.SENT and message.sent_at:
            events.append(
                Event(message.sent_at, "sent", f"{step} sent to {message.recipient}", f"“{message.subject}”")
            )
        elif message.status == MessageStatus.SKIPPED:
            events.append(
                Event(message.updated_at, "skipped", f"{step} not sent", reason_text(message.reason))
            )
        elif message.status == MessageStatus.FAILED:
            events.append(
                Event(
                    message.updated_at,
                    "failed",
                    f"{step} failed",
                    reason_text(message.reason) or message.error,
                )
            )
        else:
            waiting = reason_text(message.reason) or "waiting for a worker to send it"
            when = f" (from {fmt.when(message.attempt_after)})" if message.attempt_after else ""
            events.append(Event(message.updated_at, "waiting", f"{step} {message.status}", waiting + when))
        if message.voucher_code:
            expires = fmt.when(message.voucher_expires_at) if message.voucher_expires_at else "—"
            events.append(
                Event(
                    message.sent_at or message.updated_at,
                    "coupon",
                    f"{step} coupon {message.voucher_code}",
                    f"single use, valid until {expires}",
                )
            )
        events += [_reported(event, step) for event in message.provider_events.all()]
        if message.first_clicked_at:
            events.append(
                Event(
                    message.first_clicked_at,
                    "clicked",
                    f"{step} clicked",
                    f"{message.clicks} click(s) on the email's links in a browser",
                )
            )
    if cart.converted_at:
        total = fmt.money(cart.order_total, cart.order_currency)
        detail = f"total {total}"
        if cart.order_refunded:
            detail += f", refunded {fmt.money(cart.order_refunded, cart.order_currency)}"
        if cart.order_cancelled:
            detail += ", cancelled"
        how = {"token": "from this checkout", "email": "by the same address"}.get(cart.conversion_match, "")
        events.append(Event(cart.converted_at, "order", f"Order {cart.order_number} {how}".strip(), detail))
    if cart.status in (CartStatus.STOPPED, CartStatus.FINISHED):
        title = "Series finished" if cart.status == CartStatus.FINISHED else "Series stopped"
        events.append(Event(cart.updated_at, "stopped", title, reason_text(cart.stop_reason)))
    events += [_reported(event, "The address") for event in address_events]
    if suppression is not None:
        source, at = suppression
        reason, provider = reason_for(source), reported_by(source)
        title = {"bounced": "Address bounced", "complained": "Marked as spam"}.get(reason, "Unsubscribed")
        how = f"{reason} — reported by {provider_name(provider)}" if provider else f"source: {source}"
        events.append(Event(at, "unsubscribe", title, f"{how}; no more reminders in this channel"))
    events.sort(key=lambda event: event.at)
    if cart.next_due_at:
        events.append(
            Event(cart.next_due_at, "due", "Next look", "The dispatcher looks at the cart again then.")
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
