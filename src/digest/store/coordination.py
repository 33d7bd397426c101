"""Processes sharing one PostgreSQL store: one leader, and a wake-up when work arrives.

- :class:`Leadership`: ``pg_try_advisory_lock`` held on a connection of its own, kept alive
  by a ping and TCP keepalives. The server drops the lock the moment that session ends (the
  process died, the network went away), so a standby's next try takes over. The holder that
  cannot ping any more must assume it lost the lock and stop leading at once.
- :class:`WorkSignal`: ``NOTIFY digest_work`` when an issue is enqueued; workers ``LISTEN``
  and wake at once. On SQLite (one machine, no server) it is a plain timed wait: workers poll.

Both use a driver connection outside the store's pool, in autocommit mode: a session that
holds a lock or listens must never sit idle in a transaction.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from sqlalchemy import Engine

from digest.store._base import PG_SESSION_OPTIONS

CHANNEL = "digest_work"
# Advisory lock keys (bigint): "digest" + a number per role.
LEADER_LOCK = 0x64_69_67_65_73_74_00_02


def _own_connection(engine: Engine, application_name: str) -> Any:
    """A new psycopg connection like the engine's (same URL, session options), autocommit."""
    import psycopg

    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    options = " ".join(f"-c {key}={value}" for key, value in PG_SESSION_OPTIONS.items())
    return psycopg.connect(
        url,
        autocommit=True,
        application_name=application_name[:63],
        options=options,
        connect_timeout=10,
        keepalives=1,  # a vanished peer is noticed in ~25 s, not hours
        keepalives_idle=10,
        keepalives_interval=5,
        keepalives_count=3,
    )


class Leadership:
    """One leader among the ``digest run`` processes of a PostgreSQL store."""

    def __init__(self, engine: Engine, application_name: str, key: int = LEADER_LOCK) -> None:
        self.engine = engine
        self.application_name = application_name
        self.key = key
        self._conn: Any = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True if this process leads now. A database that
        does not answer counts as not acquired (try again later)."""
        if self._conn is not None:
            return self.alive()
        try:
            conn = _own_connection(self.engine, self.application_name)
        except Exception:
            return False
        try:
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        except Exception:
            conn.close()
            return False
        if got and got[0]:
            self._conn = conn
            return True
        conn.close()
        return False

    def alive(self) -> bool:
        """Ping the lock's session; False (and the lock given up) if it is gone."""
        if self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1")
        except Exception:
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(Exception):  # the session ends below, and the lock with it
            self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        with contextlib.suppress(Exception):
            conn.close()


class WorkSignal:
    """Wake-ups for workers: LISTEN/NOTIFY on PostgreSQL, a timed wait on SQLite."""

    def __init__(self, engine: Engine, application_name: str = "digest") -> None:
        self.engine = engine
        self.application_name = application_name
        self.postgres = engine.dialect.name == "postgresql"
        self._listener: Any = None
        self._stop = threading.Event()

    def notify(self) -> None:
        """Tell every listening worker that there is new work (no-op on SQLite)."""
        if not self.postgres:
            return
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"NOTIFY {CHANNEL}")

    def wait(self, timeout: float) -> bool:
        """Block until a notification, :meth:`interrupt`, or ``timeout`` seconds; True if
        woken early. Falls back to the timed wait while the database is unreachable."""
        if self.postgres and self._listen():
            try:
                deadline = time.monotonic() + timeout
                while not self._stop.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    for _ in self._listener.notifies(timeout=min(left, 1.0), stop_after=1):
                        return True
                return True
            except Exception:
                self._close_listener()
        return self._stop.wait(timeout)

    def interrupt(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._close_listener()

    def _listen(self) -> bool:
        if self._listener is not None:
            return True
        try:
            self._listener = _own_connection(self.engine, self.application_name)
            self._listener.execute(f"LISTEN {CHANNEL}")
        except Exception:
            self._close_listener()
            return False
        return True

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                listener.close()
