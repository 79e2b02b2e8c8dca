"""Render reminder templates; CSS is inlined once per template version, not once per email.

Before premailer sees the HTML template, each Django tag is swapped for a placeholder premailer
leaves alone: block tags become HTML comments (valid anywhere, even between table rows) and
variables become plain tokens (valid in text and attribute values). After inlining the tags are
put back and the result is compiled once. ``tests/core/test_rendering.py`` checks that this gives
the same inlined markup as running premailer on every rendered email.
"""

import re
from functools import cache

import premailer
from django.template import Context

from ..templating import compile_template, template_source

_TAG = re.compile(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}", re.S)
_PLACEHOLDER = re.compile(r"<!--tpl(\d+)-->|tplvar(\d+)x")


def inline_css(html: str) -> str:
    return premailer.transform(
        html,
        keep_style_tags=True,
        strip_important=False,
        disable_validation=True,
        cssutils_logging_level="CRITICAL",
        allow_network=False,
    )


def inline_template(source: str) -> str:
    """Premailer over a template's source with its Django tags kept intact."""
    tags: list[str] = []

    def hide(match: re.Match) -> str:
        tags.append(match.group(0))
        index = len(tags) - 1
        return f"<!--tpl{index}-->" if match.group(0).startswith("{%") else f"tplvar{index}x"

    inlined = inline_css(_TAG.sub(hide, source))
    seen = [0] * len(tags)
    for match in _PLACEHOLDER.finditer(inlined):
        seen[int(match.group(1) or match.group(2))] += 1
    # Block tags must survive exactly once, in place; a variable may be copied (premailer repeats a
    # style's background colour as a bgcolor attribute), never dropped.
    if any(count != 1 if tag.startswith("{%") else count < 1 for tag, count in zip(tags, seen, strict=True)):
        raise ValueError("premailer moved or dropped template tags; the template cannot be pre-inlined")
    return _PLACEHOLDER.sub(lambda m: tags[int(m.group(1) or m.group(2))], inlined)


@cache
def _compiled(name: str):
    """Compiled once per process: templates ship in the package, so the version is the install."""
    source = template_source(name)
    if name.endswith(".html"):
        source = inline_template(source)
    return compile_template(source)


def render(name: str, context: dict) -> str:
    return _compiled(name).render(Context(context))


def render_reminder(context: dict) -> tuple[str, str]:
    """HTML and plain-text bodies from the same data."""
    return render("email/cart_recovery/reminder.html", context), render(
        "email/cart_recovery/reminder.txt", context
    )
