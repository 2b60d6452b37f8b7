"""``torch.autograd``: the gradient switches (defined in ``grad_mode``) and ``grad``.

Imports go one way: ``grad_mode`` <- ``tensor`` <- ``autograd``; nothing below imports this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reference_models import grad_mode  # noqa: F401 - torch.autograd.grad_mode
from reference_models.grad_mode import (
    enable_grad,
    is_grad_enabled,
    is_tracing,
    no_grad,
    set_grad_enabled,
    tracing,
)
from reference_models.tensor import Tensor, _gradient_tensor, add, as_tensor, mul, run_backward
from reference_models.tensor import sum as tensor_sum

__all__ = ["enable_grad", "grad", "is_grad_enabled", "is_tracing", "no_grad", "set_grad_enabled",
           "tracing"]


def grad(outputs: Tensor | Sequence[Tensor], inputs: Tensor | Sequence[Tensor],
         grad_outputs: Any = None, retain_graph: bool | None = None, create_graph: bool = False,
         allow_unused: bool = False) -> tuple[Tensor | None, ...]:
    """d(outputs)/d(inputs) as new tensors, leaving every ``.grad`` untouched
    (``torch.autograd.grad``). Several outputs are summed, each with its ``grad_outputs``."""
    if create_graph:
        raise NotImplementedError("autograd.grad(create_graph=True) (gradients of gradients) is "
                                  "not supported")
    outs = [outputs] if not isinstance(outputs, list | tuple) else list(outputs)
    ins = [inputs] if not isinstance(inputs, list | tuple) else list(inputs)
    weights = grad_outputs if isinstance(grad_outputs, list | tuple) else [grad_outputs] * len(outs)
    total = None
    for out, weight in zip(outs, weights, strict=True):
        term = out if weight is None else tensor_sum(mul(out, as_tensor(weight)))
        total = term if total is None else add(total, term)
    found = run_backward(total, None, ins)
    result = []
    for t in ins:
        if id(t) not in found and not allow_unused:
            raise RuntimeError("One of the differentiated Tensors appears to not have been used "
                               "in the graph. Set allow_unused=True if this is the desired "
                               "behavior.")
        result.append(_gradient_tensor(found[id(t)][1].copy()) if id(t) in found else None)
    return tuple(result)
