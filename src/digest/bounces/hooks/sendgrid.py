"""SendGrid's signed event webhook: ECDSA (P-256, SHA-256) over the timestamp header followed
by the raw body; the verification key is the one SendGrid shows when signing is turned on.
Events ``bounce`` (type ``blocked`` is temporary), ``deferred`` and ``spamreport``."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from digest.bounces.config import SendgridHookConfig
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
from digest.bounces.hooks._common import angle, check_age, json_body, text
from digest.errors import ConfigError

SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"


def load_public_key(value: str) -> ec.EllipticCurvePublicKey:
    try:
        if "-----BEGIN" in value:
            key = serialization.load_pem_public_key(value.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(value, validate=True))
    except (ValueError, binascii.Error) as exc:
        raise ConfigError(
            f"bounces.webhooks.sendgrid.public_key: not a public key ({exc})"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError("bounces.webhooks.sendgrid.public_key: not an ECDSA key")
    return key


class Sendgrid:
    def __init__(self, config: SendgridHookConfig, max_age: int) -> None:
        self.key = load_public_key(config.public_key)
        self.max_age = max_age

    def events(self, request: Any, now: datetime) -> list[FeedbackEvent]:
        timestamp = text(request.headers.get(TIMESTAMP))
        try:
            signature = base64.b64decode(text(request.headers.get(SIGNATURE)), validate=True)
            self.key.verify(signature, timestamp.encode() + request.body, ec.ECDSA(hashes.SHA256()))
        except (binascii.Error, InvalidSignature):
            raise WebhookRefused("sendgrid: signature does not verify") from None
        try:
            check_age(float(timestamp), now, self.max_age, "sendgrid")
        except ValueError:
            raise WebhookRefused("sendgrid: bad timestamp") from None
        batch = json_body(request.body, "sendgrid")
        events: list[FeedbackEvent] = []
        for record in batch if isinstance(batch, list) else []:
            if not isinstance(record, dict):
                continue
            name = text(record.get("event"))
            if name == "spamreport":
                kind = COMPLAINT
            elif name == "deferred":
                kind = DELAYED
            elif name == "bounce":
                kind = SOFT if record.get("type") == "blocked" else HARD
            else:
                continue
            reason = text(record.get("reason")) or text(record.get("response"))
            events.append(
                FeedbackEvent(
                    kind=kind,
                    address=text(record.get("email")).lower(),
                    status=status_code(text(record.get("status"))),
                    diagnostic=one_line(reason),
                    message_id=angle(text(record.get("smtp-id"))),
                    source="sendgrid",
                )
            )
        return events
