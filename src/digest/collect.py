"""Gather items from every source (pure but for the sources' own reading)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime

from digest.clock import Clock, utc_now
from digest.errors import SourceError
from digest.markup import BODY_MAX_BYTES, clean_text
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
        for item in result.items:
            cleaned, notes = clean_item(item)
            items.append(cleaned)
            problems.extend(Problem("warning", item.uid, note) for note in notes)
        problems.extend(result.problems)
        after[source.name] = before.succeeded(
            clock(), len(result.items), outcome.etag, outcome.last_modified, outcome.not_modified
        )
    return Collection(items=tuple(items), problems=tuple(problems), states=after)


def clean_item(item: Item) -> tuple[Item, list[str]]:
    """The item as the store keeps it: every text without characters that are not text
    (control characters, surrogates, noncharacters: one of them used to fail a whole issue in
    MJML), and notes on what a reader will not see whole."""
    notes: list[str] = []
    image = item.image
    if image is not None:
        image = replace(image, src=clean_text(image.src), alt=clean_text(image.alt))
    cleaned = replace(
        item,
        title=clean_text(item.title),
        summary=clean_text(item.summary),
        body_html=clean_text(item.body_html),
        url=clean_text(item.url) if item.url else None,
        image=image,
        tags=tuple(clean_text(tag) for tag in item.tags),
    )
    if cleaned != item:
        notes.append("characters that are not text (control characters) were removed")
    size = len(cleaned.body_html.encode("utf-8"))
    if size > BODY_MAX_BYTES and not item.url:
        notes.append(
            f"body of {size / 1_000_000:.1f} MB is too long for an email: the email shows its "
            f"first {BODY_MAX_BYTES // 1024} KB and says it was shortened"
        )
    return cleaned, notes


def newest_first(items: Iterable[Item]) -> list[Item]:
    return sorted(items, key=lambda item: (item.published_at, item.uid), reverse=True)
