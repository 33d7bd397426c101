"""Cron schedules in the site's time zone and the periods ``(previous fire, this fire]``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from digest.schedule import Period, Schedule
from tests.conftest import AT

BERLIN = ZoneInfo("Europe/Berlin")


def weekdays(expression: str) -> list[str]:
    """Names of the days a schedule fires on in the first two weeks of June 2025 (Sun 1st)."""
    schedule = Schedule.parse(expression, BERLIN)
    fires = schedule.fires_between(
        datetime(2025, 6, 1, tzinfo=BERLIN), datetime(2025, 6, 14, 23, 59, tzinfo=BERLIN)
    )
    return [fire.strftime("%a %d") for fire in fires]


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("0 7 * * 0", ["Sun 01", "Sun 08"]),
        ("0 7 * * 7", ["Sun 01", "Sun 08"]),
        ("0 7 * * sun", ["Sun 01", "Sun 08"]),
        ("0 7 * * 1", ["Mon 02", "Mon 09"]),
        ("0 7 * * mon", ["Mon 02", "Mon 09"]),
        ("0 7 * * 6", ["Sat 07", "Sat 14"]),
        (
            "0 7 * * 1-5",
            [
                "Mon 02",
                "Tue 03",
                "Wed 04",
                "Thu 05",
                "Fri 06",
                "Mon 09",
                "Tue 10",
                "Wed 11",
                "Thu 12",
                "Fri 13",
            ],
        ),
        ("0 7 * * mon-fri", weekdays("0 7 * * 1-5")),
        ("0 7 * * 5-7", ["Sun 01", "Fri 06", "Sat 07", "Sun 08", "Fri 13", "Sat 14"]),
        ("0 7 * * 1,3", ["Mon 02", "Wed 04", "Mon 09", "Wed 11"]),
        (
            "0 7 * * */2",
            ["Sun 01", "Tue 03", "Thu 05", "Sat 07", "Sun 08", "Tue 10", "Thu 12", "Sat 14"],
        ),
    ],
)
def test_weekday_numbers_are_crontab_numbers(expression: str, expected: list[str]) -> None:
    assert weekdays(expression) == expected


@pytest.mark.parametrize(
    "expression, reason",
    [
        ("0 7 * *", "needs 5 fields"),
        ("1 2 3 4 5 6 7", "needs 5 fields"),
        ("0 7 * * 8", "weekday 8 out of range 0-7"),
        ("0 7 * * 5-1", "weekday range '5-1' runs backwards"),
        ("0 7 * * funday", 'Invalid weekday name "funday"'),
        ("61 7 * * mon", "invalid cron schedule"),
        ("0 7 32 * *", "invalid cron schedule"),
    ],
)
def test_bad_expressions(expression: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        Schedule.parse(expression, BERLIN)


def test_period_ending_for_the_sample_week() -> None:
    schedule = Schedule.parse("0 7 * * mon", BERLIN)
    period = schedule.period_ending(AT)
    assert period == Period(
        start=datetime(2017, 11, 13, 7, tzinfo=BERLIN), end=datetime(2017, 11, 20, 7, tzinfo=BERLIN)
    )
    assert period.slug == "2017-11-20-0700"
    assert period.key == "2017-11-20T07:00+01:00"
    # at the fire time exactly, that fire closes the period; a second before, it does not
    assert schedule.period_ending(datetime(2017, 11, 20, 7, tzinfo=BERLIN)) == period
    earlier = schedule.period_ending(datetime(2017, 11, 20, 6, 59, 59, tzinfo=BERLIN))
    assert earlier.end == datetime(2017, 11, 13, 7, tzinfo=BERLIN)
    # the same moment given in another zone gives the same period
    assert schedule.period_ending(AT.astimezone(UTC)) == period


def test_period_contains_end_but_not_start() -> None:
    period = Schedule.parse("0 7 * * mon", BERLIN).period_ending(AT)
    assert period.start is not None
    assert not period.contains(period.start)
    assert period.contains(period.start + timedelta(microseconds=1))
    assert period.contains(period.end)
    assert not period.contains(period.end + timedelta(microseconds=1))
    assert period.contains(datetime(2017, 11, 17, 10, tzinfo=BERLIN))
    assert Period(start=None, end=period.end).contains(datetime(2000, 1, 1, tzinfo=UTC))


def test_consecutive_periods_tile_time() -> None:
    schedule = Schedule.parse("0 7 * * mon", BERLIN)
    period = schedule.period_ending(AT)
    following = schedule.period_ending(schedule.next_fire(period.end))
    assert following.start == period.end
    assert following.end == datetime(2017, 11, 27, 7, tzinfo=BERLIN)


def _fires_per_local_day(expression: str, first: date, last: date) -> dict[date, list[datetime]]:
    schedule = Schedule.parse(expression, BERLIN)
    start = datetime.combine(first, datetime.min.time(), tzinfo=BERLIN)
    end = datetime.combine(last, datetime.max.time(), tzinfo=BERLIN)
    days: dict[date, list[datetime]] = {}
    for fire in schedule.fires_between(start, end):
        days.setdefault(fire.date(), []).append(fire)
    return days


def test_daily_0230_across_spring_forward() -> None:
    # 2025-03-30: clocks jump from 02:00 to 03:00 CEST; 02:30 does not exist that day.
    days = _fires_per_local_day("30 2 * * *", date(2025, 3, 27), date(2025, 4, 2))
    assert sorted(days) == [date(2025, 3, 27) + timedelta(days=n) for n in range(7)]
    assert all(len(fires) == 1 for fires in days.values()), days
    (skipped,) = days[date(2025, 3, 30)]
    assert skipped == datetime(2025, 3, 30, 3, 30, tzinfo=BERLIN)  # run late, not lost
    assert skipped.utcoffset() == timedelta(hours=2)
    assert days[date(2025, 3, 29)][0].utcoffset() == timedelta(hours=1)


def test_daily_0230_across_fall_back() -> None:
    # 2025-10-26: 02:00-03:00 happens twice (CEST, then CET); cron fires once, the first time.
    days = _fires_per_local_day("30 2 * * *", date(2025, 10, 23), date(2025, 10, 29))
    assert sorted(days) == [date(2025, 10, 23) + timedelta(days=n) for n in range(7)]
    assert all(len(fires) == 1 for fires in days.values()), days
    (repeated,) = days[date(2025, 10, 26)]
    assert repeated.astimezone(UTC) == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert days[date(2025, 10, 27)][0].utcoffset() == timedelta(hours=1)


def test_periods_across_dst_are_contiguous_and_never_empty() -> None:
    schedule = Schedule.parse("30 2 * * *", BERLIN)
    for first in (datetime(2025, 3, 28, tzinfo=BERLIN), datetime(2025, 10, 24, tzinfo=BERLIN)):
        fires = schedule.fires_between(first, first + timedelta(days=5))
        for previous, fire in pairwise(fires):
            period = schedule.period_ending(fire + timedelta(minutes=5))
            assert (period.start, period.end) == (previous, fire)
            assert timedelta(hours=23) <= fire - previous <= timedelta(hours=25)


def test_next_fire_is_strictly_after() -> None:
    schedule = Schedule.parse("0 7 * * mon", BERLIN)
    fire = datetime(2017, 11, 20, 7, tzinfo=BERLIN)
    assert schedule.next_fire(fire - timedelta(seconds=1)) == fire
    assert schedule.next_fire(fire) == datetime(2017, 11, 27, 7, tzinfo=BERLIN)
    assert schedule.last_fire(fire) == fire


def test_schedule_in_another_zone() -> None:
    tokyo = Schedule.parse("0 7 * * mon", ZoneInfo("Asia/Tokyo"))
    assert tokyo.last_fire(AT) == datetime(2017, 11, 20, 7, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert tokyo.last_fire(AT).astimezone(UTC) == datetime(2017, 11, 19, 22, tzinfo=UTC)
