"""One leader and wake-ups between processes sharing a store (PostgreSQL; SQLite polls)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.store import Store
from digest.store.coordination import Leadership, WorkSignal

pytestmark = pytest.mark.both_databases
SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.open(database_url)
    yield store
    store.close()


@pytest.mark.postgres_only
def test_one_leader_and_the_next_takes_over_when_it_lets_go(store: Store) -> None:
    first, second = Leadership(store.engine, "a"), Leadership(store.engine, "b")
    try:
        assert first.try_acquire() and first.alive()
        assert not second.try_acquire()
        first.release()
        assert second.try_acquire()
        assert not first.try_acquire()
    finally:
        first.release()
        second.release()


@pytest.mark.postgres_only
def test_a_killed_leaders_lock_goes_to_the_standby(store: Store, database_url: str) -> None:
    code = (
        "import sys, time\n"
        "from digest.store import Store\n"
        "from digest.store.coordination import Leadership\n"
        f"leader = Leadership(Store.open({database_url!r}).engine, 'leader')\n"
        "assert leader.try_acquire()\n"
        "print('leading', flush=True)\n"
        "time.sleep(600)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    standby = Leadership(store.engine, "standby")
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "leading"
        assert not standby.try_acquire()
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        deadline = time.monotonic() + 10
        while not standby.try_acquire():
            assert time.monotonic() < deadline, "the lock of a killed leader was not freed"
            time.sleep(0.2)
    finally:
        process.kill()
        process.wait()
        standby.release()


@pytest.mark.postgres_only
def test_workers_wake_at_once_on_new_work(store: Store, database_url: str) -> None:
    signal_ = WorkSignal(store.engine, "worker")
    woken: list[tuple[bool, float]] = []

    def wait() -> None:
        started = time.monotonic()
        woken.append((signal_.wait(30), time.monotonic() - started))

    try:
        assert signal_.wait(0.1) is False  # listening now; nothing came
        thread = threading.Thread(target=wait)
        thread.start()
        time.sleep(0.3)
        other = Store.open(database_url)
        try:
            WorkSignal(other.engine).notify()
        finally:
            other.close()
        thread.join(10)
        assert woken and woken[0][0] is True and woken[0][1] < 5
    finally:
        signal_.close()


def test_without_notifications_a_worker_waits_its_poll_interval(store: Store) -> None:
    signal_ = WorkSignal(store.engine)
    try:
        started = time.monotonic()
        assert signal_.wait(0.3) is False
        assert 0.25 < time.monotonic() - started < 3
        signal_.interrupt()
        started = time.monotonic()
        assert signal_.wait(30) is True and time.monotonic() - started < 2
    finally:
        signal_.close()
