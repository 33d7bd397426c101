"""A source's first fetch is a baseline (as rss2email takes what a feed holds on its first
fetch as already seen): what a new feed or listing page held when it was first read is its
archive, not news.

Of the items seen in their source's first fetch (first seen no later than the earliest
first-seen time of that source):

- an undated one is never mailed: a listing page's teaser without a date is as likely from
  2017 as from today, and dating it "now" would present it as today's news;
- a dated one from a source added after the digest started is mailed only if it is newer than
  the digest's backfill (``backfill_days``, default one period) before that first fetch. The
  sources a digest starts with are covered by the digest's own start rule (the ledger).

Everything a source shows after its first fetch is new, dated or not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from digest.store import StoredItem


def source_starts(
    recorded: Mapping[str, datetime], candidates: Iterable[StoredItem]
) -> dict[str, datetime]:
    """First-seen time of each source's first fetch: as the store recorded it, else (a source
    only a preview has read so far) the earliest first-seen time among the candidates."""
    starts = dict(recorded)
    pending: dict[str, datetime] = {}
    for stored in candidates:
        source = stored.item.source
        if source not in starts:
            known = pending.get(source)
            pending[source] = (
                stored.first_seen_at if known is None else min(known, stored.first_seen_at)
            )
    starts.update(pending)
    return starts


def is_first_fetch_archive(
    stored: StoredItem,
    *,
    starts: Mapping[str, datetime],
    digest_started_at: datetime,
    backfill: timedelta,
) -> bool:
    start = starts.get(stored.item.source)
    if start is None or stored.first_seen_at > start:
        return False  # seen after its source's first fetch: new
    if not stored.item.dated:
        return True
    return start > digest_started_at and stored.item.published_at <= start - backfill
