"""What ``digest status`` and the staff dashboard show, computed once: per digest its schedule,
next fire, catch-up, subscribers, unsent items, latest issue with its delivery counts and the
recent issues' bounces and complaints, the rows waiting for their local delivery time; the
sources' health; the deliveries in doubt. Typed values only: the CLI and the web present them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from digest import words
from digest.catalogue import Translator, default_translator
from digest.config import DigestConfig, LoadedConfig
from digest.health import describe_state
from digest.models import SourceState
from digest.plan import describe_catch_up
from digest.store import ISSUE_PAUSED, ISSUE_SENDING, DeliveryRow, IssueRow, Store, Waiting

FEEDBACK_ISSUES = 5  # recent issues whose bounces and complaints are shown


@dataclass(frozen=True)
class DigestOverview:
    name: str
    config: DigestConfig
    timezone: ZoneInfo  # the schedule's
    next_fire: datetime  # in ``timezone``
    catch_up: str  # what 'digest run' will do with periods due and not sent
    active: int  # active subscribers
    unsent_items: int
    latest: IssueRow | None
    counts: Mapping[str, int]  # the latest issue's deliveries by state, zeros left out
    # Recent issues that had bounces, complaints or delay notices: (period key, counts by
    # kind: hard, soft, complaint, delayed), newest first.
    feedback: tuple[tuple[str, Mapping[str, int]], ...] = ()
    # Unfinished issues with rows waiting for their readers' local delivery time (deliver_at),
    # oldest first: how many, and when the next and the last go.
    waiting: tuple[tuple[IssueRow, Waiting], ...] = ()

    @property
    def summary(self) -> str:
        return delivery_summary(self.counts)

    @property
    def latest_feedback(self) -> Mapping[str, int]:
        """The latest issue's bounce-log counts by kind ({} for none)."""
        if (
            self.latest is None
            or not self.feedback
            or self.feedback[0][0] != self.latest.period_key
        ):
            return {}
        return self.feedback[0][1]


@dataclass(frozen=True)
class SourceOverview:
    name: str
    configured: bool  # False: remembered in the store, no longer in the config
    state: SourceState | None  # None: never collected
    timezone: ZoneInfo
    translator: Translator | None = field(default=None, compare=False)  # None: English

    @property
    def ok(self) -> bool | None:
        return self.state.ok if self.state else None

    @property
    def description(self) -> str | None:
        if self.state is None:
            return None
        return describe_state(self.state, self.timezone, self.translator)


@dataclass(frozen=True)
class Overview:
    now: datetime
    digests: tuple[DigestOverview, ...]
    sources: tuple[SourceOverview, ...]  # configured ones in config order, then the others
    in_doubt: tuple[tuple[IssueRow, DeliveryRow], ...]


def delivery_summary(counts: Mapping[str, int], t: Translator | None = None) -> str:
    """``"3 sent, 1 deferred"``: the states with rows, in ledger order; "" for none. In
    ``t``'s language (the dashboard passes the site's), English without."""
    return words.delivery_summary(t or default_translator(), counts)


def report_summary(counts: Mapping[str, int], t: Translator | None = None) -> str:
    """The line after a send (CLI and log): every outcome named, zeros included."""
    return words.report_summary(t or default_translator(), counts)


def issue_waiting(store: Store, issue: IssueRow, now: datetime) -> Waiting:
    """The issue's rows waiting for their readers' local delivery time (none once it is no
    longer being sent)."""
    if issue.status not in (ISSUE_SENDING, ISSUE_PAUSED):
        return Waiting()
    return store.waiting(issue.id, now)


def overview(
    loaded: LoadedConfig, store: Store, now: datetime, t: Translator | None = None
) -> Overview:
    """Everything ``digest status`` and the dashboard show; descriptions in ``t``'s language
    (the dashboard passes the site's; English without)."""
    digests = []
    for name, config in loaded.config.digests.items():
        schedule = loaded.schedule(name)
        latest = store.latest_issue(name)
        counts = {k: v for k, v in store.counts(latest.id).items() if v} if latest else {}
        recent = store.list_issues(name, limit=FEEDBACK_ISSUES)
        by_issue = store.feedback_counts([issue.id for issue in recent])
        feedback = tuple((i.period_key, by_issue[i.id]) for i in recent if by_issue[i.id])
        waiting = tuple(
            (issue, found)
            for issue in store.unfinished_issues(name)
            if (found := issue_waiting(store, issue, now))
        )
        digests.append(
            DigestOverview(
                name=name,
                config=config,
                timezone=schedule.timezone,
                next_fire=schedule.next_fire(now),
                catch_up=describe_catch_up(loaded, store, name, now),
                active=store.count_active(name),
                unsent_items=len(store.unsent_items(name)),
                latest=latest,
                counts=counts,
                feedback=feedback,
                waiting=waiting,
            )
        )
    states = store.source_states()
    timezone = loaded.config.site.tz
    configured = [entry.source_name for entry in loaded.config.sources]
    sources = [SourceOverview(name, True, states.get(name), timezone, t) for name in configured]
    sources += [
        SourceOverview(name, False, state, timezone, t)
        for name, state in sorted(states.items())
        if name not in configured
    ]
    return Overview(now, tuple(digests), tuple(sources), tuple(store.in_doubt()))
