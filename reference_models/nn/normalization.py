"""Per-token normalization for sequence models: ``LayerNorm`` and ``RMSNorm``, as in ``torch.nn``.

Both normalize over the last ``len(normalized_shape)`` dimensions and are single graph ops with a
hand-written backward. The statistics depend on the input, so their derivatives are part of the
gradient: for LayerNorm ``dx = rstd * (g' - mean(g') - xhat * mean(g' * xhat))`` with
``g' = g * weight``; treating the mean and variance as constants (a common slip) gives the first
term only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reference_models.nn import init
from reference_models.nn.module import Module, Parameter
from reference_models.tensor import Tensor, record_op

__all__ = ["LayerNorm", "RMSNorm", "layer_norm", "rms_norm"]


def _normalized_axes(x: np.ndarray, normalized_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(normalized_shape)
    if x.shape[x.ndim - len(shape):] != shape:
        raise ValueError(f"normalized_shape {list(shape)} does not match the last dimensions of an "
                         f"input of shape {list(x.shape)}")
    return tuple(range(x.ndim - len(shape), x.ndim))


def _affine_grads(g: np.ndarray, xhat: np.ndarray, weight: Tensor | None, bias: Tensor | None,
                  lead: tuple[int, ...]) -> list[np.ndarray]:
    grads = []
    if weight is not None:
        grads.append((g * xhat).sum(axis=lead))
    if bias is not None:
        grads.append(g.sum(axis=lead))
    return grads


def layer_norm(input: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the trailing ``normalized_shape``."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    x = input.data
    axes = _normalized_axes(x, shape)
    lead = tuple(range(x.ndim - len(shape)))
    count = int(np.prod(shape))
    centered = x - x.mean(axis=axes, keepdims=True)
    var = np.square(centered).mean(axis=axes, keepdims=True)
    rstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
    xhat = centered * rstd
    out = xhat * weight.data if weight is not None else xhat.copy()
    if bias is not None:
        out += bias.data

    def backward(g: np.ndarray) -> tuple:
        gxhat = g * weight.data if weight is not None else g
        gx = None
        if input.requires_grad:
            proj = (gxhat * xhat).sum(axis=axes, keepdims=True) / count
            gx = gxhat - gxhat.sum(axis=axes, keepdims=True) / count
            gx -= xhat * proj
            gx *= rstd
        return (gx, *_affine_grads(g, xhat, weight, bias, lead))

    parents = [input] + [t for t in (weight, bias) if t is not None]
    return record_op(out, parents, "layer_norm", backward, axis=-len(shape), eps=float(eps),
                     has_weight=weight is not None, has_bias=bias is not None)


def rms_norm(input: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """``x / sqrt(mean(x^2) + eps) * weight``; ``eps=None`` is the dtype's epsilon, as in PyTorch."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    x = input.data
    axes = _normalized_axes(x, shape)
    lead = tuple(range(x.ndim - len(shape)))
    count = int(np.prod(shape))
    eps = float(np.finfo(x.dtype).eps) if eps is None else float(eps)
    rrms = (1.0 / np.sqrt(np.square(x).mean(axis=axes, keepdims=True) + eps)).astype(x.dtype)
    xhat = x * rrms
    out = xhat * weight.data if weight is not None else xhat

    def backward(g: np.ndarray) -> tuple:
        gxhat = g * weight.data if weight is not None else g
        gx = None
        if input.requires_grad:
            gx = gxhat - xhat * ((gxhat * xhat).sum(axis=axes, keepdims=True) / count)
            gx *= rrms
        return (gx, *_affine_grads(g, xhat, weight, None, lead))

    parents = [input] + ([weight] if weight is not None else [])
    return record_op(out, parents, "rms_norm", backward, axes=axes, eps=eps,
                     has_weight=weight is not None)


class LayerNorm(Module):
    """Normalize each token's features to zero mean and unit variance, then scale and shift."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
        self.normalized_shape, self.eps = tuple(shape), eps
        self.elementwise_affine = elementwise_affine
        self.weight = self.bias = None
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=np.float32))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype=np.float32))

    def forward(self, input: Tensor) -> Tensor:
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class RMSNorm(Module):
    """Scale each token's features by their root mean square (no centering, no shift)."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float | None = None,
                 elementwise_affine: bool = True) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
        self.normalized_shape, self.eps = tuple(shape), eps
        self.elementwise_affine = elementwise_affine
        self.weight = None
        if elementwise_affine:
            self.weight = Parameter(np.empty(self.normalized_shape, dtype=np.float32))
            init.ones_(self.weight)

    def forward(self, input: Tensor) -> Tensor:
        return rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"
