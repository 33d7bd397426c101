"""Sessions in headless Chromium against the real app under uvicorn (SQLite file): log in, log
out, and the cookie copied before the logout opens nothing afterwards, in another browser
as well as from a plain HTTP client. Without a password the one-time link is the way in."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest.web import create_app
from digest.web.security import SESSION_COOKIE
from tests.browser import BROWSER_TESTS, chromium
from tests.conftest import AT, REPO
from tests.web_site import STAFF_PASSWORD, STAFF_USER, configure_web, free_socket, served

pytestmark = [*BROWSER_TESTS, pytest.mark.timeout(120)]
playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect


def sample_site(root: Path) -> Path:
    root.mkdir()
    shutil.copy(REPO / "config.example.yaml", root / "config.yaml")
    shutil.copytree(REPO / "content", root / "content")
    return root / "config.yaml"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(playwright_api) as instance:
        yield instance


def session_cookie(context: Any) -> dict[str, Any]:
    (cookie,) = [c for c in context.cookies() if c["name"] == SESSION_COOKIE]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    return dict(cookie)


def test_log_in_log_out_and_the_old_cookie_no_longer_works(browser: Any, tmp_path: Path) -> None:
    config = sample_site(tmp_path / "site")
    sock = free_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    configure_web(config, public_url=url)
    app = create_app(config, clock=lambda: AT, environ={})
    with served(app, sock):
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{url}/")
        expect(page).to_have_url(re.compile(r"/login\?next=/"))
        page.get_by_label("Benutzername").fill(STAFF_USER)
        page.get_by_label("Passwort").fill(STAFF_PASSWORD)
        page.get_by_role("button", name="Einloggen").click()
        expect(page.get_by_role("heading", name="Übersicht")).to_be_visible()
        copied = session_cookie(context)

        page.get_by_role("button", name="Ausloggen").click()
        expect(page).to_have_url(re.compile(r"/login$"))
        expect(page.get_by_role("button", name="Einloggen")).to_be_visible()
        assert not [c for c in context.cookies() if c["name"] == SESSION_COOKIE]

        # Put the copied cookie back: the session is over in the store, not just the browser.
        thief = browser.new_context()
        thief.add_cookies([copied])
        stolen = thief.new_page()
        stolen.goto(f"{url}/")
        expect(stolen).to_have_url(re.compile(r"/login\?next=/"))
        expect(stolen.get_by_role("heading", name="Übersicht")).to_have_count(0)
        plain = httpx.get(
            f"{url}/", cookies={SESSION_COOKIE: copied["value"]}, follow_redirects=False
        )
        assert plain.status_code == 303 and plain.headers["location"].startswith("/login")
        thief.close()
        context.close()


def test_without_a_password_the_printed_link_logs_in_once(browser: Any, tmp_path: Path) -> None:
    config = sample_site(tmp_path / "site")
    sock = free_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    configure_web(config, public_url=url, staff_password_hash="")
    app = create_app(config, clock=lambda: AT, environ={})
    app.state.web.store.add_subscriber("secret@example.net", "S", ["weekly"], AT)
    token = app.state.web.sessions.login_token
    with served(app, sock):
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{url}/")
        expect(page).to_have_url(re.compile(r"/login\?next=/"))
        expect(page.get_by_text("einmaligen Anmeldelink")).to_be_visible()
        assert "secret@example.net" not in page.content()
        page.goto(f"{url}/login?token={token}")
        expect(page).to_have_url(f"{url}/")  # the token is gone from the address bar
        expect(page.get_by_role("heading", name="Übersicht")).to_be_visible()
        other = browser.new_context().new_page()
        other.goto(f"{url}/login?token={token}")
        expect(other.get_by_role("heading", name="Anmeldelink ungültig")).to_be_visible()
        other.context.close()
        context.close()
