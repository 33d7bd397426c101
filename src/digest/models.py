"""Value objects that flow through the pipeline: content items and what a source reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Severity = Literal["error", "warning"]


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
class Collection:
    items: tuple[Item, ...] = ()
    problems: tuple[Problem, ...] = field(default=())
