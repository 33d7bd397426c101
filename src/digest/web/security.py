"""Staff passwords, signed cookies and CSRF tokens, the Host check, client addresses and rate
limits for ``digest serve``.

- Passwords: PBKDF2-HMAC-SHA256 (``hashlib``), stored as ``pbkdf2_sha256$<iterations>$<salt
  hex>$<hash hex>`` (no ``{`` or ``}``: safe next to ``${VAR}`` expansion in config.yaml).
- Session cookie: a signed random session id, set only by the staff login; the session itself
  lives in the store (:mod:`digest.web.sessions`). Public pages never set a cookie, so the
  RFC 8058 one-click POST works without any.
- CSRF: every state-changing form carries a signed token bound to its purpose (and, on staff
  pages, to the login session); it needs no server-side state.
- Host check: staff pages answer only the configured Host names, which stops DNS rebinding
  against a server on 127.0.0.1.
- Client address: the peer, or what a trusted proxy (``web.trusted_proxies``) says; uvicorn
  applies that before the app sees the request. Limits key IPv6 clients by their /64.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request

PBKDF2_ITERATIONS = 600_000
SESSION_COOKIE = "digest_staff"
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
    """A logged-in staff member: who, and the session (its store key, and the nonce that
    binds CSRF tokens to it)."""

    user: str
    nonce: str
    session: str = ""


class Signer:
    """Session cookies and CSRF tokens, signed with the server's secret key."""

    def __init__(self, secret_key: str) -> None:
        self.secret_key = secret_key
        self.session = URLSafeTimedSerializer(secret_key, salt="digest.session")
        self.csrf = URLSafeTimedSerializer(secret_key, salt="digest.csrf")

    def session_cookie(self, session_id: str) -> str:
        return self.session.dumps({"s": session_id})

    def session_id(self, request: Request, max_age: float) -> str | None:
        """The session id of the request's cookie, if its signature is good and not older
        than ``max_age`` seconds (whether the session is still open is the store's word)."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        try:
            data: Any = self.session.loads(cookie, max_age=int(max_age))
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("s"), str):
            return None
        session_id: str = data["s"]
        return session_id

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
    """The client's address: the peer, or what a trusted proxy said (see the module doc)."""
    return request.client.host if request.client else "unknown"


def client_key(address: str) -> str:
    """The rate limiters' key for a client address: IPv4 as is, IPv6 by its /64 (one
    subscriber line has a whole /64), an IPv4-mapped IPv6 address as its IPv4."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class RateLimiter:
    """At most ``limit`` hits per key within ``seconds`` (sliding window, in memory).

    Memory is bounded: each key keeps at most ``limit`` times, and at most ``max_keys`` keys
    are kept; past that, keys whose window has passed go first, then the least recently
    used ones."""

    def __init__(self, limit: int, seconds: float, *, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.seconds = seconds
        self.max_keys = max_keys
        self.hits: OrderedDict[str, deque[float]] = OrderedDict()
        self.lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        """Count a hit for ``key`` unless it is over the limit; True if it was not."""
        now = time.monotonic() if now is None else now
        with self.lock:
            window = self._window(key, now)
            if len(window) >= self.limit:
                return False
            window.append(now)
            return True

    def blocked(self, key: str, now: float | None = None) -> bool:
        """True if ``key`` is at its limit (counts nothing)."""
        now = time.monotonic() if now is None else now
        with self.lock:
            window = self.hits.get(key)
            if window is None:
                return False
            self.hits.move_to_end(key)
            self._expire(window, now)
            return len(window) >= self.limit

    def hit(self, key: str, now: float | None = None) -> None:
        """Count a hit for ``key`` (e.g. a failed login)."""
        now = time.monotonic() if now is None else now
        with self.lock:
            self._window(key, now).append(now)

    def _window(self, key: str, now: float) -> deque[float]:
        window = self.hits.get(key)
        if window is None:
            if len(self.hits) >= self.max_keys:
                self._make_room(now)
            window = self.hits[key] = deque(maxlen=self.limit)
        else:
            self.hits.move_to_end(key)
        self._expire(window, now)
        return window

    def _expire(self, window: deque[float], now: float) -> None:
        while window and window[0] <= now - self.seconds:
            window.popleft()

    def _make_room(self, now: float) -> None:
        for key in [k for k, w in self.hits.items() if not w or w[-1] <= now - self.seconds]:
            del self.hits[key]
        while len(self.hits) >= self.max_keys:
            self.hits.popitem(last=False)
