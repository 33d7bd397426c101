"""Schema 4: the index claims used (deliveries by issue and status).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_index("ix_deliveries_due", "deliveries", ["issue_id", "status"])
