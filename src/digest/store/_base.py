"""The store's engine, transactions and schema upkeep."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from digest.errors import StoreError
from digest.store.schema import SCHEMA_VERSION, metadata

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# pg_advisory_xact_lock key held while the schema is created or migrated ("digest" + 1).
MIGRATION_LOCK = 0x64_69_67_65_73_74_00_01
# Every PostgreSQL session: a stuck statement, lock wait or forgotten transaction ends
# with an error instead of holding rows (and FOR UPDATE locks) forever.
PG_SESSION_OPTIONS = {
    "lock_timeout": "10s",
    "statement_timeout": "120s",
    "idle_in_transaction_session_timeout": "60s",
}

SQLITE_PREFIX = "sqlite:///"


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL (query string dropped); None for an in-memory
    database or another backend. The one place that reads SQLite URLs."""
    if not url.startswith(SQLITE_PREFIX):
        return None
    path = url[len(SQLITE_PREFIX) :].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


def resolve_database_url(url: str, base_dir: Path) -> str:
    """``url`` with a relative SQLite file taken relative to ``base_dir`` (the config's folder)."""
    path = sqlite_path(url)
    if path is None or url.startswith(SQLITE_PREFIX + "/"):
        return url
    candidate = Path(url[len(SQLITE_PREFIX) :]).expanduser()
    return SQLITE_PREFIX + str(candidate if candidate.is_absolute() else base_dir / candidate)


class StoreBase:
    """Also a context manager: ``with Store.open(url) as store:`` closes it on the way out."""

    def __init__(self, engine: Engine, *, synchronous_commit: bool = True) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        # PostgreSQL: False lets sender connections commit their marks without waiting for
        # the WAL flush (a server crash may lose the last ~0.6 s of marks, as SQLite's
        # synchronous=NORMAL may after a power loss; a process crash loses nothing).
        self.synchronous_commit = synchronous_commit
        self._local = threading.local()  # a sender thread's own driver connection

    @classmethod
    def open(
        cls,
        url: str,
        *,
        create: bool = True,
        application_name: str = "digest",
        pool_size: int = 5,
        synchronous_commit: bool = True,
    ) -> Self:
        """Connect, then create the schema or migrate it to the head revision.

        ``pool_size``: pooled connections (PostgreSQL) for everything but the senders'
        marks, which use one connection per sender thread outside the pool."""
        url = normalise_url(url)
        engine = _engine(url, application_name, pool_size)
        store = cls(engine, synchronous_commit=synchronous_commit)
        try:
            store.migrate(create=create)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StoreError(f"database {safe_url(url)}: {describe_error(exc)}") from None
        except StoreError as exc:  # e.g. a newer schema: name the database in the message
            engine.dispose()
            raise StoreError(f"database {safe_url(url)}: {exc}") from None
        return store

    @classmethod
    def open_for_reading(cls, url: str) -> Self:
        """The store if it exists, else an empty in-memory one: previews write no file."""
        path = sqlite_path(url)
        if path is not None and not path.exists():
            return cls.open("sqlite://")
        return cls.open(url)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def migrate(self, *, create: bool = True) -> None:
        """Create the schema or bring it to the head revision; refuse a newer one.

        One process at a time: on PostgreSQL under a transaction-level advisory lock, on
        SQLite under the write lock BEGIN IMMEDIATE takes; whoever waited finds the work
        done. An empty database gets the tables in one step and is stamped with the head;
        an older one runs the Alembic revisions it lacks (DDL is transactional on both
        databases: a failed migration leaves the old schema)."""
        with self.begin() as conn:
            if not self.is_sqlite:
                conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
                conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            current, legacy = schema_revision(conn)
            if current == SCHEMA_VERSION:
                return
            if current is None:
                if not create:
                    raise StoreError("database has no digest schema")
                metadata.create_all(conn)
                _alembic(conn, "stamp", "head")
                return
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"database schema version {current} is newer than this digest "
                    f"understands ({SCHEMA_VERSION}); upgrade digest"
                )
            if legacy:  # numbered by the store before Alembic: the same history
                _alembic(conn, "stamp", f"{current:04d}")
            _alembic(conn, "upgrade", "head")

    def upsert(self, table: Table) -> sqlite_dialect.Insert | postgresql_dialect.Insert:
        """An INSERT that can say ON CONFLICT: two processes adding the same row at once
        never both insert it, and neither fails (read-then-insert races on PostgreSQL)."""
        if self.is_sqlite:
            return sqlite_dialect.insert(table)
        return postgresql_dialect.insert(table)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            if self.is_sqlite:
                # Take the write lock up front: two writers never deadlock on lock upgrade.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 module's own transaction handling would fight BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: safe against process crashes
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def schema_revision(conn: Connection) -> tuple[int | None, bool]:
    """(revision number, numbered before Alembic?) of the database; (None, False) if empty."""
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" in tables:
        value = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        if value is not None:
            try:
                return int(value), False
            except ValueError:
                raise StoreError(f"database schema revision {value!r} is not digest's") from None
    if "schema_info" in tables:
        return int(conn.exec_driver_sql("SELECT version FROM schema_info").scalar_one()), True
    return None, False


def _alembic(conn: Connection, command_name: str, revision: str) -> None:
    """Run an Alembic command on ``conn``, inside the caller's transaction and lock."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    getattr(command, command_name)(config, revision)


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean PostgreSQL through psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _engine(url: str, application_name: str, pool_size: int) -> Engine:
    try:
        dialect = make_url(url).get_backend_name()
    except ArgumentError:
        raise StoreError(f"database {safe_url(url)}: not a database URL") from None
    if dialect not in ("sqlite", "postgresql"):
        raise StoreError(
            f"database {safe_url(url)}: unsupported; use sqlite:///FILE or "
            "postgresql+psycopg://USER@HOST/NAME"
        )
    try:
        if url in ("sqlite://", "sqlite:///:memory:"):
            # One shared connection, or every thread would see its own empty database.
            return _sqlite(
                create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
            )
        if dialect == "sqlite":
            return _sqlite(create_engine(url))
        options = " ".join(f"-c {key}={value}" for key, value in PG_SESSION_OPTIONS.items())
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=0,  # the connection budget is what the config says
            pool_timeout=60,
            connect_args={"options": options, "application_name": application_name[:63]},
        )
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"database {safe_url(url)}: the driver is not installed ({exc.name}); "
            "for PostgreSQL: pip install 'digest[postgres]'"
        ) from None
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StoreError(f"database {safe_url(url)}: {exc}") from None


def _sqlite(engine: Engine) -> Engine:
    event.listen(engine, "connect", sqlite_pragmas)
    return engine


def describe_error(exc: BaseException) -> str:
    """A database error as one line: the driver's message without SQL, parameters or
    SQLAlchemy's background link."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return "; ".join(lines) or type(cause).__name__


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url
