"""Header-value safety. Python 3.11's ``email`` package lacks the newest CR/LF checks, so every
value that reaches a header (subject, names, addresses, item titles) passes through here."""

from __future__ import annotations

import re

from digest.errors import HeaderError

_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_WHITESPACE_RUN = re.compile(r"\s+")
# Control characters that are not whitespace (C0, DEL, C1): invisible, and a header that holds
# one is defective (NonPrintableDefect).
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")


def check_header_value(field: str, value: str) -> str:
    """Reject a value that would break out of its header line."""
    if _LINE_BREAKS.search(value) or "\x00" in value:
        raise HeaderError(f"{field}: header value contains a line break: {value[:60]!r}")
    return value


def single_line(value: str) -> str:
    """Neutralise text that becomes a header (subject from item titles, a subscriber's name):
    every run of whitespace, line breaks included, becomes one space; other control
    characters are dropped."""
    return _WHITESPACE_RUN.sub(" ", _CONTROL.sub("", value)).strip()
