"""Low-rank factorization: replace a Linear layer's ``out x in`` weight by two thin matrices.

By the truncated SVD ``W ~= U_r S_r V_r^T``, ``Linear(in, out)`` becomes
``Linear(in, r, bias=False)`` with weight ``sqrt(S_r) V_r^T`` followed by ``Linear(r, out)`` with
weight ``U_r sqrt(S_r)`` and the old bias. Parameters drop from ``in*out`` to ``r*(in+out)``, worth
it when ``r < in*out / (in+out)``. The best rank-r approximation (Eckart-Young) loses what the
dropped singular values carried; a short fine-tune recovers most of it.
"""

from __future__ import annotations

import copy

import numpy as np

from reference_models.nn.layers import Linear, Sequential
from reference_models.nn.module import Module, Parameter


def factorize_linear(layer: Linear, rank: int) -> Sequential:
    """Two Linear layers whose product is the best rank-``rank`` approximation of ``layer``."""
    out_features, in_features = layer.weight.shape
    if not 1 <= rank <= min(out_features, in_features):
        raise ValueError(f"rank must be between 1 and {min(out_features, in_features)}, got {rank}")
    u, s, vt = np.linalg.svd(layer.weight.data.astype(np.float64), full_matrices=False)
    root = np.sqrt(s[:rank])
    first = Linear(in_features, rank, bias=False)
    second = Linear(rank, out_features, bias=layer.bias is not None)
    first.weight = Parameter((root[:, None] * vt[:rank]).astype(np.float32))
    second.weight = Parameter((u[:, :rank] * root[None, :]).astype(np.float32))
    if layer.bias is not None:
        second.bias = Parameter(layer.bias.data.copy())
    return Sequential(first, second)


def rank_for_energy(weight: np.ndarray, energy: float) -> int:
    """The smallest rank keeping ``energy`` (e.g. 0.9) of the sum of squared singular values."""
    s = np.linalg.svd(weight.astype(np.float64), compute_uv=False)
    cumulative = np.cumsum(s**2) / np.sum(s**2)
    return int(np.searchsorted(cumulative, energy) + 1)


def factorize_model(model: Module, rank: int | None = None, energy: float | None = None,
                    min_saving: float = 0.0) -> tuple[Module, dict[str, int]]:
    """A copy of ``model`` with every Linear factorized where that saves parameters.

    Give a fixed ``rank`` or an ``energy`` to keep per layer. A layer is replaced only when the
    factorized form has fewer than ``(1 - min_saving) * in * out`` weights. Returns the new model
    and the rank chosen for each replaced layer (by dotted name).
    """
    if (rank is None) == (energy is None):
        raise ValueError("give exactly one of rank= or energy=")
    model = copy.deepcopy(model)
    chosen: dict[str, int] = {}
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            if not isinstance(child, Linear):
                continue
            out_features, in_features = child.weight.shape
            r = rank if rank is not None else rank_for_energy(child.weight.data, energy)
            r = min(r, out_features, in_features)
            if r * (in_features + out_features) >= (1 - min_saving) * in_features * out_features:
                continue
            # in place: a Sequential runs its children in registration order
            parent._modules[child_name] = factorize_linear(child, r)
            chosen[f"{parent_name}.{child_name}" if parent_name else child_name] = r
    return model, chosen


__all__ = ["factorize_linear", "factorize_model", "rank_for_energy"]
