"""``digest serve`` and ``digest hash-password``: run the app under uvicorn; hash a password."""

from __future__ import annotations

import getpass
import ipaddress
import sys
from pathlib import Path
from urllib.parse import urlsplit

from digest.errors import DigestError
from digest.web.security import hash_password


def serve(config_path: Path, host: str, port: int, public_only: bool) -> int:
    import uvicorn

    from digest.web.app import create_app

    app = create_app(config_path, public_only=public_only)
    loaded = app.state.web.loaded
    if not public_only and not _is_loopback(host):
        print(
            f"warning: staff pages on {host}: they answer only the hosts in web.allowed_hosts "
            "and need a login; consider --public-only behind a reverse proxy",
            file=sys.stderr,
        )
    if not public_only and not loaded.config.web.staff_password_hash:
        print(
            "note: no web.staff_password_hash: preview and dashboard answer this machine only, "
            "send actions are locked (see 'digest hash-password')",
            file=sys.stderr,
        )
    mismatch = public_url_mismatch(
        loaded.config.site.public_url, loaded.config.site.base_url, host, port
    )
    if mismatch:
        print(f"warning: {mismatch}", file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    print(f"digest: serving {config_path} on http://{shown}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        proxy_headers=True,  # X-Forwarded-For from a proxy on 127.0.0.1 gives the client IP
        server_header=False,
        timeout_graceful_shutdown=3,
    )
    return 0


def public_url_mismatch(public_url: str | None, base_url: str, host: str, port: int) -> str | None:
    """One line when the links in mails (``site.public_url``, else ``base_url``) do not name
    the address this server answers on, else None. Loopback names count as one; a server on
    all interfaces (0.0.0.0, ::) answers any host name on its port."""
    shown = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
    if public_url is None:
        return (
            f"site.public_url is not set: links in mails go to base_url {base_url}, not to this "
            f"server ({shown}); set site.public_url to where subscribers reach it"
        )
    parts = urlsplit(public_url)
    link_port = parts.port or (443 if parts.scheme == "https" else 80)
    link_host = parts.hostname or ""
    same_host = (
        host in ("0.0.0.0", "::")
        or link_host == host.lower()
        or (_is_loopback(link_host) and _is_loopback(host))
    )
    if parts.scheme == "http" and same_host and link_port == port:
        return None
    return (
        f"links in mails go to site.public_url {public_url}, but this server answers on {shown} "
        "(fine behind a proxy that forwards that address here)"
    )


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
