"""The sender's hot path is fast without being different: pre-encoded parts equal the plain
per-recipient encoding, and SMTP dot-stuffing equals the textbook rule."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.message import EncodedPart, Recipient, Splicer, encode_part
from digest.render import PLACEHOLDERS
from digest.transport import dot_stuff

TOKENS = list(PLACEHOLDERS.values())
pieces = st.one_of(
    st.sampled_from(TOKENS),
    st.sampled_from(["\n", "\r\n", "\r", " \n", "\t\n", ".\n", ".", "=", " ", "ä", "€", "<b>"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=90),
    st.just("x" * 75),
)
values = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=120
) | st.sampled_from(["", " ", ".", "\r", "\n", "Anna\r\n", "=", "x" * 80])


@settings(max_examples=250, deadline=None)
@given(st.lists(pieces, max_size=30), values, values, values, st.booleans())
def test_pre_encoded_part_equals_encoding_the_filled_text(
    parts: list[str], greeting: str, unsubscribe: str, preferences: str, escape: bool
) -> None:
    template = "".join(parts)
    recipient = Recipient("a@example.org", "A", unsubscribe, preferences, greeting)
    expected = encode_part(Splicer(template, escape_html=escape).fill(recipient))
    assert EncodedPart(template, escape_html=escape).encode(recipient) == expected


def test_sample_issue_parts_are_mostly_pre_encoded() -> None:
    template = "Hallo __digest_greeting__,\n" + "Zeile mit Ümlaut und = Zeichen\n" * 500
    part = EncodedPart(template, escape_html=False)
    assert len(part.pieces) == 2 and isinstance(part.pieces[1], bytes)


@given(st.binary(max_size=300) | st.sampled_from([b".", b".\r\n", b"a\r\n.\r\n..b", b"\n."]))
def test_dot_stuffing_matches_the_rule(data: bytes) -> None:
    assert dot_stuff(data) == re.sub(rb"(?m)^\.", b"..", data)
