"""The one status layer: ``overview`` computes what ``digest status`` and the dashboard show."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from digest.catalogue import translator_for
from digest.health import describe_state
from digest.models import SourceState
from digest.overview import delivery_summary, overview, report_summary
from digest.store import DELIVERY_STATES, SENT, Store
from tests.conftest import AT_TEXT, CliRunner, Site

LATER = datetime(2017, 11, 21, 9, tzinfo=UTC)


def test_overview_after_a_send(site: Site, cli: CliRunner) -> None:
    path = site.write("subs.csv", "email,name,digests\na@example.org,Anna,weekly\n")
    assert cli("-c", site.config, "subscribers", "import", path).code == 0
    assert cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT).code == 0
    loaded = site.load()
    with Store.open(loaded.database_url) as store:
        store.save_source_states({"gone": SourceState(last_error="404", failures=2)})
        status = overview(loaded, store, LATER)
    weekly = next(row for row in status.digests if row.name == "weekly")
    assert weekly.latest is not None and weekly.latest.period_key.startswith("2017-11-20")
    assert weekly.counts == {SENT: 1}
    assert weekly.summary == "1 sent"
    assert weekly.active == 1
    assert weekly.next_fire > LATER
    assert weekly.next_fire.tzinfo is not None
    assert [row.name for row in status.digests] == list(loaded.config.digests)
    configured = [source.name for source in status.sources if source.configured]
    assert configured == [entry.source_name for entry in loaded.config.sources]
    gone = status.sources[-1]
    assert (gone.name, gone.configured, gone.ok) == ("gone", False, False)
    assert gone.description is not None and "FAILED 2×" in gone.description
    assert status.in_doubt == ()


def test_delivery_summary_leaves_out_empty_states() -> None:
    assert delivery_summary({"sent": 3, "failed_temp": 0, "in_doubt": 1}) == "3 sent, 1 in doubt"
    assert delivery_summary({"sent": 0}) == ""


def test_source_health_in_the_sites_language() -> None:
    failed = SourceState(last_error="HTTP 404", failures=2)
    ok = SourceState(last_success_at=LATER, item_count=1)
    berlin = ZoneInfo("Europe/Berlin")
    de = translator_for("de_DE")
    assert describe_state(ok, berlin, de) == "ok, 1 Beitrag, zuletzt erfolgreich 2017-11-21 10:00"
    assert describe_state(failed, berlin, de) == (
        "FEHLGESCHLAGEN, 2× in Folge: HTTP 404; zuletzt erfolgreich: nie"
    )
    assert describe_state(ok, berlin) == "ok, 1 item, last success 2017-11-21 10:00"


def test_summaries_in_the_sites_language() -> None:
    de = translator_for("de_DE")
    counts = {"sent": 1, "failed_temp": 2, "in_doubt": 1}
    assert delivery_summary(counts, de) == "1 gesendet, 2 zurückgestellt, 1 unklar"
    every = dict.fromkeys(DELIVERY_STATES, 0) | {"sent": 2}
    line = "2 gesendet, 0 zurückgestellt, 0 fehlgeschlagen, 0 unklar, 0 übersprungen, 0 ausstehend"
    assert report_summary(every, de) == line


def test_report_summary_names_every_outcome() -> None:
    counts = dict.fromkeys(DELIVERY_STATES, 0) | {"sent": 2, "in_doubt": 1}
    line = "2 sent, 0 deferred, 0 failed, 1 in doubt, 0 skipped, 0 pending"
    assert report_summary(counts) == line
