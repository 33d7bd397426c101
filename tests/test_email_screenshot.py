"""The sample email in headless Chromium: no horizontal scrolling on a phone, pictures keep
their shape, dark mode stays readable. Screenshots go to the test's tmp folder (and to
``$DIGEST_SCREENSHOTS`` when set, to look at them).

Images of the sample content live on example.org and are never fetched: requests for them
get a 600x338 placeholder, every other network request is refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import BROWSER_TESTS, chromium

pytestmark = BROWSER_TESTS
playwright_api = pytest.importorskip("playwright.sync_api")

PLACEHOLDER = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="600" height="338" viewBox="0 0 600 338">'
    '<rect width="600" height="338" fill="#8fa3b5"/><circle cx="300" cy="169" r="120" '
    'fill="#c9d4de"/></svg>'
)
WIDTHS = (375, 600)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(playwright_api) as instance:
        yield instance


def _route(route: Any) -> None:
    url: str = route.request.url
    if url.startswith("file:"):
        route.continue_()
    elif url.endswith((".jpg", ".jpeg", ".png", ".gif", ".webp")):
        route.fulfill(status=200, content_type="image/svg+xml", body=PLACEHOLDER)
    else:
        route.abort()


def open_email(browser: Any, html: Path, width: int, scheme: str = "light") -> Any:
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page.route("**/*", _route)
    page.goto(html.as_uri())
    page.wait_for_load_state("load")
    return page


def save(page: Any, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    extra = os.environ.get("DIGEST_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(extra) / f"{name}.png"), full_page=True)
    return path


@pytest.mark.parametrize("width", WIDTHS)
def test_no_horizontal_scrolling(browser: Any, built: Path, tmp_path: Path, width: int) -> None:
    page = open_email(browser, built / "email.html", width)
    try:
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{scroll_width}px wide content at a {width}px viewport"
        widest = page.evaluate(
            "Math.max(...[...document.querySelectorAll('body *')]"
            ".map(e => e.getBoundingClientRect().right))"
        )
        assert widest <= width + 0.5
        shot = save(page, tmp_path, f"email-{width}")
        assert shot.stat().st_size > 10_000
    finally:
        page.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_pictures_keep_their_aspect_ratio(browser: Any, built: Path, width: int) -> None:
    page = open_email(browser, built / "email.html", width)
    try:
        boxes = page.evaluate(
            "[...document.images].map(i => [i.complete && i.naturalWidth > 0,"
            " i.getBoundingClientRect().width, i.getBoundingClientRect().height])"
        )
        assert len(boxes) == 3
        for loaded, box_width, box_height in boxes:
            assert loaded
            assert box_width <= min(536, width - 2 * 16)
            assert box_height == pytest.approx(box_width * 338 / 600, abs=1.5)
    finally:
        page.close()


def _luminance(rgb: str) -> float:
    channels = [int(part) / 255 for part in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    lighter, darker = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


# Each text element and the element whose background it sits on.
TEXT_ON_BACKGROUND = """
() => {
  const background = (element) => {
    for (let e = element; e; e = e.parentElement) {
      const color = getComputedStyle(e).backgroundColor;
      if (color !== 'rgba(0, 0, 0, 0)' && color !== 'transparent') return color;
    }
    return 'rgb(255, 255, 255)';
  };
  const texts = [...document.querySelectorAll('h1, h2, h3, p, a, td > div')]
    .filter(e => e.offsetParent !== null && e.innerText.trim() && e.children.length === 0);
  return texts.map(e => [e.innerText.trim().slice(0, 40), getComputedStyle(e).color,
                         background(e), parseFloat(getComputedStyle(e).fontSize)]);
}
"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_is_readable(browser: Any, built: Path, tmp_path: Path, scheme: str) -> None:
    page = open_email(browser, built / "email.html", 600, scheme)
    try:
        samples = page.evaluate(TEXT_ON_BACKGROUND)
        assert len(samples) > 20
        poor = [
            (text, color, back, round(contrast(color, back), 2))
            for text, color, back, _size in samples
            if contrast(color, back) < 4.5  # WCAG AA for body text
        ]
        assert poor == []
        page_background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        if scheme == "dark":
            assert _luminance(page_background) < 0.05
        else:
            assert _luminance(page_background) > 0.8
        save(page, tmp_path, f"email-600-{scheme}")
    finally:
        page.close()


# A picture that does not load shows its alt text in the img's own colour.
ALT_ON_BACKGROUND = """
() => [...document.images].map(i => {
  let back = 'rgb(255, 255, 255)';
  for (let e = i.parentElement; e; e = e.parentElement) {
    const color = getComputedStyle(e).backgroundColor;
    if (color !== 'rgba(0, 0, 0, 0)' && color !== 'transparent') { back = color; break; }
  }
  return [i.alt, getComputedStyle(i).color, back];
})
"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_alt_text_of_pictures_that_do_not_load_is_readable(
    browser: Any, built: Path, scheme: str
) -> None:
    page = open_email(browser, built / "email.html", 600, scheme)
    try:
        samples = page.evaluate(ALT_ON_BACKGROUND)
        assert len(samples) == 3
        assert [
            (alt, round(contrast(color, back), 2))
            for alt, color, back in samples
            if contrast(color, back) < 4.5
        ] == []
    finally:
        page.close()
