"""The issue ledger."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from digest.bounces.verp import new_token as new_verp_token
from digest.localtime import LocalDelivery
from digest.store._profiles import ProfileStore, active_page
from digest.store.rows import (
    NOT_GIVEN,
    IssueExists,
    IssueRow,
    NewVariant,
    NotGiven,
    VariantCount,
    VariantRow,
)
from digest.store.schema import (
    ISSUE_DONE,
    ISSUE_PAUSED,
    ISSUE_SENDING,
    PENDING,
    deliveries,
    digests,
    issue_items,
    issue_variants,
    issues,
    subscribers,
)
from digest.variants import Profile

_PAGE = 5000
_PG_INSERT_DELIVERIES = text(
    "INSERT INTO deliveries (issue_id, subscriber_id, email, name, message_id, verp_token, "
    "variant_id, not_before, status, attempts) "
    f"SELECT :issue, s, e, n, m, v, w, b, '{PENDING}', 0 FROM unnest(CAST(:ids AS integer[]), "
    "CAST(:emails AS text[]), CAST(:names AS text[]), CAST(:message_ids AS text[]), "
    "CAST(:verp_tokens AS text[]), CAST(:variants AS integer[]), "
    "CAST(:not_befores AS timestamp[])) AS u(s, e, n, m, v, w, b)"
)


@dataclass(frozen=True)
class Audience:
    """Who gets which variant of a new issue: ``variant_of`` gives a reader's variant key
    (None: no mail); readers of ``own`` get the issue's own rendering (no variant row)."""

    variants: Sequence[NewVariant]
    variant_of: Callable[[Profile], str | None]
    own: str | None


class IssueStore(ProfileStore):
    def get_issue(self, digest: str, period_key: str) -> IssueRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(issues).where(issues.c.digest == digest, issues.c.period_key == period_key)
            ).first()
        return None if row is None else IssueRow(**row._mapping)

    def issue_by_id(self, issue_id: int) -> IssueRow:
        with self.engine.connect() as conn:
            row = conn.execute(select(issues).where(issues.c.id == issue_id)).one()
        return IssueRow(**row._mapping)

    def latest_issue(self, digest: str) -> IssueRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(issues)
                .where(issues.c.digest == digest)
                .order_by(issues.c.period_end.desc())
                .limit(1)
            ).first()
        return None if row is None else IssueRow(**row._mapping)

    def list_issues(self, digest: str | None = None, limit: int = 50) -> list[IssueRow]:
        query = select(issues).order_by(issues.c.period_end.desc()).limit(limit)
        if digest:
            query = query.where(issues.c.digest == digest)
        with self.engine.connect() as conn:
            return [IssueRow(**row._mapping) for row in conn.execute(query)]

    def unfinished_issues(self, digest: str | None = None) -> list[IssueRow]:
        query = select(issues).where(issues.c.status.in_((ISSUE_SENDING, ISSUE_PAUSED)))
        if digest:
            query = query.where(issues.c.digest == digest)
        with self.engine.connect() as conn:
            return [IssueRow(**row._mapping) for row in conn.execute(query.order_by(issues.c.id))]

    def create_issue(
        self,
        *,
        digest: str,
        period_key: str,
        period_start: datetime | None,
        period_end: datetime,
        status: str,
        subject: str,
        preheader: str,
        html: str,
        text: str,
        item_ids: Sequence[int],
        now: datetime,
        message_id: Callable[[], str],
        start: tuple[datetime, datetime] | None = None,
        after: int | NotGiven | None = NOT_GIVEN,
        audience: Audience | None = None,
        local_delivery: LocalDelivery | None = None,
    ) -> IssueRow:
        """Freeze an issue with its items, its variants (``audience``) and one pending
        delivery per active subscriber who gets mail, in one transaction. Without an
        ``audience`` every subscriber gets the issue's own rendering. With ``local_delivery``
        (the digest's ``deliver_at``) each row waits for its reader's local time at or after
        ``period_end`` (its ``not_before``); without, every row goes at once. Raises
        :class:`IssueExists` if the period already has one, or if ``after`` (the id of the
        latest issue the caller saw, None for none) is given and another issue of the digest
        was created since: a repeated "send now"."""
        with self.begin() as conn:
            if not isinstance(after, NotGiven):
                self._check_latest(conn, digest, after)
            if start is not None:  # the first issue of a digest: a racing one may add it too
                conn.execute(
                    self.upsert(digests)
                    .values(name=digest, started_at=start[0], baseline=start[1])
                    .on_conflict_do_nothing(index_elements=[digests.c.name])
                )
            issue_id = conn.execute(
                self.upsert(issues)
                .values(
                    digest=digest,
                    period_key=period_key,
                    period_start=period_start,
                    period_end=period_end,
                    status=status,
                    subject=subject,
                    preheader=preheader,
                    html=html,
                    text=text,
                    item_count=len(item_ids),
                    created_at=now,
                    completed_at=None if status == ISSUE_SENDING else now,
                )
                .on_conflict_do_nothing(index_elements=[issues.c.digest, issues.c.period_key])
                .returning(issues.c.id)
            ).scalar()
            if issue_id is None:  # another sender created this period's issue first
                raise IssueExists(f"{digest} {period_key}: issue exists")
            try:
                if item_ids:
                    conn.execute(
                        insert(issue_items),
                        [
                            {"issue_id": issue_id, "item_id": item_id, "digest": digest,
                             "position": n}
                            for n, item_id in enumerate(item_ids)
                        ],
                    )  # fmt: skip
            except IntegrityError as exc:  # an item taken by a racing issue of this digest
                raise IssueExists(f"{digest} {period_key}: issue exists ({exc.orig})") from None
            ids: dict[str, int] = {}
            if audience is not None and audience.variants:
                for variant in audience.variants:
                    ids[variant.key] = conn.execute(
                        insert(issue_variants)
                        .values(_variant_values(issue_id, variant))
                        .returning(issue_variants.c.id)
                    ).scalar_one()
            if status == ISSUE_SENDING:
                not_before = _NotBefore(local_delivery, period_end)
                self._add_deliveries(conn, issue_id, digest, message_id, audience, ids, not_before)
        return self.issue_by_id(int(issue_id))

    def _check_latest(self, conn: Connection, digest: str, after: int | None) -> None:
        if not self.is_sqlite:  # SQLite's BEGIN IMMEDIATE serialises writers already
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:d))"), {"d": digest})
        latest = conn.execute(
            select(issues.c.id)
            .where(issues.c.digest == digest)
            .order_by(issues.c.period_end.desc())
            .limit(1)
        ).scalar()
        if latest != after:
            raise IssueExists(f"{digest}: issue {latest} was created since")

    def issue_variants(self, issue_id: int) -> list[VariantRow]:
        """The issue's frozen variants (none: every row sends the issue's own rendering)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(issue_variants)
                .where(issue_variants.c.issue_id == issue_id)
                .order_by(issue_variants.c.id)
            ).all()
        return [
            VariantRow(
                key=r.key,
                language=r.language,
                item_ids=tuple(r.item_ids),
                subject=r.subject,
                preheader=r.preheader,
                html=r.html,
                text=r.text,
                id=r.id,
                issue_id=r.issue_id,
            )
            for r in rows
        ]

    def variant_counts(self, issue_id: int) -> list[VariantCount]:
        """The issue's renderings with their number of items and of recipients: its own first
        (the rows with no variant), then each variant. One GROUP BY over the issue's rows."""
        with self.engine.connect() as conn:
            recipients: dict[int | None, int] = {
                variant_id: int(count)
                for variant_id, count in conn.execute(
                    select(deliveries.c.variant_id, func.count())
                    .where(deliveries.c.issue_id == issue_id)
                    .group_by(deliveries.c.variant_id)
                )
            }
            own_items = conn.execute(
                select(func.count())
                .select_from(issue_items)
                .where(issue_items.c.issue_id == issue_id)
            ).scalar_one()
            variants = conn.execute(
                select(issue_variants.c.id, issue_variants.c.language, issue_variants.c.item_ids)
                .where(issue_variants.c.issue_id == issue_id)
                .order_by(issue_variants.c.id)
            ).all()
        return [
            VariantCount(None, None, int(own_items), recipients.get(None, 0)),
            *(
                VariantCount(row.id, row.language, len(row.item_ids), recipients.get(row.id, 0))
                for row in variants
            ),
        ]

    def _add_deliveries(
        self,
        conn: Connection,
        issue_id: int,
        digest: str,
        message_id: Callable[[], str],
        audience: Audience | None,
        variant_ids: dict[str, int],
        not_before: _NotBefore,
    ) -> None:
        """One pending row per active subscriber who gets mail, in keyset pages: a million
        recipients never sit in memory at once. PostgreSQL takes each page as arrays in one
        statement."""
        after = 0
        while True:
            page = active_page(
                conn,
                digest,
                after,
                _PAGE,
                subscribers.c.email,
                subscribers.c.name,
                subscribers.c.language,
                subscribers.c.timezone,
            )
            if not page:
                return
            variants: list[int | None] = []
            recipients = []
            if audience is None:
                recipients, variants = list(page), [None] * len(page)
            else:
                chosen = self.topics_between(conn, digest, after, page[-1].id)
                for row in page:
                    key = audience.variant_of(
                        Profile(row.language, frozenset(chosen.get(row.id, ())))
                    )
                    if key is None:  # nothing in this issue for them: no row, no mail
                        continue
                    recipients.append(row)
                    variants.append(None if key == audience.own else variant_ids[key])
            after = page[-1].id
            if not recipients:
                continue
            if not self.is_sqlite:
                conn.execute(
                    _PG_INSERT_DELIVERIES,
                    {
                        "issue": issue_id,
                        "ids": [row.id for row in recipients],
                        "emails": [row.email for row in recipients],
                        "names": [row.name for row in recipients],
                        "message_ids": [message_id() for _ in recipients],
                        "verp_tokens": [new_verp_token() for _ in recipients],
                        "variants": variants,
                        "not_befores": [not_before.naive(row.timezone) for row in recipients],
                    },
                )
                continue
            conn.execute(
                insert(deliveries),
                [
                    {
                        "issue_id": issue_id, "subscriber_id": row.id, "email": row.email,
                        "name": row.name, "message_id": message_id(),
                        "verp_token": new_verp_token(), "variant_id": variant,
                        "not_before": not_before.at(row.timezone), "status": PENDING,
                        "attempts": 0,
                    }
                    for row, variant in zip(recipients, variants, strict=True)
                ],
            )  # fmt: skip

    def latest_sent_issue(self, digest: str) -> IssueRow | None:
        """The newest issue of ``digest`` with items that went out or is going out (a welcome
        mail flips a done issue back to sending: the next sign-up must still find it)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(issues)
                .where(
                    issues.c.digest == digest,
                    issues.c.status.in_((ISSUE_DONE, ISSUE_SENDING)),
                    issues.c.item_count > 0,
                )
                .order_by(issues.c.period_end.desc())
                .limit(1)
            ).first()
        return None if row is None else IssueRow(**row._mapping)

    def add_variant(self, issue_id: int, variant: NewVariant) -> int:
        """Freeze one more variant of a sent issue (a welcome mail's reader nobody had when
        it was created); its id. A racing call for the same key gets the same id."""
        with self.begin() as conn:
            conn.execute(
                self.upsert(issue_variants)
                .values(_variant_values(issue_id, variant))
                .on_conflict_do_nothing(
                    index_elements=[issue_variants.c.issue_id, issue_variants.c.key]
                )
            )
            found = self._variant_id(conn, issue_id, variant.key)
            assert found is not None  # inserted now, or by the racing call
            return found

    def variant_id(self, issue_id: int, key: str) -> int | None:
        """The id of the issue's variant ``key``, if it is frozen (reads no rendering)."""
        with self.engine.connect() as conn:
            return self._variant_id(conn, issue_id, key)

    def _variant_id(self, conn: Connection, issue_id: int, key: str) -> int | None:
        found = conn.execute(
            select(issue_variants.c.id).where(
                issue_variants.c.issue_id == issue_id, issue_variants.c.key == key
            )
        ).scalar()
        return None if found is None else int(found)

    def add_late_delivery(
        self, issue_id: int, subscriber_id: int, message_id: str, variant_id: int | None = None
    ) -> bool:
        """A pending row of a sent issue for a subscriber who joined after it (a welcome
        mail), sending ``variant_id`` (None: the issue's own rendering), and the issue back to
        ``sending`` so a sender delivers it. False if the subscriber has a row of it already:
        each subscriber gets each issue at most once."""
        with self.begin() as conn:
            person = conn.execute(
                select(subscribers.c.email, subscribers.c.name).where(
                    subscribers.c.id == subscriber_id
                )
            ).one()
            added = conn.execute(
                self.upsert(deliveries)
                .values(
                    issue_id=issue_id, subscriber_id=subscriber_id, email=person.email,
                    name=person.name, message_id=message_id, verp_token=new_verp_token(),
                    status=PENDING, attempts=0, variant_id=variant_id,
                )
                .on_conflict_do_nothing(
                    index_elements=[deliveries.c.issue_id, deliveries.c.subscriber_id]
                )
            ).rowcount  # fmt: skip
            if added:
                conn.execute(
                    update(issues)
                    .where(issues.c.id == issue_id, issues.c.status == ISSUE_DONE)
                    .values(status=ISSUE_SENDING, completed_at=None)
                )
        return bool(added)

    def set_issue_status(
        self, issue_id: int, status: str, now: datetime, note: str | None = None
    ) -> None:
        values: dict[str, Any] = {"status": status, "note": note}
        if status == ISSUE_DONE:
            values["completed_at"] = now
        with self.begin() as conn:
            conn.execute(update(issues).where(issues.c.id == issue_id).values(**values))


class _NotBefore:
    """Each reader's not-before time for a new issue (None: at once), computed once per time
    zone: a million readers share a few dozen zones."""

    def __init__(self, local: LocalDelivery | None, cutoff: datetime) -> None:
        self.local = local
        self.cutoff = cutoff
        self._by_zone: dict[str | None, datetime | None] = {}

    def at(self, zone: str | None) -> datetime | None:
        if self.local is None:
            return None
        if zone not in self._by_zone:
            self._by_zone[zone] = self.local.not_before(zone, self.cutoff)
        return self._by_zone[zone]

    def naive(self, zone: str | None) -> datetime | None:
        """:meth:`at` as naive UTC (the PostgreSQL array insert binds no type decorator)."""
        value = self.at(zone)
        return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


def _variant_values(issue_id: int, variant: NewVariant) -> dict[str, Any]:
    """The ``issue_variants`` row that freezes ``variant`` of the issue."""
    return {
        "issue_id": issue_id,
        "key": variant.key,
        "language": variant.language,
        "item_ids": list(variant.item_ids),
        "subject": variant.subject,
        "preheader": variant.preheader,
        "html": variant.html,
        "text": variant.text,
    }
