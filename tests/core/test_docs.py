"""The manual holds together: every relative link in README.md, docs/ and benchmarks/README.md
reaches a file (and, with ``#anchor``, a heading there, by GitHub's anchor rules), the settings
table in docs/settings.md is the one the registry generates, and the README quotes what the dispatch
command really prints."""

import re
import textwrap
import unicodedata
from datetime import timedelta
from io import StringIO
from pathlib import Path
from urllib.parse import unquote

import pytest
from django.core import mail
from django.core.management import call_command
from freezegun import freeze_time

from saleor_cart_recovery.settings import registry
from saleor_cart_recovery.settings.channel import RecoverySettings

from .conftest import START, make_checkout, touch

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


def first_reminder() -> tuple[str, str, str]:
    """README's "See a first reminder now": the schedule and cutoff it sets, and the section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## See a first reminder now", 1)[1].split("\n## ", 1)[0]
    recipe = r"\*\*Reminder schedule\*\*\s+to\s+`([^`]+)`\s+and\s+\*\*Abandonment cutoff\*\*\s+to\s+`([^`]+)`"
    found = re.search(recipe, section)
    assert found is not None, "README lost its first-reminder recipe"
    return found.group(1), found.group(2), section


def test_the_readmes_first_reminder_uses_the_shortest_delays_the_settings_allow():
    schedule, cutoff, _section = first_reminder()
    # the recipe is valid with every other setting at its default (the subject lines' steps included)
    defaults = {**registry.DEFAULTS, "storefront_url": "https://shop.example.com/cart/{token}"}
    configuration = {**defaults, "schedule": schedule, "cutoff": cutoff}
    RecoverySettings.from_plugin_configuration([{"name": n, "value": v} for n, v in configuration.items()])
    # and its first delay and its cutoff are the shortest allowed
    fields = {field.name: field for field in registry.FIELDS}
    for name, first in (("schedule", schedule.split(",")[0]), ("cutoff", cutoff)):
        seconds = int(first.strip().removesuffix("s"))
        fields[name].parse(f"{seconds}s")
        with pytest.raises(ValueError):
            fields[name].parse(f"{seconds - 1}s")


def test_the_readme_quotes_what_the_dispatch_command_prints(channel):
    """ "See a first reminder now" shows the output of its own steps: its schedule and cutoff, a cart
    left 10 seconds ago (step 3's wait), one ``cart_recovery_dispatch``."""
    schedule, cutoff, section = first_reminder()
    [quoted] = re.findall(r"^ *```\n(.*?)^ *```$", section, re.S | re.M)
    assert "Wait 10 seconds" in section
    # given the settings of step 1 and a cart as in step 2
    short = {"schedule": schedule, "cutoff": cutoff}
    channel.configuration = [
        {**item, "value": short.get(item["name"], item["value"])} for item in channel.configuration
    ]
    channel.save()
    touch(make_checkout(channel), START, RecoverySettings.from_plugin_configuration(channel.configuration))
    # when step 3 runs the command 10 seconds later
    out = StringIO()
    with freeze_time(START + timedelta(seconds=10)):
        call_command("cart_recovery_dispatch", stdout=out)
    # then the README quotes exactly what it printed, and the reminder went out
    assert textwrap.dedent(quoted) == out.getvalue()
    assert len(mail.outbox) == 1
