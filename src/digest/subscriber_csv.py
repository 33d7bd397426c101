"""Reading subscriber CSV files as people have them: the encoding (BOM, UTF-16, Windows-1252
from German Excel), the delimiter (``,`` ``;`` or tab), and the column names of the exports of
Mailchimp, CleverReach, Substack and Buttondown, or a ``--map`` the user gives.

Pure: bytes in, :class:`CsvRow` values out (one per data line, with its line number); what a
row means for the list (address syntax, digests, duplicates) is :mod:`digest.subscribers`'.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from digest.catalogue import N_
from digest.errors import DigestError

FIELDS = ("email", "name", "digests", "topics", "language", "timezone")

# Header names of each field, compared lower-cased with runs of space, "_" and "-" as one space.
# Mailchimp: "Email Address", "First Name", "Last Name", "TIMEZONE", "TAGS"; CleverReach:
# "email", "firstname", "lastname" (or German "Vorname", "Nachname"), "tags"; Substack:
# "email", "name"; Buttondown: "email" (or "email_address"), "tags".
ALIASES: Mapping[str, tuple[str, ...]] = {
    "email": ("email", "email address", "e mail", "e mail adresse", "emailadresse", "mail"),
    "name": ("name", "full name", "fullname", "display name"),
    "digests": ("digests", "digest"),
    "topics": ("topics", "tags", "themen", "interests"),
    "language": ("language", "lang", "locale", "sprache"),
    "timezone": ("timezone", "time zone", "tz", "zeitzone"),
}
FIRST_NAMES = ("first name", "firstname", "fname", "vorname", "given name")
LAST_NAMES = ("last name", "lastname", "lname", "nachname", "surname", "family name")

# Columns by which an export marks a row as not (or no longer) subscribed: such a row is
# never imported as an active subscriber. Column -> values that mean "still subscribed".
_ENDED_UNLESS: Mapping[str, frozenset[str]] = {
    "unsub time": frozenset({""}),  # Mailchimp's unsubscribed export
    "clean time": frozenset({""}),  # Mailchimp's cleaned (bounced) export
    "deactivated": frozenset({"", "0"}),  # CleverReach: a timestamp once deactivated
    "bounced": frozenset({"", "0"}),  # CleverReach
    "email disabled": frozenset({"", "false", "0", "no"}),  # Substack
    "status": frozenset({"", "active", "subscribed"}),  # digest's own export, others
}
# Buttondown's "subscriber_type" (newer exports: "type"): the kinds that receive mail.
_BUTTONDOWN_RECEIVING = frozenset(
    {"regular", "premium", "gifted", "trialed", "churning", "past due", "upgraded"}
)
_BUTTONDOWN_TYPE = ("subscriber type",)

_SEPARATORS = re.compile(r"[\s_-]+")
_DELIMITERS = (",", ";", "\t")


class CsvFormatError(DigestError):
    """The file as a whole cannot be read (encoding, header, ``--map``); names file and line."""


@dataclass(frozen=True)
class Ended:
    """Why an export says an address no longer receives mail: a message (English msgid,
    ``%(value)s`` the cell) for the site's catalogue, and the cell."""

    reason: str
    value: str


@dataclass(frozen=True)
class CsvRow:
    line: int
    values: Mapping[str, str]  # field (of FIELDS) -> raw cell text, only for mapped fields
    ended: Ended | None = None  # why the export says this address no longer receives mail


@dataclass(frozen=True)
class Layout:
    """Which column holds what, decided once from the header."""

    delimiter: str
    columns: Mapping[str, int]  # field -> column index
    first_last: tuple[int, int] | None  # (first name, last name) when there is no name column
    ended: Mapping[int, frozenset[str]]  # column index -> values meaning "still subscribed"
    receiving_type: int | None  # Buttondown's subscriber type column


def decode(data: bytes, source: str) -> str:
    """Text of a CSV file: UTF-8 with or without BOM, UTF-16 with BOM (Excel's "Unicode
    text"), else Windows-1252 (Excel's "CSV (Trennzeichen-getrennt)" on a German Windows)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise CsvFormatError(f"{source}: not valid UTF-16: {exc.reason}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def parse_map(spec: str) -> dict[str, str]:
    """``email=Email Address,name=First Name`` -> {"email": "Email Address", ...}."""
    mapping: dict[str, str] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        field, sep, column = part.partition("=")
        field = field.strip().lower()
        if not sep or not column.strip():
            raise CsvFormatError(f"--map: {part.strip()!r} is not FIELD=COLUMN")
        if field not in FIELDS:
            raise CsvFormatError(f"--map: unknown field {field!r} (fields: {', '.join(FIELDS)})")
        mapping[field] = column.strip()
    return mapping


def _key(name: str) -> str:
    return _SEPARATORS.sub(" ", name.strip().lower()).strip()


def sniff_delimiter(header_line: str) -> str:
    """The candidate that splits the header line into the most columns (``,`` if none does);
    quoted names are not counted, so ``"Name, first";"Email"`` is semicolon-separated."""
    unquoted = re.sub(r'"[^"]*"', "", header_line)
    counts = {delimiter: unquoted.count(delimiter) for delimiter in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def layout(
    header: Sequence[str], delimiter: str, mapping: Mapping[str, str], source: str
) -> Layout:
    keys = [_key(name) for name in header]
    index: dict[str, int] = {}
    for position, key in enumerate(keys):
        index.setdefault(key, position)
    columns: dict[str, int] = {}
    for field, column in mapping.items():
        if _key(column) not in index:
            raise CsvFormatError(
                f"{source}:1: --map {field}={column}: no such column "
                f"(columns: {', '.join(name.strip() for name in header)})"
            )
        columns[field] = index[_key(column)]
    for field, aliases in ALIASES.items():
        if field in columns:
            continue
        found = next((index[alias] for alias in aliases if alias in index), None)
        if found is not None:
            columns[field] = found
    if "email" not in columns:
        raise CsvFormatError(
            f"{source}:1: no email column (columns: {', '.join(n.strip() for n in header)}); "
            "name it with --map email=COLUMN"
        )
    first_last = None
    if "name" not in columns:
        first = next((index[a] for a in FIRST_NAMES if a in index), None)
        last = next((index[a] for a in LAST_NAMES if a in index), None)
        if first is not None or last is not None:
            first_last = (-1 if first is None else first, -1 if last is None else last)
    ended = {index[key]: allowed for key, allowed in _ENDED_UNLESS.items() if key in index}
    receiving_type = next((index[a] for a in _BUTTONDOWN_TYPE if a in index), None)
    return Layout(delimiter, columns, first_last, ended, receiving_type)


def read_rows(text: str, source: str, mapping: Mapping[str, str] | None = None) -> Iterator[CsvRow]:
    """The data rows of ``text`` (decoded), their cells named by field; blank lines skipped.
    Raises :class:`CsvFormatError` for a file without a usable header."""
    text = text.lstrip("\ufeff")
    header_line = text.split("\n", 1)[0]
    if not header_line.strip():
        raise CsvFormatError(f"{source}:1: empty file or empty header line")
    delimiter = sniff_delimiter(header_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
        plan = layout(header, delimiter, mapping or {}, source)
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            yield _row(reader.line_num, cells, plan)
    except csv.Error as exc:
        raise CsvFormatError(f"{source}:{reader.line_num}: {exc}") from None


def column_fields(
    text: str, source: str, mapping: Mapping[str, str] | None = None
) -> dict[str, str | None]:
    """Each header column and the field it fills (None: ignored), for an import preview."""
    header_line = text.lstrip("\ufeff").split("\n", 1)[0]
    delimiter = sniff_delimiter(header_line)
    header = next(csv.reader(io.StringIO(header_line), delimiter=delimiter), [])
    plan = layout(header, delimiter, mapping or {}, source)
    fields: dict[str, str | None] = {name.strip(): None for name in header}
    names = [name.strip() for name in header]
    for field, position in plan.columns.items():
        fields[names[position]] = field
    if plan.first_last is not None:
        for position in plan.first_last:
            if position >= 0:
                fields[names[position]] = "name"
    return fields


def _cell(cells: Sequence[str], position: int) -> str:
    return cells[position].strip() if 0 <= position < len(cells) else ""


def _row(line: int, cells: Sequence[str], plan: Layout) -> CsvRow:
    values = {field: _cell(cells, position) for field, position in plan.columns.items()}
    if plan.first_last is not None:
        first, last = plan.first_last
        values["name"] = " ".join(
            part for part in (_cell(cells, first), _cell(cells, last)) if part
        )
    ended = None
    for position, allowed in plan.ended.items():
        value = _cell(cells, position)
        if value.lower() not in allowed:
            ended = Ended(N_("marked as no longer subscribed in the export (%(value)s)"), value)
            break
    if ended is None and plan.receiving_type is not None:
        kind = _key(_cell(cells, plan.receiving_type))
        if kind and kind not in _BUTTONDOWN_RECEIVING:
            ended = Ended(N_("subscriber type %(value)r does not receive mail"), kind)
    return CsvRow(line, values, ended)


def split_list(value: str) -> tuple[str, ...]:
    """Topics/tags of a cell: separated by ``,`` ``;`` or ``|``, each maybe quoted
    (Mailchimp writes ``"Tag A","Tag B"``)."""
    parts = (part.strip().strip('"').strip() for part in re.split(r"[,;|]", value))
    return tuple(dict.fromkeys(part for part in parts if part))
