"""Markdown to safe HTML, fitted to the email's column, and HTML to plain text.

Content HTML is untrusted (it may come from a feed): nh3 (ammonia) keeps a small set of tags
that mail clients render, only http/https/mailto links, and no event handlers or scripts.
:func:`fit_column` then makes what is left fit the 536 px text column of the email (pictures
scale, ``pre`` wraps, tables scroll in their cell), and :func:`body_text` gives the text part
its links, list markers, table cells, picture descriptions and preformatted lines.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import lxml.html
import nh3
from lxml.etree import _Element
from markdown_it import MarkdownIt

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "em", "h2", "h3", "h4", "hr", "i", "img",
    "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead",
    "tr", "u", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height", "title"},
    "abbr": {"title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
URL_SCHEMES = {"http", "https", "mailto"}

# CommonMark plus GitHub's pipe tables (markdown-it's "table" rule).
_markdown = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False}).enable(
    "table"
)
COLUMN_WIDTH = 536  # px: the 600 px email less 32 px of padding either side
# HTML of one full-body item in the email at most: a body longer than this (a 10 MB feed entry)
# is cut after the blocks that fit, and the template says it was shortened.
BODY_MAX_BYTES = 30 * 1024
_FIT_STYLES = {
    "img": "max-width:100%;height:auto",
    "pre": "white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word",
    # Words stay whole (MJML's cell sets word-break:break-word, which would squeeze a wide
    # table into broken words): a table wider than the column scrolls in its frame instead.
    "td": "padding:4px 8px;vertical-align:top;word-break:normal;overflow-wrap:break-word",
    "th": "padding:4px 8px;vertical-align:top;word-break:normal;text-align:left",
}
_TABLE_FRAME = "overflow-x:auto;width:0;min-width:100%"  # width 0: no min-content for the cell
_HEADING = re.compile(r"h([1-6])")
_BLOCKS = frozenset(
    "p div blockquote pre ul ol li table thead tbody tr td th hr h1 h2 h3 h4 h5 h6".split()  # noqa: SIM905
)
_BREAK = "\u2028"  # what <br> becomes until _squeeze turns it into a line end
_TAG = re.compile(r"<[^>]+>")
_BLOCK_END = re.compile(r"</(p|li|h[1-6]|blockquote|tr|pre)>|<br\s*/?>", re.IGNORECASE)


# C0 controls but tab, LF and CR; DEL and the C1 controls; UTF-16 surrogates (lone ones are
# not text); the noncharacters U+FDD0-U+FDEF and U+xFFFE/U+xFFFF of every plane. XML 1.0 and
# so MJML's parser refuse them; mail clients show them as boxes at best.
_NOT_TEXT = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(
        f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17)
    )
    + "]"
)


def clean_text(value: str) -> str:
    """``value`` without the characters that are not text (control characters other than
    tab and line ends, surrogates, noncharacters): what every source's items pass through."""
    return _NOT_TEXT.sub("", value)


def sanitize_html(raw_html: str, base_url: str | None = None) -> str:
    """Clean untrusted HTML; relative links and images resolve against ``base_url``."""

    def absolutize(element: str, attribute: str, value: str) -> str | None:
        if attribute in ("href", "src") and base_url:
            return urljoin(base_url + "/", value)
        return value

    return nh3.clean(
        raw_html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        attribute_filter=absolutize,
        strip_comments=True,
    )


def markdown_to_html(source: str, base_url: str | None = None) -> str:
    return sanitize_html(_markdown.render(source), base_url)


def fit_column(fragment: str, *, heading_level: int = 3, width: int = COLUMN_WIDTH) -> str:
    """Sanitised content HTML made to fit a ``width`` px column, whatever its source wrote:

    - pictures scale down (``max-width:100%;height:auto``) and their ``width`` attribute, the
      size Outlook draws, is at most ``width`` (the height scaled with it);
    - ``pre`` wraps its long lines instead of widening the email;
    - a table sits in a frame that scrolls sideways, its cells break long words;
    - headings follow the item's own (``heading_level``): the highest becomes one below it;
    - a link the sanitiser left without an address (``javascript:``) becomes its text.
    """
    if not fragment.strip():
        return fragment
    root = _fragment(fragment)
    headings = [element for element in root.iter() if _HEADING.fullmatch(str(element.tag))]
    shift = 0
    if headings:
        shift = heading_level + 1 - min(int(str(element.tag)[1]) for element in headings)
    for element in headings:
        element.tag = f"h{min(6, max(1, int(str(element.tag)[1]) + shift))}"
    for element in list(root.iter("a")):
        if element.get("href") is None:  # the sanitiser dropped a javascript: href: plain text
            element.drop_tag()
    for element in list(root.iter("img", "pre", "td", "th", "table")):
        tag = str(element.tag)
        if tag == "img":
            _clamp_image(element, width)
        if tag == "table":
            frame = lxml.html.Element("div", style=_TABLE_FRAME)
            element.addprevious(frame)
            frame.append(element)  # moves the table (and its tail) into the frame
            frame.tail, element.tail = element.tail, None
            continue
        element.set("style", _FIT_STYLES[tag])
    return _inner_html(root)


def shorten_html(fragment: str, max_bytes: int) -> tuple[str, bool]:
    """The leading blocks of ``fragment`` that fit in ``max_bytes`` (UTF-8), and whether any
    were cut. A first block too big on its own is cut to its plain text at a word boundary."""
    if len(fragment.encode("utf-8")) <= max_bytes:
        return fragment, False
    root = _fragment(fragment)
    kept: list[str] = []
    used = 0
    lead = html.escape(root.text or "", quote=False)
    if lead.strip():
        kept.append(lead)
        used += len(lead.encode("utf-8"))
    for child in root:
        block = lxml.html.tostring(child, encoding="unicode")
        size = len(block.encode("utf-8"))
        if used + size > max_bytes:
            if not kept:
                text = child.text_content()[: max_bytes // 2]
                kept.append(f"<p>{html.escape(text.rsplit(' ', 1)[0], quote=False)} …</p>")
            break
        kept.append(block)
        used += size
    return "".join(kept), True


def _clamp_image(element: _Element, width: int) -> None:
    declared = _pixels(element.get("width"))
    height = _pixels(element.get("height"))
    if declared is None:
        element.attrib.pop("width", None)
        element.attrib.pop("height", None)  # a fixed height alone would distort it when scaled
    elif declared > width:
        element.set("width", str(width))
        if height is not None:
            element.set("height", str(max(1, round(height * width / declared))))
        else:
            element.attrib.pop("height", None)


def _pixels(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip().removesuffix("px")
    return int(value) if value.isdigit() and 0 < int(value) < 100_000 else None


def _fragment(fragment: str) -> _Element:
    root: _Element = lxml.html.fragment_fromstring(fragment, create_parent="div")
    return root


def _inner_html(root: _Element) -> str:
    parts = [html.escape(root.text or "", quote=False)]
    parts += [lxml.html.tostring(child, encoding="unicode") for child in root]
    return "".join(parts)


def body_text(fragment: str) -> str:
    """The text part of a full-body item: paragraphs, ``- `` and ``1. `` list items, table rows
    as ``cell | cell``, links as ``text (URL)``, pictures as ``[alt]``, ``pre`` lines kept
    (indented by four spaces, which the text template's ``wrap`` leaves alone)."""
    if not fragment.strip():
        return ""
    blocks: list[str] = []
    _text_blocks(_fragment(fragment), blocks)
    return "\n\n".join(block for block in blocks if block.strip())


def _text_blocks(element: _Element, blocks: list[str]) -> None:
    """Append the text blocks of ``element``'s content (not its own tag) to ``blocks``."""
    run: list[str] = [element.text or ""]  # inline content between block elements

    def flush() -> None:
        paragraph = _squeeze("".join(run))
        if paragraph:
            blocks.append(paragraph)
        run.clear()

    for child in element:
        tag = str(child.tag)
        if tag not in _BLOCKS:
            run.append(_inline(child))  # with its tail
            continue
        flush()
        if tag == "pre":
            lines = child.text_content().strip("\n").split("\n")
            blocks.append("\n".join("    " + line.rstrip() for line in lines))
        elif tag in ("ul", "ol"):
            blocks.append("\n".join(_list_lines(child)))
        elif tag == "table":
            blocks.append("\n".join(_table_rows(child)))
        elif tag == "hr":
            blocks.append("----")
        elif tag == "blockquote":
            inner: list[str] = []
            _text_blocks(child, inner)
            blocks.append("\n".join("> " + line for line in "\n\n".join(inner).split("\n")))
        elif tag in ("div", "li", "td", "th", "tr", "thead", "tbody"):
            _text_blocks(child, blocks)
        else:  # p, headings
            paragraph = _squeeze(_inline(child, own_tail=False))
            if paragraph:
                blocks.append(paragraph)
        run.append(child.tail or "")
    flush()


def _list_lines(element: _Element, depth: int = 0) -> list[str]:
    """``- item`` or ``3. item`` per line; nested lists indented under their item."""
    lines: list[str] = []
    number = _pixels(element.get("start")) or 1
    for item in element:
        if item.tag != "li":
            continue
        marker = f"{number}. " if element.tag == "ol" else "- "
        number += 1
        text, nested = [item.text or ""], []
        for child in item:
            if child.tag in ("ul", "ol"):
                nested.append(child)
                text.append(child.tail or "")
            else:
                text.append(_inline(child))
        lines.append("  " * depth + marker + _squeeze("".join(text)).replace("\n", " "))
        for child in nested:
            lines += _list_lines(child, depth + 1)
    return lines


def _table_rows(element: _Element) -> list[str]:
    rows = []
    for row in element.iter("tr"):
        cells = [
            _squeeze(_inline(cell, own_tail=False)) for cell in row if cell.tag in ("td", "th")
        ]
        rows.append(" | ".join(cells))
    return rows


def _inline(element: _Element, *, own_tail: bool = True) -> str:
    """The text of an element as it reads in a line: links with their address, pictures by
    their description, ``<br>`` as a line break."""
    tag = str(element.tag)
    tail = (element.tail or "") if own_tail else ""
    if tag == "br":
        return _BREAK + tail
    if tag == "img":
        alt = " ".join((element.get("alt") or "").split())
        return (f"[{alt}]" if alt else "") + tail
    inner = (element.text or "") + "".join(_inline(child) for child in element)
    if tag == "a":
        href = element.get("href") or ""
        label = _squeeze(inner)
        if href and href.removeprefix("mailto:") != label:
            inner = f"{label} ({href})" if label else href
    return inner + tail


def _squeeze(text: str) -> str:
    """Whitespace runs to one space; a ``<br>`` ends a line."""
    lines = (" ".join(line.split()) for line in text.split(_BREAK))
    return "\n".join(line for line in lines if line)


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: paragraphs become blank-line separated, tags go."""
    text = _BLOCK_END.sub("\n\n", fragment)
    text = html.unescape(_TAG.sub("", text))
    paragraphs = [" ".join(part.split()) for part in re.split(r"\n\s*\n", text)]
    return "\n\n".join(part for part in paragraphs if part)


def truncate(text: str, limit: int) -> str:
    """Shorten at a word boundary and mark the cut with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:–- ")
    return cut + " …"
