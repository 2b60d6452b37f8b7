"""The student's local scoring says which data it used, and it is only ever data on this machine:
``arena check``'s validation slice of the public training data."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from reference_models.commands.check import print_scorecard
from reference_models.local_scoring import check_model

MLP = Path(__file__).resolve().parents[2] / "reference_models" / "baselines" / "mnist_mlp.onnx"


def test_check_names_the_validation_slice_it_scored_on(prepared_mnist_dir, tmp_path):
    card = check_model(MLP, "mnist", data_dir=prepared_mnist_dir, quick=True, cache_root=tmp_path)
    assert card["valid"], card["error"]
    assert card["hidden_set"]["name"] == "mnist validation slice of the public training data"
    assert card["hidden_set"]["public"] is True and card["hidden_set"]["standard"] is False
    console = Console(width=140, record=True)
    print_scorecard(console, "mnist_mlp.onnx", card)
    text = console.export_text()
    assert "scored on" in text and "validation slice of the public training data (public)" in text
