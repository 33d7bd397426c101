"""Schema 6 (issue 14, staff admin): erasure tombstones, deliveries by subscriber.

- ``erasures``: the salted SHA-256 of each erased address, so an import does not add it back;
- ``ix_deliveries_subscriber`` (subscriber_id, id): a subscriber's deliveries without a scan;
- on PostgreSQL, trigram indexes for the subscriber search (``digest.store.search_index``).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.store.search_index import create_search_indexes

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("address_hash", sa.String(64), primary_key=True),
        sa.Column("erased_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_deliveries_subscriber", "deliveries", ["subscriber_id", "id"])
    create_search_indexes(op.get_bind())
