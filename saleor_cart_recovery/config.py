"""One settings object per channel, parsed and validated in one place.

Saleor stores every Dashboard value as a string; :meth:`RecoverySettings.from_plugin_configuration`
turns that list into typed values or raises :class:`ConfigurationError` naming each bad field.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from email.utils import parseaddr
from functools import lru_cache
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from . import experiment_settings, offer_settings
from .durations import parse_duration
from .exceptions import ConfigurationError
from .url_templates import parse_url_template

MAX_STEPS = 10
DEFAULT_VALUES: dict[str, str] = {
    "schedule": "1h, 1d, 3d",
    "cutoff": "30m",
    "subjects": "\n".join(
        [
            "1: Forgot something?",
            "2: Your cart is still waiting for you",
            "3: Last call: your cart is about to expire",
            "1 [tr]: Bir şey mi unuttunuz?",
            "2 [tr]: Sepetiniz sizi bekliyor",
            "3 [tr]: Son çağrı: sepetinizin süresi dolmak üzere",
        ]
    ),
    "storefront_url": "",
    "from_email": "",
    "smtp_url": "",
    "holdout_percent": "0",
    **experiment_settings.DEFAULTS,
    **offer_settings.DEFAULTS,
}
MAX_HOLDOUT_PERCENT = 50
_SUBJECT_LINE = re.compile(r"^(\d+)\s*(?:\[\s*([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]+)?)\s*\])?\s*:\s*(.*)$")


@dataclass(frozen=True)
class Subject:
    step: int
    language: str | None  # None: for every language without its own line
    text: str


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str
    password: str
    use_tls: bool
    use_ssl: bool


@dataclass(frozen=True)
class RecoverySettings:
    schedule: tuple[timedelta, ...]
    cutoff: timedelta
    subjects: tuple[Subject, ...]
    storefront_url: str
    from_email: str
    smtp: SmtpConfig | None  # None: Django's configured email backend
    holdout_percent: Decimal  # share of new carts that get no email (control group)
    experiments: experiment_settings.ExperimentSettings  # cadence variants, attribution, winner
    offers: offer_settings.OfferSettings  # coupon step, upsell, true urgency, content per step

    @classmethod
    def from_plugin_configuration(cls, configuration: Iterable[Mapping]) -> "RecoverySettings":
        """Build from Saleor's ``[{"name": ..., "value": ...}]``; missing fields take defaults."""
        values = dict(DEFAULT_VALUES)
        for item in configuration:
            if item.get("name") in values and item.get("value") is not None:
                values[item["name"]] = str(item["value"])
        return _parse(tuple(sorted(values.items())))

    @property
    def steps(self) -> int:
        return len(self.schedule)

    def delay(self, step: int) -> timedelta:
        """Quiet time after the last cart activity before ``step`` (1-based) is due."""
        return max(self.schedule[step - 1], self.cutoff)

    def schedule_for(self, cadence: str = "") -> tuple[timedelta, ...]:
        """The schedule of a cart's cadence variant; the main schedule without one."""
        found = self.experiments.cadence(cadence) if cadence else None
        return found.schedule if found else self.schedule

    def earliest_first_delay(self) -> timedelta:
        """The soonest any cart's first step can be due, whichever cadence it gets."""
        first = [self.schedule[0], *(c.schedule[0] for c in self.experiments.cadences)]
        return max(min(first), self.cutoff)

    def subject_variants(self, step: int, language: str) -> tuple[str, ...]:
        """Subjects to test for ``step`` in ``language``: its own lines, else the untagged ones."""
        language = normalize_language(language)
        for wanted in (language, language.split("-")[0], None):
            found = tuple(s.text for s in self.subjects if s.step == step and s.language == wanted)
            if found:
                return found
        return ()

    def recovery_url(self, checkout_token: str) -> str:
        return self.storefront_url.replace("{token}", checkout_token)


def validate_for_activation(settings: RecoverySettings) -> None:
    """Checks that only matter once mail goes out: a cart link is useless without a storefront."""
    if not settings.storefront_url:
        raise ConfigurationError(
            {
                "storefront_url": "required to activate the plugin: the storefront page that restores "
                "a cart, e.g. https://shop.example.com/cart/{token}"
            }
        )


def normalize_language(code: str | None) -> str:
    return (code or "en").replace("_", "-").lower()


@lru_cache(maxsize=256)
def _parse(items: tuple[tuple[str, str], ...]) -> RecoverySettings:
    """Cached on the raw strings: hooks parse the same configuration on every checkout update."""
    values = dict(items)
    errors: dict[str, str] = {}

    def field(name, parser):
        try:
            return parser(values[name])
        except ValueError as exc:
            errors[name] = str(exc)
            return None

    schedule = field("schedule", _parse_schedule)
    cutoff = field("cutoff", parse_duration)
    subjects = field("subjects", _parse_subjects)
    storefront_url = field("storefront_url", _parse_storefront_url)
    from_email = field("from_email", _parse_from_email)
    smtp = field("smtp_url", parse_smtp_url)
    holdout_percent = field("holdout_percent", _parse_holdout_percent)
    if schedule and subjects:
        beyond = sorted({s.step for s in subjects if s.step > len(schedule)})
        if beyond:
            errors["subjects"] = (
                f"step {', '.join(map(str, beyond))} has a subject but the schedule has only "
                f"{len(schedule)} step(s)"
            )
        missing = [
            n
            for n in range(1, len(schedule) + 1)
            if not any(s.step == n and s.language is None for s in subjects)
        ]
        if missing and "subjects" not in errors:
            errors["subjects"] = (
                f"step {', '.join(map(str, missing))} has no subject line for all languages; "
                "add a line such as '1: Forgot something?'"
            )
    experiments = experiment_settings.parse(
        values, errors, schedule=schedule, subjects=subjects, holdout_percent=holdout_percent
    )
    offers = offer_settings.parse(values, errors, schedule=schedule)
    if errors or offers is None or experiments is None:
        raise ConfigurationError(errors)
    return RecoverySettings(
        schedule=schedule,
        cutoff=cutoff,
        subjects=subjects,
        storefront_url=storefront_url,
        from_email=from_email,
        smtp=smtp,
        holdout_percent=holdout_percent,
        experiments=experiments,
        offers=offers,
    )


def _parse_holdout_percent(text: str) -> Decimal:
    value = text.strip().rstrip("%").strip() or "0"
    try:
        percent = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"'{text.strip()}' is not a number; give a percentage such as 10") from None
    if not percent.is_finite() or not 0 <= percent <= MAX_HOLDOUT_PERCENT:
        raise ValueError(f"must be between 0 and {MAX_HOLDOUT_PERCENT} (percent of carts that get no email)")
    if percent != percent.quantize(Decimal("0.01")):
        raise ValueError("at most two decimals, e.g. 12.5")
    return percent


def _parse_schedule(text: str) -> tuple[timedelta, ...]:
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    if not parts:
        raise ValueError("give at least one delay, e.g. '1h, 1d, 3d'")
    if len(parts) > MAX_STEPS:
        raise ValueError(f"at most {MAX_STEPS} steps are allowed, got {len(parts)}")
    delays = tuple(parse_duration(p) for p in parts)
    for earlier, later, text_later in zip(delays, delays[1:], parts[1:], strict=False):
        if later <= earlier:
            raise ValueError(
                f"delays must grow from step to step; '{text_later}' is not after the step before it"
            )
    return delays


def _parse_subjects(text: str) -> tuple[Subject, ...]:
    subjects = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = _SUBJECT_LINE.match(line)
        if not match:
            raise ValueError(
                f"line {number} ('{line}') must look like '1: Forgot something?' or '1 [tr]: ...'"
            )
        step, language, subject = int(match.group(1)), match.group(2), match.group(3).strip()
        if step < 1:
            raise ValueError(f"line {number}: steps are numbered from 1")
        if not subject:
            raise ValueError(f"line {number}: the subject is empty")
        if len(subject) > 200:
            raise ValueError(f"line {number}: the subject is longer than 200 characters")
        subjects.append(Subject(step, normalize_language(language) if language else None, subject))
    if not subjects:
        raise ValueError("give at least one subject line, e.g. '1: Forgot something?'")
    return tuple(subjects)


def _parse_storefront_url(text: str) -> str:
    # Empty is allowed while the plugin is inactive; see validate_for_activation.
    return parse_url_template(text, "token", "the checkout token")


def _parse_from_email(text: str) -> str:
    value = text.strip()
    if not value:
        return ""
    _, address = parseaddr(value)
    try:
        validate_email(address)
    except ValidationError:
        raise ValueError(f"'{value}' is not an email address such as 'Shop <shop@example.com>'") from None
    return value


def parse_smtp_url(text: str) -> SmtpConfig | None:
    value = text.strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(
            "must start with smtp:// or smtps://, e.g. smtp://user:pass@mail.example.com:587?tls=true"
        )
    if not parts.hostname:
        raise ValueError("has no host")
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
    except ValueError:
        raise ValueError("has an invalid port") from None
    flags = {k.lower(): v[-1].lower() for k, v in parse_qs(parts.query).items()}
    unknown = set(flags) - {"tls", "ssl"}
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))}; use tls=true or ssl=true")
    bad = [k for k, v in flags.items() if v not in ("true", "false")]
    if bad:
        raise ValueError(f"option {bad[0]} must be true or false")
    use_ssl = parts.scheme == "smtps" or flags.get("ssl") == "true"
    use_tls = flags.get("tls") == "true"
    if use_ssl and use_tls:
        raise ValueError("choose either tls (STARTTLS) or ssl, not both")
    return SmtpConfig(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        use_tls=use_tls,
        use_ssl=use_ssl,
    )
