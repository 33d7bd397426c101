"""Issue 10, observations 1 and 7, in headless Chromium against ``digest serve`` (uvicorn on
127.0.0.1, a real aiosmtpd server): the dashboard and the preview show the issue that goes
out next; "Jetzt senden" cuts it once however often it is clicked; the preview then shows
the following issue; check errors hold the next issue and the dashboard says so."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digest.web import create_app
from digest.web.app import WebState
from tests.browser import BROWSER_TESTS, chromium
from tests.conftest import REPO
from tests.smtp_server import SmtpServer, running, use_smtp
from tests.web_site import STAFF_PASSWORD, STAFF_USER, configure_web, free_socket, served

pytestmark = [*BROWSER_TESTS, pytest.mark.timeout(120)]
playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

# Tuesday after the sample week's Monday fire: the due period (13.-20. Nov) holds nothing
# new, so the next issue is the upcoming one, going out Monday 27 Nov, 07:00.
NOW = datetime.fromisoformat("2017-11-21T10:00:00+01:00")


@dataclass
class Desk:
    url: str
    root: Path
    smtp: SmtpServer
    state: WebState
    clock: list[datetime]


def write_item(root: Path, slug: str, title: str, when: str) -> None:
    (root / "content" / f"{slug}.md").write_text(
        f"---\ntitle: {title}\ndate: {when}\nid: {slug}\n---\nText von heute.\n", encoding="utf-8"
    )


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    """A site whose only items are dated today (``NOW``), with one subscriber."""
    root = tmp_path / "site"
    root.mkdir()
    shutil.copy(REPO / "config.example.yaml", root / "config.yaml")
    (root / "content").mkdir()
    write_item(root, "rathaus", "Neues aus dem Rathaus", "2017-11-21T08:00:00+01:00")
    write_item(root, "markt", "Wochenmarkt am Samstag", "2017-11-21T09:30:00+01:00")
    sock = free_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with running() as smtp:
        use_smtp(root / "config.yaml", smtp.port, connections=1)
        configure_web(root / "config.yaml", public_url=url)
        clock = [NOW]
        app = create_app(root / "config.yaml", clock=lambda: clock[0], environ={})
        state: WebState = app.state.web
        state.store.add_subscriber("leser@example.net", "Lea", ["weekly"], NOW)
        with served(app, sock):
            yield Desk(url, root, smtp, state, clock)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(playwright_api) as instance:
        yield instance


def staff_page(browser: Any, desk: Desk) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith(desk.url) else route.abort()
        ),
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{desk.url}/login")
    page.get_by_label("Benutzername").fill(STAFF_USER)
    page.get_by_label("Passwort").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Einloggen").click()
    expect(page.get_by_role("heading", name="Übersicht")).to_be_visible()
    return page


def test_preview_send_now_once_then_the_following_issue(browser: Any, desk: Desk) -> None:
    page = staff_page(browser, desk)
    weekly = page.locator("section.digest").first
    expect(weekly.locator(".next-issue")).to_contain_text("Versand 27.11.17, 07:00")
    expect(weekly.locator(".next-issue")).to_contain_text("2 Beiträge bisher")

    page.goto(f"{desk.url}/preview/weekly?view=text")
    expect(page.locator("#sends-at")).to_have_text("Versand 27.11.17, 07:00")
    text = page.locator("pre.text-view")
    expect(text).to_contain_text("Neues aus dem Rathaus")
    expect(text).to_contain_text("Wochenmarkt am Samstag")
    expect(page.get_by_text("später", exact=False)).to_have_count(0)

    page.goto(f"{desk.url}/")
    page.get_by_role("link", name="Jetzt senden …").first.click()
    expect(page.get_by_text("2 Beiträge")).to_be_visible()
    form = page.locator("#send-form")
    fields = {
        name: form.locator(f'input[name="{name}"]').input_value() for name in ("csrf", "after")
    }
    page.get_by_role("button", name="Jetzt an alle senden").dblclick()
    page.wait_for_url(f"{desk.url}/")
    desk.state.jobs.wait(20)
    # The same form posted again later (a reload, a second tab): the ledger refuses it.
    desk.clock[0] = NOW + timedelta(seconds=30)
    again = page.request.post(f"{desk.url}/send/weekly", form=fields, max_redirects=0)
    assert again.status == 303
    desk.state.jobs.wait(20)
    desk.smtp.wait_for(1)
    assert [r.rcpt_tos for r in desk.smtp.received] == [("leser@example.net",)]
    (issue,) = desk.state.store.list_issues("weekly")
    assert issue.period_key == "2017-11-21T10:00+01:00" and issue.item_count == 2

    page.goto(f"{desk.url}/")
    expect(page.locator(".jobs")).to_contain_text(
        "nicht gesendet: Ausgabe 2017-11-21T10:00+01:00 ist inzwischen schon hinausgegangen"
    )
    weekly = page.locator("section.digest").first
    expect(weekly.locator(".next-issue")).to_contain_text("Versand 27.11.17, 07:00")
    expect(weekly.locator(".next-issue")).to_contain_text("0 Beiträge bisher")
    page.goto(f"{desk.url}/preview/weekly")
    period = page.locator("dt", has_text="Zeitraum").locator("xpath=following-sibling::dd[1]")
    expect(period).to_have_text("21.11.17, 10:00 – 27.11.17, 07:00")
    page.context.close()


def test_check_errors_hold_the_next_issue_on_the_dashboard(browser: Any, desk: Desk) -> None:
    entry = {
        "id": "anmeldung",
        "title": "Anmeldung offen",
        "date_published": "2017-11-21T09:00:00+01:00",
        "content_html": '<p>Die Anmeldung läuft. <img src="plakat.png" alt="Plakat"></p>',
    }
    feed = {"version": "https://jsonfeed.org/version/1.1", "title": "Presse", "items": [entry]}
    (desk.root / "presse.json").write_text(json.dumps(feed), encoding="utf-8")
    config = desk.root / "config.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace(
            "sources:\n", "sources:\n- {kind: feed, url: 'file:presse.json', name: presse}\n", 1
        ),
        encoding="utf-8",
    )
    page = staff_page(browser, desk)
    held = page.locator("section.digest").first.locator(".held")
    expect(held).to_contain_text("Zurückgehalten: 1 Fehler")
    expect(held).to_contain_text("item 'Anmeldung offen' (presse:anmeldung)")
    page.goto(f"{desk.url}/preview/weekly")
    expect(page.locator(".findings")).to_contain_text("item 'Anmeldung offen'")
    page.goto(f"{desk.url}/")
    page.get_by_role("link", name="Jetzt senden …").first.click()
    page.get_by_role("button", name="Jetzt an alle senden").click()
    desk.state.jobs.wait(20)
    page.goto(f"{desk.url}/")
    expect(page.locator(".jobs")).to_contain_text("nicht gesendet, zurückgehalten: 1 Fehler")
    expect(page.locator(".jobs")).to_contain_text("item 'Anmeldung offen'")
    assert desk.state.store.list_issues("weekly") == []
    assert desk.smtp.received == []
    page.context.close()
