"""Per-token normalization for sequence models: ``LayerNorm`` and ``RMSNorm``, as in ``torch.nn``.

Both normalize over the last ``len(normalized_shape)`` dimensions through ``F.layer_norm`` and
``F.rms_norm`` (in ``nn.functional``), single graph ops with a hand-written backward. The statistics depend on the input, so their derivatives are part of the
gradient: for LayerNorm ``dx = rstd * (g' - mean(g') - xhat * mean(g' * xhat))`` with
``g' = g * weight``; treating the mean and variance as constants (a common slip) gives the first
term only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reference_models.nn import functional as F
from reference_models.nn import init
from reference_models.nn.module import Module, Parameter
from reference_models.tensor import Tensor

__all__ = ["LayerNorm", "RMSNorm"]


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
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

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
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"
