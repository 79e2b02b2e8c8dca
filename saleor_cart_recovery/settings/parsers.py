"""Reading what shop owners type: durations, numbers, switches, links and addresses.

Every setting and every argument (``--since``, ``?since=``) is read through these helpers, so there
is one error style: a :class:`ValueError` whose message says what to write instead. Every number
and duration has a minimum and a maximum, checked before a value is built, so no text can
overflow a date later.
"""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.utils import parseaddr
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.mail.message import sanitize_address
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

    Text = str | _StrPromise  # a message fragment, maybe translated lazily
else:
    Text = str

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_LIST_SEPARATOR = re.compile(r"[,\s]+")
# Arguments such as --since reach back at most this far.
MAX_LOOKBACK = timedelta(days=3650)


def format_duration(value: timedelta) -> str:
    """Inverse of :func:`parse_duration` using the largest exact unit."""
    seconds = int(value.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def parse_duration(text: str, *, minimum: timedelta, maximum: timedelta, why: Text = "") -> timedelta:
    """One duration (``90s``, ``15m``, ``1h``, ``2d``) from ``minimum`` to ``maximum``.

    ``why`` is a sentence of its own after the out-of-bounds message (e.g. ``"For example 7d."``)."""
    value = text.strip()
    match = _DURATION.match(value.lower())
    if not match:
        raise ValueError(
            _("'%(value)s' is not a duration; use a number with s, m, h or d, e.g. 90s, 15m, 1h, 2d")
            % {"value": value}
        )
    digits = match.group(1).lstrip("0") or "0"
    # More digits than any bound has: out of bounds, without building a huge number.
    seconds = int(digits) * _UNITS[match.group(2)] if len(digits) <= 15 else 10**20
    if seconds <= 0:
        raise ValueError(_("'%(value)s' must be longer than zero") % {"value": value})
    if not minimum.total_seconds() <= seconds <= maximum.total_seconds():
        bounds = {
            "value": value,
            "low": format_duration(minimum),
            "high": format_duration(maximum),
            "why": why,
        }
        raise ValueError(
            _("must be between %(low)s and %(high)s. %(why)s") % bounds
            if why
            else _("'%(value)s' must be between %(low)s and %(high)s") % bounds
        )
    return timedelta(seconds=seconds)


def split_list(text: str) -> list[str]:
    """Items separated by commas or white space, empty items dropped."""
    return [part for part in _LIST_SEPARATOR.split(text.strip()) if part]


def parse_delays(
    text: str, *, minimum: timedelta, maximum: timedelta, max_steps: int, what: Text = ""
) -> tuple[timedelta, ...]:
    """A growing list of delays, one per step (``1h, 1d, 3d``); ``what`` names the list in its
    messages (``cadence A: …``)."""
    try:
        return _delays(split_list(text), minimum=minimum, maximum=maximum, max_steps=max_steps)
    except ValueError as exc:
        if not what:
            raise
        raise ValueError(labelled(what, str(exc))) from None


def _delays(
    parts: list[str], *, minimum: timedelta, maximum: timedelta, max_steps: int
) -> tuple[timedelta, ...]:
    if not parts:
        raise ValueError(_("give at least one delay, e.g. '1h, 1d, 3d'"))
    if len(parts) > max_steps:
        raise ValueError(
            ngettext(
                "at most %(max)s step is allowed, got %(count)s",
                "at most %(max)s steps are allowed, got %(count)s",
                max_steps,
            )
            % {"max": max_steps, "count": len(parts)}
        )
    delays = tuple(parse_duration(p, minimum=minimum, maximum=maximum) for p in parts)
    for earlier, later, later_text in zip(delays, delays[1:], parts[1:], strict=False):
        if later <= earlier:
            raise ValueError(
                _("delays must grow from step to step; '%(delay)s' is not after the step before it")
                % {"delay": later_text}
            )
    return delays


def labelled(label: Text, problem: str) -> str:
    """A problem said of a setting or a part of one: every settings message starts with what it is
    about (``Reminder schedule: …``, ``cadence A: …``)."""
    return _("%(label)s: %(problem)s") % {"label": label, "problem": problem}


def parse_int(text: str, *, low: int, high: int, unit: Text) -> int:
    """A whole number from ``low`` to ``high``; ``unit`` says what it counts."""
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise ValueError(
            _("'%(value)s' is not a whole number from %(low)s to %(high)s (%(unit)s)")
            % {"value": value, "low": low, "high": high, "unit": unit}
        )
    return int(value)


def parse_decimal(text: str, *, low: Decimal, high: Decimal, what: Text, example: str) -> Decimal:
    """A number with at most two decimals from ``low`` to ``high`` (a trailing ``%`` is allowed)."""
    value = text.strip().rstrip("%").strip()
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(
            _("'%(value)s' is not %(what)s; give e.g. %(example)s")
            % {"value": text.strip(), "what": what, "example": example}
        ) from None
    if not number.is_finite() or not low <= number <= high:
        raise ValueError(_("must be between %(low)s and %(high)s") % {"low": low, "high": high, "why": ""})
    if number != number.quantize(Decimal("0.01")):
        raise ValueError(_("at most two decimals, e.g. %(example)s") % {"example": example})
    return number


def parse_bool(text: str) -> bool:
    """``true``/``false`` as the Dashboard's switch stores them (an unset switch is ``""``)."""
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(_("'%(value)s' is not true or false") % {"value": text})


def parse_url_template(text: str, placeholders: "dict[str, Text]") -> str:
    """An http(s) link with at least one of ``placeholders`` (one or two: name → what goes there)
    and no other ``{…}``; empty stays empty."""
    url = text.strip()
    if not url:
        return ""
    if len(url) > 2000:
        raise ValueError(_("is longer than 2000 characters"))
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(_("'%(value)s' is not an http(s) URL") % {"value": url})
    names = [f"{{{name}}}" for name in placeholders]
    whats = list(placeholders.values())
    if not any(name in url for name in names):
        if len(names) == 1:
            raise ValueError(
                _("must contain %(first)s (%(first_what)s)") % {"first": names[0], "first_what": whats[0]}
            )
        missing = {"first": names[0], "first_what": whats[0], "second": names[1], "second_what": whats[1]}
        raise ValueError(
            _("must contain %(first)s (%(first_what)s) or %(second)s (%(second_what)s)") % missing
        )
    allowed = "|".join(re.escape(name) for name in placeholders)
    if re.search(rf"\{{(?!(?:{allowed})\}})", url):
        if len(names) == 1:
            raise ValueError(_("only the placeholder %(first)s is allowed") % {"first": names[0]})
        only = {"first": names[0], "second": names[1]}
        raise ValueError(_("only the placeholders %(first)s and %(second)s are allowed") % only)
    return url


def parse_sender(text: str) -> str:
    """One ``Shop <shop@example.com>`` or bare address, on one line; empty stays empty. Checked as
    the mail will use it (Django's ``sanitize_address``), so a sender that cannot be sent is refused
    here rather than at every send."""
    value = text.strip()
    if not value:
        return ""
    problem = _("'%(value)s' is not one email address such as 'Shop <shop@example.com>'") % {"value": value}
    if "\r" in value or "\n" in value:
        raise ValueError(_("%(problem)s (it must be one line)") % {"problem": problem})
    _name, address = parseaddr(value)
    try:
        sanitize_address(value, "utf-8")
        validate_email(address)
    except (ValueError, ValidationError):
        raise ValueError(problem) from None
    return value


def normalize_language(code: str | None) -> str:
    """``pt_BR`` → ``pt-br``; no language → ``en``."""
    return (code or "en").replace("_", "-").lower()


def parse_since(text: str) -> datetime:
    """``2026-03-01`` (UTC midnight), an ISO date-time, or a duration back from now (``30d``)."""
    value = text.strip()
    if _DURATION.match(value.lower()):
        return timezone.now() - parse_duration(value, minimum=timedelta(seconds=1), maximum=MAX_LOOKBACK)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            _("'%(value)s' is not a date (2026-03-01), date-time or duration (30d)") % {"value": value}
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
