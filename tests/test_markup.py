"""Content HTML fitted to the email's column, and the text part of full-body items."""

from __future__ import annotations

import lxml.html

from digest.markup import body_text, fit_column, markdown_to_html
from digest.render import _wrap

WIDE = '<p>x <img src="https://example.org/w.png" width="1200" height="600" alt="Wide"></p>'


def test_pictures_scale_and_outlook_gets_at_most_the_column_width() -> None:
    html = fit_column(
        WIDE + '<img src="https://e.org/s.png" width="200" height="100" alt="s">'
        '<img src="https://e.org/m.png" alt="md"><img src="https://e.org/p.png" width="50%" height="9">'
    )
    wide, small, markdown, percent = lxml.html.fragment_fromstring(html, create_parent="div").iter(
        "img"
    )
    assert (wide.get("width"), wide.get("height")) == ("536", "268")  # aspect kept
    assert (small.get("width"), small.get("height")) == ("200", "100")  # small ones stay
    assert markdown.get("width") is None and percent.get("width") is None
    assert percent.get("height") is None  # a height alone would distort the scaled picture
    for image in (wide, small, markdown, percent):
        assert image.get("style") == "max-width:100%;height:auto"


def test_pre_wraps_tables_scroll_in_a_frame_headings_follow_the_item() -> None:
    html = fit_column(
        "<h2>Top</h2><p>a</p><h4>Deeper</h4><table><tr><td>1</td></tr></table>tail"
        "<pre>" + "x" * 500 + "</pre>",
        heading_level=2,
    )
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    assert [h.tag for h in root.iter("h1", "h2", "h3", "h4", "h5", "h6")] == ["h3", "h5"]
    (pre,) = root.iter("pre")
    assert "white-space:pre-wrap" in pre.get("style", "")
    (table,) = root.iter("table")
    frame = table.getparent()
    assert frame is not None and frame.tag == "div" and "overflow-x:auto" in frame.get("style", "")
    assert frame.tail == "tail"
    assert "word-break:normal" in next(root.iter("td")).get("style", "")  # words stay whole


def test_markdown_pipe_tables_are_tables() -> None:
    html = markdown_to_html("| Tag | Ort |\n|---|---|\n| Mo | Rathaus |\n")
    assert "<table>" in html and "<td>Rathaus</td>" in html


def test_text_part_keeps_links_lists_cells_alt_text_and_pre() -> None:
    html = markdown_to_html(
        "Read [the report](https://example.org/r) and <https://example.org/plain>.\n\n"
        "1. first\n2. second\n   - inner\n\n- bullet\n\n"
        "| Tag | Ort |\n|---|---|\n| Mo | Rathaus |\n\n"
        "![Map of the town](https://example.org/m.png)\n\n"
        "```\nif  x:\n    keep   spacing\n```\n\n"
        "Line one  \nline two\n"
    )
    assert body_text(html).split("\n\n") == [
        "Read the report (https://example.org/r) and https://example.org/plain.",
        "1. first\n2. second\n  - inner",
        "- bullet",
        "Tag | Ort\nMo | Rathaus",
        "[Map of the town]",
        "    if  x:\n        keep   spacing",
        "Line one\nline two",
    ]


def test_wrap_fills_paragraphs_and_list_items_but_keeps_pre_lines() -> None:
    long_item = "- " + "word " * 30
    pre = "    " + "code " * 30
    text = _wrap(f"{'flow ' * 30}\n\n{long_item.strip()}\n- short\n\n{pre}", width=40, indent="  ")
    flow, items, kept = text.split("\n\n")
    assert all(len(line) <= 40 for line in flow.split("\n"))
    lines = items.split("\n")
    assert lines[0].startswith("  - word") and lines[1].startswith("    word")  # hanging
    assert lines[-1] == "  - short"
    assert kept == "  " + pre.rstrip()  # not re-wrapped


def test_a_link_without_an_address_becomes_its_text() -> None:
    html = markdown_to_html(
        '<a href="javascript:alert(1)">js</a> and <a href="https://e.org">ok</a>'
    )
    expected = '<p>js and <a href="https://e.org" rel="noopener noreferrer">ok</a></p>'
    assert fit_column(html).strip() == expected
