"""The architecture of SPEC §1, checked: what may import what, and that the tree is ruff clean."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_platform_folder_is_a_source_root_not_a_package():
    # The standard library has a module called `platform`; shadowing it breaks Celery and uuid.
    assert not (REPO_ROOT / "platform" / "__init__.py").exists()
    probe = subprocess.run(
        [sys.executable, "-c", "import platform, sys; print(platform.__file__)"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        env={"PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'platform'}", "PATH": "/usr/bin:/bin"},
    )
    assert "/platform/" not in probe.stdout.replace(str(REPO_ROOT), ""), probe.stdout


def test_student_packages_never_import_django():
    # A student pip-installs the project and uses both packages without a database.
    code = (
        "import sys, evaluator, evaluator.tasks, reference_models\n"
        "import pkgutil, importlib\n"
        "for pkg in (evaluator, reference_models):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if m.name.endswith('__main__') or m.name.endswith('_child'):\n"
        "            continue\n"
        "        importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n == 'django' or n.startswith('django.'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_tree_is_ruff_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
        cwd=REPO_ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
