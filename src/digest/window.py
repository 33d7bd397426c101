"""Send windows: the local days and hours during which the scheduler may send a digest.

``days`` uses crontab weekday syntax (``mon-fri``, ``mon,wed,fri``, ``1-5``, ``*``); ``start``
and ``end`` are ``HH:MM`` in the digest's time zone, ``end`` exclusive and ``24:00`` meaning
midnight. A window whose end is before its start runs over midnight (``22:00``-``06:00``); the
day it belongs to is the day it opened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from digest.weekdays import CRON_DAY_NAMES, weekday_names

_CLOCK = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")


def parse_clock(value: str) -> int:
    """``HH:MM`` -> minutes after midnight (``24:00`` -> 1440)."""
    match = _CLOCK.match(value.strip())
    if not match or (match.group(1) == "24" and match.group(2) != "00"):
        raise ValueError(f"time {value!r} not understood (use HH:MM, e.g. 07:00)")
    return int(match.group(1)) * 60 + int(match.group(2))


def parse_days(value: str) -> frozenset[int]:
    """Crontab weekday syntax -> ``datetime.weekday()`` numbers (Monday = 0)."""
    text = value.strip().lower()
    if text in ("*", ""):
        return frozenset(range(7))
    if not any(char.isdigit() for char in text):
        # Names: translate to crontab numbers so ranges such as mon-fri work the same way.
        text = re.sub(r"[a-z]+", lambda m: str(_day_index(m.group(0))), text)
    names = weekday_names(text)  # validates; returns e.g. "mon,tue,wed"
    return frozenset((CRON_DAY_NAMES.index(name) - 1) % 7 for name in names.split(","))


def _day_index(token: str) -> int:
    if token[:3] not in CRON_DAY_NAMES:
        raise ValueError(f"unknown weekday {token!r} (use mon, tue, ... or 0-7)")
    return CRON_DAY_NAMES.index(token[:3])


@dataclass(frozen=True)
class SendWindow:
    days: frozenset[int]
    start: int  # minutes after local midnight
    end: int  # exclusive; may be <= start (over midnight)

    @classmethod
    def parse(cls, days: str, start: str, end: str) -> SendWindow:
        window = cls(parse_days(days), parse_clock(start), parse_clock(end))
        if window.start == window.end or (window.start == 0 and window.end == 0):
            raise ValueError(f"send window {start}-{end} is empty")
        return window

    def contains(self, local: datetime) -> bool:
        """Is ``local`` (a datetime in the digest's time zone) inside the window?"""
        minute = local.hour * 60 + local.minute
        if self.start < self.end:
            return local.weekday() in self.days and self.start <= minute < self.end
        if minute >= self.start:  # over midnight: the evening part
            return local.weekday() in self.days
        return minute < self.end and (local.weekday() - 1) % 7 in self.days

    def next_open(self, local: datetime) -> datetime:
        """When the window is next open at or after ``local`` (to the minute)."""
        moment = local.replace(second=0, microsecond=0)
        if self.contains(local):
            return local
        day = moment.date()
        for offset in range(9):
            candidate_day = day + timedelta(days=offset)
            if candidate_day.weekday() not in self.days:
                continue
            hours, minutes = divmod(self.start, 60)
            naive = datetime.combine(candidate_day, time(hours % 24, minutes))
            opening = naive.replace(tzinfo=local.tzinfo)
            if opening >= local:
                return opening
        return local  # unreachable for a window with at least one day

    def describe(self) -> str:
        names = ",".join(CRON_DAY_NAMES[(day + 1) % 7] for day in sorted(self.days))
        return f"{names} {self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"
