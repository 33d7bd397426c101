"""Value objects that flow through the pipeline: content items and what a source reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Severity = Literal["error", "warning"]

# Tokens of letters, digits and underscores only: they survive autoescape, MJML and lxml's
# URL-attribute escaping unchanged, so they can be found and replaced in the final HTML.
PLACEHOLDERS = {
    "greeting": "__digest_greeting__",
    "unsubscribe_url": "__digest_unsubscribe_url__",
    "preferences_url": "__digest_preferences_url__",
}


@dataclass(frozen=True)
class Image:
    src: str
    alt: str
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class Item:
    """One content item. ``key`` is stable within its source (front-matter id, feed guid or
    file path); ``(source, key)`` identifies it everywhere."""

    source: str
    key: str
    title: str
    published_at: datetime
    summary: str
    body_html: str
    content_hash: str
    url: str | None = None
    image: Image | None = None
    tags: tuple[str, ...] = ()
    draft: bool = False
    # False: the source gave no date; ``published_at`` is then when it was first seen, which
    # orders it but is never shown as its date.
    dated: bool = True

    @property
    def uid(self) -> str:
        return f"{self.source}:{self.key}"


@dataclass(frozen=True)
class Problem:
    """Something a check or a source found; ``where`` names the file/field/line."""

    severity: Severity
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.message}"


@dataclass(frozen=True)
class SourceState:
    """What is remembered about a source between collections: HTTP validators for a
    conditional GET (``etag``, ``last_modified``) and its health. Persisted by the store."""

    etag: str | None = None
    last_modified: str | None = None
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None  # None while the latest attempt succeeded
    item_count: int = 0  # items in the latest successful collection
    failures: int = 0  # consecutive failed attempts

    @property
    def ok(self) -> bool:
        return self.last_error is None and self.last_success_at is not None

    def succeeded(
        self,
        now: datetime,
        item_count: int,
        etag: str | None,
        last_modified: str | None,
        not_modified: bool = False,
    ) -> SourceState:
        """The state after a successful attempt; a 304 keeps the previous item count."""
        return SourceState(
            etag=etag,
            last_modified=last_modified,
            last_attempt_at=now,
            last_success_at=now,
            last_error=None,
            item_count=self.item_count if not_modified else item_count,
            failures=0,
        )

    def failed(self, now: datetime, error: str) -> SourceState:
        """The state after a failed attempt: validators and the last success are kept."""
        return SourceState(
            etag=self.etag,
            last_modified=self.last_modified,
            last_attempt_at=now,
            last_success_at=self.last_success_at,
            last_error=error,
            item_count=self.item_count,
            failures=self.failures + 1,
        )


@dataclass(frozen=True)
class Collection:
    items: tuple[Item, ...] = ()
    problems: tuple[Problem, ...] = field(default=())
    states: Mapping[str, SourceState] = field(default_factory=dict)
    """Per source name, the state after this collection (empty when nobody asked)."""

    @property
    def failed_sources(self) -> tuple[str, ...]:
        return tuple(name for name, state in self.states.items() if state.last_error is not None)

    @property
    def all_failed(self) -> bool:
        """True when there were sources and every one of them failed this time."""
        return bool(self.states) and len(self.failed_sources) == len(self.states)


@dataclass(frozen=True)
class RenderedIssue:
    """An issue's frozen parts, rendered once; the per-recipient values are still
    :data:`PLACEHOLDERS`."""

    subject: str
    preheader: str
    html: str
    text: str
