"""How often a digest comes, in the reader's words, and which digests are one choice of
cadence: digests that draw on the same sources with the same filters differ only in how often
they come (a weekly and a monthly digest of the same news), so the sign-up and preferences
pages ask "how often?" once for them. Pure: "now" is passed in.

The words are read off the digest's next send times (its cron schedule, moved into its send
window as :func:`digest.nextissue.sends_at` does), so any cron expression gets a description:
``Every week on Monday at 07:00``; one that fits no pattern lists its next send times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from babel.dates import format_date, format_datetime, format_time
from babel.lists import format_list

from digest.catalogue import Translator
from digest.config import LoadedConfig
from digest.nextissue import sends_at

SAMPLE = 8  # send times looked at to tell the pattern
WORKDAYS = [0, 1, 2, 3, 4]  # datetime.weekday(): Monday to Friday


@dataclass(frozen=True)
class CadenceOption:
    name: str  # the digest's config key
    title: str
    words: str  # how often it comes, e.g. "Every week on Monday at 07:00"


@dataclass(frozen=True)
class CadenceGroup:
    """Digests over the same sources: one question "how often?" (a group of one: a plain
    choice of that digest)."""

    options: tuple[CadenceOption, ...]


def send_times(
    loaded: LoadedConfig, digest: str, now: datetime, count: int = SAMPLE
) -> list[datetime]:
    """The digest's next ``count`` send times after ``now``, in the digest's time zone."""
    schedule = loaded.schedule(digest)
    times: list[datetime] = []
    fire = now
    for _ in range(count):
        fire = schedule.next_fire(fire)
        times.append(sends_at(loaded, digest, fire))
    return times


def schedule_words(times: Sequence[datetime], t: Translator, locale: str) -> str:
    """``times`` (local send times in order, at least two) as a reader says how often."""
    first = times[0]
    if len({(moment.hour, moment.minute, moment.second) for moment in times}) == 1:
        clock = format_time(first, "short", locale=locale)
        gaps = [(later.date() - earlier.date()).days for earlier, later in pairwise(times)]
        weekdays = sorted({moment.weekday() for moment in times})
        if all(gap == 1 for gap in gaps):
            return t.gettext("Every day at %(time)s", time=clock)
        if weekdays == WORKDAYS and _repeats_weekly(times, len(weekdays)):
            return t.gettext("Monday to Friday at %(time)s", time=clock)
        if _repeats_weekly(times, len(weekdays)):
            days = _weekday_list(times, weekdays, locale)
            return t.gettext("Every week on %(days)s at %(time)s", days=days, time=clock)
        if all(gap == 14 for gap in gaps):
            days = _weekday_list(times, weekdays, locale)
            return t.gettext("Every two weeks on %(days)s at %(time)s", days=days, time=clock)
        if len({moment.day for moment in times}) == 1 and all(28 <= gap <= 31 for gap in gaps):
            return t.gettext(
                "Every month on day %(day)s at %(time)s", day=str(first.day), time=clock
            )
        dates = format_list(
            [format_date(moment, "medium", locale=locale) for moment in times[:3]], locale=locale
        )
        return t.gettext("Next on %(dates)s, each at %(time)s", dates=dates, time=clock)
    shown = times[:3]
    style = "medium" if any(moment.second for moment in shown) else "short"  # a demo schedule
    dates = format_list(
        [format_datetime(m, style, tzinfo=m.tzinfo, locale=locale) for m in shown], locale=locale
    )
    return t.gettext("Next on %(dates)s", dates=dates)


def _repeats_weekly(times: Sequence[datetime], per_week: int) -> bool:
    later = times[per_week:]
    return bool(later) and all(
        (after.date() - before.date()).days == 7
        for before, after in zip(times, later, strict=False)
    )


def _weekday_list(times: Sequence[datetime], weekdays: list[int], locale: str) -> str:
    names = {moment.weekday(): format_date(moment, "EEEE", locale=locale) for moment in times}
    return format_list([names[day] for day in weekdays], locale=locale)


def cadence_groups(
    loaded: LoadedConfig, now: datetime, t: Translator, locale: str
) -> list[CadenceGroup]:
    """The site's digests as choices: digests over the same sources and filters together,
    most frequent first; groups in the order of their first digest in the config."""
    all_sources = [entry.source_name for entry in loaded.config.sources]
    groups: dict[tuple[object, ...], list[tuple[float, CadenceOption]]] = {}
    for name, digest in loaded.config.digests.items():
        sources = tuple(sorted(digest.sources if digest.sources is not None else all_sources))
        key = (sources, repr(digest.include), repr(digest.exclude), repr(digest.max_age))
        times = send_times(loaded, name, now)
        interval = (times[-1] - times[0]).total_seconds() / (len(times) - 1)
        option = CadenceOption(name, digest.title, schedule_words(times, t, locale))
        groups.setdefault(key, []).append((interval, option))
    return [
        CadenceGroup(tuple(option for _, option in sorted(members, key=lambda m: m[0])))
        for members in groups.values()
    ]
