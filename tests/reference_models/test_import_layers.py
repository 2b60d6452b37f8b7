"""The framework's import layers: ``nn.functional`` at the bottom, the modules above it, no circle.

Each module must import alone in a fresh interpreter: a circle that works only because of the order
names are defined breaks exactly there.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from tests.import_graph import module_graph

NN_MODULES = sorted(name for name in module_graph() if name.startswith("reference_models.nn"))


@pytest.mark.parametrize("module", NN_MODULES)
def test_each_nn_module_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    result = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_functional_imports_no_module_of_nn_above_it() -> None:
    # PyTorch's layering: modules import functional, never the other way round.
    imported = module_graph()["reference_models.nn.functional"]
    above = set(NN_MODULES) - {"reference_models.nn.functional", "reference_models.nn.im2col",
                               "reference_models.nn"}
    assert not imported & above, imported & above
