"""Reader profiles: each subscriber's language, time zone and the topics chosen per digest."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    Integer,
    Row,
    and_,
    any_,
    bindparam,
    select,
    text,
)

from digest.store._base import StoreBase
from digest.store.rows import ReaderSettings, ReaderUpdate
from digest.store.schema import (
    SUBSCRIBER_ACTIVE,
    subscribers,
    subscription_topics,
    subscriptions,
)
from digest.variants import Profile

_PAGE = 5000
# PostgreSQL: one statement over arrays however many readers (no per-row parameter sets).
_PG_SET_READERS = text(
    "UPDATE subscribers AS s SET language = u.l, timezone = u.z "
    "FROM unnest(CAST(:ids AS integer[]), CAST(:languages AS text[]), CAST(:zones AS text[])) "
    "AS u(i, l, z) WHERE s.id = u.i"
)
_PG_DELETE_TOPICS = text(
    "DELETE FROM subscription_topics AS t "
    "USING unnest(CAST(:ids AS integer[]), CAST(:digests AS text[])) AS u(i, d) "
    "WHERE t.subscriber_id = u.i AND t.digest = u.d"
)
_PG_INSERT_TOPICS = text(
    "INSERT INTO subscription_topics (subscriber_id, digest, topic) "
    "SELECT * FROM unnest(CAST(:ids AS integer[]), CAST(:digests AS text[]), "
    "CAST(:topics AS text[]))"
)

# SQLite: plain parameter tuples straight to the driver (per-row dicts through SQLAlchemy
# cost more than the statements themselves at 100k rows).
_SQLITE_SET_READERS = "UPDATE subscribers SET language = ?, timezone = ? WHERE id = ?"
_SQLITE_DELETE_TOPICS = "DELETE FROM subscription_topics WHERE subscriber_id = ? AND digest = ?"
_SQLITE_INSERT_TOPICS = (
    "INSERT INTO subscription_topics (subscriber_id, digest, topic) VALUES (?, ?, ?)"
)


@dataclass
class ReaderWrites:
    """What to write for readers: (id, language, time zone) settings, (id, digest, topics)
    choices, and the (id, digest) pairs whose stored topics those replace. An import gathers
    them over all its batches and writes them once: on PostgreSQL a join per batch would scan
    rows the planner's statistics do not know yet, 100 times for 100k rows."""

    settings: list[tuple[int, str | None, str | None]] = field(default_factory=list)
    topics: list[tuple[int, str, tuple[str, ...]]] = field(default_factory=list)
    stale: list[tuple[int, str]] = field(default_factory=list)
    changed: int = 0  # readers whose settings change


def write_readers(conn: Connection, writes: ReaderWrites) -> None:
    """Write ``writes``: a few statements however many rows."""
    pairs = writes.stale
    chosen = [(i, digest, topic) for i, digest, wanted in writes.topics for topic in set(wanted)]
    settings = writes.settings
    if conn.dialect.name == "sqlite":
        if settings:
            conn.exec_driver_sql(
                _SQLITE_SET_READERS, [(lang, zone, i) for i, lang, zone in settings]
            )
        if pairs:
            conn.exec_driver_sql(_SQLITE_DELETE_TOPICS, pairs)
        if chosen:
            conn.exec_driver_sql(_SQLITE_INSERT_TOPICS, chosen)
        return
    if settings:
        conn.execute(
            _PG_SET_READERS,
            {
                "ids": [i for i, _, _ in settings],
                "languages": [lang for _, lang, _ in settings],
                "zones": [zone for _, _, zone in settings],
            },
        )
    if pairs:
        conn.execute(
            _PG_DELETE_TOPICS,
            {"ids": [i for i, _ in pairs], "digests": [digest for _, digest in pairs]},
        )
    if chosen:
        conn.execute(
            _PG_INSERT_TOPICS,
            {
                "ids": [i for i, _, _ in chosen],
                "digests": [d for _, d, _ in chosen],
                "topics": [t for _, _, t in chosen],
            },
        )


def plan_readers(
    conn: Connection,
    updates: Mapping[int, ReaderUpdate],
    writes: ReaderWrites,
    inserted: Collection[int] = (),
) -> None:
    """Add to ``writes`` what an import says about readers (subscriber id -> update; what it
    leaves out is kept): only values that differ from the stored ones. ``inserted``: readers
    just inserted with their language and time zone; only their topics are left to write."""
    wanted = {i: change for i, change in updates.items() if change}
    for i in [i for i in wanted if i in inserted]:
        writes.topics.extend((i, digest, chosen) for digest, chosen in wanted.pop(i).topics.items())
        writes.changed += 1
    if not wanted:
        return
    ids = list(wanted)
    stored = {
        r.id: (r.language, r.timezone)
        for r in conn.execute(
            select(subscribers.c.id, subscribers.c.language, subscribers.c.timezone).where(
                _ids_among(conn, subscribers.c.id, ids)
            )
        )
    }
    with_topics = [i for i, change in wanted.items() if change.topics]
    stored_topics: dict[tuple[int, str], set[str]] = {}
    if with_topics:
        for i, digest, topic in conn.execute(
            select(
                subscription_topics.c.subscriber_id,
                subscription_topics.c.digest,
                subscription_topics.c.topic,
            ).where(_ids_among(conn, subscription_topics.c.subscriber_id, with_topics))
        ):
            stored_topics.setdefault((i, digest), set()).add(topic)
    nothing: set[str] = set()
    for i, change in wanted.items():
        changed = False
        language, zone = stored.get(i, (None, None))
        new = (change.language or language, change.timezone or zone)
        if new != (language, zone):
            writes.settings.append((i, *new))
            changed = True
        for digest, chosen in change.topics.items():
            before = stored_topics.get((i, digest), nothing)
            if set(chosen) != before:
                writes.topics.append((i, digest, chosen))
                changed = True
                if before:
                    writes.stale.append((i, digest))
        writes.changed += changed


def _ids_among(conn: Connection, column: Any, ids: Sequence[int]) -> Any:
    """``column IN ids``; on PostgreSQL ``= ANY(array)``: one parameter however many ids."""
    if conn.dialect.name == "sqlite":
        return column.in_(bindparam("ids_among", list(ids), expanding=True))
    return column == any_(bindparam("ids_among", list(ids), type_=ARRAY(Integer)))


def replace_topics(
    conn: Connection, subscriber_id: int, digest: str, chosen: Iterable[str]
) -> None:
    """Make ``chosen`` the subscriber's topics for ``digest`` (empty: every topic)."""
    write_readers(
        conn,
        ReaderWrites(
            topics=[(subscriber_id, digest, tuple(dict.fromkeys(chosen)))],
            stale=[(subscriber_id, digest)],
        ),
    )


class ProfileStore(StoreBase):
    def set_reader(
        self,
        subscriber_id: int,
        *,
        language: str | None,
        timezone: str | None,
        topics: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Set a subscriber's language and time zone (None: the site's) and, for each digest
        named in ``topics``, the topics chosen (empty: every topic)."""
        self.set_readers([(subscriber_id, language, timezone, topics or {})])

    def set_readers(
        self,
        rows: Sequence[tuple[int, str | None, str | None, Mapping[str, Sequence[str]]]],
    ) -> None:
        """:meth:`set_reader` for many (subscriber id, language, timezone, topics) rows, in
        one transaction and a few statements."""
        topics = [
            (i, digest, tuple(chosen)) for i, _, _, chosen_by in rows
            for digest, chosen in chosen_by.items()
        ]  # fmt: skip
        writes = ReaderWrites(
            settings=[(i, language, zone) for i, language, zone, _ in rows],
            topics=topics,
            stale=[(i, digest) for i, digest, _ in topics],
        )
        with self.begin() as conn:
            write_readers(conn, writes)

    def readers(self) -> dict[int, ReaderSettings]:
        """Every subscriber's settings by id (an export: two queries)."""
        with self.engine.connect() as conn:
            topics: dict[int, dict[str, list[str]]] = {}
            for i, digest, topic in conn.execute(
                select(
                    subscription_topics.c.subscriber_id,
                    subscription_topics.c.digest,
                    subscription_topics.c.topic,
                ).order_by(subscription_topics.c.digest, subscription_topics.c.topic)
            ):
                topics.setdefault(i, {}).setdefault(digest, []).append(topic)
            return {
                r.id: ReaderSettings(
                    r.language,
                    r.timezone,
                    {d: tuple(t) for d, t in topics.get(r.id, {}).items()},
                )
                for r in conn.execute(
                    select(subscribers.c.id, subscribers.c.language, subscribers.c.timezone)
                )
            }

    def reader_settings(self, subscriber_id: int) -> ReaderSettings:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(subscribers.c.language, subscribers.c.timezone).where(
                    subscribers.c.id == subscriber_id
                )
            ).one()
            topics: dict[str, list[str]] = {}
            for digest, topic in conn.execute(
                select(subscription_topics.c.digest, subscription_topics.c.topic)
                .where(subscription_topics.c.subscriber_id == subscriber_id)
                .order_by(subscription_topics.c.digest, subscription_topics.c.topic)
            ):
                topics.setdefault(digest, []).append(topic)
        return ReaderSettings(row.language, row.timezone, {d: tuple(t) for d, t in topics.items()})

    def audience_profiles(self, digest: str) -> set[Profile]:
        """The distinct profiles of the digest's active subscribers (one pass, in pages)."""
        with self.engine.connect() as conn:
            return {profile for _, profile in self.reader_profiles(conn, digest)}

    def topics_between(
        self, conn: Connection, digest: str, after: int, last: int
    ) -> dict[int, set[str]]:
        """The topics chosen for ``digest`` by the subscribers with ids in (after, last]."""
        chosen: dict[int, set[str]] = {}
        for subscriber_id, topic in conn.execute(
            select(subscription_topics.c.subscriber_id, subscription_topics.c.topic).where(
                and_(
                    subscription_topics.c.digest == digest,
                    subscription_topics.c.subscriber_id > after,
                    subscription_topics.c.subscriber_id <= last,
                )
            )
        ):
            chosen.setdefault(subscriber_id, set()).add(topic)
        return chosen

    def reader_profiles(
        self, conn: Connection, digest: str, after: int = 0, limit: int | None = None
    ) -> Iterator[tuple[int, Profile]]:
        """(subscriber id, profile) of the digest's active subscribers with ids above
        ``after``, in id order: at most ``limit`` of them (None: all, read in pages)."""
        while True:
            page = _PAGE if limit is None else limit
            members = active_page(conn, digest, after, page, subscribers.c.language)
            if not members:
                return
            last = members[-1].id
            chosen = self.topics_between(conn, digest, after, last)
            for member in members:
                yield member.id, Profile(member.language, frozenset(chosen.get(member.id, ())))
            if limit is not None:
                return
            after = last


def active_page(
    conn: Connection, digest: str, after: int, limit: int, *columns: Any
) -> Sequence[Row[Any]]:
    """One keyset page of the digest's active subscribers: ``id`` and ``columns`` of at most
    ``limit`` of them with ids above ``after``, in id order."""
    return conn.execute(
        select(subscribers.c.id, *columns)
        .join(subscriptions, subscriptions.c.subscriber_id == subscribers.c.id)
        .where(
            subscriptions.c.digest == digest,
            subscribers.c.status == SUBSCRIBER_ACTIVE,
            subscribers.c.id > after,
        )
        .order_by(subscribers.c.id)
        .limit(limit)
    ).all()
