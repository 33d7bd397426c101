"""The databases the store's tests run on: a SQLite file, and a fresh PostgreSQL database
on the server ``DIGEST_TEST_DATABASE_URL`` names (CI starts one with ``.ci/postgres``).

Each PostgreSQL test gets a database of its own (CREATE DATABASE with a random name,
dropped afterwards), so parallel runs sharing one server never see each other's rows.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy.engine import make_url

ENV = "DIGEST_TEST_DATABASE_URL"
BOTH = ("sqlite", "postgresql")
SKIP_REASON = (
    f"PostgreSQL tests need {ENV} (a server URL; start one with "
    "`.ci/postgres start /tmp/pg13 55432`); CI always sets it"
)


def server_url() -> str:
    url = os.environ.get(ENV, "")
    if not url:
        pytest.skip(SKIP_REASON)
    return url


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database on the test server; its URL (postgresql+psycopg://)."""
    import psycopg
    from psycopg import sql

    base = make_url(server_url())
    name = f"digest_test_{secrets.token_hex(6)}"
    admin_url = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield base.set(drivername="postgresql+psycopg", database=name).render_as_string(
                hide_password=False
            )
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def migrate_to(url: str, revision: str) -> None:
    """Bring an empty database to an old schema revision, as an older digest left it."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    from digest.store._base import MIGRATIONS_DIR

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS_DIR))
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def schema_revision(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())
    finally:
        engine.dispose()
