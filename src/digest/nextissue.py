"""Which issue of a digest goes out next, and the off-schedule "send now" cut.

The next issue is the earliest due period that has not gone out and would be sent (it has
items, or the digest says ``send_empty``); if there is none, it is the upcoming period, ending
at the next fire, with the items known so far. Preview, ``digest build``, ``digest check``,
test copies, ``digest send`` and the dashboard all ask this module, so what an editor sees is
what goes out.

A "send now" issue is cut at the moment it is asked for and takes everything new since the
latest issue; its cutoff is the next scheduled period's start (the ledger's periods follow one
another whatever cut them). Pure but for reading the ledger: ``as_of`` is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.config import LoadedConfig
from digest.ledger import Selection, select
from digest.schedule import Period
from digest.store import Store, StoredItem

_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class NextPeriod:
    """A period the next issue closes. ``due``: its cutoff has passed and it has not gone
    out; ``sends_at``: when it goes out (a due period: its cutoff, i.e. at the next send or
    scheduler tick; the upcoming one: the next fire, or the send window's opening after it)."""

    period: Period
    due: bool
    sends_at: datetime
    off_schedule: bool = False


def due_periods(loaded: LoadedConfig, store: Store, digest: str, as_of: datetime) -> list[Period]:
    """Scheduled periods whose cutoff is at or before ``as_of`` and that have no issue yet,
    in the order the scheduler sends them: with ``catch_up: each`` every one, oldest first,
    otherwise only the latest (merge and skip send one issue with everything since the last).
    A digest without any issue has the period ending at the last fire due."""
    schedule = loaded.schedule(digest)
    latest = store.latest_issue(digest)
    if latest is None:
        return [schedule.period_ending(as_of)]
    fires = schedule.fires_between(latest.period_end + _TICK, as_of)
    if loaded.digest(digest).catch_up != "each":
        fires = fires[-1:]
    return [Period(schedule.last_fire(fire - _TICK), fire) for fire in fires]


def upcoming_period(loaded: LoadedConfig, store: Store, digest: str, as_of: datetime) -> Period:
    """The period that ends at the next fire after ``as_of`` (or after the latest issue, if
    that is later: a send-now cut or an issue sent ``--at`` a future time)."""
    schedule = loaded.schedule(digest)
    latest = store.latest_issue(digest)
    after = max(as_of, latest.period_end) if latest else as_of
    end = schedule.next_fire(after)
    start = latest.period_end.astimezone(end.tzinfo) if latest else schedule.last_fire(end - _TICK)
    return Period(start, end)


def sends_at(loaded: LoadedConfig, digest: str, fire: datetime) -> datetime:
    """When the scheduler sends the issue of the period ending at ``fire``: then, or when the
    digest's send window next opens."""
    config = loaded.digest(digest)
    tz = loaded.digest_timezone(digest)
    local = fire.astimezone(tz)
    if config.send_window is None:
        return local
    return config.send_window.window.next_open(local)


def next_selection(
    loaded: LoadedConfig,
    store: Store,
    digest: str,
    as_of: datetime,
    now: datetime,
    candidates: Sequence[StoredItem] | None = None,
) -> tuple[NextPeriod, Selection]:
    """The next issue (see the module docstring) and what it would contain, given the store
    (or the ``candidates`` a what-if preview supplies)."""
    send_empty = loaded.digest(digest).send_empty
    for period in due_periods(loaded, store, digest, as_of):
        selection = select(loaded, store, digest, period, now, candidates)
        if selection.chosen or send_empty:
            return NextPeriod(period, True, period.end), selection
    period = upcoming_period(loaded, store, digest, as_of)
    selection = select(loaded, store, digest, period, now, candidates)
    return NextPeriod(period, False, sends_at(loaded, digest, period.end)), selection


def now_period(loaded: LoadedConfig, store: Store, digest: str, cut: datetime) -> NextPeriod:
    """The off-schedule period ending at ``cut`` (to the second, in the digest's time zone):
    everything new since the latest issue. A digest's first issue reaches back to the start
    of the last whole scheduled period (or ``backfill_days``), so what the preview showed as
    due is in it."""
    tz = loaded.digest_timezone(digest)
    end = cut.astimezone(tz).replace(microsecond=0)
    latest = store.latest_issue(digest)
    if latest is not None:
        start: datetime | None = latest.period_end.astimezone(tz)
    else:
        start = loaded.schedule(digest).period_ending(end).start
    return NextPeriod(Period(start, end), True, end, off_schedule=True)
