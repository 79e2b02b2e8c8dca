"""What each Dashboard page shows, as plain data for its template (invariant 7).

Every view gets the :class:`Page` (who is looking, at which channel, in which locale) and the
request's parameters, and returns the template's name and data. Nothing here writes except the
test send (which records nothing on any cart, see :mod:`...email.preview`) and the settings form
(through the shop, which checks the values as ``pluginUpdate`` does).
"""

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from urllib.parse import urlsplit
from uuid import UUID

from django.db.models import Count, F, Sum
from django.db.models.functions import TruncDate
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from ...email.preview import PreviewError, build_preview, send_test
from ...exceptions import CartRecoveryError, ConfigurationError, DashboardRefused
from ...experiments.deliverability import for_display, rates
from ...experiments.report_html import bar_width, funnel_bars
from ...experiments.report_json import report_data
from ...experiments.report_table import VERDICTS
from ...formatting import Formatter
from ...models import CartStatus, ProviderEvent, RecoveryCart, Suppression, newest_cart_ids
from ...series.dispatch import backlog
from ...series.health import WORKER_SILENCE, check_mail_server, health
from ...series.suppression import hashed_address, normalize_email
from ...settings import registry
from ...settings.channel import RecoverySettings, validate_for_activation
from ...settings.parsers import labelled, parse_bool
from ...shop import DashboardChannel, DashboardViewer, get_shop, settings_or_none
from .deliverability import deliverability_warnings
from .timeline import VARIANTS, reason_text, status_text, timeline

SEARCH_LIMIT = 50
REVENUE_DAYS = 30
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
ARM_VERDICTS = {
    "winner": gettext_lazy("winner"),
    "few": gettext_lazy("not enough data"),
    "unproven": gettext_lazy("not proven better"),
}


@dataclass(frozen=True)
class Page:
    viewer: DashboardViewer
    channel: DashboardChannel
    fmt: Formatter


ADDRESS_EVENTS_SHOWN = 20  # a cart's story shows at most this many events that named no message


class Invalid(CartRecoveryError):
    """A parameter of a page is wrong (answered 400); ``field`` names it. ``form`` is the page to
    show again, as typed, with ``message`` next to the field; without it the message alone."""

    def __init__(self, field: str, message: str, form: tuple[str, dict] | None = None):
        self.field, self.message, self.form = field, message, form
        super().__init__(message)


# -- Overview ------------------------------------------------------------------------------------


def overview(page: Page, params: QueryDict) -> tuple[str, dict]:
    fresh = params.get("fresh") == "1"
    reports = report_data(channel=page.channel.slug, settings_for=settings_or_none, fresh=fresh)
    current = next((report for report in reports if report["current"]), reports[0] if reports else None)
    data: dict = {"report": None, "earlier": len(reports) - (1 if current else 0)}
    if current is not None:
        data["report"] = _report(current, page.fmt, page.channel.currency)
    data["revenue_days"] = _revenue_over_time(page, (current or {}).get("currency") or page.channel.currency)
    data["backlog"] = _backlog(page)
    data["deliverability"] = for_display(rates(page.channel.slug, timezone.now()), page.fmt)
    return "overview.html", data


def _report(report: dict, fmt: Formatter, channel_currency: str) -> dict:
    currency = report["currency"] or channel_currency  # none yet when no cart has an order
    treated, held = report["treated"], report["holdout"]
    interval = report["lift_always_valid_interval_pct"] or report["lift_interval_pct"]
    funnel_top = max([step["total"]["carts"] for step in report["steps"]] or [0])
    steps = []
    for step in report["steps"]:
        steps.append(
            {
                "step": step["step"],
                "stages": funnel_bars(step, funnel_top, fmt),
                "arms": _arms(step, report, fmt, currency),
            }
        )
    return {
        "experiment": report["experiment"] or _("without version"),
        "computed": fmt.when(report["computed_at"]),
        "currency": currency,
        "net_recovered": fmt.money(report["recovered_after_reminder"]["revenue"], currency),
        "recovered_orders": fmt.number(report["recovered_after_reminder"]["orders"]),
        "recovered_orders_count": report["recovered_after_reminder"]["orders"],
        "incremental": fmt.money(report["incremental_revenue"], currency),
        "treated_rate": fmt.pct(treated["conversion_rate_pct"]),
        "holdout_rate": fmt.pct(held["conversion_rate_pct"]),
        "treated_carts": fmt.number(treated["carts"]),
        "holdout_carts": fmt.number(held["carts"]),
        "has_holdout": held["carts"] > 0,
        "lift": fmt.points(report["lift_pct"]),
        "interval": _("%(low)s to %(high)s")
        % {"low": fmt.points(interval[0]), "high": fmt.points(interval[1])}
        if interval
        else "—",
        "verdict": VERDICTS[report["lift_verdict"]],
        "verdict_kind": report["lift_verdict"],
        "net_treated": fmt.money(treated["revenue"]["net"], currency),
        "refunded": fmt.money(treated["revenue"]["refunded"], currency),
        "bounced": fmt.number(treated["bounced"]),
        "min_recipients": fmt.number(report["min_recipients"]),
        "attribution_window": report["attribution_window"],
        "steps": steps,
        "cadences": _arms(report["cadences"], report, fmt, currency)
        if len(report["cadences"]["arms"]) > 1
        else [],
    }


def _arms(arm_set: dict, report: dict, fmt: Formatter, currency: str) -> list[dict]:
    tested = any(arm["p_value"] is not None for arm in arm_set["arms"])
    top = max([arm["conversion_rate_pct"] or 0 for arm in arm_set["arms"]] or [0])
    arms = []
    for index, arm in enumerate(arm_set["arms"]):
        label = (
            arm["label"] if not str(arm["label"]).isdigit() else VARIANTS[int(arm["label"]) % len(VARIANTS)]
        )
        if arm["winner"]:
            verdict = str(ARM_VERDICTS["winner"])
        elif arm["carts"] < report["min_recipients"]:
            verdict = str(ARM_VERDICTS["few"])
        elif tested:
            verdict = str(ARM_VERDICTS["unproven"])
        else:
            verdict = "—"
        arms.append(
            {
                "label": label if label != "" else VARIANTS[index],
                "carts": fmt.number(arm["carts"]),
                "sent": fmt.number(arm["sent"]),
                "clicked": fmt.number(arm["clicked"]),
                "converted": fmt.number(arm["converted"]),
                "rate": fmt.pct(arm["conversion_rate_pct"]),
                "net": fmt.money(arm["revenue"]["net"], currency),
                "width": bar_width(arm["conversion_rate_pct"] or 0, top),
                "verdict": verdict,
            }
        )
    return arms


def _revenue_over_time(page: Page, currency: str) -> dict:
    """Net revenue of the channel's converted carts per day over the last 30 days, treated and
    held out (one grouped query over converted carts)."""
    today = timezone.now().date()
    start = today - timedelta(days=REVENUE_DAYS - 1)
    rows = (
        RecoveryCart.objects.filter(
            channel_slug=page.channel.slug,
            status=CartStatus.CONVERTED,
            converted_at__gte=datetime.combine(start, time.min, tzinfo=UTC),  # the partial index
            order_cancelled=False,
        )
        .annotate(day=TruncDate("converted_at"))
        .values("day", "holdout")
        .annotate(net=Sum(F("order_total") - F("order_refunded")), orders=Count("id"))
    )
    by_day: dict = {}
    for row in rows:
        by_day.setdefault(row["day"], {True: Decimal(0), False: Decimal(0)})[row["holdout"]] += max(
            row["net"] or Decimal(0), Decimal(0)
        )
    days = [start + timedelta(days=n) for n in range(REVENUE_DAYS)]
    top = max([sum(by_day.get(day, {True: 0, False: 0}).values()) for day in days] or [0])
    bars = []
    for index, day in enumerate(days):
        values = by_day.get(day, {True: Decimal(0), False: Decimal(0)})
        treated, held = values[False], values[True]
        treated_h = round(float(treated) / float(top) * 100, 1) if top else 0.0
        held_h = round(float(held) / float(top) * 100, 1) if top else 0.0
        bars.append(
            {
                "x": index * 20,
                "treated_h": treated_h,
                "treated_y": 110 - treated_h,
                "held_h": held_h,
                "held_y": 110 - treated_h - held_h,
                "label": _("%(day)s: %(treated)s from treated carts, %(held)s from the holdout")
                % {
                    "day": page.fmt.when_day(day),
                    "treated": page.fmt.money(treated, currency),
                    "held": page.fmt.money(held, currency),
                },
            }
        )
    total = sum((sum(values.values()) for values in by_day.values()), Decimal(0))
    return {
        "bars": bars,
        "total": page.fmt.money(total, currency),
        "empty": not by_day,
        "days": REVENUE_DAYS,
        "first_day": page.fmt.when_day(days[0]),
        "last_day": page.fmt.when_day(days[-1]),
    }


def _backlog(page: Page) -> dict:
    waiting = backlog(timezone.now(), page.channel.slug)
    return {
        "due": page.fmt.number(waiting.due_unplanned),
        "due_count": waiting.due_unplanned,
        "unsent": page.fmt.number(waiting.planned_unsent),
        "unsent_count": waiting.planned_unsent,
        "oldest": page.fmt.when(waiting.oldest_due) if waiting.oldest_due else "",
    }


# -- Carts and a cart's story --------------------------------------------------------------------


def carts(page: Page, params: QueryDict) -> tuple[str, dict]:
    query = params.get("q", "").strip()
    customer = params.get("customer", "").strip()
    data: dict = {"q": query, "error": "", "customer_email": ""}
    found = RecoveryCart.objects.filter(channel_slug=page.channel.slug)
    if customer:
        email = get_shop().customer_email(customer)
        if email is None:
            data["error"] = _("No customer account with this ID (staff accounts are not listed here).")
            found = found.none()
        else:
            data["customer_email"] = query = data["q"] = email
    if query:
        token = _checkout_token(query)
        if token:
            found = found.filter(checkout_token=token)
        elif _EMAIL.match(query):
            found = found.filter(email=normalize_email(query))
        else:
            data["error"] = _("Enter a whole email address or a checkout token.")
            found = found.none()
    # newest first; one address's or token's carts are few (their index), a whole channel's are
    # read one bounded range per status
    ids = newest_cart_ids(found, SEARCH_LIMIT + 1, by_status=not query)
    rows = list(RecoveryCart.objects.filter(id__in=ids).order_by("-id").prefetch_related("messages"))
    data["more"] = len(rows) > SEARCH_LIMIT
    data["carts"] = [_cart_row(cart, page.fmt) for cart in rows[:SEARCH_LIMIT]]
    data["searched"] = bool(query)
    data["limit"] = SEARCH_LIMIT
    return "carts.html", data


def _checkout_token(text: str) -> str | None:
    """A checkout token as Saleor writes it (lower case, with dashes), whatever way it was typed."""
    try:
        return str(UUID(text.strip()))
    except ValueError:
        return None


def _cart_row(cart: RecoveryCart, fmt: Formatter) -> dict:
    messages = list(cart.messages.all())
    return {
        "token": cart.checkout_token,
        "email": cart.email,
        "status": cart.status,
        "status_label": status_text(cart.status),
        "why": reason_text(cart.stop_reason),
        "activity": fmt.when(cart.last_activity_at),
        "sent": sum(1 for message in messages if message.status == "sent"),
        "steps": len(messages),
        "holdout": cart.holdout,
    }


def cart(page: Page, params: QueryDict) -> tuple[str, dict]:
    token = _checkout_token(params.get("token", ""))
    found = (
        RecoveryCart.objects.filter(channel_slug=page.channel.slug, checkout_token=token)
        .prefetch_related("messages__provider_events")
        .first()
        if token
        else None
    )
    if found is None:
        raise Invalid("token", _("No cart with this checkout token in this channel."))
    address = normalize_email(found.email)
    row = (
        Suppression.objects.filter(
            channel_slug=page.channel.slug, email__in=(address, hashed_address(address))
        )
        .values_list("source", "created_at")
        .first()
    )
    settings = _usable(page)
    next_step = found.steps_planned + 1
    live = found.status == CartStatus.ACTIVE and settings is not None and next_step <= settings.steps
    return "cart.html", {
        "cart": _cart_row(found, page.fmt),
        "next_step": next_step if live else None,  # a preview of what the series would send next
        "events": timeline(found, row, page.fmt, _address_events(page.channel.slug, address)),
        "language": found.language_code,
    }


def _address_events(channel_slug: str, address: str) -> list[ProviderEvent]:
    """The newest provider events about the address that named no message of ours (bounded)."""
    found = ProviderEvent.objects.filter(channel_slug=channel_slug, email=address, message__isnull=True)
    return list(found.order_by("-occurred_at")[:ADDRESS_EVENTS_SHOWN])


# -- Preview and test send -----------------------------------------------------------------------


def test_send(page: Page, params: QueryDict) -> tuple[str, dict]:
    """The form, and with ``preview=1`` the step's email as it would go out now."""
    settings = _usable(page)
    data = _send_form(page, settings, params)
    if settings is not None and params.get("preview") == "1":
        preview = _on_the_form(data, lambda: _build(page, settings, params, to=None))
        data["preview"] = {"subject": preview.subject, "html": preview.html, "text": preview.text}
    return "test_send.html", data


def send(page: Page, params: QueryDict) -> tuple[str, dict]:
    """Mail the step to the address given, subject prefixed ``[Test]``; nothing recorded."""
    settings = _usable(page)
    data = _send_form(page, settings, params)
    if settings is None:
        return "test_send.html", data
    email = params.get("email", "").strip()
    if not _EMAIL.match(email) or len(email) > 254:
        raise _form_error(data, Invalid("email", _("Enter the email address to send the test to.")))
    preview = _on_the_form(data, lambda: _build(page, settings, params, to=email))
    try:
        send_test(settings, preview)
    except CartRecoveryError as exc:
        data["result"] = {"ok": False, "text": _("Not sent: %(problem)s") % {"problem": exc}}
    else:
        sent = {"subject": preview.subject, "email": email}
        data["result"] = {"ok": True, "text": _("Sent “%(subject)s” to %(email)s.") % sent}
    data["preview"] = {"subject": preview.subject, "html": preview.html, "text": preview.text}
    return "test_send.html", data


def _on_the_form(data: dict, build):
    try:
        return build()
    except Invalid as exc:
        raise _form_error(data, exc) from None


def _form_error(data: dict, exc: Invalid) -> Invalid:
    """The test-send form again, as typed, with the error next to its field."""
    return Invalid(
        exc.field,
        exc.message,
        ("test_send.html", {**data, "error": {"field": exc.field, "message": exc.message}}),
    )


def _usable(page: Page) -> RecoverySettings | None:
    return settings_or_none(page.channel.slug)


def _send_form(page: Page, settings: RecoverySettings | None, params: QueryDict) -> dict:
    return {
        "usable": settings is not None,
        "step_choices": list(range(1, settings.steps + 1)) if settings else [],
        "step": params.get("step") or "1",
        "email": params.get("email", ""),
        "token": params.get("token", ""),
        "language": params.get("language", ""),
        "viewer_email": page.viewer.email,
    }


def _build(page: Page, settings: RecoverySettings, params: QueryDict, *, to: str | None):
    step_text = params.get("step") or "1"
    if not step_text.isdigit():
        raise Invalid("step", _("Choose a step."))
    try:
        return build_preview(
            get_shop(),
            settings,
            page.channel.slug,
            step=int(step_text),
            checkout_token=params.get("token", "").strip() or None,
            language=params.get("language", "").strip() or None,
            to=to,
            test=to is not None,
        )
    except PreviewError as exc:
        field = {"checkoutToken": "token"}.get(exc.field or "", exc.field or "step")
        raise Invalid(field, exc.message) from None


# -- Settings: the checks and the form ------------------------------------------------------------


def settings(page: Page, params: QueryDict) -> tuple[str, dict]:
    stored = get_shop().stored_configuration(page.channel.slug)
    problems: list[dict] = []
    invalid: dict[str, str] = {}  # stored values that no longer pass: marked on their fields
    parsed = None
    if stored is None:
        problems.append(_problem("error", _("Cart Recovery was never configured in this channel."), "plugin"))
    else:
        try:
            parsed = RecoverySettings.from_plugin_configuration(
                [{"name": name, "value": value} for name, value in stored.items()]
            )
        except ConfigurationError as exc:
            invalid.update({name: _labelled(name, message) for name, message in exc.errors.items()})
        if parsed is not None:
            try:
                validate_for_activation(parsed)
            except ConfigurationError as exc:
                invalid.update({name: _labelled(name, message) for name, message in exc.errors.items()})
        problems.extend(_problem("error", message, name) for name, message in invalid.items())
    if not page.channel.active:
        problems.append(
            _problem(
                "error", _("Cart Recovery is not active in this channel: no reminder goes out."), "plugin"
            )
        )
    now = timezone.now()
    state = health()
    for name in state.missing_beat_entries:
        problems.append(
            _problem(
                "error",
                _("Beat has no enabled entry for %(task)s: run `manage.py migrate` and start beat.")
                % {"task": name},
                "beat",
            )
        )
    if state.worker_silent(now):
        seen = page.fmt.when(state.worker_seen_at) if state.worker_seen_at else _("never")
        minutes = int(WORKER_SILENCE.total_seconds() // 60)
        text = ngettext(
            "No Celery worker ran the dispatcher in the last %(minutes)s minute (last seen: %(seen)s).",
            "No Celery worker ran the dispatcher in the last %(minutes)s minutes (last seen: %(seen)s).",
            minutes,
        )
        problems.append(_problem("error", text % {"minutes": minutes, "seen": seen}, "worker"))
    return "settings.html", {
        "form": _settings_form(page, {**registry.DEFAULTS, **(stored or {})}, stored or {}, invalid),
        "active": page.channel.active,
        "can_change": page.viewer.can_change_settings,
        "problems": problems,
        "worker_seen": page.fmt.when(state.worker_seen_at) if state.worker_seen_at else _("never"),
        "mail_server": _about_the_mail_server("through", stored),
        "can_check": parsed is not None,
        "backlog": _backlog(page),
        "deliverability_warnings": deliverability_warnings(page.channel.slug, page.fmt),
    }


def save_settings(page: Page, params: QueryDict) -> tuple[str, dict]:
    """POST: save the form (every field of the registry, and Active) through the shop, which checks
    it as ``pluginUpdate`` does; on a bad value the form comes back as typed, each bad field marked
    with its message, and nothing is stored. Needs MANAGE_PLUGINS, as ``pluginUpdate``."""
    if not page.viewer.can_change_settings:
        raise DashboardRefused(403, _("Saving the settings needs the MANAGE_PLUGINS permission."))
    changes: dict[str, str | None] = {}
    for field in registry.FIELDS:
        if field.kind == registry.BOOLEAN:
            changes[field.name] = "true" if params.get(field.name) else "false"
        elif field.kind == registry.SECRET and params.get(f"{field.name}__clear"):
            changes[field.name] = None  # back to the default: the stored secret is removed
        elif field.name in params:
            changes[field.name] = str(params.get(field.name, "")).replace("\r\n", "\n")
    active = bool(params.get("active"))
    try:
        active = get_shop().save_configuration(page.channel.slug, changes, active)
    except ConfigurationError as exc:
        data = settings(page, params)[1]
        stored = get_shop().stored_configuration(page.channel.slug) or {}
        typed = {**registry.DEFAULTS, **stored, **{name: value or "" for name, value in changes.items()}}
        data["form"] = _settings_form(page, typed, stored, exc.errors)
        data["active"] = active
        count = len(exc.errors)
        message = ngettext(
            "%(count)s setting is not valid: nothing was saved.",
            "%(count)s settings are not valid: nothing was saved.",
            count,
        ) % {"count": count}
        data["error"] = {"message": message}
        raise Invalid(next(iter(exc.errors), ""), message, ("settings.html", data)) from None
    page = replace(page, channel=replace(page.channel, active=active))
    template, data = settings(page, QueryDict())
    saved = (
        _("Saved. Cart Recovery is active in %(channel)s.")
        if active
        else _("Saved. Cart Recovery is switched off in %(channel)s.")
    )
    data["saved"] = saved % {"channel": page.channel.name}
    data["channel"] = {"slug": page.channel.slug, "name": page.channel.name, "active": active}
    data["channels"] = [
        {"slug": c.slug, "name": c.name, "active": active if c.slug == page.channel.slug else c.active}
        for c in page.viewer.channels
    ]
    return template, data


def _settings_form(page: Page, values: dict, stored: dict, errors: dict) -> list[dict]:
    """One entry per registry field, as the template draws it: the value to show (a secret's never:
    only whether one is stored), the default, the help and the field's message, if any."""
    fields = []
    for field in registry.FIELDS:
        value = values.get(field.name, field.default)
        fields.append(
            {
                "name": field.name,
                "label": field.label,
                "help": field.help_text,
                "kind": field.kind,
                "value": "" if field.kind == registry.SECRET else value,
                "checked": field.kind == registry.BOOLEAN and _is_on(value),
                "stored_secret": field.kind == registry.SECRET and bool(stored.get(field.name)),
                "has_default": bool(field.default),
                "default": _shown_default(field),
                "error": errors.get(field.name, ""),
            }
        )
    return fields


def _is_on(value: str) -> bool:
    try:
        return parse_bool(value)
    except ValueError:
        return False


def _shown_default(field: registry.Field) -> str:
    """The default as the form shows it: a switch as on / off in the page's language, any other
    value as it is typed (the same in every language: it is what the field accepts)."""
    if field.kind == registry.BOOLEAN:
        return _("on") if _is_on(field.default) else _("off")
    return " / ".join(field.default.splitlines())


def check_connection(page: Page, params: QueryDict) -> tuple[str, dict]:
    """POST: connect to the channel's mail server as a send would (and log in), send nothing."""
    stored = get_shop().stored_configuration(page.channel.slug) or {}
    try:
        parsed = RecoverySettings.from_plugin_configuration(
            [{"name": name, "value": value} for name, value in stored.items()]
        )
    except ConfigurationError as exc:
        return "connection.html", {
            "ok": False,
            "text": _("The settings do not parse: %(problem)s") % {"problem": exc},
        }
    failure = check_mail_server(parsed.smtp)
    if failure:
        return "connection.html", {"ok": False, "text": _about_the_mail_server("failed", stored, failure)}
    return "connection.html", {"ok": True, "text": _about_the_mail_server("answered", stored)}


# What the Settings tab says about the channel's mail server, one whole sentence per server kind
# (Saleor's email settings, a host of smtp_url, an smtp_url whose host cannot be read).
MAIL_SERVER_SENTENCES = {
    "through": {
        "saleor": gettext_lazy("Reminders go through Saleor's email settings (EMAIL_URL)."),
        "host": gettext_lazy("Reminders go through the mail server %(host)s."),
        "unknown": gettext_lazy("Reminders go through the configured mail server."),
    },
    "answered": {
        "saleor": gettext_lazy("The mail server of Saleor's email settings answered and accepted the login."),
        "host": gettext_lazy("The mail server %(host)s answered and accepted the login."),
        "unknown": gettext_lazy("The configured mail server answered and accepted the login."),
    },
    "failed": {
        "saleor": gettext_lazy("The mail server of Saleor's email settings cannot be used: %(problem)s"),
        "host": gettext_lazy("The mail server %(host)s cannot be used: %(problem)s"),
        "unknown": gettext_lazy("The configured mail server cannot be used: %(problem)s"),
    },
}


def _about_the_mail_server(what: str, stored: dict | None, problem: str = "") -> str:
    """``what`` (through / answered / failed) about where the channel's mail goes, without the
    credentials in its URL."""
    url = (stored or {}).get("smtp_url", "")
    host = None
    if url:
        try:
            parts = urlsplit(url)
            host = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname
        except ValueError:
            host = None
    kind = "saleor" if not url else "host" if host else "unknown"
    return str(MAIL_SERVER_SENTENCES[what][kind]) % {"host": host, "problem": problem}


def _problem(level: str, text: str, field: str) -> dict:
    return {"level": level, "text": text, "field": field}


def _labelled(name: str, message: str) -> str:
    """A stored value's problem, starting with its field's label as every settings message does."""
    field = registry.BY_NAME.get(name)
    return labelled(field.label if field else name, message)


# Every page is asked for with POST: its parameters (checkout tokens, shoppers' addresses) stay out
# of URLs and so out of access logs.
VIEWS = {
    "overview": overview,
    "carts": carts,
    "cart": cart,
    "test": test_send,
    "send": send,
    "settings": settings,
    "save-settings": save_settings,
    "check-connection": check_connection,
}
# Which tab a view belongs to.
TABS = {
    "overview": "overview",
    "carts": "carts",
    "cart": "carts",
    "test": "test",
    "send": "test",
    "settings": "settings",
    "save-settings": "settings",
    "check-connection": "settings",
}
