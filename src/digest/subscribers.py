"""Subscriber list management: validated addresses, CSV import (reading: subscriber_csv) and
export (email,name,digests)."""

from __future__ import annotations

import contextlib
import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from email_validator import EmailNotValidError, validate_email

from digest.errors import DigestError
from digest.headers import NAME_MAX, single_line
from digest.store import Store, Subscriber
from digest.subscriber_csv import column_fields, read_rows, split_list

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


_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")


class AddressNormaliser:
    """:func:`normalise_address` for many addresses: each domain is validated once (IDNA is
    most of the cost; a list of 100k addresses holds a few hundred domains). An address whose
    domain is known and whose local part is a plain ASCII dot-atom is only lower-cased; any
    other goes through the full check."""

    def __init__(self) -> None:
        self._domains: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        stripped = value.strip()
        local, _, domain = stripped.rpartition("@")
        known = self._domains.get(domain.lower())
        if (
            known is not None
            and len(local) <= 64
            and len(local) + 1 + len(known) <= 254
            and _DOT_ATOM.match(local)
        ):
            return f"{local.lower()}@{known}"
        address = normalise_address(value)
        self._domains[domain.lower()] = address.rpartition("@")[2]
        return address


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
    problems: list[str] = field(default_factory=list)  # rows skipped, by line
    notes: list[str] = field(
        default_factory=list
    )  # rows imported with a change (a value left out, a name cut)


@dataclass(frozen=True)
class ImportRow:
    """A valid row of an import. ``topics``, ``language`` and ``timezone`` are checked and
    carried; the store keeps what its schema has (so far: email, name, digests)."""

    line: int
    email: str
    name: str
    digests: tuple[str, ...]
    topics: tuple[str, ...] = ()
    language: str | None = None
    timezone: str | None = None


@dataclass
class ParsedCsv:
    """A CSV file read and checked, nothing written: what an import would do."""

    columns: dict[str, str | None]  # CSV column -> the field it fills (None: ignored)
    rows: list[ImportRow]  # valid rows
    problems: list[str] = field(default_factory=list)  # rejected rows, by line
    notes: list[str] = field(default_factory=list)  # rows imported with a change, by line


def parse_csv(
    text: str,
    *,
    known_digests: Sequence[str],
    default_digests: Sequence[str],
    source: str = "CSV",
    mapping: Mapping[str, str] | None = None,
) -> ParsedCsv:
    """Read and check every row (delimiter, column names and exports as
    :mod:`digest.subscriber_csv` reads them); bad rows become problems named by line."""
    report = ImportReport()
    rows = read_import(
        text, report, known_digests=known_digests, default_digests=default_digests,
        source=source, mapping=mapping,
    )  # fmt: skip
    return ParsedCsv(column_fields(text, source, mapping), rows, report.problems, report.notes)


def import_rows(
    parsed: ParsedCsv,
    store: Store,
    *,
    now: datetime,
    source: str = "CSV",
    batch: int = 0,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Write the valid rows of ``parsed`` (batched, one transaction per ``batch`` rows, or
    one for all); erased and suppressed addresses are reported and left out. ``progress``
    gets the number of rows done after each batch."""
    report = ImportReport(problems=list(parsed.problems), notes=list(parsed.notes))
    erased = store.erased_among(row.email for row in parsed.rows)
    for row in parsed.rows:  # GDPR erasure: never brought back by mistake
        if row.email in erased:
            report.problems.append(f"{source}:{row.line}: {row.email} was erased; not imported")
    rows = [row for row in parsed.rows if row.email not in erased]
    suppressed = store.suppressed_among([row.email for row in rows])
    for row in rows:  # bounced or complained: a re-import never mails them again
        if row.email in suppressed:
            report.problems.append(
                f"{source}:{row.line}: {row.email} is {suppressed[row.email]}: kept suppressed "
                "(skipped)"
            )
    valid = [(row.email, row.name, row.digests) for row in rows if row.email not in suppressed]
    size = batch or max(len(valid), 1)
    for start in range(0, len(valid), size):
        added, updated = store.add_subscribers(valid[start : start + size], now)
        report.added += added
        report.updated += updated
        if progress is not None:
            progress(start + len(valid[start : start + size]))
    return report


def import_csv(
    text: str,
    store: Store,
    *,
    known_digests: Sequence[str],
    default_digests: Sequence[str],
    now: datetime,
    source: str = "CSV",
    mapping: Mapping[str, str] | None = None,
) -> ImportReport:
    """Add every valid row; bad, duplicate, unsubscribed, erased and suppressed rows are
    reported by line and skipped. The valid rows are written in batches in one transaction
    (the store's bulk API)."""
    parsed = parse_csv(
        text, known_digests=known_digests, default_digests=default_digests,
        source=source, mapping=mapping,
    )  # fmt: skip
    return import_rows(parsed, store, now=now, source=source)


def read_import(
    text: str,
    report: ImportReport,
    *,
    known_digests: Sequence[str],
    default_digests: Sequence[str],
    source: str,
    mapping: Mapping[str, str] | None = None,
) -> list[ImportRow]:
    """The valid rows of a CSV text, problems and notes recorded in ``report``."""
    seen: dict[str, int] = {}
    valid: list[ImportRow] = []
    checks = _ValueChecks()
    address = AddressNormaliser()
    digest_lists: dict[str, tuple[str, ...]] = {}  # a column holds a few distinct values
    for raw in read_rows(text, source, mapping):
        where = f"{source}:{raw.line}"
        cells = raw.values
        try:
            email = address(cells.get("email", ""))
            wanted = cells.get("digests", "")
            if wanted not in digest_lists:
                digest_lists[wanted] = tuple(
                    parse_digests(wanted, known_digests) or default_digests
                )
            digests = digest_lists[wanted]
        except AddressError as exc:
            report.problems.append(f"{where}: {exc}")
            continue
        if raw.ended:
            report.problems.append(f"{where}: {email} {raw.ended} (skipped)")
            continue
        if email in seen:
            report.problems.append(f"{where}: {email} duplicates line {seen[email]} (skipped)")
            continue
        seen[email] = raw.line
        name, cut = clean_name(cells.get("name", ""))
        if cut:
            report.notes.append(f"{where}: {email}: {cut}")
        language = checks.language(cells.get("language", ""), where, report)
        timezone = checks.timezone(cells.get("timezone", ""), where, report)
        valid.append(
            ImportRow(
                raw.line, email, name, digests,
                split_list(cells.get("topics", "")), language, timezone,
            )
        )  # fmt: skip
    return valid


class _ValueChecks:
    """Language and time zone checks, memoised: a list of 100k rows holds a handful of each."""

    def __init__(self) -> None:
        self._languages: dict[str, str | None] = {}
        self._zones: dict[str, bool] = {}

    def language(self, value: str, where: str, report: ImportReport) -> str | None:
        if not value:
            return None
        if value not in self._languages:
            try:
                self._languages[value] = str(Locale.parse(value.replace("-", "_")))
            except (ValueError, UnknownLocaleError):
                self._languages[value] = None
        result = self._languages[value]
        if result is None:
            report.notes.append(f"{where}: language {value!r} unknown (left out)")
        return result

    def timezone(self, value: str, where: str, report: ImportReport) -> str | None:
        if not value:
            return None
        if value not in self._zones:
            try:
                ZoneInfo(value)
                self._zones[value] = True
            except (ZoneInfoNotFoundError, ValueError):
                self._zones[value] = False
        if not self._zones[value]:
            report.notes.append(f"{where}: time zone {value!r} unknown (left out)")
            return None
        return value


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
