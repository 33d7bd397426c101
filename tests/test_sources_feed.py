"""``kind: feed`` over a real HTTP server on 127.0.0.1: formats, encodings, broken feeds,
unsafe HTML, conditional GET, HTTP failures; ids stable under re-fetch and reordering."""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import __version__
from digest.collect import collect
from digest.config import FeedSourceConfig, load_config
from digest.errors import SourceError
from digest.models import Collection, Item, SourceState
from digest.sources import build_sources
from digest.sources.feed import FeedSource
from digest.sources.http import FetchOptions
from tests.localserver import FIXTURES, LOOPBACK, LocalServer

NOW = datetime(2017, 11, 20, 7, 0, tzinfo=UTC)
RSS = "application/rss+xml"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


def feed(
    url: str, *, timeout: float = 5.0, max_bytes: int = 1_000_000, name: str = "feed"
) -> FeedSource:
    options = FetchOptions(timeout=timeout, max_bytes=max_bytes, allow_private=LOOPBACK)
    return FeedSource(name=name, url=url, options=options)


def by_key(collection: Collection) -> dict[str, Item]:
    return {item.key: item for item in collection.items}


# -- formats -----------------------------------------------------------------------------------


def test_rss2(server: LocalServer) -> None:
    url = server.add_fixture("/netz/rss.xml", "rss2.xml", content_type=RSS)
    collection = feed(url).collect(NOW)
    assert collection.problems == ()
    items = by_key(collection)
    assert list(items)[:3] == [
        "netz-2017-0042",  # guid
        "https://www.example.org/netz/sprechstunde",  # no guid: the link
        "https://www.example.org/netz/ferienprogramm",  # a permalink guid
    ]
    cafe = items["netz-2017-0042"]
    assert cafe.title == "Elterncafé öffnet im Familienzentrum"
    assert cafe.published_at == datetime(2017, 11, 14, 9, 0, tzinfo=UTC)
    assert cafe.published_at.utcoffset() == timedelta(0)
    assert cafe.url == "https://www.example.org/netz/elterncafe"
    assert cafe.tags == ("Familie", "Treffpunkt")
    assert cafe.summary == "Jeden Dienstag treffen sich Eltern zum Austausch."
    # content:encoded is the body; relative links resolve against the entry's link
    assert '<a href="https://www.example.org/netz/familienzentrum"' in cafe.body_html
    assert 'src="https://www.example.org/netz/bilder/cafe.jpg"' in cafe.body_html
    assert cafe.image is not None and cafe.image.src.endswith("/bilder/cafe-klein.jpg")
    assert (cafe.image.width, cafe.image.height) == (300, 200)
    assert items["https://www.example.org/netz/sprechstunde"].body_html == (
        "<p>Die Sprechstunde findet ab sofort <em>donnerstags</em> statt.</p>"
    )
    # neither guid nor link nor date: keyed by a content hash, dated "now" (first seen)
    (undated,) = [item for key, item in items.items() if key.startswith("sha256:")]
    assert undated.title == "Ohne Datum und ohne Link"
    assert undated.published_at == NOW and undated.url is None
    # a clear User-Agent and an Accept header that names feed types
    (request,) = server.hits("/netz/rss.xml")
    assert request.headers["user-agent"] == f"digest/{__version__}"
    assert "application/rss+xml" in request.headers["accept"]


def test_atom(server: LocalServer) -> None:
    url = server.add_fixture("/atom.xml", "atom.xml", content_type="application/atom+xml")
    items = feed(url).collect(NOW).items
    fachtag, broschuere = items
    assert fachtag.key == "urn:uuid:5a1e9f1c-0d1e-4c53-9a5e-4bb2d07e0101"
    assert fachtag.title == "Fachtag Kinderarmut im Rathaus"  # type="html" title: tags go
    assert fachtag.published_at == datetime(2017, 11, 15, 13, 0, tzinfo=UTC)  # published wins
    assert fachtag.url == "https://blog.example.org/praevention/beitraege/fachtag-kinderarmut"
    assert fachtag.summary == "Rund 80 Fachkräfte diskutierten über Kinderarmut."
    # xml:base decides how "../programm.pdf" resolves
    assert 'href="https://blog.example.org/programm.pdf"' in fachtag.body_html
    assert fachtag.tags == ("Fachkräfte",)
    assert broschuere.published_at == datetime(2017, 11, 13, 8, 0, tzinfo=UTC)  # updated only
    # type="text" content is escaped text in paragraphs
    assert broschuere.body_html == (
        "<p>Die Broschüre gibt es im Bürgerbüro.</p>"
        "<p>Sie ist kostenlos &amp; in fünf Sprachen erhältlich.</p>"
    )


@pytest.mark.parametrize(
    "content_type", ["application/feed+json", "application/json", "text/plain"]
)
def test_json_feed(server: LocalServer, content_type: str) -> None:
    url = server.add_fixture("/feed.json", "feed.json", content_type=content_type)
    collection = feed(url).collect(NOW)
    assert collection.problems == ()
    kochkurs, werkstatt, undated = collection.items
    assert kochkurs.key == "1017"  # a numeric id becomes text
    assert kochkurs.published_at == datetime(2017, 11, 16, 16, 0, tzinfo=UTC)
    assert kochkurs.summary == "Gemeinsam kochen und essen."
    assert 'href="https://jugendhaus.example.org/anmeldung"' in kochkurs.body_html
    assert kochkurs.image is not None
    assert kochkurs.image.src == "https://jugendhaus.example.org/bilder/kochkurs.jpg"
    assert kochkurs.tags == ("Jugend", "Freizeit")
    assert werkstatt.published_at == datetime(2017, 11, 15, 14, 0, tzinfo=UTC)
    assert werkstatt.body_html == "<p>Jeden Mittwoch ab 15 Uhr.</p><p>Werkzeug ist vorhanden.</p>"
    assert undated.key == "ohne-datum" and undated.published_at == NOW


def test_broken_json_feed_names_line_and_column(server: LocalServer) -> None:
    text = (FIXTURES / "feed.json").read_text(encoding="utf-8")
    url = server.add("/cut.json", text[:400], content_type="application/feed+json")
    with pytest.raises(SourceError) as caught:
        feed(url).collect(NOW)
    message = str(caught.value)
    assert message.startswith(url) and "line " in message and "column " in message


# -- encodings ---------------------------------------------------------------------------------


def test_iso_8859_1_declared_in_the_prolog(server: LocalServer) -> None:
    url = server.add_fixture("/latin1.xml", "latin1.xml", content_type="application/rss+xml")
    collection = feed(url).collect(NOW)
    assert collection.problems == ()
    titles = [item.title for item in collection.items]
    assert titles == [
        "Grünfläche am Bürgerhaus wird neu gestaltet",
        "Öffnungszeiten über die Feiertage",
    ]
    assert "Größere Wünsche" in collection.items[0].summary
    assert [item.key for item in collection.items] == ["sued-1", "sued-2"]


def test_iso_8859_1_declared_in_the_http_header(server: LocalServer) -> None:
    url = server.add_fixture(
        "/latin1-header.xml", "latin1-header.xml", content_type="text/xml; charset=ISO-8859-1"
    )
    titles = [item.title for item in feed(url).collect(NOW).items]
    assert titles == [
        "Grünfläche am Bürgerhaus wird neu gestaltet",
        "Öffnungszeiten über die Feiertage",
    ]


# -- broken feeds ------------------------------------------------------------------------------


def test_truncated_feed_keeps_complete_entries_with_a_warning(server: LocalServer) -> None:
    url = server.add_fixture("/truncated.xml", "truncated.xml", content_type=RSS)
    collection = feed(url).collect(NOW)
    assert [item.title for item in collection.items] == [
        "Erster vollständiger Eintrag",
        "Zweiter vollständiger Eintrag",
    ]
    messages = [problem.message for problem in collection.problems]
    assert all(problem.severity == "warning" for problem in collection.problems)
    assert any("not well-formed" in message and "line 21" in message for message in messages)
    assert any("skipped" in message for message in messages)  # the half entry


def test_feed_truncated_before_any_entry_is_an_error_with_the_line(server: LocalServer) -> None:
    text = (FIXTURES / "truncated.xml").read_text(encoding="utf-8")
    url = server.add("/cut.xml", text[: text.index("<item>")], content_type=RSS)
    with pytest.raises(SourceError) as caught:
        feed(url).collect(NOW)
    assert str(caught.value).startswith(f"{url}: not a readable feed: line ")


def test_undefined_entities(server: LocalServer) -> None:
    url = server.add_fixture("/entities.xml", "entities.xml", content_type=RSS)
    collection = feed(url).collect(NOW)
    first, second = collection.items
    assert first.title == "Grüße aus dem Jugendbüro"
    assert first.summary == "Viele Grüße & bis bald — euer Team."
    assert second.title == "Zweiter Eintrag © 2017"
    (problem,) = collection.problems
    assert problem.severity == "warning" and problem.where == url
    assert "line 6" in problem.message and "undefined entity" in problem.message


def test_html_page_instead_of_a_feed_is_an_error(server: LocalServer) -> None:
    url = server.add_fixture("/news", "listing_page.html", content_type="text/html")
    with pytest.raises(SourceError) as caught:
        feed(url).collect(NOW)
    assert str(caught.value).startswith(f"{url}: not ")


def test_unsafe_content_is_stripped(server: LocalServer) -> None:
    url = server.add_fixture("/unsafe.xml", "unsafe.xml", content_type=RSS)
    (item,) = feed(url).collect(NOW).items
    assert item.title == "Harmloser Titel"
    assert item.url is None  # a javascript: link is no URL
    lowered = item.body_html.lower()
    for forbidden in (
        "<script",
        "onclick",
        "onmouseover",
        "onerror",
        "javascript:",
        "<iframe",
        "<form",
        "<input",
        "<style",
        "style=",
        "document.cookie",
        "evil.example",
    ):
        assert forbidden not in lowered, forbidden
    assert "Klick mich" in item.body_html
    assert 'href="http://127.0.0.1' in item.body_html  # relative link resolved against the feed
    assert "/relativ/seite.html" in item.body_html
    assert 'alt="Bild"' in item.body_html


# -- HTTP --------------------------------------------------------------------------------------


def test_conditional_get_gets_304_on_the_second_fetch(server: LocalServer) -> None:
    url = server.add_fixture(
        "/rss.xml",
        "rss2.xml",
        content_type=RSS,
        etag='"v1"',
        last_modified="Mon, 20 Nov 2017 06:00:00 GMT",
    )
    source = feed(url)
    first = collect([source], NOW, {})
    state = first.states["feed"]
    assert state.etag == '"v1"' and state.last_modified == "Mon, 20 Nov 2017 06:00:00 GMT"
    assert state.item_count == 4 and state.ok

    later = NOW + timedelta(hours=1)
    second = collect([source], later, first.states, clock=lambda: later)  # stamps the attempt
    assert second.items == () and second.problems == ()
    assert server.hits("/rss.xml")[1].headers["if-none-match"] == '"v1"'
    assert (
        server.hits("/rss.xml")[1].headers["if-modified-since"] == "Mon, 20 Nov 2017 06:00:00 GMT"
    )
    after = second.states["feed"]
    assert after.ok and after.last_success_at == later and after.item_count == 4
    assert after.etag == '"v1"'

    # without a state (digest build, sources check) it is an ordinary GET
    assert len(collect([source], later).items) == 4
    assert "if-none-match" not in server.hits("/rss.xml")[2].headers


def test_conditional_get_with_last_modified_only(server: LocalServer) -> None:
    stamp = format_datetime(NOW - timedelta(days=1), usegmt=True)
    url = server.add_fixture(
        "/lm.xml", "atom.xml", content_type="application/atom+xml", last_modified=stamp
    )
    source = feed(url)
    first = collect([source], NOW, {})
    second = collect([source], NOW, first.states)
    assert len(first.items) == 2 and second.items == ()
    assert second.states["feed"].last_modified == stamp


def test_http_500_is_an_error_and_recorded_in_the_state(server: LocalServer) -> None:
    url = server.add("/broken.xml", "Internal error", status=500, content_type="text/plain")
    with pytest.raises(SourceError) as caught:
        feed(url).collect(NOW)
    assert str(caught.value) == f"{url}: HTTP 500 Internal Server Error"

    earlier = SourceState(etag='"old"', last_success_at=NOW - timedelta(days=1), item_count=7)
    result = collect([feed(url)], NOW, {"feed": earlier})
    (problem,) = result.problems
    assert problem.severity == "error" and problem.where == "feed" and "HTTP 500" in problem.message
    state = result.states["feed"]
    assert not state.ok and state.failures == 1 and "HTTP 500" in (state.last_error or "")
    assert state.last_success_at == earlier.last_success_at and state.item_count == 7
    assert state.etag == '"old"' and result.all_failed


def test_404_names_the_url(server: LocalServer) -> None:
    url = server.url("/nowhere.xml")
    with pytest.raises(SourceError, match=r"/nowhere\.xml: HTTP 404 Not Found$"):
        feed(url).collect(NOW)


def test_timeout(server: LocalServer) -> None:
    url = server.add_fixture("/slow.xml", "rss2.xml", content_type=RSS, delay=5)
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        feed(url, timeout=0.3).collect(NOW)
    assert time.monotonic() - started < 2
    assert str(caught.value) == f"{url}: timed out after 0.3 s"


def test_redirect_loop_is_reported_as_a_loop(server: LocalServer) -> None:
    server.redirect("/loop-a", "/loop-b")
    server.redirect("/loop-b", "/loop-a", status=301)
    url = server.url("/loop-a")
    with pytest.raises(SourceError) as caught:
        feed(url).collect(NOW)
    assert str(caught.value) == (f"{url}: redirect loop: {url} -> {server.url('/loop-b')} -> {url}")


def test_redirects_are_followed_up_to_five(server: LocalServer) -> None:
    server.add_fixture("/feeds/final.xml", "unsafe.xml", content_type=RSS)
    for hop in range(5):
        server.redirect(f"/hop{hop}", f"/hop{hop + 1}" if hop < 4 else "/feeds/final.xml")
    (item,) = feed(server.url("/hop0")).collect(NOW).items
    # relative links resolve against where the feed was found, not where the chain began
    assert server.url("/feeds/relativ/seite.html") in item.body_html

    for hop in range(6):
        server.redirect(f"/long{hop}", f"/long{hop + 1}" if hop < 5 else "/feeds/final.xml")
    with pytest.raises(SourceError, match="more than 5 redirects"):
        feed(server.url("/long0")).collect(NOW)


def test_size_cap(server: LocalServer) -> None:
    url = server.add("/big.xml", b"<rss>" + b" " * 5000 + b"</rss>", content_type=RSS)
    with pytest.raises(SourceError, match=r"exceeds max_bytes \(1,024\)"):
        feed(url, max_bytes=1024).collect(NOW)


def test_connection_refused() -> None:
    with socket.socket() as unused:  # a port that nobody listens on
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}/x.xml"
        with pytest.raises(SourceError, match=r"/x\.xml: cannot connect: "):
            feed(url, timeout=2).collect(NOW)


def test_file_url_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "news.xml").write_bytes((FIXTURES / "atom.xml").read_bytes())
    source = FeedSource("f", "file:feeds/news.xml", FetchOptions(), base_dir=tmp_path)
    assert len(source.collect(NOW).items) == 2
    missing = FeedSource("f", "file:feeds/none.xml", FetchOptions(), base_dir=tmp_path)
    with pytest.raises(SourceError, match="file not found"):
        missing.collect(NOW)


# -- config ------------------------------------------------------------------------------------


def test_feed_config_builds_a_source_with_a_user_agent(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        """\
site: {title: T, base_url: "https://www.example.org", address: "Street 1"}
sources:
  - kind: feed
    url: http://127.0.0.1:9/feed.xml
    timeout: 3
    tags: [Netz]
digests:
  weekly: {title: W, schedule: "0 7 * * mon"}
delivery: {from: "T <t@example.org>"}
""",
        encoding="utf-8",
    )
    (source,) = build_sources(load_config(config, environ={}))
    assert isinstance(source, FeedSource)
    assert source.name == "feed:http://127.0.0.1:9/feed.xml"
    assert source.options.user_agent == f"digest/{__version__} (+https://www.example.org)"
    assert source.options.timeout == 3 and source.tags == ("Netz",)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.org/feed.xml", True),
        ("file:feeds/a.xml", True),
        ("ftp://example.org/feed.xml", False),
        ("example.org/feed.xml", False),
        ("file:", False),
    ],
)
def test_feed_url_validation(url: str, ok: bool) -> None:
    if ok:
        assert FeedSourceConfig.model_validate({"kind": "feed", "url": url}).url == url
    else:
        with pytest.raises(ValueError):
            FeedSourceConfig.model_validate({"kind": "feed", "url": url})


def test_bad_feed_config_names_the_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        """\
site: {title: T, base_url: "https://www.example.org", address: "Street 1"}
sources:
  - kind: feed
    url: www.example.org/feed.xml
digests:
  weekly: {title: W, schedule: "0 7 * * mon"}
delivery: {from: "T <t@example.org>"}
""",
        encoding="utf-8",
    )
    with pytest.raises(Exception, match=r"config\.yaml:4: sources\.0\.url: must be an absolute"):
        load_config(config, environ={})


# -- properties --------------------------------------------------------------------------------

_words = (
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzäöüß ", min_size=1, max_size=30)
    .map(str.strip)
    .filter(bool)
)
_entry = st.fixed_dictionaries(
    {
        "title": _words,
        "summary": _words,
        "guid": st.one_of(st.none(), st.uuids().map(str)),
        "link": st.one_of(
            st.none(), st.integers(0, 10**6).map(lambda n: f"https://example.org/p/{n}")
        ),
        "date": st.one_of(
            st.none(),
            st.datetimes(datetime(2000, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC)),
        ),
    }
)
_entries = st.lists(
    _entry,
    min_size=1,
    max_size=12,
    unique_by=(
        lambda e: e["title"],
        lambda e: e["guid"] or e["title"],
        lambda e: e["link"] or e["title"],
    ),
)


def _rss(entries: list[dict[str, object]]) -> str:
    parts = []
    for entry in entries:
        parts.append("<item>")
        parts.append(f"<title>{escape(str(entry['title']))}</title>")
        parts.append(f"<description>{escape(str(entry['summary']))}</description>")
        if entry["guid"]:
            parts.append(f'<guid isPermaLink="false">{entry["guid"]}</guid>')
        if entry["link"]:
            parts.append(f"<link>{entry['link']}</link>")
        if isinstance(entry["date"], datetime):
            parts.append(f"<pubDate>{format_datetime(entry['date'])}</pubDate>")
        parts.append("</item>")
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>P</title>'
        + "".join(parts)
        + "</channel></rss>"
    )


def _json_feed(entries: list[dict[str, object]]) -> str:
    items = []
    for index, entry in enumerate(entries):
        item: dict[str, object] = {
            "id": entry["guid"] or f"n{index}",
            "title": entry["title"],
            "content_text": entry["summary"],
        }
        if entry["link"]:
            item["url"] = entry["link"]
        if isinstance(entry["date"], datetime):
            item["date_published"] = entry["date"].isoformat()
        items.append(item)
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "P", "items": items})


@pytest.fixture(scope="module")
def shared_server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(entries=_entries, seed=st.integers(0, 2**32 - 1))
def test_ids_are_stable_under_refetch_and_reordering(
    shared_server: LocalServer, entries: list[dict[str, object]], seed: int
) -> None:
    source = feed(shared_server.url("/prop.xml"))
    shared_server.add("/prop.xml", _rss(entries), content_type=RSS)
    first = {item.key: item.content_hash for item in source.collect(NOW).items}
    again = {item.key: item.content_hash for item in source.collect(NOW + timedelta(days=3)).items}
    shuffled = list(entries)
    random.Random(seed).shuffle(shuffled)
    shared_server.add("/prop.xml", _rss(shuffled), content_type=RSS)
    reordered = {item.key: item.content_hash for item in source.collect(NOW).items}
    assert len(first) == len(entries)  # every entry got its own key
    assert first == again == reordered


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(entries=_entries, seed=st.integers(0, 2**32 - 1))
def test_json_feed_ids_are_stable_under_reordering(
    shared_server: LocalServer, entries: list[dict[str, object]], seed: int
) -> None:
    # JSON Feed ids are required; give id-less positions fixed ids before shuffling
    for index, entry in enumerate(entries):
        entry["guid"] = entry["guid"] or f"n{index}"
    source = feed(shared_server.url("/prop.json"))
    shared_server.add("/prop.json", _json_feed(entries), content_type="application/feed+json")
    first = {item.key: item.content_hash for item in source.collect(NOW).items}
    shuffled = list(entries)
    random.Random(seed).shuffle(shuffled)
    shared_server.add("/prop.json", _json_feed(shuffled), content_type="application/feed+json")
    assert {item.key: item.content_hash for item in source.collect(NOW).items} == first
    assert len(first) == len(entries)
