"""The MIME message: the built sample .eml, and the spliced fast path against ``email``'s own.

:class:`digest.message.MessageTemplate` builds the shared part of a message once per issue and
splices per-recipient values into it. Whatever it writes must parse back to the same headers
and parts that the (slow, ~5 ms) ``email.message.EmailMessage`` pipeline produces.
"""

from __future__ import annotations

import binascii
import html
import re
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.config import LoadedConfig, load_config
from digest.errors import HeaderError
from digest.headers import single_line
from digest.i18n import greeting, labels_for
from digest.lint import REQUIRED_HEADERS
from digest.message import (
    MessageTemplate,
    Recipient,
    encode_part,
    list_id,
    make_message_id,
    message_template,
)
from digest.models import PLACEHOLDERS, RenderedIssue
from tests.conftest import AT, REPO, render_period

SENDER = "Präventionskette Ahlen <newsletter@example.org>"
LIST_ID = "Wochenüberblick <weekly.www.example.org>"
MESSAGE_ID = "<weekly.2017-11-20-0700.0123456789abcdef@example.org>"
DATE = datetime(2017, 11, 20, 8, 0, tzinfo=UTC)


def parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def defects(message: EmailMessage) -> list[str]:
    found = [type(defect).__name__ for part in message.walk() for defect in part.defects]
    for name, value in message.items():
        found += [f"{name}: {type(defect).__name__}" for defect in getattr(value, "defects", ())]
    return found


def parts(message: EmailMessage) -> list[EmailMessage]:
    result = [part for part in message.iter_parts() if isinstance(part, EmailMessage)]
    assert len(result) == len(list(message.iter_parts()))
    return result


# --- the built sample message ----------------------------------------------------------------


@pytest.fixture
def eml(built: Path) -> bytes:
    return (built / "email.eml").read_bytes()


def test_sample_eml_parses_without_defects(eml: bytes) -> None:
    message = parse(eml)
    assert defects(message) == []
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in parts(message)] == ["text/plain", "text/html"]
    assert [part.get_content_charset() for part in parts(message)] == ["utf-8", "utf-8"]
    assert message["MIME-Version"] == "1.0"


def test_sample_eml_has_every_header_of_the_contract(eml: bytes) -> None:
    message = parse(eml)
    for name in REQUIRED_HEADERS:
        assert message[name] is not None, name
    for name in ("Date", "Message-ID", "From", "To", "Subject"):
        assert len(message.get_all(name) or []) == 1, f"{name} must occur once"
    assert message["Date"].datetime == AT
    assert re.fullmatch(
        r"<weekly\.2017-11-20-0700\.[0-9a-f]{24}@example\.org>", message["Message-ID"]
    )
    assert str(message["From"]) == SENDER
    assert str(message["To"]) == "Erika Mustermann <subscriber@example.org>"
    assert str(message["Subject"]) == "Präventionskette Ahlen: 3 neue Beiträge"
    assert str(message["List-Unsubscribe"]) == (
        "<https://www.example.org/praeventionskette/unsubscribe/SAMPLE-TOKEN>"
    )
    assert str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert str(message["List-Id"]) == LIST_ID


def test_sample_eml_is_7bit_crlf_and_lines_fit_smtp(eml: bytes) -> None:
    eml.decode("ascii")  # headers RFC 2047-encoded, parts quoted-printable
    assert b"\n" not in eml.replace(b"\r\n", b"") and b"\r" not in eml.replace(b"\r\n", b"")
    assert max(len(line) for line in eml.split(b"\r\n")) <= 998
    body = eml.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76  # quoted-printable limit


def test_sample_eml_parts_are_the_written_files(eml: bytes, built: Path) -> None:
    text, html_part = (str(part.get_content()) for part in parts(parse(eml)))
    assert text.replace("\r\n", "\n") == (built / "email.txt").read_text(encoding="utf-8")
    assert html_part.replace("\r\n", "\n") == (built / "email.html").read_text(encoding="utf-8")
    assert len(html_part.encode("utf-8")) < 100 * 1024
    unsubscribe = "https://www.example.org/praeventionskette/unsubscribe/SAMPLE-TOKEN"
    assert unsubscribe in text and f'href="{unsubscribe}"' in html_part


# --- the spliced message equals the one email.message builds ------------------------------


@pytest.fixture(scope="module")
def sample_loaded() -> LoadedConfig:
    return load_config(REPO / "config.example.yaml", environ={})


@pytest.fixture(scope="module")
def sample_issue(sample_loaded: LoadedConfig) -> RenderedIssue:
    """The sample week rendered once: real HTML (~30 KB) with the placeholders in it."""
    rendered, items = render_period(sample_loaded)
    assert len(items) == 3
    return rendered


def make_recipient(name: str, email: str = "reader@example.org", token: str = "T0k3n") -> Recipient:
    base = "https://www.example.org/praeventionskette"
    return Recipient(
        email=email,
        name=name,
        unsubscribe_url=f"{base}/unsubscribe/{token}?list=weekly&via=mail",
        preferences_url=f"{base}/preferences/{token}",
        greeting=greeting(labels_for("de_DE"), name),
    )


def fill(template: str, recipient: Recipient, *, escape: bool) -> str:
    for field, token in PLACEHOLDERS.items():
        value = recipient.value(field)
        template = template.replace(token, html.escape(value) if escape else value)
    return template


def slow_message(issue: RenderedIssue, recipient: Recipient) -> bytes:
    """The same message the straightforward way: EmailMessage, set_content, add_alternative."""
    message = EmailMessage()
    message["Date"] = format_datetime(DATE)
    message["Message-ID"] = MESSAGE_ID
    message["To"] = Address(display_name=single_line(recipient.name), addr_spec=recipient.email)
    message["List-Unsubscribe"] = f"<{recipient.unsubscribe_url}>"
    message["From"] = SENDER
    message["Subject"] = issue.subject
    message["List-Id"] = LIST_ID
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message["Precedence"] = "bulk"
    message.set_content(fill(issue.text, recipient, escape=False))
    message.add_alternative(fill(issue.html, recipient, escape=True), subtype="html")
    return message.as_bytes(policy=policy.SMTP)


def fast_message(issue: RenderedIssue, recipient: Recipient) -> bytes:
    template = MessageTemplate(issue, sender=SENDER, list_id=LIST_ID)
    return template.build(recipient, message_id=MESSAGE_ID, date=DATE)


ADDRESS_HEADERS = {"From", "To", "Reply-To"}
PART_HEADERS = {"Content-Type", "Content-Transfer-Encoding", "MIME-Version"}


def assert_same_message(fast_raw: bytes, slow_raw: bytes) -> None:
    fast, slow = parse(fast_raw), parse(slow_raw)
    assert defects(fast) == [] and defects(slow) == []
    assert sorted(fast.keys()) == sorted(slow.keys())
    for name in set(fast.keys()) - PART_HEADERS:
        assert str(fast[name]) == str(slow[name]), name
        if name in ADDRESS_HEADERS:
            assert [(a.display_name, a.addr_spec) for a in fast[name].addresses] == [
                (a.display_name, a.addr_spec) for a in slow[name].addresses
            ], name
    assert fast.get_content_type() == slow.get_content_type() == "multipart/alternative"
    fast_parts, slow_parts = parts(fast), parts(slow)
    assert [p.get_content_type() for p in fast_parts] == ["text/plain", "text/html"]
    assert [p.get_content_type() for p in slow_parts] == ["text/plain", "text/html"]
    for fast_part, slow_part in zip(fast_parts, slow_parts, strict=True):
        assert fast_part.get_content_charset() == slow_part.get_content_charset() == "utf-8"
        assert fast_part.get_content() == slow_part.get_content()


NAMES = [
    pytest.param("Anna Smith", id="ascii"),
    pytest.param("Smith, Anna (Redaktion)", id="ascii-specials"),
    pytest.param("Jürgen Müller-Lüdenscheidt", id="non-ascii"),
    pytest.param('Zoë O\'Brien, "Dr."', id="non-ascii-specials"),
    pytest.param("Ωmega 日本語 🎉", id="non-latin"),
    pytest.param("", id="no-name"),
    pytest.param("Mallory\r\nBcc: evil@x", id="crlf-injection"),
]


@pytest.mark.parametrize("name", NAMES)
def test_spliced_message_equals_email_package_message(
    sample_issue: RenderedIssue, name: str
) -> None:
    recipient = make_recipient(name)
    assert_same_message(
        fast_message(sample_issue, recipient), slow_message(sample_issue, recipient)
    )


def test_html_values_are_escaped_and_text_values_are_not(sample_issue: RenderedIssue) -> None:
    recipient = make_recipient("Tom & <Jerry>")
    text, html_part = (
        str(p.get_content()) for p in parts(parse(fast_message(sample_issue, recipient)))
    )
    assert "Hallo Tom & <Jerry>," in text
    assert "Hallo Tom &amp; &lt;Jerry&gt;," in html_part
    assert "unsubscribe/T0k3n?list=weekly&via=mail" in text
    assert (
        'href="https://www.example.org/praeventionskette/unsubscribe/T0k3n?list=weekly&amp;via=mail"'
        in (html_part)
    )
    assert "__digest_" not in text and "__digest_" not in html_part


def test_crlf_in_a_name_is_neutralised(sample_issue: RenderedIssue) -> None:
    raw = fast_message(sample_issue, make_recipient("Mallory\r\nBcc: evil@x\nX-Evil: 1"))
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"(?im)^(bcc|x-evil):", head)
    message = parse(raw)
    assert message["Bcc"] is None and message["X-Evil"] is None
    (to,) = message["To"].addresses
    assert (to.display_name, to.addr_spec) == (
        "Mallory Bcc: evil@x X-Evil: 1",
        "reader@example.org",
    )
    text = str(parts(message)[0].get_content())
    assert "Hallo Mallory Bcc: evil@x X-Evil: 1," in text  # greeting on one line too


@pytest.mark.parametrize(
    "field, recipient",
    [
        ("recipient email", make_recipient("A", email="a@example.org\r\nBcc: evil@x")),
        ("unsubscribe URL", make_recipient("A", token="x\r\nBcc: evil@x")),
    ],
)
def test_crlf_in_an_address_or_url_is_refused(
    sample_issue: RenderedIssue, field: str, recipient: Recipient
) -> None:
    with pytest.raises(HeaderError, match=f"^{field}: header value contains a line break"):
        fast_message(sample_issue, recipient)


SUBJECTS = [
    "Präventionskette Ahlen: 3 neue Beiträge",
    "„Ahlen neu denken!“ – Wochenüberblick 🎉",
    "Ünïcödé " * 20,  # long: must fold into several encoded words
    "Plain ASCII subject that is quite long and needs folding somewhere after column 78 ok",
    "Tab\tand  double  spaces",
    "Line\r\nBcc: evil@x",
]


@pytest.mark.parametrize("subject", SUBJECTS)
def test_subject_round_trips(sample_issue: RenderedIssue, subject: str) -> None:
    issue = RenderedIssue(subject, sample_issue.preheader, sample_issue.html, sample_issue.text)
    raw = fast_message(issue, make_recipient("Anna"))
    message = parse(raw)
    assert defects(message) == []
    assert str(message["Subject"]) == single_line(subject)
    assert message["Bcc"] is None
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


@settings(max_examples=150, deadline=None)
@given(
    subject=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=200)
    .map(single_line)
    .filter(lambda text: bool(text) and "=?" not in text),
    name=st.text(st.characters(blacklist_categories=("Cs",)), max_size=60),
)
def test_any_subject_and_name_round_trip(subject: str, name: str) -> None:
    # "=?" is left out: the email package itself decodes a literal "=?utf-8?q?x?=" in a subject.
    issue = RenderedIssue(subject, "", "<p>__digest_greeting__</p>", "__digest_greeting__\n")
    recipient = make_recipient(name)
    raw = fast_message(issue, recipient)
    message = parse(raw)
    assert defects(message) == []
    assert str(message["Subject"]) == subject
    (to,) = message["To"].addresses
    assert to.addr_spec == "reader@example.org"
    assert message["Bcc"] is None
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")


def test_sender_from_config_and_list_id(
    sample_loaded: LoadedConfig, sample_issue: RenderedIssue
) -> None:
    assert list_id(sample_loaded, "weekly") == LIST_ID
    template = message_template(sample_loaded, "weekly", sample_issue)
    assert template.sender_domain == "example.org"
    message = parse(template.build(make_recipient("A"), message_id=MESSAGE_ID, date=DATE))
    assert str(message["From"]) == SENDER


def test_mailto_unsubscribe_is_added_when_configured(sample_issue: RenderedIssue) -> None:
    template = MessageTemplate(
        sample_issue, sender=SENDER, list_id=LIST_ID, unsubscribe_mailto="leave@example.org"
    )
    message = parse(template.build(make_recipient("A"), message_id=MESSAGE_ID, date=DATE))
    assert str(message["List-Unsubscribe"]) == (
        "<https://www.example.org/praeventionskette/unsubscribe/T0k3n?list=weekly&via=mail>, "
        "<mailto:leave@example.org?subject=unsubscribe>"
    )


def test_bad_sender_is_refused(sample_issue: RenderedIssue) -> None:
    with pytest.raises(HeaderError, match="not an email address"):
        MessageTemplate(sample_issue, sender="Nobody", list_id=LIST_ID)


def test_message_ids_are_unique_and_safe() -> None:
    ids = {make_message_id("example.org", "weekly.2017-11-20-0700") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(
        re.fullmatch(r"<weekly\.2017-11-20-0700\.[0-9a-f]{24}@example\.org>", i) for i in ids
    )
    assert re.fullmatch(r"<[0-9a-f]{24}@example\.org>", make_message_id("example.org", "<>\r\n "))


@pytest.mark.parametrize(
    "text", ["a\nb\r\nc\rd ä" + "x" * 200, "no line end at all, but long: " + "ü" * 200, ""]
)
def test_encode_part_writes_only_crlf_line_ends(text: str) -> None:
    encoded = encode_part(text)
    assert b"\n" not in encoded.replace(b"\r\n", b"") and b"\r" not in encoded.replace(b"\r\n", b"")
    assert max(len(line) for line in encoded.split(b"\r\n")) <= 76
    decoded = binascii.a2b_qp(encoded).decode("utf-8")
    assert decoded == text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
