"""The gettext catalogs in ``saleor_cart_recovery/locale``: every message of the code and templates is
in them (extracted afresh with ``makemessages`` into a copy of the package and compared), every one
has its Turkish and German translation with the same placeholders, the plural rules are Django's
for each language, and each compiled ``.mo`` says exactly what its ``.po`` says."""

import gettext
import io
import re
import shutil
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from django.core.management import call_command

import saleor_cart_recovery

PACKAGE = Path(saleor_cart_recovery.__file__).parent
LANGUAGES = ("tr", "de")
# Django's own catalogs use these (django/conf/locale/<lang>/LC_MESSAGES/django.po).
PLURALS = {"tr": "nplurals=2; plural=(n > 1);", "de": "nplurals=2; plural=(n != 1);"}
FORM_FOR_0_1_2 = {"tr": [0, 0, 1], "de": [1, 0, 1]}
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%|\{(\w+)\}")


def catalog(language: str):
    with open(PACKAGE / "locale" / language / "LC_MESSAGES" / "django.po", "rb") as po:
        return read_po(po, locale=language)


def keys(messages) -> set[tuple]:
    return {(message.context, message.id) for message in messages if message.id}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> set[tuple]:
    """The messages ``makemessages`` finds in the code and templates now (GNU xgettext)."""
    if shutil.which("xgettext") is None or shutil.which("msgmerge") is None:
        pytest.skip(
            "GNU gettext (xgettext, msgmerge) is not installed: the catalogs' freshness cannot be "
            "checked (scripts/test installs the Debian package 'gettext')"
        )
    copy = tmp_path_factory.mktemp("extract") / "saleor_cart_recovery"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "locale"))
    (copy / "locale").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(copy)
        call_command("makemessages", locale=["tr"], ignore_patterns=["migrations/*"], verbosity=0)
    with open(copy / "locale" / "tr" / "LC_MESSAGES" / "django.po", "rb") as po:
        return keys(read_po(po))


@pytest.mark.parametrize("language", LANGUAGES, ids=lambda language: f"{language}_case")
def test_the_catalog_holds_every_message_of_the_code_and_no_other(extracted, language):
    committed = keys(catalog(language))
    assert sorted(extracted - committed, key=str) == [], "run makemessages and translate the new messages"
    assert sorted(committed - extracted, key=str) == [], "messages no longer in the code: run makemessages"


@pytest.mark.parametrize("language", LANGUAGES, ids=lambda language: f"{language}_case")
def test_every_message_is_translated_with_the_same_placeholders(language):
    problems = []
    for message in catalog(language):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(strings) or len(strings) != len(ids):
            problems.append(("untranslated", message.id))
            continue
        wanted = set(_PLACEHOLDER.findall(ids[-1]))
        for string in strings:
            # a singular form may leave the number out ("der erste"), never add a placeholder
            found = set(_PLACEHOLDER.findall(string))
            if found - wanted or (len(strings) == 1 and found != wanted):
                problems.append(("placeholders", message.id, string))
    assert problems == []


@pytest.mark.parametrize("language", LANGUAGES, ids=lambda language: f"{language}_case")
def test_the_plural_rule_is_djangos(language):
    po = (PACKAGE / "locale" / language / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
    assert f'"Plural-Forms: {PLURALS[language]}\\n"' in po
    assert f'"Language: {language}\\n"' in po


@pytest.mark.parametrize("language", LANGUAGES, ids=lambda language: f"{language}_case")
def test_the_compiled_catalog_is_the_catalog(language):
    compiled = io.BytesIO()
    write_mo(compiled, catalog(language))
    compiled.seek(0)
    expected = gettext.GNUTranslations(compiled)
    with open(PACKAGE / "locale" / language / "LC_MESSAGES" / "django.mo", "rb") as mo:
        shipped = gettext.GNUTranslations(mo)
    without_header = {key: text for key, text in expected._catalog.items() if key != ""}  # type: ignore[attr-defined]
    shipped_messages = {key: text for key, text in shipped._catalog.items() if key != ""}  # type: ignore[attr-defined]
    assert shipped_messages == without_header, "run msgfmt (or compilemessages) on the .po"
    assert [shipped.plural(n) for n in (0, 1, 2)] == FORM_FOR_0_1_2[language]  # type: ignore[attr-defined]


def test_the_catalogs_are_shipped_in_the_wheel():
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert '"locale/*/LC_MESSAGES/*.mo"' in pyproject and '"locale/*/LC_MESSAGES/*.po"' in pyproject
