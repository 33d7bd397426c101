"""Issue 10, observations 1-4 and 7, through the CLI: the next issue that build, check, test
copies and send agree on; ``send --now``; declined, refused and subscriber-less sends that
write nothing; the resume hint after a failed send of a past period; check errors that hold
a send (``--force`` overrides)."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest.store import Store
from tests.conftest import AT_TEXT, SAMPLE_WEEK_TITLES, CliRunner, Site
from tests.smtp_server import free_port, running, use_smtp

pytestmark = pytest.mark.both_databases

BERLIN = ZoneInfo("Europe/Berlin")


def issue_keys(config: Path) -> list[tuple[str, str]]:
    from digest.config import load_config

    store = Store.open(load_config(config, environ={}).database_url)
    try:
        return sorted((issue.period_key, issue.status) for issue in store.list_issues())
    finally:
        store.close()


def outbox(root: Path) -> list[Path]:
    folder = root / "outbox" / "new"
    return sorted(folder.iterdir()) if folder.exists() else []


def text_of(path: Path) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def write_item(folder: Path, slug: str, title: str, when: datetime, body: str = "Text.") -> None:
    (folder / f"{slug}.md").write_text(
        f"---\ntitle: {title}\ndate: {when.isoformat()}\nid: {slug}\n---\n{body}\n",
        encoding="utf-8",
    )


@pytest.fixture
def fresh(tmp_path: Path, cli: CliRunner, database: str | None) -> Path:
    """A ``digest init`` site (German) with two items dated today and one subscriber."""
    root = tmp_path / "press"
    assert cli("init", root).code == 0
    config = root / "config.yaml"
    if database is not None:
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("sqlite:///digest.db", database), encoding="utf-8")
    for path in (root / "content").iterdir():
        path.unlink()  # the scaffold's sample item: its date is not what this test is about
    now = datetime.now(BERLIN)
    write_item(root / "content", "rathaus", "Neues aus dem Rathaus", now - timedelta(minutes=5))
    write_item(root / "content", "markt", "Wochenmarkt am Samstag", now - timedelta(minutes=3))
    assert cli("-c", config, "subscribers", "add", "leser@example.org").code == 0
    return config


def test_fresh_site_preview_send_now_then_the_following_issue(
    fresh: Path, cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The "Must show" scenario: items dated today are the next issue (with its date);
    a declined send leaves status unchanged; ``send --now`` delivers them; then the preview
    shows the following issue, not an empty zero-length period."""
    root = fresh.parent
    out = tmp_path / "out"
    build = cli("-c", fresh, "build", "weekly", "--out", out)
    assert build.code == 0, build.err
    assert "weekly: 2 item(s) for (" in build.out
    assert "next issue: " in build.out  # due since ... / goes out <next Monday 07:00>
    text = (out / "email.txt").read_text(encoding="utf-8")
    assert "Neues aus dem Rathaus" in text and "Wochenmarkt am Samstag" in text
    assert "dated after the cutoff" not in build.err
    check = cli("-c", fresh, "check", "weekly")
    assert check.code == 0, check.err
    assert "weekly: 2 Beiträge in der nächsten Ausgabe" in check.out  # the site's language

    status_before = cli("-c", fresh, "status").out
    declined = cli("-c", fresh, "send", "weekly", "--now")  # not a terminal, no --yes
    assert declined.code == 1
    assert "pass --yes" in declined.err and "nothing recorded" in declined.out
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    answered_no = cli("-c", fresh, "send", "weekly", "--now")
    assert answered_no.code == 1 and "not sent; nothing recorded" in answered_no.out
    assert cli("-c", fresh, "status").out == status_before
    assert issue_keys(fresh) == []
    assert outbox(root) == []

    sent = cli("-c", fresh, "send", "weekly", "--now", "--yes")
    assert sent.code == 0, sent.err
    assert "2 item(s), 1 message(s) to send" in sent.out
    assert "1 sent, 0 deferred" in sent.out
    (mail,) = outbox(root)
    assert "Neues aus dem Rathaus" in text_of(mail) and "Wochenmarkt am Samstag" in text_of(mail)
    ((key, state),) = issue_keys(fresh)
    assert state == "done" and not key.endswith("T07:00+01:00")  # cut now, off the schedule

    after = cli("-c", fresh, "build", "weekly", "--out", out)
    assert after.code == 0, after.err
    first = after.out.splitlines()[0]
    assert first.startswith(f"weekly: 0 item(s) for ({key[:16]}"), first
    start, end = first.split(" for (", 1)[1].split("]", 1)[0].split(", ")
    assert datetime.fromisoformat(end) - datetime.fromisoformat(start) > timedelta(hours=1)
    assert "next issue: goes out " in after.out
    again = cli("-c", fresh, "send", "weekly", "--yes")
    assert again.code == 0
    assert "nothing due; the next issue (0 item(s) so far) goes out" in again.out
    nothing_new = cli("-c", fresh, "send", "weekly", "--now", "--yes")
    assert nothing_new.code == 0  # within the same second it is the same cut: already sent
    assert (
        "nothing new since the last issue" in nothing_new.out or "already sent" in nothing_new.out
    )
    assert len(issue_keys(fresh)) == 1 and len(outbox(root)) == 1

    # The next scheduled issue starts at the cut: an item written now goes out with it.
    write_item(root / "content", "neu", "Danach geschrieben", datetime.now(BERLIN))
    later = cli("-c", fresh, "build", "weekly", "--out", out)
    assert later.out.startswith(f"weekly: 1 item(s) for ({key[:16]}")


def test_test_copy_is_the_next_issue_not_the_last_due_period(fresh: Path, cli: CliRunner) -> None:
    with running() as server:
        use_smtp(fresh, server.port)
        copy = cli("-c", fresh, "send", "weekly", "--to", "redaktion@example.org")
        assert copy.code == 0, copy.err
        assert "(2 item(s))" in copy.out
    (received,) = server.received
    text = str(received.message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert "Neues aus dem Rathaus" in text
    assert issue_keys(fresh) == []


def test_a_due_period_is_shown_as_due(site: Site, cli: CliRunner, tmp_path: Path) -> None:
    result = cli("-c", site.config, "build", "weekly", "--out", tmp_path, "--at", AT_TEXT)
    assert "next issue: due since 2017-11-20T07:00+01:00" in result.out


def test_without_subscribers_nothing_is_sent_or_recorded(site: Site, cli: CliRunner) -> None:
    status_before = cli("-c", site.config, "status").out
    result = cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT)
    assert result.code == 1
    assert "no active subscribers: nothing sent, nothing recorded" in result.err
    assert len(result.err.splitlines()) == 1
    assert issue_keys(site.config) == []
    assert cli("-c", site.config, "status").out == status_before
    # The first subscriber gets those items.
    assert cli("-c", site.config, "subscribers", "add", "erste@example.org").code == 0
    sent = cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT)
    assert sent.code == 0, sent.err
    (mail,) = outbox(site.root)
    assert all(title in text_of(mail) for title in SAMPLE_WEEK_TITLES)


def test_after_a_failed_send_of_a_past_period_the_hint_resumes_it(
    site: Site, cli: CliRunner
) -> None:
    assert cli("-c", site.config, "subscribers", "add", "a@example.org").code == 0
    use_smtp(site.config, free_port())  # nothing listens there: the SMTP server is down
    failed = cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT)
    assert failed.code == 1
    hint = failed.err.strip().splitlines()[-1]
    assert "run 'digest send weekly" in hint, hint
    command = hint.split("run '", 1)[1].split("'", 1)[0].split()[1:]
    with running() as server:
        use_smtp(site.config, server.port)
        resumed = cli("-c", site.config, *command, "--yes", "--wait", "5")
        assert resumed.code == 0, resumed.err
        assert "already sent" not in resumed.out
        assert "message(s) to resume" in resumed.out
        server.wait_for(1)
    assert [r.rcpt_tos for r in server.received] == [("a@example.org",)]
    assert issue_keys(site.config) == [("2017-11-20T07:00+01:00", "done")]


def add_broken_feed(site: Site, *, broken: bool = True) -> None:
    """A JSON Feed file whose one entry shows a relative image (no base to resolve it against)."""
    link = '<img src="plakat.png" alt="Plakat">' if broken else "hier"
    entry = {
        "id": "anmeldung",
        "title": "Anmeldung offen",
        "date_published": "2017-11-19T10:00:00+01:00",
        "content_html": f"<p>Die Anmeldung läuft {link} bis Freitag.</p>",
    }
    feed = {"version": "https://jsonfeed.org/version/1.1", "title": "Presse", "items": [entry]}
    site.write("presse.json", json.dumps(feed))
    if broken:
        site.replace_in_config(
            "sources:\n", "sources:\n  - {kind: feed, url: 'file:presse.json', name: presse}\n"
        )


def test_check_errors_name_the_item_and_hold_the_send(site: Site, cli: CliRunner) -> None:
    assert cli("-c", site.config, "subscribers", "add", "a@example.org").code == 0
    add_broken_feed(site)
    check = cli("-c", site.config, "check", "weekly", "--at", AT_TEXT)
    assert check.code == 1
    (finding,) = [line for line in check.err_lines if "<img src=''> ist keine absolute" in line]
    assert "item 'Anmeldung offen' (presse:anmeldung)" in finding

    held = cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT)
    assert held.code == 1
    assert "held: 1 error finding(s); nothing sent, nothing recorded" in held.err
    assert issue_keys(site.config) == [] and outbox(site.root) == []
    forced = cli("-c", site.config, "send", "weekly", "--yes", "--force", "--at", AT_TEXT)
    assert forced.code == 0, forced.err
    assert len(outbox(site.root)) == 1


def test_now_and_at_exclude_each_other(
    site: Site, cli: CliRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("-c", site.config, "send", "weekly", "--now", "--at", AT_TEXT)
    assert exit_info.value.code == 2
    assert "argument --at: not allowed with argument --now" in capsys.readouterr().err


def test_a_scheduled_send_held_by_check_errors_is_mailed_to_staff_once(site: Site) -> None:
    """Observation 7, scheduled: the due issue with an error finding is not created; the
    staff address hears of it once (through the configured transport); fixed, it goes out."""
    from digest.config import load_config
    from digest.runner import Runner
    from digest.transport import MemoryTransport

    add_broken_feed(site)
    site.replace_in_config(
        "  staff_user: staff\n", "  staff_user: staff\n  staff_email: redaktion@example.org\n"
    )
    loaded = load_config(site.config, environ={})
    at = datetime.fromisoformat(AT_TEXT)
    store = Store.open(loaded.database_url)
    try:
        store.add_subscriber("leser@example.org", "", ["weekly"], at)
        transport = MemoryTransport()
        runner = Runner(
            loaded, store, clock=lambda: at, transport=transport, started_at=at - timedelta(hours=2)
        )
        runner.tick()
        runner.tick()
        assert store.list_issues("weekly") == []
        (notice,) = transport.sent
        _, to, data = notice
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert to == "redaktion@example.org"
        assert str(message["Subject"]) == "weekly: Ausgabe 2017-11-20T07:00+01:00 zurückgehalten"
        body = str(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
        assert "item 'Anmeldung offen' (presse:anmeldung)" in body and "--force" in body

        add_broken_feed(site, broken=False)
        runner.tick()
        (issue,) = store.list_issues("weekly")
        assert issue.status == "done" and issue.item_count == 4
        assert [to for _, to, _ in transport.sent] == ["redaktion@example.org", "leser@example.org"]
    finally:
        store.close()


def test_a_scheduled_send_without_subscribers_records_nothing(site: Site) -> None:
    """Observation 3, scheduled: the due period waits for the first subscriber."""
    from digest.config import load_config
    from digest.runner import Runner
    from digest.transport import MemoryTransport

    loaded = load_config(site.config, environ={})
    at = datetime.fromisoformat(AT_TEXT)
    store = Store.open(loaded.database_url)
    try:
        transport = MemoryTransport()
        runner = Runner(
            loaded, store, clock=lambda: at, transport=transport, started_at=at - timedelta(hours=2)
        )
        runner.tick()
        assert store.list_issues() == [] and transport.sent == []
        store.add_subscriber("erste@example.org", "", ["weekly"], at)
        runner.tick()
        (issue,) = store.list_issues("weekly")
        assert issue.status == "done" and issue.item_count == 3
        assert [to for _, to, _ in transport.sent] == ["erste@example.org"]
    finally:
        store.close()
