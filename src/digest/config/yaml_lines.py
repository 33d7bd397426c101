"""Where in the YAML file a pydantic error location is: the line and the key path as the
user wrote them."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import yaml


def _walk(
    root: yaml.Node, loc: tuple[Any, ...], union_tags: Collection[str]
) -> list[tuple[Any, yaml.Node]]:
    """Follow a pydantic error location through the YAML nodes; skip parts that are not keys
    (``union_tags`` such as ``folder`` in ``sources.0.folder.path``)."""
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
                and part not in union_tags
            ):
                trail.append((part, node))  # a missing or unknown key: point at its parent
                break
            continue
        node = child
    return trail


def line_of(root: yaml.Node, loc: tuple[Any, ...], union_tags: Collection[str] = ()) -> int:
    """The line (1-based) of the YAML node at the pydantic error location ``loc``, or of the
    mapping a missing or unknown key is in."""
    trail = _walk(root, loc, union_tags)
    node = trail[-1][1] if trail else root
    return int(node.start_mark.line) + 1


def key_path_of(
    root: yaml.Node, loc: tuple[Any, ...], union_tags: Collection[str] = ()
) -> list[Any]:
    """The keys and list indexes of ``loc`` as the file spells them (``from``, not ``from_``)."""
    return [part for part, _ in _walk(root, loc, union_tags)]
