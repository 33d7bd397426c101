"""Staff login, CSRF tokens, the Host check and rate limits for ``digest serve``.

- Passwords: PBKDF2-HMAC-SHA256 (``hashlib``), stored as ``pbkdf2_sha256$<iterations>$<salt
  hex>$<hash hex>`` (no ``{`` or ``}``: safe next to ``${VAR}`` expansion in config.yaml).
- Sessions: one signed, time-limited cookie (itsdangerous) set only by the staff login; public
  pages never set a cookie, so the RFC 8058 one-click POST works without any.
- CSRF: every state-changing form carries a signed token bound to its purpose (and, on staff
  pages, to the login session); it needs no server-side state.
- Host check: staff pages answer only the configured Host names, which stops DNS rebinding
  against a server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request

PBKDF2_ITERATIONS = 600_000
SESSION_COOKIE = "digest_staff"
SESSION_MAX_AGE = 12 * 3600
STAFF_FORM_MAX_AGE = 12 * 3600
PUBLIC_FORM_MAX_AGE = 24 * 3600


def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS) -> str:
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, expected = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        digest = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), bytes.fromhex(salt), int(iterations)
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), expected)


@dataclass(frozen=True)
class Staff:
    user: str
    nonce: str  # binds CSRF tokens to this login


class Signer:
    """Session cookies and CSRF tokens, signed with the server's secret key."""

    def __init__(self, secret_key: str) -> None:
        self.session = URLSafeTimedSerializer(secret_key, salt="digest.session")
        self.csrf = URLSafeTimedSerializer(secret_key, salt="digest.csrf")

    def session_cookie(self, user: str) -> str:
        return self.session.dumps({"u": user, "n": secrets.token_urlsafe(16)})

    def staff(self, request: Request) -> Staff | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        try:
            data: Any = self.session.loads(cookie, max_age=SESSION_MAX_AGE)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("u"), str):
            return None
        return Staff(user=data["u"], nonce=str(data.get("n", "")))

    def csrf_token(self, purpose: str, staff: Staff | None = None) -> str:
        return self.csrf.dumps([purpose, staff.nonce if staff else ""])

    def check_csrf(self, token: str | None, purpose: str, staff: Staff | None = None) -> bool:
        if not token:
            return False
        max_age = STAFF_FORM_MAX_AGE if staff else PUBLIC_FORM_MAX_AGE
        try:
            data: Any = self.csrf.loads(token, max_age=max_age)
        except BadSignature:
            return False
        expected = [purpose, staff.nonce if staff else ""]
        return isinstance(data, list) and data == expected


def host_allowed(request: Request, allowed: list[str]) -> bool:
    """True if the Host header (without port) is one of ``allowed`` (``*`` allows any)."""
    if "*" in allowed:
        return True
    host = request.headers.get("host", "")
    if host.startswith("["):  # [::1]:8000
        name = host.split("]", 1)[0] + "]"
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name.lower() in {entry.lower() for entry in allowed}


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def is_loopback(request: Request) -> bool:
    try:
        return ipaddress.ip_address(client_ip(request)).is_loopback
    except ValueError:
        return client_ip(request) == "testclient"  # starlette's TestClient


class RateLimiter:
    """At most ``limit`` hits per key within ``seconds`` (sliding window, in memory)."""

    MAX_KEYS = 10_000

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.hits: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self.lock:
            if len(self.hits) > self.MAX_KEYS:
                self._prune(now)
            window = self.hits.setdefault(key, deque())
            while window and window[0] <= now - self.seconds:
                window.popleft()
            if len(window) >= self.limit:
                return False
            window.append(now)
            return True

    def _prune(self, now: float) -> None:
        for key in [k for k, w in self.hits.items() if not w or w[-1] <= now - self.seconds]:
            del self.hits[key]
