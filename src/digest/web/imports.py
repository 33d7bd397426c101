"""CSV imports started in the browser: a checked file waits for the staff's go, then runs in
a background thread whose progress the import page shows."""

from __future__ import annotations

import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from digest.errors import DigestError
from digest.subscribers import ImportReport, ParsedCsv

log = logging.getLogger("digest.web")

BATCH = 1000  # rows per transaction: the progress moves every thousand rows


@dataclass
class ImportJob:
    id: str
    source: str
    parsed: ParsedCsv
    done: int = 0
    started: bool = False
    finished: bool = False
    report: ImportReport | None = None
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def total(self) -> int:
        return len(self.parsed.rows)


class ImportJobs:
    """The latest previews and imports (at most ``keep``; the oldest finished ones go first)."""

    def __init__(self, keep: int = 20) -> None:
        self.keep = keep
        self.jobs: OrderedDict[str, ImportJob] = OrderedDict()
        self.lock = threading.Lock()

    def add(self, source: str, parsed: ParsedCsv) -> ImportJob:
        job = ImportJob(secrets.token_urlsafe(12), source, parsed)
        with self.lock:
            self.jobs[job.id] = job
            while len(self.jobs) > self.keep:
                oldest = next(
                    (key for key, j in self.jobs.items() if j.finished or not j.started),
                    None,
                )
                if oldest is None:
                    break
                del self.jobs[oldest]
        return job

    def get(self, job_id: str) -> ImportJob | None:
        with self.lock:
            return self.jobs.get(job_id)

    def start(self, job: ImportJob, work: Callable[[ImportJob], ImportReport]) -> bool:
        """Run ``work`` in a thread, once per job; False if it was started before."""
        with job.lock:
            if job.started:
                return False
            job.started = True
        threading.Thread(
            target=self._run, args=(job, work), name=f"digest-import-{job.id}", daemon=True
        ).start()
        return True

    @staticmethod
    def _run(job: ImportJob, work: Callable[[ImportJob], ImportReport]) -> None:
        try:
            job.report = work(job)
        except DigestError as exc:
            job.error = str(exc)
        except Exception as exc:  # shown to staff, logged with its traceback
            log.exception("import %s failed", job.source)
            job.error = f"{type(exc).__name__}: {exc}"
        finally:
            job.finished = True
