"""The owner's sending rules as pure decisions over plain values: consent, the shopper's time zone,
quiet hours, the minimum cart and the frequency cap. The send path (:mod:`.delivery`) applies them
right before each reminder, so what the storefront sets later (consent, a time zone) counts."""

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

from ..settings.channel import SendingRules
from ..settings.sending_rules import FrequencyCap, QuietWindow, consent_given, zone_or_none
from ..shop import CartSnapshot

# The checkout metadata key a storefront sets to the shopper's IANA zone (from the browser).
TIME_ZONE_KEY = "time_zone"


def has_consent(rules: SendingRules, snapshot: CartSnapshot) -> bool:
    """Whether the shopper may get this reminder: always with audience ``all``; with ``consented``,
    the first of the checkout's and the customer account's metadata that has the key decides."""
    if not rules.needs_consent:
        return True
    for metadata in (snapshot.metadata, snapshot.account_metadata):
        if rules.consent_key in metadata:
            return consent_given(metadata[rules.consent_key])
    return False


def below_minimum(rules: SendingRules, snapshot: CartSnapshot) -> bool:
    return rules.min_cart_total is not None and snapshot.total < rules.min_cart_total


@cache
def _zones_by_country() -> Mapping[str, tuple[str, ...]]:
    """Country code → its zones, from the tz database's ``zone.tab`` (shipped by ``tzdata``)."""
    table = resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text(encoding="utf-8")
    zones: dict[str, list[str]] = {}
    for row in table.splitlines():
        if row and not row.startswith("#"):
            country, _, name = row.split("\t")[:3]
            zones.setdefault(country, []).append(name)
    return {country: tuple(names) for country, names in zones.items()}


@cache
def country_zone(country: str, year: int) -> ZoneInfo | None:
    """The zone of a country that keeps one time: all its tz zones have the same offsets through
    ``year`` (Germany's Busingen follows Berlin; Spain's Canaries do not). ``None`` otherwise."""
    names = _zones_by_country().get(country.upper(), ())
    zones = [zone for zone in (zone_or_none(name) for name in names) if zone is not None]
    if not zones:
        return None
    moments = [datetime(year, month, 15, 12, tzinfo=UTC) for month in range(1, 13)]
    offsets = {tuple(moment.astimezone(zone).utcoffset() for moment in moments) for zone in zones}
    return zones[0] if len(offsets) == 1 else None


def shopper_zone(snapshot: CartSnapshot, default: ZoneInfo, now: datetime) -> ZoneInfo:
    """The checkout's ``time_zone`` metadata (a valid IANA name), else the zone of its address's
    country when the country keeps one time, else the channel's ``time_zone``."""
    named = zone_or_none(str(snapshot.metadata.get(TIME_ZONE_KEY, "")).strip())
    if named is not None:
        return named
    if snapshot.country:
        found = country_zone(snapshot.country, now.year)
        if found is not None:
            return found
    return default


def _instant(day: date, window_time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time on ``day`` in ``zone``. A time the clocks skip (spring
    forward) counts from the end of the skipped hour; a repeated one (fall back) at its first
    occurrence."""
    local = datetime.combine(day, window_time, tzinfo=zone)
    for _ in range(24 * 60):
        instant = local.astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
            return instant
        local += timedelta(minutes=1)  # inside a gap: the first minute that exists
    return local.astimezone(UTC)


def quiet_until(moment: datetime, zone: ZoneInfo, windows: Iterable[QuietWindow]) -> datetime | None:
    """When the quiet window that ``moment`` falls in ends (UTC), or ``None`` when it falls in none.
    Windows are wall-clock times in ``zone``, so they follow daylight saving; windows that touch
    one another are passed through to the end of the last one."""
    windows = tuple(windows)
    end = None
    current = moment
    for _ in range(len(windows) + 1):
        found = _window_end(current, zone, windows)
        if found is None:
            return end
        end = current = found
    return end


def _window_end(moment: datetime, zone: ZoneInfo, windows: tuple[QuietWindow, ...]) -> datetime | None:
    today = moment.astimezone(zone).date()
    for window in windows:
        for start_day in (today - timedelta(days=1), today):
            end_day = start_day + timedelta(days=1) if window.end <= window.start else start_day
            start = _instant(start_day, window.start, zone)
            end = _instant(end_day, window.end, zone)
            if start <= moment < end:
                return end
    return None


def cap_allows(cap: FrequencyCap | None, sent: Iterable[datetime], now: datetime) -> bool:
    """Whether one more reminder stays within the cap, given when the address's earlier reminders
    in the channel were handed to the mail server."""
    if cap is None:
        return True
    return sum(1 for at in sent if at > now - cap.period) < cap.count
