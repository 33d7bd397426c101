"""Staff sessions that end: opened by a login, kept in the store, ended by logout, idleness,
age or a new password.

The cookie holds a signed random id; the store holds only its SHA-256 with the user, the
times and the fingerprint of the password (or one-time login link) it was opened with. A
session is good while it is not revoked, was used within ``web.session_idle_minutes``, is
younger than ``web.session_max_hours`` and its fingerprint is the current one: a changed
``web.staff_password_hash`` ends every session, whether or not the server restarted.

Without a password, :attr:`Sessions.login_token` is a one-time token that ``digest serve``
prints as a login link (as Jupyter does): the only way into the staff pages.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.requests import Request

from digest.store import Store
from digest.web.security import Signer, Staff

log = logging.getLogger("digest.web")

# last_seen_at is written at most this often per session (not on every request).
TOUCH_EVERY = timedelta(seconds=60)
# Ended sessions are kept this long (who was logged in when), then deleted.
KEEP_ENDED = timedelta(days=30)
LOGIN_TOKEN_PARAM = "token"


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    lifetime: timedelta


def fingerprint(secret_key: str, user: str, credential: str) -> str:
    """What a session remembers of the password it was opened with: an HMAC, not the hash."""
    message = f"{user}\0{credential}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def session_key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    """The staff sessions of one app."""

    def __init__(
        self,
        store: Store,
        signer: Signer,
        *,
        user: str,
        password_hash: str,
        policy: SessionPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.signer = signer
        self.user = user
        self.policy = policy
        self.clock = clock
        self._lock = threading.Lock()
        self.password_set = bool(password_hash)
        # No password: one login link per server start, good once.
        self.login_token: str | None = None if password_hash else secrets.token_urlsafe(32)
        credential = password_hash or f"link:{self.login_token}"
        self.fingerprint = fingerprint(signer.secret_key, user, credential)

    def end_stale(self) -> int:
        """At start: end the sessions of another password, forget long-ended ones."""
        now = self.clock()
        ended = self.store.revoke_sessions(now, keep_fingerprint=self.fingerprint)
        if ended:
            log.info("%d staff session(s) ended: the staff password changed", ended)
        self.store.purge_sessions(now - KEEP_ENDED)
        return ended

    def open(self) -> str:
        """A new session for the staff user; the cookie value that carries it."""
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        self.store.create_session(
            session_key(session_id),
            self.user,
            self.fingerprint,
            now,
            now + self.policy.lifetime,
        )
        return self.signer.session_cookie(session_id)

    def current(self, request: Request) -> Staff | None:
        """The staff member whose open session the request's cookie names, else None."""
        session_id = self.signer.session_id(request, self.policy.lifetime.total_seconds())
        if session_id is None:
            return None
        key = session_key(session_id)
        row = self.store.staff_session(key)
        now = self.clock()
        if (
            row is None
            or row.revoked_at is not None
            or row.expires_at <= now
            or row.last_seen_at + self.policy.idle <= now
            or not hmac.compare_digest(row.fingerprint, self.fingerprint)
            or row.user != self.user
        ):
            return None
        if now - row.last_seen_at >= TOUCH_EVERY:
            self.store.touch_session(key, now)
        nonce = hashlib.sha256(f"csrf\0{session_id}".encode()).hexdigest()[:32]
        return Staff(user=row.user, nonce=nonce, session=key)

    def close(self, staff: Staff) -> None:
        """Logout: the session ends in the store; its cookie opens nothing any more."""
        self.store.revoke_session(staff.session, self.clock())

    def use_login_token(self, token: str) -> bool:
        """True once for the right one-time token (no password configured), then never."""
        with self._lock:
            expected = self.login_token
            if expected is None or not hmac.compare_digest(token.encode(), expected.encode()):
                return False
            self.login_token = None
            return True
