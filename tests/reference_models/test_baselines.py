"""The committed baseline models: small, valid for their task, honestly recorded, and (on the real
data) as accurate as their records say: at least 98% on MNIST and 75% on CIFAR-10."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluator.validation import validate
from reference_models.recipes import RECIPES

BASELINES = Path(__file__).resolve().parents[2] / "reference_models" / "baselines"
TARGET_ACCURACY = {"mnist-mlp": 0.98, "cifar10-cnn": 0.75}


def baseline(name: str) -> tuple[Path, dict]:
    stem = BASELINES / name.replace("-", "_")
    return stem.with_suffix(".onnx"), json.loads(stem.with_suffix(".json").read_text())


@pytest.mark.parametrize("name", sorted(TARGET_ACCURACY))
def test_baseline_is_small_and_passes_the_evaluators_validation(name):
    onnx_path, record = baseline(name)
    assert onnx_path.stat().st_size < 1_000_000
    report = validate(onnx_path, RECIPES[name].TASK)
    assert report.ok, report.summary()
    assert record["onnx_bytes"] == onnx_path.stat().st_size


@pytest.mark.parametrize("name", sorted(TARGET_ACCURACY))
def test_baseline_record_says_how_it_was_made_and_what_it_scored(name):
    _, record = baseline(name)
    assert record["recipe"] == name and record["task"] == RECIPES[name].TASK
    assert f"python -m reference_models train {name}" in record["command"]
    assert record["epochs"] == record["config"]["epochs"] >= 1
    assert record["config"]["limit"] is None, "a baseline trains on all the training data"
    assert record["wall_seconds"] > 0 and isinstance(record["seed"], int)
    assert {"numpy", "reference_models", "python"} <= set(record["versions"])
    card = record["scorecard"]
    assert card["valid"] and card["split"] == "all"
    assert card["accuracy"] >= TARGET_ACCURACY[name]


def rescore(name: str, data_dir: Path) -> tuple[float, float]:
    from evaluator.scoring import score

    onnx_path, record = baseline(name)
    card = score(onnx_path.read_bytes(), RECIPES[name].TASK, data_dir=data_dir)
    assert card["valid"], card["error"]
    return card["accuracy"], record["scorecard"]["accuracy"]


@pytest.mark.integration
def test_mnist_baseline_scores_at_least_98_percent_on_the_real_test_set(prepared_mnist_dir):
    accuracy, recorded = rescore("mnist-mlp", prepared_mnist_dir)
    assert accuracy >= 0.98
    assert accuracy == pytest.approx(recorded, abs=1e-4)


@pytest.mark.integration
@pytest.mark.slow
def test_cifar10_baseline_scores_at_least_75_percent_on_the_real_test_set(prepared_data_dir):
    accuracy, recorded = rescore("cifar10-cnn", prepared_data_dir)
    assert accuracy >= 0.75
    assert accuracy == pytest.approx(recorded, abs=1e-4)
