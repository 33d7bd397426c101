"""The staff admin in headless Chromium: the real app under uvicorn on 127.0.0.1, a real
SQLite file and a real aiosmtpd server that drops one connection after the final dot (an
in-doubt delivery). axe-core checks every admin page; screenshots go to
``$DIGEST_SCREENSHOTS`` (default /tmp/shots) as web-admin-*.png, to be looked at."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from digest.store import IN_DOUBT, SENT
from digest.web import create_app
from tests.browser import BROWSER_TESTS, chromium
from tests.conftest import AT, REPO
from tests.smtp_server import Faults, running, use_smtp
from tests.test_web_browser import DESKTOP, Server, login
from tests.test_web_browser import check_page as shared_check_page
from tests.test_web_browser import new_page as shared_new_page
from tests.web_site import configure_web, free_socket, served

pytestmark = [*BROWSER_TESTS, pytest.mark.timeout(180)]
playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
expect.set_options(timeout=15_000)
PHONE = {"width": 375, "height": 812}
DOUBT = "doubt@example.net"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("admin") / "site"
    root.mkdir()
    shutil.copy(REPO / "config.example.yaml", root / "config.yaml")
    shutil.copytree(REPO / "content", root / "content")
    sock = free_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with running(Faults(drop_after_dot={DOUBT})) as smtp:
        use_smtp(root / "config.yaml", smtp.port, connections=1)
        configure_web(root / "config.yaml", public_url=url)
        app = create_app(root / "config.yaml", clock=lambda: AT, environ={})
        state = app.state.web
        assert state.store.engine.dialect.name == "sqlite"  # a real file next to the config
        rows = [(f"leser{n:03d}@example.org", f"Leser {n}", ["weekly"]) for n in range(80)]
        state.store.add_subscribers(rows, AT)
        state.store.add_subscriber("marta.muster@beispiel-ahlen.de", "Marta Muster",
                                   ["weekly"], AT)  # fmt: skip
        state.store.add_subscriber(DOUBT, "Dora Doubt", ["weekly"], AT)
        with served(app, sock):
            yield Server(url, root, smtp, state)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(playwright_api) as instance:
        yield instance


def new_page(browser: Any, server: Server, viewport: dict[str, int] = DESKTOP) -> Any:
    return shared_new_page(browser, server, viewport, axe=True)


def check_page(page: Any, name: str) -> None:
    shared_check_page(page, f"admin-{name}")


def test_find_edit_unsubscribe_and_erase_a_subscriber(browser: Any, server: Server) -> None:
    page = new_page(browser, server)
    login(page, server)
    page.get_by_role("link", name="Abonnenten").first.click()
    expect(page.get_by_role("heading", name="Abonnenten", exact=True)).to_be_visible()
    page.get_by_label("Suche nach Adresse oder Name").fill("muster@beispiel")
    page.keyboard.press("Enter")  # the search works by keyboard
    table = page.locator("#subscriber-table")
    expect(table.locator("tbody tr")).to_have_count(1)
    check_page(page, "subscribers-search-desktop")
    table.get_by_role("link", name="marta.muster@beispiel-ahlen.de").click()
    expect(page.get_by_role("heading", name="marta.muster@beispiel-ahlen.de")).to_be_visible()
    check_page(page, "subscriber-desktop")

    page.get_by_label("Name", exact=True).fill("Marta M. Muster")
    page.get_by_label("Monatsrückblick").check()
    page.get_by_role("button", name="Speichern").click()
    expect(page.get_by_role("status")).to_contain_text("Gespeichert.")
    marta = server.store.subscriber_by_email("marta.muster@beispiel-ahlen.de")
    assert marta is not None
    assert (marta.name, marta.digests) == ("Marta M. Muster", ("monthly", "weekly"))

    page.get_by_role("button", name="Abmelden", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Abgemeldet")
    marta = server.store.subscriber_by_email("marta.muster@beispiel-ahlen.de")
    assert marta is not None and marta.status == "unsubscribed"

    page.get_by_role("button", name="Endgültig löschen").click()  # the box is not ticked
    assert server.store.subscriber_by_email("marta.muster@beispiel-ahlen.de") is not None
    page.get_by_label("Ja, diesen Abonnenten endgültig löschen").check()
    page.get_by_role("button", name="Endgültig löschen").click()
    expect(page.get_by_role("status")).to_contain_text("Der Abonnent wurde gelöscht.")
    assert server.store.subscriber_by_email("marta.muster@beispiel-ahlen.de") is None
    page.get_by_label("Suche nach Adresse oder Name").fill("marta")
    page.get_by_role("button", name="Suchen").click()
    expect(page.get_by_text("Keine Abonnenten gefunden.")).to_be_visible()
    page.context.close()

    phone = new_page(browser, server, PHONE)
    login(phone, server)
    phone.goto(f"{server.url}/subscribers?q=leser01")
    expect(phone.locator("#subscriber-table tbody tr")).to_have_count(10)
    check_page(phone, "subscribers-search-375")
    phone.locator("#subscriber-table").get_by_role("link").first.click()
    expect(phone.get_by_role("heading", name="leser010@example.org")).to_be_visible()
    check_page(phone, "subscriber-375")
    phone.context.close()


def test_import_a_csv_with_mapping_preview_and_rejected_rows(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    csv_file = tmp_path / "newsletter-export.csv"
    csv_file.write_text(
        "Email,Name,Digests,Telefon\nneu1@example.org,Neu Eins,weekly,0123\n"
        "kaputt-ohne-at,Kaputt,,\nneu2@example.org,Neu Zwei,,\nneu1@example.org,Doppelt,,\n",
        encoding="utf-8",
    )
    for viewport, name in ((DESKTOP, "desktop"), (PHONE, "375")):
        page = new_page(browser, server, viewport)
        login(page, server)
        page.goto(f"{server.url}/subscribers")
        page.get_by_role("link", name="CSV importieren").click()
        check_page(page, f"import-{name}")
        page.get_by_label("CSV-Datei").set_input_files(str(csv_file))
        page.get_by_role("button", name="Vorschau anzeigen").click()
        expect(page.get_by_role("heading", name="Vorschau des Imports")).to_be_visible()
        mapping = page.locator("#mapping")
        expect(mapping.locator("tr", has_text="telefon")).to_contain_text("wird ignoriert")
        expect(mapping.locator("tr", has_text="digests")).to_contain_text("digests")
        expect(page.get_by_role("heading", name="2 Zeilen werden importiert")).to_be_visible()
        expect(page.get_by_role("heading", name="2 Zeilen werden abgelehnt")).to_be_visible()
        rejected = page.locator("#rejected li")
        expect(rejected.nth(0)).to_contain_text("newsletter-export.csv:3")
        expect(rejected.nth(1)).to_contain_text("steht schon in Zeile 2")  # the site's language
        check_page(page, f"import-preview-{name}")
        page.context.close()
    assert server.store.subscriber_by_email("neu1@example.org") is None  # previews only

    page = new_page(browser, server)
    login(page, server)
    page.goto(f"{server.url}/subscribers/import")
    page.get_by_label("CSV-Datei").set_input_files(str(csv_file))
    page.get_by_role("button", name="Vorschau anzeigen").click()
    page.get_by_role("button", name="2 Zeilen importieren").click()
    expect(page.get_by_role("heading", name="Import abgeschlossen")).to_be_visible()
    expect(page.locator("#import-result")).to_have_text("2 neu, 0 aktualisiert, 2 übersprungen")
    assert page.locator("#import-progress").get_attribute("value") == "2"
    check_page(page, "import-done-desktop")
    neu = server.store.subscriber_by_email("neu2@example.org")
    assert neu is not None and neu.name == "Neu Zwei"
    page.context.close()


def test_open_an_issue_and_resend_the_in_doubt_row(browser: Any, server: Server) -> None:
    page = new_page(browser, server)
    login(page, server)
    page.get_by_role("link", name="Jetzt senden …").first.click()
    page.get_by_role("button", name="Jetzt an alle senden").click()
    server.state.jobs.wait(60)
    (issue,) = server.store.list_issues("weekly")
    assert server.store.counts(issue.id)[IN_DOUBT] == 1
    first_try = [r for r in server.smtp.received if DOUBT in r.rcpt_tos]
    assert len(first_try) == 1  # the server kept it, but never said so

    page.get_by_role("link", name="Ausgaben").first.click()
    check_page(page, "issues-desktop")
    page.get_by_role("link", name=f"weekly {issue.period_key}").click()
    doubt = page.locator("#in-doubt")
    expect(doubt).to_contain_text(DOUBT)
    expect(doubt.get_by_role("heading")).to_contain_text("(1)")
    check_page(page, "issue-desktop")
    doubt.get_by_role("link", name=f"Erneut senden … {DOUBT}").click()
    expect(page.get_by_role("heading", name="Wirklich erneut senden?")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("doppelt")
    check_page(page, "resend-confirm-desktop")
    assert len([r for r in server.smtp.received if DOUBT in r.rcpt_tos]) == 1
    page.get_by_role("button", name="Ja, erneut senden").click()
    expect(page.get_by_role("status")).to_contain_text("1 Zustellungen werden erneut gesendet.")
    server.state.jobs.wait(60)
    copies = [r for r in server.smtp.received if DOUBT in r.rcpt_tos]
    assert len(copies) == 2 and copies[0].message_id != copies[1].message_id
    assert server.store.counts(issue.id)[IN_DOUBT] == 0
    (row,) = [r for r in server.store.issue_deliveries(issue.id) if r.email == DOUBT]
    assert row.status == SENT and row.message_id == copies[1].message_id
    page.reload()
    expect(page.locator("#in-doubt")).to_contain_text("Keine unklaren Zustellungen.")
    page.context.close()

    phone = new_page(browser, server, PHONE)
    login(phone, server)
    phone.goto(f"{server.url}/issues")
    check_page(phone, "issues-375")
    phone.goto(f"{server.url}/issues/{issue.id}")
    check_page(phone, "issue-375")
    phone.context.close()


def test_the_other_admin_pages_pass_axe_at_both_widths(browser: Any, server: Server) -> None:
    for viewport, name in ((DESKTOP, "desktop"), (PHONE, "375")):
        page = new_page(browser, server, viewport)
        login(page, server)
        for path, label in (("/subscribers", "subscribers"), ("/subscribers/new", "add")):
            page.goto(f"{server.url}{path}")
            check_page(page, f"{label}-{name}")
        page.get_by_role("button", name="Hinzufügen").click()  # empty: the browser asks
        page.get_by_label("E-Mail-Adresse").fill("neu.per.hand@example.org")
        page.get_by_role("button", name="Hinzufügen").click()
        if name == "desktop":
            expect(page.get_by_role("status")).to_contain_text("Der Abonnent ist angelegt.")
        else:  # the address exists now: saved again, same page
            expect(page.get_by_role("heading", name="neu.per.hand@example.org")).to_be_visible()
        page.context.close()


def test_staff_reach_the_subscriber_list_by_keyboard(browser: Any, server: Server) -> None:
    page = new_page(browser, server)
    login(page, server)
    focused = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.textContent.trim()"))
        if focused[-1] == "Abonnenten":
            break
    assert focused[-1] == "Abonnenten", focused
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/subscribers$"))
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    page.keyboard.press("Tab")
    assert outline in ("none", "solid")
    page.context.close()
