"""Mailgun: ``signature: {timestamp, token, signature}`` is the HMAC-SHA256 (hex) of
timestamp + token with the webhook signing key; events ``failed`` (severity permanent or
temporary) and ``complained``."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from digest.bounces.config import MailgunHookConfig
from digest.bounces.events import COMPLAINT, HARD, SOFT, FeedbackEvent, WebhookRefused, one_line
from digest.bounces.hooks._common import angle, check_age, json_body, mapping, text


class Mailgun:
    def __init__(self, config: MailgunHookConfig, max_age: int) -> None:
        self.key = config.signing_key.get_secret_value().encode()
        self.max_age = max_age

    def events(self, request: Any, now: datetime) -> list[FeedbackEvent]:
        payload = json_body(request.body, "mailgun")
        signature = payload.get("signature") if isinstance(payload, dict) else None
        if not isinstance(signature, dict):
            raise WebhookRefused("mailgun: no signature")
        timestamp, token = text(signature.get("timestamp")), text(signature.get("token"))
        expected = hmac.new(self.key, (timestamp + token).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, text(signature.get("signature"))):
            raise WebhookRefused("mailgun: signature does not match")
        try:
            check_age(float(timestamp), now, self.max_age, "mailgun")
        except ValueError:
            raise WebhookRefused("mailgun: bad timestamp") from None
        data = payload.get("event-data")
        if not isinstance(data, dict):
            return []
        event = text(data.get("event"))
        if event == "complained":
            kind = COMPLAINT
        elif event == "failed":
            kind = HARD if data.get("severity") == "permanent" else SOFT
        else:
            return []
        status = mapping(data.get("delivery-status"))
        headers = mapping(mapping(data.get("message")).get("headers"))
        sender = text(mapping(data.get("envelope")).get("sender")).lower()
        code = text(status.get("enhanced-code")) or text(status.get("code"))
        return [
            FeedbackEvent(
                kind=kind,
                address=text(data.get("recipient")).lower(),
                status=code if "." in code else "",
                diagnostic=one_line(text(status.get("description")) or text(status.get("message"))),
                message_id=angle(text(headers.get("message-id"))),
                sent_to=(sender,) if sender else (),
                source="mailgun",
            )
        ]
