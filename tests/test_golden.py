"""Snapshot of the sample digest: ``digest build weekly --at 2017-11-20T08:00:00+01:00``.

The golden files hold exactly what a subscriber of the sample site would get that Monday
(the week of the "Präventionswoche": the items of 14, 16 and 17 November 2017). Message-ID,
Date and the MIME boundary differ per build and are blanked before comparing.

After an intended change to templates or rendering, regenerate and review the diff:

    DIGEST_UPDATE_GOLDEN=1 python3 -m pytest tests/test_golden.py
    git diff tests/golden/
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import GOLDEN, SAMPLE_WEEK_TITLES, Site

UPDATE = os.environ.get("DIGEST_UPDATE_GOLDEN") == "1"
STEM = "weekly-2017-11-20"


def normalise_eml(data: bytes) -> bytes:
    """Blank what changes from build to build: Message-ID, Date and the MIME boundary."""
    data = re.sub(rb"(?m)^Date: [^\r\n]*(\r\n[ \t][^\r\n]*)*", b"Date: <DATE>", data)
    data = re.sub(
        rb"(?m)^Message-ID: [^\r\n]*(\r\n[ \t][^\r\n]*)*", b"Message-ID: <MESSAGE-ID>", data
    )
    return re.sub(rb"=_digest_[0-9a-f]+", b"=_digest_BOUNDARY", data)


@pytest.mark.parametrize("suffix", ["html", "txt", "eml"])
def test_build_matches_golden_file(built: Path, suffix: str) -> None:
    actual = (built / f"email.{suffix}").read_bytes()
    if suffix == "eml":
        actual = normalise_eml(actual)
    golden = GOLDEN / f"{STEM}.{suffix}"
    if UPDATE:
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(actual)
    assert golden.exists(), f"{golden} is missing: run with DIGEST_UPDATE_GOLDEN=1"
    expected = golden.read_bytes()
    if actual != expected:
        # Compare as text so pytest shows a readable diff of the first differences.
        assert actual.decode("utf-8") == expected.decode("utf-8"), (
            f"{golden.name} differs from the build; if the change is intended, regenerate "
            "with DIGEST_UPDATE_GOLDEN=1 and review git diff tests/golden/"
        )


def test_normalise_eml_blanks_only_volatile_values() -> None:
    raw = (
        b"Date: Mon, 20 Nov 2017 08:00:00 +0100\r\n"
        b"Message-ID: <weekly.2017-11-20-0700.0123abcd@example.org>\r\n"
        b"Subject: Date: stays\r\n"
        b'Content-Type: multipart/alternative; boundary="=_digest_0a1b2c"\r\n\r\n'
        b"--=_digest_0a1b2c\r\n"
    )
    assert normalise_eml(raw) == (
        b"Date: <DATE>\r\n"
        b"Message-ID: <MESSAGE-ID>\r\n"
        b"Subject: Date: stays\r\n"
        b'Content-Type: multipart/alternative; boundary="=_digest_BOUNDARY"\r\n\r\n'
        b"--=_digest_BOUNDARY\r\n"
    )


def _positions(document: str, titles: tuple[str, ...]) -> list[int]:
    return [document.find(title) for title in titles]


def _sample_titles(site: Site) -> dict[str, str]:
    """Title -> date (YYYY-MM-DD) of every sample content file."""
    result: dict[str, str] = {}
    for path in sorted(site.content.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        title = re.search(r'(?m)^title: "?(.*?)"?$', text)
        date = re.search(r"(?m)^date: (\d{4}-\d{2}-\d{2})", text)
        assert title and date, path
        result[title.group(1)] = date.group(1)
    return result


@pytest.mark.parametrize("suffix", ["txt", "html"])
def test_golden_shows_exactly_the_sample_week_newest_first(site: Site, suffix: str) -> None:
    document = (GOLDEN / f"{STEM}.{suffix}").read_text(encoding="utf-8")
    positions = _positions(document, SAMPLE_WEEK_TITLES)
    assert all(position >= 0 for position in positions), positions
    assert positions == sorted(positions), "items must be newest first (17, 16, 14 November)"
    for date in ("17. November 2017", "16. November 2017", "14. November 2017"):
        assert date in document
    others = {
        title: date
        for title, date in _sample_titles(site).items()
        if date not in ("2017-11-14", "2017-11-16", "2017-11-17")
    }
    assert len(others) == 7
    for title in others:
        assert title not in document, f"{title!r} is not from the week of 13-20 November"


def test_golden_text_part_reads_well() -> None:
    text = (GOLDEN / f"{STEM}.txt").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[:2] == ["Präventionskette Ahlen", "Wochenüberblick"]
    assert "Hallo Erika Mustermann," in lines
    assert text.count("Weiterlesen: https://www.example.org/praeventionskette/aktuelles/") == 3
    assert "Abmelden: https://www.example.org/praeventionskette/unsubscribe/SAMPLE-TOKEN" in lines
    assert "__digest_" not in text  # every placeholder was filled
    assert "<" not in text.replace("<https", "")  # no markup leaked into the text part
    # Prose is wrapped for plain-text readers; only lines with a URL may run long.
    long_lines = [line for line in lines if len(line) > 78 and "https://" not in line]
    assert long_lines == []


def test_golden_html_basics() -> None:
    html = (GOLDEN / f"{STEM}.html").read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>")
    assert '<html lang="de"' in html
    assert '<meta name="color-scheme" content="light dark">' in html
    assert "prefers-color-scheme: dark" in html
    assert "__digest_" not in html
    assert "fonts.googleapis.com" not in html and "<link" not in html
    assert html.count('alt="') >= 3
    assert len(html.encode()) < 100 * 1024
