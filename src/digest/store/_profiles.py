"""Reader profiles: each subscriber's language, time zone and the topics chosen per digest."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from sqlalchemy import Connection, and_, delete, insert, select, update

from digest.store._base import StoreBase
from digest.store.rows import ReaderSettings
from digest.store.schema import (
    SUBSCRIBER_ACTIVE,
    subscribers,
    subscription_topics,
    subscriptions,
)
from digest.variants import Profile

_PAGE = 5000


def replace_topics(
    conn: Connection, subscriber_id: int, digest: str, chosen: Iterable[str]
) -> None:
    """Make ``chosen`` the subscriber's topics for ``digest`` (empty: every topic)."""
    conn.execute(
        delete(subscription_topics).where(
            subscription_topics.c.subscriber_id == subscriber_id,
            subscription_topics.c.digest == digest,
        )
    )
    wanted = list(dict.fromkeys(chosen))
    if wanted:
        conn.execute(
            insert(subscription_topics),
            [{"subscriber_id": subscriber_id, "digest": digest, "topic": t} for t in wanted],
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
        one transaction (a CSV import)."""
        with self.begin() as conn:
            for subscriber_id, language, timezone, topics in rows:
                conn.execute(
                    update(subscribers)
                    .where(subscribers.c.id == subscriber_id)
                    .values(language=language, timezone=timezone)
                )
                for digest, chosen in topics.items():
                    replace_topics(conn, subscriber_id, digest, chosen)

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
