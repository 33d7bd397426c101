"""Lint a finished message the way a mail client and a spam filter will see it."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage

import lxml.html

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


def lint_message(raw: bytes, unsubscribe_url: str, where: str) -> list[Problem]:
    """Findings for one built message; ``unsubscribe_url`` is the recipient's own link."""
    problems: list[Problem] = []

    def error(message: str) -> None:
        problems.append(Problem("error", where, message))

    def warning(message: str) -> None:
        problems.append(Problem("warning", where, message))

    for number, line in enumerate(raw.split(b"\r\n"), start=1):
        if len(line) > MAX_LINE_OCTETS:
            error(f"message line {number} is {len(line)} octets (SMTP allows {MAX_LINE_OCTETS})")
            break

    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    for defect in message.defects:
        error(f"MIME defect: {type(defect).__name__}")
    for name in REQUIRED_HEADERS:
        if message[name] is None:
            error(f"header {name} is missing")
    for name, value in message.items():
        if "\r" in str(value) or "\n" in str(value):
            error(f"header {name} contains a line break")
    unsubscribe = message["List-Unsubscribe"]
    if unsubscribe is not None and "<https://" not in str(unsubscribe):
        warning("List-Unsubscribe has no https URL: Gmail and Yahoo need one for one-click")
    one_click = message["List-Unsubscribe-Post"]
    if one_click is not None and str(one_click).strip() != "List-Unsubscribe=One-Click":
        error(f"List-Unsubscribe-Post is {str(one_click)!r}, expected List-Unsubscribe=One-Click")

    if message.get_content_type() != "multipart/alternative":
        error(f"message is {message.get_content_type()}, expected multipart/alternative")
        return problems
    parts = [part for part in message.iter_parts() if isinstance(part, EmailMessage)]
    types = [part.get_content_type() for part in parts]
    if types != ["text/plain", "text/html"]:
        error(f"parts are {types}, expected text/plain then text/html")
        return problems
    text = str(parts[0].get_content())
    html = str(parts[1].get_content())

    if not text.strip():
        error("text part is empty")
    if unsubscribe_url not in text:
        error("text part has no unsubscribe link")
    too_big = size_problem(len(html.encode("utf-8")))
    if too_big:
        error(too_big)
    problems.extend(lint_html(html, unsubscribe_url, where))
    return problems


def lint_html(html: str, unsubscribe_url: str, where: str) -> list[Problem]:
    problems: list[Problem] = []
    document = lxml.html.document_fromstring(html)

    for element in document.iter("img"):
        src = element.get("src", "")
        label = f"<img src={src[:60]!r}>"
        if element.get("alt") is None:
            problems.append(Problem("error", where, f"{label} has no alt attribute"))
        if not element.get("width"):
            problems.append(Problem("warning", where, f"{label} has no width attribute (Outlook)"))
        if not src.startswith(("https://", "http://")):
            problems.append(Problem("error", where, f"{label} is not an absolute http(s) URL"))

    problems += [Problem("warning", where, message) for message in _overflow(document)]

    hrefs = [element.get("href", "") for element in document.iter("a")]
    for href in hrefs:
        if not href.startswith(("https://", "http://", "mailto:")):
            message = f"link {href[:80]!r} is not absolute http(s)/mailto"
            problems.append(Problem("error", where, message))
    if unsubscribe_url not in hrefs:
        problems.append(Problem("error", where, "HTML has no unsubscribe link"))

    for element in document.iter("link"):
        if "stylesheet" in (element.get("rel") or ""):
            problems.append(Problem("error", where, f"remote stylesheet {element.get('href')!r}"))
    for element in document.iter("style"):
        if _REMOTE_FONT.search(element.text or ""):
            problems.append(Problem("error", where, "remote font or @import in <style>"))

    leftover = sorted({match.group(0) for match in re.finditer(r"</?mj-[a-z-]+", html)})
    if leftover:
        message = f"unknown MJML tags left in HTML: {', '.join(leftover)}"
        problems.append(Problem("error", where, message))
    if document.get("lang") in (None, "", "und"):
        problems.append(Problem("warning", where, "<html> has no lang attribute"))
    return problems


def _overflow(document: lxml.html.HtmlElement) -> list[str]:
    """What makes the email wider than its column on a phone, or than 600 px in Outlook."""
    found: list[str] = []
    for element in document.iter("img"):
        width = element.get("width", "")
        if width.isdigit() and int(width) > EMAIL_WIDTH:
            found.append(
                f"<img src={element.get('src', '')[:60]!r}> is {width} px wide: Outlook draws it "
                f"at that size, wider than the {EMAIL_WIDTH} px email"
            )
    for element in document.iter():
        match = STYLE_WIDTH.search(element.get("style", "") or "")
        if match and int(match.group(1)) > EMAIL_WIDTH:
            found.append(f"<{element.tag}> has a fixed width of {match.group(1)} px")
    for element in document.iter("pre"):
        longest = max((len(line) for line in element.text_content().split("\n")), default=0)
        if longest > PRE_LINE_CHARS and not PRE_WRAPS.search(element.get("style", "") or ""):
            found.append(
                f"<pre> has a line of {longest} characters and does not wrap: it widens the "
                "email on phones"
            )
    for element in document.iter("table"):
        if element.get("role") == "presentation":
            continue  # MJML's layout tables
        columns = max((len(row.findall("td") + row.findall("th")) for row in element.iter("tr")),
                      default=0)  # fmt: skip
        if columns > TABLE_COLUMNS:
            found.append(
                f"a table with {columns} columns does not fit a phone's width: it scrolls "
                "sideways there"
            )
    return found
