"""Signed provider requests for the webhook tests: our own SNS certificate and key, a Mailgun
signing key, a SendGrid ECDSA key pair. Each ``*_request`` returns (headers, body)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from digest.bounces.hooks.ses import string_to_sign

CERT_URL = "https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-test.pem"
TOPIC = "arn:aws:sns:eu-central-1:123456789012:digest-bounces"
MAILGUN_KEY = "key-mailgun-test-signing-key"


def _certificate(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


SNS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SNS_CERT = _certificate(SNS_KEY)
FORGER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(
    SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


def iso(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def ses_bounce(address: str, message_id: str, *, permanent: bool = True) -> dict[str, Any]:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent" if permanent else "Transient",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": address,
                    "action": "failed",
                    "status": "5.1.1" if permanent else "4.2.2",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
        },
        "mail": {
            "source": "bounces@example.org",
            "messageId": "0100015f-ses-id",
            "commonHeaders": {"messageId": message_id},
        },
    }


def ses_complaint(address: str, message_id: str) -> dict[str, Any]:
    return {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": address}],
            "complaintFeedbackType": "abuse",
        },
        "mail": {"source": "bounces@example.org", "commonHeaders": {"messageId": message_id}},
    }


def sns_request(
    notification: dict[str, Any] | None,
    now: datetime,
    *,
    key: rsa.RSAPrivateKey = SNS_KEY,
    cert_url: str = CERT_URL,
    kind: str = "Notification",
    version: str = "1",
) -> tuple[dict[str, str], bytes]:
    message: dict[str, Any] = {
        "Type": kind,
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Message": json.dumps(notification) if notification is not None else "confirm",
        "Timestamp": iso(now),
        "SignatureVersion": version,
        "SigningCertURL": cert_url,
    }
    if kind == "SubscriptionConfirmation":
        message["Token"] = "2336412f37fb687f5d51e6e2425c464de"
        message["SubscribeURL"] = (
            "https://sns.eu-central-1.amazonaws.com/?Action=ConfirmSubscription&Token=2336"
        )
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(string_to_sign(message), padding.PKCS1v15(), algorithm)
    message["Signature"] = base64.b64encode(signature).decode()
    return {"x-amz-sns-message-type": kind}, json.dumps(message).encode()


def mailgun_request(
    event: dict[str, Any], now: datetime, *, key: str = MAILGUN_KEY
) -> tuple[dict[str, str], bytes]:
    timestamp, token = (
        str(int(now.timestamp())),
        "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0",
    )
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    body = {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event,
    }
    return {"content-type": "application/json"}, json.dumps(body).encode()


def sendgrid_request(
    events: list[dict[str, Any]], now: datetime, *, key: ec.EllipticCurvePrivateKey = SENDGRID_KEY
) -> tuple[dict[str, str], bytes]:
    body = json.dumps(events).encode()
    timestamp = str(int(now.timestamp()))
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "x-twilio-email-event-webhook-signature": base64.b64encode(signature).decode(),
        "x-twilio-email-event-webhook-timestamp": timestamp,
    }, body


def basic_auth(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
