"""``digest run``'s decisions with a controllable clock: the ledger, not APScheduler, decides.

The :class:`~digest.scheduler.Runner` is driven tick by tick with an injected ``now`` and an
in-memory transport; APScheduler itself is exercised through its trigger and job options and,
for real, in ``test_run_e2e.py``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from digest.cli import main
from digest.config import LoadedConfig, load_config
from digest.errors import ConfigError, DigestError
from digest.ledger import prepare_issue
from digest.plan import MAX_DUE, due_fires
from digest.scheduler import (
    LedgerCronTrigger,
    RunLock,
    Runner,
    build_scheduler,
    describe_catch_up,
    plan_catch_up,
)
from digest.send import send_digest
from digest.store import Store
from digest.transport import (
    AuthenticationFailed,
    MemoryConnection,
    MemoryTransport,
    TemporaryFailure,
)
from digest.window import SendWindow
from tests.conftest import CliRunner, Site

pytestmark = pytest.mark.both_databases

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment.astimezone(UTC)


def configure(site: Site, digest: dict[str, Any], subscribers: int = 2) -> LoadedConfig:
    """One digest named ``news`` in Europe/Berlin, maildir delivery, ``subscribers`` people."""
    data = yaml.safe_load(site.config.read_text(encoding="utf-8"))
    data["digests"] = {"news": {"title": "Neuigkeiten", **digest}}
    site.config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    loaded = load_config(site.config, environ={})
    store = Store.open(loaded.database_url)
    for n in range(subscribers):
        store.add_subscriber(f"reader{n}@example.net", f"Reader {n}", ["news"], datetime.now(UTC))
    store.close()
    return loaded


def add_item(site: Site, slug: str, when: datetime) -> None:
    site.write(
        f"content/{slug}.md",
        f"""\
        ---
        title: "Item {slug}"
        date: {when.isoformat()}
        id: {slug}
        ---
        Body of {slug}.
        """,
    )


@pytest.fixture
def store(site: Site) -> Iterator[Store]:
    opened = Store.open(load_config(site.config, environ={}).database_url)
    yield opened
    opened.close()


def issues_of(store: Store) -> list[tuple[str, str, list[str]]]:
    """(period_key, status, item ids) of every issue of ``news``, oldest first."""
    rows = sorted(store.list_issues("news", limit=1000), key=lambda issue: issue.period_end)
    return [
        (
            issue.period_key,
            issue.status,
            sorted(item.uid.rsplit(":", 1)[-1] for item in store.issue_items(issue.id)),
        )
        for issue in rows
    ]


def per_recipient(transport: MemoryTransport) -> Counter[str]:
    return Counter(recipient for _, recipient, _ in transport.sent)


# -- DST: a daily 02:30 digest ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "last"),
    [("2025-03-28", "2025-04-01"), ("2025-10-24", "2025-10-28")],
    ids=["spring-forward", "fall-back"],
)
def test_daily_0230_berlin_one_issue_per_local_day_across_dst(
    site: Site, store: Store, first: str, last: str
) -> None:
    """Ticks every 10 minutes through four local days. On 30 March 02:30 does not exist: the
    issue closes at 03:30 CEST (APScheduler's choice); on 26 October 02:30 exists twice: one
    issue, at the first (CEST)."""
    loaded = configure(site, {"schedule": "30 2 * * *"})
    start = berlin(f"{first}T12:00")
    end = berlin(f"{last}T12:00")
    clock = Clock(start)
    transport = MemoryTransport()
    runner = Runner(loaded, store, clock=clock, transport=transport)
    moment = start.astimezone(UTC)
    while moment <= end.astimezone(UTC):
        clock.set(moment)
        local = moment.astimezone(BERLIN)
        if local.hour == 12 and local.minute == 0:
            add_item(site, f"noon-{local.date().isoformat()}", local)
        runner.tick()
        moment += timedelta(minutes=10)

    issues = issues_of(store)
    days = [datetime.fromisoformat(key).date() for key, _, _ in issues]
    first_day = date.fromisoformat(first)
    expected = [first_day + timedelta(days=n) for n in range(1, 5)]
    assert days == expected, issues  # one issue per local day: none doubled, none lost
    assert len({key for key, _, _ in issues}) == len(issues)
    assert [status for _, status, _ in issues] == ["done"] * 4
    # Each issue holds the previous noon's item; the last noon's waits for the next issue.
    assert [items for _, _, items in issues] == [
        [f"noon-{(day - timedelta(days=1)).isoformat()}"] for day in expected
    ]
    assert per_recipient(transport) == {"reader0@example.net": 4, "reader1@example.net": 4}


def test_apscheduler_trigger_fires_once_per_day_across_the_fall_back_fold() -> None:
    from digest.schedule import Schedule

    schedule = Schedule.parse("30 2 * * *", BERLIN)
    trigger = LedgerCronTrigger(schedule)
    now = berlin("2025-10-24T12:00")
    fires: list[datetime] = []
    previous = None
    for _ in range(4):
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        fires.append(fire)
        previous = fire
    assert [fire.date().isoformat() for fire in fires] == [
        "2025-10-25",
        "2025-10-26",
        "2025-10-27",
        "2025-10-28",
    ]
    assert fires[1].utcoffset() == timedelta(hours=2)  # the first 02:30, summer time
    assert str(trigger).startswith("cron[")


def test_jobs_never_drop_a_late_run(site: Site, store: Store) -> None:
    loaded = configure(site, {"schedule": "0 7 * * mon", "timezone": "America/New_York"})
    scheduler = build_scheduler(loaded, Runner(loaded, store), interval=30)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"digest:news", "ledger-timer"}
    for job in jobs.values():
        assert job.max_instances == 1
        assert job.coalesce is True
        assert job.misfire_grace_time is None
    assert str(jobs["digest:news"].trigger.timezone) == "America/New_York"


# -- a weekly digest whose process was down across three fire times ---------------------------


def weekly_down_three_fires(
    site: Site, store: Store, policy: str
) -> tuple[Clock, Runner, MemoryTransport]:
    loaded = configure(site, {"schedule": "0 7 * * mon", "catch_up": policy})
    transport = MemoryTransport()
    clock = Clock(berlin("2025-01-05T12:00"))
    add_item(site, "i0", berlin("2025-01-05T10:00"))
    first = Runner(loaded, store, clock=clock, transport=transport)
    clock.set(berlin("2025-01-06T07:00:05"))
    first.tick("fire news")
    assert issues_of(store) == [("2025-01-06T07:00+01:00", "done", ["i0"])]
    # The process is down from here; content keeps coming.
    add_item(site, "i1", berlin("2025-01-08T09:00"))
    add_item(site, "i2", berlin("2025-01-15T09:00"))
    add_item(site, "i3", berlin("2025-01-22T09:00"))
    add_item(site, "i4", berlin("2025-01-27T12:00"))  # after the third missed fire (27th, 07:00)
    clock.set(berlin("2025-01-28T09:00"))
    restarted = Runner(loaded, store, clock=clock, transport=transport)
    restarted.tick("timer")
    return clock, restarted, transport


def test_catch_up_each_sends_one_issue_per_missed_period_in_order(site: Site, store: Store) -> None:
    clock, runner, transport = weekly_down_three_fires(site, store, "each")
    assert issues_of(store)[1:] == [
        ("2025-01-13T07:00+01:00", "done", ["i1"]),
        ("2025-01-20T07:00+01:00", "done", ["i2"]),
        ("2025-01-27T07:00+01:00", "done", ["i3"]),
    ]
    assert per_recipient(transport) == {"reader0@example.net": 4, "reader1@example.net": 4}
    messages_in_order = [
        message for _, rcpt, message in transport.sent if rcpt == "reader0@example.net"
    ]
    # The item's title, not a bare "i1": that pair also turns up in random unsubscribe tokens.
    assert [b"Item i1" in m for m in messages_in_order[1:]] == [True, False, False]
    runner.tick()
    Runner(runner.loaded, store, clock=clock, transport=transport).tick()  # another restart
    assert len(transport.sent) == 8


def test_catch_up_merge_sends_one_issue_with_everything_since_the_last_cutoff(
    site: Site, store: Store
) -> None:
    clock, runner, transport = weekly_down_three_fires(site, store, "merge")
    assert issues_of(store)[1:] == [("2025-01-27T07:00+01:00", "done", ["i1", "i2", "i3"])]
    merged = store.latest_issue("news")
    assert merged is not None and merged.period_start is not None
    assert merged.period_start.astimezone(BERLIN) == berlin("2025-01-06T07:00")
    assert per_recipient(transport) == {"reader0@example.net": 2, "reader1@example.net": 2}
    runner.tick()
    assert len(transport.sent) == 4
    clock.set(berlin("2025-02-03T07:00:01"))
    runner.tick("fire news")
    assert issues_of(store)[-1] == ("2025-02-03T07:00+01:00", "done", ["i4"])


def test_catch_up_skip_records_missed_periods_and_sends_nothing(site: Site, store: Store) -> None:
    clock, runner, transport = weekly_down_three_fires(site, store, "skip")
    assert issues_of(store)[1:] == [
        ("2025-01-13T07:00+01:00", "skipped", ["i1"]),
        ("2025-01-20T07:00+01:00", "skipped", ["i2"]),
        ("2025-01-27T07:00+01:00", "skipped", ["i3"]),
    ]
    assert len(transport.sent) == 2  # only the issue of 6 January
    for issue in store.list_issues("news"):
        if issue.status == "skipped":
            assert sum(store.counts(issue.id).values()) == 0  # no delivery rows at all
    runner.tick()
    clock.set(berlin("2025-02-03T07:00:01"))
    runner.tick("fire news")  # the first fire seen live is sent normally
    assert issues_of(store)[-1] == ("2025-02-03T07:00+01:00", "done", ["i4"])
    assert per_recipient(transport) == {"reader0@example.net": 2, "reader1@example.net": 2}


def test_a_seconds_schedule_after_a_long_pause_enumerates_only_what_catch_up_needs(
    site: Site,
) -> None:
    """A month without a tick on a schedule that fires every second: ~2.6 million periods.
    The ledger is asked for the latest MAX_DUE only, found walking back from now."""
    loaded = configure(site, {"schedule": "* * * * * *", "catch_up": "merge"}, subscribers=0)
    now = datetime(2017, 11, 20, 7, 0, 30, tzinfo=UTC)
    with Store.open(loaded.database_url) as store:
        fires = due_fires(loaded, store, "news", now, since=now - timedelta(days=30))
        assert len(fires) == MAX_DUE
        assert fires[-1] == now and fires[0] == now - timedelta(seconds=MAX_DUE - 1)
        assert plan_catch_up("merge", fires, now).send == (now,)


def test_plan_catch_up_policies() -> None:
    started = berlin("2025-01-28T09:00")
    fires = [berlin("2025-01-13T07:00"), berlin("2025-01-20T07:00"), berlin("2025-02-03T07:00")]
    assert plan_catch_up("each", fires, started).send == tuple(fires)
    assert plan_catch_up("merge", fires, started).send == (fires[-1],)
    skip = plan_catch_up("skip", fires, started)
    assert skip.skip == tuple(fires[:2]) and skip.send == (fires[-1],)
    assert plan_catch_up("merge", [], started).send == ()


# -- a manual send racing the scheduled one ---------------------------------------------------


def test_manual_send_racing_the_scheduled_one_makes_one_issue(site: Site) -> None:
    loaded = configure(site, {"schedule": "0 7 * * mon"}, subscribers=30)
    add_item(site, "race", berlin("2025-01-05T10:00"))
    fire = berlin("2025-01-06T07:00")
    clock = Clock(fire + timedelta(seconds=1))
    transport = MemoryTransport()
    scheduled_store = Store.open(loaded.database_url)
    manual_store = Store.open(loaded.database_url)
    runner = Runner(
        loaded,
        scheduled_store,
        clock=clock,
        transport=transport,
        started_at=fire - timedelta(hours=1),
    )
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def scheduled() -> None:
        barrier.wait()
        runner.tick("fire news")

    def manual() -> None:
        barrier.wait()
        try:
            send_digest(loaded, manual_store, "news", clock(), transport=transport, clock=clock)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=scheduled), threading.Thread(target=manual)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    try:
        assert issues_of(scheduled_store) == [("2025-01-06T07:00+01:00", "done", ["race"])]
        counts = per_recipient(transport)
        assert len(counts) == 30 and set(counts.values()) == {1}
        runner.tick()
        assert len(transport.sent) == 30
    finally:
        scheduled_store.close()
        manual_store.close()


def test_scheduler_passes_over_a_period_that_a_later_manual_send_closed(
    site: Site, store: Store
) -> None:
    loaded = configure(site, {"schedule": "0 7 * * mon", "catch_up": "each"})
    transport = MemoryTransport()
    add_item(site, "a", berlin("2025-01-05T10:00"))
    clock = Clock(berlin("2025-01-06T07:00:05"))
    runner = Runner(
        loaded, store, clock=clock, transport=transport, started_at=berlin("2025-01-06T06:00")
    )
    runner.tick()
    add_item(site, "b", berlin("2025-01-10T10:00"))
    # Staff sends the 20 January issue by hand while the scheduler was down.
    send_digest(loaded, store, "news", berlin("2025-01-20T08:00"), transport=transport, clock=clock)
    clock.set(berlin("2025-01-21T09:00"))
    Runner(loaded, store, clock=clock, transport=transport).tick()
    assert [key for key, _, _ in issues_of(store)] == [
        "2025-01-06T07:00+01:00",
        "2025-01-20T07:00+01:00",
    ]


# -- empty periods, send windows, retries and resumes -----------------------------------------


@pytest.mark.parametrize("send_empty", [False, True])
def test_empty_period_follows_send_empty(site: Site, store: Store, send_empty: bool) -> None:
    loaded = configure(site, {"schedule": "0 7 * * *", "send_empty": send_empty})
    transport = MemoryTransport()
    clock = Clock(berlin("2025-01-06T07:00:05"))
    Runner(
        loaded, store, clock=clock, transport=transport, started_at=berlin("2025-01-06T06:00")
    ).tick()
    [(_key, status, items)] = issues_of(store)
    assert items == []
    assert status == ("done" if send_empty else "empty")
    assert len(transport.sent) == (2 if send_empty else 0)


def test_due_issue_waits_for_the_send_window(
    site: Site, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    loaded = configure(
        site,
        {
            "schedule": "0 2 * * *",
            "send_window": {"days": "mon-fri", "start": "07:00", "end": "20:00"},
        },
    )
    transport = MemoryTransport()
    add_item(site, "w", berlin("2025-01-09T12:00"))
    clock = Clock(berlin("2025-01-10T02:00:01"))  # a Friday
    runner = Runner(
        loaded, store, clock=clock, transport=transport, started_at=berlin("2025-01-09T09:00")
    )
    caplog.set_level("INFO", logger="digest.run")
    runner.tick("fire news")
    assert issues_of(store) == []
    assert "waiting for the send window mon,tue,wed,thu,fri 07:00-20:00" in caplog.text
    clock.set(berlin("2025-01-10T07:00:30"))
    runner.tick()
    assert issues_of(store) == [("2025-01-10T02:00+01:00", "done", ["w"])]
    # Saturday's issue waits until Monday 07:00 (merged with Sunday's and Monday's).
    add_item(site, "x", berlin("2025-01-10T22:00"))
    for moment in ("2025-01-11T02:00:01", "2025-01-12T12:00", "2025-01-13T06:59"):
        clock.set(berlin(moment))
        runner.tick()
    assert len(issues_of(store)) == 1
    clock.set(berlin("2025-01-13T07:00"))
    runner.tick()
    assert issues_of(store)[-1] == ("2025-01-13T02:00+01:00", "done", ["x"])
    assert len(transport.sent) == 4


def test_send_window_parsing() -> None:
    window = SendWindow.parse("mon-fri", "07:00", "20:00")
    assert window.contains(berlin("2025-01-10T19:59")) and not window.contains(
        berlin("2025-01-10T20:00")
    )
    assert not window.contains(berlin("2025-01-11T12:00"))
    night = SendWindow.parse("fri", "22:00", "02:00")
    assert night.contains(berlin("2025-01-10T23:00")) and night.contains(berlin("2025-01-11T01:00"))
    assert not night.contains(berlin("2025-01-11T23:00"))
    assert night.next_open(berlin("2025-01-11T12:00")) == berlin("2025-01-17T22:00")
    with pytest.raises(ValueError):
        SendWindow.parse("mon-fri", "25:00", "20:00")


def test_send_window_config_errors_name_the_line(site: Site) -> None:
    data = yaml.safe_load(site.config.read_text(encoding="utf-8"))
    site.config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    text = site.config.read_text(encoding="utf-8")
    text = text.replace(
        "  weekly:\n",
        "  weekly:\n    send_window: {days: weekdays, start: 07:00, end: 20:00}\n",
        1,
    )
    site.config.write_text(text, encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"config.yaml:\d+: digests.weekly.send_window: .*weekday"
    ):
        load_config(site.config, environ={})
    # Unquoted 20:00 is a YAML 1.1 number (1200): read back as the time it was meant to be.
    site.config.write_text(text.replace("days: weekdays", "days: mon-fri"), encoding="utf-8")
    window = load_config(site.config, environ={}).digest("weekly").send_window
    assert window is not None and window.window.describe().endswith("07:00-20:00")


def test_timer_retries_deferred_messages_and_resumes_interrupted_issues(
    site: Site, store: Store
) -> None:
    loaded = configure(site, {"schedule": "0 7 * * mon"}, subscribers=3)
    add_item(site, "r", berlin("2025-01-05T10:00"))
    failures = {"reader1@example.net"}

    def fail(recipient: str) -> None:
        if recipient in failures:
            failures.discard(recipient)
            raise TemporaryFailure("451 try again later")

    transport = MemoryTransport(fail=fail)
    clock = Clock(berlin("2025-01-06T07:00:05"))
    runner = Runner(
        loaded, store, clock=clock, transport=transport, started_at=berlin("2025-01-06T06:00")
    )
    runner.tick("fire news")
    issue = store.latest_issue("news")
    assert issue is not None and issue.status == "sending"
    assert store.counts(issue.id)["failed_temp"] == 1
    runner.tick()  # retry not due yet: nothing happens
    assert len(transport.sent) == 2
    clock.set(clock.now + timedelta(minutes=5))
    runner.tick()
    assert store.issue_by_id(issue.id).status == "done"
    assert per_recipient(transport) == Counter({f"reader{n}@example.net": 1 for n in range(3)})

    # An issue created but never delivered (a crash right after the ledger step): resumed.
    add_item(site, "s", berlin("2025-01-08T10:00"))
    prepare_issue(loaded, store, "news", berlin("2025-01-13T07:00"), now=clock())
    clock.set(berlin("2025-01-13T07:00:30"))
    runner.tick()
    assert issues_of(store)[-1] == ("2025-01-13T07:00+01:00", "done", ["s"])
    assert len(transport.sent) == 6


def test_paused_issue_is_retried_on_the_timer_not_every_tick(site: Site, store: Store) -> None:
    loaded = configure(site, {"schedule": "0 7 * * mon"}, subscribers=2)
    add_item(site, "p", berlin("2025-01-05T10:00"))

    class FlakyServer(MemoryTransport):
        down = True
        connects = 0

        def connect(self) -> MemoryConnection:
            self.connects += 1
            if self.down:
                raise AuthenticationFailed("535 authentication failed")
            return super().connect()

    transport = FlakyServer()
    clock = Clock(berlin("2025-01-06T07:00:05"))
    runner = Runner(
        loaded, store, clock=clock, transport=transport, started_at=berlin("2025-01-06T06:00")
    )
    runner.tick("fire news")
    issue = store.latest_issue("news")
    assert issue is not None and store.issue_by_id(issue.id).status == "paused"
    attempts = transport.connects
    clock.set(clock.now + timedelta(minutes=5))
    runner.tick()
    assert transport.connects == attempts  # not hammering a server that refused us
    transport.down = False
    clock.set(clock.now + timedelta(minutes=11))
    runner.tick()
    assert store.issue_by_id(issue.id).status == "done"
    assert per_recipient(transport) == {"reader0@example.net": 1, "reader1@example.net": 1}


# -- one scheduler per store, status --------------------------------------------------------


@pytest.mark.sqlite_only  # the run lock file next to the database
def test_second_scheduler_on_the_same_store_refuses_to_start(site: Site, cli: CliRunner) -> None:
    loaded = configure(site, {"schedule": "0 7 * * mon"})
    held = RunLock.acquire(loaded.database_url)
    try:
        assert held.path == Path(loaded.database_url.removeprefix("sqlite:///") + ".lock")
        result = cli("-c", site.config, "run")
        assert result.code == 1
        assert "another 'digest run'" in result.err and "digest.db.lock" in result.err
        assert "Traceback" not in result.err
        with pytest.raises(DigestError, match="one scheduler per store"):
            RunLock.acquire(loaded.database_url)
    finally:
        held.release()
    RunLock.acquire(loaded.database_url).release()  # free again


def test_status_shows_next_fire_and_catch_up_state(
    site: Site, cli: CliRunner, store: Store
) -> None:
    loaded = configure(site, {"schedule": "0 7 * * mon", "catch_up": "each"})
    add_item(site, "st", berlin("2025-01-05T10:00"))
    send_digest(loaded, store, "news", berlin("2025-01-06T07:00"), transport=MemoryTransport())
    line = describe_catch_up(loaded, store, "news", berlin("2025-01-28T09:00"))
    assert line == (
        "catch-up: 3 period(s) due, not yet sent (2025-01-13T07:00+01:00 .. "
        "2025-01-27T07:00+01:00); each: 3 issue(s), oldest first"
    )
    result = main(["-c", str(site.config), "status"])
    assert result == 0
    out = cli("-c", site.config, "status").out
    assert "next fire:" in out and "catch-up:" in out and "period(s) due" in out


def test_real_scheduler_fires_once_at_the_fall_back_fold(site: Site, store: Store) -> None:
    """APScheduler itself, on a clock moved by time-machine: the 02:30 job runs at 02:30 CEST
    and not again at 02:30 CET an hour later (a plain CronTrigger would)."""
    import time

    import time_machine
    from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent

    loaded = configure(site, {"schedule": "30 2 * * *"})
    add_item(site, "fold", berlin("2025-10-25T12:00"))
    transport = MemoryTransport()
    runs: list[datetime] = []

    def executed(event: JobExecutionEvent) -> None:
        if event.job_id == "digest:news":
            runs.append(event.scheduled_run_time)

    def wait_for(condition: Any, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.02)

    with time_machine.travel(datetime(2025, 10, 26, 0, 29, 58, tzinfo=UTC), tick=True) as travel:
        runner = Runner(loaded, store, transport=transport, started_at=berlin("2025-10-25T12:00"))
        scheduler = build_scheduler(loaded, runner, interval=3600)
        scheduler.add_listener(executed, EVENT_JOB_EXECUTED)
        thread = threading.Thread(target=scheduler.start, daemon=True)
        thread.start()
        try:
            wait_for(lambda: len(runs) == 1)
            travel.move_to(datetime(2025, 10, 26, 1, 29, 58, tzinfo=UTC))  # 02:29:58 CET
            scheduler.wakeup()
            time.sleep(3)
        finally:
            scheduler.shutdown(wait=True)
            thread.join(10)
    assert [run.astimezone(BERLIN).isoformat() for run in runs] == ["2025-10-26T02:30:00+02:00"]
    assert issues_of(store) == [("2025-10-26T02:30+02:00", "done", ["fold"])]
    assert len(transport.sent) == 2
