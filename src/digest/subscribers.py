"""Subscriber list management: validated addresses, CSV import/export (email,name,digests)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from email_validator import EmailNotValidError, validate_email

from digest.errors import DigestError
from digest.headers import single_line
from digest.store import Store, Subscriber

CSV_FIELDS = ("email", "name", "digests")
EXPORT_FIELDS = (*CSV_FIELDS, "status")  # active, pending, unsubscribed, bounced, complained
_DIGEST_SEPARATORS = re.compile(r"[;|,]")


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
    problems: list[str] = field(default_factory=list)


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
        valid.append((email, single_line(row.get("name") or ""), digests))
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
        writer.writerow(
            [subscriber.email, subscriber.name, ";".join(subscriber.digests), subscriber.status]
        )
    return out.getvalue()
