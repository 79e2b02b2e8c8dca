"""The manual holds together: every relative link in README.md, docs/ and benchmarks/README.md
reaches a file (and, with ``#anchor``, a heading there, by GitHub's anchor rules), and the settings
table in docs/settings.md is the one the registry generates."""

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

from saleor_cart_recovery.settings import registry

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


def prose(text: str) -> str:
    """The text with code blocks and code spans removed: links there are not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "").lower()
    kept = (ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LNM")
    return "".join(kept).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor GitHub makes in a page; a repeated heading gets -1, -2, … as there."""
    seen: dict[str, int] = {}
    result = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(page: Path) -> list[str]:
    return [
        target
        for target in LINK.findall(prose(page.read_text(encoding="utf-8")))
        if not re.match(r"[a-z][a-z0-9+.-]*:", target, re.I)  # https:, mailto: … are not ours to check
    ]


def test_the_readme_maps_every_page():
    """A page the README's map does not name is a page nobody finds."""
    named = {(ROOT / target.partition("#")[0]).resolve() for target in links(ROOT / "README.md")}
    assert [str(page.relative_to(ROOT)) for page in PAGES[1:] if page not in named] == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / unquote(path)).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no {file.relative_to(ROOT) if file.is_relative_to(ROOT) else file}")
        elif anchor and file.suffix == ".md" and unquote(anchor).lower() not in anchors(file):
            broken.append(f"{target}: no heading with that anchor in {file.relative_to(ROOT)}")
    assert broken == []


def test_anchors_follow_githubs_rules():
    assert slug("Going live: consent, quiet hours, caps") == "going-live-consent-quiet-hours-caps"
    assert slug("3. Consent: record it with `updateMetadata`") == "3-consent-record-it-with-updatemetadata"
    assert slug("Plugin or App?") == "plugin-or-app"
    assert slug("When things go wrong — what to do") == "when-things-go-wrong--what-to-do"
    assert slug("İYS and the Turkish 6563 law") == "i̇ys-and-the-turkish-6563-law"


def test_the_settings_table_in_the_docs_is_the_registrys():
    page = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    table = re.search(r"<!-- settings table:.*?-->\n(.*?)<!-- end of settings table -->", page, re.S)
    assert table is not None, "docs/settings.md lost its settings table markers"
    assert table.group(1) == registry.settings_table()


def test_the_readmes_first_reminder_uses_the_shortest_delays_the_settings_allow():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    recipe = r"\*\*Reminder schedule\*\*\s+to\s+`(\d+)s`\s+and\s+\*\*Abandonment cutoff\*\*\s+to\s+`(\d+)s`"
    found = re.search(recipe, readme)
    assert found is not None, "README lost its first-reminder recipe"
    fields = {field.name: field for field in registry.FIELDS}
    for name, seconds in zip(("schedule", "cutoff"), map(int, found.groups()), strict=True):
        fields[name].parse(f"{seconds}s")
        with pytest.raises(ValueError):
            fields[name].parse(f"{seconds - 1}s")
