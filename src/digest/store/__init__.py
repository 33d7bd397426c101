"""The store: items seen, the issue ledger, deliveries and subscribers (SQLAlchemy 2 Core).

SQLite (WAL) is the embedded default; the same statements run on PostgreSQL. Uniqueness is
enforced by the database, not by the code that usually gets it right:

- ``issues``: UNIQUE(digest, period_key): one issue per period, however many senders race;
- ``issue_items``: UNIQUE(digest, item_id): an item goes into one issue of a digest, ever;
- ``deliveries``: UNIQUE(issue_id, subscriber_id) and UNIQUE(message_id).

Times are stored as naive UTC and returned as aware UTC datetimes.
"""

from __future__ import annotations

from digest.store._base import (
    SQLITE_PREFIX,
    StoreBase,
    describe_error,
    resolve_database_url,
    sqlite_path,
)
from digest.store._deliveries import DeliveryStore, new_worker_id
from digest.store._directory import SubscriberDirectory, address_hash
from digest.store._feedback import FeedbackStore
from digest.store._issues import Audience, IssueStore
from digest.store._items import ItemStore
from digest.store._profiles import ProfileStore
from digest.store._resolve import IssueResolution
from digest.store._sessions import SessionStore, StaffSession
from digest.store._subscribers import SubscriberStore
from digest.store.rows import (
    NOT_GIVEN,
    BounceView,
    Consent,
    DeliveryRow,
    ImportCounts,
    IssueDelivery,
    IssueExists,
    IssueRow,
    NewVariant,
    NotGiven,
    ReaderSettings,
    ReaderUpdate,
    StoredItem,
    Subscriber,
    SubscriberDelivery,
    SubscriberPage,
    SubscriberRecord,
    VariantRow,
    item_from_json,
    item_to_json,
    new_token,
)
from digest.store.schema import (
    DELIVERY_STATES,
    FAILED_PERM,
    FAILED_TEMP,
    IN_DOUBT,
    ISSUE_DONE,
    ISSUE_EMPTY,
    ISSUE_PAUSED,
    ISSUE_SENDING,
    ISSUE_SKIPPED,
    PENDING,
    SCHEMA_VERSION,
    SENDING,
    SENT,
    SKIPPED,
    SUBSCRIBER_ACTIVE,
    SUBSCRIBER_BOUNCED,
    SUBSCRIBER_COMPLAINED,
    SUBSCRIBER_ERASED,
    SUBSCRIBER_PENDING,
    SUBSCRIBER_STATES,
    SUBSCRIBER_UNSUBSCRIBED,
    SUPPRESSED_STATES,
    WORKER_LEASE,
    UTCDateTime,
    bounce_log,
    consents,
    deliveries,
    digests,
    erasures,
    issue_items,
    issue_variants,
    issues,
    items,
    ix_deliveries_claim,
    ix_deliveries_in_doubt,
    ix_deliveries_sending,
    ix_deliveries_subscriber,
    metadata,
    source_states,
    staff_sessions,
    subscribers,
    subscription_topics,
    subscriptions,
    workers,
)


class Store(
    ItemStore,
    DeliveryStore,
    IssueStore,
    SubscriberStore,
    FeedbackStore,
    SessionStore,
    SubscriberDirectory,
    IssueResolution,
    StoreBase,
):
    """One database: each concern's statements live in their own module (see the mixins)."""


__all__ = [
    "DELIVERY_STATES",
    "FAILED_PERM",
    "FAILED_TEMP",
    "IN_DOUBT",
    "ISSUE_DONE",
    "ISSUE_EMPTY",
    "ISSUE_PAUSED",
    "ISSUE_SENDING",
    "ISSUE_SKIPPED",
    "NOT_GIVEN",
    "PENDING",
    "SCHEMA_VERSION",
    "SENDING",
    "SENT",
    "SKIPPED",
    "SQLITE_PREFIX",
    "SUBSCRIBER_ACTIVE",
    "SUBSCRIBER_BOUNCED",
    "SUBSCRIBER_COMPLAINED",
    "SUBSCRIBER_ERASED",
    "SUBSCRIBER_PENDING",
    "SUBSCRIBER_STATES",
    "SUBSCRIBER_UNSUBSCRIBED",
    "SUPPRESSED_STATES",
    "WORKER_LEASE",
    "Audience",
    "BounceView",
    "Consent",
    "DeliveryRow",
    "ImportCounts",
    "IssueDelivery",
    "IssueExists",
    "IssueRow",
    "NewVariant",
    "NotGiven",
    "ProfileStore",
    "ReaderSettings",
    "ReaderUpdate",
    "StaffSession",
    "Store",
    "StoredItem",
    "Subscriber",
    "SubscriberDelivery",
    "SubscriberPage",
    "SubscriberRecord",
    "UTCDateTime",
    "VariantRow",
    "address_hash",
    "bounce_log",
    "consents",
    "deliveries",
    "describe_error",
    "digests",
    "erasures",
    "issue_items",
    "issue_variants",
    "issues",
    "item_from_json",
    "item_to_json",
    "items",
    "ix_deliveries_claim",
    "ix_deliveries_in_doubt",
    "ix_deliveries_sending",
    "ix_deliveries_subscriber",
    "metadata",
    "new_token",
    "new_worker_id",
    "resolve_database_url",
    "source_states",
    "sqlite_path",
    "staff_sessions",
    "subscribers",
    "subscription_topics",
    "subscriptions",
    "workers",
]
