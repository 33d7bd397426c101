"""Postmark signs nothing: its webhooks are authenticated by HTTP basic auth in the webhook
URL (``https://user:password@host/hooks/postmark``) or by a custom header with a shared
secret, both set in Postmark's webhook settings. Record types ``Bounce`` and
``SpamComplaint``."""

from __future__ import annotations

import base64
import binascii
import hmac
from datetime import datetime
from typing import Any

from digest.bounces.config import PostmarkHookConfig
from digest.bounces.events import COMPLAINT, HARD, SOFT, FeedbackEvent, WebhookRefused, one_line
from digest.bounces.hooks._common import angle, json_body, text

_HARD = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated", "Blocked"}
_SOFT = {"SoftBounce", "Transient", "DnsError", "MailboxFull"}


class Postmark:
    def __init__(self, config: PostmarkHookConfig) -> None:
        self.config = config

    def events(self, request: Any, now: datetime) -> list[FeedbackEvent]:
        if not self._authenticated(request.headers):
            raise WebhookRefused("postmark: credentials do not match")
        record = json_body(request.body, "postmark")
        if not isinstance(record, dict):
            return []
        kind_name = text(record.get("Type"))
        if record.get("RecordType") == "SpamComplaint" or kind_name == "SpamComplaint":
            kind = COMPLAINT
        elif kind_name in _HARD:
            kind = HARD
        elif kind_name in _SOFT:
            kind = SOFT
        else:
            return []  # auto-responders, subscription changes, open/click records
        headers = {
            text(h.get("Name")).lower(): text(h.get("Value"))
            for h in record.get("Headers") or []
            if isinstance(h, dict)
        }
        return [
            FeedbackEvent(
                kind=kind,
                address=text(record.get("Email")).lower(),
                diagnostic=one_line(text(record.get("Details")) or text(record.get("Description"))),
                message_id=angle(headers.get("message-id", "")),
                source="postmark",
            )
        ]

    def _authenticated(self, headers: Any) -> bool:
        config = self.config
        secret = config.secret.get_secret_value()
        if secret:
            given = text(headers.get(config.secret_header.lower()))
            if hmac.compare_digest(given.encode(), secret.encode()):
                return True
        if config.username and config.password.get_secret_value():
            scheme, _, encoded = text(headers.get("authorization")).partition(" ")
            if scheme.lower() != "basic":
                return False
            try:
                given_user, _, given_password = (
                    base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                return False
            user_ok = hmac.compare_digest(given_user.encode(), config.username.encode())
            password = config.password.get_secret_value().encode()
            return hmac.compare_digest(given_password.encode(), password) and user_ok
        return False
