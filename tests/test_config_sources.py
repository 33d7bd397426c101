"""Errors in ``sources:`` entries name the line and the key path of every source kind the
registry knows (the kind's tag in pydantic's error location is not a key of the file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.config import load_config
from digest.errors import ConfigError
from digest.sources.registry import KIND_NAMES

HEAD = """\
site: {title: T, base_url: https://example.org, address: Street 1}
delivery: {from: "T <t@example.org>"}
digests:
  weekly: {title: W, schedule: "0 7 * * mon"}
sources:
"""

CASES = {
    "folder-unknown-key": (
        "  - kind: folder\n    path: content\n    colour: red\n",
        8,
        "sources.0.colour: unknown key",
    ),
    "feed-bad-url": (
        "  - kind: feed\n    url: www.example.org/feed.xml\n",
        7,
        "sources.0.url: must be an absolute http(s) URL or a file: path, e.g. "
        "https://example.org/feed.xml",
    ),
    "feed-missing-url": (
        "  - kind: feed\n    name: news\n",
        6,
        "sources.0.url: required key is missing",
    ),
    "page-bad-selector": (
        "  - kind: page\n    url: https://example.org/news\n    item: 'div[['\n",
        8,
        "sources.0.item: invalid CSS selector 'div[[': Expected ident or '*', got <DELIM '[' at 4>",
    ),
    "page-date-pattern": (
        "  - kind: page\n    url: https://example.org/news\n    item: article\n"
        "    date: {pattern: '(?P<day>\\d+)'}\n",
        9,
        "sources.0.date.pattern: pattern needs the named group(s) month, e.g. "
        "(?P<day>\\d+)\\. (?P<month>\\w+)",
    ),
    "unknown-kind": (
        "  - kind: pigeon\n",
        6,
        "sources.0: Input tag 'pigeon' found using 'kind' does not match any of the expected "
        "tags: 'folder', 'feed', 'page'",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_bad_source_entry_names_its_line_and_key(
    tmp_path: Path, case: tuple[str, int, str]
) -> None:
    entry, line, message = case
    path = tmp_path / "config.yaml"
    path.write_text(HEAD + entry, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})
    assert str(raised.value) == f"{path}:{line}: {message}"


def test_the_registry_lists_the_kinds_in_the_order_errors_name_them() -> None:
    assert KIND_NAMES == ("folder", "feed", "page")


def test_every_kind_module_is_in_the_registry() -> None:
    """A module that declares ``KIND`` is a source kind: the table must list it."""
    import importlib
    import pkgutil

    import digest.sources
    from digest.sources.registry import SOURCE_KINDS

    declared = []
    for module_info in pkgutil.iter_modules(digest.sources.__path__, "digest.sources."):
        kind = getattr(importlib.import_module(module_info.name), "KIND", None)
        if kind is not None:
            declared.append(kind)
    assert sorted(kind.name for kind in declared) == sorted(KIND_NAMES)
    assert all(kind in SOURCE_KINDS for kind in declared)
