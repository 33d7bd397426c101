"""Tables, states and migrations of the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
)

from digest.store.search_index import after_create as _search_indexes_after_create

# The Alembic head revision (``migrations/versions/NNNN_*.py``, revision id "%04d").
SCHEMA_VERSION = 9


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = MetaData()

items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uid", String(512), nullable=False, unique=True),
    Column("source", String(200), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("present", Boolean, nullable=False),
    Column("draft", Boolean, nullable=False),
    Column("data", JSON, nullable=False),
)

digests = Table(
    "digests",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("baseline", UTCDateTime, nullable=False),
)

issues = Table(
    "issues",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("digest", String(100), nullable=False),
    Column("period_key", String(40), nullable=False),
    Column("period_start", UTCDateTime, nullable=True),
    Column("period_end", UTCDateTime, nullable=False),
    Column("status", String(20), nullable=False),
    Column("subject", Text, nullable=False),
    Column("preheader", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("item_count", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime, nullable=True),
    Column("note", Text, nullable=True),
    UniqueConstraint("digest", "period_key", name="uq_issue_period"),
)

issue_items = Table(
    "issue_items",
    metadata,
    Column("issue_id", Integer, ForeignKey("issues.id"), nullable=False),
    Column("item_id", Integer, ForeignKey("items.id"), nullable=False),
    Column("digest", String(100), nullable=False),
    Column("position", Integer, nullable=False),
    UniqueConstraint("digest", "item_id", name="uq_item_once_per_digest"),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("token", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime, nullable=True),
    Column("unsubscribed_at", UTCDateTime, nullable=True),
    # Schema 8: the reader's language (a catalogue, "de"/"en") and time zone; None = the site's.
    Column("language", String(16), nullable=True),
    Column("timezone", String(64), nullable=True),
)

# Schema 8: PostgreSQL adds trigram indexes for the staff's search (store/search_index.py).
event.listen(subscribers, "after_create", _search_indexes_after_create)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), primary_key=True),
    Column("digest", String(100), primary_key=True),
)

# Schema 8: the topics (item tags) a subscriber chose for a digest; none = every topic.
subscription_topics = Table(
    "subscription_topics",
    metadata,
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), primary_key=True),
    Column("digest", String(100), primary_key=True),
    Column("topic", String(100), primary_key=True),
)

# Schema 8: one frozen rendering per variant of an issue (the items chosen, the language).
# ``key`` names the variant within its issue; ``item_ids`` is the variant's items in order.
issue_variants = Table(
    "issue_variants",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("issue_id", Integer, ForeignKey("issues.id"), nullable=False),
    Column("key", String(200), nullable=False),
    Column("language", String(16), nullable=False),
    Column("item_ids", JSON, nullable=False),
    Column("subject", Text, nullable=False),
    Column("preheader", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=False),
    UniqueConstraint("issue_id", "key", name="uq_variant_key"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("issue_id", Integer, ForeignKey("issues.id"), nullable=False, index=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("name", String(200), nullable=False),
    Column("message_id", String(200), nullable=False, unique=True),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("claimed_by", String(100), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),  # schema 5: the claim's lease end
    Column("payload_at", UTCDateTime, nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    # VERP: the token in this delivery's return path (bounces+{token}@...); random, not the
    # subscriber's unsubscribe token.
    Column("verp_token", String(32), nullable=True),
    # Schema 8: the issue_variants row this row sends; None = the issue's own rendering. No
    # foreign key: SQLite cannot add one to an existing table without rebuilding it.
    Column("variant_id", Integer, nullable=True),
    # Schema 9: not to be sent before this instant (the reader's local ``deliver_at``);
    # None = at once, as every row made before this revision.
    Column("not_before", UTCDateTime, nullable=True),
    UniqueConstraint("issue_id", "subscriber_id", name="uq_delivery_once"),
)
uq_deliveries_verp_token = Index("uq_deliveries_verp_token", deliveries.c.verp_token, unique=True)
# A bounce that names only an address finds the subscriber's latest delivery by this.
ix_deliveries_subscriber = Index("ix_deliveries_subscriber", deliveries.c.subscriber_id)
# Schema 5: claims read the next due rows of an issue in id order straight off this index,
# however much history the table holds (PostgreSQL, unlike SQLite, does not add the row id
# to an index by itself: with (issue_id, status) alone a claim sorted, 6 ms rising to 40 ms).
# Schema 9 puts ``not_before`` before the id: rows to send at once (NULL) are one range in id
# order, rows waiting for their local time another in (not_before, id) order, so a claim
# reads only what is due however many rows wait (``DeliveryStore.claim``).
ix_deliveries_claim = Index(
    "ix_deliveries_claim",
    deliveries.c.issue_id,
    deliveries.c.status,
    deliveries.c.not_before,
    deliveries.c.id,
)
# Rows being sent and rows in doubt are few, whatever the history: crash recovery, lease
# renewal and the in-doubt report read these partial indexes, never the whole table.
ix_deliveries_sending = Index(
    "ix_deliveries_sending",
    deliveries.c.claimed_by,
    sqlite_where=deliveries.c.status == "sending",
    postgresql_where=deliveries.c.status == "sending",
)
ix_deliveries_in_doubt = Index(
    "ix_deliveries_in_doubt",
    deliveries.c.issue_id,
    sqlite_where=deliveries.c.status == "in_doubt",
    postgresql_where=deliveries.c.status == "in_doubt",
)

# Schema 8 (issue 14): erased addresses (GDPR Art. 17) as a SHA-256 of the normalised
# address and nothing else: enough to stop a later import from adding them back by mistake.
erasures = Table(
    "erasures",
    metadata,
    Column("address_hash", String(64), primary_key=True),
    Column("erased_at", UTCDateTime, nullable=False),
)

# Double opt-in sign-ups and their consent record (schema 2): who asked, when, from where,
# with which form and consent text; confirmed_at is set when the confirm button was pressed.
consents = Table(
    "consents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token", String(64), nullable=False, unique=True),
    Column("email", String(320), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("digests", Text, nullable=False),  # names joined by ";"
    Column("requested_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("request_ip", String(64), nullable=False),
    Column("request_user_agent", Text, nullable=False),
    Column("form_url", Text, nullable=False),
    Column("consent_version", String(100), nullable=False),
    Column("confirmed_at", UTCDateTime, nullable=True),
    Column("confirm_ip", String(64), nullable=True),
    Column("confirm_user_agent", Text, nullable=True),
    Column("language", String(16), nullable=True),  # schema 9: the frame language asked for
    Column("topics", JSON, nullable=True),  # schema 9: {digest: [topic, ...]} ticked at sign-up
)

# Per source: conditional-GET validators and health after the latest collection (schema 3).
source_states = Table(
    "source_states",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("etag", Text, nullable=True),
    Column("last_modified", String(100), nullable=True),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    Column("last_success_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("item_count", Integer, nullable=False),
    Column("failures", Integer, nullable=False),
)

# Every bounce, complaint and delayed-delivery notice received, matched or not: the bounce log.
bounce_log = Table(
    "bounce_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("fingerprint", String(64), nullable=False, unique=True),  # one report, one row
    Column("received_at", UTCDateTime, nullable=False),
    Column("kind", String(20), nullable=False),  # hard | soft | delayed | complaint
    Column("address", String(320), nullable=False),
    Column("status", String(20), nullable=False),  # RFC 3463 code, "" if none given
    Column("diagnostic", Text, nullable=False),
    Column("source", String(40), nullable=False),  # dsn, mta, arf, ses, postmark, ...
    Column("origin", String(500), nullable=False),  # file, maildir key, imap uid, webhook
    Column("score", Float, nullable=False),  # what it added to the soft-bounce score
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), nullable=True, index=True),
    Column("delivery_id", Integer, ForeignKey("deliveries.id"), nullable=True),
    Column("issue_id", Integer, ForeignKey("issues.id"), nullable=True, index=True),
)

workers = Table(
    "workers",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)

# Staff login sessions (schema 7): the cookie carries a random id, the row its SHA-256, so a
# copy of the database opens no session. A row ends when revoked (logout), when idle or past
# its absolute end, or when its password fingerprint is no longer the configured one.
staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("staff_user", String(200), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    Column("revoked_at", UTCDateTime, nullable=True),
)

# Issue states.
ISSUE_SENDING, ISSUE_PAUSED, ISSUE_DONE, ISSUE_EMPTY, ISSUE_SKIPPED = (
    "sending", "paused", "done", "empty", "skipped",
)  # fmt: skip
# Delivery states.
PENDING, SENDING, SENT, FAILED_TEMP, FAILED_PERM, IN_DOUBT, SKIPPED = (
    "pending", "sending", "sent", "failed_temp", "failed_perm", "in_doubt", "skipped",
)  # fmt: skip
DELIVERY_STATES = (PENDING, SENDING, SENT, FAILED_TEMP, FAILED_PERM, IN_DOUBT, SKIPPED)
# Subscriber states. Bounced and complained addresses are suppressed: no mail, and an import
# never re-activates them.
SUBSCRIBER_PENDING, SUBSCRIBER_ACTIVE, SUBSCRIBER_UNSUBSCRIBED = (
    "pending", "active", "unsubscribed",
)  # fmt: skip
SUBSCRIBER_BOUNCED, SUBSCRIBER_COMPLAINED = "bounced", "complained"
SUBSCRIBER_STATES = (
    SUBSCRIBER_PENDING, SUBSCRIBER_ACTIVE, SUBSCRIBER_UNSUBSCRIBED, SUBSCRIBER_BOUNCED,
    SUBSCRIBER_COMPLAINED,
)  # fmt: skip
SUPPRESSED_STATES = (SUBSCRIBER_BOUNCED, SUBSCRIBER_COMPLAINED)
# An erased subscriber's row stays (delivery rows point to it) without address or name.
SUBSCRIBER_ERASED = "erased"
WORKER_LEASE = timedelta(minutes=2)
