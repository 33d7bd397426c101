"""Gather items from every source (pure but for the sources' own reading)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from digest.errors import SourceError
from digest.models import Collection, Item, Problem, SourceState
from digest.sources import Source
from digest.sources.base import fetch_source


def collect(
    sources: Iterable[Source], now: datetime, states: Mapping[str, SourceState] | None = None
) -> Collection:
    """Items of all sources; a source that fails entirely becomes an error problem.

    ``states`` (from the store) gives feeds and pages their conditional-GET validators; a
    source whose document did not change (HTTP 304) contributes no items this time. The
    result's ``states`` holds every source's state after this attempt, for the store."""
    items: list[Item] = []
    problems: list[Problem] = []
    after: dict[str, SourceState] = {}
    for source in sources:
        prior = (states or {}).get(source.name)
        before = prior or SourceState()
        try:
            outcome = fetch_source(source, now, prior)
        except SourceError as exc:
            problems.append(Problem("error", source.name, str(exc)))
            after[source.name] = before.failed(now, str(exc))
            continue
        result = outcome.collection
        items.extend(result.items)
        problems.extend(result.problems)
        after[source.name] = before.succeeded(
            now, len(result.items), outcome.etag, outcome.last_modified, outcome.not_modified
        )
    return Collection(items=tuple(items), problems=tuple(problems), states=after)


def newest_first(items: Iterable[Item]) -> list[Item]:
    return sorted(items, key=lambda item: (item.published_at, item.uid), reverse=True)
