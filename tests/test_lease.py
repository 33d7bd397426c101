"""A sender's lease: it stops itself after half the lease without a heartbeat, and at once
when its rows were rescued."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from digest.lease import WorkerLease
from digest.store import Store

pytestmark = pytest.mark.both_databases


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.open(database_url)
    yield store
    store.close()


def test_a_lease_whose_rows_were_rescued_is_lost(store: Store) -> None:
    with WorkerLease(store, timedelta(seconds=60)) as lease:
        assert lease.valid
        store.recover(datetime.now(UTC) + timedelta(minutes=5), timedelta(seconds=60))
        lease.renew()  # the heartbeat finds its worker row gone
        assert lease.lost and not lease.valid


def test_without_a_heartbeat_that_reaches_the_database_the_lease_goes_stale(
    store: Store,
) -> None:
    with WorkerLease(store, timedelta(seconds=2)) as lease:
        assert lease.valid
        with store.begin() as conn:  # every heartbeat fails from now on
            conn.execute(text("ALTER TABLE workers RENAME TO workers_gone"))
        time.sleep(1.2)  # past half the lease
        assert not lease.valid and not lease.lost
        with store.begin() as conn:
            conn.execute(text("ALTER TABLE workers_gone RENAME TO workers"))
        lease.renew()
        assert lease.valid  # the database answers again, the worker was not rescued


def test_a_heartbeat_keeps_a_lease_valid_past_its_half(store: Store) -> None:
    with WorkerLease(store, timedelta(seconds=1.2)) as lease:
        time.sleep(1.0)  # heartbeats every 0.2 s
        assert lease.valid
