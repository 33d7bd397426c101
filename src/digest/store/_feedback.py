"""The bounce log and subscriber suppression: the store's side of :mod:`digest.bounces`
(:class:`digest.bounces.record.FeedbackLedger`), and the per-issue counts status shows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from digest.bounces.events import COMPLAINT, HARD
from digest.bounces.policy import BOUNCED, COMPLAINED, FEEDBACK_PAUSE, IssueFeedback, Scored
from digest.bounces.record import BounceRecord, DeliveryRef
from digest.store._base import StoreBase
from digest.store.schema import (
    FAILED_PERM,
    IN_DOUBT,
    ISSUE_PAUSED,
    ISSUE_SENDING,
    SENT,
    SUPPRESSED_STATES,
    bounce_log,
    deliveries,
    issues,
    subscribers,
)

# Which status may replace which: a complaint beats everything, a bounce only a live address.
_REPLACES = {
    COMPLAINED: ("active", "pending", "unsubscribed", BOUNCED),
    BOUNCED: ("active", "pending"),
}


class FeedbackStore(StoreBase):
    def delivery_for_token(self, token: str) -> DeliveryRef | None:
        return self._delivery(deliveries.c.verp_token == token)

    def delivery_for_message_id(self, message_id: str) -> DeliveryRef | None:
        return self._delivery(deliveries.c.message_id == message_id)

    def latest_delivery_to(self, address: str) -> DeliveryRef | None:
        """The latest delivery whose message went out to the subscriber with that address
        (addresses are stored lower-cased; both lookups use an index)."""
        subscriber_id = self.subscriber_id_for(address)
        if subscriber_id is None:
            return None
        return self._delivery(
            and_(
                deliveries.c.subscriber_id == subscriber_id,
                deliveries.c.payload_at.is_not(None),
            )
        )

    def _delivery(self, condition: Any) -> DeliveryRef | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    deliveries.c.id,
                    deliveries.c.issue_id,
                    deliveries.c.subscriber_id,
                    deliveries.c.email,
                )
                .where(condition)
                .order_by(deliveries.c.id.desc())
                .limit(1)
            ).first()
        return DeliveryRef(row.id, row.issue_id, row.subscriber_id, row.email) if row else None

    def subscriber_id_for(self, address: str) -> int | None:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(subscribers.c.id).where(subscribers.c.email == address.strip().lower())
            ).scalar()
        return int(found) if found is not None else None

    def suppressed_among(self, emails: Sequence[str]) -> dict[str, str]:
        """Which of these addresses are bounced or complained (address -> status)."""
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(emails), 500):
                rows = conn.execute(
                    select(subscribers.c.email, subscribers.c.status).where(
                        subscribers.c.email.in_(emails[start : start + 500]),
                        subscribers.c.status.in_(SUPPRESSED_STATES),
                    )
                ).all()
                found.update((str(row.email), str(row.status)) for row in rows)
        return found

    def soft_history(self, subscriber_id: int, since: datetime) -> list[Scored]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(bounce_log.c.received_at, bounce_log.c.score)
                .where(
                    bounce_log.c.subscriber_id == subscriber_id,
                    bounce_log.c.kind == "soft",
                    bounce_log.c.received_at > since,
                )
                .order_by(bounce_log.c.received_at)
            ).all()
        return [Scored(row.received_at, float(row.score)) for row in rows]

    def add_bounce(self, record: BounceRecord) -> bool:
        try:
            with self.begin() as conn:
                conn.execute(
                    insert(bounce_log).values(
                        fingerprint=record.fingerprint,
                        received_at=record.received_at,
                        kind=record.kind,
                        address=record.address[:320],
                        status=record.status[:20],
                        diagnostic=record.diagnostic,
                        source=record.source[:40],
                        origin=record.origin[:500],
                        score=record.score,
                        subscriber_id=record.subscriber_id,
                        delivery_id=record.delivery_id,
                        issue_id=record.issue_id,
                    )
                )
        except IntegrityError:
            return False  # the same report, read again
        return True

    def set_feedback_status(self, subscriber_id: int, status: str, now: datetime) -> bool:
        values: dict[str, Any] = {"status": status}
        if status == COMPLAINED:
            values["unsubscribed_at"] = now
        with self.begin() as conn:
            result = conn.execute(
                update(subscribers)
                .where(
                    subscribers.c.id == subscriber_id,
                    subscribers.c.status.in_(_REPLACES[status]),
                )
                .values(**values)
            )
        return bool(result.rowcount)

    def issue_feedback(self, issue_id: int) -> IssueFeedback:
        with self.engine.connect() as conn:
            sent = conn.execute(
                select(func.count())
                .select_from(deliveries)
                .where(
                    deliveries.c.issue_id == issue_id,
                    deliveries.c.status.in_((SENT, IN_DOUBT, FAILED_PERM)),
                )
            ).scalar_one()
            counts: dict[str, int] = dict(
                conn.execute(
                    select(
                        bounce_log.c.kind,
                        func.count(func.distinct(bounce_log.c.delivery_id)),
                    )
                    .where(
                        bounce_log.c.issue_id == issue_id,
                        bounce_log.c.kind.in_((HARD, COMPLAINT)),
                        bounce_log.c.delivery_id.is_not(None),
                    )
                    .group_by(bounce_log.c.kind)
                ).all()
            )
        return IssueFeedback(
            sent=int(sent),
            bounced=int(counts.get(HARD, 0)),
            complained=int(counts.get(COMPLAINT, 0)),
        )

    def issue_status(self, issue_id: int) -> tuple[str, str | None]:
        """An issue's status and note, without its frozen content (senders ask per batch)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(issues.c.status, issues.c.note).where(issues.c.id == issue_id)
            ).one()
        return str(row.status), row.note

    def pause_for_feedback(self, issue_id: int, reason: str, now: datetime) -> bool:
        """Pause an issue still being sent; False if it is done (or paused) already."""
        with self.begin() as conn:
            result = conn.execute(
                update(issues)
                .where(issues.c.id == issue_id, issues.c.status == ISSUE_SENDING)
                .values(status=ISSUE_PAUSED, note=FEEDBACK_PAUSE + reason)
            )
        return bool(result.rowcount)

    def feedback_counts(self, issue_ids: list[int]) -> dict[int, dict[str, int]]:
        """Per issue: counted bounces, complaints and delayed notices (for status views)."""
        if not issue_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(bounce_log.c.issue_id, bounce_log.c.kind, func.count())
                .where(and_(bounce_log.c.issue_id.in_(issue_ids)))
                .group_by(bounce_log.c.issue_id, bounce_log.c.kind)
            ).all()
        result: dict[int, dict[str, int]] = {i: {} for i in issue_ids}
        for issue_id, kind, count in rows:
            result[int(issue_id)][str(kind)] = int(count)
        return result
