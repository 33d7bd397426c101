"""Deliver a frozen issue: claim rows, personalise, hand over, record the outcome.

Each delivery row moves ``pending -> sending -> sent | failed_temp | failed_perm | in_doubt``.
The moment the message data leaves is committed first (``payload_at``), so a sender killed at
any point leaves at most one row per connection in doubt; all others are either recorded as
sent or safe to send again. ``N`` connections run in threads, each claiming small batches.

One commit per message: a connection's ``sent`` mark of message k is written together with
the payload mark of message k+1 (still at most one row per connection with a payload mark
and no outcome). Claims are leased (:mod:`digest.lease`) and every mark is fenced by the
worker id: a sender whose lease went stale, or whose row was rescued, stops before sending.
"""

from __future__ import annotations

import contextlib
import functools
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from digest.clock import Clock as Clock  # re-exported for the scheduler
from digest.clock import utc_now as utc_now
from digest.errors import DeliveryError, DigestError
from digest.i18n import greeting
from digest.lease import WorkerLease
from digest.message import DotStuffed, MessageTemplate, Recipient, dot_stuff
from digest.store import (
    FAILED_PERM,
    FAILED_TEMP,
    IN_DOUBT,
    ISSUE_DONE,
    ISSUE_PAUSED,
    ISSUE_SENDING,
    PENDING,
    SENDING,
    SENT,
    WORKER_LEASE,
    DeliveryRow,
    IssueRow,
    Waiting,
    describe_error,
)
from digest.transport import (
    AuthenticationFailed,
    ConnectFailed,
    Connection,
    ConnectionLost,
    OutcomeUnknown,
    PermanentFailure,
    SenderRefused,
    TemporaryFailure,
    Transport,
)


class DeliveryLedger(Protocol):
    """The store as delivery uses it: claim rows, record each outcome, keep a worker lease."""

    def recover(self, now: datetime, lease: timedelta = ...) -> tuple[int, int]: ...
    def register_worker(self, now: datetime, worker_id: str | None = None) -> str: ...
    def heartbeat(self, worker: str, now: datetime, lease: timedelta = ...) -> bool: ...
    def unregister_worker(self, worker: str) -> None: ...
    def sender_connection(self) -> AbstractContextManager[None]: ...
    def claim(
        self, issue_id: int, worker: str, limit: int, now: datetime, lease: timedelta = ...
    ) -> list[DeliveryRow]: ...
    def release(
        self, delivery_ids: Sequence[int], error: str | None = None, worker: str | None = None
    ) -> None: ...
    def mark_payload(self, delivery_id: int, now: datetime, worker: str | None = None) -> bool: ...
    def mark_sent(
        self,
        delivery_id: int,
        now: datetime,
        worker: str | None = None,
        next_payload: int | None = None,
    ) -> bool: ...
    def mark_failed_temp(
        self, delivery_id: int, error: str, retry_at: datetime, worker: str | None = None
    ) -> bool: ...
    def mark_failed_perm(self, delivery_id: int, error: str, worker: str | None = None) -> bool: ...
    def mark_in_doubt(self, delivery_id: int, error: str, worker: str | None = None) -> bool: ...
    def set_issue_status(
        self, issue_id: int, status: str, now: datetime, note: str | None = None
    ) -> None: ...
    def counts(self, issue_id: int | None = None) -> dict[str, int]: ...
    def next_retry_at(self, issue_id: int) -> datetime | None: ...
    def waiting(self, issue_id: int, now: datetime) -> Waiting: ...
    def next_due_at(self, issue_id: int, now: datetime) -> datetime | None: ...
    def issue_status(self, issue_id: int) -> tuple[str, str | None]: ...


class RetryRules(Protocol):
    """Backoff for 4xx deferrals and when to pause (``delivery.retry`` in the config)."""

    @property
    def base_seconds(self) -> float: ...
    @property
    def max_seconds(self) -> float: ...
    @property
    def pause_after_errors(self) -> int: ...


@dataclass(frozen=True)
class IssueMail:
    """What delivery needs to know about the mail of one issue, and nothing more."""

    template: MessageTemplate  # the issue's frozen parts and shared headers
    # SMTP MAIL FROM of a delivery, given its VERP token (message.envelope_sender decides)
    envelope_sender: Callable[[str], str]
    links_url: str  # base of the unsubscribe and preferences links
    labels: dict[str, str]  # the site language's labels (the greeting)
    signer: Signer | None = None  # DKIM (delivery.dkim)
    # the issue's variants by id (rows with a variant_id send these; see digest.variants)
    variants: Mapping[int, VariantMail] = field(default_factory=dict)

    @functools.cached_property
    def own(self) -> VariantMail:
        """The issue's own rendering, as the rows without a variant send it."""
        return VariantMail(self.template, self.labels)

    def for_row(self, row: DeliveryRow) -> VariantMail:
        """The frozen parts and frame labels the row sends."""
        if row.variant_id is None:
            return self.own
        return self.variants[row.variant_id]


@dataclass(frozen=True)
class VariantMail:
    """One variant's message template and the labels of its language (the greeting)."""

    template: MessageTemplate
    labels: dict[str, str]


class Signer(Protocol):
    """Signs one finished message (DKIM): returns it with the signature header in front."""

    def sign(self, message: bytes, now: datetime) -> bytes: ...


@dataclass(frozen=True)
class DeliveryOptions:
    retry: RetryRules
    connections: int = 1
    rate_limit: float = 0.0  # messages per second over all connections; 0 = unlimited
    batch_size: int = 100  # rows per claim: a claim costs ~2 ms, a row ~0.05 ms
    wait_for_retries: float = 0.0  # seconds a run may wait for a retry or waiting row to be due
    retry_deadline: datetime | None = None  # no 4xx retries after this (the next period)
    lease: timedelta = WORKER_LEASE  # a claim's lease; the sender stops after half of it


@dataclass
class DeliveryReport:
    issue_id: int
    counts: dict[str, int]
    paused: str | None = None
    error: str | None = None
    next_retry_at: datetime | None = None
    # pending rows waiting for their reader's local delivery time (``deliver_at``): not
    # failures; the issue stays ``sending`` until they are sent too
    waiting: Waiting = field(default_factory=Waiting)

    @property
    def complete(self) -> bool:
        return not any(self.counts.get(state, 0) for state in (PENDING, SENDING, FAILED_TEMP))


class RateLimiter:
    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.next_slot = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next_slot)
            self.next_slot = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


class IssueDelivery:
    def __init__(
        self,
        mail: IssueMail,
        store: DeliveryLedger,
        issue: IssueRow,
        transport: Transport,
        *,
        options: DeliveryOptions,
        clock: Clock = utc_now,
        on_result: Callable[[str], None] | None = None,
        stop: threading.Event | None = None,
        lease: WorkerLease | None = None,
    ) -> None:
        """``lease``: a long-running worker's own (shared by the issues it sends); without
        one, :meth:`run` holds a lease of its own while it runs."""
        self.store = store
        self.issue = issue
        self.transport = transport
        self.options = options
        self.clock = clock
        self.on_result = on_result or (lambda status: None)
        self.stop = stop or threading.Event()
        self.mail = mail
        self.sender = mail.envelope_sender
        self.signer = mail.signer
        self.links_url = mail.links_url
        self.limiter = RateLimiter(self.options.rate_limit)
        self.dot_stuffed = bool(getattr(transport, "takes_dot_stuffed", False))
        self.lock = threading.Lock()
        self.consecutive_errors = 0
        self.pause_reason: str | None = None
        self.fatal: DigestError | None = None
        self.lease = lease
        self.worker = lease.worker if lease is not None else ""
        self.lease_lost = False

    # -- public -------------------------------------------------------------------------------

    def run(self) -> DeliveryReport:
        if self.issue.status not in (ISSUE_SENDING, ISSUE_PAUSED):
            return self._report()
        self.store.recover(self.clock(), self.options.lease)
        if self.issue.status == ISSUE_PAUSED:
            self.store.set_issue_status(self.issue.id, ISSUE_SENDING, self.clock())
        if self.lease is not None:
            self._run_passes()
            return self._finish()
        with WorkerLease(self.store, self.options.lease, clock=self.clock) as lease:
            self.lease, self.worker = lease, lease.worker
            try:
                self._run_passes()
            finally:
                self.lease = None
        return self._finish()

    @property
    def lease_valid(self) -> bool:
        return self.lease is None or self.lease.valid

    # -- internals ----------------------------------------------------------------------------

    def _run_passes(self) -> None:
        while True:
            self._run_pass()
            if self.fatal or self.pause_reason or self.stop.is_set() or self.lease_lost:
                return
            due = self.store.next_due_at(self.issue.id, self.clock())  # retry or local time
            if due is None:
                return
            wait = (due - self.clock()).total_seconds()
            if wait > self.options.wait_for_retries:
                return
            if self.stop.wait(max(wait, 0.0)):
                return

    def _run_pass(self) -> None:
        finished = [threading.Event() for _ in range(self.options.connections)]

        def work(done: threading.Event) -> None:
            try:
                self._work()
            finally:
                done.set()

        for n, done in enumerate(finished):
            threading.Thread(
                target=work, args=(done,), name=f"digest-sender-{n}", daemon=True
            ).start()
        # Events, not Thread.join(): a join that Ctrl-C interrupted may return at once the
        # next time (CPython), and the process would exit under a thread mid-batch.
        try:
            for done in finished:
                done.wait()
        except BaseException:  # Ctrl-C: each thread finishes the message in hand and gives
            self.stop.set()  # back the rest before the worker (and its claims) goes away
            for done in finished:
                done.wait()
            raise

    def _halted(self) -> bool:
        if not self.lease_lost and not self.lease_valid:
            self._lose_lease()
        return (
            self.stop.is_set()
            or self.pause_reason is not None
            or self.fatal is not None
            or self.lease_lost
        )

    def _lose_lease(self) -> None:
        """The lease is stale or the rows were rescued: stop every thread before it sends;
        what this worker still holds is rescued by whoever comes next."""
        with self.lock:
            if not self.lease_lost:
                self.lease_lost = True
                if self.lease is not None:
                    self.lease.abandon()
                self.fatal = self.fatal or DeliveryError(
                    "delivery stopped: the worker lost its lease (no heartbeat reached the "
                    "database for half the lease, or its rows were rescued)"
                )

    def _work(self) -> None:
        try:
            with self.store.sender_connection():
                self._work_batches()
        except Exception as exc:  # e.g. the database failed: stop all threads, report it
            reason = describe_error(exc) if isinstance(exc, SQLAlchemyError) else str(exc)
            with self.lock:
                self.fatal = self.fatal or DeliveryError(
                    f"delivery stopped: {type(exc).__name__}: {reason}"
                )

    def _work_batches(self) -> None:
        """Claim batches and send them until none is left. A row whose sending raised an
        unexpected error stays ``sending``: the next run's recovery requeues it, or marks it
        in_doubt if its data may have gone out. The rest of its batch is given back."""
        connection: Connection | None = None
        marks = _Marks(self)
        failed = False
        batch: list[DeliveryRow] = []
        index = 0
        try:
            while not self._halted():
                if self._paused_elsewhere():
                    return
                batch = self.store.claim(
                    self.issue.id,
                    self.worker,
                    self.options.batch_size,
                    self.clock(),
                    self.options.lease,
                )
                if not batch:
                    return
                for index, row in enumerate(batch):
                    if self._halted():
                        marks.flush()
                        self._release(batch[index:])
                        return
                    if connection is None:
                        try:
                            connection = self.transport.connect()
                        except AuthenticationFailed as exc:
                            self._pause(str(exc))
                            self._release(batch[index:])
                            return
                        except ConnectFailed as exc:
                            with self.lock:
                                self.fatal = self.fatal or exc
                            self._release(batch[index:], str(exc))
                            return
                    connection = self._send_one(connection, row, marks)
                batch = []
        except BaseException:
            failed = True
            # Cleanup must not replace the error that stopped us (a database outage fails
            # these too): the rows it cannot write are rescued by the next run.
            with contextlib.suppress(Exception):
                marks.flush()
            with contextlib.suppress(Exception):
                self._release(batch[index + 1 :])
            raise
        finally:
            try:
                if not failed:
                    marks.flush()  # the last message's sent mark
            finally:
                if connection is not None:
                    connection.close()

    def _release(self, rows: Sequence[DeliveryRow], error: str | None = None) -> None:
        self.store.release([r.id for r in rows], error, self.worker)

    def _send_one(
        self, connection: Connection, row: DeliveryRow, marks: _Marks
    ) -> Connection | None:
        """Send one row; returns the connection to go on with (None: reconnect)."""
        self.limiter.wait()
        try:
            now = self.clock()
            variant = self.mail.for_row(row)
            data = variant.template.build(
                self._recipient(row, variant.labels),
                message_id=row.message_id,
                date=now,
                dot_stuffed=self.dot_stuffed and self.signer is None,
            )
            if self.signer is not None:  # once per message, over what the recipient gets
                data = self.signer.sign(data, now)
                if self.dot_stuffed:
                    data = DotStuffed(dot_stuff(data))
        except DigestError as exc:  # e.g. an address that cannot go into a header
            marks.flush()
            self._fenced(
                self.store.mark_failed_perm(row.id, f"cannot build message: {exc}", self.worker)
            )
            self._result(FAILED_PERM, error=True)
            return connection
        try:
            connection.send(
                self.sender(row.verp_token), row.email, data, lambda: marks.payload(row)
            )
        except LeaseLost:  # nothing was handed over; the row is someone else's now
            self._lose_lease()
            return None  # the transport dropped the connection
        except ConnectionLost as exc:
            marks.flush()
            self._release([row], str(exc))
            self._result(PENDING, error=True)
            connection.close()
            return None
        except TemporaryFailure as exc:
            marks.flush()
            self._defer(row, str(exc))
            return connection
        except PermanentFailure as exc:
            marks.flush()
            self._fenced(self.store.mark_failed_perm(row.id, str(exc), self.worker))
            self._result(FAILED_PERM, error=True)
            return connection
        except SenderRefused as exc:  # the sender, not this recipient: nobody is charged
            self.store.release([row.id], str(exc))
            self._pause(f"the server refused the sender <{self.sender(row.verp_token)}>: {exc}")
            return connection
        except OutcomeUnknown as exc:
            marks.flush()
            self._fenced(self.store.mark_in_doubt(row.id, str(exc), self.worker))
            self._result(IN_DOUBT, error=True)
            connection.close()
            return None
        marks.sent(row)
        self._result(SENT, error=False)
        return connection

    def _fenced(self, held: bool) -> None:
        """A mark that found its row no longer this worker's: the lease is gone."""
        if not held:
            self._lose_lease()

    def _defer(self, row: DeliveryRow, error: str) -> None:
        retry = self.options.retry
        delay = min(retry.max_seconds, retry.base_seconds * 2 ** max(row.attempts - 1, 0))
        retry_at = self.clock() + timedelta(seconds=delay * random.uniform(0.8, 1.2))
        deadline = self.options.retry_deadline
        if deadline is not None and retry_at >= deadline:
            self._fenced(
                self.store.mark_failed_perm(
                    row.id, f"{error}; gave up: the next period begins", self.worker
                )
            )
            self._result(FAILED_PERM, error=True)
            return
        self._fenced(self.store.mark_failed_temp(row.id, error, retry_at, self.worker))
        self._result(FAILED_TEMP, error=True)

    def _result(self, status: str, *, error: bool) -> None:
        with self.lock:
            self.consecutive_errors = self.consecutive_errors + 1 if error else 0
            too_many = self.consecutive_errors >= self.options.retry.pause_after_errors
        self.on_result(status)
        if too_many:
            self._pause(f"{self.consecutive_errors} consecutive delivery errors")

    def _paused_elsewhere(self) -> bool:
        """Bounce intake pauses an issue whose bounce or complaint rate passed its limit;
        the senders stop at their next batch."""
        status, note = self.store.issue_status(self.issue.id)
        if status != ISSUE_PAUSED:
            return False
        with self.lock:
            self.pause_reason = self.pause_reason or note or "paused"
        return True

    def _pause(self, reason: str) -> None:
        with self.lock:
            if self.pause_reason is None:
                self.pause_reason = reason
                self.store.set_issue_status(self.issue.id, ISSUE_PAUSED, self.clock(), note=reason)

    def _recipient(self, row: DeliveryRow, labels: dict[str, str]) -> Recipient:
        return Recipient(
            email=row.email,
            name=row.name,
            unsubscribe_url=f"{self.links_url}/unsubscribe/{row.token}",
            preferences_url=f"{self.links_url}/preferences/{row.token}",
            greeting=greeting(labels, row.name),
        )

    def _finish(self) -> DeliveryReport:
        report = self._report()
        if self.pause_reason:
            report.paused = self.pause_reason
        elif report.complete:
            self.store.set_issue_status(self.issue.id, ISSUE_DONE, self.clock())
        if self.fatal:
            report.error = str(self.fatal)
        return report

    def _report(self) -> DeliveryReport:
        return DeliveryReport(
            issue_id=self.issue.id,
            counts=self.store.counts(self.issue.id),
            next_retry_at=self.store.next_retry_at(self.issue.id),
            waiting=self.store.waiting(self.issue.id, self.clock()),
        )


class LeaseLost(DeliveryError):
    """Raised by the payload hook: the row is no longer this worker's, do not send it."""


class _Marks:
    """One sender thread's marks, one commit per message: the ``sent`` mark of a message
    waits for the payload mark of the next one on the same connection and goes in its
    transaction; anything else (a failure, the end of a batch) writes it first."""

    def __init__(self, delivery: IssueDelivery) -> None:
        self.delivery = delivery
        self.unrecorded: DeliveryRow | None = None  # sent, mark not yet written

    def payload(self, row: DeliveryRow) -> None:
        delivery = self.delivery
        store, now, worker = delivery.store, delivery.clock(), delivery.worker
        if not delivery.lease_valid:
            self.flush()
            raise LeaseLost("lease stale: not sending")
        if self.unrecorded is not None:
            held = store.mark_sent(self.unrecorded.id, now, worker, next_payload=row.id)
            self.unrecorded = None
        else:
            held = store.mark_payload(row.id, now, worker)
        if not held:
            raise LeaseLost(f"{row.email}: the row was rescued from this worker; not sending")

    def sent(self, row: DeliveryRow) -> None:
        self.unrecorded = row

    def flush(self) -> None:
        if self.unrecorded is not None:
            row, self.unrecorded = self.unrecorded, None
            delivery = self.delivery
            delivery._fenced(delivery.store.mark_sent(row.id, delivery.clock(), delivery.worker))


def raise_for_report(report: DeliveryReport, digest: str) -> None:
    """Turn a paused or failed run into the one-line error the CLI prints."""
    if report.paused:
        raise DeliveryError(
            f"digest {digest}: issue paused: {report.paused}; fix it and run "
            f"'digest send {digest}' again to resume"
        )
    if report.error:
        raise DeliveryError(
            f"{report.error}; unsent messages stay queued: run 'digest send {digest}' again to resume"
        )
