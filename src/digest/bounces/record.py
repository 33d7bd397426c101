"""Feedback events -> the ledger: match each to the delivery it is about, keep it in the
bounce log, apply the policy to the subscriber, pause an issue whose rates pass the limits.

Matching, most certain first: the VERP token of the return path the report came back to
(``bounces.return_path``), the returned Message-ID (deliveries have unique ones), then the
latest delivery to the failed address. An event that matches no delivery is still logged,
and still suppresses the address if it belongs to a subscriber.

The store is reached through :class:`FeedbackLedger`, the few calls this module needs.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from digest.bounces.config import BouncesConfig
from digest.bounces.events import COMPLAINT, DELAYED, HARD, SOFT, FeedbackEvent
from digest.bounces.policy import IssueFeedback, Scored, decide, rate_limit_passed
from digest.bounces.verp import token_in

log = logging.getLogger("digest.bounces")


@dataclass(frozen=True)
class DeliveryRef:
    delivery_id: int
    issue_id: int
    subscriber_id: int
    email: str


@dataclass(frozen=True)
class BounceRecord:
    fingerprint: str  # the same report read twice is recorded once
    received_at: datetime
    kind: str
    address: str
    status: str
    diagnostic: str
    source: str
    origin: str
    score: float
    subscriber_id: int | None
    delivery_id: int | None
    issue_id: int | None


class FeedbackLedger(Protocol):
    def delivery_for_token(self, token: str) -> DeliveryRef | None: ...

    def delivery_for_message_id(self, message_id: str) -> DeliveryRef | None: ...

    def latest_delivery_to(self, address: str) -> DeliveryRef | None: ...

    def subscriber_id_for(self, address: str) -> int | None: ...

    def soft_history(self, subscriber_id: int, since: datetime) -> list[Scored]: ...

    def add_bounce(self, record: BounceRecord) -> bool: ...

    def set_feedback_status(self, subscriber_id: int, status: str, now: datetime) -> bool: ...

    def issue_feedback(self, issue_id: int) -> IssueFeedback: ...

    def pause_for_feedback(self, issue_id: int, reason: str, now: datetime) -> bool: ...


@dataclass
class IntakeResult:
    reports: int = 0
    events: int = 0
    recorded: int = 0
    duplicates: int = 0
    unmatched: int = 0
    suppressed: list[str] = field(default_factory=list)
    complained: list[str] = field(default_factory=list)
    paused: list[str] = field(default_factory=list)  # one line per paused issue

    def summary(self) -> str:
        return (
            f"{self.reports} reports, {self.events} events: {self.recorded} recorded, "
            f"{self.duplicates} seen before, {self.unmatched} unmatched; "
            f"{len(self.suppressed)} suppressed, {len(self.complained)} complaints"
        )


class FeedbackRecorder:
    """Records the events of one intake run (a CLI import, an IMAP poll, a webhook call)."""

    def __init__(
        self,
        ledger: FeedbackLedger,
        config: BouncesConfig,
        clock: Callable[[], datetime],
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.config = config
        self.clock = clock
        self.notify = notify or log.warning
        self.result = IntakeResult()

    def report(self, key: bytes | str, origin: str, events: Iterable[FeedbackEvent]) -> None:
        """The events of one report; ``key`` identifies the report (its bytes, a body)."""
        digest = hashlib.sha256(key if isinstance(key, bytes) else key.encode()).hexdigest()
        self.result.reports += 1
        issues: set[int] = set()
        for event in events:
            self.result.events += 1
            issue_id = self._event(event, digest, origin)
            if issue_id is not None:
                issues.add(issue_id)
        for issue_id in sorted(issues):
            self._check_rates(issue_id)

    def _match(self, event: FeedbackEvent) -> DeliveryRef | None:
        if self.config.return_path:
            token = token_in(self.config.return_path, event.sent_to)
            if token and (found := self.ledger.delivery_for_token(token)):
                return found
        if event.message_id and (found := self.ledger.delivery_for_message_id(event.message_id)):
            return found
        if event.address:
            return self.ledger.latest_delivery_to(event.address)
        return None

    def _event(self, event: FeedbackEvent, digest: str, origin: str) -> int | None:
        now = self.clock()
        delivery = self._match(event)
        address = delivery.email if delivery else event.address
        subscriber_id = (
            delivery.subscriber_id
            if delivery
            else (self.ledger.subscriber_id_for(address) if address else None)
        )
        history = (
            self.ledger.soft_history(
                subscriber_id, now - timedelta(days=self.config.soft_window_days)
            )
            if subscriber_id is not None
            else []
        )
        decision = decide(event.kind, now, history, self.config)
        key = f"{digest}|{event.kind}|{event.address}|{event.message_id}"
        added = self.ledger.add_bounce(
            BounceRecord(
                fingerprint=hashlib.sha256(key.encode()).hexdigest(),
                received_at=now,
                kind=event.kind,
                address=address,
                status=event.status,
                diagnostic=event.diagnostic,
                source=event.source,
                origin=origin,
                score=decision.score if subscriber_id is not None else 0.0,
                subscriber_id=subscriber_id,
                delivery_id=delivery.delivery_id if delivery else None,
                issue_id=delivery.issue_id if delivery else None,
            )
        )
        if not added:
            self.result.duplicates += 1
            return None
        self.result.recorded += 1
        if subscriber_id is None:
            self.result.unmatched += 1
            return None
        if decision.new_status and self.ledger.set_feedback_status(
            subscriber_id, decision.new_status, now
        ):
            (self.result.complained if event.kind == COMPLAINT else self.result.suppressed).append(
                address
            )
            log.info("%s: %s (%s)", address, decision.new_status, decision.reason)
        return delivery.issue_id if delivery and event.counts else None

    def _check_rates(self, issue_id: int) -> None:
        reason = rate_limit_passed(self.ledger.issue_feedback(issue_id), self.config)
        if reason and self.ledger.pause_for_feedback(issue_id, reason, self.clock()):
            line = f"issue {issue_id} paused: {reason}"
            self.result.paused.append(line)
            self.notify(line)


def describe_feedback(counts: Mapping[str, int]) -> str:
    """``{"hard": 2, "complaint": 1}`` -> "2 bounces (2 hard, 0 soft), 1 complaint, 0 delayed"."""
    hard, soft = counts.get(HARD, 0), counts.get(SOFT, 0)
    complaints, delayed = counts.get(COMPLAINT, 0), counts.get(DELAYED, 0)

    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    return (
        f"{plural(hard + soft, 'bounce')} ({hard} hard, {soft} soft), "
        f"{plural(complaints, 'complaint')}, {delayed} delayed"
    )
