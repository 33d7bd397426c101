"""Rendering never fails on what an item holds: characters that are not text are dropped,
huge bodies are shortened, and an item MJML still cannot take is named, not the template."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import digest.render
from digest.config import load_config
from digest.models import Item
from digest.render import BODY_MAX_BYTES, BadItemsError, Renderer
from tests.conftest import AT, REPO

CONTROLS = "\x01\x0b\x1b\x7f\x85\ufffe\uffff\U0010fffe\ud800"


def item(key: str, body: str, title: str = "Title") -> Item:
    return Item(
        source="feed", key=key, title=title, published_at=AT - timedelta(hours=1),
        summary="s", body_html=body, content_hash=key,
    )  # fmt: skip


def renderer() -> tuple[Renderer, Any]:
    loaded = load_config(REPO / "config.example.yaml", environ={})
    return Renderer(loaded), loaded.schedule("weekly").period_ending(AT)


def test_characters_that_are_not_text_never_fail_the_issue() -> None:
    render, period = renderer()
    body = f"<p>one{CONTROLS} two &#xFFFE; three</p>"
    issue = render.render("weekly", [item("a", body, title=f"Ti{CONTROLS}tle")], period)
    assert "one two  three" in issue.html and "Title" in issue.html
    assert not any(char in issue.html + issue.text for char in CONTROLS)


def test_a_huge_body_is_shortened_and_says_so() -> None:
    render, period = renderer()
    body = "<p>" + "Wort " * 400 + "</p>\n"
    issue = render.render("weekly", [item("big", body * 2000)], period)  # ~4 MB
    assert len(issue.html.encode()) < BODY_MAX_BYTES + 30_000
    assert "Dieser Beitrag ist für eine E-Mail zu lang und wurde hier gekürzt." in issue.html
    assert "(Dieser Beitrag ist für eine E-Mail zu lang" in issue.text


def test_an_item_mjml_cannot_take_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    real = digest.render.mjml2html

    def picky(source: str, **options: Any) -> str:  # a parser that chokes on one item
        if "POISON" in source:
            raise ValueError("unable to parse next template in root template")
        return str(real(source, **options))

    monkeypatch.setattr(digest.render, "mjml2html", picky)
    render, period = renderer()
    items = [item("good", "<p>fine</p>"), item("bad", "<p>POISON</p>", title="Vergiftet")]
    with pytest.raises(BadItemsError) as caught:
        render.render("weekly", items, period)
    assert [bad.key for bad in caught.value.items] == ["bad"]
    assert str(caught.value).startswith("item content MJML cannot take: feed:bad ('Vergiftet')")
    assert "digest.mjml" not in str(caught.value)
