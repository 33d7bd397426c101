"""Events into a real SQLite store: matched by VERP token, then Message-ID, then address;
the bounce log keeps everything once; the subscriber's status follows the policy; an issue
past its rate limit pauses and staff are told."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from digest.bounces.config import BouncesConfig
from digest.bounces.events import COMPLAINT, DELAYED, HARD, SOFT, FeedbackEvent
from digest.bounces.record import FeedbackRecorder
from digest.bounces.verp import return_path
from digest.store import SENT, IssueRow, Store, bounce_log, deliveries
from tests.test_store import make_issue

NOW = datetime(2017, 11, 20, 7, tzinfo=UTC)
PATTERN = "bounces+{token}@example.org"


pytestmark = pytest.mark.both_databases


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.open(database_url)
    yield store
    store.close()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def rows(store: Store, issue: IssueRow) -> dict[str, tuple[int, str, str]]:
    with store.engine.connect() as conn:
        found = conn.execute(
            select(
                deliveries.c.email,
                deliveries.c.id,
                deliveries.c.message_id,
                deliveries.c.verp_token,
            ).where(deliveries.c.issue_id == issue.id)
        ).all()
    return {r.email: (r.id, r.message_id, r.verp_token) for r in found}


def mark_all_sent(store: Store, issue: IssueRow) -> None:
    with store.begin() as conn:
        conn.execute(
            deliveries.update()
            .where(deliveries.c.issue_id == issue.id)
            .values(status=SENT, payload_at=NOW, sent_at=NOW)
        )


def status_of(store: Store, email: str) -> str:
    subscriber = store.subscriber_by_email(email)
    assert subscriber is not None
    return subscriber.status


def recorder(store: Store, clock: Clock, **config: object) -> FeedbackRecorder:
    settings = BouncesConfig.model_validate({"return_path": PATTERN, **config})
    return FeedbackRecorder(store, settings, clock, notify=told.append)


told: list[str] = []


def test_every_delivery_has_its_own_unguessable_verp_token(store: Store) -> None:
    issue = make_issue(store, subscribers=20)
    tokens = [token for _, _, token in rows(store, issue).values()]
    assert len(set(tokens)) == 20 and all(len(t) == 32 for t in tokens)
    subscriber_tokens = {store.subscriber_by_email(e).token for e in rows(store, issue)}  # type: ignore[union-attr]
    assert not subscriber_tokens & set(tokens)


def test_verp_token_beats_message_id_and_address(store: Store) -> None:
    issue = make_issue(store, subscribers=3)
    by_email = rows(store, issue)
    _, _, token = by_email["s001@example.org"]
    # The report names another address (a forwarder) and no Message-ID: the token decides.
    event = FeedbackEvent(
        HARD, "alias@forward.example", "5.1.1", sent_to=(return_path(PATTERN, token),)
    )
    record = recorder(store, Clock())
    record.report(b"report-1", "test", [event])
    assert status_of(store, "s001@example.org") == "bounced"
    assert status_of(store, "s000@example.org") == "active"
    assert record.result.suppressed == ["s001@example.org"]


def test_without_a_token_the_message_id_then_the_address_match(store: Store) -> None:
    issue = make_issue(store, subscribers=3)
    _, message_id, _ = rows(store, issue)["s002@example.org"]
    record = recorder(store, Clock())
    record.report(b"r1", "test", [FeedbackEvent(HARD, "", "5.1.1", message_id=message_id)])
    assert status_of(store, "s002@example.org") == "bounced"
    record.report(b"r2", "test", [FeedbackEvent(HARD, "S000@Example.org", "5.1.1")])
    assert status_of(store, "s000@example.org") == "bounced"
    record.report(b"r3", "test", [FeedbackEvent(HARD, "stranger@example.com", "5.1.1")])
    assert record.result.unmatched == 1


def test_the_same_report_twice_is_recorded_once(store: Store) -> None:
    make_issue(store, subscribers=1)
    record = recorder(store, Clock())
    event = FeedbackEvent(SOFT, "s000@example.org", "4.2.2")
    record.report(b"same bytes", "a.eml", [event])
    record.report(b"same bytes", "copy-of-a.eml", [event])
    assert (record.result.recorded, record.result.duplicates) == (1, 1)


def test_complaint_unsubscribes_at_once_and_beats_a_bounce(store: Store) -> None:
    make_issue(store, subscribers=1)
    record = recorder(store, Clock())
    record.report(b"c1", "fbl", [FeedbackEvent(COMPLAINT, "s000@example.org")])
    assert status_of(store, "s000@example.org") == "complained"
    record.report(b"h1", "dsn", [FeedbackEvent(HARD, "s000@example.org", "5.1.1")])
    assert status_of(store, "s000@example.org") == "complained"
    assert record.result.complained == ["s000@example.org"]


def test_soft_bounces_suppress_at_the_threshold_once_a_day(store: Store) -> None:
    make_issue(store, subscribers=1)
    clock = Clock()
    record = recorder(store, clock, soft_threshold=1.5)
    for n in range(6):  # two a day for three days
        clock.now = NOW + timedelta(hours=12 * n)
        record.report(
            f"soft-{n}".encode(), "dsn", [FeedbackEvent(SOFT, "s000@example.org", "4.2.2")]
        )
        expected = "bounced" if n >= 4 else "active"
        assert status_of(store, "s000@example.org") == expected, n
    with store.engine.connect() as conn:
        scores = conn.execute(select(bounce_log.c.score).order_by(bounce_log.c.id)).scalars().all()
    assert scores == [0.5, 0.0, 0.5, 0.0, 0.5, 0.0]  # every event kept, one counted a day


def test_delayed_notice_is_logged_not_counted(store: Store) -> None:
    make_issue(store, subscribers=1)
    record = recorder(store, Clock(), soft_threshold=0.5)
    record.report(b"d", "dsn", [FeedbackEvent(DELAYED, "s000@example.org", "4.4.1")])
    assert status_of(store, "s000@example.org") == "active"
    assert record.result.recorded == 1


def test_an_issue_past_its_bounce_rate_pauses_and_staff_are_told(store: Store) -> None:
    told.clear()
    issue = make_issue(store, subscribers=20)
    mark_all_sent(store, issue)
    record = recorder(store, Clock(), min_sample=10, max_bounce_rate=0.1)
    addresses = sorted(rows(store, issue))
    record.report(b"a", "dsn", [FeedbackEvent(HARD, addresses[0], "5.1.1")])
    record.report(b"b", "dsn", [FeedbackEvent(HARD, addresses[1], "5.1.1")])
    assert store.issue_by_id(issue.id).status == "sending"  # 2 of 20 = 10 %: not above
    record.report(b"c", "dsn", [FeedbackEvent(HARD, addresses[2], "5.1.1")])
    paused = store.issue_by_id(issue.id)
    assert paused.status == "paused" and paused.note and "bounce rate 15.00%" in paused.note
    assert paused.note.startswith("bounce/complaint limit: ")
    assert told == [
        f"issue {issue.id} paused: {paused.note.removeprefix('bounce/complaint limit: ')}"
    ]


def test_complaint_rate_limit(store: Store) -> None:
    told.clear()
    issue = make_issue(store, subscribers=10)
    mark_all_sent(store, issue)
    record = recorder(store, Clock(), min_sample=10)
    record.report(b"x", "fbl", [FeedbackEvent(COMPLAINT, "s003@example.org")])
    assert store.issue_by_id(issue.id).status == "paused"
    assert "complaint rate 10.00%" in told[0]
