"""Training helpers that act on many parameters at once (``reference_models.nn.utils``)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from reference_models.tensor import Tensor


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                    norm_type: float = 2.0) -> Tensor:
    """Scale all gradients in place so their joint norm is at most ``max_norm``; returns the norm."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad.data for p in params if p.grad is not None]
    if not grads:
        return Tensor(0.0)
    if norm_type == float("inf"):
        total = max(float(np.abs(g).max()) for g in grads)
    else:
        total = float(sum(float((np.abs(g.astype(np.float64)) ** norm_type).sum())
                          for g in grads) ** (1.0 / norm_type))
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for g in grads:
            g *= np.asarray(scale, dtype=g.dtype)
    return Tensor(total)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    return Tensor(np.concatenate([p.data.reshape(-1) for p in parameters]))
