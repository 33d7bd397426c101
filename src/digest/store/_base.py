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
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import SQLAlchemyError as _SQLAlchemyError
from sqlalchemy.pool import StaticPool

from digest.errors import StoreError
from digest.store.schema import MIGRATIONS, SCHEMA_VERSION, metadata, schema_info

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

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._local = threading.local()  # a sender thread's own driver connection

    @classmethod
    def open(cls, url: str, *, create: bool = True) -> Self:
        try:
            if url in ("sqlite://", "sqlite:///:memory:"):
                # One shared connection, or every thread would see its own empty database.
                engine = create_engine(
                    url, poolclass=StaticPool, connect_args={"check_same_thread": False}
                )
            else:
                engine = create_engine(url)
        except (_SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreError(f"database {_safe_url(url)}: {exc}") from None
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", sqlite_pragmas)
        store = cls(engine)
        try:
            store.migrate(create=create)
        except OperationalError as exc:
            engine.dispose()
            raise StoreError(f"database {_safe_url(url)}: {exc.orig}") from None
        except StoreError as exc:  # e.g. a newer schema: name the database in the message
            engine.dispose()
            raise StoreError(f"database {_safe_url(url)}: {exc}") from None
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
        """Create the schema or bring it to :data:`SCHEMA_VERSION`; refuse a newer one."""
        with self.begin() as conn:
            if not self.engine.dialect.has_table(conn, "schema_info"):
                if not create:
                    raise StoreError("database has no digest schema")
                metadata.create_all(conn)
                conn.execute(insert(schema_info).values(version=SCHEMA_VERSION))
                return
            version = conn.execute(select(schema_info.c.version)).scalar_one()
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"database schema version {version} is newer than this digest "
                    f"understands ({SCHEMA_VERSION}); upgrade digest"
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[step](conn)
                conn.execute(update(schema_info).values(version=step))

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


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url
