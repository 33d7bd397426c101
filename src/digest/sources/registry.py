"""The table of source kinds. A kind is one module that declares ``KIND``
(:class:`~digest.sources.base.SourceKind`: the model of its config entry and how to build it);
adding a kind is that module plus one line here. The config schema validates ``sources:``
entries by these models, in this order."""

from __future__ import annotations

from typing import Any

from digest.sources import feed, folder, page
from digest.sources.base import SourceEntry, SourceKind

SOURCE_KINDS: tuple[SourceKind[Any], ...] = (
    folder.KIND,
    feed.KIND,
    page.KIND,
)

KIND_NAMES: tuple[str, ...] = tuple(kind.name for kind in SOURCE_KINDS)
ENTRY_MODELS: tuple[type[SourceEntry], ...] = tuple(kind.entry for kind in SOURCE_KINDS)


def kind_of(entry: SourceEntry) -> SourceKind[Any]:
    """The kind whose model ``entry`` is."""
    return SOURCE_KINDS[ENTRY_MODELS.index(type(entry))]
