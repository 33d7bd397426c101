"""How long one issue takes to render, and where the time goes.

    python3 bench/render.py [--repeat 30] [--items 10,100]

For each issue size it synthesises that many items (half with a picture, German text of
teaser length), renders the issue ``--repeat`` times with :meth:`digest.render.Renderer.render`
(Jinja2 -> MJML -> mjml-python -> premailer, plus the text part) and prints the median, then
times the stages on their own: the Jinja2 MJML template, ``mjml2html``, premailer's
``inline_css`` and the text template. ``mjml2html`` alone is the baseline measured in the same
run, so the ratio does not depend on how fast this machine happens to be today.

Per-recipient costs follow: the spliced message of :class:`digest.message.MessageTemplate`
against the same message built with ``email.message.EmailMessage``.

Weight: the HTML bytes each item adds (teaser items, half with a picture), the share of the
HTML that is ``style`` attributes, and how often the font stack is repeated, against the
templates before issue 11 (one mj-text per line of an item: 3,858 B per item, 46 % style
attributes, the font stack 92 times in a 19-item issue).

Target (design.md): a 100-item issue under 50 ms.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from mjml import mjml2html

from digest.config import load_config
from digest.i18n import greeting, labels_for
from digest.message import MessageTemplate, Recipient
from digest.models import Image, Item
from digest.render import (
    PLACEHOLDERS,
    Renderer,
    check_mjml,
    inline_css,
    normalise_text,
    split_inline_styles,
)
from digest.schedule import Period

REPO = Path(__file__).resolve().parents[1]
TARGET_MS = 50.0
BEFORE_BYTES_PER_ITEM = 3858  # the templates before issue 11, measured with this script
_STYLE_ATTRIBUTE = re.compile(r"style=(\"[^\"]*\"|'[^']*')")
AT = datetime.fromisoformat("2017-11-20T08:00:00+01:00")

TEASER = (
    "Im Rahmen der Präventionswoche fand eine Stadtführung besonderer Art statt. Vor allem die "
    "ortsfremden, einpendelnden Lehrkräfte aus Ahlener Schulen hatten dabei die Möglichkeit, "
    "die Stadt und ihre sozialen Strukturen, Akteure und Angebote kennenzulernen."
)


def synthetic_items(count: int, period: Period) -> list[Item]:
    items = []
    for number in range(count):
        published = period.end - timedelta(minutes=37 * (number + 1))
        image = (
            Image(
                src=f"https://www.example.org/media/bild-{number}.jpg",
                alt=f"Bild {number}: Lehrkräfte bei einer Stadtführung",
                width=600,
                height=338,
            )
            if number % 2 == 0
            else None
        )
        items.append(
            Item(
                source="bench",
                key=f"item-{number}",
                title=f"Meldung {number}: „Ahlen neu denken!“ – Jugendliche bringen Ideen ein",
                published_at=published,
                summary=TEASER,
                body_html=f"<p>{TEASER}</p>",
                content_hash=f"{number:064x}",
                url=f"https://www.example.org/aktuelles/meldung-{number}",
                image=image,
                tags=("Präventionswoche", "Schule") if number % 3 else ("Beteiligung",),
            )
        )
    return items


def median_ms(function: Callable[[], Any], repeat: int) -> float:
    function()  # warm up: template compilation, imports, caches
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def bench_issue(renderer: Renderer, count: int, period: Period, repeat: int) -> dict[str, float]:
    items = synthetic_items(count, period)
    # Stage by stage, with the same inputs Renderer.render uses (internal API: bench only).
    context = renderer._context("weekly", items, period)
    context["issue"].update(subject="Betreff", preheader="Vorschau")
    rendered_mjml = renderer._render_template("digest.mjml", context)
    mjml_source, css = split_inline_styles(rendered_mjml)
    html = mjml2html(mjml_source, disable_comments=True, fonts={})
    issue = renderer.render("weekly", items, period)
    return {
        "total": median_ms(lambda: renderer.render("weekly", items, period), repeat),
        "jinja": median_ms(lambda: renderer._render_template("digest.mjml", context), repeat),
        "check": median_ms(lambda: check_mjml(rendered_mjml, "digest.mjml"), repeat),
        "mjml": median_ms(lambda: mjml2html(mjml_source, disable_comments=True, fonts={}), repeat),
        "premailer": median_ms(lambda: inline_css(html, css), repeat),
        "text": median_ms(
            lambda: normalise_text(renderer._render_template("digest.txt", context)), repeat
        ),
        "html_kb": len(issue.html.encode()) / 1024,
    }


def bench_message(renderer: Renderer, period: Period, repeat: int) -> tuple[float, float]:
    """Milliseconds per recipient: spliced template vs. EmailMessage (10-item issue)."""
    issue = renderer.render("weekly", synthetic_items(10, period), period)
    sender = "Präventionskette Ahlen <newsletter@example.org>"
    list_id = "Wochenüberblick <weekly.www.example.org>"
    template = MessageTemplate(issue, sender=sender, list_id=list_id)
    name = "Jürgen Müller"
    recipient = Recipient(
        email="juergen@example.org",
        name=name,
        unsubscribe_url="https://www.example.org/unsubscribe/abcdef0123456789",
        preferences_url="https://www.example.org/preferences/abcdef0123456789",
        greeting=greeting(labels_for("de_DE"), name),
    )

    def spliced() -> bytes:
        return template.build(recipient, message_id="<a.b@example.org>", date=AT)

    def slow() -> bytes:
        text, html = issue.text, issue.html
        for field, token in PLACEHOLDERS.items():
            text = text.replace(token, recipient.value(field))
            html = html.replace(token, recipient.value(field))
        message = EmailMessage()
        message["Date"] = AT
        message["Message-ID"] = "<a.b@example.org>"
        message["From"] = sender
        message["To"] = f"{name} <{recipient.email}>"
        message["Subject"] = issue.subject
        message["List-Id"] = list_id
        message["List-Unsubscribe"] = f"<{recipient.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        return message.as_bytes(policy=policy.SMTP)

    return median_ms(spliced, repeat * 10), median_ms(slow, repeat)


def bench_weight(renderer: Renderer, period: Period, count: int = 19) -> dict[str, float]:
    """HTML bytes per item (the growth from 1 to ``count`` items), style share, font stacks."""
    one = renderer.render("weekly", synthetic_items(1, period), period).html
    many = renderer.render("weekly", synthetic_items(count, period), period).html
    size = len(many.encode())
    styles = sum(len(match.group(0)) for match in _STYLE_ATTRIBUTE.finditer(many))
    return {
        "per_item": (size - len(one.encode())) / (count - 1),
        "style_share": styles / size,
        "font_stacks": many.count("BlinkMacSystemFont"),
        "kb": size / 1024,
        "count": count,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=30, help="runs per measurement (median)")
    parser.add_argument("--items", default="10,100", help="issue sizes, comma separated")
    args = parser.parse_args(argv)

    loaded = load_config(REPO / "config.example.yaml", environ={})
    renderer = Renderer(loaded)
    period = loaded.schedule("weekly").period_ending(AT)

    print(f"render one issue, median of {args.repeat} runs (ms)")
    header = (
        f"{'items':>5} {'total':>7} {'jinja':>7} {'check':>6} {'mjml':>7} {'premailer':>9} {'text':>6}"
        f" {'premailer share':>15} {'total/mjml':>10} {'HTML KB':>8}  target"
    )
    print(header)
    within_target = True
    for count in (int(part) for part in args.items.split(",")):
        result = bench_issue(renderer, count, period, args.repeat)
        share = result["premailer"] / result["total"]
        ratio = result["total"] / result["mjml"]
        verdict = "ok" if result["total"] < TARGET_MS else f"OVER {TARGET_MS:.0f} ms"
        if count >= 100 and result["total"] >= TARGET_MS:
            within_target = False
        print(
            f"{count:>5} {result['total']:>7.1f} {result['jinja']:>7.1f} {result['check']:>6.1f}"
            f" {result['mjml']:>7.1f}"
            f" {result['premailer']:>9.1f} {result['text']:>6.1f} {share:>15.0%} {ratio:>9.0f}x"
            f" {result['html_kb']:>8.1f}  {verdict}"
        )
    weight = bench_weight(renderer, period)
    print(
        f"weight ({weight['count']:.0f} items, {weight['kb']:.1f} KB): "
        f"{weight['per_item']:.0f} B of HTML per item (before issue 11: "
        f"{BEFORE_BYTES_PER_ITEM} B, {weight['per_item'] / BEFORE_BYTES_PER_ITEM - 1:+.0%}), "
        f"style attributes {weight['style_share']:.0%} of the HTML, "
        f"font stack {weight['font_stacks']:.0f} times"
    )
    spliced, slow = bench_message(renderer, period, args.repeat)
    print(
        f"per recipient (10-item issue): spliced {spliced * 1000:.0f} µs, "
        f"EmailMessage {slow:.2f} ms ({slow / spliced:.0f}x slower)"
    )
    return 0 if within_target else 1


if __name__ == "__main__":
    sys.exit(main())
