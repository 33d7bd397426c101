"""Staff login sessions: created at login, read on every staff request, revoked at logout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, or_, select, update

from digest.store._base import StoreBase
from digest.store.schema import staff_sessions


@dataclass(frozen=True)
class StaffSession:
    key: str  # SHA-256 of the id in the cookie
    user: str
    fingerprint: str  # of the password (or login link) the session was opened with
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # the absolute end
    revoked_at: datetime | None


class SessionStore(StoreBase):
    def create_session(
        self, key: str, user: str, fingerprint: str, now: datetime, expires_at: datetime
    ) -> None:
        with self.begin() as conn:
            conn.execute(
                insert(staff_sessions).values(
                    key=key,
                    staff_user=user,
                    fingerprint=fingerprint,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=expires_at,
                )
            )

    def staff_session(self, key: str) -> StaffSession | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(staff_sessions).where(staff_sessions.c.key == key)).first()
        if row is None:
            return None
        return StaffSession(
            key=row.key,
            user=row.staff_user,
            fingerprint=row.fingerprint,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
        )

    def touch_session(self, key: str, now: datetime) -> None:
        with self.begin() as conn:
            conn.execute(
                update(staff_sessions)
                .where(staff_sessions.c.key == key, staff_sessions.c.revoked_at.is_(None))
                .values(last_seen_at=now)
            )

    def revoke_session(self, key: str, now: datetime) -> bool:
        """End one session (logout); False if it had already ended."""
        with self.begin() as conn:
            result = conn.execute(
                update(staff_sessions)
                .where(staff_sessions.c.key == key, staff_sessions.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return result.rowcount > 0

    def revoke_sessions(self, now: datetime, *, keep_fingerprint: str | None = None) -> int:
        """End every open session, or every one not opened with ``keep_fingerprint`` (the
        password changed); returns how many."""
        statement = update(staff_sessions).where(staff_sessions.c.revoked_at.is_(None))
        if keep_fingerprint is not None:
            statement = statement.where(staff_sessions.c.fingerprint != keep_fingerprint)
        with self.begin() as conn:
            result = conn.execute(statement.values(revoked_at=now))
        return result.rowcount

    def purge_sessions(self, before: datetime) -> int:
        """Forget sessions that ended (expired or revoked) before ``before``."""
        with self.begin() as conn:
            result = conn.execute(
                delete(staff_sessions).where(
                    or_(staff_sessions.c.expires_at < before, staff_sessions.c.revoked_at < before)
                )
            )
        return result.rowcount
