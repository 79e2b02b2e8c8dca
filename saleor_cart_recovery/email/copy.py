"""What a reminder says: the owner's ``email_copy`` lines first, else the built-in words of the
step's role, in the shopper's language.

Built-in roles (``STRINGS`` / ``OFFER_STRINGS`` in :mod:`.i18n`): a help step offers help, a coupon
step presents the code, an urgency step with true news (low stock, a lower price) says something
changed, the last step says it is the last, step 1 is the first reminder and other steps are a
plain reminder worded anew — so no two default steps of a series read the same.
"""

from ..settings.channel import RecoverySettings
from ..settings.email_copy import BUTTON, FOOTER, HEADING, INTRO, CopyLine
from ..settings.formats import DISCOUNT, HELP, URGENCY
from ..settings.parsers import normalize_language
from .i18n import offer_strings, strings


def role(step: int, steps: int, offer: dict) -> str:
    """Which built-in words fit the step: ``help``, ``discount``, ``news``, ``last``, ``first``
    or ``again``."""
    content = offer.get("content")
    if content == HELP:
        return "help"
    if content == DISCOUNT and offer.get("coupon"):
        return "discount"
    if content == URGENCY and offer.get("urgency"):
        return "news"
    if step == steps and steps > 1:
        return "last"
    return "first" if step == 1 else "again"


def email_copy(
    settings: RecoverySettings,
    *,
    step: int,
    language: str,
    offer: dict,
    shop_name: str,
    first_name: str,
) -> dict[str, str]:
    """``heading``, ``intro``, ``button``, ``footer`` and ``preheader`` (the intro, for the inbox
    preview line), as plain text."""
    builtin = strings(language, shop=shop_name)
    extra = offer_strings(language)
    kind = role(step, settings.steps, offer)
    source = extra if kind in ("help", "discount") else builtin
    defaults = {
        HEADING: source[f"heading_{kind}"],
        INTRO: source[f"intro_{kind}"],
        BUTTON: builtin["button"],
        FOOTER: builtin["footer"],
    }
    if kind == "discount":
        defaults[INTRO] = defaults[INTRO].format(discount=offer["coupon"]["discount"])
    values = {"shop_name": shop_name, "first_name": first_name.strip()}
    words = {
        field: _owner_words(settings.look.lines(step, field), language, values) or default
        for field, default in defaults.items()
    }
    words["preheader"] = words[INTRO]
    return words


def _owner_words(lines: tuple[CopyLine, ...], language: str, values: dict[str, str]) -> str:
    """The owner's line for the language (``pt-br``, then ``pt``), then the one without a language;
    a line that needs a first name the shopper has not given is passed over."""
    wanted = normalize_language(language)
    for choice in (wanted, wanted.split("-")[0], None):
        for line in lines:
            if line.language == choice and (values["first_name"] or "{first_name}" not in line.text):
                return line.text.replace("{shop_name}", values["shop_name"]).replace(
                    "{first_name}", values["first_name"]
                )
    return ""
