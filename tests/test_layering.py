"""The package's import graph: no module imports one that imports it back.

Every ``import``/``from digest... import`` counts, also inside functions (a lazy import still
makes a circle), except those under ``if TYPE_CHECKING:``. Run it alone with
``PYTHONPATH=src python3 -m pytest -q tests/test_layering.py``.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import digest

SRC = Path(digest.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, known: set[str]) -> set[str]:
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found & known


def import_graph() -> dict[str, set[str]]:
    """module -> the digest modules it imports."""
    paths = {_module_name(path): path for path in SRC.rglob("*.py")}
    return {
        name: _imports(ast.parse(path.read_text(encoding="utf-8")), set(paths)) - {name}
        for name, path in paths.items()
    }


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return False


def test_no_import_cycles() -> None:
    graph = import_graph()
    # digest.sources: base.py both is the kit and assembles the kinds; the source registry of
    # issue 9 takes that circle apart (then this exception goes).
    for name, targets in graph.items():
        if name.startswith("digest.sources"):
            graph[name] = {t for t in targets if not t.startswith("digest.sources")}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


@pytest.mark.parametrize("route_module", ["archive", "preview", "staff", "subscription"])
def test_web_routes_do_not_import_the_app(route_module: str) -> None:
    assert not _reaches(import_graph(), f"digest.web.{route_module}", "digest.web.app")
