"""What ``digest run`` has due, decided from the ledger alone: the fire times after the latest
issue's cutoff and what the digest's ``catch_up`` policy makes of more than one. No I/O beyond
reading the store, no APScheduler."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.config import LoadedConfig
from digest.schedule import Period
from digest.store import (
    Store,
)

# Due periods enumerated at most: a seconds schedule after a month's pause has millions;
# merge needs the latest, skip and each get by with the latest MAX_DUE (the items of older
# ones go into the oldest issue kept: a selection takes every unsent item up to its cutoff).
MAX_DUE = 1000


def due_fires(
    loaded: LoadedConfig,
    store: Store,
    digest: str,
    now: datetime,
    *,
    since: datetime | None = None,
    limit: int = MAX_DUE,
) -> list[datetime]:
    """Cutoffs (fire times) after the latest issue's cutoff, up to ``now``, oldest first; at
    most the latest ``limit``, found walking back from ``now`` (never enumerating the gap).

    Without any issue yet, the fires since ``since`` (the scheduler's start), or none."""
    latest = store.latest_issue(digest)
    if latest is not None:
        start = latest.period_end + timedelta(microseconds=1)
    elif since is not None:
        start = since
    else:
        return []
    if start > now:
        return []
    return loaded.schedule(digest).latest_fires(start, now, limit)


@dataclass(frozen=True)
class CatchUpPlan:
    skip: tuple[datetime, ...]  # record as skipped: items frozen, nothing sent
    send: tuple[datetime, ...]  # create (or find) and deliver, in this order


def plan_catch_up(policy: str, fires: list[datetime], started_at: datetime) -> CatchUpPlan:
    """What to do with the due cutoffs. *Missed* ones are those before the scheduler started
    (the process was down); later ones were seen live and only waited (send window, a long
    send before them).

    - ``each``: every due period gets its own issue, oldest first;
    - ``merge``: only the latest period is created; its selection takes every unsent item
      since the last cutoff, so nothing is lost and subscribers get one issue;
    - ``skip``: missed periods are recorded as skipped (their items are never mailed); of the
      live ones the latest is sent, as with merge.
    """
    if not fires:
        return CatchUpPlan((), ())
    if policy == "each":
        return CatchUpPlan((), tuple(fires))
    if policy == "skip":
        missed = tuple(fire for fire in fires if fire < started_at)
        live = fires[len(missed) :]
        return CatchUpPlan(missed, tuple(live[-1:]))
    return CatchUpPlan((), (fires[-1],))


def describe_catch_up(loaded: LoadedConfig, store: Store, digest: str, now: datetime) -> str:
    """One line for ``digest status``: due periods not yet sent and what ``digest run`` will
    do with them."""
    config = loaded.digest(digest)
    fires = due_fires(loaded, store, digest, now)
    if store.latest_issue(digest) is None:
        return "catch-up: no issue yet; 'digest run' sends the first at the next fire"
    if not fires:
        return "catch-up: up to date"
    keys = [Period(None, fire).key for fire in fires]
    span = keys[0] if len(keys) == 1 else f"{keys[0]} .. {keys[-1]}"
    if len(fires) == MAX_DUE:
        span = f"the latest {MAX_DUE}, up to {keys[-1]}"
    plan = plan_catch_up(config.catch_up, fires, started_at=now)
    if config.catch_up == "each":
        action = f"{len(plan.send)} issue(s), oldest first"
    elif config.catch_up == "skip":
        action = f"{len(plan.skip)} recorded as skipped, nothing sent"
    else:
        action = f"one issue for the period ending {keys[-1]}"
    line = (
        f"catch-up: {len(fires)} period(s) due, not yet sent ({span}); {config.catch_up}: {action}"
    )
    window = config.send_window.window if config.send_window else None
    if window is not None and not window.contains(now.astimezone(loaded.digest_timezone(digest))):
        line += f"; waits for the send window {window.describe()}"
    return line
