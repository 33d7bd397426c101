"""Items seen, sources' health and digest baselines."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import func, select, update

from digest.models import Item, SourceState
from digest.store._base import StoreBase
from digest.store.rows import StoredItem, _json, item_from_json, item_to_json
from digest.store.schema import digests, issue_items, items, source_states


class ItemStore(StoreBase):
    def record_items(
        self, found: Iterable[Item], now: datetime, complete_sources: Iterable[str] = ()
    ) -> int:
        """Upsert what the sources returned; returns how many items are new.

        An edited item keeps its first-seen time and is not sent again. Items of a source
        that was read completely but no longer lists them are marked absent (never sent)."""
        new = 0
        found = list(found)
        with self.begin() as conn:
            existing = {
                row.uid: row
                for row in conn.execute(
                    select(items.c.id, items.c.uid, items.c.content_hash, items.c.present)
                )
            }
            for item in found:
                row = existing.get(item.uid)
                values = {
                    "content_hash": item.content_hash,
                    "published_at": item.published_at,
                    "last_seen_at": now,
                    "present": True,
                    "draft": item.draft,
                    "data": item_to_json(item),
                }
                if row is None:
                    # another process collecting at the same moment may insert it first
                    added = conn.execute(
                        self.upsert(items)
                        .values(uid=item.uid, source=item.source, first_seen_at=now, **values)
                        .on_conflict_do_nothing(index_elements=[items.c.uid])
                        .returning(items.c.id)
                    ).first()
                    if added is not None:
                        new += 1
                    else:
                        conn.execute(update(items).where(items.c.uid == item.uid).values(**values))
                elif row.content_hash != item.content_hash or not row.present:
                    conn.execute(update(items).where(items.c.id == row.id).values(**values))
                else:
                    conn.execute(update(items).where(items.c.id == row.id).values(last_seen_at=now))
            seen = {item.uid for item in found}
            for source in complete_sources:
                gone = [
                    row.id
                    for uid, row in existing.items()
                    if uid not in seen and uid.startswith(f"{source}:") and row.present
                ]
                if gone:
                    conn.execute(update(items).where(items.c.id.in_(gone)).values(present=False))
        return new

    def unsent_items(self, digest: str) -> list[StoredItem]:
        """Present, non-draft items that no issue of ``digest`` contains yet."""
        taken = select(issue_items.c.item_id).where(issue_items.c.digest == digest)
        query = select(items.c.id, items.c.data, items.c.first_seen_at).where(
            items.c.present.is_(True), items.c.draft.is_(False), items.c.id.not_in(taken)
        )
        with self.engine.connect() as conn:
            return [
                StoredItem(row.id, item_from_json(_json(row.data)), row.first_seen_at)
                for row in conn.execute(query)
            ]

    def sources_first_seen(self) -> dict[str, datetime]:
        """Per source, when its first items were seen (its first fetch that found any)."""
        query = select(items.c.source, func.min(items.c.first_seen_at)).group_by(items.c.source)
        with self.engine.connect() as conn:
            return {source: first for source, first in conn.execute(query)}

    def known_uids(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(select(items.c.uid)).scalars())

    def issue_items(self, issue_id: int) -> list[Item]:
        return [item for _, item in self.issue_item_rows(issue_id)]

    def issue_item_rows(self, issue_id: int) -> list[tuple[int, Item]]:
        """The issue's items in order, each with its id."""
        query = (
            select(items.c.id, items.c.data)
            .join(issue_items, issue_items.c.item_id == items.c.id)
            .where(issue_items.c.issue_id == issue_id)
            .order_by(issue_items.c.position)
        )
        with self.engine.connect() as conn:
            return [(row.id, item_from_json(_json(row.data))) for row in conn.execute(query)]

    # -- sources

    def source_states(self) -> dict[str, SourceState]:
        """What the latest collection left per source: validators and health."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(source_states)).all()
        return {
            row.source: SourceState(
                etag=row.etag,
                last_modified=row.last_modified,
                last_attempt_at=row.last_attempt_at,
                last_success_at=row.last_success_at,
                last_error=row.last_error,
                item_count=row.item_count,
                failures=row.failures,
            )
            for row in rows
        }

    def save_source_states(self, states: Mapping[str, SourceState]) -> None:
        with self.begin() as conn:
            for name, state in states.items():
                values = {
                    "etag": state.etag,
                    "last_modified": state.last_modified,
                    "last_attempt_at": state.last_attempt_at,
                    "last_success_at": state.last_success_at,
                    "last_error": state.last_error,
                    "item_count": state.item_count,
                    "failures": state.failures,
                }
                # one statement: two processes collecting at once never both insert
                conn.execute(
                    self.upsert(source_states)
                    .values(source=name, **values)
                    .on_conflict_do_update(index_elements=[source_states.c.source], set_=values)
                )

    # -- digests

    def digest_baseline(self, digest: str) -> tuple[datetime, datetime] | None:
        """(started_at, baseline) of a digest that has begun, else None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(digests.c.started_at, digests.c.baseline).where(digests.c.name == digest)
            ).first()
        return None if row is None else (row.started_at, row.baseline)
