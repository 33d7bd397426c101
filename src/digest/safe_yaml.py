"""YAML that cannot blow up: no aliases in front matter, a bounded expansion in the config.

An alias (``*a``) repeats the node its anchor (``&a``) names; nine levels of nine aliases are
nine to the ninth nodes (the "billion laughs"), which PyYAML builds for > 50 s and 2.9 GB from
a few hundred bytes. Front matter has no use for aliases: they are refused with the line. The
config may use them (``<<: *defaults``), but what they expand to is counted first, without
building it, and refused past :data:`MAX_EXPANDED_NODES`.

Front matter is also read without YAML's timestamp type: ``date: 2026-11-31`` stays text, and
the folder source reports it as an impossible date instead of PyYAML raising ``ValueError``
while it builds the value.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_EXPANDED_NODES = 100_000
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class YamlAliasError(yaml.YAMLError):
    """An alias where none is allowed, or aliases that expand to too much."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line  # 1-based, within the YAML text


class FrontMatterLoader(yaml.SafeLoader):
    """SafeLoader without aliases and without implicit timestamps."""

    yaml_implicit_resolvers = {  # noqa: RUF012 (PyYAML's own class attribute)
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise YamlAliasError(
                f"YAML alias *{event.anchor} is not allowed in front matter",
                event.start_mark.line + 1,
            )
        node: yaml.Node | None = super().compose_node(parent, index)
        return node


def load_front_matter(text: str) -> Any:
    """The front matter's data; raises :class:`YamlAliasError` or PyYAML's errors."""
    return yaml.load(text, Loader=FrontMatterLoader)  # a SafeLoader subclass


def check_expansion(root: yaml.Node, limit: int = MAX_EXPANDED_NODES) -> None:
    """Raise :class:`YamlAliasError` if ``root`` expands to more than ``limit`` nodes once
    every alias is followed. Counted over the node graph (each node once, its expanded size
    remembered), so a bomb costs as little to count as it took to write."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # on the current path: an alias back to one is a cycle
    # Post-order over the graph without recursion: a deep document must not overflow the stack.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if not children_done:
            if id(node) in open_nodes:
                raise YamlAliasError("YAML alias refers to itself; refused", _line(node))
            if children:
                open_nodes.add(id(node))
                stack.append((node, True))
                stack.extend((child, False) for child in children if id(child) not in sizes)
                continue
        open_nodes.discard(id(node))
        size = 1 + sum(sizes.get(id(child), 1) for child in children)
        sizes[id(node)] = size
        if size > limit:
            raise YamlAliasError(
                f"YAML aliases expand to more than {limit:,} values; refused", _line(node)
            )


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []
