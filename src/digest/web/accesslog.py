"""The access log without secrets: uvicorn's log configuration with a filter that blanks the
tokens of unsubscribe, preferences and confirmation links and of the one-time login link.

A token in a log is a key to someone's subscription (or to the staff pages) for whoever reads
the log; the request line keeps everything else (method, route, status, client).
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

REDACTED = "[token]"
# /unsubscribe/<token>, /preferences/<token>, /confirm/<token> (and anything after it).
_TOKEN_PATH = re.compile(r"(/(?:unsubscribe|preferences|confirm)/)[^?#\s\"]+")
# ?token=... or &token=... (the login link), quoted or not.
_TOKEN_QUERY = re.compile(r"([?&]token=)[^&#\s\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with every link token replaced by ``[token]``."""
    return _TOKEN_QUERY.sub(r"\1" + REDACTED, _TOKEN_PATH.sub(r"\1" + REDACTED, text))


class RedactTokens(logging.Filter):
    """Rewrites a record's message and string arguments through :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's default logging setup, with :class:`RedactTokens` on its loggers and
    handlers (pass as ``log_config=``)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_tokens": {"()": f"{__name__}.RedactTokens"}}
    for section in ("handlers", "loggers"):
        for entry in config[section].values():
            entry["filters"] = [*entry.get("filters", []), "redact_tokens"]
    return config
