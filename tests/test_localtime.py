"""Local delivery time (digest.localtime): the first local ``deliver_at`` at or after a cutoff,
across DST changes, gaps and folds, and with unknown zones."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from digest.localtime import LocalDelivery, next_local, parse_deliver_at, zone_or

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SEVEN = time(7, 0)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("cutoff", "berlin", "new_york"),
    [
        # Before 25 October both zones are on summer time: 6 hours apart.
        ("2026-10-19T05:00", "2026-10-19T05:00", "2026-10-19T11:00"),
        # The week between EU (25 Oct) and US (1 Nov) fall-back: 5 hours apart.
        ("2026-10-26T06:00", "2026-10-26T06:00", "2026-10-26T11:00"),
        # Both on standard time: 6 hours apart again.
        ("2026-11-02T06:00", "2026-11-02T06:00", "2026-11-02T12:00"),
    ],
)
def test_seven_local_in_both_zones_across_the_dst_week(
    cutoff: str, berlin: str, new_york: str
) -> None:
    assert next_local(SEVEN, BERLIN, utc(cutoff)) == utc(berlin)
    assert next_local(SEVEN, NEW_YORK, utc(cutoff)) == utc(new_york)


def test_a_time_already_past_today_is_tomorrows() -> None:
    # 08:00 in Berlin (CEST): 07:00 has passed there; the next is 07:00 the next day.
    assert next_local(SEVEN, BERLIN, utc("2026-10-19T06:00")) == utc("2026-10-20T05:00")
    # The cutoff itself counts ("at or after").
    assert next_local(SEVEN, BERLIN, utc("2026-10-19T05:00")) == utc("2026-10-19T05:00")
    # Just after: tomorrow, which is after the change of offset.
    assert next_local(SEVEN, BERLIN, utc("2026-10-24T05:00:01")) == utc("2026-10-25T06:00")


def test_a_time_in_the_spring_gap_is_the_first_instant_after_it() -> None:
    # Berlin skips 02:00-03:00 on 29 March 2026: 02:30 is 03:00 CEST (01:00 UTC).
    assert next_local(time(2, 30), BERLIN, utc("2026-03-28T12:00")) == utc("2026-03-29T01:00")
    # New York skips 02:00-03:00 on 8 March 2026: 03:00 EDT (07:00 UTC).
    assert next_local(time(2, 30), NEW_YORK, utc("2026-03-07T12:00")) == utc("2026-03-08T07:00")
    # The next day it exists again.
    assert next_local(time(2, 30), BERLIN, utc("2026-03-29T01:00:01")) == utc("2026-03-30T00:30")


def test_an_ambiguous_time_takes_its_first_occurrence() -> None:
    # 02:30 happens twice in Berlin on 25 October 2026: the CEST one (00:30 UTC) first.
    assert next_local(time(2, 30), BERLIN, utc("2026-10-24T12:00")) == utc("2026-10-25T00:30")
    # After the first one has passed, the second (CET) one is not taken: the next day's.
    assert next_local(time(2, 30), BERLIN, utc("2026-10-25T00:31")) == utc("2026-10-26T01:30")


def test_a_gap_at_midnight() -> None:
    # Santiago de Chile springs forward at 00:00 on 6 September 2026: 00:30 is 01:00 -03.
    santiago = ZoneInfo("America/Santiago")
    got = next_local(time(0, 30), santiago, utc("2026-09-05T12:00"))
    assert got.astimezone(santiago).isoformat() == "2026-09-06T01:00:00-03:00"


def test_unknown_or_missing_zones_are_the_sites() -> None:
    assert zone_or("Mars/Olympus", "Europe/Berlin") == BERLIN
    assert zone_or(None, "Europe/Berlin") == BERLIN
    assert zone_or("", "Europe/Berlin") == BERLIN
    assert zone_or("../../etc/passwd", "Europe/Berlin") == BERLIN
    assert zone_or("America/New_York", "Europe/Berlin") == NEW_YORK
    local = LocalDelivery(SEVEN, "Europe/Berlin")
    cutoff = utc("2026-10-26T06:00")
    assert local.not_before("Mars/Olympus", cutoff) == local.not_before(None, cutoff)


def test_naive_cutoffs_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        next_local(SEVEN, BERLIN, datetime(2026, 10, 26, 6))


def test_deliver_at_is_a_time_of_day() -> None:
    assert parse_deliver_at("07:00") == SEVEN
    assert parse_deliver_at("7:05") == time(7, 5)
    assert parse_deliver_at("23:59") == time(23, 59)
    for bad in ("24:00", "7", "07:60", "seven", "25:00"):
        with pytest.raises(ValueError, match="not understood"):
            parse_deliver_at(bad)
