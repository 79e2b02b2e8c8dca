"""One settings object per channel, parsed and validated once.

Saleor stores every Dashboard value as a string; :meth:`RecoverySettings.from_plugin_configuration`
reads each field through its parser in :mod:`.registry`, then checks what needs two fields, and
raises :class:`ConfigurationError` with one message per bad field.
"""

import base64
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from ..exceptions import ConfigurationError
from .email_copy import CopyLine, text_on
from .formats import AUTO, DISCOUNT, ESP_PROVIDERS, PERCENTAGE, Cadence, SmtpConfig, Subject
from .parsers import normalize_language
from .registry import BY_NAME, DEFAULTS
from .sending_rules import CONSENTED, FrequencyCap, QuietWindow


@dataclass(frozen=True)
class CouponSettings:
    step: int
    discount_type: str  # "percentage" or "fixed" (an amount in the channel's currency)
    value: Decimal
    valid_for: timedelta
    min_total: Decimal | None


@dataclass(frozen=True)
class OfferSettings:
    """The coupon step, upsell products, true urgency and what each step says."""

    coupon: CouponSettings | None  # None: no step carries a coupon
    upsell_auto: bool
    upsell_products: tuple[str, ...]  # product IDs, global IDs or slugs, in the owner's order
    upsell_count: int
    upsell_product_url: str  # "" → upsell products link to the recovery link
    urgency_stock_threshold: int  # 0 → never say "only N left"
    step_content: tuple[tuple[int, str], ...]  # explicit choices; other steps use the defaults

    @property
    def upsell_enabled(self) -> bool:
        return self.upsell_auto or bool(self.upsell_products)

    def product_url(self, slug: str) -> str:
        return self.upsell_product_url.replace("{slug}", slug)


@dataclass(frozen=True)
class ExperimentSettings:
    """Cadence variants, attribution window and the automatic winner.

    ``version`` is a short digest of everything that defines what the arms receive (schedule,
    cadences, subjects, holdout share): changing any of it starts a new version, and results of
    older versions stay readable in the report under their own key."""

    cadences: tuple[Cadence, ...]  # empty: every cart follows the main schedule
    attribution_window: timedelta  # an order this soon after a reminder counts as recovered by it
    auto_winner: bool  # shift new carts to a variant once it is clearly best
    winner_min_recipients: int  # per variant, before any verdict (report and automatic winner)
    version: str

    def cadence(self, label: str) -> Cadence | None:
        return next((c for c in self.cadences if c.label == label), None)


@dataclass(frozen=True)
class SendingRules:
    """Who may be mailed, when and how often (applied right before each send, see
    :mod:`..series.rules`)."""

    audience: str  # "all" or "consented"
    consent_key: str  # metadata key read on the checkout, then on the customer account
    time_zone: ZoneInfo  # for quiet hours when the shopper's own zone is unknown
    quiet_hours: tuple[QuietWindow, ...]
    frequency_cap: FrequencyCap | None
    min_cart_total: Decimal | None

    @property
    def needs_consent(self) -> bool:
        return self.audience == CONSENTED


@dataclass(frozen=True)
class EmailLook:
    """The owner's words (``email_copy``), accent colour and logo."""

    copy: tuple[CopyLine, ...]
    brand_color: str  # #RRGGBB
    logo_url: str  # "" → the shop's name instead

    @property
    def brand_text_color(self) -> str:
        return text_on(self.brand_color)

    def lines(self, step: int, field: str) -> tuple[CopyLine, ...]:
        return tuple(line for line in self.copy if line.step == step and line.field == field)


@dataclass(frozen=True)
class ProviderWebhookAuth:
    """What the mail provider's event webhooks must carry to count for the channel, and on which
    provider's path."""

    provider: str  # an ESP_PROVIDERS name; "" → refused
    secret: str  # "user:password" (basic auth); "" → refused
    signing_key: str  # the provider's own signing key, where it signs ("" → none)

    @classmethod
    def from_stored(cls, stored: Mapping[str, str]) -> "ProviderWebhookAuth":
        """Read from a channel's stored configuration on their own, so a channel whose other
        settings no longer parse still takes its provider's events; a bad value reads as empty."""
        values = []
        for name in ("esp_provider", "esp_webhook_secret", "esp_signing_key"):
            try:
                values.append(BY_NAME[name].parse(str(stored.get(name) or "")))
            except ValueError:
                values.append("")
        return cls(*values)


@dataclass(frozen=True)
class RecoverySettings:
    schedule: tuple[timedelta, ...]
    cutoff: timedelta
    subjects: tuple[Subject, ...]
    storefront_url: str
    from_email: str
    smtp: SmtpConfig | None  # None: Django's configured email backend
    holdout_percent: Decimal  # share of new carts that get no email (control group)
    experiments: ExperimentSettings
    offers: OfferSettings
    rules: SendingRules
    look: EmailLook
    retention: timedelta  # carts and messages untouched this long, with nothing to send, are deleted
    provider_webhooks: "ProviderWebhookAuth"

    @classmethod
    def from_plugin_configuration(cls, configuration: Iterable[Mapping]) -> "RecoverySettings":
        """Build from Saleor's ``[{"name": ..., "value": ...}]``; missing fields take defaults."""
        values = dict(DEFAULTS)
        for item in configuration:
            if item.get("name") in values and item.get("value") is not None:
                values[item["name"]] = str(item["value"])
        return _parse(tuple(sorted(values.items())))

    @property
    def steps(self) -> int:
        return len(self.schedule)

    def schedule_for(self, cadence: str = "") -> tuple[timedelta, ...]:
        """The schedule of a cart's cadence variant; the main schedule without one."""
        found = self.experiments.cadence(cadence) if cadence else None
        return found.schedule if found else self.schedule

    def follow_up(self) -> timedelta:
        """How long after its first activity a cart's outcome is complete for the verdicts: every
        arm's last step is due by then, plus the attribution window for the shopper to act. Arms
        compared before their carts' outcomes are complete would favour the arm whose buyers come
        sooner (an early cadence), not the one that brings more of them."""
        last = [self.schedule[-1], *(c.schedule[-1] for c in self.experiments.cadences)]
        return max(last) + self.experiments.attribution_window

    def earliest_first_delay(self) -> timedelta:
        """The soonest any cart's first step can be due, whichever cadence it gets."""
        first = [self.schedule[0], *(c.schedule[0] for c in self.experiments.cadences)]
        return max(min(first), self.cutoff)

    def subject_variants(self, step: int, language: str) -> tuple[str, ...]:
        """Subjects to test for ``step`` in ``language``: its own lines, else the untagged ones. A
        language with another number of lines than the untagged ones (possible only in settings
        saved before :func:`subject_language_problem`) reads the untagged ones, so variant n
        means the same arm for every cart."""
        untagged = tuple(s.text for s in self.subjects if s.step == step and s.language is None)
        language = normalize_language(language)
        for wanted in (language, language.split("-")[0]):
            found = tuple(s.text for s in self.subjects if s.step == step and s.language == wanted)
            if found:
                return found if len(found) == len(untagged) else untagged
        return untagged

    def recovery_url(self, checkout_token: str) -> str:
        """The cart's link: ``{token}`` is the checkout token, ``{checkout_id}`` the checkout's
        Saleor GraphQL ID (base64 of ``Checkout:<token>``, URL-encoded)."""
        checkout_id = base64.b64encode(f"Checkout:{checkout_token}".encode()).decode()
        return self.storefront_url.replace("{token}", checkout_token).replace(
            "{checkout_id}", quote(checkout_id, safe="")
        )


# Why an active channel needs a storefront URL (also said by :mod:`.validation` on save).
STOREFRONT_REQUIRED = gettext_lazy(
    "required to activate the plugin: the storefront page that restores a cart, "
    "e.g. https://shop.example.com/cart/{token}"
)


def validate_for_activation(settings: RecoverySettings) -> None:
    """Checks that only matter once mail goes out: a cart link is useless without a storefront."""
    if not settings.storefront_url:
        raise ConfigurationError({"storefront_url": str(STOREFRONT_REQUIRED)})


def subject_language_problem(subjects: Iterable[Subject], steps: int) -> str | None:
    """Checked when the owner saves (not when stored settings are read, so settings saved by an
    earlier version keep working): a variant is one arm in every language — the n-th line of a step
    in a language is variant n there too — so each language needs as many lines for a step as the
    lines without a language. (Stored settings that break this read the untagged lines for that
    language: see :meth:`RecoverySettings.subject_variants`.)"""
    subjects = tuple(subjects)
    for step in range(1, steps + 1):
        counts: dict[str | None, int] = {}
        for subject in subjects:
            if subject.step == step:
                counts[subject.language] = counts.get(subject.language, 0) + 1
        for language, count in counts.items():
            if language is not None and count != counts.get(None):
                return ngettext(
                    "step %(step)s has %(plain)s subject variant but %(count)s in [%(language)s]; give "
                    "each language one line per variant, in the same order (the n-th line is variant n "
                    "in every language)",
                    "step %(step)s has %(plain)s subject variants but %(count)s in [%(language)s]; give "
                    "each language one line per variant, in the same order (the n-th line is variant n "
                    "in every language)",
                    counts.get(None, 0),
                ) % {"step": step, "plain": counts.get(None, 0), "count": count, "language": language}
    return None


ASSIGNMENT_RULE = 2


def experiment_version(schedule, cadences, subjects, holdout_percent) -> str:
    """Stable short key of the variant-defining settings (order of subject lines matters: the
    variant index is the position of the line)."""
    parts = [
        "schedule=" + ",".join(str(int(d.total_seconds())) for d in schedule),
        "cadences="
        + ";".join(
            f"{c.label}:" + ",".join(str(int(d.total_seconds())) for d in c.schedule) for c in cadences
        ),
        "subjects=" + "\n".join(f"{s.step}|{s.language or ''}|{s.text}" for s in subjects),
        f"holdout={holdout_percent}",
        # How arms are assigned (2: all at first activity, holdout per shopper): carts assigned
        # under another rule are never mixed into one comparison.
        f"assignment={ASSIGNMENT_RULE}",
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


@lru_cache(maxsize=256)
def _parse(items: tuple[tuple[str, str], ...]) -> RecoverySettings:
    """Cached on the raw strings: hooks parse the same configuration on every checkout update."""
    errors: dict[str, str] = {}
    v: dict[str, Any] = {}
    for name, text in items:
        try:
            v[name] = BY_NAME[name].parse(text)
        except ValueError as exc:
            errors[name] = str(exc)
    for field, check in _CROSS_CHECKS:
        if field not in errors and field in v:
            problem = check(v)
            if problem:
                errors[field] = problem
    if errors:
        raise ConfigurationError(errors)
    coupon = None
    if v["coupon_step"]:
        coupon = CouponSettings(
            v["coupon_step"],
            v["coupon_type"],
            v["coupon_value"],
            v["coupon_valid_for"],
            v["coupon_min_total"],
        )
    auto = v["upsell_products"] == (AUTO,)
    return RecoverySettings(
        schedule=v["schedule"],
        cutoff=v["cutoff"],
        subjects=v["subjects"],
        storefront_url=v["storefront_url"],
        from_email=v["from_email"],
        smtp=v["smtp_url"],
        holdout_percent=v["holdout_percent"],
        experiments=ExperimentSettings(
            cadences=v["cadences"],
            attribution_window=v["attribution_window"],
            auto_winner=v["auto_winner"],
            winner_min_recipients=v["winner_min_recipients"],
            version=experiment_version(v["schedule"], v["cadences"], v["subjects"], v["holdout_percent"]),
        ),
        offers=OfferSettings(
            coupon=coupon,
            upsell_auto=auto,
            upsell_products=() if auto else v["upsell_products"],
            upsell_count=v["upsell_count"],
            upsell_product_url=v["upsell_product_url"],
            urgency_stock_threshold=v["urgency_stock_threshold"],
            step_content=v["step_content"],
        ),
        rules=SendingRules(
            audience=v["audience"],
            consent_key=v["consent_metadata_key"],
            time_zone=v["time_zone"],
            quiet_hours=v["quiet_hours"],
            frequency_cap=v["frequency_cap"],
            min_cart_total=v["min_cart_total"],
        ),
        look=EmailLook(copy=v["email_copy"], brand_color=v["brand_color"], logo_url=v["logo_url"]),
        retention=v["retention"],
        provider_webhooks=ProviderWebhookAuth(
            v["esp_provider"], v["esp_webhook_secret"], v["esp_signing_key"]
        ),
    )


# Checks across fields: (the field the message belongs to, check over the parsed values). A check
# runs only when its field parsed; a value it needs from another field may be missing (that field
# has its own message), so each check reads the others with .get.


def _subjects(v: dict) -> str | None:
    schedule, subjects = v.get("schedule"), v["subjects"]
    if schedule is None:
        return None
    beyond = sorted({s.step for s in subjects if s.step > len(schedule)})
    if beyond:
        return ngettext(
            "step %(steps)s has a subject but the schedule has only %(schedule)s",
            "steps %(steps)s have a subject but the schedule has only %(schedule)s",
            len(beyond),
        ) % {"steps": ", ".join(map(str, beyond)), "schedule": _step_count(len(schedule))}
    missing = [
        n
        for n in range(1, len(schedule) + 1)
        if not any(s.step == n and s.language is None for s in subjects)
    ]
    if missing:
        return ngettext(
            "step %(items)s has no subject line for all languages; add one such as '1: Forgot something?'",
            "steps %(items)s have no subject line for all languages; add one such as '1: Forgot something?'",
            len(missing),
        ) % {"items": ", ".join(map(str, missing))}
    return None


def _step_count(count: int) -> str:
    """``3 steps``: the schedule's length inside a message whose own plural follows another count."""
    return ngettext("%(count)s step", "%(count)s steps", count) % {"count": count}


def _cadences(v: dict) -> str | None:
    schedule = v.get("schedule")
    for cadence in v["cadences"]:
        if schedule is not None and len(cadence.schedule) != len(schedule):
            return ngettext(
                "cadence %(label)s has %(count)s step but the schedule has %(steps)s; every cadence "
                "needs one delay per step",
                "cadence %(label)s has %(count)s steps but the schedule has %(steps)s; every cadence "
                "needs one delay per step",
                len(cadence.schedule),
            ) % {"label": cadence.label, "count": len(cadence.schedule), "steps": len(schedule)}
    return None


def _coupon_step(v: dict) -> str | None:
    schedule, step = v.get("schedule"), v["coupon_step"]
    if step and schedule is not None and step > len(schedule):
        return ngettext(
            "step %(step)s does not exist: the schedule has %(count)s step",
            "step %(step)s does not exist: the schedule has %(count)s steps",
            len(schedule),
        ) % {"step": step, "count": len(schedule)}
    return None


def _coupon_value(v: dict) -> str | None:
    if v.get("coupon_type") == PERCENTAGE and v["coupon_value"] > 100:
        return _("a percentage coupon cannot take more than 100 %")
    return None


def _step_content(v: dict) -> str | None:
    schedule, coupon_step = v.get("schedule"), v.get("coupon_step")
    for step, content in v["step_content"]:
        if schedule is not None and step > len(schedule):
            return _("step %(step)s does not exist in the schedule") % {"step": step}
        if content == DISCOUNT and step != coupon_step:
            return _("step %(step)s is set to discount but the coupon goes out with coupon_step") % {
                "step": step
            }
        if step == coupon_step and content != DISCOUNT:
            return _("step %(step)s carries the coupon (coupon_step), so its content must be discount") % {
                "step": step
            }
    return None


def _email_copy(v: dict) -> str | None:
    schedule = v.get("schedule")
    if schedule is None:
        return None
    beyond = sorted({line.step for line in v["email_copy"] if line.step > len(schedule)})
    if beyond:
        return ngettext(
            "step %(steps)s has copy but the schedule has only %(schedule)s",
            "steps %(steps)s have copy but the schedule has only %(schedule)s",
            len(beyond),
        ) % {"steps": ", ".join(map(str, beyond)), "schedule": _step_count(len(schedule))}
    return None


def _esp_provider(v: dict) -> str | None:
    provider, key = v["esp_provider"], v.get("esp_signing_key")
    signs = ESP_PROVIDERS.get(provider)
    if not provider:
        if v.get("esp_webhook_secret"):
            return _("required with a provider webhook secret: the provider whose webhooks carry it")
        return None
    if signs == "required" and v.get("esp_webhook_secret") and key == "":
        return _("%(provider)s signs its webhooks: set the provider webhook signing key too") % {
            "provider": provider
        }
    if not signs and key:
        return _("%(provider)s does not sign its webhooks: leave the provider webhook signing key empty") % {
            "provider": provider
        }
    return None


_CROSS_CHECKS: tuple[tuple[str, Callable[[dict], str | None]], ...] = (
    ("subjects", _subjects),
    ("cadences", _cadences),
    ("coupon_step", _coupon_step),
    ("coupon_value", _coupon_value),
    ("step_content", _step_content),
    ("email_copy", _email_copy),
    ("esp_provider", _esp_provider),
)
