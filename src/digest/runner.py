"""The work of ``digest run``: :class:`Runner.tick` asks the ledger what is due (see
:mod:`digest.plan`) and resumes, retries or sends it through :func:`digest.send.send_digest`."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from digest.bounces.policy import paused_for_feedback
from digest.compose import vet_issue
from digest.config import LoadedConfig
from digest.deliver import Clock, DeliveryReport, utc_now
from digest.errors import DigestError
from digest.ledger import IssueRefused, PreparedIssue, prepare_issue
from digest.notify import (
    failed_subject,
    held_hint,
    held_subject,
    notify_staff,
    paused_subject,
)
from digest.overview import report_summary
from digest.plan import due_fires, plan_catch_up
from digest.schedule import Period
from digest.send import NoSubscribers, deliver_issue, send_digest
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

PAUSED_RETRY = timedelta(minutes=15)  # a paused issue is tried again this often


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
        wake_at: Callable[[datetime], None] | None = None,
    ) -> None:
        """``wake_at`` is told, after each tick, when the next row of an unfinished issue
        comes due (a retry, a reader's local delivery time): the scheduler wakes then."""
        self.loaded = loaded
        self.store = store
        self.clock = clock
        self.transport = transport
        self.stop = stop or threading.Event()
        self.started_at = started_at or clock()
        self.paused_retry = paused_retry
        self.wake_at = wake_at
        self.lock = threading.Lock()
        self._paused_tried: dict[int, datetime] = {}
        self._waiting: set[tuple[str, str]] = set()
        self._told: set[tuple[str, str]] = set()  # (digest, notice) logged or mailed once

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
                except IssueRefused as exc:
                    self._held(name, exc)
                except NoSubscribers as exc:
                    self._once(name, str(exc), functools.partial(log.info, "%s", exc))
                except DigestError as exc:
                    log.error("%s: %s", name, exc)
                    self._notify_once(name, failed_subject, "", str(exc))
                except Exception:  # one bad digest or a database hiccup must not end the process
                    log.exception("%s: unexpected error; trying again at the next tick", name)
            self._plan_wake()
        finally:
            self.lock.release()

    def next_due(self) -> datetime | None:
        """When the next row of an unfinished issue comes due that is not due now."""
        now = self.clock()
        times = [self.store.next_due_at(issue.id, now) for issue in self.store.unfinished_issues()]
        # a retry already due but not sent (a closed send window) is the timer's: no wake-up
        # in the past, which would tick again at once
        return min((t for t in times if t is not None and t > now), default=None)

    def _plan_wake(self) -> None:
        if self.wake_at is None or self.stop.is_set():
            return
        try:
            due = self.next_due()
        except Exception:  # the timer tick looks again
            log.exception("cannot read when the next waiting message is due")
            return
        if due is not None:
            self.wake_at(due)

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
            vet=vet_issue(self.loaded, name),
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
            waiting = self.store.waiting(issue.id, now).count if counts[PENDING] else 0
            due = counts[PENDING] - waiting  # pending rows whose local time has come
            finished = not (counts[PENDING] or counts[SENDING] or counts[FAILED_TEMP])
            if not (due or counts[SENDING] or retry_due or finished):
                return  # only retries, or readers' local times, that are not due yet
            log.info(
                "%s: issue %s unfinished (%d due, %d interrupted, %d retry due, %d waiting for "
                "their local time); resuming",
                name,
                issue.period_key,
                due,
                counts[SENDING],
                counts[FAILED_TEMP] if retry_due else 0,
                waiting,
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
        summary = report_summary(counts)
        key = issue.period_key
        if report.paused:
            self._paused_tried[issue.id] = self.clock()  # next try after ``paused_retry``
            log.warning("%s: issue %s paused: %s (%s)", name, key, report.paused, summary)
            self._notify_once(name, paused_subject, key, f"{report.paused} ({summary})")
        elif report.error:
            log.error("%s: issue %s: %s (%s)", name, key, report.error, summary)
            self._notify_once(name, failed_subject, key, f"{key}: {report.error} ({summary})")
        elif report.complete:
            log.info("%s: issue %s done: %s", name, key, summary)
        elif self.stop.is_set():
            log.info("%s: issue %s stopped: %s; resumes at the next start", name, key, summary)
        elif report.waiting and report.waiting.first is not None:
            log.info(
                "%s: issue %s: %s; %d message(s) wait for their local time, next %s",
                name,
                key,
                summary,
                report.waiting.count,
                report.waiting.first.isoformat(timespec="seconds"),
            )
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

    def _held(self, name: str, refused: IssueRefused) -> None:
        """Error findings hold a due issue: nothing is created; the next tick tries again
        (fixed content goes out then). Staff hear of it once per finding set."""
        details = "\n".join(str(problem) for problem in refused.problems) or str(refused)
        log.warning("%s: %s", name, refused)
        hint = held_hint(self.loaded, name)
        self._notify_once(name, held_subject, refused.period_key, f"{details}\n\n{hint}")

    def _notify_once(
        self,
        name: str,
        subject_of: Callable[[LoadedConfig, str, str], str],
        period: str,
        details: str,
    ) -> None:
        subject = subject_of(self.loaded, name, period)

        def send() -> None:
            notify_staff(self.loaded, name, subject, details, self.clock(), self.transport)

        self._once(name, f"{subject}\n{details}", send)

    def _once(self, name: str, notice: str, action: Callable[[], None]) -> None:
        if (name, notice) in self._told:
            return
        self._told.add((name, notice))
        action()
