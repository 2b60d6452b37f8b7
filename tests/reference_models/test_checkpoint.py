"""Checkpoints: exact round trip of parameters and batch-norm statistics, no pickle, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reference_models import Tensor, manual_seed, nn
from reference_models.checkpoint import checkpoint_paths, load_checkpoint, save_checkpoint


def small_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 4 * 4, 3),
    )


def trained_a_little(model: nn.Module) -> nn.Module:
    # A forward pass in train mode moves the batch-norm running statistics off their defaults.
    model.train()
    model(Tensor(np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32)))
    return model


def test_round_trip_restores_every_array_exactly_and_returns_meta(tmp_path):
    manual_seed(1)
    source = trained_a_little(small_cnn())
    arrays_path = save_checkpoint(source, tmp_path / "run" / "model", {"epochs": 3, "acc": 0.5})
    assert arrays_path == tmp_path / "run" / "model.npz"
    manual_seed(2)
    target = small_cnn()
    assert not np.array_equal(target.state_dict()["0.weight"], source.state_dict()["0.weight"])
    meta = load_checkpoint(target, tmp_path / "run" / "model")
    assert meta == {"epochs": 3, "acc": 0.5}
    saved, loaded = source.state_dict(), target.state_dict()
    assert list(saved) == list(loaded)
    for name in saved:
        assert saved[name].dtype == loaded[name].dtype
        assert np.array_equal(saved[name], loaded[name]), name
    assert not np.allclose(loaded["1.running_mean"], 0), "buffers are saved too"
    x = Tensor(np.random.default_rng(3).random((2, 1, 8, 8), dtype=np.float32))
    source.eval(), target.eval()
    assert np.array_equal(source(x).data, target(x).data)


def test_sidecar_is_readable_json_with_shapes_and_hash(tmp_path):
    save_checkpoint(small_cnn(), tmp_path / "m.npz", {"note": np.float32(0.25)})
    arrays_path, sidecar_path = checkpoint_paths(tmp_path / "m.npz")
    sidecar = json.loads(sidecar_path.read_text())
    assert sidecar["meta"] == {"note": 0.25}
    assert sidecar["entries"]["5.weight"] == {"shape": [3, 64], "dtype": "float32"}
    assert len(sidecar["sha256"]) == 64 and sidecar["versions"]["numpy"] == np.__version__
    assert arrays_path.is_file()


def test_files_from_different_saves_are_refused(tmp_path):
    save_checkpoint(small_cnn(), tmp_path / "a")
    manual_seed(5)
    save_checkpoint(small_cnn(), tmp_path / "b")
    (tmp_path / "a.json").write_text((tmp_path / "b.json").read_text())
    with pytest.raises(ValueError, match="different saves"):
        load_checkpoint(small_cnn(), tmp_path / "a")


def test_a_checkpoint_of_another_architecture_names_what_does_not_fit(tmp_path):
    save_checkpoint(small_cnn(), tmp_path / "cnn")
    with pytest.raises(ValueError, match="missing .*unexpected"):
        load_checkpoint(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), tmp_path / "cnn")


def test_missing_checkpoint_says_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        load_checkpoint(small_cnn(), tmp_path / "nowhere")


def test_pickled_object_arrays_are_never_loaded(tmp_path):
    model = nn.Sequential(nn.Linear(2, 2))
    save_checkpoint(model, tmp_path / "evil")
    state = {name: np.asarray(value) for name, value in model.state_dict().items()}
    state["0.weight"] = np.array([object()], dtype=object)  # only storable with pickle
    np.savez(tmp_path / "evil.npz", **state)
    (tmp_path / "evil.json").unlink()  # no sidecar hash to catch it first
    with pytest.raises(ValueError, match="pickle"):
        load_checkpoint(model, tmp_path / "evil")
