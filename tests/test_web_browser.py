"""``digest serve`` in headless Chromium: the real app under uvicorn on 127.0.0.1 and a real
aiosmtpd server catching the mail. Screenshots go to ``$DIGEST_SCREENSHOTS`` (default
/tmp/shots) as web-*.png, to be looked at.

The app's clock stands at the sample week (``AT``) so a send has items; sample images on
example.org are answered with a placeholder, every other outside request is refused.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from digest.store import Store
from digest.web import create_app
from digest.web.app import WebState
from tests.axe import serious_violations
from tests.browser import BROWSER_TESTS, chromium
from tests.conftest import AT, REPO, SAMPLE_WEEK_TITLES
from tests.smtp_server import SmtpServer, running, use_smtp
from tests.web_site import STAFF_PASSWORD, STAFF_USER, configure_web, free_socket, served

pytestmark = [*BROWSER_TESTS, pytest.mark.timeout(120)]
playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
expect.set_options(timeout=15_000)  # a busy CI machine renders the preview slowly
FRAME_READY = (
    "(() => { const f = document.getElementById('email-frame');"
    " return f && f.contentDocument && f.contentDocument.readyState === 'complete'"
    " && f.contentDocument.body && f.contentDocument.body.childElementCount > 0; })()"
)

SHOTS = Path(os.environ.get("DIGEST_SCREENSHOTS", "/tmp/shots"))
AT_QUERY = "at=2017-11-20T08:00:00%2B01:00"
PLACEHOLDER = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="600" height="338" viewBox="0 0 600 338">'
    '<rect width="600" height="338" fill="#8fa3b5"/></svg>'
)
DESKTOP = {"width": 1280, "height": 900}
MOBILE = {"width": 390, "height": 844}


@dataclass
class Server:
    url: str
    root: Path
    smtp: SmtpServer
    state: WebState

    @property
    def store(self) -> Store:
        return self.state.store

    def mails_to(self, address: str) -> list[EmailMessage]:
        found = []
        for received in self.smtp.received:
            if address in received.rcpt_tos:
                message = email.message_from_bytes(received.data, policy=email.policy.default)
                assert isinstance(message, EmailMessage)
                found.append(message)
        return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("web") / "site"
    root.mkdir()
    shutil.copy(REPO / "config.example.yaml", root / "config.yaml")
    shutil.copytree(REPO / "content", root / "content")
    sock = free_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with running() as smtp:
        use_smtp(root / "config.yaml", smtp.port, connections=1)
        configure_web(root / "config.yaml", public_url=url)
        app = create_app(root / "config.yaml", clock=lambda: AT, environ={})
        with served(app, sock):
            yield Server(url, root, smtp, app.state.web)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(playwright_api) as instance:
        yield instance


def new_page(
    browser: Any,
    server: Server,
    viewport: dict[str, int] = DESKTOP,
    *,
    axe: bool = False,
    locale: str | None = None,
) -> Any:
    """A page that reaches only the app (pictures are placeholders); ``axe``: axe-core may be
    injected (the app's CSP bypassed); ``locale``: the browser's language."""
    options: dict[str, Any] = {"viewport": viewport, "bypass_csp": axe}
    if locale is not None:
        options["locale"] = locale
    context = browser.new_context(**options)
    page = context.new_page()
    page.set_default_timeout(10_000)

    def route(route: Any) -> None:
        url: str = route.request.url
        if url.startswith(server.url):
            route.continue_()
        elif re.search(r"\.(jpe?g|png|gif|webp)(\?|$)", url):
            route.fulfill(status=200, content_type="image/svg+xml", body=PLACEHOLDER)
        else:
            route.abort()

    context.route("**/*", route)
    return page


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"web-{name}.png"), full_page=True)
    if page.viewport_size["width"] < 500:  # a phone: the first screen, readable as it is
        page.screenshot(path=str(SHOTS / f"web-{name}-top.png"))


def login(page: Any, server: Server) -> None:
    page.goto(f"{server.url}/login")
    page.get_by_label("Benutzername").fill(STAFF_USER)
    page.get_by_label("Passwort").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Einloggen").click()
    expect(page.get_by_role("heading", name="Übersicht")).to_be_visible()


def no_horizontal_scroll(page: Any) -> bool:
    return bool(
        page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )


def check_page(page: Any, name: str) -> None:
    """No serious or critical axe violation, no sideways scrolling; a screenshot."""
    assert serious_violations(page) == [], name
    assert no_horizontal_scroll(page), name
    shot(page, name)


def test_subscribe_confirm_by_mail_link_makes_subscriber_active(
    browser: Any, server: Server
) -> None:
    address = "browser.reader@example.net"
    for name, viewport in (("mobile", MOBILE), ("desktop", DESKTOP)):
        page = new_page(browser, server, viewport)
        page.goto(f"{server.url}/subscribe")
        shot(page, f"subscribe-{name}")
        assert no_horizontal_scroll(page)
        page.get_by_role("button", name="Abonnieren").click()  # empty form: errors by the fields
        expect(page.locator("#email-error")).to_be_visible()
        shot(page, f"subscribe-errors-{name}")
        page.context.close()

    page = new_page(browser, server, MOBILE)
    page.goto(f"{server.url}/subscribe")
    page.get_by_label("E-Mail-Adresse").fill(address)
    page.get_by_label("Name (freiwillig)").fill("Bea Browser")
    # Nothing is ticked for the subscriber; without a digest the form says so.
    expect(page.get_by_label("Wochenüberblick")).not_to_be_checked()
    expect(page.get_by_label("Monatsrückblick")).not_to_be_checked()
    page.get_by_role("button", name="Abonnieren").click()
    expect(page.locator("#digests-error")).to_be_visible()
    page.get_by_label("Wochenüberblick").check()
    # The browser asks for English (Accept-Language); this reader wants German mail and pages.
    page.get_by_label("Sprache der E-Mails").select_option("de")
    page.keyboard.press("Tab")
    page.get_by_role("button", name="Abonnieren").click()
    expect(page.get_by_role("heading", name="Bitte prüfen Sie Ihr Postfach")).to_be_visible()
    shot(page, "subscribe-sent-mobile")

    server.smtp.wait_for(1, timeout=10)
    (mail,) = server.mails_to(address)
    assert "List-Unsubscribe" not in mail
    body = mail.get_body(("plain",))
    assert body is not None
    match = re.search(rf"{re.escape(server.url)}/confirm/[\w-]+", body.get_content())
    assert match, body.get_content()
    assert server.store.subscriber_by_email(address) is None

    page.goto(match.group(0))
    expect(page.get_by_role("heading", name="Anmeldung bestätigen")).to_be_visible()
    shot(page, "confirm-mobile")
    assert server.store.subscriber_by_email(address) is None  # opening the link is not enough
    page.get_by_role("button", name="Anmeldung bestätigen").click()
    expect(page.get_by_role("heading", name="Anmeldung bestätigt")).to_be_visible()
    shot(page, "confirmed-mobile")
    subscriber = server.store.subscriber_by_email(address)
    assert subscriber is not None
    assert (subscriber.status, subscriber.digests, subscriber.name) == (
        "active", ("weekly",), "Bea Browser",
    )  # fmt: skip
    page.context.close()


def test_preview_switches_to_mobile_without_horizontal_scroll(browser: Any, server: Server) -> None:
    page = new_page(browser, server)
    login(page, server)
    page.goto(f"{server.url}/preview/weekly?{AT_QUERY}")
    for title in SAMPLE_WEEK_TITLES:
        expect(page.locator("#chosen-items")).to_contain_text(title)
    page.wait_for_function(FRAME_READY)
    shot(page, "preview-desktop")
    page.get_by_role("link", name="Mobil").click()
    page.wait_for_url(re.compile(r"view=mobile"))
    expect(page.get_by_role("link", name="Mobil")).to_have_attribute("aria-current", "page")
    frame_element = page.locator("#email-frame")
    page.wait_for_function(FRAME_READY)
    assert frame_element.evaluate("e => e.getBoundingClientRect().width") == 375
    frame = frame_element.content_frame
    sizes = frame.locator("html").evaluate(
        "e => [e.scrollWidth, e.clientWidth, document.body.scrollWidth]"
    )
    assert sizes[0] <= sizes[1] and sizes[2] <= 375, sizes
    shot(page, "preview-mobile-view")

    phone = new_page(browser, server, MOBILE)
    phone.context.add_cookies(page.context.cookies())
    phone.goto(f"{server.url}/preview/weekly?{AT_QUERY}&view=mobile")
    phone.wait_for_function(FRAME_READY)
    assert no_horizontal_scroll(phone)
    shot(phone, "preview-on-phone")
    phone.goto(f"{server.url}/preview/weekly?{AT_QUERY}&view=dark")
    phone.wait_for_function(FRAME_READY)
    shot(phone, "preview-dark-on-phone")
    phone.context.close()
    page.context.close()


def test_editing_content_updates_the_open_preview(browser: Any, server: Server) -> None:
    page = new_page(browser, server)
    login(page, server)
    page.goto(f"{server.url}/preview/weekly?{AT_QUERY}")
    expect(page.locator("#chosen-items")).to_contain_text(SAMPLE_WEEK_TITLES[0])
    page.wait_for_selector("html[data-live=on]", state="attached")  # the event stream is open
    new = server.root / "content" / "2017-11-18-live-reload.md"
    new.write_text(
        "---\ntitle: Live nachgeladen\ndate: 2017-11-18\nsummary: Neu.\n---\nText.\n",
        encoding="utf-8",
    )
    try:
        expect(page.locator("#chosen-items")).to_contain_text("Live nachgeladen", timeout=15_000)
        frame = page.frame_locator("#email-frame")
        expect(frame.get_by_role("heading", name="Live nachgeladen")).to_be_visible()
    finally:
        new.unlink()
    expect(page.locator("#chosen-items")).not_to_contain_text("Live nachgeladen", timeout=15_000)
    page.context.close()


def test_staff_send_without_login_is_refused(browser: Any, server: Server) -> None:
    before = len(server.store.list_issues("weekly"))
    page = new_page(browser, server)
    page.goto(f"{server.url}/send/weekly")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    response = page.request.post(
        f"{server.url}/send/weekly", form={"csrf": "guessed"}, max_redirects=0
    )
    assert response.status == 403
    page.goto(f"{server.url}/")
    expect(page).to_have_url(re.compile(r"/login"))
    assert len(server.store.list_issues("weekly")) == before
    page.context.close()


def test_unsubscribe_from_the_link_in_a_received_digest(browser: Any, server: Server) -> None:
    address = "leaving@example.net"
    server.store.add_subscriber(address, "Lea Leaving", ["weekly"], AT)
    page = new_page(browser, server)
    login(page, server)
    shot(page, "dashboard-desktop")
    page.get_by_role("link", name="Jetzt senden …").first.click()
    page.get_by_role("button", name="Jetzt an alle senden").click()
    server.state.jobs.wait(20)
    (digest_mail,) = server.mails_to(address)
    html_part = digest_mail.get_body(("html",))
    assert html_part is not None
    links = re.findall(r'href="([^"]+/unsubscribe/[^"]+)"', html_part.get_content())
    assert links and links[0].startswith(server.url)
    assert f"<{links[0]}>" in str(digest_mail["List-Unsubscribe"])
    # Every link of the list's own pages goes where `digest serve` answers (site.public_url),
    # none to the site's base_url (the town's CMS, which knows no /unsubscribe).
    base_url = server.state.loaded.config.site.base_url
    own = re.findall(
        r'href="([^"]+/(?:unsubscribe|preferences|archive|confirm)/[^"]*)"', html_part.get_content()
    )
    assert {"unsubscribe", "preferences", "archive"} <= {link.split("/")[3] for link in own}
    assert all(link.startswith(server.url + "/") for link in own), own
    assert not any(link.startswith(base_url) for link in own)
    text_part = digest_mail.get_body(("plain",))
    assert text_part is not None and f"{server.url}/unsubscribe/" in text_part.get_content()
    view_link = next(link for link in own if "/archive/weekly/" in link)
    page.goto(view_link)  # "view in browser" opens the issue on this server
    expect(page.get_by_role("heading", name=SAMPLE_WEEK_TITLES[0])).to_be_visible()
    preferences_link = next(link for link in own if "/preferences/" in link)
    response = page.goto(preferences_link)
    assert response is not None and response.status == 200

    page.goto(links[0])
    expect(page.get_by_role("heading", name="Abmelden")).to_be_visible()
    assert server.store.subscriber_by_email(address).status == "active"  # type: ignore[union-attr]
    page.get_by_role("button", name="Jetzt abmelden").click()
    expect(page.get_by_role("heading", name="Sie sind abgemeldet")).to_be_visible()
    assert server.store.subscriber_by_email(address).status == "unsubscribed"  # type: ignore[union-attr]

    page.goto(f"{server.url}/")
    shot(page, "dashboard-after-send")
    page.goto(f"{server.url}/archive/weekly/2017-11-20-0800")  # cut at the click
    expect(page.get_by_role("heading", name=SAMPLE_WEEK_TITLES[0])).to_be_visible()
    page.context.close()


def test_subscribe_form_works_by_keyboard_alone(browser: Any, server: Server) -> None:
    """Tab order: skip link, fields, checkboxes, privacy link, button; never the honeypot."""
    page = new_page(browser, server)
    page.goto(f"{server.url}/subscribe")
    focused: list[str] = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused.append(
            page.evaluate(
                "(() => { const e = document.activeElement;"
                " return e.id || e.getAttribute('href') || e.textContent.trim(); })()"
            )
        )
        if focused[-1] == "Abonnieren":
            break
    assert focused[0] == "#main"  # the skip link comes first
    order = [focused.index(name) for name in ("email", "name", "digest-weekly", "Abonnieren")]
    assert order == sorted(order)
    assert "website" not in focused and focused[-1] == "Abonnieren"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # the focus is visible
    page.focus("#digest-weekly")
    page.keyboard.press("Space")  # ticking a digest is the subscriber's own act
    page.focus("#email")
    page.keyboard.type("keys@example.net")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Bitte prüfen Sie Ihr Postfach")).to_be_visible()
    page.context.close()
