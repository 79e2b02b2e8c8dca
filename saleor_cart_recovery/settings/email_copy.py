"""The owner's own words and look: ``email_copy`` lines, the brand colour and the logo.

The words are plain text: the templates escape them like any other value, so an owner can write
"<3" or "Tom & Jerry" and the shopper reads exactly that. Placeholders are checked here, on save,
so a typo never reaches a shopper as a literal ``{frist_name}``.
"""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

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
                f"line {number} ('{line[:60]}') must look like '1 heading: Your basket misses you' or "
                "'1 [tr] intro: ...'"
            )
        step, language, field, words = (
            int(match.group(1)),
            match.group(2),
            match.group(3).lower(),
            match.group(4),
        )
        words = words.strip()
        if field not in COPY_FIELDS:
            raise ValueError(f"line {number}: '{field}' is not a field; use {', '.join(COPY_FIELDS)}")
        if not 1 <= step <= max_steps:
            raise ValueError(f"line {number}: steps are numbered from 1 to {max_steps}")
        if not words:
            raise ValueError(f"line {number}: the text is empty")
        if len(words) > COPY_FIELDS[field]:
            raise ValueError(f"line {number}: a {field} has at most {COPY_FIELDS[field]} characters")
        for name in _PLACEHOLDER.findall(words):
            if name not in PLACEHOLDERS:
                raise ValueError(
                    f"line {number}: '{{{name}}}' is not a placeholder; use {{shop_name}} or {{first_name}}"
                )
        if re.sub(_PLACEHOLDER, "", words).count("{") or re.sub(_PLACEHOLDER, "", words).count("}"):
            raise ValueError(f"line {number}: a lone {{ or }}; placeholders look like {{first_name}}")
        key = (step, normalize_language(language) if language else None, field)
        if key in seen:
            which = f"step {step}{f' [{key[1]}]' if key[1] else ''} {field}"
            raise ValueError(f"line {number}: {which} is given twice")
        seen.add(key)
        lines.append(CopyLine(*key, words))
    if len(lines) > MAX_COPY_LINES:
        raise ValueError(f"at most {MAX_COPY_LINES} lines, got {len(lines)}")
    return tuple(lines)


def parse_brand_color(text: str) -> str:
    value = text.strip() or DEFAULT_BRAND_COLOR
    if not _COLOR.match(value):
        raise ValueError(f"'{value}' is not a colour; write it as #RRGGBB, e.g. #0B6E4F")
    return value.upper()


def parse_logo_url(text: str) -> str:
    """An ``https`` image address (mail clients block or warn about plain http); empty → no logo."""
    value = text.strip()
    if not value:
        return ""
    if len(value) > 2000:
        raise ValueError("is longer than 2000 characters")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc or any(c.isspace() for c in value):
        raise ValueError(f"'{value[:80]}' is not an https:// address of an image")
    return value


def text_on(color: str) -> str:
    """Black or white, whichever reads better on ``color`` (WCAG relative luminance), so any brand
    colour gives a readable button."""
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    # Contrast with white (1.05 / (L + 0.05)) against contrast with black ((L + 0.05) / 0.05).
    return "#FFFFFF" if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.05 else "#000000"
