"""The next issue of a digest as it would be sent: items chosen, rendered, a sample message.

Used by ``digest build``, ``digest check`` and the preview; pure but for reading the sources.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from digest.clock import Clock, utc_now
from digest.config import LoadedConfig
from digest.i18n import greeting, labels_for
from digest.ledger import preview, render_selection
from digest.message import Recipient, make_message_id, message_template
from digest.models import Item, Problem, RenderedIssue
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
    reader: Profile | None = None,
) -> ComposedIssue:
    """The issue for the period that ends at the last scheduled fire at or before ``as_of``,
    as the ledger would choose it now (``clock``); writes nothing. ``reader`` (a language and
    topics) shows the variant such a reader would get (:mod:`digest.variants`)."""
    selection, problems = preview(loaded, store, digest_name, as_of, clock=clock)
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
        language=reader.language if reader is not None else None,
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
