"""Log lines of long-running commands (``digest run``): times with their zone.

``2026-12-01T08:00:03+01:00 INFO weekly: sent 120``: the site's time zone, with its offset,
so a line reads the same on a server that runs in UTC and on a laptop that does not.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, tzinfo

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class ZonedFormatter(logging.Formatter):
    def __init__(self, timezone: tzinfo, fmt: str = LOG_FORMAT) -> None:
        super().__init__(fmt)
        self.timezone = timezone

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, self.timezone).isoformat(timespec="seconds")


def setup_logging(timezone: tzinfo, *, debug: bool = False) -> None:
    """A stderr handler on the root logger, as ``logging.basicConfig`` installs one (so not
    when the root logger has handlers already, e.g. under a test runner); APScheduler's
    chatter only from warnings up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ZonedFormatter(timezone))
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, handlers=[handler])
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
