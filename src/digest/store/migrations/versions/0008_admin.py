"""Schema 8 (issue 14, staff admin): erasure tombstones, search indexes.

- ``erasures``: the SHA-256 of each erased address, so an import does not add it back;
- on PostgreSQL, trigram indexes for the subscriber search (``digest.store.search_index``).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.store.search_index import create_search_indexes

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("address_hash", sa.String(64), primary_key=True),
        sa.Column("erased_at", sa.DateTime, nullable=False),
    )
    create_search_indexes(op.get_bind())
