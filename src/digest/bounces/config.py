"""The ``bounces:`` section of config.yaml (and ``delivery.dkim``): validated at load like the
rest; ``digest.config`` includes these models."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from digest.fields import StrictModel

_DNS_NAME = re.compile(
    r"^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$"
)


class DkimConfig(StrictModel):
    domain: str
    selector: str
    private_key_file: str
    algorithm: Literal["rsa-sha256", "ed25519-sha256"] = "rsa-sha256"

    @field_validator("domain", "selector")
    @classmethod
    def _label(cls, value: str) -> str:
        if not _DNS_NAME.match(value):
            raise ValueError(f"{value!r} is not a DNS name")
        return value


class ImapConfig(StrictModel):
    host: str
    port: int = Field(default=993, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = "ssl"
    username: str
    password: SecretStr
    folder: str = "INBOX"
    processed_folder: str = Field(
        default="digest-processed", description="Read reports are moved here."
    )
    delete_processed: bool = Field(
        default=False, description="Delete read reports instead of moving them."
    )
    timeout: float = Field(default=30, gt=0)


class SesHookConfig(StrictModel):
    topic_arns: list[str] = Field(
        default_factory=list, description="Accept only these SNS topics (empty: any)."
    )
    confirm_subscriptions: bool = True


class PostmarkHookConfig(StrictModel):
    username: str = ""
    password: SecretStr = SecretStr("")
    secret: SecretStr = SecretStr("")
    secret_header: str = "X-Webhook-Secret"

    @model_validator(mode="after")
    def _credentials(self) -> PostmarkHookConfig:
        if not (self.username and self.password.get_secret_value()) and not (
            self.secret.get_secret_value()
        ):
            raise ValueError("set username and password (basic auth) or secret")
        return self


class MailgunHookConfig(StrictModel):
    signing_key: SecretStr


class SendgridHookConfig(StrictModel):
    public_key: str = Field(description="The verification key SendGrid shows (base64 or PEM).")


class WebhooksConfig(StrictModel):
    ses: SesHookConfig | None = None
    postmark: PostmarkHookConfig | None = None
    mailgun: MailgunHookConfig | None = None
    sendgrid: SendgridHookConfig | None = None
    max_age_seconds: int = Field(
        default=900, ge=60, description="Signed timestamps older than this are refused."
    )


class BouncesConfig(StrictModel):
    return_path: str | None = Field(
        default=None, description='VERP envelope sender, e.g. "bounces+{token}@example.org".'
    )
    imap: ImapConfig | None = None
    webhooks: WebhooksConfig = WebhooksConfig()
    soft_threshold: float = Field(default=3.0, gt=0, description="Score that suppresses.")
    soft_window_days: int = Field(default=30, ge=1)
    soft_score: float = Field(default=0.5, gt=0)
    max_bounce_rate: float = Field(default=0.05, gt=0, le=1)
    max_complaint_rate: float = Field(default=0.003, gt=0, le=1)
    min_sample: int = Field(
        default=100, ge=1, description="Deliveries an issue needs before its rates count."
    )

    @field_validator("return_path")
    @classmethod
    def _return_path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        local, at, domain = value.rpartition("@")
        if value.count("{token}") != 1 or "{token}" not in local or not at or not domain:
            raise ValueError('must be an address with one {token} before the "@"')
        if re.search(r"[\s<>\"]", value):
            raise ValueError("must be a bare address, no spaces or angle brackets")
        return value
