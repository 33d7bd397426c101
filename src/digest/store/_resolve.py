"""Issues as staff see them, and staff's resolution of deliveries in doubt.

A delivery is ``in_doubt`` when the message data was handed over and no reply came (RFC 5321
section 6.1: the server may have accepted it). Nothing sends such a row again by itself. A
staff member decides, per row or for all rows of an issue:

- *mark delivered*: ``in_doubt -> sent`` (the message most likely arrived);
- *resend*: ``in_doubt -> pending`` with a new Message-ID, so the issue's senders send it
  once more. A duplicate is possible; the staff page says so before the button.

Both are one UPDATE guarded by ``status = 'in_doubt'``: a double click, two staff members or a
second tab change a row once, and a resent row is not in doubt any more, so it is sent once
more at most, until a new failure puts it in doubt again and a new staff decision is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from digest.store._base import StoreBase
from digest.store.rows import IssueDelivery, IssueRow, _json, item_from_json
from digest.store.schema import (
    DELIVERY_STATES,
    IN_DOUBT,
    ISSUE_DONE,
    ISSUE_SENDING,
    PENDING,
    SENT,
    deliveries,
    issue_items,
    issues,
    items,
)


class IssueResolution(StoreBase):
    def counts_by_issue(self, issue_ids: Sequence[int]) -> dict[int, dict[str, int]]:
        """Delivery counts per state for each of these issues (one grouped query)."""
        result = {issue_id: dict.fromkeys(DELIVERY_STATES, 0) for issue_id in issue_ids}
        if not issue_ids:
            return result
        query = (
            select(deliveries.c.issue_id, deliveries.c.status, func.count())
            .where(deliveries.c.issue_id.in_(list(issue_ids)))
            .group_by(deliveries.c.issue_id, deliveries.c.status)
        )
        with self.engine.connect() as conn:
            for issue_id, status, count in conn.execute(query):
                result[issue_id][status] = int(count)
        return result

    def issue_titles(self, issue_id: int) -> list[str]:
        """The titles of an issue's items, in the issue's order."""
        query = (
            select(items.c.data)
            .join(issue_items, issue_items.c.item_id == items.c.id)
            .where(issue_items.c.issue_id == issue_id)
            .order_by(issue_items.c.position)
        )
        with self.engine.connect() as conn:
            return [item_from_json(_json(data)).title for data in conn.execute(query).scalars()]

    def find_issue(self, issue_id: int) -> IssueRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(issues).where(issues.c.id == issue_id)).first()
        return None if row is None else IssueRow(**row._mapping)

    def issue_deliveries(
        self, issue_id: int, *, status: str | None = None, after: int = 0, limit: int = 100
    ) -> list[IssueDelivery]:
        """One page of an issue's deliveries in id order (off the claim index)."""
        query = (
            select(
                deliveries.c.id,
                deliveries.c.subscriber_id,
                deliveries.c.email,
                deliveries.c.status,
                deliveries.c.attempts,
                deliveries.c.last_error,
                deliveries.c.sent_at,
                deliveries.c.message_id,
            )
            .where(deliveries.c.issue_id == issue_id, deliveries.c.id > after)
            .order_by(deliveries.c.id)
            .limit(limit)
        )
        if status:
            query = query.where(deliveries.c.status == status)
        with self.engine.connect() as conn:
            return [IssueDelivery(**row._mapping) for row in conn.execute(query)]

    def mark_in_doubt_delivered(
        self, issue_id: int, delivery_ids: Sequence[int] | None, now: datetime, by: str
    ) -> int:
        """``in_doubt -> sent`` for these rows (None: every in-doubt row of the issue)."""
        condition = self._in_doubt(issue_id, delivery_ids)
        with self.begin() as conn:
            changed = conn.execute(
                update(deliveries)
                .where(*condition)
                .values(
                    status=SENT,
                    sent_at=now,
                    claimed_by=None,
                    last_error=f"was in doubt; marked delivered by {by}",
                )
            ).rowcount
        return int(changed)

    def resend_in_doubt(
        self,
        issue_id: int,
        delivery_ids: Sequence[int] | None,
        message_id: Callable[[], str],
        by: str,
    ) -> int:
        """``in_doubt -> pending`` with a new Message-ID for these rows (None: all of the
        issue), and the issue open for sending again. Returns how many rows will be resent."""
        condition = self._in_doubt(issue_id, delivery_ids)
        changed = 0
        with self.begin() as conn:
            ids = conn.execute(select(deliveries.c.id).where(*condition)).scalars().all()
            for delivery_id in ids:
                changed += conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == delivery_id, deliveries.c.status == IN_DOUBT)
                    .values(
                        status=PENDING,
                        message_id=message_id(),
                        payload_at=None,
                        claimed_by=None,
                        next_attempt_at=None,
                        last_error=f"was in doubt; resent by {by} with a new Message-ID",
                    )
                ).rowcount
            if changed:
                conn.execute(
                    update(issues)
                    .where(issues.c.id == issue_id, issues.c.status == ISSUE_DONE)
                    .values(status=ISSUE_SENDING, completed_at=None)
                )
        return changed

    @staticmethod
    def _in_doubt(issue_id: int, delivery_ids: Sequence[int] | None) -> list[Any]:
        condition = [deliveries.c.issue_id == issue_id, deliveries.c.status == IN_DOUBT]
        if delivery_ids is not None:
            condition.append(deliveries.c.id.in_(list(delivery_ids)))
        return condition
