"""``digest serve`` and ``digest hash-password``: run the app under uvicorn; hash a password."""

from __future__ import annotations

import getpass
import ipaddress
import sys
from pathlib import Path
from typing import Any

from digest.errors import DigestError
from digest.web.accesslog import log_config
from digest.web.security import hash_password
from digest.web.sessions import LOGIN_TOKEN_PARAM


def proxy_options(trusted_proxies: list[str]) -> dict[str, Any]:
    """uvicorn's proxy settings: X-Forwarded-For/-Proto are believed from the configured
    proxies only, never by default (uvicorn's own default trusts 127.0.0.1, so anything
    on this machine could claim any client address and dodge the per-client limits)."""
    if not trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(trusted_proxies)}


def serve(config_path: Path, host: str, port: int, public_only: bool) -> int:
    import uvicorn

    from digest.web.app import create_app

    app = create_app(config_path, public_only=public_only)
    state = app.state.web
    web = state.loaded.config.web
    if not public_only and not _is_loopback(host):
        print(
            f"warning: staff pages on {host}: they answer only the hosts in web.allowed_hosts "
            "and need a login; consider --public-only behind a reverse proxy",
            file=sys.stderr,
        )
    shown = f"[{host}]" if ":" in host else host
    print(f"digest: serving {config_path} on http://{shown}:{port}/ (Ctrl-C to stop)")
    token = state.sessions.login_token
    if token is not None:
        print(
            "digest: no web.staff_password_hash: staff pages open only through this one-time "
            f"login link (see 'digest hash-password'):\n"
            f"    http://{_link_host(host)}:{port}/login?{LOGIN_TOKEN_PARAM}={token}",
            flush=True,
        )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        log_config=log_config(),
        server_header=False,
        timeout_graceful_shutdown=3,
        **proxy_options(web.trusted_proxies),
    )
    return 0


def _link_host(host: str) -> str:
    """The host for a link to a server bound to ``host`` (a wildcard: this machine)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def prompt_password_hash() -> str:
    """Ask for a password (twice on a terminal, once from a pipe) and return its hash."""
    if sys.stdin.isatty():
        first = getpass.getpass("Staff password: ")
        if first != getpass.getpass("Again: "):
            raise DigestError("the two passwords differ")
    else:
        first = sys.stdin.readline().rstrip("\r\n")
    if len(first) < 10:
        raise DigestError("choose a password of at least 10 characters")
    return hash_password(first)
