"""Delivery rows: claims, outcome marks, workers and crash recovery."""

from __future__ import annotations

import os
import secrets
import socket
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.pool import StaticPool

from digest.store._issues import IssueStore
from digest.store.rows import DeliveryRow, IssueRow, Waiting
from digest.store.schema import (
    DELIVERY_STATES,
    FAILED_PERM,
    FAILED_TEMP,
    IN_DOUBT,
    PENDING,
    SENDING,
    SENT,
    SKIPPED,
    SUBSCRIBER_ACTIVE,
    SUPPRESSED_STATES,
    WORKER_LEASE,
    deliveries,
    issues,
    subscribers,
    subscriptions,
    workers,
)


class DeliveryStore(IssueStore):
    """Builds on the issues: in-doubt rows are reported with their issue."""

    def claim(
        self,
        issue_id: int,
        worker: str,
        limit: int,
        now: datetime,
        lease: timedelta = WORKER_LEASE,
    ) -> list[DeliveryRow]:
        """Take up to ``limit`` due deliveries for this worker until ``now + lease`` (the
        worker's heartbeat extends it). Recipients who unsubscribed meanwhile are marked
        skipped instead. SQLite serialises claims with BEGIN IMMEDIATE; PostgreSQL uses
        FOR UPDATE SKIP LOCKED so several workers never take the same row."""
        # Pending rows to send at once first, then pending rows whose local time has come
        # (``not_before``), then due retries: each an index range of ``ix_deliveries_claim``
        # read in its order (an OR of them would scan every row of the issue, sent ones and
        # ones still waiting included).
        pending = and_(deliveries.c.issue_id == issue_id, deliveries.c.status == PENDING)
        for due in (
            and_(pending, deliveries.c.not_before.is_(None)),
            and_(pending, deliveries.c.not_before <= now),
            and_(
                deliveries.c.issue_id == issue_id,
                deliveries.c.status == FAILED_TEMP,
                deliveries.c.next_attempt_at <= now,
            ),
        ):
            claimed = self._claim(due, issue_id, worker, limit, now + lease)
            if claimed:
                return claimed
        return []

    def _claim(
        self, due: Any, issue_id: int, worker: str, limit: int, lease_until: datetime
    ) -> list[DeliveryRow]:
        query = (
            select(deliveries, subscribers.c.status.label("subscriber_status"), subscribers.c.token)
            .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
            .join(
                subscriptions,
                and_(
                    subscriptions.c.subscriber_id == deliveries.c.subscriber_id,
                    subscriptions.c.digest
                    == select(issues.c.digest).where(issues.c.id == issue_id).scalar_subquery(),
                ),
                isouter=True,
            )
            .add_columns(subscriptions.c.digest.label("still_subscribed"))
            .where(due)
            .order_by(deliveries.c.not_before, deliveries.c.id)  # the index's order
            .limit(limit)
        )
        if not self.is_sqlite:
            query = query.with_for_update(skip_locked=True, of=deliveries)
        with self.begin() as conn:
            wanted: list[Any] = []
            while not wanted:
                rows = conn.execute(query).all()
                if not rows:
                    return []
                wanted = [
                    r
                    for r in rows
                    if r.subscriber_status == SUBSCRIBER_ACTIVE and r.still_subscribed
                ]
                gone = [
                    r
                    for r in rows
                    if not (r.subscriber_status == SUBSCRIBER_ACTIVE and r.still_subscribed)
                ]
                # Skip them and look further: a batch of leavers is not the end. Bounced and
                # complained addresses are skipped too (suppressed after the issue began).
                for reason in {_skip_reason(r.subscriber_status) for r in gone}:
                    conn.execute(
                        update(deliveries)
                        .where(
                            deliveries.c.id.in_(
                                [r.id for r in gone if _skip_reason(r.subscriber_status) == reason]
                            )
                        )
                        .values(status=SKIPPED, last_error=reason)
                    )
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id.in_([r.id for r in wanted]))
                .values(
                    status=SENDING,
                    claimed_by=worker,
                    lease_until=lease_until,
                    attempts=deliveries.c.attempts + 1,
                )
            )
        return [  # as the update left them (same transaction: nobody changed them since)
            DeliveryRow(
                id=r.id,
                issue_id=r.issue_id,
                subscriber_id=r.subscriber_id,
                email=r.email,
                name=r.name,
                message_id=r.message_id,
                status=SENDING,
                attempts=r.attempts + 1,
                token=r.token,
                verp_token=r.verp_token or "",
                variant_id=r.variant_id,
            )
            for r in wanted
        ]

    def mark_payload(self, delivery_id: int, now: datetime, worker: str | None = None) -> bool:
        """Recorded (committed) just before the message data goes out: after a crash a row
        with this mark and no outcome is in doubt, one without it is safe to send again.

        With ``worker`` the mark is fenced: it holds only while the row is still this
        worker's claim (``sending``, not rescued meanwhile). False: do not send it."""
        sql = "UPDATE deliveries SET payload_at = {p} WHERE id = {p}"
        params: tuple[Any, ...] = (self._bind_time(now), delivery_id)
        if worker is not None:
            sql += _FENCE
            params += (worker, SENDING)
        return self._fast_update((sql, params)) == [1]

    def mark_sent(
        self,
        delivery_id: int,
        now: datetime,
        worker: str | None = None,
        next_payload: int | None = None,
    ) -> bool:
        """Record a message as sent. With ``next_payload`` the payload mark of the same
        connection's next message goes in the same transaction: one commit per message,
        and still at most one row per connection with a payload mark and no outcome.
        With ``worker`` both marks are fenced: a sent mark that finds its row rescued
        changes nothing (the row stays in doubt, honestly). Returns whether every mark held;
        False with ``next_payload``: do not send the next message."""
        sent = (
            "UPDATE deliveries SET status = {p}, sent_at = {p}, claimed_by = NULL, "
            "lease_until = NULL, last_error = NULL WHERE id = {p}"
        )
        sent_params: tuple[Any, ...] = (SENT, self._bind_time(now), delivery_id)
        if worker is not None:
            sent += _FENCE
            sent_params += (worker, SENDING)
        statements = [(sent, sent_params)]
        if next_payload is not None:
            payload = "UPDATE deliveries SET payload_at = {p} WHERE id = {p}"
            payload_params: tuple[Any, ...] = (self._bind_time(now), next_payload)
            if worker is not None:
                payload += _FENCE
                payload_params += (worker, SENDING)
            statements.append((payload, payload_params))
        return all(count == 1 for count in self._fast_update(*statements))

    def _bind_time(self, value: datetime) -> Any:
        return _BIND_TIME[self.engine.dialect.name](value)

    @contextmanager
    def sender_connection(self) -> Iterator[None]:
        """Within this block the calling thread's marks use one driver connection of its
        own, outside the pool: no checkout per mark, and no thread ever waits for the pool
        while holding a connection. (An in-memory database has only its one connection.)"""
        if isinstance(self.engine.pool, StaticPool):
            yield
            return
        pooled = self.engine.raw_connection()  # connected as the engine connects: pragmas,
        pooled.detach()  # session options; then out of the pool, closed by this block
        raw = pooled.dbapi_connection
        assert raw is not None
        if not self.is_sqlite and not self.synchronous_commit:
            cursor = raw.cursor()
            cursor.execute("SET synchronous_commit = off")
            cursor.close()
            raw.commit()
        self._local.raw = raw
        try:
            yield
        finally:
            self._local.raw = None
            raw.close()

    def _fast_update(self, *statements: tuple[str, tuple[Any, ...]]) -> list[int]:
        """UPDATEs through the DBAPI driver, committed together before it returns; the
        row count of each. The marks of every message are the sender's hot path:
        SQLAlchemy's statement building and execution context cost ~0.2 ms each, the driver
        ~0.02 ms. Single-statement writes need no BEGIN IMMEDIATE (no lock upgrade)."""
        placeholder = _PLACEHOLDERS.get(self.engine.dialect.paramstyle)
        if placeholder is None:  # an exotic driver: the portable way
            with self.begin() as conn:
                return [
                    int(conn.exec_driver_sql(sql.format(p="?"), params).rowcount)
                    for sql, params in statements
                ]
        own = getattr(self._local, "raw", None)
        raw = own if own is not None else self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                counts = []
                for sql, params in statements:
                    cursor.execute(sql.format(p=placeholder), params)
                    counts.append(int(cursor.rowcount))
                raw.commit()
                return counts
            except BaseException:
                raw.rollback()
                raise
            finally:
                cursor.close()
        finally:
            if own is None:
                raw.close()  # back to the pool

    def mark_failed_temp(
        self, delivery_id: int, error: str, retry_at: datetime, worker: str | None = None
    ) -> bool:
        return self._update_delivery(
            delivery_id,
            worker,
            status=FAILED_TEMP,
            last_error=error,
            next_attempt_at=retry_at,
            claimed_by=None,
            lease_until=None,
            payload_at=None,
        )

    def mark_failed_perm(self, delivery_id: int, error: str, worker: str | None = None) -> bool:
        return self._update_delivery(
            delivery_id, worker, status=FAILED_PERM, last_error=error, claimed_by=None,
            lease_until=None,
        )  # fmt: skip

    def mark_in_doubt(self, delivery_id: int, error: str, worker: str | None = None) -> bool:
        return self._update_delivery(
            delivery_id, worker, status=IN_DOUBT, last_error=error, claimed_by=None,
            lease_until=None,
        )  # fmt: skip

    def release(
        self, delivery_ids: Sequence[int], error: str | None = None, worker: str | None = None
    ) -> None:
        """Give claimed rows back untouched (nothing was handed over): pending again. With
        ``worker``, only rows that are still this worker's claim."""
        if not delivery_ids:
            return
        condition = and_(deliveries.c.id.in_(delivery_ids), deliveries.c.status == SENDING)
        if worker is not None:
            condition = and_(condition, deliveries.c.claimed_by == worker)
        with self.begin() as conn:
            conn.execute(
                update(deliveries)
                .where(condition)
                .values(
                    status=PENDING,
                    claimed_by=None,
                    lease_until=None,
                    payload_at=None,
                    last_error=error,
                    attempts=deliveries.c.attempts - 1,
                )
            )

    def _update_delivery(self, delivery_id: int, worker: str | None, **values: Any) -> bool:
        """One row's outcome; with ``worker`` fenced (still its claim, still ``sending``).
        Returns whether the row changed."""
        condition = deliveries.c.id == delivery_id
        if worker is not None:
            condition = and_(
                condition, deliveries.c.claimed_by == worker, deliveries.c.status == SENDING
            )
        with self.begin() as conn:
            return bool(conn.execute(update(deliveries).where(condition).values(**values)).rowcount)

    def counts(self, issue_id: int | None = None) -> dict[str, int]:
        query = select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
        if issue_id is not None:
            query = query.where(deliveries.c.issue_id == issue_id)
        with self.engine.connect() as conn:
            found = {status: int(count) for status, count in conn.execute(query)}
        return {status: found.get(status, 0) for status in DELIVERY_STATES}

    def next_retry_at(self, issue_id: int) -> datetime | None:
        with self.engine.connect() as conn:
            value: datetime | None = conn.execute(
                select(func.min(deliveries.c.next_attempt_at)).where(
                    deliveries.c.issue_id == issue_id, deliveries.c.status == FAILED_TEMP
                )
            ).scalar()
        return (
            None if value is None else value.replace(tzinfo=UTC) if value.tzinfo is None else value
        )

    def next_due_at(self, issue_id: int, now: datetime) -> datetime | None:
        """When the issue's next row comes due that is not due at ``now``: a deferred retry
        or a row waiting for its reader's local time (None: neither)."""
        with self.engine.connect() as conn:  # the first entry of an index range
            first = conn.execute(
                select(deliveries.c.not_before)
                .where(
                    deliveries.c.issue_id == issue_id,
                    deliveries.c.status == PENDING,
                    deliveries.c.not_before > now,
                )
                .order_by(deliveries.c.not_before)
                .limit(1)
            ).scalar()
        times = [self.next_retry_at(issue_id), _aware(first)]
        return min((t for t in times if t is not None), default=None)

    def waiting(self, issue_id: int, now: datetime) -> Waiting:
        """The issue's pending rows whose not-before time is still ahead of ``now``: one
        range of the claim index, however many rows went out before."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    func.count(),
                    func.min(deliveries.c.not_before),
                    func.max(deliveries.c.not_before),
                ).where(
                    deliveries.c.issue_id == issue_id,
                    deliveries.c.status == PENDING,
                    deliveries.c.not_before > now,
                )
            ).one()
        count, first, last = row
        return Waiting(int(count), _aware(first), _aware(last)) if count else Waiting()

    def in_doubt(self, digest: str | None = None) -> list[tuple[IssueRow, DeliveryRow]]:
        query = (
            select(deliveries, subscribers.c.token, issues.c.digest.label("issue_digest"))
            .join(issues, issues.c.id == deliveries.c.issue_id)
            .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
            .where(deliveries.c.status == IN_DOUBT)
            .order_by(deliveries.c.id)
        )
        if digest:
            query = query.where(issues.c.digest == digest)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            (
                self.issue_by_id(r.issue_id),
                DeliveryRow(
                    r.id,
                    r.issue_id,
                    r.subscriber_id,
                    r.email,
                    r.name,
                    r.message_id,
                    r.status,
                    r.attempts,
                    r.token,
                ),
            )
            for r in rows
        ]

    # -- workers and crash recovery

    def register_worker(self, now: datetime, worker_id: str | None = None) -> str:
        """A new worker row (its heartbeat is its proof of life); returns its id."""
        worker = worker_id or new_worker_id()
        with self.begin() as conn:
            conn.execute(
                insert(workers).values(
                    id=worker, host=socket.gethostname(), pid=os.getpid(), heartbeat_at=now
                )
            )
        return worker

    def heartbeat(self, worker: str, now: datetime, lease: timedelta = WORKER_LEASE) -> bool:
        """The worker is alive: all its claims' leases run until ``now + lease`` (its row's
        heartbeat is their common lease; no delivery row is written, so a heartbeat never
        waits for, or deadlocks with, the marks of its own senders). False if the worker
        was declared dead meanwhile (its rows rescued): it must stop sending."""
        with self.begin() as conn:
            alive = conn.execute(
                update(workers).where(workers.c.id == worker).values(heartbeat_at=now)
            ).rowcount
        return bool(alive)

    def unregister_worker(self, worker: str) -> None:
        with self.begin() as conn:
            conn.execute(delete(workers).where(workers.c.id == worker))

    def recover(self, now: datetime, lease: timedelta = WORKER_LEASE) -> tuple[int, int]:
        """Rescue rows left ``sending`` by a dead worker: back to pending if their data never
        went out, ``in_doubt`` if it may have. Returns (requeued, in_doubt).

        A worker is dead when its last heartbeat is older than ``lease`` (it stops sending
        itself after half of that), or when it ran on this host and its process is gone.
        A live process id alone proves nothing (a container restarted as PID 1). Reads only
        the partial index of ``sending`` rows and the workers table, never the history."""
        host = socket.gethostname()
        with self.begin() as conn:
            live = set()
            for row in conn.execute(select(workers)):
                fresh = row.heartbeat_at > now - lease
                gone = row.host == host and not _pid_alive(row.pid)
                if fresh and not gone:
                    live.add(row.id)
                else:
                    conn.execute(delete(workers).where(workers.c.id == row.id))
            stale = and_(
                deliveries.c.status == SENDING,
                or_(
                    deliveries.c.claimed_by.is_(None),
                    deliveries.c.claimed_by.not_in(live or {""}),
                ),
            )
            if not self.is_sqlite:  # lock them in id order, as senders' marks do: no deadlock
                conn.execute(
                    select(deliveries.c.id).where(stale).order_by(deliveries.c.id).with_for_update()
                ).all()
            doubt = conn.execute(
                update(deliveries)
                .where(stale, deliveries.c.payload_at.is_not(None))
                .values(
                    status=IN_DOUBT,
                    claimed_by=None,
                    lease_until=None,
                    last_error="sender stopped while handing over the message; not re-sent",
                )
            ).rowcount
            requeued = conn.execute(
                update(deliveries)
                .where(stale, deliveries.c.payload_at.is_(None))
                .values(
                    status=PENDING,
                    claimed_by=None,
                    lease_until=None,
                    attempts=deliveries.c.attempts - 1,
                )
            ).rowcount
        return int(requeued), int(doubt)


# A mark that holds only for the row's current claim (fencing of a worker rescued meanwhile).
_FENCE = " AND claimed_by = {p} AND status = {p}"
# The DBAPI placeholder per paramstyle, and a datetime as the store writes it (naive UTC;
# SQLite as SQLAlchemy's text format) for the raw-SQL hot path (Store._fast_update).
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
_BIND_TIME: defaultdict[str, Callable[[datetime], Any]] = defaultdict(
    lambda: lambda value: value.astimezone(UTC).replace(tzinfo=None),
    sqlite=lambda value: value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
)


def new_worker_id() -> str:
    """host:pid:random: unique, and readable in pg_stat_activity (application_name)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _aware(value: datetime | str | None) -> datetime | None:
    """An aggregate's datetime (SQLite hands back min/max as text, bypassing the column
    type) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _skip_reason(subscriber_status: str) -> str:
    if subscriber_status in SUPPRESSED_STATES:
        return f"suppressed before sending: {subscriber_status}"
    return "unsubscribed before sending"
