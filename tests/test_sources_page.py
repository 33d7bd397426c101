"""``kind: page`` on the seed-shaped fixture (teasers, "Mehr" links, half-year headings, dates
only in the text) served by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from digest.config import PageSourceConfig
from digest.errors import SourceError
from digest.models import Collection, Item
from digest.sources.http import FetchOptions
from digest.sources.page import PageSource, month_number
from tests.conftest import REPO
from tests.localserver import FIXTURES, LOOPBACK, LocalServer

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2017, 12, 1, 9, 0, tzinfo=UTC)
PATTERN = r"(?i)\bam (?P<day>\d{1,2})\. (?P<month>\w+)"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        running.add_fixture(
            "/aktuelles/", "listing_page.html", content_type="text/html; charset=utf-8"
        )
        yield running


def page(url: str, locale: str = "de_DE", **options: Any) -> PageSource:
    settings: dict[str, Any] = {
        "kind": "page",
        "url": url,
        "item": "div.news-teaser",
        "title": "h3",
        "teaser": "p.teaser",
        "link": "a.mehr",
        "image": "img",
        "date": {"pattern": PATTERN, "year_from": "h2.halbjahr"},
    }
    settings.update(options)
    config = PageSourceConfig.model_validate(settings)
    return PageSource(
        config.source_name, config, FetchOptions(timeout=5, allow_private=LOOPBACK), locale, BERLIN
    )


def local_day(item: Item) -> date:
    return item.published_at.astimezone(BERLIN).date()


def by_title(collection: Collection) -> dict[str, Item]:
    return {item.title: item for item in collection.items}


def test_listing_page(server: LocalServer) -> None:
    url = server.url("/aktuelles/")
    collection = page(url).collect(NOW)
    items = by_title(collection)
    assert len(collection.items) == 8

    # "am 29. November" in the text, the year from the heading "2. Halbjahr 2017"
    treffen = items["Netzwerktreffen der Präventionsketten in Dortmund"]
    assert local_day(treffen) == date(2017, 11, 29)
    assert treffen.published_at.tzinfo == UTC
    assert treffen.published_at == datetime(2017, 11, 28, 23, 0, tzinfo=UTC)  # local midnight
    assert treffen.key == treffen.url == server.url("/aktuelles/netzwerktreffen-dortmund")
    assert treffen.summary.startswith("Zum 12. Netzwerktreffen kamen")
    assert local_day(items["Rundgang für neue Lehrkräfte"]) == date(2017, 11, 14)  # "Am 14."
    assert local_day(items["Steuerungsgruppe tagt erneut"]) == date(
        2017, 9, 20
    )  # "Am 20. September"
    # other half-years: another heading, another year
    assert local_day(items["Auftakt der Präventionskette"]) == date(2017, 3, 3)  # März
    assert local_day(items["Stadtrat beschließt Teilnahme am Landesprogramm"]) == date(2016, 12, 5)

    # the link is absolute, without its #fragment; a relative href resolves against the page
    rundgang = items["Rundgang für neue Lehrkräfte"]
    assert rundgang.key == server.url("/aktuelles/rundgang-lehrkraefte?ref=liste")
    (untitled,) = [item for item in collection.items if "beteiligungswerkstatt" in item.key]
    assert untitled.key == server.url("/aktuelles/aktuelles/beteiligungswerkstatt")
    # no title element: the teaser's first sentence (shortened) stands in
    assert untitled.title.startswith("Jugendliche wünschen sich mehr Treffpunkte")
    assert local_day(untitled) == date(2017, 11, 16)

    aktion = items["Aktionswoche „Gut aufwachsen“"]
    assert aktion.image is not None
    assert aktion.image.src == server.url("/bilder/aktionswoche.jpg")
    assert (aktion.image.alt, aktion.image.width, aktion.image.height) == (
        "Stände auf dem Marktplatz",
        240,
        160,
    )
    # no date in the text: dated when first seen, with one warning for the page
    assert aktion.published_at == NOW
    assert items["Arbeitsgruppen werden gebildet"].published_at == NOW
    (problem,) = collection.problems
    assert (
        problem.severity == "warning"
        and "2 of 8 item(s) have no recognisable date" in problem.message
    )

    # teaser HTML is sanitised: no script, no event handler, links absolute
    rat = items["Stadtrat beschließt Teilnahme am Landesprogramm"]
    assert "<script" not in rat.body_html and "onclick" not in rat.body_html
    assert "track(" not in rat.body_html
    assert '<a href="https://www.example.org/ratsinfo/vorlage-117"' in rat.body_html

    request = server.hits("/aktuelles/")[0]
    assert request.headers["accept"].startswith("text/html")


def test_ids_are_stable_under_refetch_and_reordering(server: LocalServer) -> None:
    url = server.url("/aktuelles/")
    first = {item.key: item.content_hash for item in page(url).collect(NOW).items}
    assert {item.key: item.content_hash for item in page(url).collect(NOW).items} == first

    html = (FIXTURES / "listing_page.html").read_text(encoding="utf-8")
    first_section = re.search(
        r'<h2 class="halbjahr">2\. Halbjahr 2017</h2>(.*?)</section>', html, re.S
    )
    assert first_section is not None
    teasers = re.findall(r'<div class="news-teaser">.*?</div>', first_section.group(1), re.S)
    reordered = html.replace(first_section.group(1), "\n".join(reversed(teasers)))
    assert reordered != html
    server.add("/umsortiert/", reordered, content_type="text/html; charset=utf-8")
    moved = page(server.url("/umsortiert/")).collect(NOW)
    # the page moved too, so compare paths: same items, same content
    assert {
        key.replace("/umsortiert/", "/aktuelles/"): digest
        for key, digest in ((item.key, item.content_hash) for item in moved.items)
    }.keys() == first.keys()
    assert [item.key for item in moved.items][:5] == [
        key.replace("/aktuelles/", "/umsortiert/") if "beteiligungswerkstatt" in key else key
        for key in reversed(list(first)[:5])
    ]


def test_year_option_and_year_inference(server: LocalServer) -> None:
    url = server.url("/aktuelles/")
    fixed = by_title(page(url, date={"pattern": PATTERN, "year": 2015}).collect(NOW))
    assert local_day(fixed["Auftakt der Präventionskette"]) == date(2015, 3, 3)
    # neither a year nor a heading: this year, unless that lies in the future
    guessed = by_title(page(url, date={"pattern": PATTERN}).collect(NOW))
    assert local_day(guessed["Netzwerktreffen der Präventionsketten in Dortmund"]) == date(
        2017, 11, 29
    )
    assert local_day(guessed["Stadtrat beschließt Teilnahme am Landesprogramm"]) == date(
        2016, 12, 5
    )


def test_default_date_patterns_find_german_dates_without_configuration(server: LocalServer) -> None:
    collection = page(server.url("/aktuelles/"), date={"year_from": "h2.halbjahr"}).collect(NOW)
    items = by_title(collection)
    # "Zum 12. Netzwerktreffen" is no date; "am 29. November" is
    assert local_day(items["Netzwerktreffen der Präventionsketten in Dortmund"]) == date(
        2017, 11, 29
    )
    assert local_day(items["Auftakt der Präventionskette"]) == date(2017, 3, 3)


def test_strptime_format_and_attribute(server: LocalServer) -> None:
    html = """<html><body><ul>
      <li class="n"><a href="/a">Erste Meldung</a> <span class="d">14.11.2017</span></li>
      <li class="n"><a href="/b">Zweite Meldung</a> <time datetime="2017-11-16T10:30:00+01:00">
        16. Nov.</time></li>
      <li class="n"><a href="/c">Dritte Meldung</a> <span class="d">gestern</span></li>
    </ul></body></html>"""
    url = server.add("/liste", html, content_type="text/html")
    formatted = page(
        url,
        item="li.n",
        title="a",
        teaser=None,
        link="a",
        image=None,
        date={"selector": "span.d", "format": "%d.%m.%Y"},
    ).collect(NOW)
    first, second, third = formatted.items
    assert local_day(first) == date(2017, 11, 14)
    assert second.published_at == NOW and third.published_at == NOW
    assert "2 of 3" in formatted.problems[0].message
    attributed = page(
        url,
        item="li.n",
        title="a",
        teaser=None,
        link="a",
        image=None,
        date={"selector": "time", "attribute": "datetime"},
    ).collect(NOW)
    assert attributed.items[1].published_at == datetime(2017, 11, 16, 9, 30, tzinfo=UTC)


def test_english_month_names_in_another_locale(server: LocalServer) -> None:
    html = """<div class="post"><h2><a href="/x">Open day</a></h2><p>On 3 March 2017 we opened.</p>
      </div><div class="post"><h2><a href="/y">Fair</a></h2><p>September 20, 2016: the fair.</p></div>"""
    url = server.add("/en", html, content_type="text/html")
    source = page(
        url, locale="en_GB", item="div.post", title="h2", teaser="p", link="a", image=None, date={}
    )
    first, second = source.collect(NOW).items
    assert local_day(first) == date(2017, 3, 3)
    assert local_day(second) == date(2016, 9, 20)


def test_iso_8859_1_page(server: LocalServer) -> None:
    html = (
        '<html><head><meta charset="iso-8859-1"></head><body><div class="news-teaser">'
        '<h3>Grüße aus Süd</h3><p class="teaser">Am 5. März öffnet das Büro.</p>'
        '<a class="mehr" href="/sued">Mehr</a></div></body></html>'
    )
    meta = server.add("/latin1-meta", html.encode("iso-8859-1"), content_type="text/html")
    header = server.add(
        "/latin1-header",
        html.replace('<meta charset="iso-8859-1">', "").encode("iso-8859-1"),
        content_type="text/html; charset=ISO-8859-1",
    )
    for url in (meta, header):
        (item,) = page(url, date={"pattern": PATTERN, "year": 2018}).collect(NOW).items
        assert item.title == "Grüße aus Süd"
        assert local_day(item) == date(2018, 3, 5)


def test_layout_change_is_an_error_not_a_quiet_week(server: LocalServer) -> None:
    url = server.url("/aktuelles/")
    with pytest.raises(SourceError) as caught:
        page(url, item="article.teaser").collect(NOW)
    assert str(caught.value) == f"{url}: no element matches the item selector 'article.teaser'"


def test_http_errors_name_the_url(server: LocalServer) -> None:
    url = server.add("/kaputt", "oops", status=503, content_type="text/plain")
    with pytest.raises(SourceError, match=r"/kaputt: HTTP 503 Service Unavailable$"):
        page(url).collect(NOW)


@pytest.mark.parametrize(
    ("text", "locale", "number"),
    [
        ("November", "de_DE", 11),
        ("märz", "de_DE", 3),
        ("Sept.", "de_DE", 9),
        ("Dez", "de_DE", 12),
        ("11", "de_DE", 11),
        ("13", "de_DE", None),
        ("Lernnetzwerktreffen", "de_DE", None),
        ("May", "de_DE", 5),
        ("janvier", "fr_FR", 1),
        ("Mai", "en_GB", None),
    ],
)
def test_month_number(text: str, locale: str, number: int | None) -> None:
    assert month_number(text, locale) == number


def test_bad_selector_and_pattern_are_config_errors() -> None:
    with pytest.raises(ValueError, match="invalid CSS selector"):
        PageSourceConfig.model_validate({"kind": "page", "url": "https://e.org", "item": "div[["})
    with pytest.raises(ValueError, match="named group"):
        PageSourceConfig.model_validate(
            {"kind": "page", "url": "https://e.org", "item": "div", "date": {"pattern": r"(\d+)"}}
        )


def test_the_documented_snippet_reads_the_fixture(server: LocalServer) -> None:
    """config.example.yaml's commented page example, uncommented, works on the fixture."""
    lines = (REPO / "config.example.yaml").read_text(encoding="utf-8").splitlines()
    start = lines.index("  # - kind: page")
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith("  #   "):
            break
        block.append(line)
    snippet = yaml.safe_load("\n".join(line[4:] for line in block))
    (settings,) = snippet
    settings["url"] = server.url("/aktuelles/")
    config = PageSourceConfig.model_validate(settings)
    options = FetchOptions(timeout=5, allow_private=LOOPBACK)
    source = PageSource(config.source_name, config, options, "de_DE", BERLIN)
    items = by_title(source.collect(NOW))
    assert source.name == "aktuelles"
    assert local_day(items["Steuerungsgruppe tagt erneut"]) == date(2017, 9, 20)
    assert local_day(items["Stadtrat beschließt Teilnahme am Landesprogramm"]) == date(2016, 12, 5)
