"""An issue being sent pauses as soon as intake finds its bounce rate past the limit: the
senders stop at their next batch, the rest stays queued, and the scheduler does not resume
it on its own (staff do, with ``digest send``)."""

from __future__ import annotations

from datetime import UTC, datetime

from digest.bounces.config import BouncesConfig
from digest.bounces.events import HARD, FeedbackEvent
from digest.bounces.record import FeedbackRecorder
from digest.deliver import DeliveryOptions, IssueDelivery
from digest.ledger import prepare_issue
from digest.scheduler import Runner
from digest.send import issue_mail
from digest.store import ISSUE_PAUSED, PENDING, SENT, Store
from digest.transport import MemoryTransport
from tests.conftest import AT, CliRunner, Site
from tests.smtp_server import import_subscribers, subscribers_csv

NOW = datetime(2017, 11, 20, 7, 30, tzinfo=UTC)


def test_intake_pauses_an_issue_mid_send_and_only_staff_resume_it(
    site: Site, cli: CliRunner
) -> None:
    import_subscribers(site, cli, subscribers_csv(40))
    loaded = site.load()
    store = Store.open(loaded.database_url)
    try:
        issue = prepare_issue(loaded, store, "weekly", AT, now=NOW).issue
        assert issue is not None
        config = BouncesConfig(min_sample=5, max_bounce_rate=0.1)
        sent: list[str] = []

        def bounce_back(recipient: str) -> None:
            """The relay bounces the first three recipients while the send goes on, and an
            older issue's bounce suppresses one who has not had this one yet."""
            sent.append(recipient)
            if len(sent) == 10:
                recorder = FeedbackRecorder(store, config, lambda: NOW)
                for address in [*sent[:3], "user0039@example.net"]:
                    event = FeedbackEvent(HARD, address, "5.1.1")
                    recorder.report(address.encode(), "dsn", [event])

        transport = MemoryTransport(fail=bounce_back)
        options = DeliveryOptions(retry=loaded.config.delivery.retry, batch_size=4)
        report = IssueDelivery(
            issue_mail(loaded, store, issue),
            store,
            issue,
            transport,
            options=options,
            clock=lambda: NOW,
        ).run()
        assert report.paused and report.paused.startswith("bounce/complaint limit: bounce rate")
        assert store.issue_status(issue.id)[0] == ISSUE_PAUSED
        counts = store.counts(issue.id)
        assert counts[SENT] <= 12 and counts[PENDING] >= 28  # stopped at the next batch

        runner = Runner(loaded, store, transport=transport, clock=lambda: NOW)
        runner.tick()
        assert store.counts(issue.id)[SENT] == counts[SENT]  # not resumed by the scheduler
    finally:
        store.close()
    result = cli("-c", site.config, "send", "weekly", "--yes", "--at", AT.isoformat())
    assert result.code == 0, result.err
    store = Store.open(loaded.database_url)
    try:
        final = store.counts(issue.id)
    finally:
        store.close()
    assert final[SENT] == 39 and final["skipped"] == 1  # suppressed before their turn
