"""``digest worker``: a long-running sender that delivers every issue being sent.

Any number of workers, on any machines sharing the PostgreSQL store (or processes on one
machine sharing a SQLite file), claim the due deliveries of every issue in state ``sending``
(``digest send DIGEST --enqueue`` and the scheduler create them; a plain ``digest send``
delivers in-process and workers help). They wake when work arrives (LISTEN/NOTIFY on
PostgreSQL, a poll every ``store.poll_seconds`` on SQLite and as a fallback) and when a row
waiting for its reader's local delivery time (``deliver_at``) or its retry comes due, rescue
the rows of workers whose lease ran out, and stop cleanly when ``stop`` is set (SIGTERM): the
message in hand is finished, the rest of each batch given back.

Connections per worker process: up to ``store.pool_size`` pooled, plus one per sender thread
(``--connections``, default ``delivery.smtp.connections``), plus one listening for work.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import timedelta

from digest.clock import Clock, utc_now
from digest.config import LoadedConfig
from digest.deliver import DeliveryReport, IssueDelivery
from digest.lease import WorkerLease
from digest.send import delivery_options, issue_mail
from digest.store import ISSUE_SENDING, Store
from digest.store.coordination import WorkSignal
from digest.transport import Transport, default_transport

log = logging.getLogger("digest.worker")


@dataclass
class WorkerStats:
    sent: int = 0
    results: int = 0
    issues: int = 0


def run_worker(
    loaded: LoadedConfig,
    store: Store,
    stop: threading.Event,
    *,
    connections: int | None = None,
    transport: Transport | None = None,
    clock: Clock = utc_now,
    wake: WorkSignal | None = None,
    worker_id: str | None = None,
) -> WorkerStats:
    """Deliver until ``stop`` is set. ``wake`` is interrupted by whoever sets ``stop``
    (the signal handler), so an idle worker stops at once."""
    settings = loaded.config.store
    lease_length = timedelta(seconds=settings.lease_seconds)
    wake = wake or WorkSignal(store.engine)
    stats = WorkerStats()
    generation = 0
    try:
        while not stop.is_set():
            generation += 1
            name = None if worker_id is None else f"{worker_id}/{generation}"
            with (
                WorkerLease(store, lease_length, clock=clock, worker_id=name) as lease,
                _Reaper(store, lease_length, clock),
            ):
                log.info("worker %s: waiting for work", lease.worker)
                while not stop.is_set() and lease.valid:
                    if not _round(loaded, store, lease, stop, stats, connections, transport, clock):
                        wake.wait(_idle_wait(store, clock, settings.poll_seconds))
                if not stop.is_set():  # stale or rescued: a new registration, new claims
                    log.warning("worker %s: lost its lease; registering again", lease.worker)
    finally:
        wake.close()
    return stats


class _Reaper:
    """Rescues the rows of stopped or frozen senders every quarter lease, also while this
    worker is busy with a long issue: a frozen worker's rows go back to the others soon
    after its lease ends, not when the issue's other rows are done."""

    def __init__(self, store: Store, lease: timedelta, clock: Clock) -> None:
        self.store = store
        self.lease = lease
        self.clock = clock
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._reap, name="digest-reaper", daemon=True)

    def __enter__(self) -> _Reaper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _reap(self) -> None:
        while not self._done.wait(max(self.lease.total_seconds() / 4, 0.05)):
            try:
                requeued, doubt = self.store.recover(self.clock(), self.lease)
            except Exception as exc:  # the database is busy or away: next time
                log.debug("rescue failed: %s", exc)
                continue
            if requeued or doubt:
                log.warning(
                    "rescued rows of stopped senders: %d requeued, %d in doubt", requeued, doubt
                )


def _round(
    loaded: LoadedConfig,
    store: Store,
    lease: WorkerLease,
    stop: threading.Event,
    stats: WorkerStats,
    connections: int | None,
    transport: Transport | None,
    clock: Clock,
) -> bool:
    """One pass over the issues being sent; True if anything was delivered or decided."""
    lease_length = lease.duration
    requeued, doubt = store.recover(clock(), lease_length)
    if requeued or doubt:
        log.warning("rescued rows of stopped senders: %d requeued, %d in doubt", requeued, doubt)
    before = stats.results
    for issue in store.unfinished_issues():
        if stop.is_set() or not lease.valid:
            break
        if issue.status != ISSUE_SENDING:  # paused issues wait for staff (digest send)
            continue
        options = delivery_options(loaded, issue.digest, issue.period_end, 0.0, issue.created_at)
        if connections is not None:
            options = replace(options, connections=connections)
        counted: list[str] = []
        delivery = IssueDelivery(
            issue_mail(loaded, store, issue),
            store,
            issue,
            transport or default_transport(loaded),
            options=options,
            clock=clock,
            on_result=counted.append,
            stop=stop,
            lease=lease,
        )
        report = delivery.run()
        stats.results += len(counted)
        stats.sent += counted.count("sent")
        if counted:
            stats.issues += 1
            _log_report(issue.digest, issue.period_key, report, len(counted))
    return stats.results > before


def _idle_wait(store: Store, clock: Clock, poll: float) -> float:
    """Seconds to wait for work: the poll interval, or less when a row of an issue being
    sent comes due sooner (a retry, a reader's local delivery time)."""
    now = clock()
    try:
        due = [store.next_due_at(issue.id, now) for issue in store.unfinished_issues()]
    except Exception as exc:  # the database is busy or away: poll as usual
        log.debug("cannot read the next due time: %s", exc)
        return poll
    soon = [(t - now).total_seconds() for t in due if t is not None and t > now]
    return max(min([poll, *soon]), 0.05)


def _log_report(digest: str, period: str, report: DeliveryReport, handled: int) -> None:
    counts = ", ".join(f"{count} {state}" for state, count in report.counts.items() if count)
    line = f"{digest} {period}: {handled} handled here; issue now {counts}"
    if report.paused:
        log.warning("%s; paused: %s", line, report.paused)
    elif report.error:
        log.warning("%s; %s", line, report.error)
    else:
        log.info("%s", line)
