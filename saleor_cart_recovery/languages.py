"""Which language the owner-facing text speaks: English, Turkish or German, from the package's own
gettext catalogs (``locale/``); any other language falls back to English (never to the host's
``LANGUAGE_CODE``, which may be a language we have no catalog for).

The Dashboard pages and our Settings form follow the Dashboard's ``localeChanged``; ``pluginUpdate``
follows the staff user's ``language_code`` (:mod:`..plugin`); management commands follow Django's
active language (``LANGUAGE_CODE``, or ``--language``).
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header

DEFAULT = "en"
SUPPORTED = ("en", "tr", "de")


def supported(code: str | None) -> str:
    """The catalog language for a locale (``tr``, ``tr-TR``, ``de_AT``, ``TR``), else English."""
    language = (code or "").replace("_", "-").split("-")[0].lower()
    return language if language in SUPPORTED else DEFAULT


def from_accept_language(header: str | None) -> str:
    """The first language of an ``Accept-Language`` header we have a catalog for, else English."""
    for code, _quality in parse_accept_lang_header((header or "")[:255]):
        if code != "*" and supported(code) == code.split("-")[0]:
            return supported(code)
    return DEFAULT


@contextmanager
def speaking(code: str | None) -> Iterator[str]:
    """Owner-facing text inside the block is in :func:`supported`'s language for ``code``."""
    language = supported(code)
    with translation.override(language):
        yield language
