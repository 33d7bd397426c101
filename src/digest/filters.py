"""Include/exclude filters and a maximum age, per source and per digest. Pure.

- ``include``: keep only items that match at least one listed tag or keyword;
- ``exclude``: drop items that match any listed tag or keyword;
- ``max_age``: drop items published longer ago than this, counted back from "now" (the
  collection time for a source, the end of the issue's period for a digest).

Tags match whole tags, case-insensitively. Keywords match anywhere in the title or the
summary, case-insensitively (so ``Prävention`` also finds "Präventionswoche").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import Field

from digest.fields import Duration, StrictModel
from digest.models import Item


class MatchConfig(StrictModel):
    """Tags (exact, case-insensitive) and keywords (substring of title or summary,
    case-insensitive); an item matches when any one of them does."""

    tags: list[str] = Field(default=[])
    keywords: list[str] = Field(default=[])


class FilterFields(StrictModel):
    """Filters shared by every source and every digest: the keys of their config entries."""

    include: MatchConfig | None = Field(
        default=None, description="Keep only items that match one of these tags or keywords."
    )
    exclude: MatchConfig | None = Field(
        default=None, description="Drop items that match one of these tags or keywords."
    )
    max_age: Duration | None = Field(
        default=None, description="Drop items published longer ago than this (30d, 12h, 2w)."
    )


@dataclass(frozen=True)
class Match:
    tags: frozenset[str] = frozenset()
    keywords: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: MatchConfig | None) -> Match | None:
        if config is None:
            return None
        tags = frozenset(tag.strip().casefold() for tag in config.tags if tag.strip())
        keywords = tuple(word.strip().casefold() for word in config.keywords if word.strip())
        return cls(tags, keywords) if tags or keywords else None

    def matches(self, item: Item) -> bool:
        if self.tags and any(tag.casefold() in self.tags for tag in item.tags):
            return True
        if self.keywords:
            text = f"{item.title}\n{item.summary}".casefold()
            return any(word in text for word in self.keywords)
        return False


@dataclass(frozen=True)
class ItemFilter:
    include: Match | None = None
    exclude: Match | None = None
    max_age: timedelta | None = None

    @classmethod
    def from_config(cls, config: FilterFields) -> ItemFilter:
        return cls(
            include=Match.from_config(config.include),
            exclude=Match.from_config(config.exclude),
            max_age=config.max_age,
        )

    @property
    def active(self) -> bool:
        return self.include is not None or self.exclude is not None or self.max_age is not None

    def accepts(self, item: Item, now: datetime) -> bool:
        if self.include is not None and not self.include.matches(item):
            return False
        if self.exclude is not None and self.exclude.matches(item):
            return False
        return self.max_age is None or item.published_at >= now - self.max_age

    def apply(self, items: Iterable[Item], now: datetime) -> list[Item]:
        if not self.active:
            return list(items)
        return [item for item in items if self.accepts(item, now)]
