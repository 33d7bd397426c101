"""What the store hands out: frozen rows and item (de)serialisation."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from digest.errors import StoreError
from digest.models import Image, Item


@dataclass(frozen=True)
class StoredItem:
    id: int
    item: Item
    first_seen_at: datetime


@dataclass(frozen=True)
class IssueRow:
    id: int
    digest: str
    period_key: str
    period_start: datetime | None
    period_end: datetime
    status: str
    subject: str
    preheader: str
    html: str
    text: str
    item_count: int
    created_at: datetime
    completed_at: datetime | None
    note: str | None


@dataclass(frozen=True)
class NewVariant:
    """A variant of an issue to freeze: its key (unique in the issue), language, the ids of its
    items in order, and its rendering."""

    key: str
    language: str
    item_ids: tuple[int, ...]
    subject: str
    preheader: str
    html: str
    text: str


@dataclass(frozen=True)
class VariantRow(NewVariant):
    id: int = 0
    issue_id: int = 0


@dataclass(frozen=True)
class VariantCount:
    """One rendering of an issue as the staff page lists it: ``id`` None and ``language`` None
    for the issue's own rendering (the site's language), else a frozen variant."""

    id: int | None
    language: str | None
    items: int
    recipients: int


@dataclass(frozen=True)
class ReaderSettings:
    """A subscriber's language and time zone (None: the site's) and topics per digest."""

    language: str | None
    timezone: str | None
    topics: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class ReaderUpdate:
    """What an import says about a reader's settings: a language or time zone of None, and a
    digest not named in ``topics``, keep what is stored (an empty CSV cell changes nothing)."""

    language: str | None = None
    timezone: str | None = None
    topics: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.language or self.timezone or self.topics)


@dataclass(frozen=True)
class ImportCounts:
    """What a bulk import wrote: addresses added and updated, readers whose settings changed."""

    added: int
    updated: int
    settings_changed: int


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    issue_id: int
    subscriber_id: int
    email: str
    name: str
    message_id: str
    status: str
    attempts: int
    token: str
    verp_token: str = ""  # the return-path token (bounces.return_path)
    variant_id: int | None = None  # the issue variant it sends; None: the issue's own


@dataclass(frozen=True)
class Waiting:
    """The pending rows of an issue still waiting for their readers' local delivery time:
    how many, and the first and last of their not-before times (None when there are none)."""

    count: int = 0
    first: datetime | None = None
    last: datetime | None = None

    def __bool__(self) -> bool:
        return self.count > 0


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str
    status: str
    token: str
    digests: tuple[str, ...]


@dataclass(frozen=True)
class Consent:
    id: int
    token: str
    email: str
    name: str
    digests: tuple[str, ...]
    requested_at: datetime
    expires_at: datetime
    request_ip: str
    request_user_agent: str
    form_url: str
    consent_version: str
    confirmed_at: datetime | None
    confirm_ip: str | None
    confirm_user_agent: str | None
    language: str | None = None  # the frame language chosen at sign-up
    # The topics ticked per digest (a digest named with none: every topic), set on confirmation.
    topics: dict[str, tuple[str, ...]] = field(default_factory=dict)


class NotGiven:
    """The type of :data:`NOT_GIVEN`: an optional argument left out (None is a value)."""


NOT_GIVEN = NotGiven()


class IssueExists(StoreError):
    """Another sender created the issue for this period first."""


def item_to_json(item: Item) -> dict[str, Any]:
    return {
        "source": item.source,
        "key": item.key,
        "title": item.title,
        "published_at": item.published_at.isoformat(),
        "summary": item.summary,
        "body_html": item.body_html,
        "content_hash": item.content_hash,
        "url": item.url,
        "image": None
        if item.image is None
        else {
            "src": item.image.src,
            "alt": item.image.alt,
            "width": item.image.width,
            "height": item.image.height,
        },
        "tags": list(item.tags),
        "draft": item.draft,
        "dated": item.dated,
    }


def item_from_json(data: dict[str, Any]) -> Item:
    image = data.get("image")
    return Item(
        source=data["source"],
        key=data["key"],
        title=data["title"],
        published_at=datetime.fromisoformat(data["published_at"]),
        summary=data["summary"],
        body_html=data["body_html"],
        content_hash=data["content_hash"],
        url=data.get("url"),
        image=None if image is None else Image(**image),
        tags=tuple(data.get("tags", ())),
        draft=bool(data.get("draft", False)),
        dated=bool(data.get("dated", True)),
    )


def new_token() -> str:
    """Unguessable: 192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


def _consent(row: Any) -> Consent:
    values = dict(row._mapping)
    values["digests"] = tuple(name for name in values["digests"].split(";") if name)
    topics = _json(values["topics"]) if values.get("topics") else {}
    values["topics"] = {digest: tuple(chosen) for digest, chosen in topics.items()}
    return Consent(**values)


def _json(value: Any) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(value) if isinstance(value, str) else value
    return result


@dataclass(frozen=True)
class SubscriberRecord:
    """A subscriber as the staff pages show them: the row, its times and digests."""

    id: int
    email: str
    name: str
    status: str
    digests: tuple[str, ...]
    created_at: datetime
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None

    @classmethod
    def from_row(cls, row: Any, digests: Iterable[str]) -> SubscriberRecord:
        return cls(
            row.id, row.email, row.name, row.status, tuple(digests), row.created_at,
            row.confirmed_at, row.unsubscribed_at,
        )  # fmt: skip


@dataclass(frozen=True)
class SubscriberPage:
    rows: list[SubscriberRecord]
    next_after: str | None  # the ``after`` of the next page, None on the last


@dataclass(frozen=True)
class SubscriberDelivery:
    id: int
    issue_id: int
    digest: str
    period_key: str
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    message_id: str


@dataclass(frozen=True)
class IssueDelivery:
    """One delivery row of an issue as the staff pages show it."""

    id: int
    subscriber_id: int
    email: str
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    message_id: str


@dataclass(frozen=True)
class BounceView:
    """One bounce or complaint report about a subscriber, as the staff pages show it."""

    received_at: datetime
    kind: str
    status: str
    diagnostic: str
    source: str
    issue_id: int | None
