"""Inside Saleor, our messages read as our catalogs say: no catalog of an app before us in Saleor's
``INSTALLED_APPS`` (Django lets the earlier one win for the same message) translates one of them
differently."""

from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.utils import translation

import saleor_cart_recovery

LOCALE = Path(saleor_cart_recovery.__file__).parent / "locale"


@pytest.mark.parametrize("language", ["tr", "de"], ids=lambda language: f"{language}_case")
def test_saleors_apps_translate_none_of_our_messages_otherwise(language):
    with open(LOCALE / language / "LC_MESSAGES" / "django.po", "rb") as po:
        catalog = read_po(po)
    differ = []
    with translation.override(language):
        for message in catalog:
            if not message.id:
                continue
            if isinstance(message.id, tuple):
                shown = [translation.ngettext(*message.id, n) for n in (1, 5)]
                wanted = [message.string[0], message.string[1]]
            elif message.context:
                shown, wanted = translation.pgettext(message.context, message.id), message.string
            else:
                shown, wanted = translation.gettext(message.id), message.string
            if shown != wanted:
                differ.append((message.id, shown, wanted))
    assert differ == []
