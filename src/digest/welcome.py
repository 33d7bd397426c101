"""The welcome mail: a subscriber who confirms a sign-up gets the latest sent issue of each
digest that says ``welcome: latest``. It is a delivery row of that issue like any other, so
the ledger's rule holds: each subscriber gets each issue at most once."""

from __future__ import annotations

from digest.config import LoadedConfig
from digest.message import make_message_id, sender_domain
from digest.store import IssueRow, Store, Subscriber


def add_welcome_deliveries(
    loaded: LoadedConfig, store: Store, subscriber: Subscriber
) -> list[IssueRow]:
    """Queue the latest sent issue of each of the subscriber's ``welcome: latest`` digests;
    the issues that got a new row (deliver them with :func:`digest.send.deliver_issue`)."""
    queued = []
    domain = sender_domain(loaded.config.delivery)
    for name in subscriber.digests:
        if name not in loaded.config.digests or loaded.digest(name).welcome != "latest":
            continue
        issue = store.latest_sent_issue(name)
        if issue is None:
            continue
        message_id = make_message_id(domain, f"{name}.welcome")
        if store.add_late_delivery(issue.id, subscriber.id, message_id):
            queued.append(store.issue_by_id(issue.id))
    return queued
