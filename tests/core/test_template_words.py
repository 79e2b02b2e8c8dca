"""No English word leaks from a template: every text a person reads in ``templates/`` — element
text, and the attributes a browser shows or reads aloud (``title``, ``alt``, ``placeholder``,
``aria-label``) — is inside ``{% translate %}`` / ``{% blocktranslate %}`` or comes from a variable.
Outside them only markup, variables, numbers and punctuation are allowed."""

import re
from html.parser import HTMLParser

import pytest
from django.template.base import Lexer, TokenType

from saleor_cart_recovery.templating import TEMPLATE_DIR

TEMPLATES = sorted(
    str(path.relative_to(TEMPLATE_DIR))  # type: ignore[attr-defined]
    for path in TEMPLATE_DIR.rglob("*")  # type: ignore[attr-defined]
    if path.name.endswith((".html", ".txt"))
)
SHOWN_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "aria-description"}
# What a variable or a translation stands for here: a gap that joins no letters into a word (other
# tags, such as {% if %}, stand for nothing, so ``<input{% if x %} disabled{% endif %}>`` stays a tag).
GAP = " "
# A word is two letters in a row; markup, numbers, symbols and single letters (an "x") are not.
WORD = re.compile(r"[^\W\d_]{2,}")
# Attribute values that are data for the page, not words (an input's sample address, a language code).
NOT_WORDS = {"placeholder": {"shopper@example.com", "en"}}


def untranslated_text(source: str) -> str:
    """The template with every translated or rendered part replaced by :data:`GAP`: what is left
    is what the template itself writes."""
    kept: list[str] = []
    inside = None  # "blocktranslate" or "comment" while inside one
    for token in Lexer(source).tokenize():
        name = token.contents.split()[0] if token.token_type == TokenType.BLOCK and token.contents else ""
        if inside is not None:
            if name == f"end{inside}":
                inside = None
                kept.append(GAP)
            continue
        if name in ("blocktranslate", "blocktrans", "comment"):
            inside = name
        elif token.token_type == TokenType.TEXT:
            kept.append(token.contents)
        elif token.token_type == TokenType.VAR or name in ("translate", "trans"):
            kept.append(GAP)
    return "".join(kept)


class _Reader(HTMLParser):
    """Collects the words of element text and of shown attributes, skipping styles and scripts."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.words: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script"):
            self._skipping += 1
        for name, value in attrs:
            if name in SHOWN_ATTRIBUTES and value and value not in NOT_WORDS.get(name, ()):
                self.words += [f"{tag}[{name}]: {word}" for word in WORD.findall(value)]

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skipping = max(0, self._skipping - 1)

    def handle_data(self, data):
        if not self._skipping:
            self.words += WORD.findall(data)


def leaked_words(source: str) -> list[str]:
    reader = _Reader()
    reader.feed(untranslated_text(source))
    reader.close()
    return reader.words


def test_the_reader_finds_text_outside_the_translation_tags():
    source = (
        '<p title="Open it">{% translate "Hello" %} world</p>'
        "<p>{% blocktranslate %}Hi {{ x }}{% endblocktranslate %} — {{ y }}, 2 %.</p>"
        "{% comment %}Not shown{% endcomment %}<style>p { color: red }</style>"
        '<input placeholder="shopper@example.com"><button aria-label="{% translate "Close" %}">×</button>'
    )
    assert leaked_words(source) == ["p[title]: Open", "p[title]: it", "world"]


@pytest.mark.parametrize("name", TEMPLATES, ids=lambda name: f"{name}_case")
def test_every_word_of_a_template_is_translated(name):
    source = (TEMPLATE_DIR / name).read_text(encoding="utf-8")  # type: ignore[operator]
    assert leaked_words(source) == []
