"""Experiment settings: cadence variants, attribution window and the automatic winner.

Parsed by :func:`parse` as part of :mod:`config` (same error style: one message per bad field).
The experiment *version* is a short digest of everything that defines what the arms receive
(schedule, cadences, subjects, holdout share): changing any of it starts a new version, and
results of older versions stay readable in the report under their own key.
"""

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .durations import parse_duration

DEFAULTS: dict[str, str] = {
    "cadences": "",
    "attribution_window": "7d",
    "auto_winner": "false",
    "winner_min_recipients": "200",
}
MAX_CADENCES = 5
MAX_ATTRIBUTION_WINDOW = timedelta(days=90)
_CADENCE = re.compile(r"^([A-Za-z0-9_-]{1,16})\s*:\s*(.+)$")


@dataclass(frozen=True)
class Cadence:
    label: str
    schedule: tuple[timedelta, ...]


@dataclass(frozen=True)
class ExperimentSettings:
    cadences: tuple[Cadence, ...]  # empty: every cart follows the main schedule
    attribution_window: timedelta  # an order this soon after a reminder counts as recovered by it
    auto_winner: bool  # shift new carts to a variant once it is clearly best
    winner_min_recipients: int  # per variant, before any verdict (report and automatic winner)
    version: str

    def cadence(self, label: str) -> Cadence | None:
        return next((c for c in self.cadences if c.label == label), None)


def parse(values: dict, errors: dict[str, str], *, schedule, subjects, holdout_percent):
    """Return :class:`ExperimentSettings`, or ``None`` after recording messages in ``errors``."""
    parsed: dict[str, Any] = {}
    for name, parser in (
        ("cadences", lambda text: _parse_cadences(text, schedule)),
        ("attribution_window", _parse_window),
        ("auto_winner", _parse_bool),
        ("winner_min_recipients", _parse_min_recipients),
    ):
        try:
            parsed[name] = parser(values.get(name, DEFAULTS[name]))
        except ValueError as exc:
            errors[name] = str(exc)
    if errors or schedule is None or subjects is None:
        return None
    return ExperimentSettings(
        **parsed, version=experiment_version(schedule, parsed["cadences"], subjects, holdout_percent)
    )


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
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def _parse_cadences(text: str, schedule) -> tuple[Cadence, ...]:
    chunks = [c.strip() for c in re.split(r"[|\n]", text) if c.strip()]
    if not chunks:
        return ()
    if len(chunks) == 1:
        raise ValueError("give at least two cadences to compare, e.g. 'A: 1h, 1d, 3d | B: 12h, 2d, 8d'")
    if len(chunks) > MAX_CADENCES:
        raise ValueError(f"at most {MAX_CADENCES} cadences, got {len(chunks)}")
    cadences: list[Cadence] = []
    for chunk in chunks:
        match = _CADENCE.match(chunk)
        if not match:
            raise ValueError(
                f"'{chunk}' must look like 'A: 1h, 1d, 3d' (a label of letters, digits, - or _, then delays)"
            )
        label, delays_text = match.groups()
        parts = [p for p in re.split(r"[,\s]+", delays_text) if p]
        try:
            delays = tuple(parse_duration(p) for p in parts)
        except ValueError as exc:
            raise ValueError(f"cadence {label}: {exc}") from None
        if any(later <= earlier for earlier, later in zip(delays, delays[1:], strict=False)):
            raise ValueError(f"cadence {label}: delays must grow from step to step")
        if schedule is not None and len(delays) != len(schedule):
            raise ValueError(
                f"cadence {label} has {len(delays)} step(s) but the schedule has {len(schedule)}; "
                "every cadence needs one delay per step"
            )
        if any(c.label == label for c in cadences):
            raise ValueError(f"cadence label {label} is used twice")
        cadences.append(Cadence(label, delays))
    return tuple(cadences)


def _parse_window(text: str) -> timedelta:
    window = parse_duration(text.strip() or DEFAULTS["attribution_window"])
    if not timedelta(hours=1) <= window <= MAX_ATTRIBUTION_WINDOW:
        raise ValueError("must be between 1h and 90d, e.g. 7d")
    return window


def _parse_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(f"'{value}' is not true or false")


def _parse_min_recipients(text: str) -> int:
    try:
        value = int(str(text).strip() or DEFAULTS["winner_min_recipients"])
    except ValueError:
        raise ValueError(f"'{text}' is not a whole number, e.g. 200") from None
    if not 10 <= value <= 1_000_000:
        raise ValueError("must be between 10 and 1000000 recipients per variant")
    return value
