"""Schema 2: the consents table (double opt-in sign-ups and their consent record).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("email", sa.String(320), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("digests", sa.Text, nullable=False),
        sa.Column("requested_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("request_ip", sa.String(64), nullable=False),
        sa.Column("request_user_agent", sa.Text, nullable=False),
        sa.Column("form_url", sa.Text, nullable=False),
        sa.Column("consent_version", sa.String(100), nullable=False),
        sa.Column("confirmed_at", sa.DateTime, nullable=True),
        sa.Column("confirm_ip", sa.String(64), nullable=True),
        sa.Column("confirm_user_agent", sa.Text, nullable=True),
    )
