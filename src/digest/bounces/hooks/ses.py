"""Amazon SES notifications through SNS. Every SNS message is signed: the signature (SHA1 for
SignatureVersion 1, SHA256 for 2, RSA PKCS#1 v1.5) covers the fields RFC-less SNS names, with
the key of the certificate at ``SigningCertURL``. That URL must be
``https://sns.<region>.amazonaws.com/...pem``; anything else is refused before a fetch, so a
forged message cannot make us fetch from a host of its choosing. The fetcher is injectable
(tests serve their own certificate).

A ``SubscriptionConfirmation`` is verified the same way, then confirmed by fetching its
``SubscribeURL`` (same host rule).
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from digest.bounces.config import SesHookConfig
from digest.bounces.events import (
    COMPLAINT,
    DELAYED,
    HARD,
    SOFT,
    FeedbackEvent,
    WebhookRefused,
    one_line,
    status_code,
)
from digest.bounces.hooks._common import angle, check_age, json_body, mapping, text

Fetcher = Callable[[str], bytes]
_SNS_HOST = re.compile(r"^sns\.[a-z]{2}(-[a-z]+)+-\d+\.amazonaws\.com(\.cn)?$")
_NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_FIELDS = (
    "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
)  # fmt: skip


def sns_url(url: str) -> bool:
    """Whether ``url`` is an https URL on an SNS endpoint (no user, no port)."""
    parts = urlsplit(url)
    return (
        parts.scheme == "https"
        and parts.port is None
        and not parts.username
        and bool(_SNS_HOST.match(parts.hostname or ""))
    )


def fetch_https(url: str) -> bytes:
    """GET an SNS URL (the caller has checked it with :func:`sns_url`)."""
    try:
        response = httpx.get(url, timeout=10, follow_redirects=False)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise WebhookRefused(f"ses: cannot fetch {url}: {exc}") from None
    return response.content


def string_to_sign(message: dict[str, Any]) -> bytes:
    kind = message.get("Type")
    names = _NOTIFICATION_FIELDS if kind == "Notification" else _CONFIRMATION_FIELDS
    return "".join(
        f"{name}\n{message[name]}\n" for name in names if message.get(name) is not None
    ).encode("utf-8")


class Ses:
    def __init__(self, config: SesHookConfig, fetch: Fetcher, max_age: int) -> None:
        self.config = config
        self.fetch = fetch
        self.max_age = max_age
        self.keys: dict[str, rsa.RSAPublicKey] = {}
        self.lock = threading.Lock()

    def events(self, request: Any, now: datetime) -> list[FeedbackEvent]:
        message = json_body(request.body, "ses")
        if not isinstance(message, dict):
            raise WebhookRefused("ses: not an SNS message")
        self._verify(message)
        topics = self.config.topic_arns
        if topics and message.get("TopicArn") not in topics:
            raise WebhookRefused(f"ses: topic {text(message.get('TopicArn'))!r} is not configured")
        try:
            sent = datetime.fromisoformat(text(message.get("Timestamp")).replace("Z", "+00:00"))
        except ValueError:
            raise WebhookRefused("ses: bad Timestamp") from None
        kind = message.get("Type")
        if kind == "SubscriptionConfirmation":
            if self.config.confirm_subscriptions:
                url = text(message.get("SubscribeURL"))
                if not sns_url(url):
                    raise WebhookRefused("ses: SubscribeURL is not an SNS URL")
                self.fetch(url)
            return []
        if kind != "Notification":
            return []
        check_age(sent.timestamp(), now, max(self.max_age, 3600), "ses")  # SNS retries for an hour
        notification = json_body(text(message.get("Message")).encode(), "ses")
        return notification_events(notification) if isinstance(notification, dict) else []

    def _verify(self, message: dict[str, Any]) -> None:
        version = text(message.get("SignatureVersion"))
        algorithm: hashes.HashAlgorithm
        if version == "1":
            algorithm = hashes.SHA1()
        elif version == "2":
            algorithm = hashes.SHA256()
        else:
            raise WebhookRefused(f"ses: unknown SignatureVersion {version!r}")
        url = text(message.get("SigningCertURL"))
        if not sns_url(url) or not urlsplit(url).path.endswith(".pem"):
            raise WebhookRefused(f"ses: SigningCertURL {url!r} is not an SNS certificate URL")
        try:
            signature = base64.b64decode(text(message.get("Signature")), validate=True)
            self._key(url).verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm)
        except (binascii.Error, InvalidSignature):
            raise WebhookRefused("ses: SNS signature does not verify") from None

    def _key(self, url: str) -> rsa.RSAPublicKey:
        with self.lock:
            cached = self.keys.get(url)
        if cached is not None:
            return cached
        try:
            key = x509.load_pem_x509_certificate(self.fetch(url)).public_key()
        except ValueError:
            raise WebhookRefused(f"ses: {url} is not a certificate") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise WebhookRefused(f"ses: {url} has no RSA key")
        with self.lock:
            self.keys[url] = key
        return key


def notification_events(notification: dict[str, Any]) -> list[FeedbackEvent]:
    """Events of one SES notification (``notificationType``, or ``eventType`` for
    configuration-set event publishing)."""
    kind_name = text(notification.get("notificationType") or notification.get("eventType"))
    mail = mapping(notification.get("mail"))
    common = mapping(mail.get("commonHeaders"))
    message_id = text(common.get("messageId"))
    for header in mail.get("headers") or []:
        if isinstance(header, dict) and text(header.get("name")).lower() == "message-id":
            message_id = text(header.get("value"))
    sent_to = (text(mail.get("source")).lower(),) if mail.get("source") else ()
    events: list[FeedbackEvent] = []
    if kind_name == "Bounce":
        bounce = mapping(notification.get("bounce"))
        bounce_type = text(bounce.get("bounceType"))
        for recipient in map(mapping, bounce.get("bouncedRecipients") or []):
            status = status_code(text(recipient.get("status")))
            if bounce_type == "Permanent":
                kind = HARD
            elif bounce_type == "Transient":
                kind = SOFT
            else:
                kind = HARD if status.startswith("5") else SOFT
            events.append(
                FeedbackEvent(
                    kind=kind,
                    address=text(recipient.get("emailAddress")).lower(),
                    status=status,
                    diagnostic=one_line(text(recipient.get("diagnosticCode"))),
                    message_id=angle(message_id),
                    sent_to=sent_to,
                    source="ses",
                )
            )
    elif kind_name == "Complaint":
        complaint = mapping(notification.get("complaint"))
        if text(complaint.get("complaintFeedbackType")) == "not-spam":
            return []
        for recipient in map(mapping, complaint.get("complainedRecipients") or []):
            events.append(
                FeedbackEvent(
                    kind=COMPLAINT,
                    address=text(recipient.get("emailAddress")).lower(),
                    diagnostic=one_line(
                        f"feedback-type {text(complaint.get('complaintFeedbackType')) or 'abuse'}"
                    ),
                    message_id=angle(message_id),
                    sent_to=sent_to,
                    source="ses",
                )
            )
    elif kind_name == "DeliveryDelay":
        delay = mapping(notification.get("deliveryDelay"))
        for recipient in map(mapping, delay.get("delayedRecipients") or []):
            events.append(
                FeedbackEvent(
                    kind=DELAYED,
                    address=text(recipient.get("emailAddress")).lower(),
                    status=status_code(text(recipient.get("status"))),
                    diagnostic=one_line(text(recipient.get("diagnosticCode"))),
                    message_id=angle(message_id),
                    sent_to=sent_to,
                    source="ses",
                )
            )
    return events
