"""The next issue of a digest as it would be sent: items chosen, rendered, a sample message.

Used by ``digest build``, ``digest check`` and the preview; pure but for reading the sources.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from digest.clock import Clock, utc_now
from digest.config import LoadedConfig
from digest.errors import DigestError
from digest.i18n import greeting, labels_for
from digest.ledger import Selection, Vet, preview_candidates, render_selection, select
from digest.lint import lint_message
from digest.message import Recipient, make_message_id, message_template
from digest.models import Item, Problem, RenderedIssue
from digest.nextissue import NextPeriod, next_selection
from digest.render import Renderer
from digest.schedule import Period
from digest.store import Store
from digest.variants import Profile, wants


@dataclass(frozen=True)
class ComposedIssue:
    digest: str
    period: Period
    items: list[Item]
    left_out: list[Item]
    rendered: RenderedIssue
    problems: tuple[Problem, ...]
    next: NextPeriod | None = None  # which period and when it goes out; None: not known
    language: str | None = None  # the frame's language (None: the site's)


def sample_recipient(loaded: LoadedConfig, language: str | None = None) -> Recipient:
    """The made-up subscriber of previews and ``digest build`` (greeted in ``language``)."""
    labels = labels_for(language or loaded.config.site.locale)
    base = loaded.config.site.links_url
    name = labels["sample_name"]
    return Recipient(
        email="subscriber@example.org",
        name=name,
        unsubscribe_url=f"{base}/unsubscribe/SAMPLE-TOKEN",
        preferences_url=f"{base}/preferences/SAMPLE-TOKEN",
        greeting=greeting(labels, name),
    )


def compose_next_issue(
    loaded: LoadedConfig,
    store: Store,
    digest_name: str,
    as_of: datetime,
    renderer: Renderer | None = None,
    *,
    clock: Clock = utc_now,
    upcoming: NextPeriod | None = None,
    reader: Profile | None = None,
) -> ComposedIssue:
    """The next issue as of ``as_of`` (:mod:`digest.nextissue`), or the issue of
    ``upcoming`` (a send-now cut, a period asked for by ``--at``), as the ledger would
    choose it now (``clock``); writes nothing. ``reader`` (a language and topics) shows the
    variant such a reader would get (:mod:`digest.variants`)."""
    candidates, problems = preview_candidates(loaded, store, digest_name, as_of, clock=clock)
    if upcoming is not None:
        selection = select(loaded, store, digest_name, upcoming.period, clock(), candidates)
    else:
        upcoming, selection = next_selection(loaded, store, digest_name, as_of, clock(), candidates)
    if reader is not None:
        topics = loaded.digest(digest_name).topics
        chosen = reader.topics & frozenset(topics)
        selection = replace(
            selection,
            chosen=[s for s in selection.chosen if wants(s.item, topics, chosen)],
        )
        renderer = Renderer(loaded, reader.language)
    selection, rendered = render_selection(renderer or Renderer(loaded), digest_name, selection)
    return ComposedIssue(
        digest=digest_name,
        period=selection.period,
        items=selection.items,
        left_out=[stored.item for stored in selection.left_out],
        rendered=rendered,
        problems=problems,
        next=upcoming,
        language=reader.language if reader is not None else None,
    )


def vet_issue(loaded: LoadedConfig, digest_name: str) -> Vet:
    """The check of a new issue before it is frozen: its sample message linted, findings
    naming the item they come from (the ledger refuses an issue with error findings)."""

    def vet(selection: Selection, rendered: RenderedIssue) -> list[Problem]:
        issue = ComposedIssue(
            digest_name, selection.period, selection.items, [], rendered, (), None
        )
        return lint_issue(loaded, issue, selection.period.end)

    return vet


def lint_issue(loaded: LoadedConfig, issue: ComposedIssue, date: datetime) -> list[Problem]:
    """``digest check``'s findings for the issue's sample message, each naming its item."""
    raw = sample_message(loaded, issue, date)
    unsubscribe = sample_recipient(loaded).unsubscribe_url
    return lint_message(
        raw, unsubscribe, f"digest {issue.digest}", loaded.translator, items=issue.items
    )


def sample_message(loaded: LoadedConfig, issue: ComposedIssue, date: datetime) -> bytes:
    """The sample recipient's message, dated ``date`` (previews date it as of the period
    moment, so the same issue always gives the same bytes)."""
    template = message_template(loaded, issue.digest, issue.rendered)
    return template.build(
        sample_recipient(loaded, issue.language),
        message_id=make_message_id(template.sender_domain, f"{issue.digest}.{issue.period.slug}"),
        date=date,
    )


@dataclass(frozen=True)
class NextIssueSummary:
    """The dashboard's line about the next issue: when, how many items, and what holds it
    (error findings, or an error that keeps it from being built)."""

    next: NextPeriod | None
    items: int
    held: tuple[Problem, ...]
    error: str | None = None


def next_issue_summary(
    loaded: LoadedConfig, store: Store, digest_name: str, as_of: datetime
) -> NextIssueSummary:
    try:
        issue = compose_next_issue(loaded, store, digest_name, as_of)
    except DigestError as exc:
        return NextIssueSummary(None, 0, (), str(exc))
    sendable = bool(issue.items) or loaded.digest(digest_name).send_empty
    findings = lint_issue(loaded, issue, as_of) if sendable else []
    held = tuple(problem for problem in findings if problem.severity == "error")
    return NextIssueSummary(issue.next, len(issue.items), held)
