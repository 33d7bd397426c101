"""Reports from .eml files, maildirs and mbox files, and from a real IMAP server (dovecot,
started by the test): processed messages are moved, never deleted unless configured."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.bounces.config import ImapConfig
from digest.bounces.events import BounceError
from digest.bounces.imap import poll
from digest.bounces.intake import Report, read_paths
from digest.bounces.parse import parse_report
from tests.imap_server import ImapServer, running_dovecot

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bounces"
NAMES = ["postfix-hard.eml", "exim-hard.eml", "arf-complaint.eml"]


def addresses(reports: list[Report]) -> list[str]:
    return [event.address for report in reports for event in parse_report(report.data)]


EXPECTED = ["anna@example.net", "carla@example.com", "karl@example.com"]


def test_eml_files_and_a_folder_of_them(tmp_path: Path) -> None:
    files = [FIXTURES / name for name in NAMES]
    assert addresses(list(read_paths(files))) == EXPECTED
    folder = tmp_path / "reports"
    folder.mkdir()
    for name in NAMES:
        (folder / name).write_bytes((FIXTURES / name).read_bytes())
    assert sorted(addresses(list(read_paths([folder])))) == sorted(EXPECTED)


def test_a_maildir(tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for name in NAMES:
        box.add((FIXTURES / name).read_bytes())
    reports = list(read_paths([tmp_path / "Maildir"]))
    assert sorted(addresses(reports)) == sorted(EXPECTED)
    assert all(report.origin.startswith(str(tmp_path / "Maildir")) for report in reports)


def test_an_mbox(tmp_path: Path) -> None:
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    for name in NAMES:
        box.add((FIXTURES / name).read_bytes())
    box.close()
    reports = list(read_paths([tmp_path / "bounces.mbox"]))
    assert addresses(reports) == EXPECTED
    assert [r.origin.rsplit("#", 1)[1] for r in reports] == ["1", "2", "3"]


def test_a_missing_path_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(BounceError, match=r"nothing-here: no such file, maildir or mbox"):
        list(read_paths([tmp_path / "nothing-here"]))


@pytest.fixture(scope="module")
def imap() -> Iterator[ImapServer]:
    with running_dovecot() as server:
        yield server


def config_for(server: ImapServer, **overrides: object) -> ImapConfig:
    values: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "security": "none",
        "username": server.username,
        "password": server.password,
        "folder": "INBOX",
    }
    values.update(overrides)
    return ImapConfig.model_validate(values)


def test_imap_poll_reads_everything_once_and_moves_it(imap: ImapServer) -> None:
    for name in NAMES:
        imap.append("INBOX", (FIXTURES / name).read_bytes())
    seen: list[Report] = []
    config = config_for(imap, processed_folder="Processed")
    assert poll(config, seen.append) == 3
    assert sorted(addresses(seen)) == sorted(EXPECTED)
    assert imap.count("INBOX") == 0 and imap.count("Processed") == 3
    assert poll(config, seen.append) == 0  # nothing twice


def test_imap_a_failed_report_stays_in_the_folder(imap: ImapServer) -> None:
    imap.append("Bounces", (FIXTURES / "qmail-hard.eml").read_bytes())

    def fail(report: Report) -> None:
        raise BounceError("database is locked")

    config = config_for(imap, folder="Bounces", processed_folder="Done")
    with pytest.raises(BounceError, match="database is locked"):
        poll(config, fail)
    assert imap.count("Bounces") == 1
    assert poll(config, lambda report: None) == 1
    assert imap.count("Bounces") == 0 and imap.count("Done") == 1


def test_imap_deletes_only_when_configured(imap: ImapServer) -> None:
    imap.append("Trashy", (FIXTURES / "gmail-hard.eml").read_bytes())
    assert poll(config_for(imap, folder="Trashy", delete_processed=True), lambda r: None) == 1
    assert imap.count("Trashy") == 0
    assert imap.count("digest-processed") in (-1, 0)  # nothing was moved anywhere


def test_imap_wrong_password_is_one_line(imap: ImapServer) -> None:
    with pytest.raises(BounceError) as caught:
        poll(config_for(imap, password="wrong"), lambda r: None)
    message = str(caught.value)
    assert "bounces.imap" in message and "login refused" in message and "\n" not in message
    assert "wrong" not in message


def test_imap_unreachable_server_is_one_line() -> None:
    config = ImapConfig.model_validate(
        {"host": "127.0.0.1", "port": 1, "security": "none", "username": "u", "password": "p"}
    )
    with pytest.raises(BounceError, match="cannot connect"):
        poll(config, lambda r: None)
