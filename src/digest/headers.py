"""Header-value safety. Python 3.11's ``email`` package lacks the newest CR/LF checks, so every
value that reaches a header (subject, names, addresses, item titles) passes through here."""

from __future__ import annotations

import contextlib
import re
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.utils import parseaddr

from digest.errors import HeaderError

NAME_MAX = 100  # characters of a person's name in a header; longer ones are cut
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


def parse_mailbox(field: str, value: str) -> tuple[str, str]:
    """``Name <addr>`` -> (name, addr); rejects what is not an address. A name written as an
    RFC 2047 encoded-word is decoded; one that does not decode is an error that says what to
    write instead (it used to go out as it was, misread)."""
    check_header_value(field, value)
    name, address = parseaddr(value)
    if "@" not in address or " " in address:
        raise HeaderError(f"{field}: {value!r} is not an email address")
    if "=?" in name:
        decoded = name
        with contextlib.suppress(HeaderParseError, LookupError, UnicodeDecodeError, ValueError):
            decoded = str(make_header(decode_header(name)))
        if "=?" in decoded or not decoded.strip():
            raise HeaderError(
                f"{field}: the name {name!r} is an encoded-word that does not decode; write "
                f'the name as plain text ("Präventionskette Ahlen <{address}>")'
            )
        name = single_line(decoded)
    return name, address
