"""The staff's view of the subscriber list: search by page, one subscriber's record, erasure.

Search walks the unique index on ``subscribers.email`` in order and stops after one page
(keyset paging: ``after`` is the last address shown), so a page costs what an index range
gives, never a count over the whole table.

Erasure (GDPR Art. 17) keeps the subscriber's row, because delivery rows point at it, but
without address, name or token; the delivery rows lose address and name too, bounce reports
lose address, diagnostic text and origin, the consent log entries for the address are deleted, and a tombstone keeps only a SHA-256 of the address
so that an import cannot add it back by mistake.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, exists, func, or_, select, update

from digest.store._base import StoreBase
from digest.store.rows import (
    BounceView,
    Consent,
    SubscriberDelivery,
    SubscriberPage,
    SubscriberRecord,
    _consent,
    new_token,
)
from digest.store.schema import (
    SUBSCRIBER_ERASED,
    bounce_log,
    consents,
    deliveries,
    erasures,
    issues,
    subscribers,
    subscriptions,
)

_TOMBSTONE_PREFIX = b"digest-erasure-v1:"


def address_hash(email: str) -> str:
    """The tombstone of a normalised address (domain-separated SHA-256, hex)."""
    return hashlib.sha256(_TOMBSTONE_PREFIX + email.strip().lower().encode()).hexdigest()


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SubscriberDirectory(StoreBase):
    def search_subscribers(
        self,
        q: str = "",
        *,
        digest: str | None = None,
        status: str | None = None,
        after: str = "",
        limit: int = 50,
    ) -> SubscriberPage:
        """One page of subscribers in address order whose address or name contains ``q``
        (case-insensitive), optionally of one digest and one status. Erased rows never."""
        query = select(subscribers).order_by(subscribers.c.email).limit(limit + 1)
        if status:
            query = query.where(subscribers.c.status == status)
        else:
            query = query.where(subscribers.c.status != SUBSCRIBER_ERASED)
        if after:
            query = query.where(subscribers.c.email > after)
        needle = q.strip().lower()
        if needle:
            # An ESCAPE clause costs SQLite a quarter of its scan: only when it is needed.
            escape = "\\" if any(char in needle for char in "%_\\") else None
            pattern = f"%{_escape_like(needle) if escape else needle}%"
            # SQLite's LIKE ignores ASCII case by itself (and its lower() knows no more);
            # PostgreSQL's does not, and its trigram index is on lower(name).
            name = subscribers.c.name if self.is_sqlite else func.lower(subscribers.c.name)
            query = query.where(
                or_(
                    subscribers.c.email.like(pattern, escape=escape),
                    name.like(pattern, escape=escape),
                )
            )
        if digest:
            query = query.where(
                exists().where(
                    subscriptions.c.subscriber_id == subscribers.c.id,
                    subscriptions.c.digest == digest,
                )
            )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            more = len(rows) > limit
            rows = rows[:limit]
            links: dict[int, list[str]] = {}
            if rows:
                for link in conn.execute(
                    select(subscriptions)
                    .where(subscriptions.c.subscriber_id.in_([r.id for r in rows]))
                    .order_by(subscriptions.c.digest)
                ):
                    links.setdefault(link.subscriber_id, []).append(link.digest)
        records = [SubscriberRecord.from_row(r, links.get(r.id, ())) for r in rows]
        return SubscriberPage(records, records[-1].email if more else None)

    def subscriber_record(self, subscriber_id: int) -> SubscriberRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
            if row is None:
                return None
            names = conn.execute(
                select(subscriptions.c.digest)
                .where(subscriptions.c.subscriber_id == subscriber_id)
                .order_by(subscriptions.c.digest)
            ).scalars()
            return SubscriberRecord.from_row(row, tuple(names))

    def consents_for(self, email: str) -> list[Consent]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(consents)
                .where(consents.c.email == email)
                .order_by(consents.c.requested_at.desc())
            ).all()
        return [_consent(row) for row in rows]

    def deliveries_of(self, subscriber_id: int, limit: int = 100) -> list[SubscriberDelivery]:
        """The latest deliveries to one subscriber, newest first (off ix_deliveries_subscriber)."""
        query = (
            select(
                deliveries.c.id,
                deliveries.c.issue_id,
                issues.c.digest,
                issues.c.period_key,
                deliveries.c.status,
                deliveries.c.attempts,
                deliveries.c.last_error,
                deliveries.c.sent_at,
                deliveries.c.message_id,
            )
            .join(issues, issues.c.id == deliveries.c.issue_id)
            .where(deliveries.c.subscriber_id == subscriber_id)
            .order_by(deliveries.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [SubscriberDelivery(**row._mapping) for row in conn.execute(query)]

    def bounces_of(self, subscriber_id: int, limit: int = 50) -> list[BounceView]:
        """The latest bounce and complaint reports about one subscriber, newest first."""
        query = (
            select(
                bounce_log.c.received_at,
                bounce_log.c.kind,
                bounce_log.c.status,
                bounce_log.c.diagnostic,
                bounce_log.c.source,
                bounce_log.c.issue_id,
            )
            .where(bounce_log.c.subscriber_id == subscriber_id)
            .order_by(bounce_log.c.received_at.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [BounceView(**row._mapping) for row in conn.execute(query)]

    def update_subscriber(
        self, subscriber_id: int, *, name: str, digest_names: Iterable[str]
    ) -> bool:
        """Set a subscriber's name and exactly these digests; False if unknown or erased."""
        wanted = list(dict.fromkeys(digest_names))
        with self.begin() as conn:
            changed = conn.execute(
                update(subscribers)
                .where(subscribers.c.id == subscriber_id, subscribers.c.status != SUBSCRIBER_ERASED)
                .values(name=name)
            ).rowcount
            if not changed:
                return False
            conn.execute(
                delete(subscriptions).where(
                    subscriptions.c.subscriber_id == subscriber_id,
                    subscriptions.c.digest.not_in(wanted),
                )
            )
            have = set(
                conn.execute(
                    select(subscriptions.c.digest).where(
                        subscriptions.c.subscriber_id == subscriber_id
                    )
                ).scalars()
            )
            missing = [name for name in wanted if name not in have]
            if missing:
                conn.execute(
                    subscriptions.insert(),
                    [{"subscriber_id": subscriber_id, "digest": name} for name in missing],
                )
        return True

    def erase_subscriber(self, subscriber_id: int, now: datetime) -> bool:
        """GDPR erasure (see the module docstring); False if unknown or already erased."""
        with self.begin() as conn:
            row = conn.execute(
                select(subscribers.c.email).where(
                    subscribers.c.id == subscriber_id, subscribers.c.status != SUBSCRIBER_ERASED
                )
            ).first()
            if row is None:
                return False
            conn.execute(
                self.upsert(erasures)
                .values(address_hash=address_hash(row.email), erased_at=now)
                .on_conflict_do_nothing(index_elements=[erasures.c.address_hash])
            )
            conn.execute(
                delete(subscriptions).where(subscriptions.c.subscriber_id == subscriber_id)
            )
            conn.execute(delete(consents).where(consents.c.email == row.email))
            conn.execute(  # the reports stay (counts per issue), without address or text
                update(bounce_log)
                .where(
                    or_(
                        bounce_log.c.subscriber_id == subscriber_id,
                        bounce_log.c.address == row.email,
                    )
                )
                .values(address="", diagnostic="", origin="")
            )
            conn.execute(
                update(deliveries)
                .where(deliveries.c.subscriber_id == subscriber_id)
                .values(email="", name="")
            )
            conn.execute(
                update(subscribers)
                .where(subscribers.c.id == subscriber_id)
                .values(
                    email=f"erased-{subscriber_id}@erased.invalid",
                    name="",
                    status=SUBSCRIBER_ERASED,
                    token=new_token(),
                    unsubscribed_at=func.coalesce(subscribers.c.unsubscribed_at, now),
                )
            )
        return True

    def remove_subscriber(self, email: str, now: datetime) -> bool:
        """Erase the subscriber with this address (``digest subscribers remove``)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(subscribers.c.id).where(subscribers.c.email == email)
            ).scalar()
        return found is not None and self.erase_subscriber(int(found), now)

    def erased_among(self, emails: Iterable[str]) -> set[str]:
        """Which of these (normalised) addresses were erased before."""
        by_hash = {address_hash(email): email for email in emails}
        found: set[str] = set()
        hashes = list(by_hash)
        with self.engine.connect() as conn:
            for start in range(0, len(hashes), 1000):
                chunk = hashes[start : start + 1000]
                found.update(
                    conn.execute(
                        select(erasures.c.address_hash).where(erasures.c.address_hash.in_(chunk))
                    ).scalars()
                )
        return {by_hash[h] for h in found}
