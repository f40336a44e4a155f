"""No feature router imports another in a circle.

A circle between handlers modules works only while every module in it happens to be imported
in the right order, or while one side hides its import inside a function; both break the day a
module is imported alone (a test, a tool, a new router order). The import graph is read from the
source, function-level imports included, so a circle can't hide behind a late import.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = ("bot", "handlers", "models")


def source_of(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """First-party modules a module imports when it runs (not those only for type checking)."""

    def __init__(self) -> None:
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or node.module is None:
            return
        for alias in node.names:
            # `from handlers import start` imports the module handlers.start.
            inner = f"{node.module}.{alias.name}"
            self._add(inner if source_of(inner) is not None else node.module)

    def _add(self, name: str) -> None:
        if name.split(".")[0] in FIRST_PARTY and source_of(name) is not None:
            self.found.add(name)


def imports_of(module: str) -> set[str]:
    path = source_of(module)
    assert path is not None, module
    visitor = _Imports()
    visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
    return visitor.found - {module}


def import_graph() -> dict[str, set[str]]:
    """Every first-party module reachable from the feature routers, with what it imports."""
    start = [f"handlers.{p.stem}" for p in sorted((ROOT / "handlers").glob("*.py"))]
    # The package collects the routers inside `get_routers`, after every module is loaded.
    start.remove("handlers.__init__")
    graph: dict[str, set[str]] = {}
    todo = list(start)
    while todo:
        module = todo.pop()
        if module in graph:
            continue
        graph[module] = imports_of(module) - {"handlers"}
        todo.extend(graph[module])
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_imports_between_feature_routers() -> None:
    graph = import_graph()
    assert "handlers.onboarding" in graph["handlers.start"]
    assert "handlers.registration" in graph["handlers.profile"]
    assert "bot.profile_view" in graph["handlers.registration"]


def test_no_handlers_module_imports_another_in_a_circle() -> None:
    through_handlers = [
        group for group in circles(import_graph()) if any(m.startswith("handlers.") for m in group)
    ]
    assert through_handlers == []


def test_a_circle_is_found_when_there_is_one() -> None:
    graph = {"handlers.a": {"handlers.b"}, "handlers.b": {"bot.c"}, "bot.c": {"handlers.a"}}
    assert circles(graph) == [["bot.c", "handlers.a", "handlers.b"]]
