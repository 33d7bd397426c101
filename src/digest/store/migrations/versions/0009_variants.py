"""Schema 9 (issue 15): a digest for each reader.

- ``subscribers.language`` and ``subscribers.timezone``: the reader's frame language and time
  zone (None: the site's);
- ``consents.language``: the language chosen at sign-up (the browser's by default);
- ``consents.topics``: the topics ticked at sign-up per digest, applied on confirmation;
- ``subscription_topics``: the topics (item tags) a subscriber chose for a digest;
- ``issue_variants``: one frozen rendering per (items chosen, language) of an issue;
- ``deliveries.variant_id``: the variant a row sends (None: the issue's own rendering, as every
  row made before this revision);
- ``deliveries.not_before``: not to be sent before this instant (a digest's ``deliver_at`` in
  the reader's time zone; None: at once), and ``ix_deliveries_claim`` on (issue_id, status,
  not_before, id) so that claims read only the rows that are due.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.add_column("subscribers", sa.Column("language", sa.String(16), nullable=True))
    op.add_column("subscribers", sa.Column("timezone", sa.String(64), nullable=True))
    op.add_column("consents", sa.Column("language", sa.String(16), nullable=True))
    op.add_column("consents", sa.Column("topics", sa.JSON, nullable=True))
    op.create_table(
        "subscription_topics",
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), primary_key=True),
        sa.Column("digest", sa.String(100), primary_key=True),
        sa.Column("topic", sa.String(100), primary_key=True),
    )
    op.create_table(
        "issue_variants",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("issue_id", sa.Integer, sa.ForeignKey("issues.id"), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("item_ids", sa.JSON, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("preheader", sa.Text, nullable=False),
        sa.Column("html", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.UniqueConstraint("issue_id", "key", name="uq_variant_key"),
    )
    # No foreign key: SQLite would rebuild the table (and its partial indexes) to add one.
    op.add_column("deliveries", sa.Column("variant_id", sa.Integer, nullable=True))

    # Local delivery time: a not-before instant per row, and the claim index that skips the
    # rows still waiting for theirs.
    op.add_column("deliveries", sa.Column("not_before", sa.DateTime, nullable=True))
    op.drop_index("ix_deliveries_claim", table_name="deliveries")
    op.create_index("ix_deliveries_claim", "deliveries", ["issue_id", "status", "not_before", "id"])
