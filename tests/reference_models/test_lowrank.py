"""Low-rank factorization: truncated SVD is the best approximation of its rank, shrinks parameters,
keeps a Sequential's order, exports, and fine-tuning the factors lowers the loss."""

from __future__ import annotations

import numpy as np
import pytest

from reference_models import Tensor, manual_seed, nn, no_grad, optim
from reference_models.compress.lowrank import factorize_linear, factorize_model, rank_for_energy
from reference_models.export import export_onnx
from reference_models.nn import functional as F

RNG = np.random.default_rng(5)


def test_full_rank_factorization_is_exact_and_low_rank_is_the_svd_error():
    layer = nn.Linear(20, 12)
    x = RNG.normal(size=(4, 20)).astype(np.float32)
    with no_grad():
        exact = layer(Tensor(x)).data
        assert np.allclose(factorize_linear(layer, 12)(Tensor(x)).data, exact, atol=1e-5)
        approx = factorize_linear(layer, 4)
        product = approx[1].weight.data @ approx[0].weight.data
    s = np.linalg.svd(layer.weight.data, compute_uv=False)
    assert np.linalg.norm(product - layer.weight.data) == pytest.approx(
        np.sqrt(np.sum(s[4:] ** 2)), rel=1e-4)


def test_factorize_model_replaces_only_layers_where_it_saves_and_keeps_order():
    manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    small, ranks = factorize_model(model, rank=32)
    assert ranks == {"1": 32}  # 32 * (256 + 10) > 256 * 10: the last layer stays
    params = lambda m: sum(p.data.size for p in m.parameters())  # noqa: E731
    assert params(small) < 0.2 * params(model)
    x = RNG.random((1, 1, 28, 28), dtype=np.float32)
    proto = export_onnx(small, x, None, task="mnist")  # the order of layers survived
    assert [n.op_type for n in proto.graph.node].count("Gemm") == 3


def test_rank_for_energy():
    weight = np.diag([10.0, 1.0, 0.1]).astype(np.float32)
    assert rank_for_energy(weight, 0.98) == 1
    assert rank_for_energy(weight, 0.999) == 2


def test_fine_tuning_the_factors_recovers_the_loss():
    manual_seed(1)
    x = RNG.normal(size=(256, 32)).astype(np.float32)
    y = (x[:, :4].sum(1) > 0).astype(np.int64)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 2))
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    for _ in range(60):
        loss = F.cross_entropy(model(Tensor(x)), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    small, _ = factorize_model(model, rank=2)
    with no_grad():
        start = float(F.cross_entropy(small(Tensor(x)), y).data)
    optimizer = optim.Adam(small.parameters(), lr=0.01)
    for _ in range(40):
        loss = F.cross_entropy(small(Tensor(x)), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.data) < start
