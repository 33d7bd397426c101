"""``POST /hooks/<provider>`` on ``digest serve`` (Starlette TestClient): a signed event
suppresses the subscriber; a forged one is 403 and changes nothing; the dashboard shows the
bounces of the latest issue."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import yaml
from sqlalchemy import func, select

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from digest.store import Store, bounce_log
from digest.web import create_app
from tests.conftest import Site
from tests.hooks_signing import (
    CERT_URL,
    FORGER_KEY,
    MAILGUN_KEY,
    SENDGRID_PUBLIC,
    SNS_CERT,
    TOPIC,
    basic_auth,
    mailgun_request,
    sendgrid_request,
    ses_bounce,
    sns_request,
)
from tests.web_site import configure_web

NOW = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
BASE = "http://127.0.0.1:8000"
ADDRESS = "rita@example.net"


@pytest.fixture
def client(site: Site) -> Iterator[TestClient]:
    configure_web(site.config)
    data = yaml.safe_load(site.config.read_text(encoding="utf-8"))
    data["bounces"] = {
        "webhooks": {
            "ses": {"topic_arns": [TOPIC]},
            "postmark": {"username": "hook", "password": "s3cret"},
            "mailgun": {"signing_key": MAILGUN_KEY},
            "sendgrid": {"public_key": SENDGRID_PUBLIC},
        }
    }
    site.config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    app = create_app(
        site.config,
        clock=lambda: NOW,
        environ={},
        watch=False,
        sns_fetch=lambda url: SNS_CERT if url == CERT_URL else b"",
    )
    with TestClient(app, base_url=BASE) as test_client:
        app.state.web.store.add_subscriber(ADDRESS, "Rita", ["weekly"], NOW)
        yield test_client


def store_of(client: TestClient) -> Store:
    store: Store = client.app.state.web.store  # type: ignore[attr-defined]
    return store


def state(client: TestClient) -> tuple[str, int]:
    store = store_of(client)
    subscriber = store.subscriber_by_email(ADDRESS)
    assert subscriber is not None
    with store.engine.connect() as conn:
        logged = conn.execute(select(func.count()).select_from(bounce_log)).scalar_one()
    return subscriber.status, int(logged)


POSTMARK = json.dumps({"RecordType": "Bounce", "Type": "HardBounce", "Email": ADDRESS}).encode()
MAILGUN = {"event": "failed", "severity": "permanent", "recipient": ADDRESS}
SENDGRID = [{"email": ADDRESS, "event": "bounce", "type": "bounce", "status": "5.1.1"}]

VALID = {
    "ses": lambda: sns_request(ses_bounce(ADDRESS, "<m@example.org>"), NOW),
    "postmark": lambda: (basic_auth("hook", "s3cret"), POSTMARK),
    "mailgun": lambda: mailgun_request(MAILGUN, NOW),
    "sendgrid": lambda: sendgrid_request(SENDGRID, NOW),
}
FORGED = {
    "ses": lambda: sns_request(ses_bounce(ADDRESS, "<m@example.org>"), NOW, key=FORGER_KEY),
    "postmark": lambda: (basic_auth("hook", "guess"), POSTMARK),
    "mailgun": lambda: mailgun_request(MAILGUN, NOW, key="key-guess"),
    "sendgrid": lambda: (
        sendgrid_request(SENDGRID, NOW)[0],
        json.dumps([{**SENDGRID[0], "email": "other@example.net"}]).encode(),
    ),
}


@pytest.mark.parametrize("provider", sorted(VALID))
def test_a_signed_event_suppresses(client: TestClient, provider: str) -> None:
    headers, body = VALID[provider]()
    response = client.post(f"/hooks/{provider}", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"events": 1, "recorded": 1}
    assert state(client) == ("bounced", 1)


@pytest.mark.parametrize("provider", sorted(FORGED))
def test_a_forged_event_is_refused_and_kept_nowhere(client: TestClient, provider: str) -> None:
    headers, body = FORGED[provider]()
    response = client.post(f"/hooks/{provider}", content=body, headers=headers)
    assert response.status_code == 403
    assert state(client) == ("active", 0)


def test_an_unconfigured_provider_is_404(site: Site) -> None:
    configure_web(site.config)
    app = create_app(site.config, clock=lambda: NOW, environ={}, watch=False)
    with TestClient(app, base_url=BASE) as test_client:
        assert test_client.post("/hooks/ses", content=b"{}").status_code == 404
        assert test_client.post("/hooks/nonsense", content=b"{}").status_code == 404


def test_hooks_answer_on_the_public_server_too(site: Site) -> None:
    configure_web(site.config)
    data = yaml.safe_load(site.config.read_text(encoding="utf-8"))
    data["bounces"] = {"webhooks": {"mailgun": {"signing_key": MAILGUN_KEY}}}
    site.config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    app = create_app(site.config, public_only=True, clock=lambda: NOW, environ={}, watch=False)
    with TestClient(app, base_url="https://news.example.org") as test_client:
        headers, body = mailgun_request({"event": "opened"}, NOW)
        assert test_client.post("/hooks/mailgun", content=body, headers=headers).status_code == 200


def test_the_dashboard_shows_the_latest_issues_bounces_and_pause(client: TestClient) -> None:
    from digest.bounces.config import BouncesConfig
    from digest.bounces.events import HARD, FeedbackEvent
    from digest.bounces.record import FeedbackRecorder
    from tests.test_store import make_issue
    from tests.web_site import STAFF_PASSWORD, STAFF_USER, csrf_of

    store = store_of(client)
    issue = make_issue(store, subscribers=2)
    with store.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE deliveries SET status = 'sent', payload_at = '2026-11-20 07:00:00'"
        )
    recorder = FeedbackRecorder(store, BouncesConfig(min_sample=1), lambda: NOW)
    recorder.report(b"r", "test", [FeedbackEvent(HARD, "s000@example.org", "5.1.1")])
    assert store.issue_by_id(issue.id).status == "paused"
    page = client.get("/login")
    client.post(
        "/login",
        data={"csrf": csrf_of(page.text), "user": STAFF_USER, "password": STAFF_PASSWORD},
    )
    dashboard = client.get("/").text
    assert "Rückläufer und Beschwerden" in dashboard
    assert "1 Rückläufer (1 dauerhaft, 0 vorübergehend), 0 Beschwerden" in dashboard
    assert "bounce rate 33.33% (1 of 3)" in dashboard
