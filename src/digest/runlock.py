"""One ``digest run`` per store: an ``fcntl`` lock on ``<database>.lock`` next to a SQLite file."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from digest.errors import DigestError
from digest.store import (
    sqlite_path,
)

log = logging.getLogger("digest.run")


class RunLock:
    """An exclusive ``fcntl`` lock on ``<sqlite file>.lock``, held while ``digest run`` runs;
    the kernel drops it when the process dies, so a crash never leaves a stale lock."""

    def __init__(self, path: Path | None, fd: int | None) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def acquire(cls, database_url: str) -> RunLock:
        database = sqlite_path(database_url)
        if database is None:  # PostgreSQL: the leader's advisory lock (digest.leader)
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
