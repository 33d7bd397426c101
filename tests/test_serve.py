"""``digest serve`` and ``site.public_url`` (observation 5 of #10): links in mails go to
public_url (scaffolded by ``digest init``); serve says so in one line when it answers on an
address public_url does not name."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from digest.config import load_config
from digest.web.serve import public_url_mismatch
from tests.conftest import CliRunner

BASE = "https://www.example.org/stadt"


@pytest.mark.parametrize(
    ("public_url", "host", "port"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1", 8000),
        ("http://localhost:8000/", "127.0.0.1", 8000),
        ("http://[::1]:8000", "::1", 8000),
        ("http://news.example.org:8080", "0.0.0.0", 8080),
        ("http://news.example.org", "news.example.org", 80),
    ],
)
def test_no_warning_when_public_url_names_the_server(public_url: str, host: str, port: int) -> None:
    assert public_url_mismatch(public_url, BASE, host, port) is None


@pytest.mark.parametrize(
    ("public_url", "host", "port"),
    [
        ("https://news.example.org", "127.0.0.1", 8000),
        ("http://127.0.0.1:8000", "127.0.0.1", 8001),
        ("https://127.0.0.1:8000", "127.0.0.1", 8000),
        ("http://news.example.org:8000", "127.0.0.1", 8000),
    ],
)
def test_warning_when_it_does_not(public_url: str, host: str, port: int) -> None:
    line = public_url_mismatch(public_url, BASE, host, port)
    assert line is not None and "\n" not in line
    assert public_url in line and f":{port}/" in line


def test_warning_without_public_url_names_base_url() -> None:
    line = public_url_mismatch(None, BASE, "127.0.0.1", 8000)
    assert line is not None and BASE in line and "site.public_url is not set" in line


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_stderr(config: Path, port: int) -> str:
    """Start ``digest serve`` on 127.0.0.1:port, wait until it answers, stop it; its stderr."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "digest.cli", "-c", str(config), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/subscribe", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("digest serve did not answer") from None
                time.sleep(0.2)
    finally:
        process.terminate()
        _, err = process.communicate(timeout=20)
    return err


@pytest.mark.timeout(90)
def test_init_scaffolds_public_url_and_serve_warns_only_when_it_does_not_match(
    tmp_path: Path, cli: CliRunner
) -> None:
    site = tmp_path / "site"
    assert cli("init", site).code == 0
    config = site / "config.yaml"
    scaffolded = "https://newsletter.example.org"
    assert load_config(config, environ={}).config.site.public_url == scaffolded
    port = _free_port()
    warned = [line for line in _serve_stderr(config, port).splitlines() if "public_url" in line]
    assert warned == [
        f"warning: links in mails go to site.public_url {scaffolded}, but this server "
        f"answers on http://127.0.0.1:{port}/ (fine behind a proxy that forwards that "
        "address here)"
    ]

    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace(scaffolded, f"http://127.0.0.1:{port}"), encoding="utf-8")
    quiet = _serve_stderr(config, port)
    assert "public_url" not in quiet, quiet
