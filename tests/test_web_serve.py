"""The real ``digest serve`` under uvicorn in a subprocess: its access log carries no link or
login token, and ``X-Forwarded-For`` counts only from a proxy in ``web.trusted_proxies``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from digest.store import Store
from digest.web.accesslog import redact
from tests.conftest import AT, Site
from tests.smtp_server import free_port
from tests.web_site import configure_web, csrf_of

pytestmark = [pytest.mark.both_databases, pytest.mark.timeout(90)]

LINK = re.compile(r"http://127\.0\.0\.1:\d+/login\?token=([\w-]+)")


@dataclass
class Served:
    base: str
    log: Path

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def digest_serve(site: Site, tmp_path: Path) -> Iterator[Served]:
    """``digest serve`` on a free port, stdout and stderr into one log file."""
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    env = {**os.environ, "DIGEST_SECRET_KEY": "k" * 32, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "digest.cli", "-c", str(site.config), "serve"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/static/site.css", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError(log.read_text(errors="replace")) from None
                time.sleep(0.1)
        yield Served(base, log)
    finally:
        process.terminate()
        process.wait(timeout=15)


def tokens_of(site: Site) -> tuple[str, str]:
    """A subscriber's link token and a pending sign-up's confirmation token."""
    with Store.open(site.load().database_url) as store:
        subscriber, _ = store.add_subscriber("reader@example.net", "Rita", ["weekly"], AT)
        consent = store.add_consent(
            email="new@example.net",
            name="",
            digest_names=["weekly"],
            now=AT,
            expires_at=AT + timedelta(days=36500),
            request_ip="127.0.0.1",
            request_user_agent="test",
            form_url="http://127.0.0.1/subscribe",
            consent_version="1",
        )
    return subscriber.token, consent.token


def access_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if '"GET ' in line or '"POST ' in line]


def test_the_access_log_shows_no_token(site: Site, tmp_path: Path) -> None:
    configure_web(site.config, staff_password_hash="")  # the one-time login link, too
    link_token, confirm_token = tokens_of(site)
    with digest_serve(site, tmp_path) as served:
        started = served.text()
        match = LINK.search(started)
        assert match, started
        login_token = match.group(1)
        with httpx.Client(base_url=served.base, timeout=10) as client:
            assert client.get(f"/unsubscribe/{link_token}").status_code == 200
            assert client.get(f"/preferences/{link_token}?x=1").status_code == 200
            assert client.get(f"/confirm/{confirm_token}").status_code == 200
            assert client.get(f"/login?next=/&token={login_token}").status_code == 303
            one_click = client.post(
                f"/unsubscribe/{link_token}", data={"List-Unsubscribe": "One-Click"}
            )
            assert one_click.status_code == 200
        time.sleep(0.5)  # the access log line is written after the response
        text = served.text()
    lines = access_lines(text)
    assert len(lines) >= 6, text
    for token in (link_token, confirm_token, login_token):
        assert all(token not in line for line in lines), text
    # the one place the login token appears is the link printed at start (meant to be seen)
    shown = [line.strip() for line in text.splitlines() if login_token in line]
    assert shown == [match.group(0)]
    assert any('"GET /unsubscribe/[token] HTTP/1.1" 200' in line for line in lines), text
    assert any('"POST /unsubscribe/[token] HTTP/1.1" 200' in line for line in lines), text
    assert any("/preferences/[token]?x=1" in line for line in lines), text
    assert any("/confirm/[token]" in line for line in lines), text
    assert any("/login?next=/&token=[token]" in line for line in lines), text


def test_redact_keeps_everything_but_the_token() -> None:
    assert redact('127.0.0.1:5 - "GET /unsubscribe/abc-_9 HTTP/1.1" 200') == (
        '127.0.0.1:5 - "GET /unsubscribe/[token] HTTP/1.1" 200'
    )
    assert redact("/preferences/t0k?x=1#f") == "/preferences/[token]?x=1#f"
    assert redact("/login?token=abc&next=/") == "/login?token=[token]&next=/"
    assert redact("/subscribe?email=a") == "/subscribe?email=a"
    assert redact("/unsubscribe") == "/unsubscribe"


def signup(client: httpx.Client, forwarded_for: str) -> int:
    headers = {"X-Forwarded-For": forwarded_for}
    page = client.get("/subscribe", headers=headers)
    data = {"csrf": csrf_of(page.text, "/subscribe"), "email": f"x{forwarded_for}@example.net"}
    response = client.post("/subscribe", data={**data, "digests": "weekly"}, headers=headers)
    return response.status_code


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(site: Site, tmp_path: Path) -> None:
    configure_web(site.config, signups_per_ip_per_hour=2)  # trusted_proxies: [] (the default)
    with digest_serve(site, tmp_path) as served:
        with httpx.Client(base_url=served.base, timeout=10) as client:
            codes = [signup(client, f"203.0.113.{n}") for n in range(1, 4)]
        time.sleep(0.5)
        lines = access_lines(served.text())
    assert codes == [200, 200, 429]  # one client, whatever it claims to be
    signups = [line for line in lines if "/subscribe" in line]
    assert len(signups) == 6 and all(line.split()[1].startswith("127.0.0.1:") for line in signups)
    assert not any("203.0.113." in line for line in lines)


def test_x_forwarded_for_from_a_trusted_proxy_is_the_client(site: Site, tmp_path: Path) -> None:
    configure_web(site.config, signups_per_ip_per_hour=2, trusted_proxies=["127.0.0.0/8"])
    with digest_serve(site, tmp_path) as served:
        with httpx.Client(base_url=served.base, timeout=10) as client:
            codes = [signup(client, f"203.0.113.{n}") for n in range(1, 4)]
            codes += [signup(client, "203.0.113.1") for _ in range(2)]
        time.sleep(0.5)
        lines = access_lines(served.text())
    assert codes == [200, 200, 200, 200, 429]  # each client its own limit
    clients = {line.split()[1].rsplit(":", 1)[0] for line in lines if "/subscribe" in line}
    assert clients == {"203.0.113.1", "203.0.113.2", "203.0.113.3"}, lines
