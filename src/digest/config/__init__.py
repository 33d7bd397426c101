"""Load and validate ``config.yaml``: the schema (:mod:`digest.config.schema`), the loader
(:mod:`digest.config.loader`) and the YAML line finder for error messages
(:mod:`digest.config.yaml_lines`). The public names are importable from here."""

from __future__ import annotations

from digest.config.loader import (
    CONFIG_ENV,
    DEFAULT_CONFIG,
    LoadedConfig,
    UnsetVariable,
    config_path_from,
    load_config,
)
from digest.config.schema import (
    Config,
    DeliveryConfig,
    DigestConfig,
    LogoConfig,
    RetryConfig,
    SendWindowConfig,
    SiteConfig,
    SmtpConfig,
    SourceConfig,
    StoreConfig,
    WebConfig,
)
from digest.filters import FilterFields, MatchConfig
from digest.sources.base import SourceEntry
from digest.sources.feed import FeedSourceConfig
from digest.sources.folder import FolderSourceConfig
from digest.sources.http import HttpSourceConfig
from digest.sources.page import PageDateConfig, PageSourceConfig

# Their public home: templates' error messages name them digest.config.SiteConfig, ... as before
# the split.
for _section in (
    Config,
    DeliveryConfig,
    DigestConfig,
    LogoConfig,
    RetryConfig,
    StoreConfig,
    SendWindowConfig,
    SiteConfig,
    SmtpConfig,
    WebConfig,
):
    _section.__module__ = __name__

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "Config",
    "DeliveryConfig",
    "DigestConfig",
    "FeedSourceConfig",
    "FilterFields",
    "FolderSourceConfig",
    "HttpSourceConfig",
    "LoadedConfig",
    "LogoConfig",
    "MatchConfig",
    "PageDateConfig",
    "PageSourceConfig",
    "RetryConfig",
    "SendWindowConfig",
    "SiteConfig",
    "SmtpConfig",
    "SourceConfig",
    "SourceEntry",
    "StoreConfig",
    "UnsetVariable",
    "WebConfig",
    "config_path_from",
    "load_config",
]
