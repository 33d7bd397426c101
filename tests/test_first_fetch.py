"""A new source's first fetch is a baseline (observation 6 of #10): a listing page added to a
running digest does not mail its 2017 teasers as news, an undated teaser is never presented as
dated today, and a teaser without a title element gets its first sentence whole."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.ledger import choose
from digest.models import Item
from digest.sources.page import title_from_text
from digest.store import StoredItem
from tests.conftest import AT_TEXT, SAMPLE_WEEK_TITLES, CliRunner, Site
from tests.localserver import FIXTURES, LocalServer

pytestmark = pytest.mark.both_databases

NOV_27 = "2017-11-27T08:00:00+01:00"
DEC_04 = "2017-12-04T08:00:00+01:00"
PAGE_TITLES = ("Netzwerktreffen der Präventionsketten in Dortmund", "Aktionswoche „Gut aufwachsen“")
LISTING = (FIXTURES / "listing_page.html").read_text(encoding="utf-8")
HTML = "text/html; charset=utf-8"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        running.add("/aktuelles/", LISTING, content_type=HTML)
        yield running


def add_page(site: Site, url: str) -> None:
    site.replace_in_config(
        "    path: content\n",
        "    path: content\n"
        f"  - kind: page\n    url: {url}\n    name: aktuelles\n    item: div.news-teaser\n"
        "    title: h3\n    teaser: p.teaser\n    link: a.mehr\n"
        "    date:\n      pattern: '(?i)\\bam (?P<day>\\d{1,2})\\. (?P<month>\\w+)'\n"
        "      year_from: h2.halbjahr\n    allow_private: [127.0.0.1]\n",
    )


def sent_texts(site: Site) -> list[str]:
    folder = site.root / "outbox" / "new"
    paths = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns) if folder.exists() else []
    texts = []
    for path in paths:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        texts.append(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    return texts


def sent_htmls(site: Site) -> list[str]:
    folder = site.root / "outbox" / "new"
    paths = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    htmls = []
    for path in paths:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        htmls.append(message.get_body(("html",)).get_content())  # type: ignore[union-attr]
    return htmls


def with_teaser(title: str, text: str) -> str:
    teaser = (
        f'<div class="news-teaser"><h3>{title}</h3><p class="teaser">{text}</p>'
        f'<a class="mehr" href="/aktuelles/{abs(hash(title))}">Mehr</a></div>'
    )
    return LISTING.replace(
        '<h2 class="halbjahr">2. Halbjahr 2017</h2>',
        f'<h2 class="halbjahr">2. Halbjahr 2017</h2>{teaser}',
        1,
    )


def test_a_page_added_later_mails_only_what_appears_after_its_first_fetch(
    site: Site, cli: CliRunner, server: LocalServer, tmp_path: Path
) -> None:
    path = site.write("subs.csv", "email,name,digests\na@example.org,Anna,weekly\n")
    assert cli("-c", site.config, "subscribers", "import", path).code == 0
    assert cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT).code == 0
    (first,) = sent_texts(site)
    assert SAMPLE_WEEK_TITLES[0] in first

    add_page(site, server.url("/aktuelles/"))
    preview = tmp_path / "preview"
    built = cli("-c", site.config, "build", "weekly", "--out", preview, "--at", NOV_27)
    assert built.code == 0, built.err
    assert not any(title in (preview / "email.txt").read_text("utf-8") for title in PAGE_TITLES)
    second = cli("-c", site.config, "send", "weekly", "--yes", "--at", NOV_27)
    assert second.code == 0, second.err
    # the page's first fetch: its teasers (dated 2017, or undated) are its archive, not news
    assert "nothing new" in second.out and len(sent_texts(site)) == 1
    status = cli("-c", site.config, "status").out
    assert "source aktuelles: ok, 8 items" in status, status  # it was read: 8 teasers

    # a week later the page shows two new teasers, one with a date in its text, one without
    server.add(
        "/aktuelles/",
        with_teaser("Neu ohne Datum", "Ein Angebot für Familien.")
        .replace("<h3>Neu ohne Datum", '<h3>Neu mit Datum</h3><p class="teaser">Am 1. Dezember ging es los.</p>'
                 '<a class="mehr" href="/aktuelles/neu-mit-datum">Mehr</a></div><div class="news-teaser"><h3>Neu ohne Datum', 1),
        content_type=HTML,
    )  # fmt: skip
    third = cli("-c", site.config, "send", "weekly", "--yes", "--at", DEC_04)
    assert third.code == 0, third.err
    text = sent_texts(site)[-1]
    assert "Neu mit Datum" in text and "1. Dezember 2017" in text, text
    assert not any(title in text for title in PAGE_TITLES)
    # the undated teaser is dated when it was first seen (today, by the real clock): it goes
    # out with the first issue whose cutoff is after that, and shows no date at all
    assert "Neu ohne Datum" not in text
    later = (datetime.now(UTC) + timedelta(days=8)).isoformat()
    assert cli("-c", site.config, "send", "weekly", "--yes", "--at", later).code == 0
    text = sent_texts(site)[-1]
    lines = [line.strip() for line in text.split("* Neu ohne Datum", 1)[1].splitlines()]
    assert [line for line in lines if line][:1] == ["Ein Angebot für Familien."], text
    assert not any(title in text for title in (*PAGE_TITLES, "Neu mit Datum"))
    html = sent_htmls(site)[-1]
    card = html.rsplit("Neu ohne Datum", 1)[1].split("Ein Angebot", 1)[0]  # its card
    assert str(datetime.now(UTC).year) not in card and "2017" not in card


# -- the pure rule --------------------------------------------------------------------------

T0 = datetime(2026, 11, 1, 7, tzinfo=UTC)


def stored(
    source: str, title: str, published: datetime, first_seen: datetime, *, dated: bool = True
) -> StoredItem:
    item = Item(source=source, key=title, title=title, published_at=published, summary="", body_html="",
                content_hash=title, dated=dated)  # fmt: skip
    return StoredItem(1, item, first_seen)


def chosen(candidates: list[StoredItem], starts: dict[str, datetime]) -> list[str]:
    picked, _ = choose(
        candidates, cutoff=T0 + timedelta(days=30), started_at=T0, baseline=T0 - timedelta(days=7),
        max_items=50, source_starts=starts, backfill=timedelta(days=7),
    )  # fmt: skip
    return sorted(s.item.title for s in picked)


def test_undated_items_of_a_first_fetch_are_archive_later_ones_are_news() -> None:
    fetch1, fetch2 = T0 + timedelta(days=3), T0 + timedelta(days=10)
    candidates = [
        stored("page", "old undated", fetch1, fetch1, dated=False),
        stored("page", "new undated", fetch2, fetch2, dated=False),
        stored("page", "old dated", datetime(2017, 9, 20, tzinfo=UTC), fetch1),
        stored("page", "recent dated", fetch1 - timedelta(days=2), fetch1),
        stored("folder", "from the start", T0 - timedelta(days=2), T0),
    ]
    assert chosen(candidates, {"page": fetch1, "folder": T0}) == [
        "from the start", "new undated", "recent dated",
    ]  # fmt: skip


def test_a_source_the_digest_started_with_keeps_the_digest_rule() -> None:
    # dated items of the first fetch at the digest's start: the digest's baseline decides
    candidates = [stored("feed", "in the first period", T0 - timedelta(days=3), T0),
                  stored("feed", "archive", T0 - timedelta(days=30), T0)]  # fmt: skip
    assert chosen(candidates, {"feed": T0}) == ["in the first period"]


# -- titles of teasers without a title element ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Jugendliche wünschen sich mehr Treffpunkte und einen sicheren Radweg zur Schule: Das "
         "ergab die Beteiligungswerkstatt am 16. November im Jugendzentrum.",
         "Jugendliche wünschen sich mehr Treffpunkte und einen sicheren Radweg zur Schule"),
        ("Am 16. November trafen sich z. B. Dr. Meier und Frau Kunz. Danach ging es weiter.",
         "Am 16. November trafen sich z. B. Dr. Meier und Frau Kunz."),
        ("Das Treffen war gut! „Wir machen weiter“, sagte sie.", "Das Treffen war gut!"),
    ],
)  # fmt: skip
def test_the_title_is_the_first_sentence_or_clause_whole(text: str, title: str) -> None:
    assert title_from_text(text) == title


def test_only_a_sentence_without_a_clause_is_shortened() -> None:
    long = "Wort " * 40 + "Ende."
    title = title_from_text(long)
    assert title.endswith(" …") and len(title) <= 122 and " Wor …" not in title
