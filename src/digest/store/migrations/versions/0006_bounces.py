"""Schema 6 (issue 12): the bounce log and each delivery's VERP token.

- ``bounce_log``: every bounce, complaint and delayed-delivery notice received, matched to
  its subscriber, delivery and issue where possible; ``fingerprint`` is unique, so a report
  read twice is kept once;
- ``deliveries.verp_token``: the random token in the delivery's return path
  (``bounces.return_path``); rows made before this revision have none;
- ``ix_deliveries_subscriber``: a bounce naming only an address finds the latest delivery.

Subscriber statuses ``bounced`` and ``complained`` need no change: ``status`` is a string.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "bounce_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("diagnostic", sa.Text, nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("origin", sa.String(500), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=True),
        sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id"), nullable=True),
        sa.Column("issue_id", sa.Integer, sa.ForeignKey("issues.id"), nullable=True),
    )
    op.create_index("ix_bounce_log_subscriber_id", "bounce_log", ["subscriber_id"])
    op.create_index("ix_bounce_log_issue_id", "bounce_log", ["issue_id"])
    op.add_column("deliveries", sa.Column("verp_token", sa.String(32), nullable=True))
    op.create_index("uq_deliveries_verp_token", "deliveries", ["verp_token"], unique=True)
    op.create_index("ix_deliveries_subscriber", "deliveries", ["subscriber_id"])
