"""The project's import graph, read from the source with ``ast`` (nothing is imported).

Shared by the architecture tests: ``module_graph`` maps each module to the project modules it
imports, ``find_cycle`` returns one import circle or ``None``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT

# Top-level packages and the folder each lives in (platform/ is a source root, not a package).
SOURCE_ROOTS = {"evaluator": REPO_ROOT, "reference_models": REPO_ROOT, "submissions": REPO_ROOT}
SOURCE_ROOTS.update({app.name: REPO_ROOT / "platform" for app in (REPO_ROOT / "platform").iterdir()
                     if (app / "__init__.py").exists()})


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    modules = {}
    for package, root in SOURCE_ROOTS.items():
        for path in (root / package).rglob("*.py"):
            if "migrations" not in path.parts:
                modules[module_name(path, root)] = path
    return modules


def _absolute(node: ast.ImportFrom, path: Path, known: dict[str, Path]) -> str | None:
    """The absolute module an ``import from`` names (``from .models import X`` included)."""
    if node.level == 0:
        return node.module
    importer = next(name for name, known_path in known.items() if known_path == path)
    package = importer.split(".") if path.name == "__init__.py" else importer.split(".")[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, node.module] if node.module else package) or None


def imported_modules(path: Path, known: dict[str, Path], *, lazy: bool = False) -> set[str]:
    """Project modules ``path`` imports: at module level, or anywhere when ``lazy``."""
    tree = ast.parse(path.read_text())
    nodes = ast.walk(tree) if lazy else tree.body
    imported: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and (base := _absolute(node, path, known)):
            for alias in node.names:
                candidate = f"{base}.{alias.name}"  # ``from pkg import module``
                imported.add(candidate if candidate in known else base)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    return {name for name in imported if name in known}


def module_graph(*, lazy: bool = False) -> dict[str, set[str]]:
    known = project_modules()
    return {name: imported_modules(path, known, lazy=lazy) for name, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph``; a module's import of its own package's ``__init__`` (or of
    itself) is not an edge back, since Python runs that ``__init__`` first anyway."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target == node or target not in graph or node.startswith(target + "."):
                continue
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
