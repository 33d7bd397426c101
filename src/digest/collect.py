"""Gather items from every source and choose the ones a period's issue contains. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from digest.errors import SourceError
from digest.models import Collection, Item, Problem
from digest.schedule import Period
from digest.sources import Source


def collect(sources: Iterable[Source], now: datetime) -> Collection:
    """Items of all sources; a source that fails entirely becomes an error problem."""
    items: list[Item] = []
    problems: list[Problem] = []
    for source in sources:
        try:
            result = source.collect(now)
        except SourceError as exc:
            problems.append(Problem("error", source.name, str(exc)))
            continue
        items.extend(result.items)
        problems.extend(result.problems)
    return Collection(items=tuple(items), problems=tuple(problems))


def newest_first(items: Iterable[Item]) -> list[Item]:
    return sorted(items, key=lambda item: (item.published_at, item.uid), reverse=True)


def select_for_period(
    items: Sequence[Item], period: Period, max_items: int
) -> tuple[list[Item], list[Item]]:
    """Published (not draft) items dated within the period, newest first, at most
    ``max_items``; returns (chosen, left out for lack of room)."""
    eligible = newest_first(
        item for item in items if not item.draft and period.contains(item.published_at)
    )
    return eligible[:max_items], eligible[max_items:]
