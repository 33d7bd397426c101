"""One leading ``digest run`` per PostgreSQL store, and standbys that take over.

The leader holds :class:`digest.store.coordination.Leadership` (a session advisory lock on a
connection of its own) and pings it every few seconds; when the ping fails it must assume a
standby leads now and stop at once. A standby tries the lock every ``interval`` seconds: when
the leader dies, its session ends, the server drops the lock and the standby's next try wins.
(On SQLite one machine runs everything: the ``fcntl`` lock file of :mod:`digest.runlock`.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from digest.store.coordination import Leadership

log = logging.getLogger("digest.run")

STANDBY_INTERVAL = 10.0  # seconds between a standby's tries: takeover well within a minute
PING_INTERVAL = 5.0


def wait_for_leadership(
    engine: Engine, name: str, stop: threading.Event, interval: float = STANDBY_INTERVAL
) -> Leadership | None:
    """Block until this process leads (the lock is its) or ``stop`` is set (None)."""
    leadership = Leadership(engine, name)
    announced = False
    while not stop.is_set():
        if leadership.try_acquire():
            log.info("digest run: leading (PostgreSQL advisory lock, session %s)", name)
            return leadership
        if not announced:
            log.info(
                "digest run: standing by: another 'digest run' leads this store; taking "
                "over when it stops (trying every %gs)",
                interval,
            )
            announced = True
        stop.wait(interval)
    return None


class LeaderWatch:
    """Pings the lock's session; calls ``on_lost`` once if it is gone."""

    def __init__(
        self,
        leadership: Leadership,
        on_lost: Callable[[], None],
        interval: float = PING_INTERVAL,
    ) -> None:
        self.leadership = leadership
        self.on_lost = on_lost
        self.interval = interval
        self.lost = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="digest-leader", daemon=True)

    def start(self) -> LeaderWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._done.wait(self.interval):
            if not self.leadership.alive():
                self.lost = True
                log.error(
                    "digest run: lost the leader lock (database connection gone); stopping "
                    "so that one scheduler runs: a standby takes over"
                )
                self.on_lost()
                return
