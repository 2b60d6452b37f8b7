"""Adam and AdamW (decoupled weight decay), with PyTorch's defaults and bias correction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from reference_models.optim.optimizer import Optimizer
from reference_models.tensor import Tensor


class Adam(Optimizer):
    decoupled_weight_decay = False

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad))

    def update(self, p: Tensor, grad: np.ndarray, state: dict[str, Any],
               group: dict[str, Any]) -> None:
        lr, (beta1, beta2), wd = group["lr"], group["betas"], group["weight_decay"]
        if wd and self.decoupled_weight_decay:
            p.data *= np.asarray(1 - lr * wd, dtype=p.dtype)  # AdamW: shrink weights directly
        elif wd:
            grad = grad + wd * p.data  # Adam: L2 penalty folded into the gradient
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data, subok=False)
            state["exp_avg_sq"] = np.zeros_like(p.data, subok=False)
        state["step"] += 1
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        if group.get("amsgrad"):  # the largest second moment so far (never shrinks)
            v = state["max_exp_avg_sq"] = np.maximum(state.get("max_exp_avg_sq", v), v)
        step_size = lr / (1 - beta1 ** t)
        denom = np.sqrt(v / (1 - beta2 ** t)) + group["eps"]
        p.data -= (step_size * m / denom).astype(p.dtype, copy=False)


class AdamW(Adam):
    decoupled_weight_decay = True

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
