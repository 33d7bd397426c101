"""A server that refuses the sender (5xx at MAIL FROM) pauses the issue and charges nobody:
every recipient is still due, and a send after the fix delivers to each of them once."""

from __future__ import annotations

from tests.conftest import AT_TEXT, CliRunner, Site
from tests.smtp_server import Faults, import_subscribers, running, subscribers_csv, use_smtp
from tests.test_deliver_smtp import counts


def test_550_at_mail_from_pauses_the_issue_and_fails_nobody(site: Site, cli: CliRunner) -> None:
    import_subscribers(site, cli, subscribers_csv(11))
    faults = Faults(mail_reject="550 5.7.1 sender address rejected: not owned by user")
    with running(faults) as server:
        use_smtp(site.config, server.port, connections=2)
        result = cli("-c", site.config, "send", "weekly", "--at", AT_TEXT, "--yes")
        assert result.code != 0
        (line,) = result.err.strip().splitlines()
        assert line.startswith(
            "digest: error: digest weekly: issue paused: the server refused the sender "
            "<newsletter@example.org>: 550 5.7.1"
        )
        assert "550 5.7.1 sender address rejected" in line and "(at MAIL FROM)" in line
        after = counts(site)
        assert after.get("failed_perm", 0) == 0 and after.get("failed_temp", 0) == 0
        assert after["pending"] == 11
        assert server.received == []

        faults.mail_reject = None  # the sender is fixed
        result = cli("-c", site.config, "send", "weekly", "--at", AT_TEXT, "--yes")
        assert result.code == 0, result.err
    assert counts(site)["sent"] == 11
    assert sorted(server.per_recipient().values()) == [1] * 11
