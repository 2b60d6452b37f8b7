"""The comparison report and ``arena check`` / ``arena compare``: the evaluator scores each model on
a validation slice of the public training data (never the hidden set), the table shows ratios,
and the chart is a real PNG."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from PIL import Image

from evaluator.datasets import dataset_sha256
from reference_models.cli import main
from reference_models.compress.report import (
    ModelScore,
    comparison_table,
    draw_chart,
    guess_task,
    score_models,
)
from reference_models.compress.weight_only import quantize_dynamic
from reference_models.local_scoring import check_model, validation_data_dir
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration
MLP = REPO_ROOT / "reference_models" / "baselines" / "mnist_mlp.onnx"


@pytest.fixture
def models(tmp_path):
    dynamic = tmp_path / "mnist_mlp_dynamic.onnx"
    dynamic.write_bytes(quantize_dynamic(onnx.load(MLP)).SerializeToString())
    return [MLP, dynamic]


def test_check_scores_the_validation_slice_not_the_hidden_set(prepared_mnist_dir, tmp_path):
    card = check_model(MLP, "mnist", data_dir=prepared_mnist_dir, quick=True, cache_root=tmp_path)
    assert card["valid"], card["error"]
    counts = sum(split["count"] for split in card["splits"].values())
    assert counts == 5_000  # the validation hold-out, not the 10,000 hidden images
    assert card["provenance"]["dataset_sha256"] != dataset_sha256("mnist", prepared_mnist_dir)
    assert card["accuracy"] > 0.95
    again = validation_data_dir("mnist", prepared_mnist_dir, tmp_path)  # cached
    assert again == validation_data_dir("mnist", prepared_mnist_dir, tmp_path)


def test_compare_rows_table_and_chart(models, prepared_mnist_dir, tmp_path):
    rows = score_models(models, data_dir=prepared_mnist_dir, quick=True)
    assert [row.valid for row in rows] == [True, True]
    assert rows[1].size_bytes * 3 < rows[0].size_bytes
    assert abs(rows[1].accuracy - rows[0].accuracy) < 0.01
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(comparison_table(rows))
    text = console.export_text()
    assert "mnist_mlp_dynamic.onnx" in text and "x)" in text
    chart = draw_chart(rows, tmp_path / "chart.png")
    with Image.open(chart) as image:
        assert image.format == "PNG" and image.size[0] > 500
        assert len(np.unique(np.asarray(image.convert("L")))) > 10  # something was drawn


def test_invalid_models_are_listed_not_drawn(tmp_path):
    rows = [ModelScore("bad.onnx", False, error="not an ONNX file")]
    with pytest.raises(ValueError, match="no valid model"):
        draw_chart(rows, tmp_path / "x.png")


def test_guess_task_reads_the_input_signature(models):
    assert guess_task(models[0]) == "mnist"


def test_arena_check_and_compare_commands(models, prepared_mnist_dir, tmp_path, capsys,
                                          monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code = main(["check", str(MLP), "--task", "mnist", "--data-dir", str(prepared_mnist_dir),
                 "--quick"])
    out = capsys.readouterr().out
    assert code == 0 and "accuracy" in out and "size (deflate)" in out, out
    chart, rows = tmp_path / "cmp.png", tmp_path / "rows.json"
    code = main(["compare", *map(str, models), "--data-dir", str(prepared_mnist_dir), "--quick",
                 "--chart", str(chart), "--json", str(rows)])
    out = capsys.readouterr().out
    assert code == 0 and chart.is_file(), out
    assert [row["name"] for row in json.loads(rows.read_text())] == [m.name for m in models]
    code = main(["check", str(tmp_path / "missing.onnx"), "--task", "mnist"])
    assert code == 1 and "no model file" in capsys.readouterr().err


def test_tinygpt_validation_slice_is_the_end_of_the_training_text(tmp_path):
    from evaluator.datasets import load_hidden, load_train, save_prepared_text
    from evaluator.tasks import TINYGPT_VOCABULARY

    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list(TINYGPT_VOCABULARY), 1_200_000))
    save_prepared_text(tmp_path / "data", text)
    slice_dir = validation_data_dir("tinygpt", tmp_path / "data", tmp_path / "cache")
    train_ids, _ = load_train("tinygpt", tmp_path / "data")
    hidden = load_hidden("tinygpt", "all", slice_dir).segments[0]
    assert np.array_equal(hidden, train_ids[-100_000:])
