"""Provider webhooks: each provider is one module with a class that verifies a request and
turns it into :class:`FeedbackEvent` values, and one line in :data:`PROVIDERS`.

A request that fails verification raises :class:`WebhookRefused`; the web route answers 4xx
and keeps nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from digest.bounces.config import WebhooksConfig
from digest.bounces.events import FeedbackEvent, WebhookRefused
from digest.bounces.hooks.mailgun import Mailgun
from digest.bounces.hooks.postmark import Postmark
from digest.bounces.hooks.sendgrid import Sendgrid
from digest.bounces.hooks.ses import Fetcher, Ses, fetch_https

__all__ = [
    "PROVIDERS",
    "Fetcher",
    "HookRequest",
    "Provider",
    "WebhookRefused",
    "fetch_https",
    "providers",
]


@dataclass(frozen=True)
class HookRequest:
    headers: Mapping[str, str]  # names lower-cased
    body: bytes


class Provider(Protocol):
    def events(self, request: HookRequest, now: datetime) -> list[FeedbackEvent]: ...


# name -> (config of that provider, or None when not configured; a fetcher) -> Provider
PROVIDERS: dict[str, Callable[[WebhooksConfig, Fetcher], Provider | None]] = {
    "ses": lambda c, fetch: Ses(c.ses, fetch, c.max_age_seconds) if c.ses else None,
    "postmark": lambda c, fetch: Postmark(c.postmark) if c.postmark else None,
    "mailgun": lambda c, fetch: Mailgun(c.mailgun, c.max_age_seconds) if c.mailgun else None,
    "sendgrid": lambda c, fetch: Sendgrid(c.sendgrid, c.max_age_seconds) if c.sendgrid else None,
}


def providers(config: WebhooksConfig, fetch: Fetcher = fetch_https) -> dict[str, Provider]:
    """The configured providers by route name."""
    made = {name: make(config, fetch) for name, make in PROVIDERS.items()}
    return {name: provider for name, provider in made.items() if provider is not None}
