"""The welcome mail: a subscriber who confirms a sign-up gets the latest sent issue of each
digest that says ``welcome: latest``. It is a delivery row of that issue like any other, so
the ledger's rule holds: each subscriber gets each issue at most once.

The row sends the reader's variant of that issue (:mod:`digest.variants`): their language and
the items of their topics. A variant nobody had when the issue was frozen is rendered now,
once, and frozen with the issue; a reader for whom the issue holds nothing gets no welcome."""

from __future__ import annotations

from digest.catalogue import available_languages, catalogue_language
from digest.config import LoadedConfig
from digest.message import make_message_id, sender_domain
from digest.render import Renderer
from digest.schedule import Period
from digest.store import IssueRow, NewVariant, Store, Subscriber
from digest.variants import Profile, pick, plan_variants, variant_key


def add_welcome_deliveries(
    loaded: LoadedConfig, store: Store, subscriber: Subscriber
) -> list[IssueRow]:
    """Queue the latest sent issue of each of the subscriber's ``welcome: latest`` digests;
    the issues that got a new row (deliver them with :func:`digest.send.deliver_issue`)."""
    queued = []
    domain = sender_domain(loaded.config.delivery)
    reader = store.reader_settings(subscriber.id)
    for name in subscriber.digests:
        if name not in loaded.config.digests or loaded.digest(name).welcome != "latest":
            continue
        issue = store.latest_sent_issue(name)
        if issue is None:
            continue
        profile = Profile(reader.language, frozenset(reader.topics.get(name, ())))
        chosen = _variant_for(loaded, store, issue, profile)
        if chosen is _NOTHING:
            continue
        message_id = make_message_id(domain, f"{name}.welcome")
        if store.add_late_delivery(issue.id, subscriber.id, message_id, variant_id=chosen):
            queued.append(store.issue_by_id(issue.id))
    return queued


_NOTHING = -1  # the issue holds nothing for the reader


def _variant_for(
    loaded: LoadedConfig, store: Store, issue: IssueRow, profile: Profile
) -> int | None:
    """The id of the reader's variant of ``issue`` (None: the issue's own rendering;
    :data:`_NOTHING`: no item for them), rendering and freezing it if it is new."""
    rows = store.issue_item_rows(issue.id)
    items = [item for _, item in rows]
    site_language = catalogue_language(loaded.config.site.locale)
    digest = loaded.digest(issue.digest)
    plan = plan_variants(
        items,
        digest.topics,
        [profile],
        site_language=site_language,
        languages=available_languages(),
    )
    if not plan.variants:
        return _NOTHING
    (variant,) = plan.variants
    if variant.key == variant_key(site_language, range(len(items)), len(items)):
        return None
    frozen = store.variant_id(issue.id, variant.key)
    if frozen is not None:
        return frozen
    zone = loaded.digest_timezone(issue.digest)
    period = Period(
        issue.period_start.astimezone(zone) if issue.period_start else None,
        issue.period_end.astimezone(zone),
    )
    rendered = Renderer(loaded, variant.language).render(
        issue.digest, pick(items, variant.positions), period, variant=variant.key
    )
    ids = [item_id for item_id, _ in rows]
    return store.add_variant(
        issue.id,
        NewVariant(
            key=variant.key,
            language=variant.language,
            item_ids=tuple(pick(ids, variant.positions)),
            subject=rendered.subject,
            preheader=rendered.preheader,
            html=rendered.html,
            text=rendered.text,
        ),
    )
