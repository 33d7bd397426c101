"""A digest for each reader: which of an issue's items each reader gets, grouped into variants.

Pure. A reader's *profile* is what the frame and the selection depend on: their language and
the topics they chose for the digest. The rule, for a digest with topics T:

- an item tagged with one of T goes to readers who chose one of its topics, or chose none;
- an item with none of T goes to everyone;
- a reader whose selection is empty gets no mail for the issue (never an empty digest).

A *variant* is what differs between messages: (items chosen, language). Readers with different
topics may share a variant (when the issue holds nothing that tells them apart); each variant is
rendered once, however many readers it has.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from digest.models import Item

T = TypeVar("T")


@dataclass(frozen=True)
class Profile:
    """What a reader's message depends on: a language (None: the site's) and chosen topics."""

    language: str | None
    topics: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Variant:
    key: str  # unique within its issue: the language and the positions of its items
    language: str
    positions: tuple[int, ...]  # indexes into the items, in the order


@dataclass(frozen=True)
class VariantPlan:
    variants: tuple[Variant, ...]
    assignment: Mapping[Profile, str | None]  # profile -> variant key (None: no mail)

    def variant_for(self, profile: Profile) -> str | None:
        return self.assignment[profile]


def wants(item: Item, topics: Iterable[str], chosen: frozenset[str]) -> bool:
    """Whether a reader who chose ``chosen`` (of the digest's ``topics``) gets ``item``."""
    tagged = set(item.tags).intersection(topics)
    return not tagged or not chosen or bool(tagged & chosen)


def plan_variants(
    items: Sequence[Item],
    topics: Iterable[str],
    profiles: Iterable[Profile],
    *,
    site_language: str,
    languages: Iterable[str],
) -> VariantPlan:
    """The variants the readers with ``profiles`` need, and which profile gets which.

    ``languages`` are those with a catalogue: a profile in another (or none) reads the site's.
    Topics a reader chose that the digest no longer declares are ignored."""
    declared = frozenset(topics)
    known = frozenset(languages)
    variants: dict[str, Variant] = {}
    assignment: dict[Profile, str | None] = {}
    for profile in profiles:
        language = profile.language if profile.language in known else site_language
        assert language is not None
        chosen = profile.topics & declared
        positions = tuple(n for n, item in enumerate(items) if wants(item, declared, chosen))
        if not positions:
            assignment[profile] = None
            continue
        key = variant_key(language, positions, len(items))
        variants.setdefault(key, Variant(key, language, positions))
        assignment[profile] = key
    ordered = sorted(variants.values(), key=lambda v: (v.language, -len(v.positions), v.key))
    return VariantPlan(tuple(ordered), assignment)


def variant_key(language: str, positions: Sequence[int], total: int) -> str:
    """``de:all`` or ``en:0,2,5`` (a digest of the positions if that is long): the same for
    the same variant."""
    chosen = "all" if len(positions) == total else ",".join(map(str, positions))
    if len(chosen) > 120:
        chosen = hashlib.sha256(chosen.encode()).hexdigest()[:40]
    return f"{language}:{chosen}"


def pick(items: Sequence[T], positions: Sequence[int]) -> list[T]:
    return [items[n] for n in positions]
