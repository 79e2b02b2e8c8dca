"""The text formats of the Dashboard fields that are more than one number or link.

Each parser reads one field on its own and raises :class:`ValueError` with a message a shop owner
can act on; checks that need two fields (a subject for a step the schedule lacks, a coupon on a
step that does not exist) are made in :mod:`.channel` once every field has been read.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

from django.utils.translation import gettext as _

from .parsers import normalize_language, parse_delays, split_list

MAX_STEPS = 10
MIN_DELAY = timedelta(seconds=10)
MAX_DELAY = timedelta(days=90)  # no step later than this after the last cart activity
MAX_SUBJECT_LENGTH = 200
MAX_CADENCES = 5
MAX_UPSELL_REFERENCES = 20

REMINDER, HELP, URGENCY, DISCOUNT = "reminder", "help", "urgency", "discount"
CONTENT_TYPES = (REMINDER, HELP, URGENCY, DISCOUNT)
PERCENTAGE, FIXED = "percentage", "fixed"
AUTO = "auto"

_SUBJECT_LINE = re.compile(r"^(\d+)\s*(?:\[\s*([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]+)?)\s*\])?\s*:\s*(.*)$")
_CADENCE = re.compile(r"^([A-Za-z0-9_-]{1,16})\s*:\s*(.+)$")
_CONTENT_LINE = re.compile(r"^(\d+)\s*:\s*([A-Za-z]+)$")


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
class Cadence:
    label: str
    schedule: tuple[timedelta, ...]


def _numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    """Non-empty lines, stripped, with their line number (messages name the line)."""
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.strip():
            yield number, raw.strip()


def parse_schedule(text: str) -> tuple[timedelta, ...]:
    return parse_delays(text, minimum=MIN_DELAY, maximum=MAX_DELAY, max_steps=MAX_STEPS)


def parse_subjects(text: str) -> tuple[Subject, ...]:
    """``step: subject`` or ``step [lang]: subject`` per line."""
    subjects = []
    for number, line in _numbered_lines(text):
        match = _SUBJECT_LINE.match(line)
        if not match:
            raise ValueError(
                _("line %(number)s ('%(line)s') must look like '1: Forgot something?' or '1 [tr]: ...'")
                % {"number": number, "line": line}
            )
        step, language, subject = int(match.group(1)), match.group(2), match.group(3).strip()
        if not 1 <= step <= MAX_STEPS:
            raise ValueError(
                _("line %(number)s: steps are numbered from 1 to %(max_steps)s")
                % {"number": number, "max_steps": MAX_STEPS}
            )
        if not subject:
            raise ValueError(_("line %(number)s: the subject is empty") % {"number": number})
        if len(subject) > MAX_SUBJECT_LENGTH:
            raise ValueError(
                _("line %(number)s: the subject is longer than %(max_subject_length)s characters")
                % {"number": number, "max_subject_length": MAX_SUBJECT_LENGTH}
            )
        subjects.append(Subject(step, normalize_language(language) if language else None, subject))
    if not subjects:
        raise ValueError(_("give at least one subject line, e.g. '1: Forgot something?'"))
    return tuple(subjects)


def parse_smtp_url(text: str) -> SmtpConfig | None:
    """``smtp://user:pass@host:port?tls=true`` or ``smtps://…``; empty → ``None`` (Django's email)."""
    value = text.strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(
            _("must start with smtp:// or smtps://, e.g. smtp://user:pass@mail.example.com:587?tls=true")
        )
    if not parts.hostname:
        raise ValueError(_("has no host"))
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
    except ValueError:
        raise ValueError(_("has an invalid port")) from None
    flags = {k.lower(): v[-1].lower() for k, v in parse_qs(parts.query).items()}
    unknown = set(flags) - {"tls", "ssl"}
    if unknown:
        raise ValueError(
            _("unknown option(s) %(items)s; use tls=true or ssl=true") % {"items": ", ".join(sorted(unknown))}
        )
    bad = [k for k, v in flags.items() if v not in ("true", "false")]
    if bad:
        raise ValueError(_("option %(bad)s must be true or false") % {"bad": bad[0]})
    use_ssl = parts.scheme == "smtps" or flags.get("ssl") == "true"
    use_tls = flags.get("tls") == "true"
    if use_ssl and use_tls:
        raise ValueError(_("choose either tls (STARTTLS) or ssl, not both"))
    return SmtpConfig(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        use_tls=use_tls,
        use_ssl=use_ssl,
    )


def parse_cadences(text: str) -> tuple[Cadence, ...]:
    """``A: 1h, 1d, 3d | B: 12h, 2d, 8d``; empty → no cadence test."""
    chunks = [c.strip() for c in re.split(r"[|\n]", text) if c.strip()]
    if not chunks:
        return ()
    if len(chunks) == 1:
        raise ValueError(_("give at least two cadences to compare, e.g. 'A: 1h, 1d, 3d | B: 12h, 2d, 8d'"))
    if len(chunks) > MAX_CADENCES:
        raise ValueError(
            _("at most %(max_cadences)s cadences, got %(count)s")
            % {"max_cadences": MAX_CADENCES, "count": len(chunks)}
        )
    cadences: list[Cadence] = []
    for chunk in chunks:
        match = _CADENCE.match(chunk)
        if not match:
            raise ValueError(
                _(
                    "'%(chunk)s' must look like 'A: 1h, 1d, 3d' (a label of letters, digits, - or _, then "
                    "delays)"
                )
                % {"chunk": chunk}
            )
        label, delays = match.groups()
        schedule = parse_delays(
            delays,
            minimum=MIN_DELAY,
            maximum=MAX_DELAY,
            max_steps=MAX_STEPS,
            what=_("cadence %(label)s") % {"label": label},
        )
        if any(c.label == label for c in cadences):
            raise ValueError(_("cadence label %(label)s is used twice") % {"label": label})
        cadences.append(Cadence(label, schedule))
    return tuple(cadences)


def parse_coupon_step(text: str) -> int | None:
    value = text.strip()
    if not value or value == "0":
        return None
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_STEPS:
        raise ValueError(
            _("'%(value)s' is not a step number; give e.g. 3, or leave empty for no coupon")
            % {"value": value}
        )
    return int(value)


def parse_coupon_type(text: str) -> str:
    value = text.strip().lower()
    if value not in (PERCENTAGE, FIXED):
        raise ValueError(
            _("'%(value)s' is not a coupon type; use percentage or fixed") % {"value": text.strip()}
        )
    return value


def parse_upsell_products(text: str) -> tuple[str, ...]:
    """Product references in the owner's order, or ``("auto",)``."""
    references = tuple(dict.fromkeys(split_list(text)))
    if AUTO in (r.lower() for r in references):
        if len(references) > 1:
            raise ValueError(_("'auto' picks the products itself; give either auto or a list of products"))
        return (AUTO,)
    if len(references) > MAX_UPSELL_REFERENCES:
        raise ValueError(
            _("at most %(max_upsell_references)s products, got %(count)s")
            % {"max_upsell_references": MAX_UPSELL_REFERENCES, "count": len(references)}
        )
    if any(len(r) > 255 for r in references):
        raise ValueError(_("a product reference is longer than 255 characters"))
    return references


def parse_step_content(text: str) -> tuple[tuple[int, str], ...]:
    """``step: reminder|help|urgency|discount`` per line, sorted by step."""
    chosen: dict[int, str] = {}
    for number, line in _numbered_lines(text):
        match = _CONTENT_LINE.match(line)
        if not match:
            raise ValueError(
                _("line %(number)s ('%(line)s') must look like '2: urgency'")
                % {"number": number, "line": line}
            )
        step, content = int(match.group(1)), match.group(2).lower()
        if content not in CONTENT_TYPES:
            raise ValueError(
                _("line %(number)s: '%(content)s' is not one of %(items)s")
                % {"number": number, "content": content, "items": ", ".join(CONTENT_TYPES)}
            )
        if not 1 <= step <= MAX_STEPS:
            raise ValueError(
                _("line %(number)s: step %(step)s does not exist in the schedule")
                % {"number": number, "step": step}
            )
        if step in chosen:
            raise ValueError(_("step %(step)s is given twice") % {"step": step})
        chosen[step] = content
    return tuple(sorted(chosen.items()))


# Characters that fit into a URL's user:password without escaping.
_WEBHOOK_SECRET = re.compile(r"^([A-Za-z0-9._~-]{1,64}):([A-Za-z0-9._~-]{16,128})$")


def parse_webhook_secret(text: str) -> str:
    """``user:password`` for the provider webhooks' basic auth; empty stays empty (events refused)."""
    value = text.strip()
    if value and not _WEBHOOK_SECRET.match(value):
        raise ValueError(
            _(
                "must be user:password, the password at least 16 characters, letters, digits and . _ ~ - "
                "only (they go into the webhook URL), e.g. events:0f3c9a7d2b51e8a4"
            )
        )
    return value


# The mail providers whose event webhooks are read (django-anymail's names, the webhook path's
# ``<provider>``) and whether each signs its posts: "required" (refused without its key), "optional"
# (checked when the key is set) or "" (never signs: the basic-auth secret alone authenticates).
ESP_PROVIDERS = {
    "amazon_ses": "",
    "brevo": "",
    "mailersend": "required",
    "mailgun": "required",
    "mailjet": "",
    "mailtrap": "optional",
    "postmark": "",
    "sendgrid": "optional",
    "sparkpost": "",
}


def parse_esp_provider(text: str) -> str:
    """One of :data:`ESP_PROVIDERS`; empty stays empty (events refused)."""
    value = text.strip().lower()
    if value and value not in ESP_PROVIDERS:
        raise ValueError(_("must be one of %(items)s") % {"items": ", ".join(ESP_PROVIDERS)})
    return value


def parse_signing_key(text: str) -> str:
    """A provider's webhook signing key, one line of printable ASCII; empty stays empty."""
    value = text.strip()
    if len(value) > 1000 or not all(32 < ord(char) < 127 for char in value):
        raise ValueError(_("must be the key as your provider shows it: one line, at most 1000 characters"))
    return value
