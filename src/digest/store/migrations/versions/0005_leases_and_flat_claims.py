"""Schema 5 (issue 13): claim leases, id-ordered claims, partial indexes, Alembic only.

- ``deliveries.lease_until``: when a claim's lease ends (fencing of frozen workers);
- ``ix_deliveries_claim`` (issue_id, status, id) replaces ``ix_deliveries_due``: PostgreSQL
  reads claims in id order off it instead of sorting every due row;
- partial indexes for rows ``sending`` and ``in_doubt``: recovery and reports stay flat;
- ``schema_info`` goes: ``alembic_version`` is the one record of the schema.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("lease_until", sa.DateTime, nullable=True))
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.create_index("ix_deliveries_claim", "deliveries", ["issue_id", "status", "id"])
    sending = sa.text("status = 'sending'")
    in_doubt = sa.text("status = 'in_doubt'")
    op.create_index(
        "ix_deliveries_sending",
        "deliveries",
        ["claimed_by"],
        sqlite_where=sending,
        postgresql_where=sending,
    )
    op.create_index(
        "ix_deliveries_in_doubt",
        "deliveries",
        ["issue_id"],
        sqlite_where=in_doubt,
        postgresql_where=in_doubt,
    )
    bind = op.get_bind()
    if sa.inspect(bind).has_table("schema_info"):
        op.drop_table("schema_info")
