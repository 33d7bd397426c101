"""Reader profiles: each subscriber's language, time zone and the topics chosen per digest."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    Integer,
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

# (subscriber id, language, time zone) and (subscriber id, digest, topics) rows to write
Settings = list[tuple[int, str | None, str | None]]
TopicChoices = list[tuple[int, str, tuple[str, ...]]]


def write_readers(
    conn: Connection,
    settings: Settings,
    topics: TopicChoices,
    stale: Sequence[tuple[int, str]] | None = None,
) -> None:
    """Set the language and time zone of each reader in ``settings`` and make the topics of
    each (reader, digest) in ``topics`` those given: a few statements however many rows.
    ``stale``: the (reader, digest) pairs that may have topics stored (None: all in
    ``topics``); only those are deleted first."""
    pairs = [(i, digest) for i, digest, _ in topics] if stale is None else list(stale)
    chosen = [(i, digest, topic) for i, digest, wanted in topics for topic in set(wanted)]
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


def update_readers(conn: Connection, updates: Mapping[int, ReaderUpdate]) -> int:
    """Apply what an import says about readers (subscriber id -> update; what it leaves out is
    kept) and return how many readers' settings changed. Only changed values are written."""
    wanted = {i: change for i, change in updates.items() if change}
    if not wanted:
        return 0
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
    settings: Settings = []
    topics: TopicChoices = []
    stale: list[tuple[int, str]] = []
    changed: set[int] = set()
    nothing: set[str] = set()
    for i, change in wanted.items():
        language, zone = stored.get(i, (None, None))
        new = (change.language or language, change.timezone or zone)
        if new != (language, zone):
            settings.append((i, *new))
            changed.add(i)
        for digest, chosen in change.topics.items():
            before = stored_topics.get((i, digest), nothing)
            if set(chosen) != before:
                topics.append((i, digest, chosen))
                changed.add(i)
                if before:
                    stale.append((i, digest))
    write_readers(conn, settings, topics, stale)
    return len(changed)


def _ids_among(conn: Connection, column: Any, ids: Sequence[int]) -> Any:
    """``column IN ids``; on PostgreSQL ``= ANY(array)``: one parameter however many ids."""
    if conn.dialect.name == "sqlite":
        return column.in_(bindparam("ids_among", list(ids), expanding=True))
    return column == any_(bindparam("ids_among", list(ids), type_=ARRAY(Integer)))


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
        with self.begin() as conn:
            write_readers(
                conn,
                [(i, language, zone) for i, language, zone, _ in rows],
                [
                    (i, digest, tuple(chosen))
                    for i, _, _, topics in rows
                    for digest, chosen in topics.items()
                ],
            )

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
            members = conn.execute(
                select(subscribers.c.id, subscribers.c.language)
                .join(subscriptions, subscriptions.c.subscriber_id == subscribers.c.id)
                .where(
                    subscriptions.c.digest == digest,
                    subscribers.c.status == SUBSCRIBER_ACTIVE,
                    subscribers.c.id > after,
                )
                .order_by(subscribers.c.id)
                .limit(page)
            ).all()
            if not members:
                return
            last = members[-1].id
            chosen = self.topics_between(conn, digest, after, last)
            for member in members:
                yield member.id, Profile(member.language, frozenset(chosen.get(member.id, ())))
            if limit is not None:
                return
            after = last
