"""The framework's import layers: ``nn.functional`` at the bottom, the modules above it, no circle.

Each module must import alone in a fresh interpreter (a circle that works only because of the order
names are defined breaks exactly there), and the module-level import graph must have no cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "reference_models"


def _module_name(path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(_module_name(p) for p in (PACKAGE / "nn").glob("*.py"))


def _top_level_imports(path) -> set[str]:
    """Project modules imported at module level (function-level imports are deliberate and lazy)."""
    imported: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                # ``from reference_models.nn import functional`` imports a module, not a name.
                is_module = (REPO_ROOT / (candidate.replace(".", "/") + ".py")).exists()
                imported.add(candidate if is_module else node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    return {name for name in imported if name.startswith("reference_models")}


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        graph[_module_name(path)] = _top_level_imports(path)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (a package's own ``__init__`` re-exports are not edges back)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target == node or target not in graph or node.startswith(target + "."):
                continue  # a submodule's import of its own package's __init__ is not a layer edge
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


@pytest.mark.parametrize("module", MODULES)
def test_each_nn_module_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    result = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_framework_has_no_import_cycle() -> None:
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()) or [])


def test_functional_imports_no_module_of_nn() -> None:
    # PyTorch's layering: modules import functional, never the other way round.
    imported = _top_level_imports(PACKAGE / "nn" / "functional.py")
    above = {m for m in MODULES if m != "reference_models.nn.functional"} - {
        "reference_models.nn.im2col"}
    assert not imported & above, imported & above


def test_the_cycle_finder_finds_a_cycle() -> None:
    # The check above could pass by never finding anything; on a known circle it must not.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
