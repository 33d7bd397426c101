"""Gather items from every source (pure but for the sources' own reading)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from digest.clock import Clock, utc_now
from digest.errors import SourceError
from digest.models import Collection, Item, Problem, SourceState
from digest.sources import Source
from digest.sources.base import fetch_source


def collect(
    sources: Iterable[Source],
    as_of: datetime,
    states: Mapping[str, SourceState] | None = None,
    *,
    clock: Clock = utc_now,
) -> Collection:
    """Items of all sources; a source that fails entirely becomes an error problem.

    ``as_of`` is the moment the items are read for (it dates undated entries and measures
    ``max_age``); ``clock`` stamps each source's attempt in its state (when it happened).

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
            outcome = fetch_source(source, as_of, prior)
        except SourceError as exc:
            problems.append(Problem("error", source.name, str(exc)))
            after[source.name] = before.failed(clock(), str(exc))
            continue
        result = outcome.collection
        items.extend(result.items)
        problems.extend(result.problems)
        after[source.name] = before.succeeded(
            clock(), len(result.items), outcome.etag, outcome.last_modified, outcome.not_modified
        )
    return Collection(items=tuple(items), problems=tuple(problems), states=after)


def newest_first(items: Iterable[Item]) -> list[Item]:
    return sorted(items, key=lambda item: (item.published_at, item.uid), reverse=True)
