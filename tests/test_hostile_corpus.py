"""The hostile corpus (tests/hostile.py) through a real build and a real send (aiosmtpd).

Control characters, impossible dates, an alias bomb, placeholder text, scripts, wide pictures,
long ``pre`` lines, tables and a 10 MB body among the sample week: the good items reach every
subscriber (cleaned where they needed it), every bad file is named, the whole run stays
within 10 s and 500 MB, and no received message carries another subscriber's token.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from digest.store import Store
from tests.browser import BROWSER_TESTS, chromium
from tests.conftest import AT_TEXT, SAMPLE_WEEK_TITLES, CliRunner, Site
from tests.hostile import PLACEHOLDER_TEXTS, write_corpus
from tests.smtp_server import import_subscribers, no_defects, running, use_smtp

SUBSCRIBERS = (
    "email,name,digests\n"
    "anna@example.net,Anna,weekly\n"
    f"long@example.net,{'N' * 3000},weekly\n"
    "mime@example.net,=?utf-8?q?J=C3=BCrgen?=,weekly\n"
    'formula@example.net,"=HYPERLINK(""https://evil.example"",""x"")",weekly\n'
    "ctrl@example.net,Bert\x1b[31m Rot,weekly\n"
    "plain@example.net,,weekly\n"
)


def digest_cli(site: Site, *argv: str) -> tuple[subprocess.CompletedProcess[str], float, int]:
    """Run ``digest`` in a child process: its result, seconds and peak memory (bytes)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "digest.cli", "-c", str(site.config), *argv],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONUTF8": "1"},
    )  # fmt: skip
    elapsed = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest child so far: a smaller child reads as the old peak
    return result, elapsed, max(peak, before) * 1024


def tokens(site: Site) -> dict[str, str]:
    store = Store.open(site.load().database_url)
    try:
        return {subscriber.email: subscriber.token for subscriber in store.list_subscribers()}
    finally:
        store.close()


def test_a_hostile_week_is_built_and_sent_and_leaks_nothing(site: Site, cli: CliRunner) -> None:
    titles, bad = write_corpus(site)
    import_subscribers(site, cli, SUBSCRIBERS)
    by_address = tokens(site)
    assert len(by_address) == 6
    with running() as server:
        use_smtp(site.config, server.port, connections=2)
        result, elapsed, peak = digest_cli(site, "send", "weekly", "--at", AT_TEXT, "--yes")
        assert result.returncode == 0, result.stderr
        assert elapsed < 10, f"send took {elapsed:.1f} s"
        assert peak < 500 * 1024 * 1024, f"send peaked at {peak / 2**20:.0f} MB"
        received = server.received
    assert "Traceback" not in result.stderr
    for item in bad:  # each bad file named, with its reason
        assert any(item.file in line and item.reason in line for line in result.stderr.splitlines())
    assert "hostile-07-big: body of 10.0 MB is too long for an email" in result.stderr

    assert sorted(rcpt for message in received for rcpt in message.rcpt_tos) == sorted(by_address)
    for message in received:
        (rcpt,) = message.rcpt_tos
        parsed = message.message
        assert no_defects(parsed) == []
        html_part, text_part = parsed.get_body(("html",)), parsed.get_body(("plain",))
        assert html_part is not None and text_part is not None
        html, text = str(html_part.get_content()), str(text_part.get_content())
        for title in [*SAMPLE_WEEK_TITLES, *titles]:
            assert title[:40] in html and title[:40] in text, title
        decoded = html + text + str(parsed)
        assert by_address[rcpt] in decoded  # the reader's own links ...
        for other, token in by_address.items():  # ... and nobody else's
            if other != rcpt:
                assert token not in decoded, f"{other}'s token in the message to {rcpt}"
        assert "<script" not in html and "onclick" not in html and "javascript:" not in html
        assert "\x1b" not in decoded and "\x01" not in decoded
        assert all(text_ not in html + text for text_ in PLACEHOLDER_TEXTS)
        assert len(html.encode()) <= 90 * 1024


@pytest.fixture(scope="module")
def browser() -> Any:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with chromium(playwright_api) as instance:
        yield instance


@pytest.mark.parametrize("width", [375, 600])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@BROWSER_TESTS[0]
@BROWSER_TESTS[1]
def test_the_hostile_week_fits_a_phone(
    browser: Any, site: Site, tmp_path: Path, width: int, scheme: str
) -> None:
    from tests.test_email_screenshot import open_email, save

    write_corpus(site, big_mb=1)
    out = tmp_path / "out"
    result, _, _ = digest_cli(site, "build", "weekly", "--out", str(out), "--at", AT_TEXT)
    assert result.returncode == 0, result.stderr
    page = open_email(browser, out / "email.html", width, scheme)
    try:
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{scroll_width}px wide content at a {width}px viewport"
        overflowing = page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => "
            f"e.getBoundingClientRect().right > {width} + 0.5"
            " && !(e.parentElement && e.parentElement.closest('[style*=overflow-x]')))"
            ".map(e => e.tagName)"
        )
        assert overflowing == []
        save(page, tmp_path, f"hostile-{width}-{scheme}")
    finally:
        page.close()


def test_the_preview_shows_the_hostile_week_and_names_the_bad_files(site: Site) -> None:
    from tests.test_web import make_web

    _, bad = write_corpus(site, big_mb=1)
    for web in make_web(site):
        web.login()
        page = web.client.get("/preview/weekly")
        assert page.status_code == 200  # an impossible date used to answer 500
        for item in bad:
            assert item.file in page.text
        html = web.client.get("/preview/weekly.html")
        assert html.status_code == 200
        assert "Platzhalter im Inhalt" in html.text and "Tabellen" in html.text
