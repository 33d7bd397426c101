"""``digest send`` and ``digest status`` as a user runs them (maildir and SMTP)."""

from __future__ import annotations

import email
import email.policy
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from digest.store import SCHEMA_VERSION, Store, items
from tests.conftest import AT_TEXT, SAMPLE_WEEK_TITLES, CliRunner, Site
from tests.smtp_server import running, use_smtp

pytestmark = pytest.mark.both_databases

NOV_27 = "2017-11-27T08:00:00+01:00"


def setup(site: Site, cli: CliRunner) -> None:
    path = site.write(
        "subs.csv", "email,name,digests\na@example.org,Anna,weekly\nb@example.org,,weekly|monthly\n"
    )
    assert cli("-c", site.config, "subscribers", "import", path).code == 0


def outbox(site: Site) -> list[Path]:
    folder = site.root / "outbox" / "new"
    return sorted(folder.iterdir()) if folder.exists() else []


def issues(site: Site) -> int:
    store = Store.open(site.load().database_url)
    try:
        return len(store.list_issues())
    finally:
        store.close()


def test_send_to_maildir_then_again_sends_nothing(site: Site, cli: CliRunner) -> None:
    setup(site, cli)
    first = cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT)
    assert first.code == 0, first.err
    assert "3 item(s), 2 message(s) to send" in first.out
    assert "2 sent, 0 deferred, 0 failed, 0 in doubt, 0 skipped, 0 pending" in first.out
    files = outbox(site)
    assert len(files) == 2
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert all(title in text for title in SAMPLE_WEEK_TITLES)
    second = cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT)
    assert second.code == 0
    assert "already sent (2 sent); nothing to do" in second.out
    assert len(outbox(site)) == 2


def test_nothing_new_is_a_clear_message_and_exit_0(site: Site, cli: CliRunner) -> None:
    setup(site, cli)
    assert cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT).code == 0
    result = cli("-c", site.config, "send", "weekly", "--yes", "--at", NOV_27)
    assert result.code == 0
    assert "nothing new for the period ending 2017-11-27" in result.out
    assert len(outbox(site)) == 2


def test_a_broken_source_is_an_error_not_a_quiet_week(site: Site, cli: CliRunner) -> None:
    setup(site, cli)
    shutil.rmtree(site.content)
    result = cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT)
    assert result.code != 0
    assert len(result.err_lines) == 1 and "content folder not found" in result.err
    assert issues(site) == 0 and outbox(site) == []


def test_dry_run_and_test_copy_mark_nothing(site: Site, cli: CliRunner) -> None:
    setup(site, cli)
    dry = cli("-c", site.config, "send", "weekly", "--dry-run", "--at", AT_TEXT)
    assert dry.code == 0, dry.err
    assert "dry run: weekly: 3 item(s), 2 recipient(s)" in dry.out
    with running() as server:
        use_smtp(site.config, server.port)
        copy = cli(
            "-c", site.config, "send", "weekly", "--to", "Staff@Example.org", "--at", AT_TEXT
        )
        assert copy.code == 0, copy.err
    assert [r.rcpt_tos for r in server.received] == [("staff@example.org",)]
    assert issues(site) == 0
    assert outbox(site) == []


def test_without_yes_off_a_terminal_nothing_is_sent(site: Site, cli: CliRunner) -> None:
    setup(site, cli)
    result = cli("-c", site.config, "send", "weekly", "--at", AT_TEXT)
    assert result.code != 0
    assert "pass --yes" in result.err
    assert outbox(site) == []


def test_status_shows_the_last_issue_and_its_deliveries(site: Site, cli: CliRunner) -> None:
    setup(site, cli)
    cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT)
    status = cli("-c", site.config, "status")
    assert status.code == 0
    assert "last issue: 2017-11-20T07:00+01:00 [done] 3 item(s); 2 sent" in status.out
    assert "subscribers: 2 active" in status.out


def test_send_at_a_past_moment_stamps_what_happened_with_the_real_clock(
    site: Site, cli: CliRunner
) -> None:
    """``--at`` chooses the period (2017); fetch, first-seen and creation times are today's."""
    setup(site, cli)
    tz = site.load().config.site.tz
    before = datetime.now(UTC)
    assert cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT).code == 0
    after = datetime.now(UTC)
    status = cli("-c", site.config, "status")
    assert status.code == 0, status.err
    assert "last issue: 2017-11-20T07:00+01:00 [done] 3 item(s); 2 sent" in status.out
    (source_line,) = [line for line in status.out.splitlines() if line.startswith("source ")]
    success = re.search(r"last success (\d{4}-\d{2}-\d{2} \d{2}:\d{2})", source_line)
    assert success is not None, source_line
    shown = datetime.strptime(success.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=tz)
    assert before - timedelta(minutes=1) <= shown <= after, source_line
    store = Store.open(site.load().database_url)
    try:
        (issue,) = store.list_issues()
        with store.engine.connect() as conn:
            first_seen = list(conn.execute(select(items.c.first_seen_at)).scalars())
    finally:
        store.close()
    assert issue.period_end == datetime.fromisoformat("2017-11-20T07:00:00+01:00")
    assert before <= issue.created_at <= after
    assert first_seen and all(
        before <= moment.replace(tzinfo=moment.tzinfo or UTC) <= after for moment in first_seen
    ), first_seen


def test_a_newer_schema_on_disk_is_one_clear_line(site: Site, cli: CliRunner) -> None:
    setup(site, cli)
    url = site.load().database_url
    store = Store.open(url)
    with store.begin() as conn:
        conn.execute(
            text("UPDATE alembic_version SET version_num = :v"), {"v": f"{SCHEMA_VERSION + 7:04d}"}
        )
    store.close()
    for command in (("status",), ("send", "weekly", "--yes", "--at", AT_TEXT)):
        result = cli("-c", site.config, *command)
        assert result.code == 1
        assert len(result.err_lines) == 1
        line = result.err_lines[0]
        assert line.startswith(f"digest: error: database {url.split('://')[0]}://")
        assert f"version {SCHEMA_VERSION + 7} is newer" in line and "Traceback" not in line


def test_a_database_error_in_the_middle_of_a_command_is_one_line(
    site: Site, cli: CliRunner
) -> None:
    setup(site, cli)
    store = Store.open(site.load().database_url)
    with store.begin() as conn:  # the database breaks after digest opened it
        conn.execute(text("DROP TABLE bounce_log"))  # it refers to deliveries
        conn.execute(text("DROP TABLE deliveries"))
    store.close()
    result = cli("-c", site.config, "status")
    assert result.code == 1
    assert len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith("digest: error: database: ")
    assert "deliveries" in result.err and "Traceback" not in result.err


@pytest.mark.sqlite_only  # needs no server: nothing listens on port 9
def test_a_database_server_that_does_not_answer_is_one_line(site: Site, cli: CliRunner) -> None:
    pytest.importorskip("psycopg")
    site.replace_in_config(
        "database: sqlite:///digest.db",
        "database: postgresql+psycopg://digest:hunter2@127.0.0.1:9/digest",
    )
    result = cli("-c", site.config, "status")
    assert result.code == 1
    assert len(result.err_lines) == 1, result.err
    line = result.err_lines[0]
    assert line.startswith("digest: error: database postgresql+psycopg://***@127.0.0.1:9/digest: ")
    assert "hunter2" not in result.err
