"""The hostile corpus (tests/hostile.py) through a real build and a real send (aiosmtpd).

Control characters, impossible dates, an alias bomb, placeholder text, scripts, wide pictures,
long ``pre`` lines, tables and a 10 MB body among the sample week: the good items reach every
subscriber (cleaned where they needed it), every bad file is named, the whole run stays
within 10 s and 500 MB, and no received message carries another subscriber's token.
"""

from __future__ import annotations

import os
import subprocess
import sys
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


# Runs digest.cli as ``digest`` would and reports the process's own CPU time and peak memory
# (RUSAGE_CHILDREN in the test process would also count Chromium from the browser tests).
_MEASURED = """
import resource, runpy, sys
sys.argv = ["digest", *sys.argv[1:]]
try:
    runpy.run_module("digest.cli", run_name="__main__")
finally:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"RUSAGE {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}", file=sys.stderr)
"""


def digest_cli(site: Site, *argv: str) -> tuple[subprocess.CompletedProcess[str], float, int]:
    """Run ``digest`` in a child process: its result, CPU seconds and peak memory (bytes).

    CPU time, not wall time: the machine running the tests is shared, and a wall clock
    measures the neighbours as well."""
    result = subprocess.run(
        [sys.executable, "-c", _MEASURED, "-c", str(site.config), *argv],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONUTF8": "1"},
    )  # fmt: skip
    result.stderr, _, usage = result.stderr.rstrip("\n").rpartition("\n")
    assert usage.startswith("RUSAGE "), usage
    _, cpu, maxrss = usage.split()
    return result, float(cpu), int(maxrss) * 1024


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
        result, cpu, peak = digest_cli(site, "send", "weekly", "--at", AT_TEXT, "--yes")
        assert result.returncode == 0, result.stderr
        assert cpu < 10, f"send took {cpu:.1f} s of CPU"
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
