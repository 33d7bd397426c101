"""A sender's lease on the rows it claimed: registration, heartbeat, and the fence check.

Every claim carries its owner and a lease end; the heartbeat renews both every sixth of the
lease. A sender whose last *successful* heartbeat is older than half the lease stops sending
(:attr:`WorkerLease.valid`), long before anyone may rescue its rows (after the whole lease):
a process frozen by a GC pause, SIGSTOP or a VM migration wakes up, finds its lease stale
and drops its batch instead of sending it. Should it still try, every mark is fenced in the
store (``claimed_by = me AND status = 'sending'``) and a mark that finds its row rescued makes
the sender stop before the message data leaves.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol

from digest.clock import Clock, utc_now


class LeaseLedger(Protocol):
    """The store as a lease uses it."""

    def register_worker(self, now: datetime, worker_id: str | None = None) -> str: ...
    def heartbeat(self, worker: str, now: datetime, lease: timedelta = ...) -> bool: ...
    def unregister_worker(self, worker: str) -> None: ...


class WorkerLease:
    """``with WorkerLease(store, duration) as lease:`` registers a worker id and keeps its
    claims alive in a background thread until the block ends."""

    def __init__(
        self,
        store: LeaseLedger,
        duration: timedelta,
        *,
        clock: Clock = utc_now,
        worker_id: str | None = None,
    ) -> None:
        """``worker_id``: the id to register (default: host:pid:random); one id is never
        registered twice, or a new incarnation would renew the leases of an old one."""
        self.store = store
        self.worker_id = worker_id
        self.duration = duration
        self.clock = clock
        self.worker = ""
        self.lost = False  # the store declared this worker dead: its rows are not its own
        self._renewed_at = 0.0  # time.monotonic() of the last successful heartbeat
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def valid(self) -> bool:
        """May this worker still send? Not if its rows were rescued, nor if the last heartbeat
        that reached the store is older than half the lease (monotonic: counts while the
        process is stopped)."""
        age = time.monotonic() - self._renewed_at
        return not self.lost and age < self.duration.total_seconds() / 2

    def __enter__(self) -> WorkerLease:
        self.worker = self.store.register_worker(self.clock(), self.worker_id)
        self._renewed_at = time.monotonic()
        self._done.clear()
        self._thread = threading.Thread(target=self._beat, name="digest-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        # Cleanup must not hide why the block ended (a database outage raises here too);
        # the rows of a worker that could not unregister are rescued when its lease ends.
        with contextlib.suppress(Exception):
            self.store.unregister_worker(self.worker)

    def abandon(self) -> None:
        """Stop renewing: this worker found its lease stale or a row taken. Its claims must
        age out (or go with its unregistration) so that others rescue them; the next
        registration gets a new id."""
        self.lost = True

    def renew(self) -> None:
        """One heartbeat now (the thread calls it every sixth of the lease)."""
        try:
            alive = self.store.heartbeat(self.worker, self.clock(), self.duration)
        except Exception:  # a busy or unreachable database: the lease ages, nothing else
            return
        if alive:
            self._renewed_at = time.monotonic()
        else:
            self.lost = True

    def _beat(self) -> None:
        interval = max(self.duration.total_seconds() / 6, 0.05)
        while not self._done.wait(interval) and not self.lost:
            self.renew()
