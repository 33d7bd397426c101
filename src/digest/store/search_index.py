"""Trigram indexes for the staff's subscriber search on PostgreSQL (schema 8).

``LIKE '%part%'`` on the address or the lower-cased name reads a GIN trigram index
(``pg_trgm``) instead of the whole table: a search that matches few rows, or none, costs a
few milliseconds at 100,000 subscribers instead of ~130 ms. ``pg_trgm`` ships with
PostgreSQL and is a trusted extension (the database owner may create it); where it cannot be
created the search still works, as a scan. SQLite has no such index here: its scan of 100,000
rows takes ~110 ms (bench/admin.py).

The indexes live outside :data:`digest.store.schema.metadata` (SQLite cannot have them); a
new PostgreSQL database gets them right after its ``subscribers`` table, an old one from
revision 0008.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

log = logging.getLogger("digest.store")

TRIGRAM_INDEXES = {
    "ix_subscribers_email_trgm": "email gin_trgm_ops",
    "ix_subscribers_name_trgm": "lower(name) gin_trgm_ops",
}


def create_search_indexes(conn: Connection) -> bool:
    """Create ``pg_trgm`` and the trigram indexes (PostgreSQL only); False if the extension
    is not available to this user (then the search scans)."""
    if conn.dialect.name != "postgresql":
        return False
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError as exc:
        log.warning("no pg_trgm (%s): the subscriber search scans the table", exc.orig)
        return False
    for name, column in TRIGRAM_INDEXES.items():
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {name} ON subscribers USING gin ({column})"
        )
    return True


def after_create(target: Any, connection: Connection, **kw: Any) -> None:
    create_search_indexes(connection)
