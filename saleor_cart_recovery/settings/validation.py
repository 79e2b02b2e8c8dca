"""The one check every save of a channel's settings goes through, whoever saves them.

Saleor's ``pluginUpdate`` (through the plugin's ``validate_plugin_configuration``), the Dashboard's
Settings form and the API's ``updateSettings`` all call :func:`validate_configuration`, so a value is
refused with the same message everywhere, every bad field is named at once, and nothing is stored
when one is bad. :func:`changes_to_save` turns what a form or API call names into what the stores
write: the registry's names only, a secret left blank (or sent back masked) kept as stored.
"""

import logging
from collections.abc import Callable, Mapping

from django.utils.translation import gettext as _

from ..exceptions import ConfigurationError
from .channel import STOREFRONT_REQUIRED, RecoverySettings, subject_language_problem
from .formats import AUTO
from .parsers import labelled
from .registry import BY_NAME, DEFAULTS, FIELDS, SECRET

logger = logging.getLogger(__name__)

# What the API shows for a stored secret; sent back, it keeps the stored value.
SECRET_MASK = "********"

# (channel slug is bound by the caller) references → why each cannot be shown; see
# :meth:`..shop.Shop.unavailable_products`.
ProductCheck = Callable[[tuple[str, ...]], Mapping[str, str]]


def validate_configuration(
    values: Mapping[str, str], *, active: bool, unavailable_products: ProductCheck | None = None
) -> RecoverySettings:
    """The settings ``values`` (the whole configuration as it would be stored; missing names take
    their defaults) make, or :class:`ConfigurationError` naming every bad field, each message
    starting with the field's label. ``active``: the plugin is to be on, so what sending needs is
    required too (those fields are listed in the error's ``required``). ``unavailable_products``
    checks configured upsell products in the channel (skipped when ``None``)."""
    text = {**DEFAULTS, **{name: str(value) for name, value in values.items() if value is not None}}
    try:
        settings: RecoverySettings | None = RecoverySettings.from_plugin_configuration(
            [{"name": name, "value": value} for name, value in text.items()]
        )
        errors: dict[str, str] = {}
    except ConfigurationError as exc:  # every field that does not parse, and the checks across fields
        settings, errors = None, dict(exc.errors)

    def parsed(name: str):  # only asked for fields without an error: they parse
        return BY_NAME[name].parse(text[name])

    if "subjects" not in errors and "schedule" not in errors:
        problem = subject_language_problem(parsed("subjects"), len(parsed("schedule")))
        if problem:
            errors["subjects"] = problem
    products = () if "upsell_products" in errors else parsed("upsell_products")
    if products and products != (AUTO,) and unavailable_products is not None:
        problem = _product_problem(unavailable_products, products)
        if problem:
            errors["upsell_products"] = problem
    required = set()
    if active and "storefront_url" not in errors and not parsed("storefront_url"):
        errors["storefront_url"] = str(STOREFRONT_REQUIRED)
        required.add("storefront_url")
    if errors or settings is None:
        ordered = {field.name: errors[field.name] for field in FIELDS if field.name in errors}
        raise ConfigurationError(
            {name: labelled(BY_NAME[name].label, message) for name, message in ordered.items()},
            required=required,
        )
    return settings


def _product_problem(check: ProductCheck, products: tuple[str, ...]) -> str:
    try:
        problems = check(products)
    except Exception:  # nothing may raise past validation: the owner gets a message instead
        logger.exception("cart recovery: could not check the upsell products %s", products)
        return _("could not be checked right now; try saving again")
    return "; ".join(f"'{ref}': {why}" if ref else why for ref, why in problems.items())


def changes_to_save(changes: Mapping[str, str | None]) -> dict[str, str]:
    """What a save writes for ``changes`` (field name → new text; ``None``: back to the default,
    which removes a stored secret): a secret given blank or as :data:`SECRET_MASK` keeps its stored
    value, so it is left out. Raises :class:`ConfigurationError` naming every unknown name."""
    unknown = [name for name in changes if name not in BY_NAME]
    if unknown:
        raise ConfigurationError(
            {name: _("'%(name)s' is not a setting of Cart Recovery") % {"name": name} for name in unknown}
        )
    saved = {}
    for name, value in changes.items():
        if value is None:
            saved[name] = DEFAULTS[name]
        elif BY_NAME[name].kind == SECRET and value.strip() in ("", SECRET_MASK):
            continue
        else:
            saved[name] = value
    return saved


def shown_configuration(stored: Mapping[str, str] | None) -> dict[str, str]:
    """Every setting as stored (defaults for the ones never saved), secrets masked: what the API
    answers (the value of a secret never leaves the store)."""
    values = {**DEFAULTS, **(stored or {})}
    shown = {field.name: values[field.name] for field in FIELDS}
    for field in FIELDS:
        if field.kind == SECRET and shown[field.name]:
            shown[field.name] = SECRET_MASK
    return shown
