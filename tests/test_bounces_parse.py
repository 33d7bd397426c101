"""Bounce and complaint messages as the common MTAs and providers write them (fixtures written
from their documented formats) -> events: who, how (hard/soft/delayed/complaint), why."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from digest.bounces.events import COMPLAINT, DELAYED, HARD, SOFT
from digest.bounces.parse import parse_report
from digest.bounces.verp import new_token, return_path, token_in

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bounces"

# file -> (kind, address, status, our Message-ID)
EXPECTED = {
    "postfix-hard.eml": (HARD, "anna@example.net", "5.1.1", "<weekly.postfix1@example.org>"),
    "postfix-delayed.eml": (DELAYED, "bert@example.net", "4.4.1", "<weekly.delay1@example.org>"),
    "exim-hard.eml": (HARD, "carla@example.com", "5.1.1", "<weekly.exim1@example.org>"),
    "qmail-hard.eml": (HARD, "dora@example.com", "5.1.1", "<weekly.qmail1@example.org>"),
    "sendmail-soft.eml": (SOFT, "emil@example.edu", "4.2.2", "<weekly.sendmail1@example.org>"),
    "exchange-hard.eml": (HARD, "frank@corp.example.com", "5.1.10", "<weekly.exchange1@example.org>"),
    "gmail-hard.eml": (HARD, "greta@gmail.com", "5.1.1", "<weekly.gmail1@example.org>"),
    "gmail-soft.eml": (SOFT, "hans@gmail.com", "4.2.2", "<weekly.gmailsoft1@example.org>"),
    "yahoo-hard.eml": (HARD, "ida@yahoo.com", "5.0.0", "<weekly.yahoo1@example.org>"),
    "outlook-hard.eml": (HARD, "jan@outlook.com", "5.5.0", "<weekly.outlook1@example.org>"),
    "arf-complaint.eml": (COMPLAINT, "karl@example.com", "", "<weekly.arf1@example.org>"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_format_reports_who_how_and_which_message(name: str) -> None:
    events = parse_report((FIXTURES / name).read_bytes())
    assert len(events) == 1
    event = events[0]
    kind, address, status, message_id = EXPECTED[name]
    assert (event.kind, event.address, event.status, event.message_id) == (
        kind,
        address,
        status,
        message_id,
    )
    if kind != COMPLAINT:
        assert event.diagnostic  # the remote server's words are kept for the log


# The fixtures' VERP tokens: md5 of a label, so they look like ours (32 hex digits).
TOKEN_LABELS = {
    "postfix-hard.eml": "postfix", "postfix-delayed.eml": "delay", "exim-hard.eml": "exim",
    "qmail-hard.eml": "qmail", "sendmail-soft.eml": "sendmail", "exchange-hard.eml": "exchange",
    "gmail-hard.eml": "gmail", "gmail-soft.eml": "gmailsoft", "yahoo-hard.eml": "yahoo",
    "outlook-hard.eml": "outlook", "arf-complaint.eml": "arf", "arf-redacted.eml": "arf2",
}  # fmt: skip


def fixture_token(name: str) -> str:
    return hashlib.md5(TOKEN_LABELS[name].encode()).hexdigest()


@pytest.mark.parametrize("name", sorted(TOKEN_LABELS))
def test_the_verp_token_the_report_came_back_to_is_read(name: str) -> None:
    event = parse_report((FIXTURES / name).read_bytes())[0]
    assert token_in("bounces+{token}@example.org", event.sent_to) == fixture_token(name)


def test_a_delayed_dsn_is_recorded_but_does_not_count() -> None:
    (event,) = parse_report((FIXTURES / "postfix-delayed.eml").read_bytes())
    assert event.kind == DELAYED and not event.counts
    (hard,) = parse_report((FIXTURES / "postfix-hard.eml").read_bytes())
    assert hard.counts


def test_a_redacted_complaint_still_names_our_message() -> None:
    (event,) = parse_report((FIXTURES / "arf-redacted.eml").read_bytes())
    assert event.kind == COMPLAINT and event.address == ""
    assert event.message_id == "<weekly.arf2@example.org>"


def test_an_auto_reply_is_no_bounce() -> None:
    assert parse_report((FIXTURES / "autoreply.eml").read_bytes()) == []


def test_not_a_message_at_all_yields_nothing() -> None:
    assert parse_report(b"\x00\xff garbage without headers") == []


def test_verp_token_round_trip_is_case_blind() -> None:
    pattern = "bounces+{token}@example.org"
    token = new_token()
    address = return_path(pattern, token)
    assert token_in(pattern, ["someone@else.org", address.upper()]) == token
    assert token_in(pattern, ["bounces+short@example.org"]) is None
    assert token != new_token() and len(token) == 32
