"""Durations as shop owners write them: ``90s``, ``15m``, ``1h``, ``2d``."""

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PATTERN = re.compile(r"^(\d+)\s*([smhd])$")


def parse_duration(text: str) -> timedelta:
    """Parse one duration; raise ``ValueError`` with a message a shop owner can act on."""
    match = _PATTERN.match(text.strip().lower())
    if not match:
        raise ValueError(
            f"'{text.strip()}' is not a duration; use a number with s, m, h or d, e.g. 90s, 15m, 1h, 2d"
        )
    amount, unit = int(match.group(1)), match.group(2)
    if amount <= 0:
        raise ValueError(f"'{text.strip()}' must be longer than zero")
    return timedelta(seconds=amount * _UNITS[unit])


def format_duration(value: timedelta) -> str:
    """Inverse of :func:`parse_duration` using the largest exact unit."""
    seconds = int(value.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"
