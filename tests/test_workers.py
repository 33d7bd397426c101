"""Real ``digest worker`` processes on PostgreSQL: N workers, one leader, no duplicate ever.

Three workers deliver a 10,000-subscriber issue that ``digest send --enqueue`` left to them,
into an aiosmtpd server that records every (recipient, Message-ID). One worker is killed
with SIGKILL mid-send; another is frozen with SIGSTOP past its lease (its rows are rescued
by the others) and then continued: it must notice and drop its batch. Nobody gets the issue
twice, the rows in doubt are no more than the connections of those two workers, and the
database agrees with what the server received.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from digest.store import Store
from tests.conftest import AT_TEXT, CliRunner, Site
from tests.smtp_server import SmtpServer, import_subscribers, running, subscribers_csv, use_smtp

pytestmark = [pytest.mark.postgres_only, pytest.mark.timeout(240)]

SUBSCRIBERS = 10_000
CONNECTIONS = 2  # per worker
LEASE = 8.0  # seconds: a frozen worker stops after 4, its rows are rescued after 8
_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.MULTILINE | re.IGNORECASE)


def configure(site: Site, port: int) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["store"] = {"lease_seconds": LEASE, "poll_seconds": 0.5}
        data["delivery"]["retry"]["pause_after_errors"] = 1000

    use_smtp(site.config, port, connections=CONNECTIONS, edit=edit)


def digest(site: Site, *args: str, log: Path | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    return subprocess.Popen(
        [sys.executable, "-m", "digest.cli", "-c", str(site.config), *args],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w") if log else subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_until(condition: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def ledger(site: Site) -> dict[str, tuple[str, str]]:
    """email -> (status, message_id) of the weekly issue."""
    store = Store.open(site.load().database_url)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(text("SELECT email, status, message_id FROM deliveries")).all()
    finally:
        store.close()
    return {email: (status, message_id) for email, status, message_id in rows}


def received_ids(server: SmtpServer) -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    for message in server.received:
        match = _MESSAGE_ID.search(message.data.split(b"\r\n\r\n", 1)[0])
        assert match is not None
        for rcpt in message.rcpt_tos:
            found[(rcpt, match.group(1).decode())] += 1
    return found


def test_three_workers_one_killed_one_frozen_past_its_lease_no_duplicate(
    site: Site, cli: CliRunner, tmp_path: Path
) -> None:
    import_subscribers(site, cli, subscribers_csv(SUBSCRIBERS))
    with running() as server:
        configure(site, server.port)
        logs = [tmp_path / f"worker{n}.log" for n in range(3)]
        workers = [
            digest(site, "worker", "--connections", str(CONNECTIONS), log=log) for log in logs
        ]
        try:
            wait_until(
                lambda: all("waiting for work" in log.read_text() for log in logs),
                "the workers to start",
                30,
            )
            enqueue = digest(site, "send", "weekly", "--enqueue", "--yes", "--at", AT_TEXT)
            _, err = enqueue.communicate(timeout=60)
            assert enqueue.returncode == 0, err
            killed, frozen, survivor = workers

            server.wait_for(1500, timeout=60)
            killed.send_signal(signal.SIGKILL)
            killed.wait(10)

            server.wait_for(3000, timeout=60)
            frozen.send_signal(signal.SIGSTOP)
            stopped_at = len(server.received)
            time.sleep(LEASE + 4)  # past its lease: the survivor rescues its rows
            assert len(server.received) > stopped_at  # the survivor went on meanwhile
            frozen.send_signal(signal.SIGCONT)

            def settled() -> bool:
                states = Counter(status for status, _ in ledger(site).values())
                return states["pending"] + states["sending"] + states["failed_temp"] == 0

            wait_until(settled, "every delivery to reach an outcome", 150)
            for process in (frozen, survivor):
                process.send_signal(signal.SIGTERM)
            for process in (frozen, survivor):
                assert process.wait(30) == 0
        finally:
            for process in workers:
                if process.poll() is None:
                    process.kill()
                    process.wait()

        frozen_log = logs[1].read_text()
        assert "lost its lease" in frozen_log, frozen_log[-2000:]
        arrived = received_ids(server)
    rows = ledger(site)
    duplicates = {key: n for key, n in arrived.items() if n > 1}
    assert duplicates == {}
    per_recipient = Counter(rcpt for rcpt, _ in arrived)
    assert max(per_recipient.values()) == 1  # nobody got the issue twice, by any Message-ID
    states = Counter(status for status, _ in rows.values())
    assert states["in_doubt"] <= 2 * CONNECTIONS  # the killed and the frozen worker's
    assert states["sent"] + states["in_doubt"] == SUBSCRIBERS
    # The database agrees with the server: every row marked sent arrived, with its own
    # Message-ID; what arrived and is not marked sent is honestly in doubt.
    got = {rcpt: message_id for rcpt, message_id in arrived}
    for email, (status, message_id) in rows.items():
        if status == "sent":
            assert got.get(email) == message_id, email
        else:
            assert status == "in_doubt", (email, status)
            assert got.get(email) in (None, message_id)
    assert set(got) <= set(rows)


def test_a_database_outage_mid_send_is_one_line_and_the_next_send_resumes(
    site: Site, cli: CliRunner, database: str
) -> None:
    """The database goes away under a running 'digest send' (its sessions are terminated and
    no new one is allowed): one line on stderr, no traceback; once it is back, the next
    send delivers the rest, nobody twice."""
    import psycopg
    from psycopg import sql

    from tests.databases import server_url

    count = 1500
    import_subscribers(site, cli, subscribers_csv(count))
    name = sql.Identifier(database.rsplit("/", 1)[1])
    admin_url = server_url().replace("postgresql+psycopg://", "postgresql://", 1)
    with running() as server, psycopg.connect(admin_url, autocommit=True) as admin:
        use_smtp(site.config, server.port, connections=2)
        sender = digest(site, "send", "weekly", "--yes", "--at", AT_TEXT)
        server.wait_for(200, timeout=60)
        admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(name))
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (database.rsplit("/", 1)[1],),
        )
        _, err = sender.communicate(timeout=60)
        assert sender.returncode == 1, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("digest: error: "), err
        assert "Traceback" not in err
        admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(name))
        again = digest(site, "send", "weekly", "--yes", "--at", AT_TEXT)
        _, err = again.communicate(timeout=120)
        assert again.returncode == 0, err
        per = server.per_recipient()
    rows = ledger(site)
    states = Counter(status for status, _ in rows.values())
    assert max(per.values()) == 1
    assert states["sent"] + states["in_doubt"] == count, (states, err)
    assert states["in_doubt"] <= 2
    assert {email for email, (status, _) in rows.items() if status == "sent"} <= set(per)
