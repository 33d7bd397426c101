"""The packaged templates give Outlook the same widths in mjml-python as in official MJML.

Outlook desktop draws the ``<!--[if mso | IE]>`` tables, whose pixel widths MJML computes from
the paddings. mjml-python once ignored a horizontal padding given in a 3- or 4-value shorthand
(the divider under a group heading came out 600 px instead of 536). This renders the packaged
templates' MJML with both and compares every Outlook width and every picture width.

Official MJML is the npm package ``mjml`` (``.ci/run`` installs it under
``~/.cache/digest-mjml``; ``DIGEST_MJML`` may name another ``mjml`` executable). Where node or
the package is missing, the test is skipped: it never downloads anything.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from mjml import mjml2html

from digest.config import load_config
from digest.models import Image, Item
from digest.render import Renderer, split_inline_styles
from tests.conftest import AT, REPO

OFFICIAL = Path(
    os.environ.get("DIGEST_MJML", Path.home() / ".cache/digest-mjml/node_modules/.bin/mjml")
)
pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not OFFICIAL.exists(),
    reason="official MJML (node + npm package mjml) is not installed",
)
_OUTLOOK = re.compile(r"<!--\[if mso \| IE\]>(.*?)<!\[endif\]-->", re.S)
_WIDTH = re.compile(r'\bwidth="(\d+)(?:px)?"|\bwidth:\s*(\d+)px')
_IMG_WIDTH = re.compile(r'<img\b[^>]*?\bwidth="(\d+)"')


def outlook_widths(html: str) -> list[str]:
    widths = [a or b for block in _OUTLOOK.findall(html) for a, b in _WIDTH.findall(block)]
    return widths + ["img " + width for width in _IMG_WIDTH.findall(html)]


def official(mjml_source: str) -> str:
    result = subprocess.run(
        [str(OFFICIAL), "-i", "-s", "--config.minify=false", "--config.validationLevel=skip"],
        input=mjml_source, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return result.stdout


def items(count: int, end: datetime) -> list[Item]:
    result = []
    for number in range(count):
        teaser = number % 2 == 0
        result.append(
            Item(
                source="t",
                key=f"i{number}",
                title=f"Item {number}",
                published_at=end - timedelta(hours=number + 1),
                summary="A teaser.",
                content_hash=str(number),
                body_html='<p>Body</p><img src="https://example.org/w.png" width="1200" alt="w">'
                "<table><tr><td>a</td><td>b</td></tr></table><pre>x = 1</pre>",
                url=f"https://example.org/{number}" if teaser else None,
                image=Image(src="https://example.org/p.jpg", alt="p", width=600, height=300)
                if teaser
                else None,
                tags=("Schule",) if number % 3 else ("Beteiligung",),
            )
        )
    return result


@pytest.mark.parametrize("digest", ["weekly", "monthly"])  # group_by none, and by tag
def test_outlook_widths_match_official_mjml(digest: str) -> None:
    loaded = load_config(REPO / "config.example.yaml", environ={})
    renderer = Renderer(loaded)
    period = loaded.schedule(digest).period_ending(AT)
    context = renderer._context(digest, items(6, period.end), period)
    context["issue"].update(subject="Subject", preheader="Preheader")
    source, _css = split_inline_styles(renderer._render_template("digest.mjml", context))
    ours = outlook_widths(mjml2html(source, disable_comments=True, fonts={}))
    theirs = outlook_widths(official(source))
    assert ours == theirs
    # the text column, as Outlook draws the group dividers and the pictures
    assert {"img 536"} <= set(ours) and ("536" in ours) == (digest == "monthly")
