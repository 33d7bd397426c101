"""The issue ledger: which period is due, which items it takes, and freezing it in the store.

Selection rule for an issue of digest D with cutoff C: every present, non-draft item with
``published_at <= C`` that no earlier issue of D contains, except the archive that existed when
D started (published before its baseline and first seen no later than its start). So:

- an item goes into exactly one issue of a digest (a database constraint, too);
- a back-dated item that shows up later is sent in the next issue, not skipped;
- a future-dated item waits for its date; an overflow beyond ``max_items`` waits for the next;
- the first issue takes one period (or ``backfill_days``), not the whole archive;
- what a source held on its first fetch is its archive too (:mod:`digest.firstfetch`): never
  an undated teaser, and from a source added later nothing older than the backfill.

Two times, by role: ``as_of`` (the ``--at`` of the CLI, the scheduler's fire time) is the
moment an issue is *for*: it chooses the period, the cutoff and the selection. ``now`` is the
real clock's reading: it stamps what happens (fetched, first seen, the digest's start, the
issue's creation). The start and first-seen stamps come from the same clock, so "first seen
no later than the start" keeps meaning "was there when the digest started".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from digest.catalogue import available_languages
from digest.clock import Clock, utc_now
from digest.collect import collect, newest_first
from digest.config import LoadedConfig
from digest.errors import DigestError, SourceError
from digest.filters import ItemFilter
from digest.firstfetch import is_first_fetch_archive, source_starts
from digest.localtime import LocalDelivery
from digest.message import make_message_id, sender_domain
from digest.models import Collection, Item, Problem, RenderedIssue
from digest.render import Renderer
from digest.schedule import Period
from digest.size import HTML_SIZE_LIMIT
from digest.sources import Source, sources_for
from digest.sources.base import is_partial_listing
from digest.store import (
    ISSUE_EMPTY,
    ISSUE_SENDING,
    ISSUE_SKIPPED,
    NOT_GIVEN,
    Audience,
    IssueExists,
    IssueRow,
    NewVariant,
    NotGiven,
    Store,
    StoredItem,
)
from digest.variants import Profile, pick, plan_variants, variant_key


@dataclass(frozen=True)
class Selection:
    period: Period
    chosen: list[StoredItem]
    left_out: list[StoredItem]
    start: tuple[datetime, datetime] | None  # (started_at, baseline) when this is the first issue

    @property
    def items(self) -> list[Item]:
        return [stored.item for stored in self.chosen]


@dataclass(frozen=True)
class PreparedIssue:
    issue: IssueRow
    created: bool
    problems: tuple[Problem, ...] = ()


def choose(
    candidates: Sequence[StoredItem],
    *,
    cutoff: datetime,
    started_at: datetime,
    baseline: datetime,
    max_items: int,
    source_starts: Mapping[str, datetime] | None = None,
    backfill: timedelta = timedelta(days=7),
) -> tuple[list[StoredItem], list[StoredItem]]:
    """Pure selection (see module docstring); newest first, at most ``max_items``. With
    ``source_starts``, what a source held on its first fetch is its archive
    (:mod:`digest.firstfetch`)."""
    starts = source_starts or {}
    eligible = [
        stored
        for stored in candidates
        if not stored.item.draft
        and stored.item.published_at <= cutoff
        and (stored.item.published_at > baseline or stored.first_seen_at > started_at)
        and not is_first_fetch_archive(
            stored, starts=starts, digest_started_at=started_at, backfill=backfill
        )
    ]
    by_item = {stored.item.uid: stored for stored in eligible}
    ordered = [by_item[item.uid] for item in newest_first(stored.item for stored in eligible)]
    return ordered[:max_items], ordered[max_items:]


def select(
    loaded: LoadedConfig,
    store: Store,
    digest_name: str,
    period: Period,
    now: datetime,
    candidates: Sequence[StoredItem] | None = None,
) -> Selection:
    """What the issue closing ``period`` would contain, given the store as it is (or the
    ``candidates`` a what-if preview supplies). ``now`` (the real clock) is the digest's
    start if this is its first issue."""
    digest = loaded.digest(digest_name)
    state = store.digest_baseline(digest_name)
    start: tuple[datetime, datetime] | None = None
    if state is None:
        if digest.backfill_days is not None:
            baseline = period.end - timedelta(days=digest.backfill_days)
        else:
            baseline = period.start or period.end
        start = (now, baseline)
        state = start
    previous = store.latest_issue(digest_name)
    pool = store.unsent_items(digest_name) if candidates is None else candidates
    wanted = ItemFilter.from_config(digest)  # include/exclude/max_age of the digest
    if wanted.active:
        pool = [stored for stored in pool if wanted.accepts(stored.item, period.end)]
    chosen, left_out = choose(
        pool,
        cutoff=period.end,
        started_at=state[0],
        baseline=state[1],
        max_items=digest.max_items,
        source_starts=source_starts(store.sources_first_seen(), pool),
        backfill=_backfill(digest.backfill_days, period),
    )
    issue_start = previous.period_end.astimezone(period.end.tzinfo) if previous else state[1]
    return Selection(Period(issue_start, period.end), chosen, left_out, start)


def _backfill(days: float | None, period: Period) -> timedelta:
    """How far back the first issue (of a digest, or of a new source in it) reaches."""
    if days is not None:
        return timedelta(days=days)
    return period.end - period.start if period.start else timedelta(days=7)


def preview_candidates(
    loaded: LoadedConfig,
    store: Store,
    digest_name: str,
    as_of: datetime,
    *,
    clock: Clock = utc_now,
) -> tuple[list[StoredItem], tuple[Problem, ...]]:
    """The digest's unsent items as if the sources were collected now, writing nothing: for
    ``digest build``, ``send --dry-run``, the preview page and the confirmation prompt."""
    now = clock()
    sources = sources_for(loaded, digest_name)
    # unconditional: a preview needs the items, not a 304
    collection = collect(sources, as_of, clock=clock)
    _raise_if_all_failed(digest_name, collection, "nothing to preview")
    complete = set(_complete_listings(sources, collection))
    unsent = {stored.item.uid: stored for stored in store.unsent_items(digest_name)}
    known = store.known_uids()
    candidates = [
        StoredItem(unsent[item.uid].id, item, unsent[item.uid].first_seen_at)
        if item.uid in unsent
        else StoredItem(-1, item, now)  # first seen now, as collecting it would record
        for item in collection.items
        if item.uid in unsent or item.uid not in known
    ]
    # what a feed no longer lists (or a failed source could not say) is still due
    current = {item.uid for item in collection.items}
    candidates += [
        stored
        for uid, stored in unsent.items()
        if uid not in current and stored.item.source not in complete
    ]
    return candidates, collection.problems


def collect_into_store(
    loaded: LoadedConfig, store: Store, digest_name: str, as_of: datetime, now: datetime
) -> tuple[Problem, ...]:
    """Read the digest's sources as of ``as_of`` (feeds and pages conditionally, with the
    validators of the last collection) and record what they hold and how each source fared,
    stamped ``now``. If every source failed, raise: a dead feed must not look like a quiet
    week."""
    sources = sources_for(loaded, digest_name)
    collection = collect(sources, as_of, store.source_states(), clock=lambda: now)
    if collection.all_failed:
        store.save_source_states(collection.states)
        _raise_if_all_failed(digest_name, collection, "nothing was sent")
    store.record_items(collection.items, now, _complete_listings(sources, collection))
    store.save_source_states(collection.states)  # after the items: a 304 must not hide them
    return collection.problems


def _complete_listings(sources: Sequence[Source], collection: Collection) -> list[str]:
    """Sources read in full this time whose listing is everything they hold (a folder): an
    item they no longer list is gone. A feed or a page shows only its latest items."""
    return [
        source.name
        for source in sources
        if collection.states[source.name].ok and not is_partial_listing(source)
    ]


def _raise_if_all_failed(digest_name: str, collection: Collection, consequence: str) -> None:
    if collection.all_failed:
        reasons = "; ".join(
            problem.message for problem in collection.problems if problem.severity == "error"
        )
        raise SourceError(f"digest {digest_name}: every source failed ({reasons}); {consequence}")


def render_selection(
    renderer: Renderer, digest_name: str, selection: Selection
) -> tuple[Selection, RenderedIssue]:
    """Render the selection; if its HTML, as a subscriber receives it (placeholders filled),
    is over :data:`~digest.size.HTML_SIZE_LIMIT`, hold the oldest items back for the next
    issue until it fits (Gmail clips a larger message and hides the footer with the
    unsubscribe link). The email says how many items wait."""
    chosen = list(selection.chosen)

    def render(chosen: list[StoredItem]) -> RenderedIssue:
        waiting = len(selection.left_out) + len(selection.chosen) - len(chosen)
        items = [stored.item for stored in chosen]
        return renderer.render(digest_name, items, selection.period, waiting=waiting)

    rendered = render(chosen)
    while len(chosen) > 1 and (size := renderer.sent_size(rendered)) > HTML_SIZE_LIMIT:
        keep = min(len(chosen) - 1, int(len(chosen) * HTML_SIZE_LIMIT / size * 0.95))
        chosen = chosen[: max(keep, 1)]
        rendered = render(chosen)
    if len(chosen) == len(selection.chosen):
        return selection, rendered
    held = list(selection.chosen[len(chosen) :])
    return replace(selection, chosen=chosen, left_out=[*held, *selection.left_out]), rendered


class IssueRefused(DigestError):
    """The issue was not created: ``vet`` found errors in it, or another issue went out
    since the caller looked (``after``). Nothing was written but the collected items."""

    def __init__(
        self, message: str, problems: Sequence[Problem] = (), period_key: str = ""
    ) -> None:
        super().__init__(message)
        self.problems = tuple(problems)
        self.period_key = period_key


class NothingToSend(DigestError):
    """A send-now issue would have no items: nothing is recorded."""


Vet = Callable[[Selection, RenderedIssue], Sequence[Problem]]


def prepare_issue(
    loaded: LoadedConfig,
    store: Store,
    digest_name: str,
    as_of: datetime,
    *,
    now: datetime,
    renderer: Renderer | None = None,
    skip: bool = False,
    period: Period | None = None,
    vet: Vet | None = None,
    after: int | NotGiven | None = NOT_GIVEN,
    record_empty: bool = True,
    at_once: bool = False,
) -> PreparedIssue:
    """Create, or find, the issue for the period that ends at the last fire at or before
    ``as_of`` (or for ``period``: a send-now cut). Idempotent: a second call (or a racing
    process) gets the same issue. ``now`` (read once from the real clock) stamps the fetches,
    first seen and the creation.

    ``skip`` (the scheduler's ``catch_up: skip``) freezes the period's items as status
    ``skipped`` with no deliveries: they are never mailed. An issue with no items is recorded
    as ``empty`` and not sent, unless the digest says ``send_empty: true``.

    Before a new issue is frozen, ``vet`` sees it: error findings refuse it
    (:class:`IssueRefused`, nothing created). ``after`` is the id of the latest issue the
    caller saw (None: none yet); if another issue was created since, the request is a
    repeat (a double click) and is refused in the same transaction that would create it.
    Without ``record_empty`` (send now) an issue with nothing to send is not recorded:
    :class:`NothingToSend`.

    A digest with ``deliver_at`` gives each new row its reader's local delivery time (see
    :mod:`digest.localtime`), unless ``at_once`` (staff's send now: everyone at once)."""
    period = period or loaded.schedule(digest_name).period_ending(as_of)
    existing = store.get_issue(digest_name, period.key)
    if existing is not None:
        return PreparedIssue(existing, created=False)
    latest = store.latest_issue(digest_name)
    if not isinstance(after, NotGiven) and (latest.id if latest else None) != after:
        raise IssueRefused(_repeat_message(digest_name, latest))
    if latest is not None and latest.period_end > period.end:
        raise DigestError(
            f"digest {digest_name}: the issue of {latest.period_key} is newer than the period "
            f"{period.key} asked for; periods are sent in order"
        )
    problems = collect_into_store(loaded, store, digest_name, as_of, now)
    renderer = renderer or Renderer(loaded)
    selection, rendered = render_selection(
        renderer, digest_name, select(loaded, store, digest_name, period, now)
    )
    sendable = bool(selection.chosen) or loaded.digest(digest_name).send_empty
    if not sendable and not record_empty and not skip:
        raise NothingToSend(
            f"digest {digest_name}: nothing new since the last issue; nothing sent, nothing "
            "recorded"
        )
    if vet is not None and sendable and not skip:
        findings = [problem for problem in vet(selection, rendered) if problem.severity == "error"]
        if findings:
            raise IssueRefused(
                f"digest {digest_name}: issue {period.key} held: {len(findings)} error "
                f"finding(s) ({findings[0].message}); fix them, or send with --force",
                findings,
                period.key,
            )
    status = ISSUE_SKIPPED if skip else ISSUE_SENDING if sendable else ISSUE_EMPTY
    audience = None
    if status == ISSUE_SENDING and selection.chosen:
        audience = plan_audience(loaded, store, digest_name, selection, renderer)
    domain = sender_domain(loaded.config.delivery)
    hint = f"{digest_name}.{period.slug}"
    try:
        issue = store.create_issue(
            digest=digest_name,
            period_key=period.key,
            period_start=selection.period.start,
            period_end=period.end,
            status=status,
            subject=rendered.subject,
            preheader=rendered.preheader,
            html=rendered.html,
            text=rendered.text,
            item_ids=[stored.id for stored in selection.chosen],
            now=now,
            message_id=lambda: make_message_id(domain, hint),
            start=selection.start,
            after=after,
            audience=audience,
            local_delivery=None if at_once else local_delivery(loaded, digest_name),
        )
    except IssueExists:
        found = store.get_issue(digest_name, period.key)
        if found is None:  # the constraint that fired was another one: a real conflict
            if not isinstance(after, NotGiven):
                raise IssueRefused(
                    _repeat_message(digest_name, store.latest_issue(digest_name))
                ) from None
            raise
        return PreparedIssue(found, created=False, problems=problems)
    return PreparedIssue(issue, created=True, problems=problems)


def local_delivery(loaded: LoadedConfig, digest_name: str) -> LocalDelivery | None:
    """The digest's ``deliver_at`` as the store applies it (None: rows go at once)."""
    at = loaded.digest(digest_name).local_time
    return None if at is None else LocalDelivery(at, loaded.config.site.timezone)


def _repeat_message(digest_name: str, latest: IssueRow | None) -> str:
    key = latest.period_key if latest else "?"
    return (
        f"digest {digest_name}: issue {key} went out since this send was asked for; not sent again"
    )


def plan_audience(
    loaded: LoadedConfig,
    store: Store,
    digest_name: str,
    selection: Selection,
    renderer: Renderer,
) -> Audience | None:
    """The variants the digest's readers need of ``selection`` (see :mod:`digest.variants`),
    each rendered once; None when every reader gets the issue's own rendering (the site's
    language, every item). ``renderer`` renders in the site's language."""
    digest = loaded.digest(digest_name)
    items = selection.items
    plan = plan_variants(
        items,
        digest.topics,
        store.audience_profiles(digest_name),
        site_language=renderer.language,
        languages=available_languages(),
    )
    own = variant_key(renderer.language, range(len(items)), len(items))
    if all(key == own for key in plan.assignment.values()):
        return None
    renderers = {renderer.language: renderer}
    variants = []
    for variant in plan.variants:
        if variant.key == own:
            continue
        if variant.language not in renderers:
            renderers[variant.language] = Renderer(loaded, variant.language)
        chosen = pick(selection.chosen, variant.positions)
        rendered = renderers[variant.language].render(
            digest_name,
            [stored.item for stored in chosen],
            selection.period,
            waiting=len(selection.left_out),  # held back for the next issue, as in the own
            variant=variant.key,
        )
        variants.append(
            NewVariant(
                key=variant.key,
                language=variant.language,
                item_ids=tuple(stored.id for stored in chosen),
                subject=rendered.subject,
                preheader=rendered.preheader,
                html=rendered.html,
                text=rendered.text,
            )
        )

    def variant_of(profile: Profile) -> str | None:
        # A reader whose profile changed since it was read gets the issue's own rendering:
        # more than asked for, never nothing and never an empty digest.
        return plan.assignment.get(profile, own)

    return Audience(variants, variant_of, own)
