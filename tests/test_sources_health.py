"""Source health end to end: ``digest sources check``, a digest of a folder and a feed, the
store's source states, conditional GET between sends, failing and returning feeds."""

from __future__ import annotations

import email
import email.policy
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.config import LoadedConfig, load_config
from digest.ledger import prepare_issue
from digest.models import SourceState
from digest.store import Store
from tests.conftest import AT_TEXT, REPO, SAMPLE_WEEK_TITLES, CliRunner, Site
from tests.localserver import FIXTURES, LocalServer

RSS = "application/rss+xml"
FEED_WEEK_TITLES = (  # rss2.xml entries dated in the week before AT
    "Elterncafé öffnet im Familienzentrum",
    "Sprechstunde der Schulsozialarbeit verlegt",
    "Ferienprogramm: Anmeldung läuft",
)
NOV_27 = "2017-11-27T08:00:00+01:00"
DEC_04 = "2017-12-04T08:00:00+01:00"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        running.add_fixture("/netz/rss.xml", "rss2.xml", content_type=RSS, etag='"v1"')
        yield running


def add_feed(site: Site, url: str, name: str = "netz") -> None:
    site.replace_in_config(
        "    path: content\n",
        f"    path: content\n  - kind: feed\n    url: {url}\n    name: {name}\n"
        "    allow_private: [127.0.0.1]\n",
    )


def subscribe(site: Site, cli: CliRunner) -> None:
    path = site.write("subs.csv", "email,name,digests\na@example.org,Anna,weekly\n")
    assert cli("-c", site.config, "subscribers", "import", path).code == 0


def sent_texts(site: Site) -> list[str]:
    folder = site.root / "outbox" / "new"
    texts = []
    for path in (
        sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns) if folder.exists() else []
    ):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        texts.append(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    return texts


def states(site: Site) -> dict[str, SourceState]:
    store = Store.open(site.load().database_url)
    try:
        return store.source_states()
    finally:
        store.close()


# -- digest sources check ----------------------------------------------------------------------


def test_sources_check_all_healthy(site: Site, cli: CliRunner, server: LocalServer) -> None:
    add_feed(site, server.url("/netz/rss.xml"))
    result = cli("-c", site.config, "sources", "check")
    assert result.code == 0, result.err
    assert "folder:content" in result.out and "netz" in result.out
    assert "feed" in result.out and "folder" in result.out
    assert "2 source(s): 2 ok, 0 with warnings, 0 failed" in result.out
    assert result.err == ""
    assert not (site.root / "digest.db").exists()  # a check writes nothing


def test_sources_check_reports_a_failure_and_exits_1(
    site: Site, cli: CliRunner, server: LocalServer
) -> None:
    server.add("/kaputt.xml", "oops", status=500, content_type="text/plain")
    add_feed(site, server.url("/kaputt.xml"), name="kaputt")
    server.add_fixture("/entities.xml", "entities.xml", content_type=RSS)
    allowed = "    allow_private: [127.0.0.1]\n"
    site.replace_in_config(
        "    name: kaputt\n" + allowed,
        f"    name: kaputt\n{allowed}  - kind: feed\n    url: {server.url('/entities.xml')}\n"
        + allowed,
    )
    result = cli("-c", site.config, "sources", "check")
    assert result.code == 1
    assert "failed" in result.out and "warning" in result.out
    assert "3 source(s): 1 ok, 1 with warnings, 1 failed" in result.out
    assert result.err_lines == [
        f"error: kaputt: {server.url('/kaputt.xml')}: HTTP 500 Internal Server Error"
    ]


# -- a digest of a folder and a feed -----------------------------------------------------------


def test_build_combines_folder_and_feed_items(
    site: Site, cli: CliRunner, server: LocalServer
) -> None:
    add_feed(site, server.url("/netz/rss.xml"))
    out = site.root / "out"
    result = cli("-c", site.config, "build", "weekly", "--out", out, "--at", AT_TEXT)
    assert result.code == 0, result.err
    assert "weekly: 6 item(s)" in result.out
    text = (out / "email.txt").read_text(encoding="utf-8")
    html = (out / "email.html").read_text(encoding="utf-8")
    for title in (*SAMPLE_WEEK_TITLES, *FEED_WEEK_TITLES):
        assert title in text
        assert title in html
    assert "https://www.example.org/netz/elterncafe" in html  # the feed item's "read more"
    # newest first across both sources: Fachkonferenz and Ferienprogramm (17th) lead
    assert text.index("Ferienprogramm") < text.index("Sprechstunde") < text.index("Elterncafé")


def test_send_combines_both_then_uses_conditional_get(
    site: Site, cli: CliRunner, server: LocalServer
) -> None:
    add_feed(site, server.url("/netz/rss.xml"))
    subscribe(site, cli)
    first = cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT)
    assert first.code == 0, first.err
    (text,) = sent_texts(site)
    assert all(title in text for title in (*SAMPLE_WEEK_TITLES, *FEED_WEEK_TITLES))
    feed_state = states(site)["netz"]
    assert feed_state.ok and feed_state.etag == '"v1"' and feed_state.item_count == 4
    assert states(site)["folder:content"].ok

    # next week: the feed answers 304; that is no failure and loses nothing
    second = cli("-c", site.config, "send", "weekly", "--yes", "--at", NOV_27)
    assert second.code == 0, second.err
    assert server.hits("/netz/rss.xml")[-1].headers["if-none-match"] == '"v1"'
    assert states(site)["netz"].ok and states(site)["netz"].item_count == 4
    # a 304 does not make the feed's stored items look deleted: the entry without a date was
    # first seen after the first cutoff, so it goes out now, from the store
    later = sent_texts(site)[-1]
    assert "Ohne Datum und ohne Link" in later
    assert not any(title in later for title in FEED_WEEK_TITLES)


def test_feed_that_fails_and_comes_back_sends_only_new_items(
    site: Site, cli: CliRunner, server: LocalServer
) -> None:
    add_feed(site, server.url("/netz/rss.xml"))
    subscribe(site, cli)
    assert cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT).code == 0

    # the feed breaks for a week: the folder still works, so the digest goes out; health shows it
    server.add("/netz/rss.xml", "down", status=500, content_type="text/plain")
    broken = cli("-c", site.config, "send", "weekly", "--yes", "--at", NOV_27)
    assert broken.code == 0, broken.err
    assert "HTTP 500" in broken.err
    state = states(site)["netz"]
    assert not state.ok and state.failures == 1 and state.etag == '"v1"'
    status = cli("-c", site.config, "status")
    assert "source netz: FAILED 1× in a row:" in status.out and "HTTP 500" in status.out
    assert "source folder:content: ok" in status.out

    # it comes back, with one new entry and all the old ones
    text = (FIXTURES / "rss2.xml").read_text(encoding="utf-8")
    new_entry = """<item>
      <title>Neu nach der Pause</title>
      <link>https://www.example.org/netz/neu</link>
      <pubDate>Wed, 29 Nov 2017 09:00:00 +0100</pubDate>
      <description>Ein neuer Eintrag.</description>
    </item>
    <item>"""
    server.add("/netz/rss.xml", text.replace("<item>", new_entry, 1), content_type=RSS, etag='"v2"')
    back = cli("-c", site.config, "send", "weekly", "--yes", "--at", DEC_04)
    assert back.code == 0, back.err
    last = sent_texts(site)[-1]
    assert "Neu nach der Pause" in last
    assert not any(title in last for title in FEED_WEEK_TITLES)  # never the same item twice
    assert states(site)["netz"].ok and states(site)["netz"].failures == 0


def test_all_sources_failed_is_a_failure_not_nothing_new(
    site: Site, cli: CliRunner, server: LocalServer
) -> None:
    server.add("/kaputt.xml", "oops", status=500, content_type="text/plain")
    add_feed(site, server.url("/kaputt.xml"), name="kaputt")
    subscribe(site, cli)
    shutil.rmtree(site.content)

    build = cli("-c", site.config, "build", "weekly", "--out", site.root / "out", "--at", AT_TEXT)
    assert build.code == 1
    assert "every source failed" in build.err and "nothing to preview" in build.err

    send = cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT)
    assert send.code == 1
    (line,) = send.err_lines
    assert "digest weekly: every source failed" in line and "HTTP 500" in line
    assert "content folder not found" in line and "nothing was sent" in line
    assert sent_texts(site) == []
    recorded = states(site)
    assert not recorded["kaputt"].ok and not recorded["folder:content"].ok
    assert recorded["kaputt"].last_attempt_at is not None


def test_store_round_trips_source_states(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        moment = datetime(2017, 11, 20, 7, 0, tzinfo=UTC)
        first = SourceState().succeeded(moment, 4, '"v1"', "Mon, 20 Nov 2017 06:00:00 GMT")
        store.save_source_states({"netz": first})
        assert store.source_states() == {"netz": first}
        later = first.failed(moment, "HTTP 500")
        store.save_source_states({"netz": later, "other": SourceState()})
        assert store.source_states() == {"netz": later, "other": SourceState()}
    finally:
        store.close()


# -- property: a changing feed over consecutive periods ----------------------------------------

_BASE = datetime(2017, 11, 6, tzinfo=UTC)
_CUTOFFS = [
    datetime.fromisoformat(f"2017-{day}T07:00:00+01:00")
    for day in ("11-20", "11-27", "12-04", "12-11", "12-18")
]
_pool = st.lists(
    st.tuples(
        st.sampled_from(["guid", "link", "none"]), st.one_of(st.none(), st.integers(0, 24 * 45))
    ),
    min_size=1,
    max_size=12,
)


def _feed_document(pool: list[tuple[str, int | None]], listed: list[int]) -> str:
    parts = []
    for index in listed:
        key, hours = pool[index]
        parts.append(f"<item><title>Eintrag {index}</title><description>Text {index}</description>")
        if key == "guid":
            parts.append(f'<guid isPermaLink="false">g{index}</guid>')
        if key == "link":
            parts.append(f"<link>https://example.org/p/{index}</link>")
        if hours is not None:
            parts.append(f"<pubDate>{format_datetime(_BASE + timedelta(hours=hours))}</pubDate>")
        parts.append("</item>")
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>P</title>'
        + "".join(parts)
        + "</channel></rss>"
    )


@pytest.fixture(scope="module")
def feed_only(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LoadedConfig, LocalServer]]:
    root = tmp_path_factory.mktemp("feed-only")
    text = (REPO / "config.example.yaml").read_text(encoding="utf-8")
    with LocalServer() as running:
        text = text.replace(
            "  - kind: folder                 # Markdown files with YAML front matter\n"
            "    path: content\n",
            f"  - kind: feed\n    url: {running.url('/wandel.xml')}\n    name: wandel\n"
            "    allow_private: [127.0.0.1]\n",
        )
        (root / "config.yaml").write_text(text, encoding="utf-8")
        yield load_config(root / "config.yaml", environ={}), running


@settings(max_examples=30, deadline=None)
@given(pool=_pool, weeks=st.data())
def test_no_item_twice_and_none_skipped_across_periods(
    feed_only: tuple[LoadedConfig, LocalServer],
    pool: list[tuple[str, int | None]],
    weeks: st.DataObject,
) -> None:
    """Entries appear, vanish, come back and move around between weekly sends (with ETags,
    so unchanged weeks are 304s): each goes into at most one issue, and every entry dated up
    to the last cutoff is sent unless it is archive from before the digest began."""
    loaded, server = feed_only
    store = Store.open("sqlite://")
    try:
        sent: list[str] = []
        first_seen: dict[int, datetime] = {}
        for week, cutoff in enumerate(_CUTOFFS):
            listed = weeks.draw(st.lists(st.sampled_from(range(len(pool))), unique=True))
            weeks.draw(st.randoms()).shuffle(listed)
            server.add(
                "/wandel.xml",
                _feed_document(pool, listed),
                content_type=RSS,
                etag=f'"{hash(tuple(listed))}"',
            )
            at = cutoff + timedelta(hours=1)
            for index in listed:
                first_seen.setdefault(index, at)
            prepared = prepare_issue(loaded, store, "weekly", at, now=at)
            sent += [item.title for item in store.issue_items(prepared.issue.id)]
            assert store.source_states()["wandel"].ok, week
        assert len(sent) == len(set(sent))  # never the same item twice

        started_at = _CUTOFFS[0] + timedelta(hours=1)  # the first send
        baseline = _CUTOFFS[0] - timedelta(days=7)  # the first issue reaches back one period
        for index, seen in first_seen.items():  # never skipped
            hours = pool[index][1]
            published = seen if hours is None else _BASE + timedelta(hours=hours)
            archive = published <= baseline and seen <= started_at
            expected = published <= _CUTOFFS[-1] and not archive
            assert (f"Eintrag {index}" in sent) == expected, (index, published, seen)
    finally:
        store.close()
