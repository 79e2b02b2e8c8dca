"""The owner's own words and look: ``email_copy`` lines, the brand colour and the logo.

The words are plain text: the templates escape them like any other value, so an owner can write
"<3" or "Tom & Jerry" and the shopper reads exactly that. Placeholders are checked here, on save,
so a typo never reaches a shopper as a literal ``{frist_name}``.
"""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

from .parsers import normalize_language

HEADING, INTRO, BUTTON, FOOTER = "heading", "intro", "button", "footer"
# Each field's longest text: the heading and button must fit a phone screen, the others a paragraph.
COPY_FIELDS = {HEADING: 150, INTRO: 600, BUTTON: 60, FOOTER: 600}
PLACEHOLDERS = ("shop_name", "first_name")
MAX_COPY_LINES = 200
DEFAULT_BRAND_COLOR = "#18181B"

_LINE = re.compile(r"^(\d+)\s*(?:\[\s*([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]+)?)\s*\])?\s+([A-Za-z]+)\s*:\s*(.*)$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")


@dataclass(frozen=True)
class CopyLine:
    step: int
    language: str | None  # None: for every language without its own line
    field: str  # heading, intro, button or footer
    text: str  # with {shop_name} / {first_name} still in it


def parse_email_copy(text: str, *, max_steps: int = 10) -> tuple[CopyLine, ...]:
    """``step [lang] field: text`` per line (``1 heading: Your basket misses you``)."""
    lines: list[CopyLine] = []
    seen: set[tuple[int, str | None, str]] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = _LINE.match(line)
        if not match:
            raise ValueError(
                _(
                    "line %(number)s ('%(line)s') must look like '1 heading: Your basket misses you' or '1 "
                    "[tr] intro: ...'"
                )
                % {"number": number, "line": line[:60]}
            )
        step, language, field, words = (
            int(match.group(1)),
            match.group(2),
            match.group(3).lower(),
            match.group(4),
        )
        words = words.strip()
        if field not in COPY_FIELDS:
            raise ValueError(
                _("line %(number)s: '%(field)s' is not a field; use %(items)s")
                % {"number": number, "field": field, "items": ", ".join(COPY_FIELDS)}
            )
        if not 1 <= step <= max_steps:
            raise ValueError(
                _("line %(number)s: steps are numbered from 1 to %(max_steps)s")
                % {"number": number, "max_steps": max_steps}
            )
        if not words:
            raise ValueError(_("line %(number)s: the text is empty") % {"number": number})
        if len(words) > COPY_FIELDS[field]:
            raise ValueError(
                _("line %(number)s: a %(field)s has at most %(copy_fields)s characters")
                % {"number": number, "field": field, "copy_fields": COPY_FIELDS[field]}
            )
        for name in _PLACEHOLDER.findall(words):
            if name not in PLACEHOLDERS:
                raise ValueError(
                    _("line %(number)s: '{%(name)s}' is not a placeholder; use {shop_name} or {first_name}")
                    % {"number": number, "name": name}
                )
        if re.sub(_PLACEHOLDER, "", words).count("{") or re.sub(_PLACEHOLDER, "", words).count("}"):
            raise ValueError(
                _("line %(number)s: a lone { or }; placeholders look like {first_name}") % {"number": number}
            )
        key = (step, normalize_language(language) if language else None, field)
        if key in seen:
            typed = f"{step} [{key[1]}] {field}" if key[1] else f"{step} {field}"  # as the owner writes it
            raise ValueError(
                _("line %(number)s: '%(line)s' is given twice") % {"number": number, "line": typed}
            )
        seen.add(key)
        lines.append(CopyLine(*key, words))
    if len(lines) > MAX_COPY_LINES:
        raise ValueError(
            _("at most %(max_copy_lines)s lines, got %(count)s")
            % {"max_copy_lines": MAX_COPY_LINES, "count": len(lines)}
        )
    return tuple(lines)


def parse_brand_color(text: str) -> str:
    value = text.strip() or DEFAULT_BRAND_COLOR
    if not _COLOR.match(value):
        raise ValueError(
            _("'%(value)s' is not a colour; write it as #RRGGBB, e.g. #0B6E4F") % {"value": value}
        )
    return value.upper()


def parse_logo_url(text: str) -> str:
    """An ``https`` image address (mail clients block or warn about plain http); empty → no logo."""
    value = text.strip()
    if not value:
        return ""
    if len(value) > 2000:
        raise ValueError(_("is longer than 2000 characters"))
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc or any(c.isspace() for c in value):
        raise ValueError(_("'%(value)s' is not an https:// address of an image") % {"value": value[:80]})
    return value


def text_on(color: str) -> str:
    """Black or white, whichever reads better on ``color`` (WCAG relative luminance), so any brand
    colour gives a readable button."""
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    # Contrast with white (1.05 / (L + 0.05)) against contrast with black ((L + 0.05) / 0.05).
    return "#FFFFFF" if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.05 else "#000000"
