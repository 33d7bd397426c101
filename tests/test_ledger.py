"""The issue ledger: which items go into which issue, and who gets it.

Library level (``send_digest`` with the in-memory transport) on the sample site; the weekly
digest fires Mondays 07:00 Europe/Berlin, so the issue of 2017-11-20 covers (13 Nov, 20 Nov].
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest

from digest.config import LoadedConfig
from digest.ledger import prepare_issue
from digest.send import SendResult, send_digest
from digest.store import Store
from digest.transport import MemoryTransport
from tests.conftest import AT, OTHER_TITLES, SAMPLE_WEEK_TITLES, Site

NOV_27 = datetime.fromisoformat("2017-11-27T08:00:00+01:00")
DEC_04 = datetime.fromisoformat("2017-12-04T08:00:00+01:00")
ARCHIVE = (
    *OTHER_TITLES[:2],  # 6 and 9 November: before the first period
    "Projektmanagementteam",  # August/September items (prefixes)
)

pytestmark = pytest.mark.both_databases


class Desk:
    """The sample site with an open store and subscribers; sends with a memory transport."""

    def __init__(self, site: Site, subscribers: int = 3) -> None:
        self.site = site
        self.store = Store.open(site.load().database_url)
        now = datetime.now(UTC)
        for n in range(subscribers):
            self.store.add_subscriber(f"s{n:03d}@example.org", f"S {n}", ["weekly"], now)

    @property
    def loaded(self) -> LoadedConfig:
        return self.site.load()  # re-read: tests edit the config between sends

    def send(self, at: datetime) -> tuple[SendResult, MemoryTransport]:
        transport = MemoryTransport()
        return send_digest(self.loaded, self.store, "weekly", at, transport=transport), transport

    def titles(self, at: datetime) -> list[str]:
        result, _ = self.send(at)
        return [item.title for item in self.store.issue_items(result.prepared.issue.id)]


@pytest.fixture
def desk(site: Site) -> Iterator[Desk]:
    desk = Desk(site)
    yield desk
    desk.store.close()


def has(titles: list[str], prefix: str) -> bool:
    return any(title.startswith(prefix) for title in titles)


def test_first_issue_takes_one_period_not_the_archive(desk: Desk) -> None:
    first = desk.titles(AT)
    assert sorted(first) == sorted(SAMPLE_WEEK_TITLES)
    result, transport = desk.send(NOV_27)
    assert result.prepared.issue.status == "empty" and result.report is None
    assert transport.sent == []
    second = desk.titles(NOV_27)
    assert second == []
    third = desk.titles(DEC_04)
    assert third == [OTHER_TITLES[2]]  # 29 November
    everything = first + second + third
    for prefix in ARCHIVE:
        assert not has(everything, prefix)


def test_backfill_days_reaches_further_back_for_the_first_issue(desk: Desk) -> None:
    desk.site.replace_in_config("max_items: 20", "max_items: 20\n    backfill_days: 15")
    first = desk.titles(AT)
    assert len(first) == 5
    assert all(has(first, title) for title in (*SAMPLE_WEEK_TITLES, *OTHER_TITLES[:2]))


def test_each_subscriber_gets_the_issue_once_and_a_second_send_sends_nothing(
    desk: Desk,
) -> None:
    result, transport = desk.send(AT)
    assert result.report is not None and result.report.counts["sent"] == 3
    assert sorted(r for _, r, _ in transport.sent) == [f"s{n:03d}@example.org" for n in range(3)]
    again, transport = desk.send(AT)
    assert again.report is None and not again.prepared.created
    assert transport.sent == []
    assert again.prepared.issue.id == result.prepared.issue.id


def test_back_dated_item_added_later_goes_into_the_next_issue(desk: Desk) -> None:
    desk.titles(AT)
    desk.site.write(
        "content/2017-11-15-nachtrag.md",
        "---\ntitle: Nachtrag aus der Präventionswoche\ndate: 2017-11-15\n---\nSpät eingestellt.\n",
    )
    desk.site.write(
        "content/2017-10-01-alt.md",
        "---\ntitle: Alter Bericht, spät eingestellt\ndate: 2017-10-01\n---\nAlt.\n",
    )
    assert sorted(desk.titles(NOV_27)) == [
        "Alter Bericht, spät eingestellt",
        "Nachtrag aus der Präventionswoche",
    ]
    assert desk.titles(DEC_04) == [OTHER_TITLES[2]]  # and not again


def test_future_dated_item_waits_for_its_date(desk: Desk) -> None:
    desk.site.write(
        "content/2017-11-22-vorschau.md",
        "---\ntitle: Vorschau auf den Fachtag\ndate: 2017-11-22T09:00:00+01:00\n---\nBald.\n",
    )
    first = desk.titles(AT)
    assert "Vorschau auf den Fachtag" not in first
    assert desk.titles(NOV_27) == ["Vorschau auf den Fachtag"]


def test_edited_item_is_not_sent_again(desk: Desk) -> None:
    desk.titles(AT)
    path = desk.site.content / "2017-11-14-stadtfuehrung-lehrkraefte.md"
    path.write_text(
        path.read_text(encoding="utf-8").replace("Fast 25 Fachkräfte", "Fast 30 Fachkräfte"),
        encoding="utf-8",
    )
    result, transport = desk.send(NOV_27)
    assert result.prepared.issue.status == "empty"
    assert result.prepared.issue.item_count == 0
    assert transport.sent == []


def test_max_items_overflow_goes_into_the_next_issue(desk: Desk) -> None:
    desk.site.replace_in_config("max_items: 20", "max_items: 2")
    first = desk.titles(AT)
    assert first == list(SAMPLE_WEEK_TITLES[:2])  # the newest two
    assert desk.titles(NOV_27) == [SAMPLE_WEEK_TITLES[2]]


def test_subscribers_who_leave_before_their_row_is_sent_are_skipped(site: Site) -> None:
    desk = Desk(site, subscribers=60)
    try:
        prepared = prepare_issue(desk.loaded, desk.store, "weekly", AT, now=datetime.now(UTC))
        now = datetime.now(UTC)
        # More than one claim batch, at the front of the queue: a claim that finds only
        # unsubscribed rows must not end the run.
        for n in range(45):
            subscriber = desk.store.subscriber_by_email(f"s{n:03d}@example.org")
            assert subscriber is not None
            if n % 3 == 0:
                desk.store.unsubscribe(subscriber.id, now, digest="weekly")
            else:
                desk.store.unsubscribe(subscriber.id, now)
        result, transport = desk.send(AT)
        assert result.report is not None
        assert result.report.counts["skipped"] == 45
        assert result.report.counts["sent"] == 15
        assert result.report.complete
        assert sorted(r for _, r, _ in transport.sent) == [
            f"s{n:03d}@example.org" for n in range(45, 60)
        ]
        assert desk.store.issue_by_id(prepared.issue.id).status == "done"
    finally:
        desk.store.close()


def test_subscribers_who_join_after_the_issue_was_created_wait_for_the_next(desk: Desk) -> None:
    prepare_issue(desk.loaded, desk.store, "weekly", AT, now=datetime.now(UTC))
    desk.store.add_subscriber("late@example.org", "", ["weekly"], datetime.now(UTC))
    _, transport = desk.send(AT)
    assert "late@example.org" not in {r for _, r, _ in transport.sent}
    assert len(transport.sent) == 3


def test_the_issue_is_frozen_when_created(desk: Desk) -> None:
    prepared = prepare_issue(desk.loaded, desk.store, "weekly", AT, now=datetime.now(UTC))
    desk.site.replace_in_config(
        'subject: "{{ site.title }}: {{ items|length }}', 'subject: "Geändert {{ items|length }}'
    )
    result, transport = desk.send(AT)
    assert result.prepared.issue.id == prepared.issue.id
    assert prepared.issue.subject.startswith("Präventionskette Ahlen: 3")
    subjects = {
        email.message_from_bytes(data, policy=email.policy.default)["Subject"]
        for _, _, data in transport.sent
    }
    assert subjects == {prepared.issue.subject}


def test_an_issue_too_large_for_gmail_holds_the_oldest_items_for_the_next(desk: Desk) -> None:
    """Gmail clips HTML from ~99 KB and with it the unsubscribe footer: the ledger takes only
    as many items as fit under 90 KB as sent (every placeholder filled); the rest wait for the
    next issue, none is lost, and the email says how many wait."""
    desk.site.replace_in_config("max_items: 20", "max_items: 200")
    body = "Ein Absatz mit etwas Text, der die Meldung länger macht. " * 40
    for n in range(60):
        desk.site.write(
            f"content/bulk-{n:02d}.md",
            f"---\ntitle: Meldung {n:02d}\ndate: 2017-11-15T{n // 6:02d}:{n % 6 * 10:02d}:00+01:00\n"
            f"url: https://www.example.org/bulk/{n}\nsummary: {body[:280]}\n---\n{body}\n",
        )
    first, transport = desk.send(AT)
    issue = first.prepared.issue
    assert 3 < issue.item_count < 63  # some, not all, of the 63 items of the week
    for _, _, data in transport.sent:  # what each subscriber received
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        assert "unsubscribe" in str(message["List-Unsubscribe"])
        html_part = message.get_body(("html",))
        assert html_part is not None
        html = str(html_part.get_content())
        assert len(html.encode()) <= 90 * 1024
        waiting = 63 - issue.item_count
        assert f"{waiting} weitere Beiträge passten nicht mehr in diese E-Mail" in html

    # The held-back items follow in the next issues, each once, until none is left.
    sent = [item.uid for item in desk.store.issue_items(issue.id)]
    week = {f"folder:content:bulk-{n:02d}" for n in range(60)} | {
        uid for uid in sent if not uid.startswith("folder:content:bulk-")
    }
    at = NOV_27
    while not week <= set(sent):
        result, _ = desk.send(at)
        assert result.prepared.issue.item_count > 0
        assert len(result.prepared.issue.html.encode()) <= 90 * 1024
        sent += [item.uid for item in desk.store.issue_items(result.prepared.issue.id)]
        at += timedelta(days=7)
    assert len(sent) == len(set(sent))  # no item twice
    assert at > NOV_27 + timedelta(days=7)  # it took more than two issues
