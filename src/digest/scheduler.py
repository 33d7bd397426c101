"""``digest run``: the long-running scheduler.

APScheduler 3 only wakes the process up: one cron job per digest (in the digest's time zone,
``max_instances=1``, ``coalesce=True``, ``misfire_grace_time=None``) and one interval job (the
timer). Every wake-up runs the same :meth:`Runner.tick`, which asks the *ledger* what to do:

1. unfinished issues (``sending`` after a crash or SIGTERM, ``paused`` after an SMTP outage,
   ``failed_temp`` rows whose retry time has come, rows whose reader's local delivery time
   has come) are resumed; after each tick a one-off job is set for the instant the next
   waiting row comes due, so a 07:00 delivery goes at 07:00, not at the next timer tick;
2. the periods due are the schedule's fire times after the latest issue's cutoff, up to now;
   the digest's ``catch_up`` policy decides what to make of more than one (see
   :func:`plan_catch_up`) and every send goes through :func:`digest.send.send_digest`, the path
   ``digest send`` uses. The store's ``UNIQUE(digest, period_key)`` makes a second process, a
   restart or a manual send racing the scheduled one find the same issue, never a second one.

A fire APScheduler misses (the process was down, the machine slept) is therefore never lost:
the next tick finds the period due in the ledger. A digest that has never had an issue starts
with the first fire after ``digest run`` started (or with a manual ``digest send``).

One scheduler per store: :class:`RunLock` holds an ``fcntl`` lock on ``<database>.lock`` next to
a SQLite file. On PostgreSQL the leader holds an advisory lock (:mod:`digest.leader`) on a
kept-alive connection; further ``digest run`` processes, on any machine, stand by and take
over when it dies. Either way the ledger keeps every period to one issue.

The parts: :mod:`digest.plan` (what is due; pure over the ledger), :mod:`digest.runner` (the
work of a tick), :mod:`digest.runlock` (the lock); this module wires them to APScheduler and
runs the process (signals, clean stop).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.schedulers.base import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from digest.bounces.service import poll_for_run
from digest.config import LoadedConfig
from digest.leader import STANDBY_INTERVAL, LeaderWatch, wait_for_leadership
from digest.plan import CatchUpPlan, describe_catch_up, due_fires, plan_catch_up
from digest.runlock import RunLock
from digest.runner import PAUSED_RETRY, Runner
from digest.schedule import Schedule
from digest.send import open_store

__all__ = [
    "DEFAULT_INTERVAL",
    "PAUSED_RETRY",
    "CatchUpPlan",
    "LedgerCronTrigger",
    "RunLock",
    "Runner",
    "build_scheduler",
    "describe_catch_up",
    "due_fires",
    "plan_catch_up",
    "run",
]

log = logging.getLogger("digest.run")

DEFAULT_INTERVAL = 60.0  # seconds between timer ticks (retries, resumes, window openings)


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

    def wake_at(when: datetime) -> None:
        """A tick when the next waiting row comes due (a reader's local delivery time, a
        retry): sent on time, not at the next timer tick. One job per instant."""
        scheduler.add_job(
            runner.tick,
            DateTrigger(run_date=when, timezone=UTC),
            args=("due",),
            id=f"ledger-due:{when.isoformat()}",
            name="rows coming due",
            replace_existing=True,
            **JOB_OPTIONS,
        )

    runner.wake_at = wake_at
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


# -- digest run -----------------------------------------------------------------------------


def run(
    loaded: LoadedConfig,
    *,
    interval: float = DEFAULT_INTERVAL,
    on_ready: Callable[[BlockingScheduler], None] | None = None,
    standby_interval: float = STANDBY_INTERVAL,
) -> int:
    """Run until SIGTERM/SIGINT; returns the exit status (0 after a clean stop, 1 after the
    leader lock was lost)."""
    lock = RunLock.acquire(loaded.database_url)
    logging.getLogger("apscheduler.scheduler").addFilter(_QUIET_OVERLAP)
    lost = threading.Event()
    try:
        store = open_store(
            loaded, application_name=f"digest run {socket.gethostname()}:{os.getpid()}"
        )
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

        def on_lost() -> None:
            lost.set()
            stop.set()
            threading.Thread(target=shut_down, args=("leader lock lost",), daemon=True).start()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        watch: LeaderWatch | None = None
        leadership = None
        try:
            if not store.is_sqlite:  # stand by until this process leads (or is stopped)
                name = f"digest run {socket.gethostname()}:{os.getpid()}"
                leadership = wait_for_leadership(store.engine, name, stop, standby_interval)
                if leadership is None:
                    return 0
                watch = LeaderWatch(leadership, on_lost).start()
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
            if watch is not None:
                watch.stop()
            if leadership is not None:
                leadership.release()
            store.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info("digest run: stopped; the ledger is consistent")
    finally:
        lock.release()
    return 1 if lost.is_set() else 0
