"""``digest run``: the long-running scheduler.

APScheduler 3 only wakes the process up: one cron job per digest (in the digest's time zone,
``max_instances=1``, ``coalesce=True``, ``misfire_grace_time=None``) and one interval job (the
timer). Every wake-up runs the same :meth:`Runner.tick`, which asks the *ledger* what to do:

1. unfinished issues (``sending`` after a crash or SIGTERM, ``paused`` after an SMTP outage,
   ``failed_temp`` rows whose retry time has come) are resumed;
2. the periods due are the schedule's fire times after the latest issue's cutoff, up to now;
   the digest's ``catch_up`` policy decides what to make of more than one (see
   :func:`plan_catch_up`) and every send goes through :func:`digest.send.send_digest`, the path
   ``digest send`` uses. The store's ``UNIQUE(digest, period_key)`` makes a second process, a
   restart or a manual send racing the scheduled one find the same issue, never a second one.

A fire APScheduler misses (the process was down, the machine slept) is therefore never lost:
the next tick finds the period due in the ledger. A digest that has never had an issue starts
with the first fire after ``digest run`` started (or with a manual ``digest send``).

One scheduler per store: :class:`RunLock` holds an ``fcntl`` lock on ``<database>.lock`` next to
a SQLite file. Other databases are not locked yet (PostgreSQL will take an advisory lock); the
ledger still keeps every period to one issue, but run one ``digest run`` per store.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.schedulers.base import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from digest.bounces.policy import paused_for_feedback
from digest.bounces.service import poll_for_run
from digest.config import LoadedConfig
from digest.deliver import Clock, DeliveryReport, utc_now
from digest.errors import DigestError
from digest.ledger import PreparedIssue, prepare_issue
from digest.schedule import Period, Schedule
from digest.send import deliver_issue, send_digest
from digest.store import (
    FAILED_TEMP,
    ISSUE_DONE,
    ISSUE_EMPTY,
    ISSUE_PAUSED,
    PENDING,
    SENDING,
    IssueRow,
    Store,
)
from digest.transport import Transport

log = logging.getLogger("digest.run")

DEFAULT_INTERVAL = 60.0  # seconds between timer ticks (retries, resumes, window openings)
PAUSED_RETRY = timedelta(minutes=15)  # a paused issue is tried again this often


# -- what is due ----------------------------------------------------------------------------


def due_fires(
    loaded: LoadedConfig,
    store: Store,
    digest: str,
    now: datetime,
    *,
    since: datetime | None = None,
) -> list[datetime]:
    """Cutoffs (fire times) after the latest issue's cutoff, up to ``now``, oldest first.

    Without any issue yet, the fires since ``since`` (the scheduler's start), or none."""
    latest = store.latest_issue(digest)
    if latest is not None:
        start = latest.period_end + timedelta(microseconds=1)
    elif since is not None:
        start = since
    else:
        return []
    if start > now:
        return []
    return loaded.schedule(digest).fires_between(start, now)


@dataclass(frozen=True)
class CatchUpPlan:
    skip: tuple[datetime, ...]  # record as skipped: items frozen, nothing sent
    send: tuple[datetime, ...]  # create (or find) and deliver, in this order


def plan_catch_up(policy: str, fires: list[datetime], started_at: datetime) -> CatchUpPlan:
    """What to do with the due cutoffs. *Missed* ones are those before the scheduler started
    (the process was down); later ones were seen live and only waited (send window, a long
    send before them).

    - ``each``: every due period gets its own issue, oldest first;
    - ``merge``: only the latest period is created; its selection takes every unsent item
      since the last cutoff, so nothing is lost and subscribers get one issue;
    - ``skip``: missed periods are recorded as skipped (their items are never mailed); of the
      live ones the latest is sent, as with merge.
    """
    if not fires:
        return CatchUpPlan((), ())
    if policy == "each":
        return CatchUpPlan((), tuple(fires))
    if policy == "skip":
        missed = tuple(fire for fire in fires if fire < started_at)
        live = fires[len(missed) :]
        return CatchUpPlan(missed, tuple(live[-1:]))
    return CatchUpPlan((), (fires[-1],))


def describe_catch_up(loaded: LoadedConfig, store: Store, digest: str, now: datetime) -> str:
    """One line for ``digest status``: due periods not yet sent and what ``digest run`` will
    do with them."""
    config = loaded.digest(digest)
    fires = due_fires(loaded, store, digest, now)
    if store.latest_issue(digest) is None:
        return "catch-up: no issue yet; 'digest run' sends the first at the next fire"
    if not fires:
        return "catch-up: up to date"
    keys = [Period(None, fire).key for fire in fires]
    span = keys[0] if len(keys) == 1 else f"{keys[0]} .. {keys[-1]}"
    plan = plan_catch_up(config.catch_up, fires, started_at=now)
    if config.catch_up == "each":
        action = f"{len(plan.send)} issue(s), oldest first"
    elif config.catch_up == "skip":
        action = f"{len(plan.skip)} recorded as skipped, nothing sent"
    else:
        action = f"one issue for the period ending {keys[-1]}"
    line = (
        f"catch-up: {len(fires)} period(s) due, not yet sent ({span}); {config.catch_up}: {action}"
    )
    window = config.send_window.window if config.send_window else None
    if window is not None and not window.contains(now.astimezone(loaded.digest_timezone(digest))):
        line += f"; waits for the send window {window.describe()}"
    return line


# -- the work -------------------------------------------------------------------------------


class Runner:
    """Does what the ledger says is due. ``tick`` is safe to call from several threads (the
    calls run one after another) and from tests with an injected ``clock``."""

    def __init__(
        self,
        loaded: LoadedConfig,
        store: Store,
        *,
        clock: Clock = utc_now,
        transport: Transport | None = None,
        stop: threading.Event | None = None,
        started_at: datetime | None = None,
        paused_retry: timedelta = PAUSED_RETRY,
    ) -> None:
        self.loaded = loaded
        self.store = store
        self.clock = clock
        self.transport = transport
        self.stop = stop or threading.Event()
        self.started_at = started_at or clock()
        self.paused_retry = paused_retry
        self.lock = threading.Lock()
        self._paused_tried: dict[int, datetime] = {}
        self._waiting: set[tuple[str, str]] = set()

    def tick(self, reason: str = "timer") -> None:
        while not self.lock.acquire(timeout=0.2):
            if self.stop.is_set():
                return
        try:
            log.debug("tick (%s)", reason)
            for name in self.loaded.config.digests:
                if self.stop.is_set():
                    return
                try:
                    self.run_digest(name)
                except DigestError as exc:
                    log.error("%s: %s", name, exc)
                except Exception:  # one bad digest or a database hiccup must not end the process
                    log.exception("%s: unexpected error; trying again at the next tick", name)
        finally:
            self.lock.release()

    def run_digest(self, name: str) -> None:
        config = self.loaded.digest(name)
        now = self.clock()
        window = config.send_window.window if config.send_window else None
        local = now.astimezone(self.loaded.digest_timezone(name))
        is_open = window is None or window.contains(local)

        if is_open:
            for issue in self.store.unfinished_issues(name):
                if self.stop.is_set():
                    return
                self._resume(issue, now)

        fires = due_fires(self.loaded, self.store, name, now, since=self.started_at)
        plan = plan_catch_up(config.catch_up, fires, self.started_at)
        for cutoff in plan.skip:
            if self.stop.is_set():
                return
            prepared = prepare_issue(
                self.loaded, self.store, name, cutoff, now=self.clock(), skip=True
            )
            if prepared.created:
                log.info(
                    "%s: issue %s skipped (catch_up: skip; the scheduler was down): "
                    "%d item(s) recorded, nothing sent",
                    name,
                    prepared.issue.period_key,
                    prepared.issue.item_count,
                )
        if not plan.send:
            return
        if not is_open:
            assert window is not None
            key = Period(None, plan.send[0]).key
            if (name, key) not in self._waiting:
                self._waiting.add((name, key))
                log.info(
                    "%s: issue %s is due; waiting for the send window %s (opens %s)",
                    name,
                    key,
                    window.describe(),
                    window.next_open(local).isoformat(timespec="minutes"),
                )
            return
        for cutoff in plan.send:
            if self.stop.is_set():
                return
            latest = self.store.latest_issue(name)
            if latest is not None and latest.period_end > cutoff:
                log.info(
                    "%s: period %s passed over: issue %s exists already (sent by hand?)",
                    name,
                    Period(None, cutoff).key,
                    latest.period_key,
                )
                continue
            self._send(name, cutoff)

    def _send(self, name: str, cutoff: datetime) -> None:
        def prepared_hook(prepared: PreparedIssue) -> bool:
            issue = prepared.issue
            due = self.store.counts(issue.id)
            if prepared.created:
                log.info(
                    "%s: issue %s created: %d item(s), %d message(s) to send",
                    name,
                    issue.period_key,
                    issue.item_count,
                    due[PENDING],
                )
            else:
                log.info(
                    "%s: issue %s exists [%s]; delivering what is left",
                    name,
                    issue.period_key,
                    issue.status,
                )
            return True

        result = send_digest(
            self.loaded,
            self.store,
            name,
            cutoff,
            transport=self.transport,
            clock=self.clock,
            on_prepared=prepared_hook,
            stop=self.stop,
        )
        for problem in result.prepared.problems:
            log.warning("%s: %s", name, problem)
        issue = result.prepared.issue
        if result.report is not None:
            self._log_report(name, issue, result.report)
        elif result.prepared.created and issue.status == ISSUE_EMPTY:
            log.info(
                "%s: issue %s empty: no new items; recorded, nothing sent", name, issue.period_key
            )
        elif issue.status == ISSUE_DONE:
            log.info("%s: issue %s was sent already", name, issue.period_key)

    def _resume(self, issue: IssueRow, now: datetime) -> None:
        name = issue.digest
        if issue.status == ISSUE_PAUSED:
            if paused_for_feedback(issue.note):
                return  # staff decide: 'digest send' resumes it once the list is clean
            tried = self._paused_tried.get(issue.id)
            if tried is not None and now - tried < self.paused_retry:
                return
            self._paused_tried[issue.id] = now
            log.info(
                "%s: issue %s is paused (%s); trying to resume",
                name,
                issue.period_key,
                issue.note or "no reason recorded",
            )
        else:
            counts = self.store.counts(issue.id)
            retry_at = self.store.next_retry_at(issue.id)
            retry_due = retry_at is not None and retry_at <= now
            finished = not (counts[PENDING] or counts[SENDING] or counts[FAILED_TEMP])
            if not (counts[PENDING] or counts[SENDING] or retry_due or finished):
                return  # only retries that are not due yet
            log.info(
                "%s: issue %s unfinished (%d pending, %d interrupted, %d retry due); resuming",
                name,
                issue.period_key,
                counts[PENDING],
                counts[SENDING],
                counts[FAILED_TEMP] if retry_due else 0,
            )
        report = deliver_issue(
            self.loaded,
            self.store,
            issue,
            transport=self.transport,
            clock=self.clock,
            stop=self.stop,
        )
        self._log_report(name, issue, report)

    def _log_report(self, name: str, issue: IssueRow, report: DeliveryReport) -> None:
        counts = report.counts
        summary = (
            f"{counts['sent']} sent, {counts['failed_temp']} deferred, "
            f"{counts['failed_perm']} failed, {counts['in_doubt']} in doubt, "
            f"{counts['skipped']} skipped, {counts['pending']} pending"
        )
        key = issue.period_key
        if report.paused:
            self._paused_tried[issue.id] = self.clock()  # next try after ``paused_retry``
            log.warning("%s: issue %s paused: %s (%s)", name, key, report.paused, summary)
        elif report.error:
            log.error("%s: issue %s: %s (%s)", name, key, report.error, summary)
        elif report.complete:
            log.info("%s: issue %s done: %s", name, key, summary)
        elif self.stop.is_set():
            log.info("%s: issue %s stopped: %s; resumes at the next start", name, key, summary)
        elif report.next_retry_at is not None:
            log.info(
                "%s: issue %s: %s; retries from %s",
                name,
                key,
                summary,
                report.next_retry_at.isoformat(timespec="seconds"),
            )
        else:
            log.info("%s: issue %s: %s", name, key, summary)


# -- APScheduler ----------------------------------------------------------------------------


class LedgerCronTrigger(CronTrigger):  # type: ignore[misc]
    """The digest's own :class:`CronTrigger` (same fields, time zone and ``str()``), asking
    :meth:`Schedule.next_fire` for the next time: at a DST fall-back APScheduler 3 would return
    the repeated wall time twice, and from the second one forever."""

    def __init__(self, schedule: Schedule) -> None:
        for slot in CronTrigger.__slots__:
            setattr(self, slot, getattr(schedule.trigger, slot))
        self.schedule = schedule

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is not None:
            return self.schedule.next_fire(previous_fire_time)
        return self.schedule.next_fire(now - timedelta(microseconds=1))


JOB_OPTIONS: dict[str, Any] = {
    "max_instances": 1,
    "coalesce": True,
    "misfire_grace_time": None,  # never drop a late run (APScheduler's default: 1 s)
}


def build_scheduler(
    loaded: LoadedConfig, runner: Runner, interval: float = DEFAULT_INTERVAL
) -> BlockingScheduler:
    scheduler = BlockingScheduler(timezone=UTC)
    for name in loaded.config.digests:
        scheduler.add_job(
            runner.tick,
            LedgerCronTrigger(loaded.schedule(name)),
            args=(f"fire {name}",),
            id=f"digest:{name}",
            name=f"digest {name}",
            **JOB_OPTIONS,
        )
    scheduler.add_job(
        runner.tick,
        IntervalTrigger(seconds=interval, timezone=UTC),
        args=("timer",),
        id="ledger-timer",
        name="retries, resumes, catch-up",
        next_run_time=datetime.now(UTC),  # the start-up check, at once
        **JOB_OPTIONS,
    )
    bounces = loaded.config.bounces
    if bounces.imap is not None:  # its own job: a slow mailbox never holds up a send
        scheduler.add_job(
            poll_for_run,
            IntervalTrigger(seconds=interval, timezone=UTC),
            args=(runner.store, bounces, runner.clock),
            id="bounce-poll",
            name="bounce mailbox (IMAP)",
            next_run_time=datetime.now(UTC),
            **JOB_OPTIONS,
        )
    return scheduler


class _QuietOverlap(logging.Filter):
    """APScheduler warns when a wake-up finds the previous one still sending. Nothing is lost
    by it (the running tick or the next timer tick reads the ledger again), so it is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


_QUIET_OVERLAP = _QuietOverlap()


# -- one scheduler per store ----------------------------------------------------------------


class RunLock:
    """An exclusive ``fcntl`` lock on ``<sqlite file>.lock``, held while ``digest run`` runs;
    the kernel drops it when the process dies, so a crash never leaves a stale lock."""

    def __init__(self, path: Path | None, fd: int | None) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def acquire(cls, database_url: str) -> RunLock:
        database = sqlite_path(database_url)
        if database is None:
            log.warning(
                "no single-scheduler lock for this database yet (PostgreSQL will take an "
                "advisory lock): run exactly one 'digest run' per store"
            )
            return cls(None, None)
        path = database.with_name(database.name + ".lock")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DigestError(f"{path}: cannot create the scheduler lock: {exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DigestError(
                f"{path}: another 'digest run' (pid {holder}) is already running for this "
                "database; run one scheduler per store"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def sqlite_path(database_url: str) -> Path | None:
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        return None
    path = database_url[len(prefix) :].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


# -- digest run -----------------------------------------------------------------------------


def run(
    loaded: LoadedConfig,
    *,
    interval: float = DEFAULT_INTERVAL,
    on_ready: Callable[[BlockingScheduler], None] | None = None,
) -> int:
    """Run until SIGTERM/SIGINT; returns the exit status (0 after a clean stop)."""
    lock = RunLock.acquire(loaded.database_url)
    logging.getLogger("apscheduler.scheduler").addFilter(_QUIET_OVERLAP)
    try:
        store = Store.open(loaded.database_url)
        stop = threading.Event()
        finished = threading.Event()
        runner = Runner(loaded, store, stop=stop)
        scheduler = build_scheduler(loaded, runner, interval)

        def shut_down(signal_name: str) -> None:
            log.info(
                "%s: stopping: no new work; the message in flight finishes, claimed rows "
                "are released",
                signal_name,
            )
            while not scheduler.running and not finished.is_set():
                time.sleep(0.05)
            with contextlib.suppress(SchedulerNotRunningError):
                scheduler.shutdown(wait=False)

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if stop.is_set():
                return
            stop.set()
            # Not in the handler: the scheduler's locks may be held by the interrupted code.
            threading.Thread(
                target=shut_down, args=(signal.Signals(signum).name,), daemon=True
            ).start()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            now = datetime.now(UTC)
            for name, config in loaded.config.digests.items():
                fire = loaded.schedule(name).next_fire(now)
                log.info(
                    "%s: schedule %r in %s, next fire %s (%s UTC), catch_up %s%s",
                    name,
                    config.schedule,
                    loaded.digest_timezone(name).key,
                    fire.isoformat(timespec="seconds"),
                    fire.astimezone(UTC).isoformat(timespec="seconds"),
                    config.catch_up,
                    f", send window {config.send_window.window.describe()}"
                    if config.send_window
                    else "",
                )
            log.info(
                "digest run: started (pid %d, lock %s, timer every %gs)",
                os.getpid(),
                lock.path or "none",
                interval,
            )
            if on_ready is not None:
                on_ready(scheduler)
            if not stop.is_set():
                scheduler.start()  # blocks until shut down
        finally:
            finished.set()
            stop.set()
            if scheduler.running:
                scheduler.shutdown(wait=False)
            with runner.lock:  # the tick in flight has released what it claimed
                pass
            store.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info("digest run: stopped; the ledger is consistent")
    finally:
        lock.release()
    return 0
