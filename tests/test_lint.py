"""``digest check``'s linter: crafted bad HTML and messages, each finding asserted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from digest.lint import lint_html, lint_message
from digest.models import Problem

UNSUBSCRIBE = "https://www.example.org/unsubscribe/TOKEN"
WHERE = "digest weekly"


def page(body: str, head: str = "", lang: str = "de") -> str:
    return (
        f'<!doctype html><html lang="{lang}"><head><title>t</title>{head}</head><body>{body}'
        f'<a href="{UNSUBSCRIBE}">Abmelden</a></body></html>'
    )


def findings(problems: list[Problem]) -> list[tuple[str, str]]:
    assert all(problem.where == WHERE for problem in problems)
    return [(problem.severity, problem.message) for problem in problems]


def test_clean_html_has_no_findings() -> None:
    html = page(
        '<img src="https://www.example.org/a.jpg" alt="Ein Bild" width="536">'
        '<a href="https://www.example.org/a">a</a> <a href="mailto:info@example.org">m</a>'
    )
    assert lint_html(html, UNSUBSCRIBE, WHERE) == []


def test_img_without_alt_or_width() -> None:
    html = page('<img src="https://www.example.org/a.jpg">')
    assert findings(lint_html(html, UNSUBSCRIBE, WHERE)) == [
        ("error", "<img src='https://www.example.org/a.jpg'> has no alt attribute"),
        ("warning", "<img src='https://www.example.org/a.jpg'> has no width attribute (Outlook)"),
    ]


def test_empty_alt_is_fine_for_decoration() -> None:
    html = page('<img src="https://www.example.org/line.png" alt="" width="600">')
    assert lint_html(html, UNSUBSCRIBE, WHERE) == []


def test_relative_image_and_links() -> None:
    html = page(
        '<img src="/media/a.jpg" alt="A" width="10">'
        '<a href="/aktuelles/a">relativ</a><a href="javascript:alert(1)">js</a><a>no href</a>'
    )
    assert findings(lint_html(html, UNSUBSCRIBE, WHERE)) == [
        ("error", "<img src='/media/a.jpg'> is not an absolute http(s) URL"),
        ("error", "link '/aktuelles/a' is not absolute http(s)/mailto"),
        ("error", "link 'javascript:alert(1)' is not absolute http(s)/mailto"),
        ("error", "link '' is not absolute http(s)/mailto"),
    ]


def test_google_fonts_link_and_remote_css() -> None:
    head = (
        '<link href="https://fonts.googleapis.com/css?family=Roboto" rel="stylesheet">'
        "<style>@import url(https://example.org/x.css); p { color: red }</style>"
        "<style>@font-face { font-family: X; src: url('https://example.org/x.woff2') }</style>"
        "<style>@import 'https://example.org/y.css';</style>"
    )
    assert findings(lint_html(page("<p>x</p>", head=head), UNSUBSCRIBE, WHERE)) == [
        ("error", "remote stylesheet 'https://fonts.googleapis.com/css?family=Roboto'"),
        ("error", "remote font or @import in <style>"),
        ("error", "remote font or @import in <style>"),
        ("error", "remote font or @import in <style>"),
    ]


def test_leftover_mjml_tags() -> None:
    html = page("<mj-foo><p>x</p></mj-foo><mj-bar/>")
    assert findings(lint_html(html, UNSUBSCRIBE, WHERE)) == [
        ("error", "unknown MJML tags left in HTML: </mj-foo, <mj-bar, <mj-foo"),
    ]


def test_missing_unsubscribe_link_and_lang() -> None:
    html = '<html><body><a href="https://www.example.org/other">x</a></body></html>'
    assert findings(lint_html(html, UNSUBSCRIBE, WHERE)) == [
        ("error", "HTML has no unsubscribe link"),
        ("warning", "<html> has no lang attribute"),
    ]


# --- whole messages ------------------------------------------------------------------------


def message(
    *,
    headers: dict[str, str] | None = None,
    text: str = f"Hallo\r\nAbmelden: {UNSUBSCRIBE}\r\n",
    html: str | None = None,
    parts: tuple[str, str] = ("plain", "html"),
) -> bytes:
    """A hand-made multipart/alternative message (8bit, CRLF)."""
    values = {
        "Date": "Mon, 20 Nov 2017 08:00:00 +0100",
        "Message-ID": "<a.b@example.org>",
        "From": "News <newsletter@example.org>",
        "To": "reader@example.org",
        "Subject": "Betreff",
        "List-Unsubscribe": f"<{UNSUBSCRIBE}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": "News <weekly.example.org>",
        "MIME-Version": "1.0",
        "Content-Type": 'multipart/alternative; boundary="B"',
    }
    values.update(headers or {})
    head = "".join(f"{name}: {value}\r\n" for name, value in values.items() if value)
    bodies = {"plain": text, "html": html if html is not None else page("<p>Inhalt</p>")}
    body = "".join(
        f'--B\r\nContent-Type: text/{kind}; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{bodies[kind]}\r\n"
        for kind in parts
    )
    return f"{head}\r\n{body}--B--\r\n".encode()


def lint(raw: bytes) -> list[tuple[str, str]]:
    return findings(lint_message(raw, UNSUBSCRIBE, WHERE))


def test_clean_message_has_no_findings() -> None:
    assert lint(message()) == []


def test_sample_build_lints_clean(built: Path) -> None:
    raw = (built / "email.eml").read_bytes()
    unsubscribe = "https://www.example.org/praeventionskette/unsubscribe/SAMPLE-TOKEN"
    assert lint_message(raw, unsubscribe, WHERE) == []


@pytest.mark.parametrize(
    "header",
    [
        "Date",
        "Message-ID",
        "From",
        "To",
        "Subject",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "List-Id",
    ],
)
def test_each_missing_header_is_an_error(header: str) -> None:
    assert lint(message(headers={header: ""})) == [("error", f"header {header} is missing")]


def test_unsubscribe_headers_must_be_rfc8058() -> None:
    raw = message(
        headers={
            "List-Unsubscribe": "<mailto:leave@example.org>",
            "List-Unsubscribe-Post": "yes",
        }
    )
    assert lint(raw) == [
        ("warning", "List-Unsubscribe has no https URL: Gmail and Yahoo need one for one-click"),
        ("error", "List-Unsubscribe-Post is 'yes', expected List-Unsubscribe=One-Click"),
    ]


def test_text_part_without_unsubscribe_link_or_empty() -> None:
    assert lint(message(text="Hallo\r\n")) == [("error", "text part has no unsubscribe link")]
    assert lint(message(text="  \r\n")) == [
        ("error", "text part is empty"),
        ("error", "text part has no unsubscribe link"),
    ]


def test_parts_in_the_wrong_order_or_missing() -> None:
    assert lint(message(parts=("html", "plain"))) == [
        ("error", "parts are ['text/html', 'text/plain'], expected text/plain then text/html")
    ]
    only_html = message(parts=("html",))
    assert lint(only_html) == [
        ("error", "parts are ['text/html'], expected text/plain then text/html")
    ]
    single = message(headers={"Content-Type": 'text/plain; charset="utf-8"'})
    assert lint(single) == [("error", "message is text/plain, expected multipart/alternative")]


def test_html_over_the_limit_names_one_limit() -> None:
    big = page("<p>" + "x" * 110 * 1024 + "</p>")
    raw = message(html="\r\n".join(big[i : i + 900] for i in range(0, len(big), 900)))
    (problem,) = lint(raw)
    assert problem[0] == "error"
    assert re.fullmatch(
        r"HTML is 110\.\d KB, over the 90 KB limit: Gmail clips messages from about 99 KB "
        "and hides the unsubscribe link",
        problem[1],
    )


def test_what_still_overflows_the_column_is_flagged() -> None:
    wide = (
        '<img src="https://example.org/w.png" alt="w" width="1200">'
        '<div style="width:900px">fixed</div>'
        "<pre>" + "x" * 120 + "</pre>"
        '<pre style="white-space:pre-wrap">' + "y" * 120 + "</pre>"
        "<table><tr>" + "<td>c</td>" * 7 + "</tr></table>"
    )
    messages = [text for severity, text in lint(message(html=page(wide))) if severity == "warning"]
    assert messages == [
        "<img src='https://example.org/w.png'> is 1200 px wide: Outlook draws it at that size, "
        "wider than the 600 px email",
        "<div> has a fixed width of 900 px",
        "<pre> has a line of 120 characters and does not wrap: it widens the email on phones",
        "a table with 7 columns does not fit a phone's width: it scrolls sideways there",
    ]


def test_overlong_line() -> None:
    raw = message(text=f"Abmelden: {UNSUBSCRIBE} " + "x" * 1000 + "\r\n")
    problems = lint(raw)
    assert problems[0][0] == "error"
    assert problems[0][1].startswith("message line ") and "(SMTP allows 998)" in problems[0][1]
    assert len(problems) == 1


def test_html_findings_are_reported_for_the_message() -> None:
    raw = message(html=page('<img src="https://www.example.org/a.jpg" width="1">'))
    assert lint(raw) == [
        ("error", "<img src='https://www.example.org/a.jpg'> has no alt attribute")
    ]
