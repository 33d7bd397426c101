"""No import cycle inside ``src/digest``.

The graph is read from the source with :mod:`ast`: every ``import digest...`` and
``from digest... import ...``, at the top of a module or inside a function, is an edge;
imports under ``if TYPE_CHECKING:`` are not (they never run). Importing ``digest.a.b`` also
runs the package ``digest.a``, so that is an edge too (except to the importer's own
packages, which are always loaded first). Run it alone with::

    PYTHONPATH=src python3 -m pytest -q tests/test_imports.py
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "digest"

# Cycle groups allowed for a while (each the set of modules of one group, as the test prints
# it). Empty: the web part of issue 9 took the last one (web/app.py <-> the route modules) apart.
ALLOWED_CYCLES: frozenset[frozenset[str]] = frozenset()


def module_names() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that runs: all but those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from _imports_in(child)
            continue
        yield from _imports_in(node)


def _imports_in(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    else:
        yield from _imports(node)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            target = _resolve(name, path.name == "__init__.py", node)
            # ``from digest.sources import feed`` imports the module digest.sources.feed; it
            # needs the package's own names only for a name that is not a submodule.
            submodules = {f"{target}.{alias.name}" for alias in node.names} & modules.keys()
            targets.update(submodules)
            if len(submodules) < len(node.names):
                targets.add(target)
        own_packages = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        for target in targets:
            if target in modules and target != name:
                graph[name].add(target)
            parts = target.split(".")
            for i in range(1, len(parts)):
                ancestor = ".".join(parts[:i])
                if ancestor in modules and ancestor != name and ancestor not in own_packages:
                    graph[name].add(ancestor)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every group of modules that import each other (a strongly connected component with
    more than one module, or a module importing itself), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(sorted(component) for component in components)


def _cycle_through(graph: dict[str, set[str]], members: set[str]) -> tuple[str, ...]:
    """A shortest cycle from the component's smallest module back to itself."""
    start = min(members)
    paths: dict[str, list[str]] = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for successor in sorted(graph[node] & members):
            if successor == start:
                return (*paths[node], start)
            if successor not in paths:
                paths[successor] = [*paths[node], successor]
                queue.append(successor)
    return (start, start)


def test_the_graph_sees_imports() -> None:
    graph = import_graph()
    assert "digest.errors" in graph["digest.config"] or any(
        "digest.errors" in graph[name] for name in graph if name.startswith("digest.config.")
    )
    assert "digest.cli" not in set().union(*graph.values())  # nothing imports the CLI


def describe(graph: dict[str, set[str]], group: list[str]) -> str:
    return f"{', '.join(group)}; e.g. {' -> '.join(_cycle_through(graph, set(group)))}"


def test_finds_a_cycle_and_names_it() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert find_cycles(graph) == [["a", "b", "c"], ["e"]]
    assert describe(graph, ["a", "b", "c"]) == "a, b, c; e.g. a -> b -> c -> a"


def test_no_import_cycle_in_src_digest() -> None:
    graph = import_graph()
    groups = find_cycles(graph)
    unexpected = [group for group in groups if frozenset(group) not in ALLOWED_CYCLES]
    assert not unexpected, "import cycles:\n" + "\n".join(describe(graph, g) for g in unexpected)
    stale = ALLOWED_CYCLES - {frozenset(group) for group in groups}
    assert not stale, "allowed cycles that are gone (remove them): " + "; ".join(
        ", ".join(sorted(group)) for group in stale
    )


def test_importing_the_config_loads_no_scheduler_nor_fetcher() -> None:
    """Every process imports digest.config (worker processes too): it declares the source
    kinds but loads APScheduler, httpx and feedparser only when a schedule is read or a source
    fetched."""
    import subprocess
    import sys

    heavy = ["apscheduler", "httpx", "feedparser", "mjml", "premailer", "starlette"]
    code = f"import sys, digest.config\nprint(','.join(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
