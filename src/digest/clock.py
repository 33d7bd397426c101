"""Time by role: the real clock that stamps what happened (fetched, first seen, created,
sent). The moment an issue is *for* (``as_of``, the ``--at`` of the CLI) is a plain datetime
passed alongside; the two never stand in for each other."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)
