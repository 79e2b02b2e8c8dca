"""The text formats of the owner's sending rules: who may be mailed, when, and how often.

Each parser reads one Dashboard field and raises :class:`ValueError` with a message a shop owner
can act on (see :mod:`.parsers` for the error style). The rules themselves are applied at send time
by :mod:`saleor_cart_recovery.series.rules`.
"""

import re
from dataclasses import dataclass
from datetime import time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.utils.translation import gettext as _

from .parsers import parse_duration

ALL, CONSENTED = "all", "consented"
AUDIENCES = (ALL, CONSENTED)
MAX_QUIET_WINDOWS = 4
# The quiet windows together leave at least this much of each day for sending.
MIN_OPEN_PER_DAY = timedelta(hours=4)
MAX_CAP_COUNT = 100
CAP_PERIOD_MIN, CAP_PERIOD_MAX = timedelta(hours=1), timedelta(days=30)

_METADATA_KEY = re.compile(r"^[A-Za-z0-9_.:/-]{1,100}$")
_WINDOW = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
_CAP = re.compile(r"^(\d+)\s*(?:per|/)\s*(\S+)$", re.IGNORECASE)


@dataclass(frozen=True)
class QuietWindow:
    """A daily window of wall-clock time with no sends; ``end`` before ``start`` crosses midnight."""

    start: time
    end: time

    @property
    def length(self) -> timedelta:
        minutes = (self.end.hour * 60 + self.end.minute) - (self.start.hour * 60 + self.start.minute)
        return timedelta(minutes=minutes % (24 * 60))

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class FrequencyCap:
    count: int  # at most this many reminders to one address in the channel ...
    period: timedelta  # ... within any period this long


def parse_audience(text: str) -> str:
    value = text.strip().lower() or ALL
    if value not in AUDIENCES:
        raise ValueError(
            _(
                "'%(value)s' is not an audience; use all (every checkout with an address) or consented "
                "(only shoppers whose consent is in the metadata)"
            )
            % {"value": text.strip()}
        )
    return value


def parse_metadata_key(text: str) -> str:
    value = text.strip()
    if not _METADATA_KEY.match(value):
        raise ValueError(
            _(
                "'%(value)s' is not a metadata key; use 1 to 100 letters, digits or . _ : / -, e.g. "
                "marketing_consent"
            )
            % {"value": value}
        )
    return value


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def zone_or_none(name: str) -> ZoneInfo | None:
    """The IANA zone of that name (as the tz database spells it), or ``None``; never raises, so a
    value a storefront put in metadata can be read safely."""
    if not isinstance(name, str) or name not in _known_zones():
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def parse_time_zone(text: str) -> ZoneInfo:
    value = text.strip() or "UTC"
    zone = zone_or_none(value)
    if zone is None:
        raise ValueError(
            _("'%(value)s' is not an IANA time zone; use a name such as Europe/Istanbul or UTC")
            % {"value": value}
        )
    return zone


def parse_quiet_hours(text: str) -> tuple[QuietWindow, ...]:
    """``21:00-08:00``, or several windows separated by commas; empty → none."""
    windows: list[QuietWindow] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        match = _WINDOW.match(part)
        if not match:
            raise ValueError(
                _("'%(part)s' is not a window; write it as HH:MM-HH:MM, e.g. 21:00-08:00") % {"part": part}
            )
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise ValueError(
                _("'%(part)s': hours go from 00 to 23 and minutes from 00 to 59") % {"part": part}
            )
        window = QuietWindow(time(h1, m1), time(h2, m2))
        if window.start == window.end:
            raise ValueError(_("'%(part)s' starts and ends at the same time") % {"part": part})
        windows.append(window)
    if len(windows) > MAX_QUIET_WINDOWS:
        raise ValueError(
            _("at most %(max_quiet_windows)s windows, got %(count)s")
            % {"max_quiet_windows": MAX_QUIET_WINDOWS, "count": len(windows)}
        )
    for index, window in enumerate(windows):
        for other in windows[index + 1 :]:
            if _overlap(window, other):
                raise ValueError(
                    _("windows %(window)s and %(other)s overlap; merge them into one")
                    % {"window": window, "other": other}
                )
    quiet = sum((w.length for w in windows), timedelta())
    if timedelta(days=1) - quiet < MIN_OPEN_PER_DAY:
        raise ValueError(
            _("the windows leave only %(hours)s a day for reminders; leave at least %(hours2)s")
            % {"hours": _hours(timedelta(days=1) - quiet), "hours2": _hours(MIN_OPEN_PER_DAY)}
        )
    return tuple(windows)


def _minutes(window: QuietWindow) -> set[int]:
    start = window.start.hour * 60 + window.start.minute
    return {(start + m) % (24 * 60) for m in range(int(window.length.total_seconds() // 60))}


def _overlap(a: QuietWindow, b: QuietWindow) -> bool:
    return bool(_minutes(a) & _minutes(b))


def _hours(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}" if minutes % 60 else f"{minutes // 60}h"


def parse_frequency_cap(text: str) -> FrequencyCap | None:
    """``1 per 24h`` (also ``2/7d``); empty → no cap."""
    value = text.strip()
    if not value:
        return None
    match = _CAP.match(value)
    if not match:
        raise ValueError(
            _("'%(value)s' is not a cap; write it as a count per duration, e.g. 1 per 24h") % {"value": value}
        )
    digits, period_text = match.groups()
    count = int(digits) if len(digits) <= 4 else MAX_CAP_COUNT + 1
    if not 1 <= count <= MAX_CAP_COUNT:
        raise ValueError(
            _("the count must be from 1 to %(max_cap_count)s (leave the field empty for no cap)")
            % {"max_cap_count": MAX_CAP_COUNT}
        )
    period = parse_duration(
        period_text, minimum=CAP_PERIOD_MIN, maximum=CAP_PERIOD_MAX, why=_("For example 24h.")
    )
    return FrequencyCap(count, period)


def consent_given(value: object) -> bool:
    """A metadata value that means yes (``true``, ``yes``, ``1``, any case)."""
    return isinstance(value, str) and value.strip().lower() in ("true", "yes", "1")
