"""The bounce intakes from the command line: ``digest bounces import`` of an mbox and a
maildir, ``digest bounces fetch`` and ``digest run`` polling a real IMAP server (dovecot)."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from digest.config import load_config
from digest.store import Store
from tests.conftest import CliRunner, Site
from tests.imap_server import ImapServer, running_dovecot
from tests.smtp_server import import_subscribers
from tests.test_run_e2e import Run, wait_until

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bounces"
CSV = (
    "email,name,digests\n"
    "anna@example.net,Anna,weekly\n"  # postfix-hard.eml: 5.1.1
    "karl@example.com,Karl,weekly\n"  # arf-complaint.eml
    "emil@example.edu,Emil,weekly\n"  # sendmail-soft.eml: 4.2.2
    "bert@example.net,Bert,weekly\n"  # postfix-delayed.eml
)


def status(site: Site) -> dict[str, str]:
    store = Store.open(load_config(site.config, environ={}).database_url)
    try:
        return {s.email: s.status for s in store.list_subscribers()}
    finally:
        store.close()


def test_import_an_mbox_and_a_maildir(site: Site, cli: CliRunner, tmp_path: Path) -> None:
    import_subscribers(site, cli, CSV)
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    for name in ("postfix-hard.eml", "arf-complaint.eml"):
        box.add((FIXTURES / name).read_bytes())
    box.close()
    maildir = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for name in ("sendmail-soft.eml", "postfix-delayed.eml", "autoreply.eml"):
        maildir.add((FIXTURES / name).read_bytes())
    result = cli(
        "-c", site.config, "bounces", "import", tmp_path / "bounces.mbox", tmp_path / "Maildir"
    )
    assert result.code == 0, result.err
    assert result.out.strip() == (
        "5 reports, 4 events: 4 recorded, 0 seen before, 0 unmatched; 1 suppressed, 1 complaints"
    )
    assert status(site) == {
        "anna@example.net": "bounced",
        "karl@example.com": "complained",
        "emil@example.edu": "active",  # one soft bounce scores 0.5
        "bert@example.net": "active",  # delayed: recorded, not counted
    }
    again = cli("-c", site.config, "bounces", "import", tmp_path / "bounces.mbox")
    assert "0 recorded, 2 seen before" in again.out


def test_import_of_a_missing_path_is_one_line(site: Site, cli: CliRunner) -> None:
    result = cli("-c", site.config, "bounces", "import", site.root / "nope")
    assert result.code != 0
    assert result.err_lines == [
        f"digest: error: {site.root / 'nope'}: no such file, maildir or mbox"
    ]


@pytest.fixture(scope="module")
def imap() -> Iterator[ImapServer]:
    with running_dovecot() as server:
        yield server


def use_imap(site: Site, imap: ImapServer, folder: str) -> None:
    data = yaml.safe_load(site.config.read_text(encoding="utf-8"))
    data["bounces"] = {
        "imap": {
            "host": imap.host,
            "port": imap.port,
            "security": "none",
            "username": imap.username,
            "password": "${BOUNCE_PASSWORD}",
            "folder": folder,
            "processed_folder": f"{folder}-done",
        }
    }
    site.config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def test_bounces_fetch_polls_imap_once(
    site: Site, cli: CliRunner, imap: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOUNCE_PASSWORD", imap.password)
    import_subscribers(site, cli, CSV)
    use_imap(site, imap, "fetch")
    imap.append("fetch", (FIXTURES / "postfix-hard.eml").read_bytes())
    result = cli("-c", site.config, "bounces", "fetch")
    assert result.code == 0, result.err
    assert "1 reports, 1 events: 1 recorded" in result.out
    assert status(site)["anna@example.net"] == "bounced"
    assert imap.count("fetch") == 0 and imap.count("fetch-done") == 1


def test_bounces_fetch_without_imap_config_is_one_line(site: Site, cli: CliRunner) -> None:
    result = cli("-c", site.config, "bounces", "fetch")
    assert result.code != 0 and len(result.err_lines) == 1
    assert "bounces.imap is not configured" in result.err


def test_digest_run_polls_the_bounce_mailbox(
    site: Site, cli: CliRunner, imap: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOUNCE_PASSWORD", imap.password)
    import_subscribers(site, cli, CSV)
    use_imap(site, imap, "run")
    imap.append("run", (FIXTURES / "arf-complaint.eml").read_bytes())
    run = Run(site, "run")
    try:
        wait_until(lambda: status(site)["karl@example.com"] == "complained", "the poll", 30, run)
        wait_until(lambda: imap.count("run-done") == 1, "the move", 10, run)
        assert run.stop() == 0
    finally:
        run.kill()
    assert imap.count("run") == 0
    assert imap.password not in run.text()


@pytest.mark.parametrize(
    ("bounces", "message"),
    [
        (
            {"return_path": "bounces@example.org"},
            'must be an address with one {token} before the "@"',
        ),
        (
            {"max_bounce_rate": 2},
            "bounces.max_bounce_rate: Input should be less than or equal to 1",
        ),
        (
            {"webhooks": {"postmark": {"username": "u"}}},
            "set username and password (basic auth) or secret",
        ),
        ({"imap": {"host": "h"}}, "bounces.imap.username: required key is missing"),
    ],
)
def test_bad_bounce_settings_are_one_line(
    site: Site, cli: CliRunner, bounces: dict[str, object], message: str
) -> None:
    data = yaml.safe_load(site.config.read_text(encoding="utf-8"))
    data["bounces"] = bounces
    site.config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = cli("-c", site.config, "bounces", "fetch")
    assert result.code != 0 and len(result.err_lines) == 1, result.err
    assert message in result.err and str(site.config) in result.err
