"""What the network sources share: the outcome of one fetch, conditional GET, filters, keys.

A source that keeps HTTP validators between runs implements :class:`ConditionalSource`
(``fetch(now, prior)``); every other source only has ``collect(now)``. :func:`fetch_source`
calls either, so :func:`digest.collect.collect` treats them alike.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urljoin, urlsplit, urlunsplit

import nh3

from digest.config import FeedSourceConfig, FilterFields, LoadedConfig, PageSourceConfig
from digest.filters import ItemFilter
from digest.markup import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, URL_SCHEMES, sanitize_html
from digest.models import Collection, SourceState
from digest.sources import Source


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


def build_network_source(
    loaded: LoadedConfig, entry: FeedSourceConfig | PageSourceConfig
) -> Source:
    from digest.sources.feed import FeedSource
    from digest.sources.http import FetchOptions, default_user_agent
    from digest.sources.page import PageSource

    site = loaded.config.site
    options = FetchOptions(
        timeout=entry.timeout,
        max_bytes=entry.max_bytes,
        user_agent=entry.user_agent or default_user_agent(site.base_url),
    )
    if isinstance(entry, FeedSourceConfig):
        return FeedSource(
            name=entry.source_name,
            url=entry.url,
            options=options,
            base_dir=loaded.base_dir,
            tags=tuple(entry.tags),
        )
    return PageSource(
        name=entry.source_name,
        config=entry,
        options=options,
        locale=entry.locale or site.locale,
        timezone=site.tz,
        base_dir=loaded.base_dir,
    )


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


def to_utc(moment: datetime, default_zone: Any = UTC) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=default_zone)
    return moment.astimezone(UTC)


def fingerprint(*parts: Any) -> str:
    """SHA-256 of the JSON of ``parts``: content hashes and keys of id-less items."""
    data = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(data.encode()).hexdigest()


def single_line(text: str) -> str:
    return " ".join(text.split())


def merge_tags(*groups: Sequence[str]) -> tuple[str, ...]:
    """Tags in order of appearance, without blanks and case-insensitive duplicates."""
    seen: set[str] = set()
    merged: list[str] = []
    for group in groups:
        for tag in group:
            tag = single_line(tag)
            if tag and tag.casefold() not in seen:
                seen.add(tag.casefold())
                merged.append(tag)
    return tuple(merged)
