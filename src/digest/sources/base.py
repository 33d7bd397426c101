"""The kit every source kind imports: the :class:`Source` protocol, the base of its config
entry, what building one gets (:class:`SourceContext`), the registry entry it declares
(:class:`SourceKind`), and the shared helpers: conditional fetches, filters, HTML cleaning,
URLs, keys and tags.

A source that keeps HTTP validators between runs implements :class:`ConditionalSource`
(``fetch(now, prior)``); every other source only has ``collect(now)``. :func:`fetch_source`
calls either, so :func:`digest.collect.collect` treats them alike.
"""

from __future__ import annotations

import hashlib
import json
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, get_args, runtime_checkable
from urllib.parse import urljoin, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import nh3

from digest.filters import FilterFields, ItemFilter
from digest.markup import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, URL_SCHEMES, sanitize_html
from digest.models import Collection, SourceState


class Source(Protocol):
    name: str

    def collect(self, now: datetime) -> Collection: ...


class SourceEntry(FilterFields):
    """The base of every ``sources:`` entry in the config. A kind's entry declares
    ``kind: Literal["<its name>"]`` (the tag the config is validated by) and its own keys."""

    if TYPE_CHECKING:
        kind: str

    @property
    @abstractmethod
    def source_name(self) -> str:
        """The source's name: its ``name`` key, else ``<kind>:<target>``."""

    @property
    @abstractmethod
    def target(self) -> str:
        """What the source reads, for people: the folder's path, the URL."""


@dataclass(frozen=True)
class SourceContext:
    """What building a source needs besides its own entry: where the config file is (relative
    paths and ``file:`` URLs resolve against it) and the site's URL, locale and time zone."""

    base_dir: Path
    site_url: str
    locale: str
    timezone: ZoneInfo

    def resolve(self, relative: str) -> Path:
        candidate = Path(relative).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate


EntryT = TypeVar("EntryT", bound=SourceEntry)


@dataclass(frozen=True)
class SourceKind(Generic[EntryT]):
    """One kind of source, as its module declares it for :mod:`digest.sources.registry`: the
    model of its config entry and how to build the source from one."""

    entry: type[EntryT]
    build: Callable[[EntryT, SourceContext], Source]

    @property
    def name(self) -> str:
        """The ``kind:`` value, read from the entry's ``kind: Literal[...]``."""
        annotation = self.entry.model_fields["kind"].annotation
        (name,) = get_args(annotation)
        return str(name)


@dataclass(frozen=True)
class FetchOutcome:
    """One attempt: the items read (none when the server said 304 Not Modified) and the
    validators to send next time."""

    collection: Collection = field(default_factory=Collection)
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False


@runtime_checkable
class ConditionalSource(Protocol):
    name: str

    def collect(self, now: datetime) -> Collection: ...

    def fetch(self, now: datetime, prior: SourceState | None) -> FetchOutcome: ...


def fetch_source(source: Source, now: datetime, prior: SourceState | None) -> FetchOutcome:
    """Collect ``source``; a conditional source gets the validators of ``prior``."""
    if isinstance(source, ConditionalSource):
        return source.fetch(now, prior)
    return FetchOutcome(source.collect(now))


def is_partial_listing(source: Source) -> bool:
    """True for sources that show only their latest items (feeds, listing pages): an item
    missing from them has scrolled off, not been deleted."""
    return bool(getattr(source, "partial_listing", False))


def with_filters(source: Source, config: FilterFields) -> Source:
    """``source`` with the include/exclude/max_age filters of its config entry, if any."""
    item_filter = ItemFilter.from_config(config)
    return FilteredSource(source, item_filter) if item_filter.active else source


@dataclass
class FilteredSource:
    """A source with the per-source filters of its config applied to what it collects."""

    inner: Source
    filter: ItemFilter
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = self.inner.name

    @property
    def partial_listing(self) -> bool:
        return is_partial_listing(self.inner)

    def collect(self, now: datetime) -> Collection:
        return self.fetch(now, None).collection

    def fetch(self, now: datetime, prior: SourceState | None) -> FetchOutcome:
        outcome = fetch_source(self.inner, now, prior)
        kept = tuple(self.filter.apply(outcome.collection.items, now))
        return replace(outcome, collection=replace(outcome.collection, items=kept))


def clean_html(raw_html: str, base_url: str | None) -> str:
    """Sanitise untrusted HTML (:func:`digest.markup.sanitize_html`) after resolving relative
    ``href``/``src`` against ``base_url``, a document URL (the feed's or the entry's)."""
    if base_url:

        def resolve(element: str, attribute: str, value: str) -> str | None:
            # nh3 checks URL schemes before this filter runs: check the result again.
            if attribute not in ("href", "src"):
                return value
            if not value.strip():
                return None
            absolute = urljoin(base_url, value.strip())
            return absolute if urlsplit(absolute).scheme in URL_SCHEMES else None

        raw_html = nh3.clean(
            raw_html,
            tags=ALLOWED_TAGS,
            attributes=ALLOWED_ATTRIBUTES,
            url_schemes=URL_SCHEMES,
            link_rel=None,
            attribute_filter=resolve,
            strip_comments=True,
        )
    return sanitize_html(raw_html)


def http_url(value: str | None, base_url: str | None = None) -> str | None:
    """``value`` made absolute against ``base_url``, without a fragment; None unless the
    result is an http(s) URL (a ``javascript:`` link never becomes an item's URL)."""
    if not value or not value.strip():
        return None
    absolute = urljoin(base_url, value.strip()) if base_url else value.strip()
    parts = urlsplit(absolute)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return urlunsplit(parts._replace(fragment=""))


def fingerprint(*parts: Any) -> str:
    """SHA-256 of the JSON of ``parts``: content hashes and keys of id-less items."""
    data = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(data.encode()).hexdigest()


def collapse_whitespace(text: str) -> str:
    """``text`` with every run of whitespace (line breaks included) one space, stripped."""
    return " ".join(text.split())


def merge_tags(*groups: Sequence[str]) -> tuple[str, ...]:
    """Tags in order of appearance, without blanks and case-insensitive duplicates."""
    seen: set[str] = set()
    merged: list[str] = []
    for group in groups:
        for tag in group:
            tag = collapse_whitespace(tag)
            if tag and tag.casefold() not in seen:
                seen.add(tag.casefold())
                merged.append(tag)
    return tuple(merged)
