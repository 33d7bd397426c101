"""One size, one limit: the builder trims the issue by the HTML as sent (placeholders filled
with the longest values a subscriber can have), and ``digest check`` measures the same."""

from __future__ import annotations

import re
from pathlib import Path

from digest.models import PLACEHOLDERS
from digest.size import HTML_SIZE_LIMIT, longest_values, sent_html_size
from tests.conftest import AT_TEXT, CliRunner, Site

BODY = "Ein Absatz mit etwas Text, der die Meldung länger macht. " * 40


def bulk(site: Site, count: int = 40) -> None:
    site.replace_in_config("max_items: 20", "max_items: 200")
    for n in range(count):
        site.write(
            f"content/bulk-{n:02d}.md",
            f"---\ntitle: Meldung {n:02d}\ndate: 2017-11-15T{n // 6:02d}:{n % 6 * 10:02d}:00+01:00\n"
            f"url: https://www.example.org/bulk/{n}\nsummary: {BODY[:280]}\n---\n{BODY}\n",
        )


def test_the_sent_size_counts_every_placeholder_filled() -> None:
    labels = {"greeting_named": "Hallo {name},", "greeting_anonymous": "Hallo,"}
    html = "<p>__digest_greeting__</p>" + '<a href="__digest_unsubscribe_url__">x</a>' * 2
    longest = longest_values("https://example.org", labels)
    filled = html
    for field, token in PLACEHOLDERS.items():
        filled = filled.replace(token, longest[field])
    assert sent_html_size(html, "https://example.org", labels) == len(filled.encode())
    assert len(filled) > len(html)


def test_check_agrees_with_the_builder_and_quotes_one_limit(
    site: Site, cli: CliRunner, tmp_path: Path
) -> None:
    bulk(site)
    check = cli("-c", site.config, "check", "weekly", "--at", AT_TEXT)
    assert check.code == 0, check.out + check.err
    assert "HTML ist" not in check.out + check.err  # no size finding on what the builder made
    match = re.search(  # the sample site is German
        r"weekly: (\d+) Beiträge in der nächsten Ausgabe, HTML ([\d.]+) KB \(Grenze 90 KB\)",
        check.out,
    )
    assert match, check.out
    items, kb = int(match.group(1)), float(match.group(2))
    assert 3 < items < 43 and kb <= HTML_SIZE_LIMIT / 1024
    assert kb > 0.8 * HTML_SIZE_LIMIT / 1024  # filled close to the limit, not far below it

    out = tmp_path / "out"
    build = cli("-c", site.config, "build", "weekly", "--out", out, "--at", AT_TEXT)
    assert build.code == 0, build.err
    html = (out / "email.html").read_text(encoding="utf-8")
    assert html.count('class="item-title"') == items  # the same issue as check's
    assert len(html.encode()) <= HTML_SIZE_LIMIT
    waiting = 43 - items
    note = f"{waiting} weitere Beiträge passten nicht mehr in diese E-Mail"
    assert note in html and note in (out / "email.txt").read_text(encoding="utf-8")
