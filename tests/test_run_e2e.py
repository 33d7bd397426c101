"""``digest run`` for real: the CLI in a subprocess, APScheduler on the wall clock, a real SMTP
server (aiosmtpd on 127.0.0.1), SIGTERM and restarts.

A short schedule needs a short period, and cron's smallest unit is the minute: the schedule
here is ``*/3 * * * * *``, the optional seconds field in front that APScheduler's CronTrigger
has and ``Schedule.parse`` accepts (meant for exactly this). Nothing else is faked: no time
travel, no test hooks in the product; the periods are three real seconds long.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from digest.config import load_config
from digest.store import Store
from tests.conftest import Site
from tests.smtp_server import Received, SmtpServer, running, use_smtp

pytestmark = [pytest.mark.timeout(120), pytest.mark.both_databases]

ALPHA, BETA, GAMMA = "Alpha-Meldung aus dem Rathaus", "Beta-Meldung zur Schule", "Gamma-Meldung"


def add_item(site: Site, slug: str, title: str) -> None:
    when = datetime.now(UTC) - timedelta(seconds=1)
    site.write(
        f"content/{slug}.md",
        f"""\
        ---
        title: "{title}"
        date: {when.isoformat()}
        id: {slug}
        ---
        {title}: der Text.
        """,
    )


def set_up(site: Site, port: int, rate_limit: float = 0) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["digests"] = {
            "pulse": {
                "title": "Puls",
                "schedule": "*/3 * * * * *",
                "backfill_days": 1,
                "catch_up": "merge",
            }
        }

    use_smtp(site.config, port, connections=1, rate_limit=rate_limit, edit=edit)


def add_subscribers(site: Site, emails: list[str]) -> None:
    store = Store.open(load_config(site.config, environ={}).database_url)
    try:
        for email in emails:
            store.add_subscriber(email, "", ["pulse"], datetime.now(UTC))
    finally:
        store.close()


class Run:
    """``digest run`` in a subprocess, its log in a file."""

    def __init__(self, site: Site, name: str) -> None:
        self.log = site.root / f"{name}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("DIGEST_CONFIG", None)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "digest.cli",
                    "-c",
                    str(site.config),
                    "run",
                    "--interval",
                    "1",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 20) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hang is the failure
            self.process.kill()
            raise AssertionError(f"digest run did not stop on SIGTERM:\n{self.text()}") from None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def wait_until(condition: Callable[[], bool], what: str, timeout: float, run: Run) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if run.process.poll() is not None:
            raise AssertionError(f"digest run exited ({run.process.returncode}):\n{run.text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{run.text()}")
        time.sleep(0.05)


def text_of(message: Received) -> str:
    body = message.message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def ledger(site: Site) -> list[tuple[str, str, dict[str, int]]]:
    store = Store.open(load_config(site.config, environ={}).database_url)
    try:
        rows = sorted(store.list_issues("pulse", limit=1000), key=lambda issue: issue.period_end)
        return [(issue.period_key, issue.status, store.counts(issue.id)) for issue in rows]
    finally:
        store.close()


@pytest.mark.sqlite_only  # the run lock file next to the database
def test_two_periods_then_sigterm_mid_send_and_restart(site: Site) -> None:
    with running() as server:
        first_three = ["ada@example.net", "bo@example.net", "cy@example.net"]
        set_up(site, server.port)
        add_subscribers(site, first_three)
        add_item(site, "alpha", ALPHA)

        # -- two periods, content added between them -------------------------------------
        run = Run(site, "run1")
        try:
            wait_until(lambda: len(server.received) >= 3, "the first issue", 15, run)
            second = subprocess.run(
                [sys.executable, "-m", "digest.cli", "-c", str(site.config), "run"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert second.returncode == 1
            assert "another 'digest run'" in second.stderr and "digest.db.lock" in second.stderr
            add_item(site, "beta", BETA)
            wait_until(lambda: len(server.received) >= 6, "the second issue", 15, run)
            assert run.stop() == 0, run.text()
        finally:
            run.kill()
        log = run.text()
        assert "Traceback" not in log
        assert "stopped; the ledger is consistent" in log
        assert log.count("created:") == 2 and log.count(" done: ") == 2, log
        assert server.per_recipient() == {email: 2 for email in first_three}
        for email in first_three:
            first, second_issue = [m for m in server.received if email in m.rcpt_tos]
            assert ALPHA in text_of(first) and BETA not in text_of(first)
            assert BETA in text_of(second_issue) and ALPHA not in text_of(second_issue)
        sent_issues = [entry for entry in ledger(site) if entry[1] == "done"]
        assert len(sent_issues) == 2
        assert {entry[1] for entry in ledger(site)} <= {"done", "empty"}

        # -- SIGTERM mid-send (rate-limited), then restart: nothing duplicated -------------
        newcomers = [f"reader{n:02d}@example.net" for n in range(24)]
        set_up(site, server.port, rate_limit=8)
        add_subscribers(site, newcomers)
        add_item(site, "gamma", GAMMA)
        run = Run(site, "run2")
        try:
            wait_until(lambda: len(server.received) >= 6 + 5, "part of the third issue", 20, run)
            assert run.stop() == 0, run.text()
        finally:
            run.kill()
        assert "Traceback" not in run.text()
        interrupted = [entry for entry in ledger(site) if entry[1] == "sending"]
        assert len(interrupted) == 1, ledger(site)
        _, _, counts = interrupted[0]
        arrived = len(server.received) - 6
        assert 5 <= counts["sent"] == arrived < 27
        assert counts["sending"] == 0 and counts["in_doubt"] == 0  # released, nothing in doubt
        assert counts["pending"] == 27 - arrived

        run = Run(site, "run3")
        try:
            wait_until(
                lambda: len(server.received) >= 6 + 27, "the rest of the third issue", 20, run
            )
            wait_until(
                lambda: all(entry[1] != "sending" for entry in ledger(site)), "issue done", 10, run
            )
            assert run.stop() == 0, run.text()
        finally:
            run.kill()
        assert "resuming" in run.text()
        time.sleep(0.2)
        assert_nothing_duplicated(server, first_three, newcomers)


def assert_nothing_duplicated(server: SmtpServer, old: list[str], new: list[str]) -> None:
    expected = Counter({email: 3 for email in old} | {email: 1 for email in new})
    assert server.per_recipient() == expected
    message_ids = [message.message_id for message in server.received]
    assert len(message_ids) == len(set(message_ids))
    for message in server.received:
        if GAMMA in text_of(message):
            assert ALPHA not in text_of(message) and BETA not in text_of(message)
    third = [message for message in server.received if GAMMA in text_of(message)]
    assert len(third) == 27


@pytest.mark.sqlite_only  # the run lock file next to the database
def test_run_exits_zero_on_sigint_when_idle(site: Site, tmp_path: Path) -> None:
    with running() as server:
        set_up(site, server.port)
        run = Run(site, "idle")
        try:
            wait_until(lambda: "started" in run.text(), "start-up", 15, run)
            run.process.send_signal(signal.SIGINT)
            assert run.process.wait(15) == 0, run.text()
        finally:
            run.kill()
        log = run.text()
        assert "SIGINT: stopping" in log and "Traceback" not in log
        lock = Path(str(site.root / "digest.db") + ".lock")
        assert lock.exists()
        assert yaml.safe_load(site.config.read_text())["digests"]["pulse"]["catch_up"] == "merge"


@pytest.mark.postgres_only
def test_two_runs_on_postgresql_one_leads_the_other_takes_over_after_a_kill(site: Site) -> None:
    """High availability, not a refusal: the second 'digest run' stands by, takes over
    within seconds of the leader's SIGKILL, and no period is sent twice."""
    with running() as server:
        emails = ["ada@example.net", "bo@example.net"]
        set_up(site, server.port)
        add_subscribers(site, emails)
        add_item(site, "alpha", ALPHA)
        leader = Run(site, "leader")
        standby: Run | None = None
        try:
            wait_until(lambda: "leading" in leader.text(), "the first run to lead", 20, leader)
            standby = Run(site, "standby")
            wait_until(lambda: "standing by" in standby.text(), "the standby", 20, standby)
            wait_until(lambda: len(server.received) >= 2, "the first issue", 20, leader)
            assert "leading" not in standby.text()
            leader.process.send_signal(signal.SIGKILL)
            leader.process.wait(10)
            killed_at = time.monotonic()
            wait_until(lambda: "leading" in standby.text(), "the standby to take over", 60, standby)
            assert time.monotonic() - killed_at < 60
            add_item(site, "beta", BETA)
            wait_until(
                lambda: any(BETA in text_of(m) for m in server.received),
                "an issue with the new item from the new leader",
                30,
                standby,
            )
            assert standby.stop() == 0
        finally:
            leader.kill()
            if standby is not None:
                standby.kill()
        per_issue = Counter(
            (rcpt, message.message["Subject"] + str(message.message["Message-ID"]))
            for message in server.received
            for rcpt in message.rcpt_tos
        )
        assert max(per_issue.values()) == 1
        with_alpha = Counter(
            rcpt for m in server.received if ALPHA in text_of(m) for rcpt in m.rcpt_tos
        )
        assert with_alpha == {email: 1 for email in emails}  # one issue took it, once
    rows = ledger(site)
    keys = [key for key, _, _ in rows]
    assert len(keys) == len(set(keys))  # no period twice
