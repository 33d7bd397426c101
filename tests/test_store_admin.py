"""The store calls behind the staff admin: subscriber search by page, edit, GDPR erasure with
its tombstone, and staff's resolution of in-doubt deliveries (on SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from itertools import count

import pytest
from sqlalchemy import select

from digest.bounces.record import BounceRecord
from digest.store import (
    IN_DOUBT,
    ISSUE_DONE,
    ISSUE_SENDING,
    PENDING,
    SENT,
    SUBSCRIBER_ERASED,
    Store,
    bounce_log,
    consents,
    deliveries,
    erasures,
)
from digest.subscribers import import_csv
from tests.test_store import NOW, make_issue

pytestmark = pytest.mark.both_databases


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.open(database_url)
    yield store
    store.close()


def test_search_finds_part_of_address_or_name_one_page_at_a_time(store: Store) -> None:
    rows = [(f"user{n:03d}@example.org", f"Name {n:03d}", ["weekly"]) for n in range(120)]
    rows.append(("Zora.Ziegler@Ahlen.de".lower(), "Zora Ziegler", ["monthly"]))
    store.add_subscribers(rows, NOW)

    first = store.search_subscribers(limit=50)
    assert [r.email for r in first.rows] == [f"user{n:03d}@example.org" for n in range(50)]
    assert first.next_after == "user049@example.org"
    second = store.search_subscribers(after=first.next_after, limit=50)
    assert second.rows[0].email == "user050@example.org"
    last = store.search_subscribers(after="user099@example.org", limit=50)
    assert len(last.rows) == 21 and last.next_after is None

    assert [r.email for r in store.search_subscribers("hlen.d").rows] == ["zora.ziegler@ahlen.de"]
    assert [r.name for r in store.search_subscribers("ZIEGLER").rows] == ["Zora Ziegler"]
    assert [r.email for r in store.search_subscribers("user11", limit=5).rows] == [
        f"user11{n}@example.org" for n in range(5)
    ]
    assert store.search_subscribers("%").rows == []  # LIKE wildcards are literal
    assert len(store.search_subscribers(digest="monthly").rows) == 1
    assert store.search_subscribers("zora", digest="weekly").rows == []
    assert store.search_subscribers(status="unsubscribed").rows == []


def test_update_sets_exactly_the_name_and_digests(store: Store) -> None:
    subscriber, _ = store.add_subscriber("a@example.org", "A", ["weekly"], NOW)
    assert store.update_subscriber(subscriber.id, name="Anna", digest_names=["monthly"])
    record = store.subscriber_record(subscriber.id)
    assert record is not None and (record.name, record.digests) == ("Anna", ("monthly",))
    assert not store.update_subscriber(9999, name="x", digest_names=[])


def test_erasure_forgets_the_address_everywhere_and_blocks_a_reimport(store: Store) -> None:
    issue = make_issue(store, subscribers=2)
    victim = store.subscriber_by_email("s000@example.org")
    assert victim is not None
    store.add_consent(
        email=victim.email, name="S 0", digest_names=["weekly"], now=NOW,
        expires_at=NOW + timedelta(days=3), request_ip="192.0.2.1", request_user_agent="UA",
        form_url="https://example.org/subscribe", consent_version="v1",
    )  # fmt: skip
    (delivery,) = store.deliveries_of(victim.id)
    store.add_bounce(
        BounceRecord(
            "f1", NOW, "hard", victim.email, "5.1.1", f"<{victim.email}>: no such user", "dsn",
            "bounces/1.eml", 1.0, victim.id, delivery.id, issue.id,
        )
    )  # fmt: skip
    assert [b.kind for b in store.bounces_of(victim.id)] == ["hard"]

    assert store.erase_subscriber(victim.id, NOW)
    assert not store.erase_subscriber(victim.id, NOW)  # once
    assert store.subscriber_by_email("s000@example.org") is None
    record = store.subscriber_record(victim.id)
    assert record is not None and record.status == SUBSCRIBER_ERASED
    assert (record.name, record.digests) == ("", ())
    assert "s000" not in record.email
    assert store.search_subscribers("s000").rows == []
    assert [r.email for r in store.search_subscribers().rows] == ["s001@example.org"]
    with store.engine.connect() as conn:
        assert conn.execute(select(consents).where(consents.c.email == victim.email)).all() == []
        kept = conn.execute(
            select(deliveries.c.email, deliveries.c.name).where(
                deliveries.c.subscriber_id == victim.id
            )
        ).all()
        tombstones = conn.execute(select(erasures)).all()
        reports = conn.execute(select(bounce_log)).all()
    assert [tuple(row) for row in kept] == [("", "")]  # the ledger row stays, anonymous
    assert len(tombstones) == 1 and "s000" not in tombstones[0].address_hash
    assert [(r.address, r.diagnostic, r.origin, r.kind) for r in reports] == [("", "", "", "hard")]
    assert store.feedback_counts([issue.id])[issue.id] == {"hard": 1}  # still counted
    assert store.issue_deliveries(issue.id)[0].email == ""
    # the unsent row is skipped by the sender, never sent to nobody
    claimed = store.claim(issue.id, "w", 10, NOW)
    assert [row.email for row in claimed] == ["s001@example.org"]

    report = import_csv(
        "email,name\nS000@example.org,Back Again\nnew@example.org,New\n",
        store,
        known_digests=["weekly"],
        default_digests=["weekly"],
        now=NOW,
        source="list.csv",
    )
    assert (report.added, report.updated) == (1, 0)
    assert report.problems == ["list.csv:2: s000@example.org was erased; not imported"]
    assert store.subscriber_by_email("s000@example.org") is None
    assert store.remove_subscriber("new@example.org", NOW)  # the CLI's remove erases too
    assert store.erased_among(["new@example.org", "s001@example.org"]) == {"new@example.org"}


def _in_doubt_issue(store: Store, rows: int = 3) -> tuple[int, list[int]]:
    issue = make_issue(store, subscribers=rows)
    claimed = store.claim(issue.id, "w", rows, NOW)
    for row in claimed:
        store.mark_in_doubt(row.id, "no reply after DATA")
    store.set_issue_status(issue.id, ISSUE_DONE, NOW)
    return issue.id, [row.id for row in claimed]


def test_mark_delivered_changes_only_in_doubt_rows_once(store: Store) -> None:
    issue_id, ids = _in_doubt_issue(store)
    assert store.mark_in_doubt_delivered(issue_id, [ids[0]], NOW, "redaktion") == 1
    assert store.mark_in_doubt_delivered(issue_id, [ids[0]], NOW, "redaktion") == 0
    assert store.resend_in_doubt(issue_id, [ids[0]], lambda: "<x@example.org>", "r") == 0
    assert store.mark_in_doubt_delivered(issue_id, None, NOW, "redaktion") == 2
    assert store.counts(issue_id)[SENT] == 3 and store.counts(issue_id)[IN_DOUBT] == 0
    assert store.find_issue(issue_id).status == ISSUE_DONE  # type: ignore[union-attr]


def test_resend_gives_a_new_message_id_and_reopens_the_issue_once(store: Store) -> None:
    issue_id, ids = _in_doubt_issue(store)
    before = {row.id: row.message_id for row in store.issue_deliveries(issue_id)}
    numbers = count()
    new_id = lambda: f"<new{next(numbers)}@example.org>"  # noqa: E731
    assert store.resend_in_doubt(issue_id, [ids[1]], new_id, "redaktion") == 1
    assert store.resend_in_doubt(issue_id, [ids[1]], new_id, "redaktion") == 0  # once
    after = {row.id: row for row in store.issue_deliveries(issue_id)}
    assert after[ids[1]].status == PENDING and after[ids[1]].message_id == "<new0@example.org>"
    assert after[ids[1]].message_id != before[ids[1]]
    assert after[ids[0]].status == IN_DOUBT and after[ids[0]].message_id == before[ids[0]]
    assert store.find_issue(issue_id).status == ISSUE_SENDING  # type: ignore[union-attr]
    claimed = store.claim(issue_id, "w2", 10, NOW)
    assert [row.id for row in claimed] == [ids[1]]  # only the row staff chose
    store.mark_sent(ids[1], NOW)
    assert store.claim(issue_id, "w2", 10, NOW) == []
    assert store.resend_in_doubt(issue_id, None, new_id, "redaktion") == 2


def test_two_staff_resending_at_once_reopen_each_row_once(store: Store) -> None:
    issue_id, _ = _in_doubt_issue(store, rows=4)
    results: list[int] = []
    numbers = count()
    lock = threading.Lock()

    def new_id() -> str:
        with lock:
            return f"<race{next(numbers)}@example.org>"

    def resend() -> None:
        results.append(store.resend_in_doubt(issue_id, None, new_id, "redaktion"))

    threads = [threading.Thread(target=resend) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 4
    assert store.counts(issue_id)[PENDING] == 4


def test_issue_views(store: Store) -> None:
    issue_id, ids = _in_doubt_issue(store, rows=3)
    store.mark_in_doubt_delivered(issue_id, [ids[0]], NOW, "redaktion")
    counts = store.counts_by_issue([issue_id, 999])
    assert counts[issue_id][SENT] == 1 and counts[issue_id][IN_DOUBT] == 2
    assert sum(counts[999].values()) == 0
    assert [r.id for r in store.issue_deliveries(issue_id, status=IN_DOUBT)] == ids[1:]
    assert [r.id for r in store.issue_deliveries(issue_id, after=ids[0], limit=1)] == [ids[1]]
    subscriber = store.subscriber_by_email("s000@example.org")
    assert subscriber is not None
    (delivery,) = store.deliveries_of(subscriber.id)
    assert (delivery.issue_id, delivery.status, delivery.digest) == (issue_id, SENT, "weekly")
    assert store.issue_titles(issue_id) == []
    assert store.find_issue(12345) is None


def test_postgresql_searches_parts_of_addresses_and_names_off_trigram_indexes(
    store: Store,
) -> None:
    if store.is_sqlite:
        pytest.skip("trigram indexes are PostgreSQL's (SQLite scans: bench/admin.py)")
    store.add_subscribers(
        [(f"p{n}@example.org", f"Person {n}", ["weekly"]) for n in range(500)], NOW
    )
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE subscribers")
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plans = [
            "\n".join(
                row[0]
                for row in conn.exec_driver_sql(
                    f"EXPLAIN SELECT id FROM subscribers WHERE {where} LIKE '%%erson 4%%'"
                )
            )
            for where in ("email", "lower(name)")
        ]
    assert "ix_subscribers_email_trgm" in plans[0] and "ix_subscribers_name_trgm" in plans[1]
    assert [r.name for r in store.search_subscribers("person 499").rows] == ["Person 499"]
