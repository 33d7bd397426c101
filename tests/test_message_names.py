"""Names in headers: a long name is folded, an encoded-word name is text, a bad From says so."""

from __future__ import annotations

import email
import email.policy
import itertools
from email.message import EmailMessage

import pytest

from digest.errors import ConfigError, HeaderError
from digest.message import MessageTemplate, Recipient, parse_sender
from digest.models import RenderedIssue
from tests.conftest import AT, Site

ISSUE = RenderedIssue(subject="S", preheader="P", html="<p>__digest_greeting__</p>", text="t\n")


def built(name: str) -> tuple[bytes, EmailMessage]:
    template = MessageTemplate(ISSUE, sender="N <n@example.org>", list_id="l <l.example.org>")
    recipient = Recipient(
        email="r@example.org", name=name, greeting="Hallo",
        unsubscribe_url="https://example.org/u/t", preferences_url="https://example.org/p/t",
    )  # fmt: skip
    raw = template.build(recipient, message_id="<m@example.org>", date=AT)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return raw, message


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("N" * 3000, "N" * 100),  # cut to 100 characters, folded
        ("Ü" * 3000, "Ü" * 100),
        ("=?utf-8?q?J=C3=BCrgen?=", "=?utf-8?q?J=C3=BCrgen?="),  # text, not decoded by readers
        ("Becker, Anna", "Becker, Anna"),
    ],
)
def test_to_is_folded_and_a_name_is_never_read_as_something_else(name: str, shown: str) -> None:
    raw, message = built(name)
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    to = head[head.index("\r\nTo: ") + 2 :].split("\r\n")
    to = [to[0], *itertools.takewhile(lambda line: line.startswith(" "), to[1:])]
    assert max(len(line) for line in to) <= 78
    (address,) = message["To"].addresses
    assert address.addr_spec == "r@example.org"
    # Python's parser keeps the folding space between encoded-words; mail clients drop it
    assert address.display_name.replace(" ", "") == shown.replace(" ", "")
    assert not message["To"].defects and not message.defects


def test_delivery_from_with_an_encoded_word() -> None:
    assert parse_sender("=?utf-8?q?Pr=C3=A4ventionskette?= <n@example.org>") == (
        "Präventionskette",
        "n@example.org",
    )
    with pytest.raises(HeaderError) as caught:
        parse_sender("=?utf-8?q?broken <n@example.org>")
    assert str(caught.value) == (
        "delivery.from: the name '=?utf-8?q?broken' is an encoded-word that does not decode; "
        'write the name as plain text ("Präventionskette Ahlen <n@example.org>")'
    )


def test_a_bad_delivery_from_is_a_config_error_with_its_line(site: Site) -> None:
    site.replace_in_config(
        'from: "Präventionskette Ahlen <newsletter@example.org>"',
        'from: "=?x-unknown?q?abc?= <newsletter@example.org>"',
    )
    with pytest.raises(ConfigError) as caught:
        site.load()
    line = site.config_line_of("x-unknown")
    assert str(caught.value).startswith(
        f"{site.config}:{line}: delivery.from: the name '=?x-unknown?q?abc?=' is an encoded-word"
    )
