"""The library's import graph: floors that import only downwards, no cycles, no private module shared.

Floors, bottom to top (docs/architecture.md):
0. the spine: ``eeg2img`` (errors, atomic writes, digests, seeding, devices, weights, datasets, splits,
   the run store, the method interface and registry);
1. methods and metrics: ``metrics``, ``reconstruct``, ``baselines``;
2. the grid: ``eeg2img.grid`` (config, plan, executors, cells, results);
3. reports: ``reports``, and the developers' latency history ``benchmarks.latency``;
4. the command line: ``eeg2img.cli``.
A module imports its own floor or lower ones, at the top of the file or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("eeg2img", "metrics", "reconstruct", "baselines", "reports", "benchmarks/latency")


def import_graph() -> dict[str, set[str]]:
    """Module → the library modules it imports, at the top or inside a function (lazy imports count too)."""
    files = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph = {}
    for name, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                # `from pkg import module` imports the module too
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                targets = []
            deps.update(t for t in targets if t in files and t != name)
        graph[name] = deps
    return graph


FLOORS = (("eeg2img.cli", 4), ("reports", 3), ("benchmarks.latency", 3), ("eeg2img.grid", 2),
          ("metrics", 1), ("reconstruct", 1), ("baselines", 1), ("eeg2img", 0))


def floor(module: str) -> int:
    return next(f for prefix, f in FLOORS if module == prefix or module.startswith(prefix + "."))


def package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "eeg2img" and len(parts) > 1 and parts[1] in ("cli", "grid") else parts[0]


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Upward imports, and private modules (``_name``) imported from another package."""
    out = []
    for module, deps in sorted(graph.items()):
        for dep in sorted(deps):
            if floor(dep) > floor(module):
                out.append(f"{module} (floor {floor(module)}) imports {dep} (floor {floor(dep)})")
            private = any(p.startswith("_") and not p.startswith("__") for p in dep.split("."))
            if private and package(dep) != package(module):
                out.append(f"{module} imports {dep}, private to {package(dep)}")
    return out


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
    assert {"eeg2img.grid.runner", "metrics.stats", "benchmarks.latency.history"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, " → ".join(cycle)


def test_the_floor_rule_catches_upward_and_private_imports():
    planted = {"eeg2img.splits": {"metrics.engine"}, "metrics.engine": set(), "baselines.floors": {"reconstruct._common"},
               "reconstruct._common": set(), "reports.build": {"eeg2img.grid.runner"}, "eeg2img.grid.runner": set(),
               "eeg2img.cli": {"reports.build"}}
    assert violations(planted) == ["baselines.floors imports reconstruct._common, private to reconstruct",
                                   "eeg2img.splits (floor 0) imports metrics.engine (floor 1)"]


def test_every_import_runs_down_the_floors_and_no_private_module_is_shared():
    graph = import_graph()
    assert {"eeg2img.grid.runner", "eeg2img.cli", "eeg2img.cli.demo", "reports.build", "metrics.stats"} <= set(graph)
    assert "metrics.engine" in graph["eeg2img.grid.runner"]  # the test sees lazy and `from pkg import mod` imports
    assert violations(graph) == []


def test_the_spine_names_no_plugin_package():
    """Methods are found through the ``eeg2img.methods`` entry points, not by package name."""
    import tomllib

    spine = [m for m in import_graph() if floor(m) == 0]
    for module in spine:
        source = (ROOT / (module.replace(".", "/") + ".py")).read_text() if (ROOT / (module.replace(".", "/") + ".py")).exists() \
            else (ROOT / module.replace(".", "/") / "__init__.py").read_text()
        assert '"baselines"' not in source and '"reconstruct"' not in source, module
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["eeg2img.methods"]
    assert set(declared.values()) == {"baselines", "reconstruct"}
    from importlib.metadata import entry_points

    assert {ep.value for ep in entry_points(group="eeg2img.methods")} >= set(declared.values())

