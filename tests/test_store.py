"""The store on its own: schema versions, the database's uniqueness guarantees, claiming and
crash recovery of delivery rows."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, update

from digest.errors import StoreError
from digest.store import (
    IN_DOUBT,
    PENDING,
    SCHEMA_VERSION,
    SENDING,
    IssueExists,
    IssueRow,
    Store,
    deliveries,
    issue_items,
    items,
    resolve_database_url,
    schema_info,
    sqlite_path,
    workers,
)

NOW = datetime(2017, 11, 20, 7, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    yield store
    store.close()


def make_issue(
    store: Store, subscribers: int = 5, key: str = "2017-11-20", digest: str = "weekly"
) -> IssueRow:
    for n in range(subscribers):
        store.add_subscriber(f"s{n:03d}@example.org", f"S {n}", [digest], NOW)
    counter = iter(range(10**6))
    return store.create_issue(
        digest=digest,
        period_key=key,
        period_start=NOW - timedelta(days=7),
        period_end=NOW,
        status="sending",
        subject="Subject",
        preheader="",
        html="<p>x</p>",
        text="x",
        item_ids=[],
        now=NOW,
        message_id=lambda: f"<m{next(counter)}.{key}@example.org>",
    )


def statuses(store: Store, issue_id: int) -> dict[str, str]:
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT email, status FROM deliveries WHERE issue_id = ?", (issue_id,)
        ).all()
    return dict(rows)


def test_new_database_gets_the_current_schema_in_wal_mode(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'd.db'}")
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert (
                conn.exec_driver_sql("SELECT version FROM schema_info").scalar() == SCHEMA_VERSION
            )
    finally:
        store.close()


def test_newer_schema_on_disk_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    Store.open(f"sqlite:///{path}").close()
    store = Store.open(f"sqlite:///{path}")
    with store.begin() as conn:
        conn.execute(update(schema_info).values(version=SCHEMA_VERSION + 1))
    store.close()
    with pytest.raises(StoreError) as caught:
        Store.open(f"sqlite:///{path}")
    message = str(caught.value)
    assert str(path) in message
    assert f"schema version {SCHEMA_VERSION + 1} is newer" in message
    assert "\n" not in message


def test_store_as_context_manager_closes_on_error(tmp_path: Path) -> None:
    path = tmp_path / "ctx.db"
    with pytest.raises(RuntimeError), Store.open(f"sqlite:///{path}") as store:
        disposed = []
        store.engine.dispose = lambda *args, **kwargs: disposed.append(True)  # type: ignore[method-assign]
        raise RuntimeError("boom")
    assert disposed == [True]


def test_sqlite_urls_are_read_in_one_place(tmp_path: Path) -> None:
    assert sqlite_path("sqlite:///data/d.db?mode=ro") == Path("data/d.db")
    assert sqlite_path("sqlite:////abs/d.db") == Path("/abs/d.db")
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("sqlite://") is None
    assert sqlite_path("postgresql+psycopg://u@h/db") is None
    assert resolve_database_url("sqlite:///d.db", tmp_path) == f"sqlite:///{tmp_path / 'd.db'}"
    assert resolve_database_url("sqlite:////abs/d.db", tmp_path) == "sqlite:////abs/d.db"
    assert resolve_database_url("sqlite:///:memory:", tmp_path) == "sqlite:///:memory:"
    assert resolve_database_url("postgresql://h/db", tmp_path) == "postgresql://h/db"


def test_open_for_reading_writes_no_file(tmp_path: Path) -> None:
    path = tmp_path / "none.db"
    Store.open_for_reading(f"sqlite:///{path}").close()
    assert not path.exists()


def test_one_issue_per_period(store: Store) -> None:
    make_issue(store)
    with pytest.raises(IssueExists):
        make_issue(store, subscribers=0)


def test_an_item_goes_into_one_issue_of_a_digest_only(store: Store) -> None:
    issue = make_issue(store)
    other = make_issue(store, subscribers=0, key="2017-11-27")
    with store.begin() as conn:
        item_id = conn.execute(
            insert(items).values(
                uid="folder:x",
                source="folder",
                content_hash="h",
                published_at=NOW,
                first_seen_at=NOW,
                last_seen_at=NOW,
                present=True,
                draft=False,
                data={},
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(issue_items).values(
                issue_id=issue.id, item_id=item_id, digest="weekly", position=0
            )
        )
    with pytest.raises(Exception, match="UNIQUE"), store.begin() as conn:
        conn.execute(
            insert(issue_items).values(
                issue_id=other.id, item_id=item_id, digest="weekly", position=0
            )
        )


def test_deliveries_are_unique_with_message_ids_fixed_at_creation(store: Store) -> None:
    issue = make_issue(store, subscribers=20)
    with store.engine.connect() as conn:
        ids = (
            conn.exec_driver_sql(
                "SELECT message_id FROM deliveries WHERE issue_id = ?", (issue.id,)
            )
            .scalars()
            .all()
        )
    assert len(ids) == len(set(ids)) == 20
    with pytest.raises(Exception, match="UNIQUE"), store.begin() as conn:
        conn.execute(
            insert(deliveries).values(
                issue_id=issue.id,
                subscriber_id=1,
                email="s000@example.org",
                name="",
                message_id="<new@example.org>",
                status=PENDING,
                attempts=0,
            )
        )


def test_claim_never_hands_out_a_row_twice(store: Store) -> None:
    issue = make_issue(store, subscribers=50)
    worker = store.register_worker(NOW)
    seen: list[int] = []
    while batch := store.claim(issue.id, worker, 7, NOW):
        seen += [row.id for row in batch]
        assert all(row.status == SENDING and row.attempts == 1 for row in batch)
    assert len(seen) == len(set(seen)) == 50


def test_claim_skips_leavers_and_goes_on(store: Store) -> None:
    issue = make_issue(store, subscribers=30)
    for n in range(25):
        subscriber = store.subscriber_by_email(f"s{n:03d}@example.org")
        assert subscriber is not None
        store.unsubscribe(subscriber.id, NOW)
    worker = store.register_worker(NOW)
    batch = store.claim(issue.id, worker, 10, NOW)
    assert [row.email for row in batch] == [f"s{n:03d}@example.org" for n in range(25, 30)]
    assert store.counts(issue.id)["skipped"] == 25


def test_failed_temp_rows_are_due_only_after_their_backoff(store: Store) -> None:
    issue = make_issue(store, subscribers=1)
    worker = store.register_worker(NOW)
    (row,) = store.claim(issue.id, worker, 5, NOW)
    store.mark_failed_temp(row.id, "451 later", NOW + timedelta(minutes=1))
    assert store.claim(issue.id, worker, 5, NOW + timedelta(seconds=59)) == []
    assert store.next_retry_at(issue.id) == NOW + timedelta(minutes=1)
    (again,) = store.claim(issue.id, worker, 5, NOW + timedelta(minutes=1))
    assert again.message_id == row.message_id and again.attempts == 2


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_recover_requeues_unsent_rows_and_marks_handed_over_ones_in_doubt(store: Store) -> None:
    issue = make_issue(store, subscribers=6)
    dead = store.register_worker(NOW)
    with store.begin() as conn:  # pretend that worker was another process, now dead
        conn.execute(update(workers).where(workers.c.id == dead).values(pid=dead_pid()))
    rows = store.claim(issue.id, dead, 3, NOW)
    store.mark_sent(rows[0].id, NOW)
    store.mark_payload(rows[1].id, NOW)  # data handed over, then the process died
    alive = store.register_worker(NOW)  # this process: alive
    live_rows = store.claim(issue.id, alive, 2, NOW)
    assert store.recover(NOW) == (1, 1)
    state = statuses(store, issue.id)
    assert state[rows[0].email] == "sent"
    assert state[rows[1].email] == IN_DOUBT
    assert state[rows[2].email] == PENDING
    assert all(state[row.email] == SENDING for row in live_rows)  # a live worker's rows stay
    (doubt,) = store.in_doubt("weekly")
    assert doubt[1].email == rows[1].email and doubt[1].message_id == rows[1].message_id
    # The requeued row is claimed again with its Message-ID and without a spent attempt.
    again = store.claim(issue.id, alive, 10, NOW)
    requeued = next(row for row in again if row.email == rows[2].email)
    assert requeued.message_id == rows[2].message_id and requeued.attempts == 1


def test_release_gives_rows_back_untouched(store: Store) -> None:
    issue = make_issue(store, subscribers=3)
    worker = store.register_worker(NOW)
    batch = store.claim(issue.id, worker, 3, NOW)
    store.release([row.id for row in batch], "server went away")
    assert set(statuses(store, issue.id).values()) == {PENDING}
    again = store.claim(issue.id, worker, 3, NOW)
    assert [row.attempts for row in again] == [1, 1, 1]


def test_an_older_schema_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    Store.open(f"sqlite:///{path}").close()
    store = Store.open(f"sqlite:///{path}")
    with store.begin() as conn:  # what schema 3 looked like: no claim index
        conn.exec_driver_sql("DROP INDEX ix_deliveries_due")
        conn.execute(update(schema_info).values(version=3))
    store.close()
    store = Store.open(f"sqlite:///{path}")
    try:
        with store.engine.connect() as conn:
            assert (
                conn.exec_driver_sql("SELECT version FROM schema_info").scalar() == SCHEMA_VERSION
            )
            names = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")
            assert "ix_deliveries_due" in names.scalars().all()
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM deliveries WHERE issue_id = 1 "
                "AND status = 'pending' ORDER BY id LIMIT 100"
            ).all()
        assert "ix_deliveries_due" in str(plan) and "TEMP B-TREE" not in str(plan)
    finally:
        store.close()
