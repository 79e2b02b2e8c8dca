"""``esp/<provider>/tracking/``: the mail provider's event webhooks (bounces, complaints,
unsubscribes, deliveries), read with django-anymail's own webhook views.

Served on the channel-less plugin path (Saleor routes it while the plugin is off too: mail sent
before keeps reporting) and mirrored by the App host. anymail does the provider's part: its
validators check the basic auth (its shared ``WEBHOOK_SECRET``) and the provider's own signature
where the provider signs (Mailgun, MailerSend; SendGrid and Mailtrap when a key is given), and its
``parse_events`` turns the provider's payload into normalized events. Its settings come from our
channels' configuration instead of Django's settings (anymail's views take them as keyword
arguments), so the owner sets them in the Dashboard:

- The channels considered are those that tracked carts (only they can have mailed anyone) and
  name this path's provider as their ``esp_provider``: a channel's credentials are never accepted
  on another provider's path (a signing key would be bypassed through one that does not sign). A
  request counts for each of them whose ``esp_webhook_secret`` (and signing key) it carries. On
  the per-channel path only that channel is considered.
- No Authorization header → 401 with a Basic challenge (Amazon SNS sends its credentials only
  after one); credentials or signature no channel accepts → 403 (the basic auth is compared before
  anymail reads the body, so a caller without the secret learns nothing about its parsing); a body
  anymail cannot read → 400. Nothing is recorded then. One event the database cannot store is
  logged and skipped; a failure of the database itself answers 503: providers retry, and what was
  recorded before it counts once.
- Amazon SNS subscriptions are not confirmed automatically (that needs AWS credentials in Saleor):
  the confirmation request is logged with its SubscribeURL, and docs/deliverability.md says how to
  confirm it.

What the events do is :mod:`..series.provider_events`' job.
"""

import hashlib
import json
import logging
import warnings
from datetime import UTC
from typing import Any

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.signals import EventType, RejectReason
from anymail.utils import get_request_basic_auth
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView
from anymail.webhooks.base import AnymailCoreWebhookView
from anymail.webhooks.brevo import BrevoTrackingWebhookView
from anymail.webhooks.mailersend import MailerSendTrackingWebhookView
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from anymail.webhooks.mailjet import MailjetTrackingWebhookView
from anymail.webhooks.mailtrap import MailtrapTrackingWebhookView
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from anymail.webhooks.sendgrid import SendGridTrackingWebhookView
from anymail.webhooks.sparkpost import SparkPostTrackingWebhookView
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from ..email.transport import enhanced_status
from ..exceptions import BadToken
from ..models import ProviderEventKind, RecoveryCart, channels_in
from ..series.provider_events import MAX_EVENTS, ReportedEvent, record_events
from ..settings.channel import ProviderWebhookAuth
from ..settings.formats import ESP_PROVIDERS
from ..shop import get_shop
from .base import Endpoint, json_response

logger = logging.getLogger(__name__)

# Provider (the URL's name, as anymail's own URLs name it: ESP_PROVIDERS) → anymail's tracking view
# and the keyword its signing key goes in ("" where the provider does not sign).
PROVIDERS: dict[str, tuple[type[AnymailCoreWebhookView], str]] = {
    "amazon_ses": (AmazonSESTrackingWebhookView, ""),
    "brevo": (BrevoTrackingWebhookView, ""),
    "mailersend": (MailerSendTrackingWebhookView, "signing_secret"),
    "mailgun": (MailgunTrackingWebhookView, "webhook_signing_key"),
    "mailjet": (MailjetTrackingWebhookView, ""),
    "mailtrap": (MailtrapTrackingWebhookView, "tracking_secret"),
    "postmark": (PostmarkTrackingWebhookView, ""),
    "sendgrid": (SendGridTrackingWebhookView, "tracking_webhook_verification_key"),
    "sparkpost": (SparkPostTrackingWebhookView, ""),
}
# The longest address stored (RFC 5321's limit): a longer one is none we mailed.
MAX_EMAIL = 254
# Anymail's view options that are not secrets: ours, whatever Django's ANYMAIL settings say.
_FIXED_OPTIONS: dict[str, dict[str, Any]] = {"amazon_ses": {"auto_confirm_sns_subscriptions": False}}


class ProviderEventsEndpoint(Endpoint):
    """Validate with anymail (credentials, signature), parse with anymail, record with the core."""

    methods = ("POST", "HEAD")
    serves_without_channel = True
    arg_slashes = 1  # <provider>/tracking

    def validate(self, channel_slug: str | None, arg: str) -> tuple[str, str | None]:
        provider, _, kind = arg.partition("/")
        if provider not in PROVIDERS or kind != "tracking":
            raise BadToken(f"no tracking webhook for '{provider}'")
        return provider, channel_slug

    def invalid(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(status=404)

    def head(self, request: HttpRequest, claim) -> HttpResponse:
        return HttpResponse()  # some providers check the URL with a HEAD when it is configured

    def post(self, request: HttpRequest, claim: tuple[str, str | None]) -> HttpResponse:
        provider, channel_slug = claim
        if not request.headers.get("Authorization"):
            response = _refuse("authentication required", 401)
            response["WWW-Authenticate"] = 'Basic realm="saleor-cart-recovery provider events"'
            return response
        try:
            candidates = _candidates(channel_slug, provider)
        except Exception:  # the database, not the request: the provider retries later
            logger.exception("cart recovery: could not read the channels' webhook settings")
            return _refuse("try again later", 503)
        try:
            view, channels = _authenticate(request, provider, candidates)
        except _Unreadable as exc:
            logger.warning("cart recovery: unreadable %s webhook: %r", provider, exc.__cause__)
            return _refuse(f"malformed {provider} webhook", 400)
        if view is None:
            return _refuse("credentials or signature not accepted", 403)
        try:
            parsed = view.parse_events(request)
        except Exception as exc:  # whatever the provider's parser trips over is the body's fault
            logger.warning("cart recovery: unreadable %s webhook: %r", provider, exc)
            return _refuse(f"malformed {provider} webhook", 400)
        if len(parsed) > MAX_EVENTS:
            return _refuse(f"at most {MAX_EVENTS} events per request", 413)
        _log_sns_confirmation(request, provider)
        now = timezone.now()
        events = [event for event in (_reported(provider, item, now) for item in parsed) if event]
        try:
            recorded = record_events(events, channels, now=now)
        except Exception:  # the database itself (each event's own errors are skipped there): retry later
            logger.exception("cart recovery: could not record %s events", provider)
            return _refuse("try again later", 503)
        return json_response({"events": len(parsed), "recorded": recorded}, 200)


class _Unreadable(Exception):
    """anymail could not read the request far enough to check its credentials."""


def _refuse(message: str, status: int) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain")


def _candidates(channel_slug: str | None, provider: str) -> dict[str, ProviderWebhookAuth]:
    """The channels mailed through ``provider`` (their ``esp_provider``) with a secret set: another
    provider's path never authenticates them, so a channel's signing key cannot be bypassed through
    a provider that does not sign."""
    shop = get_shop()
    slugs = [channel_slug] if channel_slug else channels_in(RecoveryCart)
    found = {}
    for slug in slugs:
        stored = shop.stored_configuration(slug)
        if stored:
            auth = ProviderWebhookAuth.from_stored(stored)
            if auth.secret and auth.provider == provider:
                found[slug] = auth
    return found


def _authenticate(
    request: HttpRequest, provider: str, candidates: dict[str, ProviderWebhookAuth]
) -> tuple[AnymailCoreWebhookView | None, list[str]]:
    """anymail's view for the first credentials that pass its validators, and every channel whose
    credentials pass; ``(None, [])`` when none does. One check per distinct credentials, not per
    channel. Raises :class:`_Unreadable` for a request too malformed to check."""
    view_class, key_option = PROVIDERS[provider]
    signs = ESP_PROVIDERS[provider]
    by_credentials: dict[tuple[str, str], list[str]] = {}
    for slug, auth in candidates.items():
        key = auth.signing_key
        if (signs == "required" and not key) or (key and not signs):
            continue  # settings validation refuses both; a stored value read alone may still say so
        by_credentials.setdefault((auth.secret, key), []).append(slug)
    accepted: AnymailCoreWebhookView | None = None
    channels: list[str] = []
    given = get_request_basic_auth(request) or ""
    for (secret, key), slugs in by_credentials.items():
        if not constant_time_compare(given, secret):
            continue  # before anymail's validators, some of which read the body first (SES)
        options: dict[str, Any] = {"webhook_secret": [secret], **_FIXED_OPTIONS.get(provider, {})}
        if key_option:
            options[key_option] = key or None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # anymail's notice about SendGrid's support status
                view = view_class(**options)
        except Exception as exc:  # a key anymail cannot use (not a PEM key, …): that channel's problem
            logger.warning("cart recovery: %s signing key of %s unusable: %r", provider, slugs, exc)
            continue
        try:
            view.run_validators(request)
        except AnymailWebhookValidationFailure:
            continue
        except Exception as exc:  # AnymailAPIError for an unreadable SNS body, a key error, …
            raise _Unreadable from exc
        accepted = accepted or view
        channels += slugs
    return accepted, channels


def _soft(provider: str, raw: Any) -> bool:
    """Whether a bounce the provider reports is temporary (anymail reports both as ``bounced``
    for these providers; Mailgun's and SendGrid's deferrals are ``deferred`` already)."""
    if not isinstance(raw, dict):
        return False
    if provider == "amazon_ses":
        return (raw.get("bounce") or {}).get("bounceType") in ("Transient", "Undetermined")
    if provider == "postmark":
        return raw.get("Type") == "SoftBounce"
    if provider == "brevo":
        return raw.get("event") == "soft_bounce"
    if provider == "mailjet":
        return raw.get("hard_bounce") is False
    if provider == "sendgrid":
        return raw.get("type") == "blocked"
    if provider == "mailersend":
        return (raw.get("data") or {}).get("type") == "soft_bounced"
    if provider == "sparkpost":
        event: dict = next(iter((raw.get("msys") or {}).values()), {})
        return str(event.get("bounce_class")) in SPARKPOST_SOFT_CLASSES
    return False


# SparkPost's bounce classes for temporary failures (soft, DNS, mailbox full, too large, timeout,
# transient).
SPARKPOST_SOFT_CLASSES = ("20", "21", "22", "23", "24", "70")
# A bounce for one of these reasons blames the sender or the content (a block list, a spam filter),
# not the address: it suppresses nobody.
_NOT_THE_ADDRESS = (RejectReason.BLOCKED, RejectReason.SPAM)
# Enhanced statuses (RFC 3463) that put a permanent failure on the sender or the message: security and
# policy (5.7.x, e.g. DMARC or a block list), content (5.6.x), message too big (5.3.4).
_SENDER_STATUSES = ("5.7.", "5.6.", "5.3.4")
# A rejection for one of these reasons says the address must not be mailed. RejectReason.SPAM is
# not here: most providers use it for a spam filter's verdict on the content; only a rejection
# because the address complained before (:func:`_previous_complainer`) is a complaint.
_REJECTED = {
    RejectReason.BOUNCED: ProviderEventKind.BOUNCED,
    RejectReason.INVALID: ProviderEventKind.BOUNCED,
    RejectReason.UNSUBSCRIBED: ProviderEventKind.UNSUBSCRIBED,
}
# anymail's DEFERRED (the provider retries) is no bounce: only the final failure is reported.
_KINDS = {
    EventType.DELIVERED: ProviderEventKind.DELIVERED,
    EventType.COMPLAINED: ProviderEventKind.COMPLAINED,
    EventType.UNSUBSCRIBED: ProviderEventKind.UNSUBSCRIBED,
}


def _previous_complainer(provider: str, raw: Any) -> bool:
    """Whether the provider refused the message because the address reported spam before
    (SendGrid's "Spam Reporting Address", Mailjet's "spam reporter", Mailgun's code 607)."""
    if not isinstance(raw, dict):
        return False
    if provider == "sendgrid":
        return "spam reporting address" in (
            str(raw.get("reason", "")).lower(),
            str(raw.get("type", "")).lower(),
        )
    if provider == "mailjet":
        return str(raw.get("error", "")).lower() == "spam reporter"
    if provider == "mailgun":
        data = raw.get("event-data")
        status = data.get("delivery-status") if isinstance(data, dict) else None
        code = status.get("code") if isinstance(status, dict) else raw.get("code")
        return str(code) == "607"
    return False


def _bounce_kind(provider: str, event) -> str | None:
    """A bounce by the provider's own verdict, corrected by its enhanced status: 4.x.x is temporary,
    a policy or content status (:data:`_SENDER_STATUSES`) blames the sender, any other 5.x.x is the
    hard bounce the provider reported (servers say "mailbox unavailable" with 5.1.1 as often as with
    5.5.0 or 5.4.1); without a status, a hard bounce unless anymail could not name the reason.

    Stricter than the SMTP hand-over's rule (:func:`..email.transport.blames_mailbox`, only 5.1.x /
    5.2.x), which has no provider classifying the failure for it."""
    if event.reject_reason in _NOT_THE_ADDRESS:
        return None
    if event.reject_reason == RejectReason.TIMED_OUT or _soft(provider, event.esp_event):
        return ProviderEventKind.SOFT_BOUNCED
    status = enhanced_status(str(event.mta_response or "")) or enhanced_status(str(event.description or ""))
    if status.startswith("4."):
        return ProviderEventKind.SOFT_BOUNCED
    if status.startswith("5."):
        return None if status.startswith(_SENDER_STATUSES) else ProviderEventKind.BOUNCED
    return None if event.reject_reason == RejectReason.OTHER else ProviderEventKind.BOUNCED


def _kind(provider: str, event) -> str | None:
    """Our kind for an anymail event; ``None`` for what we do not act on (opens, clicks, queued,
    deferred, a rejection that blames the content or the sender rather than the address)."""
    if event.event_type in (EventType.BOUNCED, EventType.REJECTED) and _previous_complainer(
        provider, event.esp_event
    ):
        return ProviderEventKind.COMPLAINED
    if event.event_type == EventType.BOUNCED:
        return _bounce_kind(provider, event)
    if event.event_type == EventType.REJECTED:
        return _REJECTED.get(event.reject_reason)
    return _KINDS.get(event.event_type)


def _text(value: Any, limit: int) -> str:
    """``value`` as text PostgreSQL stores: without NUL characters, at most ``limit`` characters."""
    return str(value or "").replace("\x00", "")[:limit]


def _reported(provider: str, event, now) -> ReportedEvent | None:
    kind = _kind(provider, event)
    email = _text(event.recipient, 1000).strip()
    if kind is None or not email:
        return None
    if len(email) > MAX_EMAIL:  # no address we mail is that long
        logger.warning(
            "cart recovery: %s reported an address of %d characters; skipped", provider, len(email)
        )
        return None
    raw = json.dumps(event.esp_event, default=str, sort_keys=True)
    identity = event.event_id or hashlib.sha256(raw.encode()).hexdigest()
    occurred_at = event.timestamp or now
    if timezone.is_naive(occurred_at):
        occurred_at = occurred_at.replace(tzinfo=UTC)
    return ReportedEvent(
        provider=provider,
        kind=kind,
        email=email,
        occurred_at=min(occurred_at, now),  # a provider's clock ahead of ours is not the future
        identity=str(identity),
        provider_message_id=_text(event.message_id, 255),
        raw=raw,
        description=_text(event.description or event.mta_response, 255),
    )


def _log_sns_confirmation(request: HttpRequest, provider: str) -> None:
    """An authenticated SNS subscription request: the owner confirms it (docs/deliverability.md)."""
    sns_type = request.headers.get("x-amz-sns-message-type")
    if provider != "amazon_ses" or sns_type != "SubscriptionConfirmation":
        return
    body = AmazonSESTrackingWebhookView._parse_sns_message(request)
    logger.warning(
        "cart recovery: Amazon SNS asks to confirm the subscription of topic %s to the tracking "
        "webhook; confirm it in the SNS console or open %s",
        body.get("TopicArn"),
        body.get("SubscribeURL"),
    )
