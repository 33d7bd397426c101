"""``digest send`` against a real SMTP server (aiosmtpd on 127.0.0.1), with faults injected.

Every test imports subscribers through the CLI and sends the sample week
(``--at 2017-11-20T08:00:00+01:00``: the items of 14, 16 and 17 November 2017).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import text

from digest.ledger import prepare_issue
from digest.send import send_digest
from digest.store import Store
from tests.conftest import AT, AT_TEXT, OTHER_TITLES, SAMPLE_WEEK_TITLES, CliRunner, Site
from tests.smtp_server import (
    Faults,
    import_subscribers,
    no_defects,
    running,
    subscribers_csv,
    use_smtp,
)

pytestmark = pytest.mark.both_databases

SUBJECT = "Präventionskette Ahlen: 3 neue Beiträge"


@pytest.fixture(params=[True, False], ids=["pipelining", "one-by-one"])
def pipelining(request: pytest.FixtureRequest) -> bool:
    """Whether the server offers PIPELINING (then MAIL, RCPT and DATA go in one write)."""
    return bool(request.param)


def send(site: Site, cli: CliRunner, *extra: str) -> tuple[int, str, str]:
    result = cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT, *extra)
    return result.code, result.out, result.err


def counts(site: Site) -> dict[str, int]:
    store = Store.open(site.load().database_url)
    try:
        issue = store.latest_issue("weekly")
        assert issue is not None
        return store.counts(issue.id)
    finally:
        store.close()


def test_sample_week_reaches_every_weekly_subscriber(site: Site, cli: CliRunner) -> None:
    import_subscribers(
        site,
        cli,
        "email,name,digests\n"
        "anna@example.org,Anna Becker,weekly\n"
        "bernd@example.org,Bernd,weekly|monthly\n"
        "carla@example.org,Carla,monthly\n"
        "dora@example.org,,weekly;monthly\n",
    )
    with running() as server:
        use_smtp(site.config, server.port)
        code, out, err = send(site, cli)
        assert code == 0, err
        assert "3 sent" in out
    assert sorted(server.per_recipient()) == [
        "anna@example.org",
        "bernd@example.org",
        "dora@example.org",
    ]
    assert max(server.per_recipient().values()) == 1
    for received in server.received:
        message = received.message
        assert no_defects(message) == []
        assert message["Subject"] == SUBJECT
        assert received.mail_from == "newsletter@example.org"
        assert message["To"].addresses[0].addr_spec == received.rcpt_tos[0]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["List-Unsubscribe"].startswith("<https://")
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        for title in SAMPLE_WEEK_TITLES:
            assert title in text
            assert title in unescape(html)
        for title in OTHER_TITLES:
            assert title not in text
    anna = next(r for r in server.received if r.rcpt_tos == ("anna@example.org",)).message
    assert "Anna Becker" in anna.get_body(("plain",)).get_content()
    assert anna["To"].addresses[0].display_name == "Anna Becker"


def test_two_hundred_subscribers_one_message_each_stable_message_ids(
    site: Site, cli: CliRunner
) -> None:
    import_subscribers(site, cli, subscribers_csv(200))
    flaky = {f"user{n:04d}@example.net" for n in (3, 77, 150)}
    faults = Faults(data_fail_once={addr: "451 4.3.0 try again later" for addr in flaky})
    with running(faults) as server:
        use_smtp(site.config, server.port, connections=3)
        code, _out, err = send(site, cli, "--wait", "10")
        assert code == 0, err
    per = server.per_recipient()
    assert len(per) == 200
    assert set(per.values()) == {1}
    ids = [r.message_id for r in server.received]
    assert len(set(ids)) == 200
    # The retried message kept the Message-ID of its first, deferred attempt.
    first = {r.rcpt_tos[0]: r.message_id for r in reversed(server.attempts)}
    for received in server.received:
        assert received.message_id == first[received.rcpt_tos[0]]
    attempts = Counter(r.rcpt_tos[0] for r in server.attempts)
    assert {addr for addr, n in attempts.items() if n == 2} == flaky
    assert counts(site)["sent"] == 200


def test_451_at_data_is_retried_and_delivered_once(
    site: Site, cli: CliRunner, pipelining: bool
) -> None:
    import_subscribers(site, cli, subscribers_csv(5))
    faults = Faults(data_fail_once={"user0002@example.net": "451 4.7.1 greylisted"})
    with running(faults, pipelining=pipelining) as server:
        use_smtp(site.config, server.port)
        code, _out, err = send(site, cli, "--wait", "10")
        assert code == 0, err
    assert server.per_recipient() == dict.fromkeys(
        (f"user{n:04d}@example.net" for n in range(5)), 1
    )
    assert counts(site)["sent"] == 5


def test_451_without_waiting_is_deferred_and_resumed_by_the_next_send(
    site: Site, cli: CliRunner
) -> None:
    import_subscribers(site, cli, subscribers_csv(3))
    faults = Faults(data_fail_once={"user0001@example.net": "451 4.7.1 greylisted"})
    with running(faults) as server:
        # A backoff longer than the run: with a tiny one, the other connection could take the
        # retry, due already, in the same run.
        use_smtp(site.config, server.port, retry={"base_seconds": 1.0, "max_seconds": 1.0})
        code, out, _ = send(site, cli)
        assert code == 0
        assert "1 deferred" in out
        assert counts(site)["failed_temp"] == 1
        time.sleep(1.3)  # past the backoff (1 s, jitter up to +20 %)
        code, out, err = send(site, cli)
        assert code == 0, err
    assert set(server.per_recipient().values()) == {1}
    assert len(server.per_recipient()) == 3
    assert counts(site)["sent"] == 3


def test_550_at_rcpt_fails_that_recipient_only(
    site: Site, cli: CliRunner, pipelining: bool
) -> None:
    import_subscribers(site, cli, subscribers_csv(6))
    bad = "user0003@example.net"
    with running(
        Faults(rcpt_reject={bad: "550 5.1.1 no such user"}), pipelining=pipelining
    ) as server:
        use_smtp(site.config, server.port)
        code, out, err = send(site, cli, "--wait", "5")
        assert code == 0, err
        assert "1 failed" in out
    per = server.per_recipient()
    assert bad not in per
    assert len(per) == 5 and set(per.values()) == {1}
    assert counts(site)["failed_perm"] == 1
    assert counts(site)["sent"] == 5


def test_421_and_disconnect_mid_run_reconnects_without_duplicates(
    site: Site, cli: CliRunner, pipelining: bool
) -> None:
    import_subscribers(site, cli, subscribers_csv(30))
    with running(Faults(disconnect_after=10), pipelining=pipelining) as server:
        use_smtp(site.config, server.port, connections=1)
        code, _out, err = send(site, cli, "--wait", "5")
        assert code == 0, err
    per = server.per_recipient()
    assert len(per) == 30 and set(per.values()) == {1}
    assert counts(site)["sent"] == 30


def test_no_reply_after_final_dot_is_in_doubt_and_never_resent(
    site: Site, cli: CliRunner, pipelining: bool
) -> None:
    import_subscribers(site, cli, subscribers_csv(8))
    victim = "user0004@example.net"
    with running(Faults(drop_after_dot={victim}), pipelining=pipelining) as server:
        use_smtp(site.config, server.port, connections=1)
        code, out, err = send(site, cli, "--wait", "5")
        assert code == 0, err
        assert "1 in doubt" in out
        assert counts(site)["in_doubt"] == 1
        assert counts(site)["sent"] == 7
        code, out, err = send(site, cli, "--wait", "5")
        assert code == 0, err
        status = cli("-c", site.config, "status")
    assert server.per_recipient()[victim] == 1  # the server had it; nobody sent it again
    assert len(server.received) == 8
    assert victim in status.out and "in doubt (1)" in status.out


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth_failure_pauses_the_issue_and_resumes_with_fixed_credentials(
    site: Site, cli: CliRunner
) -> None:
    import_subscribers(site, cli, subscribers_csv(4))
    with running(credentials=("mailer", "right")) as server:
        use_smtp(site.config, server.port, username="mailer", password="wrong")
        code, _out, err = send(site, cli)
        assert code != 0
        assert len(err.strip().splitlines()) == 1
        assert "paused" in err and "Traceback" not in err
        assert server.received == []
        store = Store.open(site.load().database_url)
        issue = store.latest_issue("weekly")
        assert issue is not None and issue.status == "paused"
        assert store.counts(issue.id)["pending"] == 4
        store.close()
        use_smtp(site.config, server.port, username="mailer", password="right")
        code, _out, err = send(site, cli)
        assert code == 0, err
    assert len(server.per_recipient()) == 4 and set(server.per_recipient().values()) == {1}
    assert counts(site)["sent"] == 4


def test_server_down_is_one_clear_line_and_the_next_send_resumes(
    site: Site, cli: CliRunner
) -> None:
    import_subscribers(site, cli, subscribers_csv(5))
    with running() as server:
        port = server.port
    use_smtp(site.config, port)  # nobody listens there now
    code, _out, err = send(site, cli)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("digest: error:"), err
    assert "cannot connect" in lines[0] and f"127.0.0.1:{port}" in lines[0]
    assert counts(site)["sent"] == 0
    assert counts(site)["pending"] == 5
    with running() as server:
        use_smtp(site.config, server.port)
        code, _out, err = send(site, cli)
        assert code == 0, err
    assert len(server.per_recipient()) == 5 and set(server.per_recipient().values()) == {1}


def test_header_injection_in_subject_and_names_is_neutralised(
    site: Site, cli: CliRunner, tmp_path: Path
) -> None:
    site.write(
        "content/2017-11-15-evil.md",
        """
        ---
        title: "Harmlos\\r\\nBcc: victim@example.com\\r\\nX-Evil: 1"
        date: 2017-11-15
        ---
        Body.
        """,
    )
    site.replace_in_config(
        'subject: "{{ site.title }}: {{ items|length }}',
        'subject: "{{ items[2].title }} {{ items|length }}',
    )
    import_subscribers(
        site,
        cli,
        'email,name,digests\n"eve@example.org","Eve\r\nBcc: victim@example.com",weekly\n'
        "bob@example.org,Bob\u2028Cc: x@example.com,weekly\n",
    )
    with running() as server:
        use_smtp(site.config, server.port)
        code, _out, err = send(site, cli)
        assert code == 0, err
    assert sorted(r.rcpt_tos for r in server.received) == [
        ("bob@example.org",),
        ("eve@example.org",),
    ]
    for received in server.received:
        message = received.message
        assert no_defects(message) == []
        assert message["Bcc"] is None and message["Cc"] is None and message["X-Evil"] is None
        assert message["Subject"].startswith("Harmlos Bcc: victim@example.com X-Evil: 1")
        assert len(message.get_all("To")) == 1
        assert message["To"].addresses[0].addr_spec == received.rcpt_tos[0]
        head = received.data.split(b"\r\n\r\n", 1)[0]
        assert b"\nBcc:" not in head and b"\nCc:" not in head
        assert b"\r" not in head.replace(b"\r\n", b"")


@pytest.mark.parametrize("recipients", [1, 3])
def test_spliced_message_parses_without_defects(
    site: Site, cli: CliRunner, recipients: int
) -> None:
    import_subscribers(
        site,
        cli,
        "email,name,digests\n"
        + "".join(f"p{n}@example.org,Jörg „Ümlaut“ Ñandú {n},weekly\n" for n in range(recipients)),
    )
    with running() as server:
        use_smtp(site.config, server.port)
        code, _, err = send(site, cli)
        assert code == 0, err
    assert len(server.received) == recipients
    for received in server.received:
        message = received.message
        assert no_defects(message) == []
        assert message.get_content_type() == "multipart/alternative"
        kinds = [part.get_content_type() for part in message.iter_parts()]
        assert kinds == ["text/plain", "text/html"]
        assert all(len(line) <= 998 for line in received.data.split(b"\r\n"))
        assert message["To"].addresses[0].display_name.startswith("Jörg „Ümlaut“ Ñandú")
        assert "Jörg" in message.get_body(("plain",)).get_content()


def test_a_store_failure_mid_send_stops_cleanly_and_the_next_run_resumes(
    site: Site, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger write before the data fails: the run stops with one error, the server is
    not left waiting for data (no QUIT into an open DATA), and the next run resumes."""
    import_subscribers(site, cli, subscribers_csv(10))
    victim = "user0004@example.net"
    original, original_sent = Store.mark_payload, Store.mark_sent
    emails: dict[int, str] = {}

    def failing(self: Store, delivery_id: int, now: datetime, worker: str | None = None) -> bool:
        if emails.get(delivery_id) == victim:
            raise RuntimeError("database is locked")
        return original(self, delivery_id, now, worker)

    def failing_sent(
        self: Store,
        delivery_id: int,
        now: datetime,
        worker: str | None = None,
        next_payload: int | None = None,
    ) -> bool:  # the payload mark of the next message rides on the sent mark of this one
        if next_payload is not None and emails.get(next_payload) == victim:
            raise RuntimeError("database is locked")
        return original_sent(self, delivery_id, now, worker, next_payload)

    store = Store.open(site.load().database_url)
    try:
        with running() as server:
            use_smtp(site.config, server.port, connections=1)
            loaded = site.load()
            issue = prepare_issue(loaded, store, "weekly", AT, now=datetime.now(UTC)).issue
            with store.engine.connect() as conn:
                emails.update(
                    conn.execute(
                        text("SELECT id, email FROM deliveries WHERE issue_id = :issue"),
                        {"issue": issue.id},
                    ).all()
                )
            threads_before = threading.active_count()
            monkeypatch.setattr(Store, "mark_payload", failing)
            monkeypatch.setattr(Store, "mark_sent", failing_sent)
            started = time.monotonic()
            first = send_digest(loaded, store, "weekly", AT)
            assert time.monotonic() - started < 5
            assert first.report is not None and first.report.error is not None
            assert "delivery stopped: RuntimeError: database is locked" in first.report.error
            assert victim not in server.per_recipient()
            assert threading.active_count() == threads_before  # the heartbeat thread ended
            monkeypatch.setattr(Store, "mark_payload", original)
            monkeypatch.setattr(Store, "mark_sent", original_sent)
            second = send_digest(loaded, store, "weekly", AT)
            assert second.report is not None and second.report.error is None
            assert second.report.counts["sent"] == 10
    finally:
        store.close()
    per = server.per_recipient()
    assert len(per) == 10 and set(per.values()) == {1}


def test_pipelining_is_used_when_offered(pipelining: bool) -> None:
    from digest.config import SmtpConfig
    from digest.transport import SmtpTransport

    with running(pipelining=pipelining) as server:
        config = SmtpConfig(host="127.0.0.1", port=server.port, security="none", timeout=5)
        connection = SmtpTransport(config).connect()
        try:
            assert connection.pipelining is pipelining
            connection.send(
                "a@example.org", "b@example.org", b"Subject: x\r\n\r\n.hi\r\n", lambda: None
            )
        finally:
            connection.close()
    (received,) = server.received
    assert received.rcpt_tos == ("b@example.org",)
    assert received.data.endswith(b".hi\r\n")  # dot-stuffed on the wire, unstuffed here


def test_421_after_the_data_defers_that_message_and_reconnects(
    site: Site, cli: CliRunner, pipelining: bool
) -> None:
    import_subscribers(site, cli, subscribers_csv(6))
    victim = "user0002@example.net"
    faults = Faults(data_fail_once={victim: "421 4.3.2 shutting down"})
    with running(faults, pipelining=pipelining) as server:
        use_smtp(site.config, server.port, connections=1)
        code, _out, err = send(site, cli, "--wait", "5")
        assert code == 0, err
    per = server.per_recipient()
    assert len(per) == 6 and set(per.values()) == {1}
    assert counts(site)["sent"] == 6


def test_consecutive_errors_pause_the_issue_and_a_later_send_resumes(
    site: Site, cli: CliRunner
) -> None:
    import_subscribers(site, cli, subscribers_csv(8))
    bad = {f"user{n:04d}@example.net": "550 5.1.1 unknown" for n in range(3)}
    with running(Faults(rcpt_reject=bad)) as server:
        use_smtp(site.config, server.port, connections=1, retry={"pause_after_errors": 3})
        code, _out, err = send(site, cli)
        assert code != 0
        assert err.strip().splitlines() == [
            "digest: error: digest weekly: issue paused: 3 consecutive delivery errors; "
            "fix it and run 'digest send weekly' again to resume"
        ]
        assert counts(site)["failed_perm"] == 3 and counts(site)["pending"] == 5
        status = cli("-c", site.config, "status")
        assert "[paused]" in status.out and "3 consecutive delivery errors" in status.out
        code, _out, err = send(site, cli)
        assert code == 0, err
    assert sorted(server.per_recipient()) == [f"user{n:04d}@example.net" for n in range(3, 8)]
    assert counts(site)["sent"] == 5
