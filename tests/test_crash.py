"""Kill -9 a sender mid-send and start it again; run two senders at once.

The sender runs as a real ``digest send`` process against a real SMTP server. Whatever moment
it dies, the restart must deliver the issue to everyone exactly once, except rows honestly
marked in_doubt (the message data had been handed over, the reply never recorded): at most one
per connection, never re-sent, listed by ``digest status``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import text

from digest.store import Store
from tests.conftest import AT_TEXT, CliRunner, Site
from tests.smtp_server import (
    Faults,
    SmtpServer,
    import_subscribers,
    running,
    subscribers_csv,
    use_smtp,
)

pytestmark = pytest.mark.both_databases

SUBSCRIBERS = 200


def sender(site: Site) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    return subprocess.Popen(
        [sys.executable, "-m", "digest.cli", "-c", str(site.config), "send", "weekly",
         "--yes", "--at", AT_TEXT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip


def deliveries(site: Site) -> dict[str, str]:
    """email -> delivery status of the weekly issue."""
    store = Store.open(site.load().database_url)
    try:
        issue = store.latest_issue("weekly")
        assert issue is not None
        with store.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT email, status FROM deliveries WHERE issue_id = :issue"),
                {"issue": issue.id},
            ).all()
        return {email: status for email, status in rows}
    finally:
        store.close()


def kill_after(server: SmtpServer, process: subprocess.Popen[str], count: int) -> None:
    server.wait_for(count)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)  # reaped: its pid is dead for the recovery check
    assert process.returncode == -signal.SIGKILL


def assert_exactly_once(server: SmtpServer, states: dict[str, str], connections: int) -> None:
    per = server.per_recipient()
    doubt = [email for email, state in states.items() if state == "in_doubt"]
    assert len(doubt) <= connections
    assert set(states.values()) <= {"sent", "in_doubt"}
    for email, state in states.items():
        if state == "sent":
            assert per[email] == 1, email
        else:
            assert per[email] <= 1, email
    assert sum(per.values()) == len(server.received) <= len(states)


def test_sigkill_mid_send_then_restart_delivers_everyone_once(site: Site, cli: CliRunner) -> None:
    import_subscribers(site, cli, subscribers_csv(SUBSCRIBERS))
    with running() as server:
        use_smtp(site.config, server.port, connections=2, rate_limit=150)
        first = sender(site)
        kill_after(server, first, 60)
        arrived = len(server.received)
        assert arrived < SUBSCRIBERS
        states = deliveries(site)
        assert "sending" in states.values()  # the dead sender's claims are still there
        use_smtp(site.config, server.port, connections=2)
        second = sender(site)
        _out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
        status = cli("-c", site.config, "status")
    states = deliveries(site)
    assert_exactly_once(server, states, connections=2)
    for email, state in states.items():
        if state == "in_doubt":
            assert email in status.out


def test_sigkill_while_waiting_for_the_final_reply_is_in_doubt(site: Site, cli: CliRunner) -> None:
    cli("-c", site.config, "subscribers", "import", site.write("subs.csv", subscribers_csv(40)))
    victim = "user0010@example.net"
    with running(Faults(stall_at_dot={victim})) as server:
        use_smtp(site.config, server.port, connections=1)
        first = sender(site)
        deadline = time.monotonic() + 20
        while not any(victim in r.rcpt_tos for r in server.attempts):
            assert time.monotonic() < deadline, "the victim's message never arrived"
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        server.faults.release.set()
        second = sender(site)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
        assert "1 in doubt" in out
        # A third run sends nothing: in_doubt is never re-sent automatically.
        third = sender(site)
        _out3, err3 = third.communicate(timeout=60)
        assert third.returncode == 0, err3
        status = cli("-c", site.config, "status")
    states = deliveries(site)
    assert states[victim] == "in_doubt"
    assert [e for e, s in states.items() if s != "sent"] == [victim]
    assert_exactly_once(server, states, connections=1)
    assert server.per_recipient()[victim] == 1
    assert "in doubt (1)" in status.out and victim in status.out


def test_two_concurrent_senders_send_each_message_once(site: Site, cli: CliRunner) -> None:
    import_subscribers(site, cli, subscribers_csv(SUBSCRIBERS))
    with running() as server:
        # Rate-limited so the two runs overlap for a good second.
        use_smtp(site.config, server.port, connections=2, rate_limit=150)
        processes = [sender(site), sender(site)]
        results = [p.communicate(timeout=60) for p in processes]
        for process, (_, err) in zip(processes, results, strict=True):
            assert process.returncode == 0, err
    per = server.per_recipient()
    assert len(per) == SUBSCRIBERS
    assert set(per.values()) == {1}
    assert set(deliveries(site).values()) == {"sent"}


def test_ctrl_c_stops_cleanly_and_the_next_send_finishes(site: Site, cli: CliRunner) -> None:
    cli("-c", site.config, "subscribers", "import", site.write("subs.csv", subscribers_csv(120)))
    with running() as server:
        use_smtp(site.config, server.port, connections=2, rate_limit=150)
        first = sender(site)
        server.wait_for(30)
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=30)
        assert first.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        states = deliveries(site)
        assert set(states.values()) <= {"sent", "pending"}  # nothing left claimed or in doubt
        assert sum(state == "sent" for state in states.values()) == len(server.received)
        second = sender(site)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
    assert_exactly_once(server, deliveries(site), connections=0)
