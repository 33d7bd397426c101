"""Lint a finished message the way a mail client and a spam filter will see it.

Findings are worded in the language of ``t`` (the site's catalogue; English without)."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable
from email.message import EmailMessage

import lxml.html

from digest.catalogue import Translator, default_translator
from digest.models import Problem
from digest.size import size_problem

MAX_LINE_OCTETS = 998
EMAIL_WIDTH = 600  # px, the body width of the packaged templates
PRE_WRAPS = re.compile(r"white-space\s*:\s*pre-(?:wrap|line)", re.I)
PRE_LINE_CHARS = 60  # a monospace line longer than this is wider than a phone
STYLE_WIDTH = re.compile(r"(?:^|[;\s])(?:min-)?width\s*:\s*(\d+)px", re.I)
TABLE_COLUMNS = 4  # a content table with more columns scrolls sideways on a phone
REQUIRED_HEADERS = (
    "Date", "Message-ID", "From", "To", "Subject", "List-Unsubscribe",
    "List-Unsubscribe-Post", "List-Id",
)  # fmt: skip
_REMOTE_FONT = re.compile(
    r"fonts\.googleapis\.com|@import\s+(?:url|['\"])|@font-face[^}]*url\(\s*['\"]?https?:", re.I
)


def lint_message(
    raw: bytes, unsubscribe_url: str, where: str, t: Translator | None = None
) -> list[Problem]:
    """Findings for one built message; ``unsubscribe_url`` is the recipient's own link."""
    problems: list[Problem] = []
    _ = (t or default_translator()).gettext

    def error(message: str) -> None:
        problems.append(Problem("error", where, message))

    def warning(message: str) -> None:
        problems.append(Problem("warning", where, message))

    for number, line in enumerate(raw.split(b"\r\n"), start=1):
        if len(line) > MAX_LINE_OCTETS:
            error(
                _(
                    "message line %(number)s is %(octets)s octets (SMTP allows %(limit)s)",
                    number=number,
                    octets=len(line),
                    limit=MAX_LINE_OCTETS,
                )
            )
            break

    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    for defect in message.defects:
        error(_("MIME defect: %(defect)s", defect=type(defect).__name__))
    for name in REQUIRED_HEADERS:
        if message[name] is None:
            error(_("header %(name)s is missing", name=name))
    for name, value in message.items():
        if "\r" in str(value) or "\n" in str(value):
            error(_("header %(name)s contains a line break", name=name))
    unsubscribe = message["List-Unsubscribe"]
    if unsubscribe is not None and "<https://" not in str(unsubscribe):
        warning(_("List-Unsubscribe has no https URL: Gmail and Yahoo need one for one-click"))
    one_click = message["List-Unsubscribe-Post"]
    if one_click is not None and str(one_click).strip() != "List-Unsubscribe=One-Click":
        error(
            _(
                "List-Unsubscribe-Post is %(value)s, expected List-Unsubscribe=One-Click",
                value=repr(str(one_click)),
            )
        )

    if message.get_content_type() != "multipart/alternative":
        error(
            _(
                "message is %(type)s, expected multipart/alternative",
                type=message.get_content_type(),
            )
        )
        return problems
    parts = [part for part in message.iter_parts() if isinstance(part, EmailMessage)]
    types = [part.get_content_type() for part in parts]
    if types != ["text/plain", "text/html"]:
        error(_("parts are %(types)s, expected text/plain then text/html", types=types))
        return problems
    text = str(parts[0].get_content())
    html = str(parts[1].get_content())

    if not text.strip():
        error(_("text part is empty"))
    if unsubscribe_url not in text:
        error(_("text part has no unsubscribe link"))
    too_big = size_problem(len(html.encode("utf-8")), t)
    if too_big:
        error(too_big)
    problems.extend(lint_html(html, unsubscribe_url, where, t))
    return problems


def lint_html(
    html: str, unsubscribe_url: str, where: str, t: Translator | None = None
) -> list[Problem]:
    problems: list[Problem] = []
    _ = (t or default_translator()).gettext
    document = lxml.html.document_fromstring(html)

    for element in document.iter("img"):
        src = element.get("src", "")
        label = f"<img src={src[:60]!r}>"
        if element.get("alt") is None:
            problems.append(Problem("error", where, _("%(img)s has no alt attribute", img=label)))
        if not element.get("width"):
            message = _("%(img)s has no width attribute (Outlook)", img=label)
            problems.append(Problem("warning", where, message))
        if not src.startswith(("https://", "http://")):
            message = _("%(img)s is not an absolute http(s) URL", img=label)
            problems.append(Problem("error", where, message))

    problems += [Problem("warning", where, message) for message in _overflow(document, _)]

    hrefs = [element.get("href", "") for element in document.iter("a")]
    for href in hrefs:
        if not href.startswith(("https://", "http://", "mailto:")):
            message = _("link %(href)s is not absolute http(s)/mailto", href=repr(href[:80]))
            problems.append(Problem("error", where, message))
    if unsubscribe_url not in hrefs:
        problems.append(Problem("error", where, _("HTML has no unsubscribe link")))

    for element in document.iter("link"):
        if "stylesheet" in (element.get("rel") or ""):
            message = _("remote stylesheet %(href)s", href=repr(element.get("href")))
            problems.append(Problem("error", where, message))
    for element in document.iter("style"):
        if _REMOTE_FONT.search(element.text or ""):
            problems.append(Problem("error", where, _("remote font or @import in <style>")))

    leftover = sorted({match.group(0) for match in re.finditer(r"</?mj-[a-z-]+", html)})
    if leftover:
        message = _("unknown MJML tags left in HTML: %(tags)s", tags=", ".join(leftover))
        problems.append(Problem("error", where, message))
    if document.get("lang") in (None, "", "und"):
        problems.append(Problem("warning", where, _("<html> has no lang attribute")))
    return problems


def _overflow(document: lxml.html.HtmlElement, _: Callable[..., str]) -> list[str]:
    """What makes the email wider than its column on a phone, or than 600 px in Outlook;
    ``_`` is the catalogue's gettext."""
    found: list[str] = []
    for element in document.iter("img"):
        width = element.get("width", "")
        if width.isdigit() and int(width) > EMAIL_WIDTH:
            found.append(
                _(
                    "%(img)s is %(width)s px wide: Outlook draws it at that size, wider than "
                    "the %(limit)s px email",
                    img=f"<img src={element.get('src', '')[:60]!r}>",
                    width=width,
                    limit=EMAIL_WIDTH,
                )
            )
    for element in document.iter():
        match = STYLE_WIDTH.search(element.get("style", "") or "")
        if match and int(match.group(1)) > EMAIL_WIDTH:
            found.append(
                _(
                    "%(tag)s has a fixed width of %(width)s px",
                    tag=f"<{element.tag}>",
                    width=match.group(1),
                )
            )
    for element in document.iter("pre"):
        longest = max((len(line) for line in element.text_content().split("\n")), default=0)
        if longest > PRE_LINE_CHARS and not PRE_WRAPS.search(element.get("style", "") or ""):
            found.append(
                _(
                    "<pre> has a line of %(length)s characters and does not wrap: it widens "
                    "the email on phones",
                    length=longest,
                )
            )
    for element in document.iter("table"):
        if element.get("role") == "presentation":
            continue  # MJML's layout tables
        columns = max((len(row.findall("td") + row.findall("th")) for row in element.iter("tr")),
                      default=0)  # fmt: skip
        if columns > TABLE_COLUMNS:
            found.append(
                _(
                    "a table with %(columns)s columns does not fit a phone's width: it scrolls "
                    "sideways there",
                    columns=columns,
                )
            )
    return found
