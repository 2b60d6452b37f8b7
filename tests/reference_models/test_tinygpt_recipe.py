"""The tinygpt recipe end to end on a tiny budget, and the committed TinyGPT baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from evaluator.validation import validate
from reference_models.checkpoint import load_checkpoint
from reference_models.cli import main
from reference_models.recipes import get_recipe
from reference_models.recipes.tinygpt import CONFIG, build_model, random_windows, total_steps

BASELINES = Path(__file__).resolve().parents[2] / "reference_models" / "baselines"
TARGET_BITS_PER_CHAR = 2.35


@pytest.fixture(scope="module")
def tinygpt_data_dir(shared_datasets: Path, tmp_path_factory) -> Path:
    """Only Tiny Shakespeare prepared (a second), not all three tasks."""
    from tests.conftest import _prepare_datasets

    return _prepare_datasets(shared_datasets, tmp_path_factory.mktemp("tinygpt-data"),
                             ("tinygpt",))


def test_recipe_is_registered_with_the_nanogpt_shape() -> None:
    recipe = get_recipe("tinygpt")
    assert recipe.TASK == "tinygpt"
    model = CONFIG.model
    assert (model.n_layer, model.n_head, model.n_embd, model.context) == (4, 4, 128, 64)
    assert model.tie_weights and model.init_std == 0.02 and CONFIG.batch_size == 12
    assert total_steps(CONFIG.replace(epochs=2), 76_800) == 2 * 76_800 // (12 * 64)


def test_random_windows_are_next_character_pairs() -> None:
    ids = np.arange(1000)
    x, y = random_windows(ids, 5, 16, np.random.default_rng(0))
    assert x.shape == y.shape == (5, 16)
    np.testing.assert_array_equal(y, x + 1)


@pytest.mark.integration
def test_train_tinygpt_command_writes_a_scorable_model(tinygpt_data_dir: Path,
                                                       tmp_path: Path, capsys) -> None:
    status = main(["train", "tinygpt", "--data-dir", str(tinygpt_data_dir), "--steps", "30",
                   "--limit", "20000", "--out", str(tmp_path), "--no-progress"])
    assert status == 0
    record = json.loads((tmp_path / "tinygpt.run.json").read_text())
    assert record["steps"] == 30 and record["config"]["limit"] == 20000
    assert "python -m reference_models train tinygpt" in record["command"]
    history = json.loads((tmp_path / "tinygpt.json").read_text())["meta"]["history"]
    assert history[-1]["train_loss"] < np.log(65)  # better than uniform guessing
    onnx_path = tmp_path / "tinygpt.onnx"
    report = validate(onnx_path, "tinygpt")
    assert report.ok, report.summary()
    model = build_model()
    load_checkpoint(model, tmp_path / "tinygpt")
    ids = np.random.default_rng(0).integers(0, 65, (2, 64))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"input": ids})[0], model.eval()(ids).data,
                               rtol=1e-4, atol=1e-4)


def baseline() -> tuple[Path, dict]:
    return BASELINES / "tinygpt.onnx", json.loads((BASELINES / "tinygpt.json").read_text())


def test_baseline_passes_validation_and_records_its_run() -> None:
    onnx_path, record = baseline()
    report = validate(onnx_path, "tinygpt")
    assert report.ok, report.summary()
    assert report.info["context_length"] == 64
    assert record["onnx_bytes"] == onnx_path.stat().st_size < 4_000_000
    assert record["recipe"] == "tinygpt" and record["config"]["limit"] is None
    assert "python -m reference_models train tinygpt" in record["command"]
    assert record["wall_seconds"] > 0 and record["sample"]
    card = record["scorecard"]
    assert card["valid"] and card["bits_per_char"] <= TARGET_BITS_PER_CHAR


@pytest.mark.integration
def test_baseline_scores_what_its_record_says(tinygpt_data_dir: Path) -> None:
    from evaluator.scoring import score

    onnx_path, record = baseline()
    card = score(onnx_path.read_bytes(), "tinygpt", data_dir=tinygpt_data_dir)
    assert card["bits_per_char"] <= TARGET_BITS_PER_CHAR
    assert card["bits_per_char"] == pytest.approx(record["scorecard"]["bits_per_char"], abs=1e-4)
