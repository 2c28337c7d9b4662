"""hqnn.sim's modules import each other without cycles (function-level imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

import hqnn.sim

SIM = Path(hqnn.sim.__file__).parent


def _sim_imports(path: Path) -> set[str]:
    """The hqnn.sim modules a file imports anywhere in it (``__init__`` excluded: it re-exports)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "hqnn.sim":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("hqnn.sim."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[2] for a in node.names if a.name.startswith("hqnn.sim."))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {p.stem for p in SIM.glob("*.py")} - {"__init__"}
    return {m: _sim_imports(SIM / f"{m}.py") & modules - {m} for m in modules}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that returns to its start, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_sim_imports_form_no_cycle():
    graph = import_graph()
    assert {"execute", "plan", "density", "apply"} <= set(graph)  # the parser sees the modules
    assert "apply" in graph["density"] and "density" in graph["plan"] and "plan" in graph["execute"]
    assert find_cycle(graph) is None, f"import cycle in hqnn.sim: {' -> '.join(find_cycle(graph) or [])}"
