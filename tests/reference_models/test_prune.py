"""Pruning: magnitude masks (per layer and global) that stay during fine-tuning, structured pruning
that really removes channels and neurons (and keeps the network's function when the removed
channels are dead), exports that really are smaller, and the sparsity report."""

from __future__ import annotations

import zlib

import numpy as np
import onnxruntime as ort
import pytest

from reference_models import Tensor, manual_seed, nn, no_grad, optim
from reference_models.compress.prune import (
    iterative_prune,
    magnitude_masks,
    magnitude_prune,
    prune_channels,
    sparsity_report,
)
from reference_models.compress.quantize import calibrate, export_quantized, prepare
from reference_models.export import export_onnx
from reference_models.nn import functional as F

RNG = np.random.default_rng(3)


def cnn() -> nn.Sequential:
    manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(4),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 10),
    ).eval()


def images(n: int) -> np.ndarray:
    return RNG.random((n, 3, 32, 32), dtype=np.float32)


def test_layer_scope_prunes_the_same_fraction_of_every_layer():
    model = cnn()
    magnitude_prune(model, 0.5, "layer").remove()
    for row in sparsity_report(model):
        if row.name.endswith("weight") and len(row.shape) > 1:
            assert row.sparsity == pytest.approx(0.5, abs=0.01), row


def test_global_scope_uses_one_threshold_for_all_layers():
    model = cnn()
    model[0].weight.data[:] = 10.0  # one layer of large weights keeps them all
    masks = magnitude_masks(model, 0.5, "global")
    assert masks["0.weight"].mean() == 1.0
    kept = sum(m.sum() for m in masks.values())
    total = sum(m.size for m in masks.values())
    assert kept / total == pytest.approx(0.5, abs=0.01)


def test_masks_keep_pruned_weights_at_zero_while_fine_tuning():
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
    pruning = magnitude_prune(model, 0.7)
    zeros = model[0].weight.data == 0
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    x, y = RNG.normal(size=(64, 8)).astype(np.float32), RNG.integers(0, 2, 64)
    for _ in range(5):
        loss = F.cross_entropy(model(Tensor(x)), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    pruning.remove()
    assert np.all(model[0].weight.data[zeros] == 0)
    assert zeros.mean() == pytest.approx(0.7, abs=0.01)


def test_structured_pruning_removes_channels_and_neurons():
    model = cnn()
    small = prune_channels(model, 0.5)
    assert small[0].weight.shape == (8, 3, 3, 3)
    assert small[1].num_features == 8 and small[1].running_mean.shape == (8,)
    assert small[4].weight.shape == (16, 8, 3, 3)
    assert small[9].weight.shape == (10, 16 * 4 * 4)  # flattened columns of the kept channels
    params = lambda m: sum(p.data.size for p in m.parameters())  # noqa: E731
    assert params(small) < 0.55 * params(model)
    mlp = prune_channels(nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(),
                                       nn.Linear(64, 10)), 0.75)
    assert mlp[1].weight.shape == (16, 784) and mlp[3].weight.shape == (10, 16)


def test_structured_pruning_of_dead_channels_keeps_the_function():
    """Channels whose batch-norm scale is 0 contribute nothing: removing exactly those (they are
    the least important) leaves the outputs unchanged, which checks every slice lines up."""
    model = cnn()
    for norm in (model[1], model[5]):
        dead = RNG.permutation(norm.num_features)[: norm.num_features // 2]
        norm.weight.data[dead] = 0
        norm.bias.data[dead] = 0
    small = prune_channels(model, 0.5)
    x = images(8)
    with no_grad():
        assert np.allclose(small(Tensor(x)).data, model(Tensor(x)).data, atol=1e-5)


def test_pruned_exports_are_really_smaller_on_disk_and_deflated():
    model = cnn()
    example = images(1)
    dense = export_onnx(model, example, None, task="cifar10").SerializeToString()
    structured = export_onnx(prune_channels(model, 0.5), example, None,
                             task="cifar10").SerializeToString()
    assert len(structured) < 0.55 * len(dense)
    sparse_model = cnn()
    magnitude_prune(sparse_model, 0.8).remove()
    sparse = export_onnx(sparse_model, example, None, task="cifar10").SerializeToString()
    assert len(sparse) == pytest.approx(len(dense), rel=0.01)  # zeros are stored densely...
    assert len(zlib.compress(sparse, 9)) < 0.5 * len(zlib.compress(dense, 9))  # ...but deflate
    # pruned + INT8: both savings multiply
    qmodel = calibrate(prepare(prune_channels(sparse_model, 0.5)), [images(16)])
    both = export_quantized(qmodel, None, task="cifar10").SerializeToString()
    assert len(zlib.compress(both, 9)) * 6 < len(zlib.compress(dense, 9))
    session = ort.InferenceSession(both, providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": images(2)})[0].shape == (2, 10)


def test_iterative_pruning_fine_tunes_after_every_step():
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
    seen = []

    def fine_tune(m):
        seen.append(m[0].weight.shape[0] if isinstance(m[0], nn.Linear) else None)

    final = iterative_prune(model, [0.25, 0.5, 0.75], fine_tune, structured=True)
    assert seen == [24, 16, 8]
    assert final[0].weight.shape == (8, 8)
    sparse = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
    iterative_prune(sparse, [0.3, 0.6], lambda m: None)
    assert (sparse[0].weight.data == 0).mean() == pytest.approx(0.6, abs=0.01)


def test_sparsity_report_counts_zeros():
    model = nn.Sequential(nn.Linear(4, 5))
    model[0].weight.data[:] = 0
    model[0].weight.data[0, 0] = 1
    rows = {row.name: row for row in sparsity_report(model)}
    assert rows["0.weight"].zeros == 19 and rows["0.weight"].params == 20
    assert rows["total"].params == 25
