"""The schema of ``config.yaml``: one frozen pydantic model per section.

The ``sources:`` entries are the models the source kinds declare (:mod:`digest.sources.registry`);
filters declare their keys in :mod:`digest.filters`.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import time
from functools import reduce
from operator import or_
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from digest.bounces.config import BouncesConfig, DkimConfig
from digest.catalogue import Translator, catalogue_language, translator_for
from digest.errors import HeaderError
from digest.fields import StrictModel
from digest.filters import FilterFields
from digest.headers import check_header_value, parse_mailbox
from digest.localtime import parse_deliver_at
from digest.sources.base import SourceEntry
from digest.sources.registry import ENTRY_MODELS
from digest.window import SendWindow

_Model = StrictModel


def _absolute_http_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("must be an absolute http(s) URL, e.g. https://www.example.org")
    return value.rstrip("/")


class LogoConfig(_Model):
    src: str
    alt: str
    width: int = Field(default=160, ge=16, le=600)

    @field_validator("src")
    @classmethod
    def _src_absolute(cls, value: str) -> str:
        return _absolute_http_url(value)


class SiteConfig(_Model):
    title: str = Field(min_length=1)
    base_url: str
    locale: str = "de_DE"
    timezone: str = "Europe/Berlin"
    address: str = Field(
        min_length=1,
        description="Postal address / imprint line printed in every footer (required by law "
        "in the EU and by CAN-SPAM).",
    )
    public_url: str | None = Field(
        default=None,
        description="Where 'digest serve' is reachable from outside; unsubscribe, confirm and "
        "archive links point here. Defaults to base_url.",
    )
    imprint_url: str | None = None
    privacy_url: str | None = None
    logo: LogoConfig | None = None
    accent_color: str = Field(default="#005a8c", pattern=r"^#[0-9a-fA-F]{6}$")

    @field_validator("base_url", "public_url", "imprint_url", "privacy_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _absolute_http_url(value)

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        catalogue_language(value)  # UnknownLanguage (a ValueError) lists the languages there are
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return _check_timezone(value)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def translator(self) -> Translator:
        """The message catalogue of the site's language."""
        return translator_for(self.locale)

    @property
    def links_url(self) -> str:
        return self.public_url or self.base_url


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (use e.g. Europe/Berlin)") from exc
    return value


def _check_languages(mapping: dict[str, str]) -> None:
    for language in mapping:
        catalogue_language(language)  # UnknownLanguage (a ValueError) lists the languages


if TYPE_CHECKING:
    SourceConfig = SourceEntry
else:
    SourceConfig = Annotated[reduce(or_, ENTRY_MODELS), Field(discriminator="kind")]


def _clock_text(value: Any) -> Any:
    """YAML 1.1 reads an unquoted 20:00 as the sexagesimal number 1200: turn it back."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 1440:
        return f"{value // 60:02d}:{value % 60:02d}"
    return value


ClockText = Annotated[str, BeforeValidator(_clock_text)]


class SendWindowConfig(_Model):
    """Local days and hours (digest time zone) in which `digest run` sends; a due issue
    waits for the window to open."""

    days: str = Field(default="*", description="Crontab weekdays: mon-fri, sat,sun, 1-5, *.")
    start: ClockText = "00:00"
    end: ClockText = Field(default="24:00", description="Exclusive; before start = over midnight.")

    @model_validator(mode="after")
    def _check(self) -> SendWindowConfig:
        self.window  # noqa: B018 -- raises ValueError with the reason
        return self

    @property
    def window(self) -> SendWindow:
        return SendWindow.parse(self.days, self.start, self.end)


class DigestConfig(FilterFields):
    title: str = Field(min_length=1)
    schedule: str
    subject: str | dict[str, str] = Field(
        default="{{ digest.title }}: {{ items|length }} neue Beiträge",
        description="A Jinja template, or one per language ({de: ..., en: ...}).",
    )
    template: str = Field(default="digest", pattern=r"^[A-Za-z0-9_-]+$")
    max_items: int = Field(default=20, ge=1, le=500)
    group_by: Literal["none", "tag", "month"] = "none"
    intro: str | None = None
    preheader: str | None = None
    timezone: str | None = None
    sources: list[str] | None = Field(
        default=None, description="Names of the sources this digest draws on; all when unset."
    )
    backfill_days: float | None = Field(
        default=None,
        ge=0,
        description="How far back the first issue reaches; default one period. Items older "
        "than that which exist when the digest starts are never sent.",
    )
    catch_up: Literal["merge", "each", "skip"] = Field(
        default="merge",
        description="`digest run` after missing fire times: merge = one issue with everything "
        "since the last cutoff; each = one issue per missed period, in order; skip = record "
        "the missed periods as skipped and send nothing for them.",
    )
    send_empty: bool = Field(
        default=False, description="Send an issue with no items (default: record it, send nothing)."
    )
    send_window: SendWindowConfig | None = None
    welcome: Literal["latest"] | None = Field(
        default=None,
        description="latest: a subscriber who confirms a sign-up gets the latest sent issue "
        "at once (default: nothing until the next issue).",
    )
    deliver_at: ClockText | None = Field(
        default=None,
        description="Local delivery time (HH:MM): each reader gets the issue at the first such "
        "time in their own time zone (default site.timezone) at or after the issue's cutoff; "
        "'digest run' sends the rows as they come due. A send now goes out at once.",
    )
    topics: dict[str, str | dict[str, str]] = Field(
        default_factory=dict,
        description="Item tags readers may choose ({tag: label}); a label is a string or one "
        "per language. An item with none of these tags goes to every reader.",
    )

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str | dict[str, str]) -> str | dict[str, str]:
        if isinstance(value, dict):
            if not value:
                raise ValueError("give a subject, or one per language")
            _check_languages(value)
        return value

    @field_validator("deliver_at")
    @classmethod
    def _deliver_at(cls, value: str | None) -> str | None:
        if value is not None:
            parse_deliver_at(value)  # raises ValueError with the reason
        return value

    @property
    def local_time(self) -> time | None:
        """``deliver_at`` as a time of day (None: send at once)."""
        return None if self.deliver_at is None else parse_deliver_at(self.deliver_at)

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: dict[str, str | dict[str, str]]) -> dict[str, str | dict[str, str]]:
        for tag, label in value.items():
            if not tag.strip():
                raise ValueError("a topic tag is empty")
            if isinstance(label, dict):
                _check_languages(label)
        return value

    def subject_for(self, language: str) -> str:
        """The subject template in ``language``: its own, else the first one given."""
        if isinstance(self.subject, str):
            return self.subject
        return self.subject.get(language) or next(iter(self.subject.values()))

    def topic_label(self, tag: str, language: str) -> str:
        """A topic's label in ``language``: its own, else the first given, else the tag."""
        label = self.topics.get(tag, tag)
        if isinstance(label, str):
            return label
        return label.get(language) or next(iter(label.values()), tag)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        from digest.schedule import Schedule  # APScheduler: only where a schedule is read

        Schedule.parse(value, ZoneInfo("UTC"))  # raises ValueError with the reason
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return None if value is None else _check_timezone(value)


class SmtpConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "starttls"
    username: str = ""
    password: SecretStr = SecretStr("")
    connections: int = Field(default=4, ge=1, le=64)
    rate_limit: float = Field(default=0, ge=0, description="Messages per second; 0 = unlimited.")
    timeout: float = Field(
        default=30, gt=0, description="Seconds for each server reply (the whole reply)."
    )
    message_timeout: float = Field(
        default=120, gt=0, description="Seconds for one message, MAIL FROM to the last reply."
    )


class RetryConfig(_Model):
    base_seconds: float = Field(default=60, gt=0, description="First retry after 4xx.")
    max_seconds: float = Field(default=6 * 3600, gt=0, description="Longest wait between tries.")
    pause_after_errors: int = Field(
        default=10, ge=1, description="Consecutive failures that pause the issue."
    )


class DeliveryConfig(_Model):
    from_: str = Field(alias="from")
    reply_to: str | None = None
    transport: Literal["smtp", "maildir"] = "maildir"
    smtp: SmtpConfig = SmtpConfig()
    maildir: str = "outbox"
    list_unsubscribe_mailto: str | None = None
    list_id: str | None = None
    retry: RetryConfig = RetryConfig()
    notify: str | None = Field(
        default=None,
        description="Who is mailed when a scheduled send is held by check errors, paused or "
        "failed; default web.staff_email.",
    )
    dkim: DkimConfig | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("from_")
    @classmethod
    def _mailbox(cls, value: str) -> str:
        try:
            parse_mailbox("value", value)
        except HeaderError as exc:  # a ValueError, so the error names file, line and key
            raise ValueError(str(exc).removeprefix("value: ")) from None
        return value

    @field_validator("from_", "reply_to", "list_unsubscribe_mailto", "list_id", "notify")
    @classmethod
    def _header_safe(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_header_value("value", value)
            except HeaderError as exc:  # a ValueError, so the error names file, line and key
                raise ValueError(str(exc).removeprefix("value: ")) from None
        return value


class StoreConfig(_Model):
    """How processes use the database (``store:``); the URL itself is ``database:``."""

    pool_size: int = Field(
        default=5, ge=1, le=100, description="Pooled connections per process (PostgreSQL)."
    )
    synchronous_commit: bool = Field(
        default=True,
        description="PostgreSQL: false lets senders' marks skip the WAL flush wait (faster; a "
        "server crash may lose the last marks, as SQLite's synchronous=NORMAL may).",
    )
    lease_seconds: float = Field(
        default=120, ge=2, le=3600, description="A sender's claim lease; it stops after half."
    )
    poll_seconds: float = Field(
        default=5, gt=0, le=300, description="How often an idle worker looks for work."
    )


class WebConfig(_Model):
    """``digest serve``: staff login, cookie signing, hosts and sign-up rules."""

    staff_user: str = Field(default="staff", min_length=1)
    staff_password_hash: str = Field(
        default="",
        description="From 'digest hash-password' (pbkdf2_sha256$...). Empty: no password; "
        "'digest serve' prints a one-time login link at start, the only way into staff pages. "
        "Changing it ends every staff session.",
    )
    staff_email: str | None = Field(default=None, description="Default 'test-send to me' address.")
    secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="Signs session cookies and form tokens; e.g. ${DIGEST_SECRET_KEY}. Empty: "
        "$DIGEST_SECRET_KEY, else a random key per server start (logins end on restart).",
    )
    allowed_hosts: list[str] = Field(
        default=["127.0.0.1", "localhost", "[::1]"],
        description="Host headers staff pages answer (DNS-rebinding guard); '*' allows any.",
    )
    session_idle_minutes: float = Field(
        default=60, gt=0, description="A staff session unused this long ends."
    )
    session_max_hours: float = Field(
        default=12, gt=0, description="A staff session ends this long after its login."
    )
    login_attempts_per_client: int = Field(
        default=10, ge=1, description="Login attempts one client address may make in 15 minutes."
    )
    login_failures_per_account: int = Field(
        default=5,
        ge=1,
        description="Failed logins to the staff account before it waits 15 minutes.",
    )
    trusted_proxies: list[str] = Field(
        default=[],
        description="Reverse proxies (addresses or networks) whose X-Forwarded-For/-Proto is "
        "believed. Empty: none, not even 127.0.0.1: the peer address is the client.",
    )
    signup_expiry_days: float = Field(default=7, gt=0, le=365)
    signups_per_ip_per_hour: int = Field(default=10, ge=1)
    signups_per_address_per_day: int = Field(default=3, ge=1)
    consent_version: str = Field(
        default="1",
        description="Recorded with each sign-up; bump it when the consent text changes.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (e.g. 10.0.0.5, 10.0.0.0/8)"
                ) from None
        return value

    @field_validator("staff_password_hash")
    @classmethod
    def _hash_format(cls, value: str) -> str:
        if value and not re.match(r"^pbkdf2_sha256\$\d+\$[^$]+\$[^$]+$", value):
            raise ValueError("must come from 'digest hash-password' (pbkdf2_sha256$...)")
        return value


class Config(_Model):
    site: SiteConfig
    database: str = "sqlite:///digest.db"
    templates: str = "templates"
    sources: list[SourceConfig] = Field(min_length=1)
    digests: dict[str, DigestConfig] = Field(min_length=1)
    delivery: DeliveryConfig
    store: StoreConfig = StoreConfig()
    web: WebConfig = WebConfig()
    bounces: BouncesConfig = BouncesConfig()

    @field_validator("digests")
    @classmethod
    def _digest_names(cls, value: dict[str, DigestConfig]) -> dict[str, DigestConfig]:
        for name in value:
            if not re.match(r"^[A-Za-z0-9_-]+$", name):
                raise ValueError(f"digest name {name!r} may use only letters, digits, - and _")
        return value
