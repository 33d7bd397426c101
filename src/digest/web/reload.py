"""Live reload for the preview: one watchfiles thread, many Server-Sent-Event listeners."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import watchfiles

log = logging.getLogger("digest.web")

KEEPALIVE_SECONDS = 15.0


class ChangeWatcher:
    """Watches content folders, templates and the config file; wakes every listener on a
    change. ``generation`` counts the changes seen so far. A folder that does not exist yet
    (no ``templates/`` before the first override) is watched through its parent, and only
    changes under the wanted paths count (not the database next to the config)."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self.wanted = sorted({path.absolute() for path in paths})
        watch = {path if path.exists() else path.parent for path in self.wanted}
        self.paths = sorted(path for path in watch if path.exists())
        self.generation = 0
        self._listeners: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.paths or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="digest-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        try:
            for _changes in watchfiles.watch(
                *self.paths,
                watch_filter=self._relevant,
                stop_event=self._stop,
                debounce=400,
                step=50,
                raise_interrupt=False,
            ):
                self.notify()
        except Exception:  # a watcher that dies must not take the server with it
            log.exception("file watcher stopped")

    def _relevant(self, _change: watchfiles.Change, name: str) -> bool:
        path = Path(name)
        return any(path == wanted or wanted in path.parents for wanted in self.wanted)

    def notify(self) -> None:
        with self._lock:
            self.generation += 1
            listeners = list(self._listeners)
        for loop, event in listeners:
            loop.call_soon_threadsafe(event.set)

    async def events(self) -> AsyncIterator[str]:
        """Server-Sent Events: ``reload`` on every change, a comment now and then."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        entry = (loop, event)
        with self._lock:
            self._listeners.add(entry)
        try:
            yield f"retry: 1000\nevent: hello\ndata: {self.generation}\n\n"
            while True:
                try:
                    await asyncio.wait_for(event.wait(), timeout=KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                event.clear()
                yield f"event: reload\ndata: {self.generation}\n\n"
        finally:
            with self._lock:
                self._listeners.discard(entry)
