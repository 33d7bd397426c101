"""Schema 3: source_states (conditional-GET validators and source health).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "source_states",
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("etag", sa.Text, nullable=True),
        sa.Column("last_modified", sa.String(100), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime, nullable=True),
        sa.Column("last_success_at", sa.DateTime, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
    )
