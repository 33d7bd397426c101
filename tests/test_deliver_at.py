"""Local delivery time (``deliver_at``): each reader gets the issue at 07:00 on their own clock,
through a real send (aiosmtpd on 127.0.0.1) with the clock moved by time-machine, across the
week in 2026 when Europe has left summer time and the United States has not (25 October to
1 November: New York is 5 hours behind Berlin instead of 6)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from digest.runner import Runner
from digest.store import ISSUE_DONE, ISSUE_SENDING, Store, deliveries, subscribers
from tests.conftest import CliRunner, Site
from tests.smtp_server import SmtpServer, import_subscribers, no_defects, running, use_smtp
from tests.test_scheduler import add_item

pytestmark = pytest.mark.both_databases

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
READERS = {  # address: stored time zone (None: the site's, Europe/Berlin)
    "berlin@example.org": "Europe/Berlin",
    "newyork@example.org": "America/New_York",
    "nowhere@example.org": "Mars/Olympus",  # unknown: the site's zone, never a crash
    "default@example.org": None,
}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with running() as smtp:
        yield smtp


def setup(site: Site, cli: CliRunner, server: SmtpServer, **digest: Any) -> Store:
    """The sample site's weekly digest on Mondays at 05:00 Berlin time, ``deliver_at`` 07:00,
    four readers in their zones; no sample content (it is from 2017)."""

    def edit(data: dict[str, Any]) -> None:
        weekly = data["digests"]["weekly"]
        weekly.update({"schedule": "0 5 * * mon", "deliver_at": "07:00", **digest})
        data["digests"] = {"weekly": weekly}

    use_smtp(site.config, server.port, edit=edit)
    for path in (site.root / "content").glob("*.md"):
        path.unlink()
    import_subscribers(
        site, cli, "email,name,digests\n" + "".join(f"{a},,weekly\n" for a in READERS)
    )
    store = Store.open(site.load().database_url)
    for address, zone in READERS.items():
        found = store.subscriber_by_email(address)
        assert found is not None
        store.set_reader(found.id, language=None, timezone=zone)
    return store


def arrivals(server: SmtpServer, start: int = 0) -> dict[str, datetime]:
    """Recipient -> the Date of the message they got (the sender's clock when it went)."""
    got: dict[str, datetime] = {}
    for received in server.received[start:]:
        message = received.message
        assert no_defects(message) == []
        (address,) = received.rcpt_tos
        assert address not in got, f"{address} got two messages"
        got[address] = parsedate_to_datetime(str(message["Date"])).astimezone(UTC)
    return got


def not_before(store: Store, issue_id: int) -> dict[str, datetime | None]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(subscribers.c.email, deliveries.c.not_before)
            .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
            .where(deliveries.c.issue_id == issue_id)
        ).all()
    return {email: value for email, value in rows}


def test_each_reader_gets_the_issue_at_seven_on_their_own_clock_across_dst(
    site: Site, cli: CliRunner, server: SmtpServer
) -> None:
    store = setup(site, cli, server)
    try:
        _run_three_weeks(site, cli, server, store)
    finally:
        store.close()


def _run_three_weeks(site: Site, cli: CliRunner, server: SmtpServer, store: Store) -> None:
    add_item(site, "week-a", utc("2026-10-16T10:00"))
    with time_machine.travel(utc("2026-10-19T03:00:30"), tick=False) as clock:
        # Issue A, cut Monday 19 October 05:00 CEST (03:00 UTC), by hand: nobody is at 07:00.
        result = cli("-c", site.config, "send", "weekly", "--yes")
        assert result.code == 0, result.err
        assert server.received == []
        assert (
            "4 message(s) wait for their local 07:00, from 2026-10-19T07:00+02:00 to "
            "2026-10-19T13:00+02:00; keep 'digest run' going"
        ) in result.out
        issue_a = store.latest_issue("weekly")
        assert issue_a is not None and issue_a.status == ISSUE_SENDING
        assert not_before(store, issue_a.id) == {
            "berlin@example.org": utc("2026-10-19T05:00"),
            "nowhere@example.org": utc("2026-10-19T05:00"),
            "default@example.org": utc("2026-10-19T05:00"),
            "newyork@example.org": utc("2026-10-19T11:00"),
        }
        status = cli("-c", site.config, "status")
        assert (
            "waiting 2026-10-19T05:00+02:00: 4 message(s) for their local 07:00; "
            "next 2026-10-19T07:00+02:00"
        ) in status.out

        # 'digest run' from here on: its ticks send the rows as they come due.
        runner = Runner(site.load(), store)

        def tick_at(moment: str) -> dict[str, datetime]:
            before = len(server.received)
            clock.move_to(utc(moment))
            runner.tick()
            return arrivals(server, before)

        assert tick_at("2026-10-19T04:59:59") == {}
        assert runner.next_due() == utc("2026-10-19T05:00")
        assert tick_at("2026-10-19T05:00:00") == {
            "berlin@example.org": utc("2026-10-19T05:00"),  # 07:00 CEST
            "nowhere@example.org": utc("2026-10-19T05:00"),
            "default@example.org": utc("2026-10-19T05:00"),
        }
        assert runner.next_due() == utc("2026-10-19T11:00")
        assert tick_at("2026-10-19T10:59:59") == {}
        assert store.issue_by_id(issue_a.id).status == ISSUE_SENDING  # one still waits
        assert tick_at("2026-10-19T11:00:00") == {"newyork@example.org": utc("2026-10-19T11:00")}
        assert store.issue_by_id(issue_a.id).status == ISSUE_DONE
        assert runner.next_due() is None

        # Issue B, the week between: Berlin on CET (UTC+1), New York still on EDT (UTC-4).
        clock.move_to(utc("2026-10-22T12:00"))
        add_item(site, "week-b", utc("2026-10-22T12:00"))
        assert tick_at("2026-10-26T04:00:00") == {}  # the scheduled issue is cut, nobody due
        issue_b = store.latest_issue("weekly")
        assert issue_b is not None and issue_b.period_end == utc("2026-10-26T04:00")
        assert tick_at("2026-10-26T05:59:59") == {}
        assert set(tick_at("2026-10-26T06:00:00").values()) == {utc("2026-10-26T06:00")}
        assert tick_at("2026-10-26T10:59:59") == {}
        assert tick_at("2026-10-26T11:00:00") == {"newyork@example.org": utc("2026-10-26T11:00")}

        # Issue C: both zones on standard time, 6 hours apart again.
        clock.move_to(utc("2026-10-29T12:00"))
        add_item(site, "week-c", utc("2026-10-29T12:00"))
        assert tick_at("2026-11-02T04:00:00") == {}
        assert set(tick_at("2026-11-02T06:00:00").values()) == {utc("2026-11-02T06:00")}
        assert tick_at("2026-11-02T11:59:59") == {}
        assert tick_at("2026-11-02T12:00:00") == {"newyork@example.org": utc("2026-11-02T12:00")}

    by_reader: dict[str, list[str]] = {}
    for received in server.received:
        (address,) = received.rcpt_tos
        local = NEW_YORK if address == "newyork@example.org" else BERLIN
        when = parsedate_to_datetime(str(received.message["Date"])).astimezone(local)
        by_reader.setdefault(address, []).append(when.strftime("%Y-%m-%d %H:%M"))
    assert by_reader["newyork@example.org"] == [
        "2026-10-19 07:00", "2026-10-26 07:00", "2026-11-02 07:00",
    ]  # fmt: skip
    assert by_reader["berlin@example.org"] == by_reader["newyork@example.org"]
    assert all(len(times) == 3 for times in by_reader.values())  # each issue once
    assert [issue.status for issue in store.list_issues("weekly")] == [ISSUE_DONE] * 3


def test_send_now_goes_at_once_whatever_deliver_at_says(
    site: Site, cli: CliRunner, server: SmtpServer
) -> None:
    store = setup(site, cli, server)
    try:
        add_item(site, "news", utc("2026-10-20T08:00"))
        with time_machine.travel(utc("2026-10-20T09:00"), tick=False):
            result = cli("-c", site.config, "send", "weekly", "--now", "--yes")
            assert result.code == 0, result.err
            assert "wait for their local" not in result.out
            assert set(arrivals(server).values()) == {utc("2026-10-20T09:00")}
            assert len(server.received) == len(READERS)
            issue = store.latest_issue("weekly")
            assert issue is not None and issue.status == ISSUE_DONE
            assert set(not_before(store, issue.id).values()) == {None}
    finally:
        store.close()


def test_an_issue_cut_late_sends_the_readers_whose_time_has_passed_at_once(
    site: Site, cli: CliRunner, server: SmtpServer
) -> None:
    """A catch-up or a late manual send: 07:00 after the cutoff has passed in Berlin (not yet
    in New York): Berlin's readers get it now, New York's at their 07:00."""
    store = setup(site, cli, server)
    try:
        add_item(site, "late", utc("2026-10-16T10:00"))
        with time_machine.travel(utc("2026-10-19T08:00"), tick=False):
            result = cli("-c", site.config, "send", "weekly", "--yes")
            assert result.code == 0, result.err
            assert "3 sent" in result.out
            assert set(arrivals(server)) == set(READERS) - {"newyork@example.org"}
            assert (
                "1 message(s) wait for their local 07:00, 2026-10-19T13:00+02:00; "
                "keep 'digest run' going"
            ) in result.out
    finally:
        store.close()


def test_a_waiting_issue_is_resumed_by_digest_send_when_due(
    site: Site, cli: CliRunner, server: SmtpServer
) -> None:
    """'digest send' again (a resume) sends what has come due and leaves the rest waiting."""
    store = setup(site, cli, server)
    try:
        add_item(site, "resume", utc("2026-10-16T10:00"))
        with time_machine.travel(utc("2026-10-19T03:30"), tick=False) as clock:
            assert cli("-c", site.config, "send", "weekly", "--yes").code == 0
            clock.move_to(utc("2026-10-19T05:00") + timedelta(minutes=1))
            again = cli("-c", site.config, "send", "weekly", "--yes")
            assert again.code == 0, again.err
            assert "4 message(s) to resume (1 of them wait for their local delivery time)" in (
                again.out
            )
            assert "3 sent" in again.out and "1 message(s) wait" in again.out
            assert len(server.received) == 3
    finally:
        store.close()


def test_digest_run_wakes_at_the_next_local_time_not_at_its_timer(
    site: Site, cli: CliRunner, server: SmtpServer
) -> None:
    """APScheduler itself, on a clock moved by time-machine, its timer once an hour: the
    start-up tick sets a wake-up for New York's 07:00 and the message goes then."""
    import threading
    import time

    from digest.scheduler import build_scheduler

    store = setup(site, cli, server)
    try:
        add_item(site, "wake", utc("2026-10-16T10:00"))
        with time_machine.travel(utc("2026-10-19T05:00"), tick=False):
            assert cli("-c", site.config, "send", "weekly", "--yes").code == 0
        assert len(server.received) == 3  # all but New York
        with time_machine.travel(utc("2026-10-19T10:59:58"), tick=True):
            runner = Runner(site.load(), store)
            scheduler = build_scheduler(site.load(), runner, interval=3600)
            thread = threading.Thread(target=scheduler.start, daemon=True)
            thread.start()
            try:
                server.wait_for(4, timeout=15)
                wake_ups = [job.id for job in scheduler.get_jobs()]
            finally:
                scheduler.shutdown(wait=True)
                thread.join(10)
            time.sleep(0.1)
        (new_york,) = arrivals(server, 3).items()
        assert new_york[0] == "newyork@example.org"
        assert utc("2026-10-19T11:00") <= new_york[1] < utc("2026-10-19T11:00:05")
        assert "ledger-due:2026-10-19T11:00:00+00:00" not in wake_ups  # ran once, then gone
        issue = store.latest_issue("weekly")
        assert issue is not None and issue.status == ISSUE_DONE
    finally:
        store.close()


@pytest.mark.postgres_only
def test_digest_worker_sends_each_row_when_it_comes_due(
    site: Site, cli: CliRunner, server: SmtpServer
) -> None:
    """``digest send --enqueue`` leaves the rows to a worker; it sends each reader's message
    at their 07:00 (its clock injected) and the waiting ones never count as failures."""
    import threading
    import time

    from digest.worker import run_worker

    store = setup(site, cli, server)
    data_poll = site.config.read_text(encoding="utf-8") + "store: {poll_seconds: 0.1}\n"
    site.config.write_text(data_poll, encoding="utf-8")
    try:
        add_item(site, "worker", utc("2026-10-16T10:00"))
        with time_machine.travel(utc("2026-10-19T03:30"), tick=False):
            result = cli("-c", site.config, "send", "weekly", "--yes", "--enqueue")
            assert result.code == 0, result.err
            assert "4 message(s) wait for their local 07:00" in result.out
            assert "keep 'digest worker' going" in result.out
        now = [utc("2026-10-19T04:59:59")]
        stop = threading.Event()
        worker = threading.Thread(
            target=run_worker,
            args=(site.load(), store, stop),
            kwargs={"clock": lambda: now[0]},
            daemon=True,
        )
        worker.start()
        try:
            time.sleep(1.0)
            assert server.received == []
            now[0] = utc("2026-10-19T05:00")
            server.wait_for(3, timeout=15)
            time.sleep(0.5)
            assert len(server.received) == 3
            now[0] = utc("2026-10-19T11:00")
            server.wait_for(4, timeout=15)
        finally:
            stop.set()
            worker.join(15)
        got = arrivals(server)
        assert got["newyork@example.org"] == utc("2026-10-19T11:00")
        assert got["berlin@example.org"] == utc("2026-10-19T05:00")
        issue = store.latest_issue("weekly")
        assert issue is not None and issue.status == ISSUE_DONE
    finally:
        store.close()
