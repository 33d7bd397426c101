"""Subscriber list management: validated addresses, CSV import/export (email,name,digests)."""

from __future__ import annotations

import contextlib
import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.errors import HeaderParseError
from email.header import decode_header, make_header

from email_validator import EmailNotValidError, validate_email

from digest.errors import DigestError
from digest.headers import NAME_MAX, single_line
from digest.store import Store, Subscriber

CSV_FIELDS = ("email", "name", "digests")
EXPORT_FIELDS = (*CSV_FIELDS, "status")  # active, pending, unsubscribed, bounced, complained
_DIGEST_SEPARATORS = re.compile(r"[;|,]")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
# A cell starting with one of these is a formula to a spreadsheet (CSV injection, OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class AddressError(DigestError):
    pass


def normalise_address(value: str) -> str:
    """Syntax-checked (no DNS lookups), lower-cased, ASCII domain (IDNA) address."""
    value = value.strip()
    if any(char in value for char in "\r\n\0"):
        raise AddressError(f"{value[:60]!r}: line break in address")
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise AddressError(f"{value!r}: {exc}") from None
    address = result.ascii_email or result.normalized
    if not address.isascii():
        raise AddressError(f"{value!r}: addresses with non-ASCII local parts are not supported")
    return address.lower()


def clean_name(value: str) -> tuple[str, str | None]:
    """A subscriber's name as it is stored: one line, RFC 2047 encoded-words (as other tools
    export them) decoded, at most :data:`NAME_MAX` characters. Returns the name and, if it was
    cut, a note saying so."""
    name = single_line(value)
    if _ENCODED_WORD.search(name):
        # not decodable: kept as written (messages encode it as text)
        with contextlib.suppress(HeaderParseError, LookupError, UnicodeDecodeError, ValueError):
            name = single_line(str(make_header(decode_header(name))))
    if len(name) <= NAME_MAX:
        return name, None
    return name[:NAME_MAX].rstrip(), f"name of {len(name)} characters cut to {NAME_MAX}"


def spreadsheet_safe(cell: str) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula gets a leading '."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def parse_digests(value: str, known: Iterable[str]) -> list[str]:
    known = set(known)
    names = [part.strip() for part in _DIGEST_SEPARATORS.split(value or "") if part.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise AddressError(
            f"unknown digest(s): {', '.join(unknown)} (configured: {', '.join(sorted(known))})"
        )
    return names


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    problems: list[str] = field(default_factory=list)  # rows skipped
    notes: list[str] = field(default_factory=list)  # rows imported with a change


def import_csv(
    text: str,
    store: Store,
    *,
    known_digests: Sequence[str],
    default_digests: Sequence[str],
    now: datetime,
    source: str = "CSV",
) -> ImportReport:
    """Add every valid row; bad and duplicate rows are reported by line and skipped."""
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    if "email" not in header:
        raise AddressError(f"{source}:1: header must name the columns email,name,digests")
    reader.fieldnames = header
    seen: dict[str, int] = {}
    valid: list[tuple[str, str, list[str]]] = []
    for row in reader:
        line = reader.line_num
        try:
            email = normalise_address(row.get("email") or "")
            digests = parse_digests(row.get("digests") or "", known_digests) or list(
                default_digests
            )
        except AddressError as exc:
            report.problems.append(f"{source}:{line}: {exc}")
            continue
        if email in seen:
            report.problems.append(
                f"{source}:{line}: {email} duplicates line {seen[email]} (skipped)"
            )
            continue
        seen[email] = line
        name, cut = clean_name(row.get("name") or "")
        if cut:
            report.notes.append(f"{source}:{line}: {email}: {cut}")
        valid.append((email, name, digests))
    suppressed = store.suppressed_among([email for email, _, _ in valid])
    for email, status in suppressed.items():  # a re-import never mails them again
        report.problems.append(
            f"{source}:{seen[email]}: {email} is {status}: kept suppressed (skipped)"
        )
    valid = [row for row in valid if row[0] not in suppressed]
    report.added, report.updated = store.add_subscribers(valid, now)  # batched, one transaction
    return report


def export_csv(subscribers: Sequence[Subscriber]) -> str:
    """Every subscriber with their status: the suppressed ones too, so a list moved to another
    tool keeps not mailing them."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_FIELDS)
    for subscriber in subscribers:
        row = [subscriber.email, subscriber.name, ";".join(subscriber.digests), subscriber.status]
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return out.getvalue()
