"""Which language the owner-facing text speaks: English, Turkish or German, from the package's own
gettext catalogs (``locale/``); any other language falls back to English (never to the host's
``LANGUAGE_CODE``, which may be a language we have no catalog for).

The Dashboard pages and our Settings form follow the Dashboard's ``localeChanged`` (the first render,
before the Dashboard has said anything, the browser's ``Accept-Language``); ``pluginUpdate`` follows
the staff user's ``language_code`` (:mod:`..plugin`); the unsubscribe and click pages the shopper's
(:func:`for_shopper`); management commands follow Django's active language (``LANGUAGE_CODE``, or
``--language``).
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header

DEFAULT = "en"
SUPPORTED = ("en", "tr", "de")


def _language(code: str | None) -> str:
    return (code or "").replace("_", "-").split("-")[0].lower()


def supported(code: str | None) -> str:
    """The catalog language for a locale (``tr``, ``tr-TR``, ``de_AT``, ``TR``), else English."""
    language = _language(code)
    return language if language in SUPPORTED else DEFAULT


def accept_language_locale(header: str | None) -> str | None:
    """The first locale of an ``Accept-Language`` header whose language we have a catalog for, as
    the browser names it (``de-ch``: numbers and dates then follow Switzerland), else ``None``."""
    for code, _quality in parse_accept_lang_header((header or "")[:255]):
        if _language(code) in SUPPORTED:
            return code
    return None


def from_accept_language(header: str | None) -> str:
    """The first language of an ``Accept-Language`` header we have a catalog for, else English."""
    return supported(accept_language_locale(header))


def for_shopper(cart_language: str | None, accept_language: str | None) -> str:
    """The language of a page a shopper opens from a reminder: the cart's (Saleor's ``languageCode``
    of the checkout) when we have a catalog for it, else the browser's first that we have, else
    English."""
    if _language(cart_language) in SUPPORTED:
        return _language(cart_language)
    return from_accept_language(accept_language)


@contextmanager
def speaking(code: str | None) -> Iterator[str]:
    """Owner-facing text inside the block is in :func:`supported`'s language for ``code``."""
    language = supported(code)
    with translation.override(language):
        yield language
