"""The loop closed through the CLI and a real SMTP server (aiosmtpd on 127.0.0.1):

- VERP round trip: each delivery leaves with its own return path; a DSN for one recipient,
  addressed to that return path as an MTA would, is imported; that subscriber is suppressed
  and the next issue has no delivery row for them;
- DKIM: every received message verifies with dkimpy against the TXT record ``digest check``
  prints, and the signature covers both List-Unsubscribe headers.
"""

from __future__ import annotations

import re
from pathlib import Path

import dkim
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from digest.bounces.verp import token_in
from digest.store import Store
from tests.conftest import AT_TEXT, CliRunner, Site
from tests.smtp_server import import_subscribers, running, use_smtp

pytestmark = pytest.mark.both_databases
RETURN_PATH = "bounces+{token}@example.org"
NEXT_WEEK = "2017-12-04T08:00:00+01:00"  # the 29 November item
CSV = (
    "email,name,digests\n"
    "anna@example.net,Anna,weekly\n"
    "bert@example.net,Bert,weekly\n"
    "carla@example.net,Carla,weekly\n"
)


def dsn_for(recipient: str, return_path: str, message_id: str) -> bytes:
    """A Postfix-style RFC 3464 report, sent to the return path of the failed message."""
    return f"""Return-Path: <>
Delivered-To: {return_path}
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: {return_path}
Subject: Undelivered Mail Returned to Sender
Date: Mon, 20 Nov 2017 08:05:00 +0100
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

<{recipient}>: host mx.example.net said: 550 5.1.1 User unknown

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {recipient}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: User unknown

--B
Content-Type: text/rfc822-headers

Message-ID: {message_id}
To: {recipient}

--B--
""".replace("\n", "\r\n").encode()


def configure(site: Site, port: int, **extra: object) -> None:
    def edit(data: dict[str, object]) -> None:
        data.update(extra)

    use_smtp(site.config, port, edit=edit)


def test_verp_round_trip_suppresses_the_bounced_subscriber(site: Site, cli: CliRunner) -> None:
    with running() as server:
        configure(site, server.port, bounces={"return_path": RETURN_PATH})
        import_subscribers(site, cli, CSV)
        assert cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT).code == 0
        received = {m.rcpt_tos[0]: m for m in server.received}
        assert set(received) == {"anna@example.net", "bert@example.net", "carla@example.net"}
        senders = {m.mail_from for m in received.values()}
        assert len(senders) == 3  # one return path per delivery
        assert all(re.fullmatch(r"bounces\+[0-9a-f]{32}@example\.org", s) for s in senders)

        bert = received["bert@example.net"]
        # The report names no Message-ID we know: only the VERP token can match it.
        report = site.write("bounce.eml", "")
        report.write_bytes(dsn_for("bert@example.net", bert.mail_from, "<unknown@mx>"))
        result = cli("-c", site.config, "bounces", "import", report)
        assert result.code == 0, result.err
        assert "1 suppressed" in result.out

        listed = cli("-c", site.config, "subscribers", "list", "--status", "bounced")
        assert listed.out.split("\t")[0] == "bert@example.net"
        exported = cli("-c", site.config, "subscribers", "export")
        assert "bert@example.net,Bert,weekly,bounced" in exported.out

        assert cli("-c", site.config, "send", "weekly", "--yes", "--at", NEXT_WEEK).code == 0
        later = [m.rcpt_tos[0] for m in server.received[3:]]
        assert sorted(later) == ["anna@example.net", "carla@example.net"]
    store = Store.open(site.load().database_url)
    try:
        issue = store.latest_issue("weekly")
        assert issue is not None
        assert sum(store.counts(issue.id).values()) == 2  # no row for bert at all
    finally:
        store.close()
    status = cli("-c", site.config, "status")
    assert "1 bounce" in status.out


def test_token_is_tied_to_the_delivery_not_the_subscriber(site: Site, cli: CliRunner) -> None:
    with running() as server:
        configure(site, server.port, bounces={"return_path": RETURN_PATH})
        import_subscribers(site, cli, CSV)
        cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT)
        cli("-c", site.config, "send", "weekly", "--yes", "--at", NEXT_WEEK)
        tokens = [token_in(RETURN_PATH, [m.mail_from]) for m in server.received]
    assert len(tokens) == 6 and len(set(tokens)) == 6
    store = Store.open(site.load().database_url)
    try:
        unsubscribe_tokens = {s.token for s in store.list_subscribers()}
    finally:
        store.close()
    assert not unsubscribe_tokens & set(tokens)


def write_rsa_key(path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


def test_received_messages_verify_against_the_record_digest_check_prints(
    site: Site, cli: CliRunner
) -> None:
    write_rsa_key(site.root / "dkim.pem")
    dkim_config = {"domain": "example.org", "selector": "digest1", "private_key_file": "dkim.pem"}
    with running() as server:

        def edit(data: dict[str, object]) -> None:
            delivery = data["delivery"]
            assert isinstance(delivery, dict)
            delivery["dkim"] = dkim_config

        use_smtp(site.config, server.port, edit=edit)
        import_subscribers(site, cli, CSV)
        check = cli("-c", site.config, "check", "--at", AT_TEXT)
        assert check.code == 0, check.err
        line = next(x for x in check.out.splitlines() if "._domainkey." in x)
        name, record = (
            line.split(" IN TXT ")[0].split()[-1],
            "".join(re.findall(r'"([^"]*)"', line)),
        )
        assert name == "digest1._domainkey.example.org."
        assert cli("-c", site.config, "send", "weekly", "--yes", "--at", AT_TEXT).code == 0
        messages = server.received

    def dns(qname: bytes, timeout: int = 5) -> bytes | None:
        return record.encode() if qname.decode() == name else None

    assert len(messages) == 3
    for message in messages:
        assert message.data.startswith(b"DKIM-Signature:")
        assert dkim.verify(message.data, dnsfunc=dns), message.rcpt_tos
        signed = message.data.split(b"\r\n\r\n", 1)[0].decode()
        h_tag = re.search(r"h=([^;]*);", signed.replace("\r\n", ""))
        assert h_tag is not None
        covered = {x.strip() for x in h_tag.group(1).split(":")}
        assert {"from", "to", "subject", "date", "message-id", "list-id"} <= covered
        assert {
            "list-unsubscribe",
            "list-unsubscribe-post",
            "mime-version",
            "content-type",
        } <= covered
    tampered = messages[0].data.replace(b"/unsubscribe/", b"/unsubscribe/x", 1)
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_dkim_settings_are_validated_by_check(site: Site, cli: CliRunner) -> None:
    data = yaml.safe_load(site.config.read_text(encoding="utf-8"))
    data["delivery"]["dkim"] = {
        "domain": "example.org",
        "selector": "s1",
        "private_key_file": "missing.pem",
    }
    site.config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = cli("-c", site.config, "check", "--at", AT_TEXT)
    assert result.code != 0
    assert "delivery.dkim.private_key_file" in result.err and "missing.pem" in result.err
    assert "Traceback" not in result.err
