"""The library's import graph has no cycles (issue 12's first step; the floors' upward rule comes next)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("eeg2img", "metrics", "reconstruct", "baselines", "reports")


def import_graph() -> dict[str, set[str]]:
    """Module → the library modules it imports, at the top or inside a function (lazy imports count too)."""
    files = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph = {}
    for name, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            deps.update(t for t in targets if t in files and t != name)
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles_between_library_modules():
    graph = import_graph()
    assert {"eeg2img.runner", "metrics.bootstrap", "reports.latency"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, " → ".join(cycle)
