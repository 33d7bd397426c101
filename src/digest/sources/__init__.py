"""Sources turn something outside (a folder, a feed) into :class:`~digest.models.Item` values.

Each source reads everything it can and reports what it could not as problems; one bad file
never hides the others. A source that cannot be read at all raises :class:`SourceError`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from digest.config import FolderSourceConfig, LoadedConfig
from digest.errors import ConfigError
from digest.models import Collection


class Source(Protocol):
    name: str

    def collect(self, now: datetime) -> Collection: ...


def build_sources(loaded: LoadedConfig) -> list[Source]:
    from digest.sources.base import build_network_source, with_filters
    from digest.sources.folder import FolderSource

    sources: list[Source] = []
    for entry in loaded.config.sources:
        source: Source
        if isinstance(entry, FolderSourceConfig):
            source = FolderSource(
                name=entry.source_name,
                root=loaded.resolve(entry.path),
                pattern=entry.pattern,
                base_url=loaded.config.site.base_url,
                timezone=loaded.config.site.tz,
            )
        else:
            source = build_network_source(loaded, entry)
        if any(known.name == source.name for known in sources):
            raise ConfigError(f"{loaded.path}: two sources are named {source.name!r}; "
                              "give one of them another 'name'")
        sources.append(with_filters(source, entry))
    return sources


def sources_for(loaded: LoadedConfig, digest_name: str) -> list[Source]:
    wanted = loaded.digest(digest_name).sources
    sources = build_sources(loaded)
    if wanted is None:
        return sources
    return [source for source in sources if source.name in wanted]
