"""The ``arena`` CLI: ``train`` runs a recipe end to end into a checkpoint, a valid ONNX model and a
run record. Fast: a prepared data dir of synthetic MNIST-shaped digits, one epoch on a few hundred."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest

from evaluator.datasets import save_prepared
from evaluator.validation import validate
from reference_models import Tensor
from reference_models.checkpoint import load_checkpoint
from reference_models.cli import main
from reference_models.recipes import mnist_mlp
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def synthetic_mnist_dir(tmp_path_factory):
    """Random 28x28 images with random labels, prepared through the evaluator's own store."""
    rng = np.random.default_rng(0)
    data_dir = tmp_path_factory.mktemp("synthetic-mnist")
    save_prepared(
        "mnist", data_dir,
        train_inputs=rng.integers(0, 256, (600, 1, 28, 28), dtype=np.uint8),
        train_labels=rng.integers(0, 10, 600),
        test_inputs=rng.integers(0, 256, (100, 1, 28, 28), dtype=np.uint8),
        test_labels=rng.integers(0, 10, 100),
    )
    return data_dir


def train_tiny(data_dir, out, *extra):
    argv = ["train", "mnist-mlp", "--data-dir", str(data_dir), "--epochs", "1", "--limit", "256",
            "--batch-size", "64", "--out", str(out), "--no-progress", *extra]
    return main(argv)


def test_train_writes_a_checkpoint_a_valid_onnx_model_and_a_run_record(
    synthetic_mnist_dir, tmp_path, capsys
):
    assert train_tiny(synthetic_mnist_dir, tmp_path / "runs", "--seed", "3") == 0
    out = tmp_path / "runs"
    files = json.loads(capsys.readouterr().out)
    assert files == {"checkpoint": str(out / "mnist_mlp.npz"), "onnx": str(out / "mnist_mlp.onnx"),
                     "record": str(out / "mnist_mlp.run.json")}

    report = validate(out / "mnist_mlp.onnx", "mnist")
    assert report.ok, report.summary()

    model = mnist_mlp.build_model()
    meta = load_checkpoint(model, out / "mnist_mlp")
    assert meta["recipe"] == "mnist-mlp" and meta["config"]["seed"] == 3
    assert meta["config"]["limit"] == 256 and len(meta["history"]) == 1

    # The exported file computes what the checkpointed model computes.
    model.eval()
    x = np.random.default_rng(1).random((5, 1, 28, 28), dtype=np.float32)
    session = ort.InferenceSession(str(out / "mnist_mlp.onnx"), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(onnx_out, model(Tensor(x)).data, rtol=1e-4, atol=1e-5)

    record = json.loads((out / "mnist_mlp.run.json").read_text())
    assert record["command"].endswith(
        f"python -m reference_models train mnist-mlp --data-dir {synthetic_mnist_dir} --epochs 1 "
        f"--limit 256 --batch-size 64 --out {out} --no-progress --seed 3"
    )
    assert record["epochs"] == 1 and record["seed"] == 3
    assert record["wall_seconds"] >= record["training_seconds"] > 0
    assert record["final_epoch"]["epoch"] == 1 and "scorecard" not in record
    assert record["versions"]["numpy"] == np.__version__
    assert record["onnx_bytes"] == (out / "mnist_mlp.onnx").stat().st_size


def test_the_same_seed_trains_the_same_weights(synthetic_mnist_dir, tmp_path):
    assert train_tiny(synthetic_mnist_dir, tmp_path / "a") == 0
    assert train_tiny(synthetic_mnist_dir, tmp_path / "b") == 0
    a = np.load(tmp_path / "a" / "mnist_mlp.npz")
    b = np.load(tmp_path / "b" / "mnist_mlp.npz")
    assert all(np.array_equal(a[name], b[name]) for name in a.files)


def test_too_few_examples_for_one_batch_is_a_clear_error(synthetic_mnist_dir, tmp_path, capsys):
    status = main(["train", "mnist-mlp", "--data-dir", str(synthetic_mnist_dir), "--limit", "10",
                   "--out", str(tmp_path), "--no-progress"])
    assert status == 1
    assert "fewer than one batch" in capsys.readouterr().err


def test_a_setting_the_recipe_lacks_is_a_clear_error(synthetic_mnist_dir, tmp_path, capsys):
    status = main(["train", "mnist-mlp", "--data-dir", str(synthetic_mnist_dir), "--steps", "5",
                   "--out", str(tmp_path), "--no-progress"])
    assert status == 1
    assert "no setting steps" in capsys.readouterr().err


def test_unprepared_data_dir_is_a_clear_error(tmp_path, capsys):
    status = main(["train", "mnist-mlp", "--data-dir", str(tmp_path / "empty"), "--out",
                   str(tmp_path), "--no-progress"])
    assert status == 1
    assert "mnist" in capsys.readouterr().err


def test_unknown_recipe_and_no_command():
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "imagenet-resnet"])
    assert exit_info.value.code == 2
    assert main([]) == 2


def test_python_dash_m_reference_models_is_the_cli():
    result = subprocess.run([sys.executable, "-m", "reference_models", "train", "--help"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "cifar10-cnn" in result.stdout and "mnist-mlp" in result.stdout


@pytest.mark.integration
def test_train_with_score_adds_the_evaluator_scorecard(synthetic_mnist_dir, tmp_path):
    assert train_tiny(synthetic_mnist_dir, tmp_path, "--score") == 0
    record = json.loads((tmp_path / "mnist_mlp.run.json").read_text())
    card = record["scorecard"]
    assert card["valid"] and card["task"] == "mnist"
    assert 0.0 <= card["accuracy"] <= 1.0 and card["latency_ms"] > 0
