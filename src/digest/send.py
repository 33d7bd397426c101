"""``digest send`` as a library call: prepare (or resume) the period's issue, then deliver it.
The scheduler uses the same function, so a manual send and a scheduled one share one path."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.catalogue import catalogue_language
from digest.clock import Clock, utc_now
from digest.compose import ComposedIssue, compose_next_issue, sample_recipient
from digest.config import LoadedConfig
from digest.deliver import (
    DeliveryOptions,
    DeliveryReport,
    IssueDelivery,
    IssueMail,
    VariantMail,
)
from digest.dkim import signer_for
from digest.errors import DeliveryError, DigestError
from digest.i18n import greeting, labels_for
from digest.ledger import PreparedIssue, Vet, prepare_issue
from digest.message import Recipient, envelope_sender, make_message_id, message_template
from digest.models import RenderedIssue
from digest.nextissue import NextPeriod, now_period
from digest.schedule import Period
from digest.store import (
    ISSUE_PAUSED,
    ISSUE_SENDING,
    NOT_GIVEN,
    IssueRow,
    NotGiven,
    Store,
    VariantRow,
)
from digest.store.coordination import WorkSignal
from digest.transport import Transport, TransportOutcome, default_transport


class NoSubscribers(DigestError):
    """The digest has no active subscriber: no issue is created, its items wait."""


@dataclass(frozen=True)
class SendResult:
    prepared: PreparedIssue
    report: DeliveryReport | None  # None: nothing to deliver (empty or already done)


def open_store(loaded: LoadedConfig, application_name: str = "digest") -> Store:
    """The store with the config's ``store:`` settings (pool size, sender commits)."""
    settings = loaded.config.store
    return Store.open(
        loaded.database_url,
        application_name=application_name,
        pool_size=settings.pool_size,
        synchronous_commit=settings.synchronous_commit,
    )


def issue_mail(loaded: LoadedConfig, store: Store, issue: IssueRow) -> IssueMail:
    """What delivery needs of the config for ``issue``: its message templates (the issue's own
    and one per variant), the envelope sender (per delivery, for VERP), where the personal
    links point, the DKIM signer."""
    rendered = RenderedIssue(issue.subject, issue.preheader, issue.html, issue.text)
    delivery = loaded.config.delivery
    site_locale = loaded.config.site.locale
    return IssueMail(
        template=message_template(loaded, issue.digest, rendered),
        envelope_sender=functools.partial(
            envelope_sender, delivery, loaded.config.bounces.return_path
        ),
        links_url=loaded.config.site.links_url,
        labels=labels_for(site_locale),
        signer=signer_for(delivery.dkim, loaded.resolve),
        variants=_IssueVariants(loaded, store, issue),
    )


class _IssueVariants(Mapping[int, VariantMail]):
    """The issue's variants by id, read when delivery starts; one frozen later (a welcome
    mail's new reader, :mod:`digest.welcome`) is read when a row first asks for it."""

    def __init__(self, loaded: LoadedConfig, store: Store, issue: IssueRow) -> None:
        self._loaded, self._store, self._issue = loaded, store, issue
        self._mails = {
            variant.id: self._mail(variant) for variant in store.issue_variants(issue.id)
        }

    def _mail(self, variant: VariantRow) -> VariantMail:
        site_locale = self._loaded.config.site.locale
        rendered = RenderedIssue(variant.subject, variant.preheader, variant.html, variant.text)
        return VariantMail(
            message_template(self._loaded, self._issue.digest, rendered),
            labels_for(
                site_locale
                if variant.language == catalogue_language(site_locale)
                else variant.language
            ),
        )

    def __getitem__(self, variant_id: int) -> VariantMail:
        if variant_id not in self._mails:
            for variant in self._store.issue_variants(self._issue.id):
                if variant.id not in self._mails:
                    self._mails[variant.id] = self._mail(variant)
        return self._mails[variant_id]

    def __iter__(self) -> Iterator[int]:
        return iter(self._mails)

    def __len__(self) -> int:
        return len(self._mails)


def delivery_options(
    loaded: LoadedConfig,
    digest: str,
    period_end: datetime,
    wait: float,
    created_at: datetime | None = None,
) -> DeliveryOptions:
    """Deferred (4xx) messages are retried until the next period begins; an issue created
    late (a catch-up or a manual send of a past period) gets one period's length from its
    creation instead, or its retries would give up at once."""
    smtp = loaded.config.delivery.smtp
    is_smtp = loaded.config.delivery.transport == "smtp"
    deadline = loaded.schedule(digest).next_fire(period_end)
    if created_at is not None:
        deadline = max(deadline, created_at + (deadline - period_end))
    return DeliveryOptions(
        connections=smtp.connections if is_smtp else 1,
        rate_limit=smtp.rate_limit if is_smtp else 0,
        wait_for_retries=wait,
        retry=loaded.config.delivery.retry,
        retry_deadline=deadline,
        lease=timedelta(seconds=loaded.config.store.lease_seconds),
    )


def send_digest(
    loaded: LoadedConfig,
    store: Store,
    digest: str,
    as_of: datetime,
    *,
    transport: Transport | None = None,
    clock: Clock = utc_now,
    wait_for_retries: float = 0.0,
    on_prepared: Callable[[PreparedIssue], bool] | None = None,
    on_result: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    period: Period | None = None,
    vet: Vet | None = None,
    after: int | NotGiven | None = NOT_GIVEN,
    record_empty: bool = True,
    at_once: bool = False,
) -> SendResult:
    """Create or resume the issue of the period ending at ``as_of`` (or of ``period``, a
    send-now cut) and deliver what is due; ``clock`` stamps what happens (fetched, created,
    sent). ``on_prepared`` may return False to stop before anything is sent. ``vet`` and
    ``after`` go to :func:`prepare_issue` (error findings and repeats refuse the issue),
    and ``at_once`` (a send now: the digest's ``deliver_at`` does not apply).

    A new issue needs an active subscriber: without one nothing is created
    (:class:`NoSubscribers`), so the items wait for the first subscriber."""
    period = period or loaded.schedule(digest).period_ending(as_of)
    if store.get_issue(digest, period.key) is None and store.count_active(digest) == 0:
        raise NoSubscribers(
            f"digest {digest} has no active subscribers: nothing sent, nothing recorded "
            "(the items wait for the first subscriber)"
        )
    prepared = prepare_issue(
        loaded,
        store,
        digest,
        as_of,
        now=clock(),
        period=period,
        vet=vet,
        after=after,
        record_empty=record_empty,
        at_once=at_once,
    )
    issue = prepared.issue
    if issue.status not in (ISSUE_SENDING, ISSUE_PAUSED):
        return SendResult(prepared, None)
    if on_prepared is not None and not on_prepared(prepared):
        return SendResult(prepared, None)
    report = deliver_issue(
        loaded,
        store,
        issue,
        transport=transport,
        clock=clock,
        wait_for_retries=wait_for_retries,
        on_result=on_result,
        stop=stop,
    )
    return SendResult(prepared, report)


def enqueue_digest(
    loaded: LoadedConfig,
    store: Store,
    digest: str,
    as_of: datetime,
    *,
    clock: Clock = utc_now,
    on_prepared: Callable[[PreparedIssue], bool] | None = None,
    period: Period | None = None,
    vet: Vet | None = None,
    record_empty: bool = True,
    at_once: bool = False,
) -> SendResult:
    """``digest send --enqueue``: create (or find) the issue of the period ending at
    ``as_of`` (or of ``period``) and leave its delivery to the ``digest worker`` processes,
    woken at once (NOTIFY on PostgreSQL; SQLite workers find it at their next poll).
    ``vet``, ``record_empty`` and ``at_once`` as for :func:`send_digest`."""
    prepared = prepare_issue(
        loaded,
        store,
        digest,
        as_of,
        now=clock(),
        period=period,
        vet=vet,
        record_empty=record_empty,
        at_once=at_once,
    )
    if prepared.issue.status not in (ISSUE_SENDING, ISSUE_PAUSED):
        return SendResult(prepared, None)
    if on_prepared is not None and not on_prepared(prepared):
        return SendResult(prepared, None)
    if prepared.issue.status == ISSUE_PAUSED:  # staff asked again: the workers may resume it
        store.set_issue_status(prepared.issue.id, ISSUE_SENDING, clock())
    WorkSignal(store.engine).notify()
    return SendResult(prepared, None)


def deliver_issue(
    loaded: LoadedConfig,
    store: Store,
    issue: IssueRow,
    *,
    transport: Transport | None = None,
    clock: Clock = utc_now,
    wait_for_retries: float = 0.0,
    on_result: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> DeliveryReport:
    """Deliver (or resume, or retry) an existing issue: what ``send_digest`` does after the
    ledger step, and what the scheduler's timer runs for unfinished issues."""
    delivery = IssueDelivery(
        issue_mail(loaded, store, issue),
        store,
        issue,
        transport or default_transport(loaded),
        options=delivery_options(
            loaded, issue.digest, issue.period_end, wait_for_retries, issue.created_at
        ),
        clock=clock,
        on_result=on_result,
        stop=stop,
    )
    return delivery.run()


def send_test_copy(
    loaded: LoadedConfig,
    store: Store,
    digest: str,
    as_of: datetime,
    address: str,
    transport: Transport,
    now: datetime,
    *,
    upcoming: NextPeriod | None = None,
) -> ComposedIssue:
    """One copy of the next issue as of ``as_of`` (or of ``upcoming``: a send-now cut) to
    ``address``, dated ``now``, with the sample recipient's links; writes nothing and marks
    nothing (``digest send --to`` and the staff page)."""
    issue = compose_next_issue(loaded, store, digest, as_of, clock=lambda: now, upcoming=upcoming)
    template = message_template(loaded, digest, issue.rendered)
    sample = sample_recipient(loaded)
    recipient = Recipient(
        address,
        "",
        sample.unsubscribe_url,
        sample.preferences_url,
        greeting(labels_for(loaded.config.site.locale), ""),
    )
    data = template.build(
        recipient, message_id=make_message_id(template.sender_domain, "test"), date=now
    )
    signer = signer_for(loaded.config.delivery.dkim, loaded.resolve)
    if signer is not None:  # signed like the issue itself, so the test shows what receivers see
        data = signer.sign(data, now)
    connection = transport.connect()
    try:
        connection.send(envelope_sender(loaded.config.delivery), address, data, lambda: None)
    except TransportOutcome as exc:
        raise DeliveryError(f"test copy to {address} failed: {exc}") from None
    finally:
        connection.close()
    return issue


@dataclass(frozen=True)
class SendTarget:
    """What ``digest send`` is about: the period asked for (None: the next issue, which
    only a composition with the sources read can tell) and its issue, if it has one."""

    upcoming: NextPeriod | None
    existing: IssueRow | None


def send_target(
    loaded: LoadedConfig, store: Store, digest: str, as_of: datetime, *, at_given: bool, now: bool
) -> SendTarget:
    """``--now``: the off-schedule cut at ``as_of``; ``--at``: the scheduled period ending at
    the last fire at or before it; neither: the oldest unfinished issue (a resume), else the
    next issue."""
    if now:
        upcoming = now_period(loaded, store, digest, as_of)
        return SendTarget(upcoming, store.get_issue(digest, upcoming.period.key))
    if at_given:
        period = loaded.schedule(digest).period_ending(as_of)
        return SendTarget(NextPeriod(period, True, period.end), store.get_issue(digest, period.key))
    unfinished = store.unfinished_issues(digest)
    if unfinished:
        issue = unfinished[0]
        return SendTarget(None, issue)
    return SendTarget(None, None)
