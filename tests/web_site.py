"""Helpers for the web tests: a sample site set up for ``digest serve``, and a real uvicorn
server in a thread for the browser tests."""

from __future__ import annotations

import re
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from starlette.applications import Starlette

from digest.web.security import hash_password
from digest.web.serve import proxy_options

with warnings.catch_warnings():  # starlette 1.10 prefers httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

__all__ = ["TestClient"]  # for the tests that drive the app without a browser

STAFF_USER = "redaktion"
STAFF_PASSWORD = "correct horse battery"
SECRET = "test-secret-key-0123456789"


def configure_web(config: Path, *, public_url: str = "http://127.0.0.1:8000", **web: Any) -> None:
    """Give a sample site's config a staff login (cheap hash), a secret and a public URL."""
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["site"]["public_url"] = public_url
    data["web"] = {
        "staff_user": STAFF_USER,
        "staff_password_hash": hash_password(STAFF_PASSWORD, iterations=1000),
        "secret_key": SECRET,
        "staff_email": "staff@example.org",
        **web,
    }
    config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def csrf_of(html: str, action: str | None = None) -> str:
    """The CSRF token of the (first, or the one posting to ``action``) form in a page."""
    forms = re.findall(r"<form\b[^>]*>.*?</form>", html, flags=re.S)
    for form in forms:
        if action is None or f'action="{action}"' in form:
            match = re.search(r'name="csrf" value="([^"]+)"', form)
            if match:
                return match.group(1)
    raise AssertionError(f"no form with a CSRF token (action={action!r})")


def hidden_fields(html: str, action: str) -> dict[str, str]:
    """The hidden inputs (CSRF token and the like) of the form posting to ``action``."""
    for form in re.findall(r"<form\b[^>]*>.*?</form>", html, flags=re.S):
        if f'action="{action}"' in form:
            return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    raise AssertionError(f"no form posting to {action!r}")


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def served(app: Starlette, sock: socket.socket) -> Iterator[str]:
    """Run ``app`` under uvicorn on ``sock`` in a thread; yields the base URL."""
    trusted = app.state.web.loaded.config.web.trusted_proxies
    config = uvicorn.Config(
        app,
        log_level="warning",
        timeout_graceful_shutdown=1,
        lifespan="on",
        **proxy_options(trusted),  # as digest serve runs it
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    host, port = sock.getsockname()[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
