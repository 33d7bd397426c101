"""Sources turn something outside (a folder, a feed) into :class:`~digest.models.Item` values.

Each source reads everything it can and reports what it could not as problems; one bad file
never hides the others. A source that cannot be read at all raises :class:`SourceError`.

The kinds are listed in :mod:`digest.sources.registry`; each kind's module builds its own
sources, with the kit of :mod:`digest.sources.base`. This module assembles the sources of a
config from them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest.errors import ConfigError
from digest.sources.base import Source, SourceContext, with_filters
from digest.sources.registry import kind_of

if TYPE_CHECKING:
    from digest.config import LoadedConfig

__all__ = ["Source", "build_sources", "sources_for"]


def build_sources(loaded: LoadedConfig) -> list[Source]:
    site = loaded.config.site
    context = SourceContext(
        base_dir=loaded.base_dir, site_url=site.base_url, locale=site.locale, timezone=site.tz
    )
    sources: list[Source] = []
    for entry in loaded.config.sources:
        source = kind_of(entry).build(entry, context)
        if any(known.name == source.name for known in sources):
            raise ConfigError(
                f"{loaded.path}: two sources are named {source.name!r}; "
                "give one of them another 'name'"
            )
        sources.append(with_filters(source, entry))
    return sources


def sources_for(loaded: LoadedConfig, digest_name: str) -> list[Source]:
    wanted = loaded.digest(digest_name).sources
    sources = build_sources(loaded)
    if wanted is None:
        return sources
    return [source for source in sources if source.name in wanted]
