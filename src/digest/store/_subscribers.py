"""Subscribers, subscriptions and the double opt-in consent log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    delete,
    func,
    insert,
    select,
    update,
)

from digest.store._base import StoreBase
from digest.store.rows import Consent, Subscriber, _consent, new_token
from digest.store.schema import (
    SUBSCRIBER_ACTIVE,
    SUBSCRIBER_UNSUBSCRIBED,
    consents,
    subscribers,
    subscriptions,
)


class SubscriberStore(StoreBase):
    def add_subscriber(
        self,
        email: str,
        name: str,
        digest_names: Sequence[str],
        now: datetime,
        status: str = SUBSCRIBER_ACTIVE,
    ) -> tuple[Subscriber, bool]:
        """Add or update; returns (subscriber, created). Re-adding an unsubscribed address
        through this staff path reactivates it."""
        with self.begin() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.email == email)).first()
            if row is None:
                subscriber_id = conn.execute(
                    insert(subscribers).values(
                        email=email,
                        name=name,
                        status=status,
                        token=new_token(),
                        created_at=now,
                        confirmed_at=now if status == SUBSCRIBER_ACTIVE else None,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
                created = True
            else:
                subscriber_id = row.id
                values: dict[str, Any] = {"status": status}
                if name:
                    values["name"] = name
                if status == SUBSCRIBER_ACTIVE and row.status != SUBSCRIBER_ACTIVE:
                    values.update(confirmed_at=now, unsubscribed_at=None)
                conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(**values))
                created = False
            current = {
                r.digest
                for r in conn.execute(
                    select(subscriptions.c.digest).where(
                        subscriptions.c.subscriber_id == subscriber_id
                    )
                )
            }
            for digest in set(digest_names) - current:
                conn.execute(
                    insert(subscriptions).values(subscriber_id=subscriber_id, digest=digest)
                )
        subscriber = self.subscriber_by_email(email)
        assert subscriber is not None
        return subscriber, created

    def subscriber_by_email(self, email: str) -> Subscriber | None:
        return self._subscriber(subscribers.c.email == email)

    def subscriber_by_token(self, token: str) -> Subscriber | None:
        return self._subscriber(subscribers.c.token == token)

    def _subscriber(self, condition: Any) -> Subscriber | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(subscribers).where(condition)).first()
            if row is None:
                return None
            names = conn.execute(
                select(subscriptions.c.digest)
                .where(subscriptions.c.subscriber_id == row.id)
                .order_by(subscriptions.c.digest)
            ).scalars()
            return Subscriber(row.id, row.email, row.name, row.status, row.token, tuple(names))

    def list_subscribers(
        self, digest: str | None = None, status: str | None = None
    ) -> list[Subscriber]:
        with self.engine.connect() as conn:
            query = select(subscribers).order_by(subscribers.c.email)
            if status:
                query = query.where(subscribers.c.status == status)
            rows = conn.execute(query).all()
            links: dict[int, list[str]] = {}
            for r in conn.execute(select(subscriptions).order_by(subscriptions.c.digest)):
                links.setdefault(r.subscriber_id, []).append(r.digest)
        result = [
            Subscriber(r.id, r.email, r.name, r.status, r.token, tuple(links.get(r.id, ())))
            for r in rows
        ]
        if digest:
            result = [s for s in result if digest in s.digests]
        return result

    def unsubscribe(self, subscriber_id: int, now: datetime, digest: str | None = None) -> bool:
        """Unsubscribe from one digest or (default) from everything. Idempotent; returns
        whether anything changed."""
        with self.begin() as conn:
            if digest is not None:
                result = conn.execute(
                    delete(subscriptions).where(
                        subscriptions.c.subscriber_id == subscriber_id,
                        subscriptions.c.digest == digest,
                    )
                )
                return bool(result.rowcount)
            result = conn.execute(
                update(subscribers)
                .where(
                    subscribers.c.id == subscriber_id,
                    subscribers.c.status != SUBSCRIBER_UNSUBSCRIBED,
                )
                .values(status=SUBSCRIBER_UNSUBSCRIBED, unsubscribed_at=now)
            )
            return bool(result.rowcount)

    def remove_subscriber(self, email: str, now: datetime) -> bool:
        """Forget an address entirely (GDPR erasure): its subscriptions too; past delivery
        rows keep the address only as far as the ledger needs it."""
        with self.begin() as conn:
            row = conn.execute(select(subscribers.c.id).where(subscribers.c.email == email)).first()
            if row is None:
                return False
            conn.execute(delete(subscriptions).where(subscriptions.c.subscriber_id == row.id))
            conn.execute(
                update(subscribers)
                .where(subscribers.c.id == row.id)
                .values(status=SUBSCRIBER_UNSUBSCRIBED, name="", unsubscribed_at=now)
            )
        return True

    def count_active(self, digest: str) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(
                        subscribers.join(
                            subscriptions, subscriptions.c.subscriber_id == subscribers.c.id
                        )
                    )
                    .where(
                        subscriptions.c.digest == digest, subscribers.c.status == SUBSCRIBER_ACTIVE
                    )
                ).scalar_one()
            )

    # -- sign-ups (double opt-in) and the consent log

    def add_consent(
        self,
        *,
        email: str,
        name: str,
        digest_names: Sequence[str],
        now: datetime,
        expires_at: datetime,
        request_ip: str,
        request_user_agent: str,
        form_url: str,
        consent_version: str,
    ) -> Consent:
        """Record a sign-up request; it becomes a subscription only by :meth:`confirm_consent`."""
        token = new_token()
        with self.begin() as conn:
            conn.execute(
                insert(consents).values(
                    token=token, email=email, name=name, digests=";".join(digest_names),
                    requested_at=now, expires_at=expires_at, request_ip=request_ip,
                    request_user_agent=request_user_agent[:500], form_url=form_url,
                    consent_version=consent_version,
                )
            )  # fmt: skip
        consent = self.consent_by_token(token)
        assert consent is not None
        return consent

    def consent_by_token(self, token: str) -> Consent | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(consents).where(consents.c.token == token)).first()
        return None if row is None else _consent(row)

    def confirm_consent(
        self, token: str, now: datetime, ip: str, user_agent: str
    ) -> Subscriber | None:
        """Confirm an unexpired, unconfirmed sign-up: the address becomes an active subscriber
        of the digests asked for. None if the token is unknown, expired or already used."""
        with self.begin() as conn:
            done = conn.execute(
                update(consents)
                .where(
                    consents.c.token == token,
                    consents.c.confirmed_at.is_(None),
                    consents.c.expires_at > now,
                )
                .values(confirmed_at=now, confirm_ip=ip, confirm_user_agent=user_agent[:500])
            ).rowcount
        consent = self.consent_by_token(token) if done else None
        if consent is None:
            return None
        subscriber, _ = self.add_subscriber(
            consent.email, consent.name, consent.digests, now, status=SUBSCRIBER_ACTIVE
        )
        return subscriber

    def consents_since(self, email: str, since: datetime) -> int:
        """Sign-up requests for ``email`` after ``since`` (per-address rate limit)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        consents.c.email == email, consents.c.requested_at > since
                    )
                ).scalar_one()
            )

    def recent_consents(self, limit: int = 20) -> list[Consent]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(consents).order_by(consents.c.requested_at.desc()).limit(limit)
            ).all()
        return [_consent(row) for row in rows]

    def expire_consents(self, now: datetime) -> int:
        """Forget sign-ups that were never confirmed and have expired."""
        with self.begin() as conn:
            result = conn.execute(
                delete(consents).where(
                    consents.c.confirmed_at.is_(None), consents.c.expires_at <= now
                )
            )
        return int(result.rowcount)
