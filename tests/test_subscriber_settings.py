"""Language, time zone and topics in subscriber CSV files: stored by ``digest subscribers
import`` (the real CLI in a subprocess, real SQLite files and PostgreSQL) and by the admin's
import, written by the export so that export -> import round-trips."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: F401  (the web fixture uses it)

from digest.store import ReaderSettings, ReaderUpdate, Store
from tests.conftest import Site
from tests.databases import fresh_database
from tests.test_web import make_web
from tests.web_site import csrf_of

pytestmark = pytest.mark.both_databases

NOW = datetime(2017, 11, 1, tzinfo=UTC)
WEEKLY_TOPICS = "    topics: {Schule: Schule, Beteiligung: {de: Beteiligung, en: Participation}}"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def with_topics(site: Site) -> Site:
    """weekly declares Schule and Beteiligung, monthly Schule and Jugend."""
    site.replace_in_config(
        "    # topics: {Schule: Schule, Beteiligung: {de: Beteiligung, en: Participation}}"
        "  # readers choose",
        WEEKLY_TOPICS,
    )
    site.replace_in_config(
        "    group_by: tag\n", "    group_by: tag\n    topics: {Schule: S, Jugend: J}\n"
    )
    return site


def digest_cli(site: Site, *args: str | Path) -> Run:
    env = {key: value for key, value in os.environ.items() if key != "DIGEST_CONFIG"}
    done = subprocess.run(
        [sys.executable, "-m", "digest.cli", "-c", str(site.config), *map(str, args)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    return Run(done.returncode, done.stdout, done.stderr)


def settings(site: Site) -> dict[str, ReaderSettings]:
    with Store.open(site.load().database_url) as store:
        return {s.email: store.reader_settings(s.id) for s in store.list_subscribers()}


def test_import_stores_language_zone_and_topics_and_notes_unknown_topics(site: Site) -> None:
    with_topics(site)
    path = site.write(
        "subs.csv",
        """
        Email;Name;Digests;Themen;Sprache;Zeitzone
        anna@example.org;Anna;weekly|monthly;Schule|Jugend;de-AT;Europe/Berlin
        ben@example.org;Ben;weekly;Beteiligung;en;America/New_York
        cleo@example.org;Cleo;monthly;Kochen;fr;Mars/Olympus
        dora@example.org;Dora;weekly;;;
        """,
    )
    run = digest_cli(site, "subscribers", "import", path)
    assert run.code == 0, run.err
    assert run.out.strip() == (
        "4 added, 0 updated, 0 skipped; language, time zone or topics changed for 2"
    )
    assert run.err.splitlines() == [
        f"warning: {path}:4: language 'fr' unknown or without a catalogue (languages: de, en; "
        "left out)",
        f"warning: {path}:4: time zone 'Mars/Olympus' unknown (left out)",
        f"warning: {path}:4: column 'Themen': 'Kochen' is not a topic of monthly (left out)",
    ]
    assert settings(site) == {
        # Schule applies to both digests, Jugend only to monthly, which declares it
        "anna@example.org": ReaderSettings(
            "de", "Europe/Berlin", {"monthly": ("Jugend", "Schule"), "weekly": ("Schule",)}
        ),
        "ben@example.org": ReaderSettings("en", "America/New_York", {"weekly": ("Beteiligung",)}),
        "cleo@example.org": ReaderSettings(None, None, {}),  # the row itself is imported
        "dora@example.org": ReaderSettings(None, None, {}),
    }


def test_a_reimport_changes_only_what_the_csv_gives(site: Site) -> None:
    with_topics(site)
    first = site.write(
        "first.csv",
        """
        email,digests,topics,language,timezone
        anna@example.org,weekly;monthly,Schule,de,Europe/Berlin
        ben@example.org,weekly,Beteiligung,en,America/New_York
        cleo@example.org,weekly,,,
        """,
    )
    assert digest_cli(site, "subscribers", "import", first).code == 0
    second = site.write(
        "second.csv",
        """
        email,digests,topics,language,timezone
        anna@example.org,weekly;monthly,,en,
        ben@example.org,weekly,Beteiligung,en,America/New_York
        cleo@example.org,weekly,monthly:Jugend,,
        """,
    )
    run = digest_cli(site, "subscribers", "import", second)
    assert run.code == 0, run.err
    # ben's row says what is stored; cleo's monthly:Jugend is for a digest not on her row
    assert run.out.strip().endswith("0 added, 3 updated, 0 skipped; language, time zone or "
                                    "topics changed for 1")  # fmt: skip
    assert run.err.splitlines() == [
        f"warning: {second}:4: column 'topics': 'monthly:Jugend' is not a topic of weekly "
        "(left out)"
    ]
    assert settings(site) == {
        "anna@example.org": ReaderSettings(
            "en", "Europe/Berlin", {"monthly": ("Schule",), "weekly": ("Schule",)}
        ),
        "ben@example.org": ReaderSettings("en", "America/New_York", {"weekly": ("Beteiligung",)}),
        "cleo@example.org": ReaderSettings(None, None, {}),
    }
    third = site.write("third.csv", "email,topics\nanna@example.org,weekly:Beteiligung\n")
    assert digest_cli(site, "subscribers", "import", third).out.strip().endswith("changed for 1")
    assert settings(site)["anna@example.org"].topics == {
        "monthly": ("Schule",),  # not named: kept
        "weekly": ("Beteiligung",),
    }


@contextmanager
def second_site(site: Site, tmp_path: Path) -> Iterator[Site]:
    """A copy of ``site`` over a fresh, empty database of the same kind."""
    other = Site(tmp_path / "other")
    other.root.mkdir()
    text = site.config.read_text(encoding="utf-8")
    database = site.load().database_url
    if database.startswith("sqlite"):
        other.config.write_text(text, encoding="utf-8")
        yield other
        return
    with fresh_database() as url:
        other.config.write_text(text.replace(database, url), encoding="utf-8")
        yield other


def test_export_then_import_into_a_fresh_store_round_trips(site: Site, tmp_path: Path) -> None:
    with_topics(site)
    path = site.write(
        "subs.csv",
        """
        email,name,digests,topics,language,timezone
        anna@example.org,"Becker, Anna",weekly;monthly,Schule,de,Europe/Berlin
        ben@example.org,Ben,weekly;monthly,weekly:Beteiligung;monthly:Jugend,en,America/New_York
        cleo@example.org,Cleo,monthly,Jugend|Schule,,Asia/Tokyo
        dora@example.org,Dora,weekly,,en,
        eva@example.org,Eva,weekly;monthly,weekly:Schule,,
        """,
    )
    assert digest_cli(site, "subscribers", "import", path).code == 0
    exported = tmp_path / "export.csv"
    run = digest_cli(site, "subscribers", "export", exported)
    assert run.code == 0, run.err
    text = exported.read_text(encoding="utf-8")
    assert text.splitlines() == [
        "email,name,digests,status,topics,language,timezone",
        'anna@example.org,"Becker, Anna",monthly;weekly,active,Schule,de,Europe/Berlin',
        # each digest chose the listed topics it declares: plain topics say it exactly
        "ben@example.org,Ben,monthly;weekly,active,Jugend;Beteiligung,en,America/New_York",
        "cleo@example.org,Cleo,monthly,active,Jugend;Schule,,Asia/Tokyo",
        "dora@example.org,Dora,weekly,active,,en,",
        # Schule is monthly's topic too: a plain "Schule" would choose it there as well
        "eva@example.org,Eva,monthly;weekly,active,weekly:Schule,,",
    ]
    with second_site(site, tmp_path) as other:
        run = digest_cli(other, "subscribers", "import", exported)
        assert run.code == 0 and run.err == ""
        assert run.out.strip() == (
            "5 added, 0 updated, 0 skipped; language, time zone or topics changed for 5"
        )
        assert settings(other) == settings(site)
        again = tmp_path / "again.csv"
        assert digest_cli(other, "subscribers", "export", again).code == 0
        assert again.read_text(encoding="utf-8") == text


def test_settings_are_written_in_the_transaction_of_their_rows(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import digest.store._subscribers as subscriber_store

    def broken(*args: object) -> None:
        raise RuntimeError("disk full")

    with Store.open(database_url) as store:
        store.add_subscriber("ben@example.org", "Ben", ["weekly"], NOW)
        monkeypatch.setattr(subscriber_store, "write_readers", broken)
        with pytest.raises(RuntimeError):
            store.import_subscribers(
                [("anna@example.org", "Anna", ["weekly"]), ("ben@example.org", "B", ["weekly"])],
                {
                    "anna@example.org": ReaderUpdate("de", None, {"weekly": ("Schule",)}),
                    "ben@example.org": ReaderUpdate("en", None, {}),
                },
                NOW,
            )
        assert store.subscriber_by_email("anna@example.org") is None
        ben = store.subscriber_by_email("ben@example.org")
        assert ben is not None and ben.name == "Ben"


def test_bulk_import_of_many_readers(database_url: str) -> None:
    """More rows than one statement batch: every reader gets their settings."""
    rows = [(f"u{n}@example.org", "", ["weekly"]) for n in range(2500)]
    readers = {
        email: ReaderUpdate("en" if n % 2 else "de", "Europe/Berlin", {"weekly": ("Schule",)})
        for n, (email, _, _) in enumerate(rows)
    }
    with Store.open(database_url) as store:
        counts = store.import_subscribers(rows, readers, NOW)
        assert (counts.added, counts.updated, counts.settings_changed) == (2500, 0, 2500)
        assert store.import_subscribers(rows, readers, NOW).settings_changed == 0
        stored = store.readers()
        assert {stored[s.id].language for s in store.list_subscribers()} == {"de", "en"}
        assert all(r.topics == {"weekly": ("Schule",)} for r in stored.values())


def test_admin_import_previews_the_settings_in_the_site_language_and_stores_them(
    site: Site,
) -> None:
    with_topics(site)
    for web in make_web(site):
        web.login()
        data = (
            "Email,Name,Digests,Tags,Language,Time zone\n"
            "anna@example.org,Anna,weekly,Schule;Kochen,en,America/New_York\n"
            "ben@example.org,Ben,monthly,Jugend,xx,Mars/Olympus\n"
        )
        page = web.client.get("/subscribers/import")
        preview = web.client.post(
            "/subscribers/import",
            data={"csrf": csrf_of(page.text, "/subscribers/import")},
            files={"file": ("list.csv", data.encode(), "text/csv")},
        )
        assert preview.status_code == 200
        mapping = re.search(r'<table id="mapping">.*?</table>', preview.text, re.S)
        assert mapping
        for column, field in (
            ("Tags", "Themen (<code>topics</code>)"),
            ("Language", "Sprache (<code>language</code>)"),
            ("Time zone", "Zeitzone (<code>timezone</code>)"),
        ):
            assert f"<code>{column}</code></td><td>{field}</td>" in mapping.group(0)
        sample = re.search(r'<table id="sample">.*?</table>', preview.text, re.S)
        assert sample and "<td>weekly: Schule</td><td>en</td><td>America/New_York</td>" in (
            sample.group(0)
        )
        notes = re.search(r'<ul id="notes".*?</ul>', preview.text, re.S)
        assert notes
        assert [re.sub(r"<.*?>", "", n) for n in re.findall(r"<li.*?</li>", notes.group(0))] == [
            "list.csv:2: Spalte &#39;Tags&#39;: &#39;Kochen&#39; ist kein Thema von weekly "
            "(weggelassen)",
            "list.csv:3: Sprache &#39;xx&#39; unbekannt oder ohne Katalog (Sprachen: de, en; "
            "weggelassen)",
            "list.csv:3: Zeitzone &#39;Mars/Olympus&#39; unbekannt (weggelassen)",
        ]
        assert "3 Werte weggelassen oder geändert" in preview.text
        action = re.search(r'action="(/subscribers/import/[\w-]+/start)"', preview.text)
        assert action
        start = csrf_of(preview.text, action.group(1))
        response = web.client.post(action.group(1), data={"csrf": start}, follow_redirects=False)
        job = web.state.imports.get(action.group(1).split("/")[3])
        assert job is not None
        for _ in range(500):
            if job.finished:
                break
            time.sleep(0.02)
        done = web.client.get(response.headers["location"])
        assert "Sprache, Zeitzone oder Themen für 2 Leser geändert." in done.text
        anna = web.store.subscriber_by_email("anna@example.org")
        assert anna is not None
        assert web.store.reader_settings(anna.id) == ReaderSettings(
            "en", "America/New_York", {"weekly": ("Schule",)}
        )
        export = web.client.get("/subscribers/export.csv")
        assert "anna@example.org,Anna,weekly,active,Schule,en,America/New_York" in export.text
