"""Include/exclude tags and keywords and max_age, per source and per digest."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from digest.collect import collect
from digest.config import FilterFields, MatchConfig
from digest.errors import ConfigError
from digest.filters import ItemFilter
from digest.models import Item
from digest.sources import build_sources
from digest.sources.base import FilteredSource
from tests.conftest import AT_TEXT, SAMPLE_WEEK_TITLES, CliRunner, Site
from tests.localserver import LocalServer

NOW = datetime(2017, 11, 20, 7, 0, tzinfo=UTC)
FACHKONFERENZ, AHLEN_NEU_DENKEN, STADTFUEHRUNG = SAMPLE_WEEK_TITLES  # newest first


def item(title: str, *, tags: tuple[str, ...] = (), summary: str = "", age_days: float = 1) -> Item:
    return Item(
        source="s",
        key=title,
        title=title,
        published_at=NOW - timedelta(days=age_days),
        summary=summary,
        body_html="",
        content_hash=title,
        tags=tags,
    )


def make(**settings: object) -> ItemFilter:
    return ItemFilter.from_config(FilterFields.model_validate(settings))


ITEMS = [
    item("Elterncafé öffnet", tags=("Familie",), summary="Jeden Dienstag"),
    item("Schulsozialarbeit", tags=("SCHULE", "Beratung"), age_days=10),
    item("Ferienprogramm", summary="Anmeldung zur Präventionswoche", age_days=40),
    item("Stellenanzeige: Erzieherin", tags=("intern",), age_days=2),
]


def titles(found: list[Item]) -> list[str]:
    return [entry.title for entry in found]


def test_no_filter_keeps_everything() -> None:
    nothing = make()
    assert not nothing.active
    assert nothing.apply(ITEMS, NOW) == ITEMS
    assert not make(include={"tags": [], "keywords": [" "]}).active


def test_include_tags_are_whole_and_case_insensitive() -> None:
    assert titles(make(include={"tags": ["schule"]}).apply(ITEMS, NOW)) == ["Schulsozialarbeit"]
    assert titles(make(include={"tags": ["Schul"]}).apply(ITEMS, NOW)) == []


def test_include_keywords_search_title_and_summary() -> None:
    found = make(include={"keywords": ["prävention", "CAFÉ"]}).apply(ITEMS, NOW)
    assert titles(found) == ["Elterncafé öffnet", "Ferienprogramm"]


def test_include_matches_any_tag_or_keyword() -> None:
    found = make(include={"tags": ["Familie"], "keywords": ["ferien"]}).apply(ITEMS, NOW)
    assert titles(found) == ["Elterncafé öffnet", "Ferienprogramm"]


def test_exclude_wins_over_include() -> None:
    found = make(
        include={"keywords": ["e"]}, exclude={"tags": ["intern"], "keywords": ["dienstag"]}
    )
    assert titles(found.apply(ITEMS, NOW)) == ["Schulsozialarbeit", "Ferienprogramm"]


def test_max_age() -> None:
    assert titles(make(max_age="30d").apply(ITEMS, NOW)) == [
        "Elterncafé öffnet",
        "Schulsozialarbeit",
        "Stellenanzeige: Erzieherin",
    ]
    assert titles(make(max_age="1w").apply(ITEMS, NOW)) == [
        "Elterncafé öffnet",
        "Stellenanzeige: Erzieherin",
    ]
    # exactly max_age old still counts
    assert make(max_age="24h").accepts(item("x", age_days=1), NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("2w", timedelta(weeks=2)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        (" 7 d ", timedelta(days=7)),
        ("P3D", timedelta(days=3)),
        (3600, timedelta(hours=1)),
    ],
)
def test_durations(text: object, expected: timedelta) -> None:
    assert FilterFields.model_validate({"max_age": text}).max_age == expected


def test_match_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError):
        MatchConfig.model_validate({"tag": ["x"]})


def test_bad_max_age_names_the_line(site: Site) -> None:
    site.replace_in_config("    max_items: 20\n", "    max_items: 20\n    max_age: 30 days\n")
    with pytest.raises(ConfigError) as caught:
        site.load()
    line = site.config_line_of("max_age: 30 days")
    assert str(caught.value) == (
        f"{site.config}:{line}: digests.weekly.max_age: duration '30 days' not understood "
        "(use e.g. 30d, 12h, 2w)"
    )


# -- per source --------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        running.add_fixture("/rss.xml", "rss2.xml", content_type="application/rss+xml", etag='"1"')
        yield running


def test_feed_source_filters(site: Site, server: LocalServer) -> None:
    site.replace_in_config(
        "    path: content\n",
        "    path: content\n"
        "    exclude: {tags: [Präventionswoche]}\n"
        "  - kind: feed\n"
        f"    url: {server.url('/rss.xml')}\n"
        "    allow_private: [127.0.0.1]\n"
        "    name: netz\n"
        "    include: {tags: [schule, familie]}\n"
        "    max_age: 10d\n",
    )
    folder, feed = build_sources(site.load())
    assert isinstance(feed, FilteredSource) and feed.name == "netz"
    result = collect([folder, feed], NOW, {})
    by_source = {
        name: [entry.title for entry in result.items if entry.source == name]
        for name in ("folder:content", "netz")
    }
    assert by_source["netz"] == [
        "Elterncafé öffnet im Familienzentrum",
        "Sprechstunde der Schulsozialarbeit verlegt",
    ]
    assert all("Präventionswoche" not in entry.tags for entry in result.items)
    assert len(by_source["folder:content"]) == 6
    assert result.states["netz"].item_count == 2 and result.states["netz"].etag == '"1"'
    # the filter passes conditional GET through: the second fetch is a 304
    again = collect([folder, feed], NOW, result.states)
    assert [entry.source for entry in again.items] == ["folder:content"] * 6
    assert server.hits("/rss.xml")[1].headers["if-none-match"] == '"1"'


# -- per digest --------------------------------------------------------------------------------


def built_titles(site: Site, cli: CliRunner, tmp_path_name: str = "out") -> list[str]:
    out = site.root / tmp_path_name
    result = cli("-c", site.config, "build", "weekly", "--out", out, "--at", AT_TEXT)
    assert result.code == 0, result.err
    text = (out / "email.txt").read_text(encoding="utf-8")
    return [title for title in SAMPLE_WEEK_TITLES if title in text]


def test_digest_without_filters_has_the_whole_week(site: Site, cli: CliRunner) -> None:
    assert built_titles(site, cli) == list(SAMPLE_WEEK_TITLES)


def test_digest_include_tags(site: Site, cli: CliRunner) -> None:
    site.replace_in_config(
        "    max_items: 20\n", "    max_items: 20\n    include: {tags: [schule]}\n"
    )
    assert built_titles(site, cli) == [STADTFUEHRUNG]


def test_digest_exclude_keywords(site: Site, cli: CliRunner) -> None:
    site.replace_in_config(
        "    max_items: 20\n", "    max_items: 20\n    exclude: {keywords: [jugendliche]}\n"
    )
    assert built_titles(site, cli) == [FACHKONFERENZ, STADTFUEHRUNG]


def test_digest_max_age_counts_back_from_the_cutoff(site: Site, cli: CliRunner) -> None:
    # cutoff Monday 20 November 07:00; five days back is Wednesday 15 November 07:00
    site.replace_in_config("    max_items: 20\n", "    max_items: 20\n    max_age: 5d\n")
    assert built_titles(site, cli) == [FACHKONFERENZ, AHLEN_NEU_DENKEN]
