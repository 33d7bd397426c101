"""Background jobs for staff actions: one at a time per digest, their outcome kept for the
dashboard."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime

from digest.errors import DigestError
from digest.transport import TransportOutcome

log = logging.getLogger("digest.web")


class Jobs:
    """Background sends, one at a time per digest; their outcome is shown on the dashboard."""

    def __init__(self, texts: Mapping[str, str], clock: Callable[[], datetime]) -> None:
        self.texts = texts
        self.clock = clock
        self.lock = threading.Lock()
        self.running: dict[str, threading.Thread] = {}
        self.log: deque[tuple[datetime, str]] = deque(maxlen=20)

    def start(self, digest: str, work: Callable[[], str]) -> bool:
        with self.lock:
            current = self.running.get(digest)
            if current is not None and current.is_alive():
                return False
            thread = threading.Thread(
                target=self._run, args=(digest, work), name=f"digest-job-{digest}", daemon=True
            )
            self.running[digest] = thread
        thread.start()
        return True

    def _run(self, digest: str, work: Callable[[], str]) -> None:
        try:
            message = work()
        except (DigestError, TransportOutcome) as exc:
            message = self.texts["job_failed"].format(digest=digest, error=exc)
        except Exception as exc:  # shown to staff, logged with its traceback
            log.exception("job for %s failed", digest)
            error = f"{type(exc).__name__}: {exc}"
            message = self.texts["job_failed"].format(digest=digest, error=error)
        self.note(message)

    def note(self, message: str) -> None:
        log.info("%s", message)
        with self.lock:
            self.log.appendleft((self.clock(), message))

    def messages(self) -> list[tuple[datetime, str]]:
        with self.lock:
            return list(self.log)

    def wait(self, timeout: float) -> None:
        with self.lock:
            threads = list(self.running.values())
        for thread in threads:
            thread.join(timeout)
