"""Read ``config.yaml``: YAML nodes, ``${VAR}`` expansion, validation by the schema, and the
:class:`LoadedConfig` that remembers where the file is.

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
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import ValidationError

from digest.catalogue import Translator
from digest.config.schema import Config, DigestConfig
from digest.config.yaml_lines import key_path_of, line_of
from digest.errors import ConfigError
from digest.safe_yaml import YamlAliasError, check_expansion
from digest.sources.registry import KIND_NAMES

if TYPE_CHECKING:
    from digest.schedule import Schedule

CONFIG_ENV = "DIGEST_CONFIG"
DEFAULT_CONFIG = "config.yaml"

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


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
    def translator(self) -> Translator:
        """The message catalogue of ``site.locale``: every word staff and subscribers read."""
        return self.config.site.translator

    @property
    def templates_dir(self) -> Path:
        return self.resolve(self.config.templates)

    @property
    def database_url(self) -> str:
        """The database URL, with a relative SQLite path taken relative to the config file."""
        from digest.store import resolve_database_url  # the store owns its URLs

        return resolve_database_url(self.config.database, self.base_dir)

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
        from digest.schedule import Schedule  # APScheduler: only where a schedule is read

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
    try:
        check_expansion(root)  # before the walk below builds what aliases repeat
    except YamlAliasError as exc:
        raise ConfigError(f"{path}:{exc.line}: {exc.message}") from None

    unset: list[UnsetVariable] = []
    data = _to_python(root, (), env, unset, path)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        line = line_of(root, loc, KIND_NAMES)
        key_path = ".".join(str(part) for part in key_path_of(root, loc, KIND_NAMES))
        key_path = key_path or "(top level)"
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
    try:
        value = yaml.SafeLoader(" ").construct_object(node, deep=True)
    except ValueError as exc:  # a timestamp that is no date: 2026-11-31
        where = f"{path}:{node.start_mark.line + 1}: {'.'.join(key_path)}"
        raise ConfigError(f"{where}: {node.value!r} is not a date: {exc}") from None
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
