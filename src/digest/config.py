"""Load and validate ``config.yaml``.

Every error names the file, the line and the key path (``config.yaml:14: digests.weekly.max_items:
...``). ``${VAR}`` and ``${VAR:-default}`` in string values expand from the environment; a variable
that is not set expands to the empty string and is remembered, so ``digest check`` can warn about
it where it matters (an SMTP password nobody set) without failing a maildir-only setup.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from babel import Locale, UnknownLocaleError
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from digest.errors import ConfigError, HeaderError
from digest.headers import check_header_value
from digest.schedule import Schedule
from digest.window import SendWindow

CONFIG_ENV = "DIGEST_CONFIG"
DEFAULT_CONFIG = "config.yaml"

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
        try:
            Locale.parse(value)
        except (ValueError, UnknownLocaleError) as exc:
            raise ValueError(f"unknown locale {value!r} (use e.g. de_DE or en_GB)") from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return _check_timezone(value)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def links_url(self) -> str:
        return self.public_url or self.base_url


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (use e.g. Europe/Berlin)") from exc
    return value


_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _parse_duration(value: Any) -> Any:
    """``30d``, ``12h``, ``2w``, ``90m`` (pydantic's own forms, seconds or ISO, also work)."""
    if isinstance(value, str) and not value.strip().upper().startswith("P"):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"duration {value!r} not understood (use e.g. 30d, 12h, 2w)")
        return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse_duration)]


class MatchConfig(_Model):
    """Tags (exact, case-insensitive) and keywords (substring of title or summary,
    case-insensitive); an item matches when any one of them does."""

    tags: list[str] = []
    keywords: list[str] = []


class FilterFields(_Model):
    """Filters shared by every source and every digest (see :mod:`digest.filters`)."""

    include: MatchConfig | None = Field(
        default=None, description="Keep only items that match one of these tags or keywords."
    )
    exclude: MatchConfig | None = Field(
        default=None, description="Drop items that match one of these tags or keywords."
    )
    max_age: Duration | None = Field(
        default=None, description="Drop items published longer ago than this (30d, 12h, 2w)."
    )


def _source_url(value: str) -> str:
    value = value.strip()
    if value.startswith("file:"):
        if len(value) == len("file:"):
            raise ValueError("file: URL needs a path, e.g. file:feeds/news.xml")
        return value
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(
            "must be an absolute http(s) URL or a file: path, e.g. https://example.org/feed.xml"
        )
    return value


def _css_selector(value: str | None) -> str | None:
    if value is None:
        return None
    from cssselect import GenericTranslator, SelectorError

    try:
        GenericTranslator().css_to_xpath(value)
    except SelectorError as exc:
        raise ValueError(f"invalid CSS selector {value!r}: {exc}") from None
    return value


class HttpSourceConfig(FilterFields):
    url: str
    name: str | None = None
    timeout: float = Field(default=20, gt=0, le=600, description="Seconds for the whole fetch.")
    max_bytes: int = Field(default=10_000_000, ge=1024, description="Largest response accepted.")
    user_agent: str | None = Field(
        default=None, description='Default: "digest/<version> (+<site.base_url>)".'
    )
    tags: list[str] = Field(default=[], description="Tags added to every item of this source.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _source_url(value)

    @field_validator("user_agent")
    @classmethod
    def _agent(cls, value: str | None) -> str | None:
        if value is not None:
            check_header_value("user_agent", value)
        return value


class FeedSourceConfig(HttpSourceConfig):
    """RSS 0.9x/1.0/2.0, Atom or JSON Feed, over HTTP(S) or from a ``file:``."""

    kind: Literal["feed"]

    @property
    def source_name(self) -> str:
        return self.name or f"feed:{self.url}"


class PageDateConfig(_Model):
    """Where an item's date is and how to read it: ``format`` (strptime) or ``pattern`` (a
    regular expression with named groups ``day``, ``month`` (number or month name in the
    locale) and optionally ``year``; a missing year comes from ``year``, ``year_from`` (the
    nearest element before the item that matches this selector and holds a four-digit year,
    e.g. a heading "2. Halbjahr 2017") or the current year."""

    selector: str | None = Field(default=None, description="Default: the teaser, else the item.")
    attribute: str | None = Field(default=None, description="Read this attribute, e.g. datetime.")
    format: str | None = None
    pattern: str | None = None
    year: int | None = Field(default=None, ge=1970, le=2200)
    year_from: str | None = None

    @field_validator("selector", "year_from")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        return _css_selector(value)

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        missing = {"day", "month"} - set(compiled.groupindex)
        if missing:
            raise ValueError(
                f"pattern needs the named group(s) {', '.join(sorted(missing))}, "
                "e.g. (?P<day>\\d+)\\. (?P<month>\\w+)"
            )
        return value


class PageSourceConfig(HttpSourceConfig):
    """A listing page of teasers described by CSS selectors (no feed needed)."""

    kind: Literal["page"]
    item: str = Field(description="CSS selector of one teaser block.")
    title: str | None = Field(default=None, description="Default: the teaser's first words.")
    teaser: str | None = None
    link: str | None = Field(default="a[href]", description="The 'read more' link (its href).")
    image: str | None = None
    date: PageDateConfig = PageDateConfig()
    locale: str | None = Field(default=None, description="Month names; default: site.locale.")

    @field_validator("item", "title", "teaser", "link", "image")
    @classmethod
    def _selectors(cls, value: str | None) -> str | None:
        return _css_selector(value)

    @property
    def source_name(self) -> str:
        return self.name or f"page:{self.url}"


class FolderSourceConfig(FilterFields):
    kind: Literal["folder"]
    path: str = "content"
    name: str | None = None
    pattern: str = "**/*.md"

    @property
    def source_name(self) -> str:
        return self.name or f"folder:{self.path}"


SourceConfig = Annotated[
    FolderSourceConfig | FeedSourceConfig | PageSourceConfig, Field(discriminator="kind")
]


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
    subject: str = "{{ digest.title }}: {{ items|length }} neue Beiträge"
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

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
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

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("from_", "reply_to", "list_unsubscribe_mailto", "list_id")
    @classmethod
    def _header_safe(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_header_value("value", value)
            except HeaderError as exc:  # a ValueError, so the error names file, line and key
                raise ValueError(str(exc).removeprefix("value: ")) from None
        return value


class WebConfig(_Model):
    """``digest serve``: staff login, cookie signing, hosts and sign-up rules."""

    staff_user: str = Field(default="staff", min_length=1)
    staff_password_hash: str = Field(
        default="",
        description="From 'digest hash-password' (pbkdf2_sha256$...). Empty: no staff login; "
        "send actions are off and preview/dashboard answer loopback clients only.",
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
    signup_expiry_days: float = Field(default=7, gt=0, le=365)
    signups_per_ip_per_hour: int = Field(default=10, ge=1)
    signups_per_address_per_day: int = Field(default=3, ge=1)
    consent_version: str = Field(
        default="1", description="Recorded with each sign-up; bump it when the consent text changes."
    )

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
    web: WebConfig = WebConfig()

    @field_validator("digests")
    @classmethod
    def _digest_names(cls, value: dict[str, DigestConfig]) -> dict[str, DigestConfig]:
        for name in value:
            if not re.match(r"^[A-Za-z0-9_-]+$", name):
                raise ValueError(f"digest name {name!r} may use only letters, digits, - and _")
        return value


@dataclass(frozen=True)
class UnsetVariable:
    name: str
    key_path: str
    line: int


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config plus where it came from, for relative paths and error messages."""

    config: Config
    path: Path
    unset_variables: tuple[UnsetVariable, ...] = field(default=())

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        candidate = Path(relative).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    @property
    def templates_dir(self) -> Path:
        return self.resolve(self.config.templates)

    @property
    def database_url(self) -> str:
        """The database URL, with a relative SQLite path taken relative to the config file."""
        url = self.config.database
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.resolve(url[len(prefix) :]))
        return url

    def digest(self, name: str) -> DigestConfig:
        try:
            return self.config.digests[name]
        except KeyError:
            known = ", ".join(sorted(self.config.digests)) or "none"
            raise ConfigError(
                f"{self.path}: no digest named {name!r} (configured: {known})"
            ) from None

    def digest_timezone(self, name: str) -> ZoneInfo:
        return ZoneInfo(self.digest(name).timezone or self.config.site.timezone)

    def schedule(self, name: str) -> Schedule:
        return Schedule.parse(self.digest(name).schedule, self.digest_timezone(name))


def config_path_from(option: str | None) -> Path:
    return Path(option or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, expand and validate a config file; raise :class:`ConfigError` naming file and line."""
    env = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found (pass -c PATH, set {CONFIG_ENV}, or run 'digest init')"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{path}:1: config must be a mapping of sections (site, sources, ...)")

    unset: list[UnsetVariable] = []
    data = _to_python(root, (), env, unset, path)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        line = _line_of(root, loc)
        key_path = ".".join(str(part) for part in _key_path(root, loc)) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "missing":
            message = "required key is missing"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{path}:{line}: {key_path}: {message}{more}") from None
    return LoadedConfig(config=config, path=path, unset_variables=tuple(unset))


def _to_python(
    node: yaml.Node,
    key_path: tuple[str, ...],
    env: Mapping[str, str],
    unset: list[UnsetVariable],
    path: Path,
) -> Any:
    """Construct plain Python data from a YAML node, expanding ``${VAR}`` in strings."""
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader(" ").construct_object(key_node, deep=True)
            if key in result:
                raise ConfigError(f"{path}:{key_node.start_mark.line + 1}: duplicate key {key!r}")
            result[key] = _to_python(value_node, (*key_path, str(key)), env, unset, path)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _to_python(child, (*key_path, str(index)), env, unset, path)
            for index, child in enumerate(node.value)
        ]
    value = yaml.SafeLoader(" ").construct_object(node, deep=True)
    if isinstance(value, str) and "${" in value:
        line = node.start_mark.line + 1

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is None:
                unset.append(UnsetVariable(name, ".".join(key_path), line))
            return default or ""

        return _ENV_PATTERN.sub(substitute, value)
    return value


def _walk(root: yaml.Node, loc: tuple[Any, ...]) -> list[tuple[Any, yaml.Node]]:
    """Follow a pydantic error location through the YAML nodes; skip parts that are not keys
    (union tags such as ``folder`` in ``sources.0.folder.path``)."""
    trail: list[tuple[Any, yaml.Node]] = []
    node = root
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if str(key_node.value) == str(part) or (
                    part == "from_" and key_node.value == "from"
                ):
                    child = value_node
                    trail.append((key_node.value, key_node))
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
            trail.append((part, child))
        if child is None:
            if (
                isinstance(node, yaml.MappingNode)
                and isinstance(part, str)
                and part
                not in (
                    "folder",
                    "feed",
                    "page",
                )
            ):
                trail.append((part, node))  # a missing or unknown key: point at its parent
                break
            continue
        node = child
    return trail


def _line_of(root: yaml.Node, loc: tuple[Any, ...]) -> int:
    trail = _walk(root, loc)
    node = trail[-1][1] if trail else root
    return int(node.start_mark.line) + 1


def _key_path(root: yaml.Node, loc: tuple[Any, ...]) -> list[Any]:
    return [part for part, _ in _walk(root, loc)]
