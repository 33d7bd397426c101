"""Local delivery time: the first moment at or after an issue's cutoff at which a reader's
clock shows the digest's ``deliver_at`` (e.g. 07:00) in their time zone. Pure.

DST-safe by :mod:`zoneinfo`: a local time that does not exist that day (the spring-forward
gap) is the first instant after the gap; an ambiguous one (the fall-back fold) is its first
occurrence (``fold=0``). A zone name that is unknown (a stored value from an older tz
database, a typo in an import) is the site's zone: never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.window import parse_clock


def parse_deliver_at(value: str) -> time:
    """``"07:00"`` -> ``time(7, 0)``; ValueError naming the value otherwise (24:00 is not a
    time of day)."""
    minutes = parse_clock(value)
    if minutes == 24 * 60:
        raise ValueError(f"time {value!r} not understood (use HH:MM from 00:00 to 23:59)")
    return time(minutes // 60, minutes % 60)


@lru_cache(maxsize=512)
def zone_or(name: str | None, fallback: str) -> ZoneInfo:
    """The zone called ``name``; the ``fallback`` zone when it is None, empty or unknown."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(fallback)


def next_local(at: time, zone: ZoneInfo, after: datetime) -> datetime:
    """The first instant at or after ``after`` (aware) whose wall clock in ``zone`` reads
    ``at``, in UTC. A day on which ``at`` falls into a DST gap gives the first instant after
    the gap; a day on which it occurs twice gives the first occurrence."""
    if after.tzinfo is None:
        raise ValueError("naive datetime given to next_local")
    day = after.astimezone(zone).date()
    for offset in range(3):  # today, or tomorrow; a third day covers any odd zone history
        wall = datetime.combine(day + timedelta(days=offset), at, tzinfo=zone)  # fold=0
        instant = _existing(wall).astimezone(UTC)
        if instant >= after:
            return instant
    raise AssertionError("unreachable: a local time recurs every day")  # pragma: no cover


def _existing(wall: datetime) -> datetime:
    """``wall`` itself if its zone has that wall time; else the first instant after the gap
    it falls into (the DST transition)."""
    zone = wall.tzinfo
    assert zone is not None
    naive = wall.replace(tzinfo=None)
    if wall.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive:
        return wall
    offsets = [wall.replace(fold=fold).utcoffset() for fold in (0, 1)]
    assert offsets[0] is not None and offsets[1] is not None
    # Read with the offset after the jump the instant lies before the transition, with the
    # one before it after the transition: bisect between the two to the second.
    early = (naive - max(offsets[0], offsets[1])).replace(tzinfo=UTC)
    late = (naive - min(offsets[0], offsets[1])).replace(tzinfo=UTC)
    old = early.astimezone(zone).utcoffset()
    while late - early > timedelta(seconds=1):
        middle = early + (late - early) / 2
        if middle.astimezone(zone).utcoffset() == old:
            early = middle
        else:
            late = middle
    return late.replace(microsecond=0).astimezone(zone)


@dataclass(frozen=True)
class LocalDelivery:
    """``deliver_at`` of a digest as the ledger applies it when an issue is frozen: each
    reader's not-before time from their zone (None: ``site_zone``)."""

    at: time
    site_zone: str

    def not_before(self, zone: str | None, cutoff: datetime) -> datetime:
        return next_local(self.at, zone_or(zone, self.site_zone), cutoff)
