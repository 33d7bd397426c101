"""Subscriber list management: validated addresses, CSV import (reading: subscriber_csv) and
export (email,name,digests,status,topics,language,timezone).

What an import reports (rows rejected, values left out) is worded by a
:class:`~digest.catalogue.Translator`: English for the CLI, the site's language in the admin.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from types import MappingProxyType
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email

from digest.catalogue import (
    N_,
    Translator,
    UnknownLanguage,
    available_languages,
    catalogue_language,
    default_translator,
)
from digest.errors import DigestError
from digest.headers import NAME_MAX, single_line
from digest.store import ReaderSettings, ReaderUpdate, Store, Subscriber
from digest.subscriber_csv import column_fields, read_rows, split_list

if TYPE_CHECKING:
    from digest.config import DigestConfig

CSV_FIELDS = ("email", "name", "digests")
# status: active, pending, unsubscribed, bounced, complained; topics ;-separated, each
# "digest:topic" where the digests' choices differ; language and timezone empty: the site's
EXPORT_FIELDS = (*CSV_FIELDS, "status", "topics", "language", "timezone")
_DIGEST_SEPARATORS = re.compile(r"[;|,]")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
# A cell starting with one of these is a formula to a spreadsheet (CSV injection, OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class AddressError(DigestError):
    """An address (or a row's digests) not accepted: ``value`` and the English ``reason``."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"{value!r}: {reason}")
        self.value = value
        self.reason = reason


class UnknownDigests(AddressError):
    def __init__(self, unknown: Sequence[str], known: Iterable[str]) -> None:
        self.unknown = tuple(unknown)
        self.known = tuple(sorted(known))
        DigestError.__init__(
            self, f"unknown digest(s): {', '.join(unknown)} (configured: {', '.join(self.known)})"
        )
        self.value = ", ".join(unknown)
        self.reason = str(self)


_LINE_BREAK = N_("line break in address")
_NOT_ASCII = N_("addresses with non-ASCII local parts are not supported")
_OWN_REASONS = frozenset({_LINE_BREAK, _NOT_ASCII})  # email_validator's are English only


def normalise_address(value: str) -> str:
    """Syntax-checked (no DNS lookups), lower-cased, ASCII domain (IDNA) address."""
    value = value.strip()
    if any(char in value for char in "\r\n\0"):
        raise AddressError(value[:60], _LINE_BREAK)
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise AddressError(value, str(exc)) from None
    address = result.ascii_email or result.normalized
    if not address.isascii():
        raise AddressError(value, _NOT_ASCII)
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


def clean_name(value: str) -> tuple[str, int | None]:
    """A subscriber's name as it is stored: one line, RFC 2047 encoded-words (as other tools
    export them) decoded, at most :data:`NAME_MAX` characters. Returns the name and, if it was
    cut, the length it had."""
    name = single_line(value)
    if _ENCODED_WORD.search(name):
        # not decodable: kept as written (messages encode it as text)
        with contextlib.suppress(HeaderParseError, LookupError, UnicodeDecodeError, ValueError):
            name = single_line(str(make_header(decode_header(name))))
    if len(name) <= NAME_MAX:
        return name, None
    return name[:NAME_MAX].rstrip(), len(name)


def spreadsheet_safe(cell: str) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula gets a leading '."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def parse_digests(value: str, known: Iterable[str]) -> list[str]:
    known = set(known)
    names = [part.strip() for part in _DIGEST_SEPARATORS.split(value or "") if part.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UnknownDigests(unknown, known)
    return names


def declared_topics(digests: Mapping[str, DigestConfig]) -> dict[str, frozenset[str]]:
    """The topics (item tags) each configured digest declares."""
    return {name: frozenset(digest.topics) for name, digest in digests.items()}


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    settings_changed: int = 0  # readers whose language, time zone or topics changed
    problems: list[str] = field(default_factory=list)  # rows skipped, by line
    notes: list[str] = field(
        default_factory=list
    )  # rows imported with a change (a value left out, a name cut)


_NO_TOPICS: Mapping[str, tuple[str, ...]] = MappingProxyType({})


@dataclass(frozen=True)
class ImportRow:
    """A valid row of an import: ``topics`` as the cell lists them, ``chosen`` the topics per
    digest of the row that declares them; ``language`` a catalogue (``de``), ``timezone`` an
    IANA zone; None and a digest not in ``chosen``: the cell gave nothing (kept on update)."""

    line: int
    email: str
    name: str
    digests: tuple[str, ...]
    topics: tuple[str, ...] = ()
    language: str | None = None
    timezone: str | None = None
    chosen: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def reader(self) -> ReaderUpdate:
        return ReaderUpdate(self.language, self.timezone, self.chosen)


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
    topics: Mapping[str, Collection[str]] | None = None,
    translator: Translator | None = None,
) -> ParsedCsv:
    """Read and check every row (delimiter, column names and exports as
    :mod:`digest.subscriber_csv` reads them); bad rows become problems named by line.
    ``topics``: the topics each digest declares (:func:`declared_topics`)."""
    report = ImportReport()
    rows = read_import(
        text, report, known_digests=known_digests, default_digests=default_digests,
        source=source, mapping=mapping, topics=topics, translator=translator,
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
    translator: Translator | None = None,
) -> ImportReport:
    """Write the valid rows of ``parsed`` with their language, time zone and topics (batched,
    one transaction per ``batch`` rows, or one for all); erased and suppressed addresses are
    reported and left out. ``progress`` gets the number of rows done after each batch."""
    t = translator or default_translator()
    report = ImportReport(problems=list(parsed.problems), notes=list(parsed.notes))
    erased = store.erased_among(row.email for row in parsed.rows)
    for row in parsed.rows:  # GDPR erasure: never brought back by mistake
        if row.email in erased:
            report.problems.append(
                t.gettext(
                    "%(where)s: %(email)s was erased; not imported",
                    where=f"{source}:{row.line}", email=row.email,
                )
            )  # fmt: skip
    rows = [row for row in parsed.rows if row.email not in erased]
    suppressed = store.suppressed_among([row.email for row in rows])
    for row in rows:  # bounced or complained: a re-import never mails them again
        if row.email in suppressed:
            report.problems.append(
                t.gettext(
                    "%(where)s: %(email)s is %(status)s: kept suppressed (skipped)",
                    where=f"{source}:{row.line}", email=row.email,
                    status=t.gettext(suppressed[row.email]),
                )
            )  # fmt: skip
    kept = [row for row in rows if row.email not in suppressed]
    size = batch or max(len(kept), 1)
    for start in range(0, len(kept), size):
        part = kept[start : start + size]
        counts = store.import_subscribers(
            [(row.email, row.name, row.digests) for row in part],
            {row.email: row.reader for row in part if row.language or row.timezone or row.chosen},
            now,
        )
        report.added += counts.added
        report.updated += counts.updated
        report.settings_changed += counts.settings_changed
        if progress is not None:
            progress(start + len(part))
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
    topics: Mapping[str, Collection[str]] | None = None,
    translator: Translator | None = None,
) -> ImportReport:
    """Add every valid row; bad, duplicate, unsubscribed, erased and suppressed rows are
    reported by line and skipped. The valid rows are written in batches in one transaction
    (the store's bulk API), with their language, time zone and topics."""
    parsed = parse_csv(
        text, known_digests=known_digests, default_digests=default_digests,
        source=source, mapping=mapping, topics=topics, translator=translator,
    )  # fmt: skip
    return import_rows(parsed, store, now=now, source=source, translator=translator)


def read_import(
    text: str,
    report: ImportReport,
    *,
    known_digests: Sequence[str],
    default_digests: Sequence[str],
    source: str,
    mapping: Mapping[str, str] | None = None,
    topics: Mapping[str, Collection[str]] | None = None,
    translator: Translator | None = None,
) -> list[ImportRow]:
    """The valid rows of a CSV text, problems and notes recorded in ``report``."""
    t = translator or default_translator()
    seen: dict[str, int] = {}
    valid: list[ImportRow] = []
    checks = _ValueChecks(t, report)
    choices = _TopicChoices(t, report, topics or {}, lambda: column_fields(text, source, mapping))
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
            report.problems.append(_rejected(t, where, exc))
            continue
        if raw.ended:
            report.problems.append(
                t.gettext(
                    "%(where)s: %(email)s %(reason)s (skipped)", where=where, email=email,
                    reason=t.gettext(raw.ended.reason, value=raw.ended.value),
                )
            )  # fmt: skip
            continue
        if email in seen:
            report.problems.append(
                t.gettext(
                    "%(where)s: %(email)s duplicates line %(line)s (skipped)",
                    where=where, email=email, line=seen[email],
                )
            )  # fmt: skip
            continue
        seen[email] = raw.line
        name, cut = clean_name(cells.get("name", ""))
        if cut:
            report.notes.append(
                t.gettext(
                    "%(where)s: %(email)s: name of %(length)s characters cut to %(limit)s",
                    where=where, email=email, length=cut, limit=NAME_MAX,
                )
            )  # fmt: skip
        listed = split_list(cells.get("topics", ""))
        valid.append(
            ImportRow(
                raw.line, email, name, digests, listed,
                checks.language(cells.get("language", ""), where),
                checks.timezone(cells.get("timezone", ""), where),
                choices.chosen(listed, digests, where) if listed else _NO_TOPICS,
            )
        )  # fmt: skip
    return valid


def _rejected(t: Translator, where: str, exc: AddressError) -> str:
    if isinstance(exc, UnknownDigests):
        return t.gettext(
            "%(where)s: unknown digest(s): %(unknown)s (configured: %(configured)s)",
            where=where, unknown=", ".join(exc.unknown), configured=", ".join(exc.known),
        )  # fmt: skip
    reason = t.gettext(exc.reason) if exc.reason in _OWN_REASONS else exc.reason
    return t.gettext(
        "%(where)s: %(value)r is not a valid address: %(reason)s",
        where=where, value=exc.value, reason=reason,
    )  # fmt: skip


class _ValueChecks:
    """Language and time zone checks, memoised: a list of 100k rows holds a handful of each."""

    def __init__(self, t: Translator, report: ImportReport) -> None:
        self._t = t
        self._report = report
        self._languages: dict[str, str | None] = {}
        self._zones: dict[str, bool] = {}

    def language(self, value: str, where: str) -> str | None:
        """The catalogue of ``value`` (``de-AT`` -> ``de``); None, with a note, if none."""
        if not value:
            return None
        if value not in self._languages:
            try:
                self._languages[value] = catalogue_language(value.replace("-", "_"))
            except UnknownLanguage:
                self._languages[value] = None
        result = self._languages[value]
        if result is None:
            self._report.notes.append(
                self._t.gettext(
                    "%(where)s: language %(value)r unknown or without a catalogue "
                    "(languages: %(languages)s; left out)",
                    where=where, value=value, languages=", ".join(available_languages()),
                )
            )  # fmt: skip
        return result

    def timezone(self, value: str, where: str) -> str | None:
        if not value:
            return None
        if value not in self._zones:
            try:
                ZoneInfo(value)
                self._zones[value] = True
            except (ZoneInfoNotFoundError, ValueError):
                self._zones[value] = False
        if not self._zones[value]:
            self._report.notes.append(
                self._t.gettext(
                    "%(where)s: time zone %(value)r unknown (left out)", where=where, value=value
                )
            )
            return None
        return value


class _TopicChoices:
    """A row's topics per digest: a plain topic applies to each digest of the row that
    declares it, ``digest:topic`` to that digest; one no digest of the row declares is left
    out with a note naming the line, column and value."""

    def __init__(
        self,
        t: Translator,
        report: ImportReport,
        declared: Mapping[str, Collection[str]],
        columns: Callable[[], Mapping[str, str | None]],
    ) -> None:
        self._t = t
        self._report = report
        self._declared = declared
        self._columns = columns
        self._column: str | None = None
        self._memo: dict[
            tuple[tuple[str, ...], tuple[str, ...]],
            tuple[Mapping[str, tuple[str, ...]], tuple[str, ...]],
        ] = {}

    def chosen(
        self, listed: tuple[str, ...], digests: tuple[str, ...], where: str
    ) -> Mapping[str, tuple[str, ...]]:
        key = (listed, digests)
        if key not in self._memo:  # a list of 100k rows holds a few distinct cells
            self._memo[key] = self._choose(listed, digests)
        chosen, left_out = self._memo[key]
        for value in left_out:
            self._left_out(value, digests, where)
        return chosen

    def _choose(
        self, listed: tuple[str, ...], digests: tuple[str, ...]
    ) -> tuple[Mapping[str, tuple[str, ...]], tuple[str, ...]]:
        chosen: dict[str, list[str]] = {}
        left_out: list[str] = []
        for value in listed:
            digest, sep, topic = value.partition(":")
            if sep and digest.strip() in self._declared:
                topic = topic.strip()
                targets = [digest.strip()] if digest.strip() in digests else []
            else:
                topic, targets = value, list(digests)
            targets = [d for d in targets if topic in self._declared.get(d, ())]
            if not targets:
                left_out.append(value)
            for target in targets:
                chosen.setdefault(target, []).append(topic)
        result = {digest: tuple(dict.fromkeys(topics)) for digest, topics in chosen.items()}
        return MappingProxyType(result), tuple(left_out)

    def _left_out(self, value: str, digests: tuple[str, ...], where: str) -> None:
        if self._column is None:
            columns = self._columns()
            self._column = next((c for c, f in columns.items() if f == "topics"), "topics")
        self._report.notes.append(
            self._t.gettext(
                "%(where)s: column %(column)r: %(value)r is not a topic of %(digests)s "
                "(left out)",
                where=where, column=self._column, value=value, digests=", ".join(digests),
            )
        )  # fmt: skip


def export_csv(
    subscribers: Sequence[Subscriber],
    readers: Mapping[int, ReaderSettings] | None = None,
    topics: Mapping[str, Collection[str]] | None = None,
) -> str:
    """Every subscriber with their status: the suppressed ones too, so a list moved to another
    tool keeps not mailing them. ``readers`` (:meth:`Store.readers`) gives the language, time
    zone and topics; ``topics`` what each digest declares (:func:`declared_topics`), so the
    topics cell is written as an import reads it back."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_FIELDS)
    none = ReaderSettings(None, None, {})
    for subscriber in subscribers:
        reader = (readers or {}).get(subscriber.id, none)
        row = [
            subscriber.email, subscriber.name, ";".join(subscriber.digests), subscriber.status,
            topics_cell(reader.topics, subscriber.digests, topics or {}),
            reader.language or "", reader.timezone or "",
        ]  # fmt: skip
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return out.getvalue()


def topics_cell(
    chosen: Mapping[str, Sequence[str]],
    digests: Sequence[str],
    declared: Mapping[str, Collection[str]],
) -> str:
    """A reader's topics as an import reads them back: ``schule;jugend`` when each of the
    reader's digests chose exactly the listed topics it declares, else ``weekly:schule;...``."""
    chosen = {digest: chosen[digest] for digest in digests if chosen.get(digest)}
    if not chosen:
        return ""
    listed = list(dict.fromkeys(topic for topics in chosen.values() for topic in topics))
    plain = all(
        set(chosen.get(digest, ())) == set(listed) & set(declared.get(digest, ()))
        for digest in digests
    )
    if plain:
        return ";".join(listed)
    return ";".join(f"{digest}:{topic}" for digest, topics in chosen.items() for topic in topics)
