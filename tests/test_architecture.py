"""The import rules of docs/architecture.md, checked on the source (see tests/import_graph.py)."""

from __future__ import annotations

import pytest

from tests.import_graph import SOURCE_ROOTS, find_cycle, module_graph, project_modules

PLATFORM_APPS = sorted(name for name, root in SOURCE_ROOTS.items() if root.name == "platform")
SERVER_PACKAGES = ["submissions", *PLATFORM_APPS]


def _top(module: str) -> str:
    return module.split(".")[0]


def _imports_of(package: str, *, lazy: bool = True) -> set[str]:
    """Top-level packages that ``package``'s modules import (anywhere in them, by default)."""
    graph = module_graph(lazy=lazy)
    return {_top(target) for module, targets in graph.items() if _top(module) == package
            for target in targets} - {package}


def _third_party_imports(package: str) -> set[str]:
    import ast

    found = set()
    for name, path in project_modules().items():
        if _top(name) != package:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
    return found


def test_no_module_imports_another_in_a_circle() -> None:
    # A function-level import counts as an edge too, and relative imports are resolved: a
    # circle closed inside a function is still a circle (the publishing of tasks lives in
    # submissions.dispatch, below submissions.tasks, for that reason).
    cycle = find_cycle(module_graph(lazy=True))
    assert cycle is None, " -> ".join(cycle)


def test_relative_imports_are_edges_of_the_graph() -> None:
    # The check above could miss circles by dropping ``from .x import y``; it must not.
    graph = module_graph(lazy=True)
    assert "submissions.models" in graph["submissions.services"]
    assert "submissions.dispatch" in graph["submissions.tasks"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    # The check above could pass by never finding anything; on a known circle it must not.
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_evaluator_imports_no_other_project_package_and_no_django() -> None:
    assert _imports_of("evaluator") == set()
    assert "django" not in _third_party_imports("evaluator")


def test_reference_models_imports_only_the_evaluator_and_no_django() -> None:
    assert _imports_of("reference_models") <= {"evaluator"}
    assert not {"django", "rest_framework", "celery"} & _third_party_imports("reference_models")


@pytest.mark.parametrize("package", SERVER_PACKAGES)
def test_the_server_never_needs_the_framework(package: str) -> None:
    assert "reference_models" not in _imports_of(package)


def test_web_and_api_do_not_import_each_other() -> None:
    assert "api" not in _imports_of("web")
    assert "web" not in _imports_of("api")


def test_submissions_never_imports_leaderboards() -> None:
    # One way: leaderboards reads submissions' rows and listens to its ``scores_changed`` signal.
    assert "leaderboards" not in _imports_of("submissions")


def test_the_ranking_rules_touch_no_database() -> None:
    # leaderboards.rules is plain functions over plain data; the stored rows live in ranking.
    rules = module_graph(lazy=True)["leaderboards.rules"]
    assert rules <= {"competitions.limits"}, rules
    assert "django" not in _third_party_imports_of_module("leaderboards.rules")
    assert "django" not in _third_party_imports_of_module("competitions.limits")


def _third_party_imports_of_module(module: str) -> set[str]:
    import ast

    found = set()
    for node in ast.walk(ast.parse(project_modules()[module].read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
    return found


_IMPORT_EACH_ALONE = r"""
import os, sys
import numpy, onnx, onnxruntime  # third-party, loaded once: the children share them
failed = []
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:  # a child that has imported no project module yet
        try:
            __import__(name)
        except BaseException as error:
            print(f"{name}: {type(error).__name__}: {error}", flush=True)
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status:
        failed.append(name)
print("FAILED", " ".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_framework_and_evaluator_module_imports_alone() -> None:
    # A circle that works only because of the order modules are imported breaks exactly when a
    # module is imported first; each one is, in a forked child of a process that imported no
    # project module.
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    modules = sorted(name for name in project_modules()
                     if _top(name) in ("evaluator", "reference_models")
                     and not name.endswith("__main__"))
    assert len(modules) > 50
    done = subprocess.run([sys.executable, "-c", _IMPORT_EACH_ALONE, *modules], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    # The check can fail: a module that cannot be imported is reported.
    broken = subprocess.run([sys.executable, "-c", _IMPORT_EACH_ALONE, "evaluator.no_such_module"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert broken.returncode == 1 and "evaluator.no_such_module" in broken.stdout
