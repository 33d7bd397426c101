"""Each provider webhook: a correctly signed request gives its events, a forged or replayed
one is refused (the route answers 4xx for it: see test_bounces_web.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from digest.bounces.config import WebhooksConfig
from digest.bounces.events import COMPLAINT, DELAYED, HARD, SOFT, WebhookRefused
from digest.bounces.hooks import HookRequest, providers
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
    ses_complaint,
    sns_request,
)

NOW = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
CONFIG = WebhooksConfig.model_validate(
    {
        "ses": {"topic_arns": [TOPIC]},
        "postmark": {"username": "hook", "password": "s3cret"},
        "mailgun": {"signing_key": MAILGUN_KEY},
        "sendgrid": {"public_key": SENDGRID_PUBLIC},
    }
)


class Fetches:
    """The injected fetcher: serves our certificate, records every URL asked for."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return SNS_CERT if url == CERT_URL else b"confirmed"


def call(name: str, request: tuple[dict[str, str], bytes], fetch: Fetches | None = None):  # type: ignore[no-untyped-def]
    provider = providers(CONFIG, fetch or Fetches())[name]
    headers, body = request
    return provider.events(HookRequest(headers=headers, body=body), NOW)


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_signed_bounce_is_accepted(version: str) -> None:
    fetch = Fetches()
    request = sns_request(ses_bounce("a@example.net", "<m1@example.org>"), NOW, version=version)
    (event,) = call("ses", request, fetch)
    assert (event.kind, event.address, event.status, event.message_id) == (
        HARD,
        "a@example.net",
        "5.1.1",
        "<m1@example.org>",
    )
    assert fetch.urls == [CERT_URL]


def test_ses_complaint_and_transient_bounce() -> None:
    (complaint,) = call("ses", sns_request(ses_complaint("b@example.net", "<m2@x>"), NOW))
    assert complaint.kind == COMPLAINT and complaint.address == "b@example.net"
    (soft,) = call("ses", sns_request(ses_bounce("c@example.net", "<m3@x>", permanent=False), NOW))
    assert soft.kind == SOFT


def test_ses_forged_signature_is_refused() -> None:
    request = sns_request(ses_bounce("a@example.net", "<m1@x>"), NOW, key=FORGER_KEY)
    with pytest.raises(WebhookRefused, match="does not verify"):
        call("ses", request)


def test_ses_tampered_message_is_refused() -> None:
    headers, body = sns_request(ses_bounce("a@example.net", "<m1@x>"), NOW)
    tampered = body.replace(b"a@example.net", b"z@example.net")
    with pytest.raises(WebhookRefused, match="does not verify"):
        call("ses", (headers, tampered))


@pytest.mark.parametrize(
    "url",
    [
        "https://attacker.example/cert.pem",
        "http://sns.eu-central-1.amazonaws.com/cert.pem",
        "https://sns.eu-central-1.amazonaws.com.attacker.example/cert.pem",
        "https://sns.eu-central-1.amazonaws.com:8443/cert.pem",
        "https://sns.eu-central-1.amazonaws.com/cert.txt",
    ],
)
def test_ses_certificate_url_off_sns_is_refused_without_a_fetch(url: str) -> None:
    fetch = Fetches()
    request = sns_request(ses_bounce("a@example.net", "<m1@x>"), NOW, cert_url=url)
    with pytest.raises(WebhookRefused, match="SigningCertURL"):
        call("ses", request, fetch)
    assert fetch.urls == []


def test_ses_old_message_is_refused() -> None:
    request = sns_request(ses_bounce("a@example.net", "<m1@x>"), NOW - timedelta(hours=2))
    with pytest.raises(WebhookRefused, match="older"):
        call("ses", request)


def test_ses_subscription_is_confirmed_after_verifying() -> None:
    fetch = Fetches()
    assert call("ses", sns_request(None, NOW, kind="SubscriptionConfirmation"), fetch) == []
    assert fetch.urls[-1].startswith("https://sns.eu-central-1.amazonaws.com/?Action=Confirm")
    forged = Fetches()
    with pytest.raises(WebhookRefused):
        call("ses", sns_request(None, NOW, kind="SubscriptionConfirmation", key=FORGER_KEY), forged)
    assert all("Confirm" not in url for url in forged.urls)


POSTMARK_BOUNCE = json.dumps(
    {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "TypeCode": 1,
        "Email": "D@Example.net",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist",
        "Headers": [{"Name": "Message-ID", "Value": "<m4@example.org>"}],
    }
).encode()


def test_postmark_with_basic_auth_is_accepted() -> None:
    (event,) = call("postmark", (basic_auth("hook", "s3cret"), POSTMARK_BOUNCE))
    assert (event.kind, event.address, event.message_id) == (
        HARD,
        "d@example.net",
        "<m4@example.org>",
    )


@pytest.mark.parametrize(
    "headers",
    [{}, basic_auth("hook", "wrong"), basic_auth("other", "s3cret"), {"authorization": "Basic !!"}],
)
def test_postmark_without_the_credentials_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(WebhookRefused):
        call("postmark", (headers, POSTMARK_BOUNCE))


def test_postmark_shared_secret_header() -> None:
    config = WebhooksConfig.model_validate({"postmark": {"secret": "tok"}})
    provider = providers(config)["postmark"]
    body = json.dumps({"RecordType": "SpamComplaint", "Type": "SpamComplaint", "Email": "e@x.net"})
    (event,) = provider.events(HookRequest({"x-webhook-secret": "tok"}, body.encode()), NOW)
    assert event.kind == COMPLAINT
    with pytest.raises(WebhookRefused):
        provider.events(HookRequest({"x-webhook-secret": "tak"}, body.encode()), NOW)


MAILGUN_FAILED = {
    "event": "failed",
    "severity": "permanent",
    "recipient": "f@example.net",
    "message": {"headers": {"message-id": "m5@example.org"}},
    "delivery-status": {"code": 550, "description": "5.1.1 mailbox does not exist"},
}


def test_mailgun_signed_event_is_accepted() -> None:
    (event,) = call("mailgun", mailgun_request(MAILGUN_FAILED, NOW))
    assert (event.kind, event.address, event.message_id) == (
        HARD,
        "f@example.net",
        "<m5@example.org>",
    )
    temporary = dict(MAILGUN_FAILED, severity="temporary")
    assert call("mailgun", mailgun_request(temporary, NOW))[0].kind == SOFT
    complained = {"event": "complained", "recipient": "g@example.net"}
    assert call("mailgun", mailgun_request(complained, NOW))[0].kind == COMPLAINT


def test_mailgun_wrong_key_or_replay_is_refused() -> None:
    with pytest.raises(WebhookRefused, match="does not match"):
        call("mailgun", mailgun_request(MAILGUN_FAILED, NOW, key="key-guessed"))
    with pytest.raises(WebhookRefused, match="older"):
        call("mailgun", mailgun_request(MAILGUN_FAILED, NOW - timedelta(hours=1)))


SENDGRID_EVENTS = [
    {"email": "h@example.net", "event": "bounce", "type": "bounce", "status": "5.1.1",
     "reason": "550 5.1.1 user unknown", "smtp-id": "<m6@example.org>"},
    {"email": "i@example.net", "event": "spamreport", "smtp-id": "<m7@example.org>"},
    {"email": "j@example.net", "event": "deferred", "response": "451 4.7.1 try later"},
    {"email": "k@example.net", "event": "open"},
]  # fmt: skip


def test_sendgrid_signed_batch_is_accepted() -> None:
    events = call("sendgrid", sendgrid_request(SENDGRID_EVENTS, NOW))
    assert [(e.kind, e.address) for e in events] == [
        (HARD, "h@example.net"),
        (COMPLAINT, "i@example.net"),
        (DELAYED, "j@example.net"),
    ]


def test_sendgrid_forged_or_tampered_batch_is_refused() -> None:
    with pytest.raises(WebhookRefused, match="does not verify"):
        call(
            "sendgrid",
            sendgrid_request(SENDGRID_EVENTS, NOW, key=ec.generate_private_key(ec.SECP256R1())),
        )
    headers, body = sendgrid_request(SENDGRID_EVENTS, NOW)
    with pytest.raises(WebhookRefused, match="does not verify"):
        call("sendgrid", (headers, body.replace(b"h@example", b"x@example")))


def test_only_configured_providers_are_offered() -> None:
    assert set(providers(WebhooksConfig())) == set()
    assert set(providers(CONFIG)) == {"ses", "postmark", "mailgun", "sendgrid"}
