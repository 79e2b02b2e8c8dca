"""Numbers, money, percentages and times for people, in a locale with Babel: the staff user's on the
Dashboard pages (the Dashboard's, sent by the page), the browser's on the report page; an unknown
locale falls back to English. Shared by ``http`` and ``experiments`` (the report page)."""

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent
from django.utils.translation import gettext as _

DEFAULT_LOCALE = "en"


def locale_of(value: str | None) -> str:
    """A Babel locale name for ``value`` (``en-US``, ``tr``, ``pt_BR``), else English."""
    if not value or len(value) > 35:
        return DEFAULT_LOCALE
    try:
        return str(Locale.parse(value.replace("-", "_")))
    except (ValueError, UnknownLocaleError):
        return DEFAULT_LOCALE


class Formatter:
    def __init__(self, locale: str):
        self.locale = locale

    def number(self, value) -> str:
        return "—" if value is None else format_decimal(value, locale=self.locale)

    def money(self, amount, currency: str) -> str:
        if amount is None:
            return "—"
        try:
            value = Decimal(str(amount))
        except InvalidOperation:
            return "—"
        if not currency:
            return format_decimal(value, format="#,##0.00", locale=self.locale)
        return format_currency(value, currency, locale=self.locale)

    def pct(self, value) -> str:
        """``value`` is already in percent (the report's ``*_pct`` fields)."""
        if value is None:
            return "—"
        # the locale places the sign: "12,5 %" in German, "%12,5" in Turkish
        fraction = Decimal(str(round(float(value), 2))) / 100
        return format_percent(fraction, locale=self.locale, decimal_quantization=False)

    def decimal(self, value, places: int = 2) -> str:
        """``value`` rounded to ``places`` decimals, trailing zeros dropped (lifts, p-values)."""
        if value is None:
            return "—"
        return format_decimal(round(float(value), places), format="#,##0." + "#" * places, locale=self.locale)

    def points(self, value) -> str:
        if value is None:
            return "—"
        sign = "+" if value > 0 else ""
        return _("%(points)s pp") % {"points": f"{sign}{self.decimal(value)}"}

    def when(self, value: datetime | str | None) -> str:
        if value is None or value == "":
            return "—"
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return f"{format_datetime(value, format='medium', tzinfo=value.tzinfo, locale=self.locale)} UTC"

    def when_day(self, value: date) -> str:
        return format_date(value, format="medium", locale=self.locale)
