"""The time zones a reader may choose on the preferences page: every ``Region/City`` zone of
the system's tz database (:func:`zoneinfo.available_timezones`), grouped by region, each
labelled with its city in the reader's language and its current UTC offset."""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass
from datetime import datetime

from babel.dates import get_timezone_location

from digest.catalogue import N_, Translator

# The regions of the tz database people live in, in the order a select lists them.
REGIONS = {
    "Europe": N_("Europe"),
    "America": N_("America"),
    "Africa": N_("Africa"),
    "Asia": N_("Asia"),
    "Australia": N_("Australia"),
    "Atlantic": N_("Atlantic"),
    "Indian": N_("Indian Ocean"),
    "Pacific": N_("Pacific"),
}


@dataclass(frozen=True)
class ZoneGroup:
    label: str
    zones: tuple[tuple[str, str], ...]  # (zone name, label)


@functools.cache
def _known() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def known_zone(name: str) -> bool:
    """Whether ``name`` is a zone of the tz database (``Europe/Berlin``; not ``CET``-style
    aliases a reader never picks, though those are valid too)."""
    return name in _known()


@functools.cache
def _cities(language: str) -> tuple[tuple[str, str, str], ...]:
    """(region, zone, city in ``language``) of every Region/City zone, sorted by city."""
    rows = []
    for zone in _known():
        region, _, rest = zone.partition("/")
        if region in REGIONS and rest:
            city = get_timezone_location(zone, locale=language, return_city=True)
            rows.append((region, zone, str(city)))
    return tuple(sorted(rows, key=lambda row: (row[0], row[2].casefold())))


def zone_groups(t: Translator, now: datetime) -> list[ZoneGroup]:
    """The choices for a select, by region; each label ``Berlin (UTC+01:00)``."""
    grouped: dict[str, list[tuple[str, str]]] = {region: [] for region in REGIONS}
    for region, zone, city in _cities(t.language):
        grouped[region].append((zone, f"{city} ({utc_offset(zone, now)})"))
    return [
        ZoneGroup(t.gettext(REGIONS[region]), tuple(zones))
        for region, zones in grouped.items()
        if zones
    ]


def utc_offset(zone: str, now: datetime) -> str:
    """``UTC+01:00``, ``UTC−05:00``, ``UTC``: the zone's offset at ``now``."""
    offset = now.astimezone(zoneinfo.ZoneInfo(zone)).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "−"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"
