"""The store on its own: schema versions, the database's uniqueness guarantees, claiming and
crash recovery of delivery rows."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, inspect, text, update

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
    sqlite_path,
    workers,
)

pytestmark = pytest.mark.both_databases
NOW = datetime(2017, 11, 20, 7, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.open(database_url)
    yield store
    store.close()


def revision(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())


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
        rows = conn.execute(
            text("SELECT email, status FROM deliveries WHERE issue_id = :issue"),
            {"issue": issue_id},
        )
        return {email: status for email, status in rows}


def test_new_database_gets_the_head_revision(store: Store) -> None:
    assert revision(store) == SCHEMA_VERSION


@pytest.mark.sqlite_only
def test_a_sqlite_store_is_in_wal_mode(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_newer_schema_on_disk_is_a_clear_error(database_url: str) -> None:
    store = Store.open(database_url)
    with store.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": "0099"})
    store.close()
    with pytest.raises(StoreError) as caught:
        Store.open(database_url)
    message = str(caught.value)
    assert database_url.rsplit("/", 1)[1] in message
    assert f"schema version 99 is newer than this digest understands ({SCHEMA_VERSION})" in message
    assert "\n" not in message


@pytest.mark.sqlite_only
def test_store_as_context_manager_closes_on_error(tmp_path: Path) -> None:
    path = tmp_path / "ctx.db"
    with pytest.raises(RuntimeError), Store.open(f"sqlite:///{path}") as store:
        disposed = []
        store.engine.dispose = lambda *args, **kwargs: disposed.append(True)  # type: ignore[method-assign]
        raise RuntimeError("boom")
    assert disposed == [True]


@pytest.mark.sqlite_only
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


@pytest.mark.sqlite_only
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
    with pytest.raises(Exception, match=r"(?i)unique"), store.begin() as conn:
        conn.execute(
            insert(issue_items).values(
                issue_id=other.id, item_id=item_id, digest="weekly", position=0
            )
        )


def test_deliveries_are_unique_with_message_ids_fixed_at_creation(store: Store) -> None:
    issue = make_issue(store, subscribers=20)
    with store.engine.connect() as conn:
        ids = (
            conn.execute(
                text("SELECT message_id FROM deliveries WHERE issue_id = :issue"),
                {"issue": issue.id},
            )
            .scalars()
            .all()
        )
    assert len(ids) == len(set(ids)) == 20
    with pytest.raises(Exception, match=r"(?i)unique"), store.begin() as conn:
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


def test_a_store_numbered_before_alembic_is_stamped_and_migrated(database_url: str) -> None:
    """A database of schema 4 (``schema_info``, the old claim index, no leases) is brought
    to the head by the Alembic revisions it lacks, keeping its rows."""
    store = Store.open(database_url)
    make_issue(store, subscribers=3)
    with store.begin() as conn:  # what schema 4 looked like
        for index in ("ix_deliveries_claim", "ix_deliveries_sending", "ix_deliveries_in_doubt"):
            conn.execute(text(f"DROP INDEX {index}"))
        conn.execute(text("DROP TABLE erasures"))  # nor schema 8
        conn.execute(text("CREATE INDEX ix_deliveries_due ON deliveries (issue_id, status)"))
        conn.execute(text("ALTER TABLE deliveries DROP COLUMN lease_until"))
        # nor schema 6: the bounce log and the VERP token
        conn.execute(text("DROP TABLE bounce_log"))
        for index in ("uq_deliveries_verp_token", "ix_deliveries_subscriber"):
            conn.execute(text(f"DROP INDEX {index}"))
        conn.execute(text("ALTER TABLE deliveries DROP COLUMN verp_token"))
        conn.execute(text("DROP TABLE staff_sessions"))  # nor schema 7
        # nor schema 8: reader profiles and issue variants
        conn.execute(text("DROP TABLE subscription_topics"))
        conn.execute(text("DROP TABLE issue_variants"))
        conn.execute(text("ALTER TABLE deliveries DROP COLUMN variant_id"))
        conn.execute(text("ALTER TABLE deliveries DROP COLUMN not_before"))
        for column in ("language", "timezone"):
            conn.execute(text(f"ALTER TABLE subscribers DROP COLUMN {column}"))
        for column in ("language", "topics"):
            conn.execute(text(f"ALTER TABLE consents DROP COLUMN {column}"))
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("CREATE TABLE schema_info (version INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO schema_info (version) VALUES (4)"))
    store.close()
    store = Store.open(database_url)
    try:
        assert revision(store) == SCHEMA_VERSION
        tables = set(inspect(store.engine).get_table_names())
        assert "schema_info" not in tables
        indexes = {index["name"] for index in inspect(store.engine).get_indexes("deliveries")}
        assert {"ix_deliveries_claim", "ix_deliveries_sending", "ix_deliveries_in_doubt"} <= indexes
        assert "ix_deliveries_due" not in indexes and "ix_deliveries_subscriber" in indexes
        assert "erasures" in tables
        assert store.counts()["pending"] == 3
    finally:
        store.close()


def test_the_migrations_build_the_schema_the_code_declares(database_url: str) -> None:
    """Running every revision from an empty database gives what ``metadata`` says (a new
    database is created from ``metadata`` directly and stamped: the two must agree)."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext

    from digest.store import metadata
    from digest.store._base import MIGRATIONS_DIR

    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS_DIR))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = [
                diff
                for diff in compare_metadata(context, metadata)
                if "alembic_version" not in str(diff)
                and "_trgm" not in str(diff)  # PostgreSQL only, outside metadata
            ]
        assert differences == []
    finally:
        engine.dispose()


def run_concurrently(code: str, processes: int) -> list[subprocess.CompletedProcess[str]]:
    """Start ``processes`` Pythons on ``code`` at once (each waits for a go file)."""
    src = str(Path(__file__).resolve().parents[1] / "src")
    launched = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": src},
        )
        for _ in range(processes)
    ]
    results = []
    for process in launched:
        out, err = process.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return results


def test_processes_creating_one_schema_at_once_all_succeed(database_url: str) -> None:
    code = f"from digest.store import Store; Store.open({database_url!r}).close(); print('ok')"
    results = run_concurrently(code, 4)
    assert [(r.returncode, r.stdout.strip(), r.stderr) for r in results] == [(0, "ok", "")] * 4
    store = Store.open(database_url)
    try:
        assert revision(store) == SCHEMA_VERSION
    finally:
        store.close()


def test_processes_adding_the_same_items_and_subscribers_at_once_all_succeed(
    database_url: str,
) -> None:
    Store.open(database_url).close()
    code = f"""
import time
from datetime import UTC, datetime
from digest.models import Item
from digest.store import Store
store = Store.open({database_url!r})
now = datetime(2017, 11, 20, 7, tzinfo=UTC)
found = [
    Item(source="folder:content", key=f"k{{n}}", title=f"T{{n}}", published_at=now, summary="",
         body_html="", content_hash=f"h{{n}}")
    for n in range(50)
]
time.sleep(max(0.0, {time.time() + 1.5!r} - time.time()))  # all start together
new = store.record_items(found, now)
subscriber, created = store.add_subscriber("race@example.org", "R", ["weekly"], now)
added, updated = store.add_subscribers(
    [(f"r{{n}}@example.org", "", ["weekly"]) for n in range(200)], now
)
print(new, int(created), added)
"""
    results = run_concurrently(code, 4)
    assert [(r.returncode, r.stderr) for r in results] == [(0, "")] * 4
    totals = [tuple(map(int, r.stdout.split())) for r in results]
    assert sum(t[0] for t in totals) == 50  # every item counted new exactly once
    assert sum(t[1] for t in totals) == 1
    assert sum(t[2] for t in totals) == 200
    store = Store.open(database_url)
    try:
        assert len(store.known_uids()) == 50
        assert store.count_active("weekly") == 201
    finally:
        store.close()


def test_batched_import_adds_updates_and_reactivates(store: Store) -> None:
    store.add_subscriber("old@example.org", "Old", ["weekly"], NOW)
    old = store.subscriber_by_email("old@example.org")
    assert old is not None
    store.unsubscribe(old.id, NOW)
    rows = [("old@example.org", "", ["weekly", "daily"])]
    rows += [(f"n{n}@example.org", f"N {n}", ["weekly"]) for n in range(2500)]
    assert store.add_subscribers(rows, NOW) == (2500, 1)
    again = store.subscriber_by_email("old@example.org")
    assert again is not None
    assert (again.status, again.name, again.digests) == ("active", "Old", ("daily", "weekly"))
    assert again.token == old.token
    assert store.count_active("weekly") == 2501
    assert store.add_subscribers(rows[1:], NOW) == (0, 2500)


def test_a_database_that_does_not_answer_is_one_line(tmp_path: Path, database: str | None) -> None:
    url = (
        f"sqlite:///{tmp_path / 'missing' / 'folder' / 'd.db'}"
        if database is None
        else "postgresql+psycopg://digest:secret@127.0.0.1:9/nothing"
    )
    with pytest.raises(StoreError) as caught:
        Store.open(url)
    message = str(caught.value)
    assert message.startswith("database ") and "\n" not in message
    assert "secret" not in message and "Traceback" not in message


def plan(store: Store, query: str) -> str:
    """The query plan as text; PostgreSQL told to prefer indexes (a test table is tiny)."""
    with store.engine.connect() as conn:
        if store.is_sqlite:
            return str(conn.execute(text(f"EXPLAIN QUERY PLAN {query}")).all())
        conn.execute(text("SET enable_seqscan = off"))
        return "\n".join(conn.execute(text(f"EXPLAIN {query}")).scalars())


@pytest.mark.parametrize(
    "due",
    [
        "not_before IS NULL",  # at once: the path of every digest without deliver_at
        "not_before <= '2026-10-26 06:00:00'",  # readers whose local time has come
    ],
)
def test_claims_read_due_rows_in_order_straight_off_an_index(store: Store, due: str) -> None:
    """Each claim range is read in the index's order (not_before, id): no sorting of the due
    rows, and rows still waiting for their local time are never read."""
    issue = make_issue(store, subscribers=3)
    found = plan(
        store,
        f"SELECT id FROM deliveries WHERE issue_id = {issue.id} AND status = 'pending' "
        f"AND {due} ORDER BY not_before, id LIMIT 200",
    )
    assert "ix_deliveries_claim" in found
    assert "TEMP B-TREE" not in found and "Sort" not in found  # no sorting of due rows
    if store.is_sqlite:
        assert "not_before" in found  # the range includes it: waiting rows are not scanned
    else:
        assert "Index Cond" in found and "not_before" in found.split("Index Cond")[1]


def test_recovery_and_reports_read_partial_indexes_not_the_history(store: Store) -> None:
    make_issue(store, subscribers=3)
    assert "ix_deliveries_sending" in plan(
        store, "SELECT id FROM deliveries WHERE status = 'sending' AND claimed_by IS NOT NULL"
    )
    assert "ix_deliveries_in_doubt" in plan(
        store, "SELECT * FROM deliveries WHERE status = 'in_doubt'"
    )


# -- leases and fencing: a worker frozen past its lease can never send what was rescued


LEASE = timedelta(seconds=10)


def test_a_rescued_claim_fences_off_its_old_owner(store: Store) -> None:
    issue = make_issue(store, subscribers=3)
    frozen = store.register_worker(NOW)
    rows = store.claim(issue.id, frozen, 3, NOW, lease=LEASE)
    assert store.mark_payload(rows[0].id, NOW, frozen)  # handed over, then frozen
    later = NOW + LEASE + timedelta(seconds=1)
    assert store.recover(later, lease=LEASE) == (2, 1)  # its lease ran out
    other = store.register_worker(later)
    again = store.claim(issue.id, other, 3, later, lease=LEASE)
    assert [row.id for row in again] == [rows[1].id, rows[2].id]
    # The frozen worker wakes up: none of its marks holds any more.
    assert not store.heartbeat(frozen, later, lease=LEASE)  # declared dead: stop
    assert not store.mark_payload(rows[1].id, later, frozen)  # do not send it
    assert not store.mark_sent(rows[0].id, later, frozen)  # in doubt stays in doubt
    assert not store.mark_failed_perm(rows[2].id, "5xx", frozen)
    store.release([rows[1].id, rows[2].id], worker=frozen)  # changes nothing either
    state = statuses(store, issue.id)
    assert state[rows[0].email] == IN_DOUBT
    assert state[rows[1].email] == state[rows[2].email] == SENDING  # the new owner's claims
    assert store.mark_payload(rows[1].id, later, other)
    assert store.mark_sent(rows[1].id, later, other)


def test_heartbeats_keep_a_live_workers_lease(store: Store) -> None:
    issue = make_issue(store, subscribers=2)
    worker = store.register_worker(NOW)
    store.claim(issue.id, worker, 2, NOW, lease=LEASE)
    assert store.heartbeat(worker, NOW + timedelta(seconds=8), lease=LEASE)
    assert store.recover(NOW + timedelta(seconds=15), lease=LEASE) == (0, 0)
    assert store.recover(NOW + timedelta(seconds=19), lease=LEASE) == (2, 0)


def test_a_live_process_id_is_no_proof_of_life(store: Store) -> None:
    """A container restarted as PID 1: the old worker's row names a pid that is alive again
    (here: this very process), but its heartbeat is old. Its rows are rescued."""
    issue = make_issue(store, subscribers=2)
    old = store.register_worker(NOW)  # this process's pid: alive
    with store.begin() as conn:
        conn.execute(update(deliveries).values(lease_until=None))  # a claim without a lease
    store.claim(issue.id, old, 2, NOW, lease=LEASE)
    with store.begin() as conn:
        conn.execute(update(deliveries).values(lease_until=None))
    assert store.recover(NOW + LEASE + timedelta(seconds=1), lease=LEASE) == (2, 0)


def test_one_commit_records_a_sent_message_and_the_next_payload(store: Store) -> None:
    issue = make_issue(store, subscribers=2)
    worker = store.register_worker(NOW)
    first, second = store.claim(issue.id, worker, 2, NOW, lease=LEASE)
    assert store.mark_payload(first.id, NOW, worker)
    assert store.mark_sent(first.id, NOW, worker, next_payload=second.id)
    assert store.recover(NOW + LEASE * 2, lease=LEASE) == (0, 1)  # second: in doubt
    state = statuses(store, issue.id)
    assert (state[first.email], state[second.email]) == ("sent", IN_DOUBT)
