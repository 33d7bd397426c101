"""How often a digest comes, in words, and which digests are one choice of cadence."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from digest.cadence import cadence_groups, schedule_words
from digest.catalogue import translator_for
from digest.schedule import Schedule
from tests.conftest import AT, Site

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)  # a week before the spring DST change


def words(expression: str, language: str) -> str:
    schedule = Schedule.parse(expression, BERLIN)
    times, fire = [], NOW
    for _ in range(8):
        fire = schedule.next_fire(fire)
        times.append(fire)
    return schedule_words(times, translator_for(language), language)


@pytest.mark.parametrize(
    ("expression", "german", "english"),
    [
        (
            "0 7 * * mon",
            "Jede Woche am Montag um 07:00 Uhr",
            "Every week on Monday at 7:00\u202fAM",
        ),
        ("0 7 * * *", "Jeden Tag um 07:00 Uhr", "Every day at 7:00\u202fAM"),
        ("30 6 * * 1-5", "Montag bis Freitag um 06:30 Uhr", "Monday to Friday at 6:30\u202fAM"),
        (
            "0 18 * * tue,fri",
            "Jede Woche am Dienstag und Freitag um 18:00 Uhr",
            "Every week on Tuesday and Friday at 6:00\u202fPM",
        ),
        ("0 8 1 * *", "Jeden Monat am 1. um 08:00 Uhr", "Every month on day 1 at 8:00\u202fAM"),
    ],
)
def test_a_schedule_in_words_across_a_dst_change(
    expression: str, german: str, english: str
) -> None:
    assert words(expression, "de") == german
    assert words(expression, "en") == english


def test_a_schedule_without_a_pattern_lists_its_next_send_times() -> None:
    assert words("0 7 1,15 * *", "de") == (
        "Als Nächstes am 01.04.2026, 15.04.2026 und 01.05.2026, jeweils um 07:00 Uhr"
    )
    assert words("0 7 1,15 * *", "en") == (
        "Next on Apr 1, 2026, Apr 15, 2026, and May 1, 2026, each at 7:00\u202fAM"
    )
    assert words("*/5 * * * * *", "en").startswith("Next on Mar 20, 2026, 1:00:05")


def test_digests_over_the_same_sources_are_one_question_most_frequent_first(site: Site) -> None:
    site.replace_in_config(
        "  monthly:\n",
        '  schule:\n    title: Schulnews\n    schedule: "0 7 * * fri"\n'
        "    include: {tags: [Schule]}\n"
        "  monthly:\n",
    )
    loaded = site.load()
    groups = cadence_groups(loaded, AT, translator_for("de"), "de")
    assert [[option.name for option in group.options] for group in groups] == [
        ["weekly", "monthly"],  # the same sources, no filter: how often?
        ["schule"],  # only items tagged Schule: a digest of its own
    ]
    weekly, monthly = groups[0].options
    assert (weekly.title, weekly.words) == ("Wochenüberblick", "Jede Woche am Montag um 07:00 Uhr")
    assert monthly.words == "Jeden Monat am 1. um 08:00 Uhr"
