"""Small helpers the provider modules share."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from digest.bounces.events import WebhookRefused


def json_body(body: bytes, provider: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRefused(f"{provider}: the body is not JSON") from None


def check_age(timestamp: float, now: datetime, max_age: int, provider: str) -> None:
    """Refuse a replayed (or far-future) signed timestamp."""
    if abs(now.timestamp() - timestamp) > max_age:
        raise WebhookRefused(f"{provider}: signed timestamp is older than {max_age} s")


def angle(message_id: str) -> str:
    """A Message-ID with its angle brackets (providers often drop them)."""
    value = message_id.strip()
    if not value:
        return ""
    return value if value.startswith("<") else f"<{value}>"


def text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def mapping(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}
