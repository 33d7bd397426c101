"""Markdown to safe HTML, and HTML to the plain text a teaser needs.

Content HTML is untrusted (it may come from a feed): nh3 (ammonia) keeps a small set of tags
that mail clients render, only http/https/mailto links, and no event handlers or scripts.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import nh3
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

_markdown = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
_TAG = re.compile(r"<[^>]+>")
_BLOCK_END = re.compile(r"</(p|li|h[1-6]|blockquote|tr|pre)>|<br\s*/?>", re.IGNORECASE)


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
