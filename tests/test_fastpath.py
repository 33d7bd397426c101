"""The sender's hot path is fast without being different: pre-encoded parts equal the plain
per-recipient encoding, and SMTP dot-stuffing equals the textbook rule."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.message import EncodedPart, Recipient, Splicer, dot_stuff, encode_part
from digest.render import PLACEHOLDERS
from tests.conftest import Site

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
    part = EncodedPart(template, escape_html=escape)
    assert part.encode(recipient) == expected
    assert part.encode(recipient, dot_stuffed=True) == dot_stuff(expected)


def test_sample_issue_parts_are_mostly_pre_encoded() -> None:
    template = "Hallo __digest_greeting__,\n" + "Zeile mit Ümlaut und = Zeichen\n" * 500
    part = EncodedPart(template, escape_html=False)
    assert len(part.pieces) == 2 and isinstance(part.pieces[1], bytes)


@given(st.binary(max_size=300) | st.sampled_from([b".", b".\r\n", b"a\r\n.\r\n..b", b"\n."]))
def test_dot_stuffing_matches_the_rule(data: bytes) -> None:
    assert dot_stuff(data) == re.sub(rb"(?m)^\.", b"..", data)


def test_sample_message_built_dot_stuffed_equals_stuffing_it(site: Site) -> None:
    from datetime import UTC, datetime

    from digest.compose import compose_next_issue, sample_recipient
    from digest.message import DotStuffed, message_template
    from digest.store import Store
    from tests.conftest import AT

    loaded = site.load()
    store = Store.open_for_reading(loaded.database_url)
    try:
        issue = compose_next_issue(loaded, store, "weekly", AT)
    finally:
        store.close()
    template = message_template(loaded, "weekly", issue.rendered)
    args = {"message_id": "<x@example.org>", "date": datetime(2017, 11, 20, tzinfo=UTC)}
    plain = template.build(sample_recipient(loaded), **args)  # type: ignore[arg-type]
    stuffed = template.build(sample_recipient(loaded), dot_stuffed=True, **args)  # type: ignore[arg-type]
    assert b"\n." in plain  # the sample has lines that need it (CSS in the HTML part)
    assert isinstance(stuffed, DotStuffed) and stuffed == dot_stuff(plain)
