"""Global switches of the autograd engine: gradient recording and export tracing.

Kept in one tiny module so every op reads the same two flags without import cycles.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reference_models.tensor import Tensor

_state = {"grad_enabled": True, "tracing": False}


def is_grad_enabled() -> bool:
    """True when new ops record how to compute their gradients."""
    return _state["grad_enabled"]


def is_tracing() -> bool:
    """True while ``export_onnx`` records the forward graph (even under ``no_grad``)."""
    return _state["tracing"]


class set_grad_enabled:  # noqa: N801 - PyTorch's name
    """Context manager (and decorator) that turns gradient recording on or off."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self.previous = _state["grad_enabled"]

    def __enter__(self) -> None:
        self.previous = _state["grad_enabled"]
        _state["grad_enabled"] = self.mode

    def __exit__(self, *exc: object) -> None:
        _state["grad_enabled"] = self.previous

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(self.mode):
                return fn(*args, **kwargs)

        return wrapper


class no_grad(set_grad_enabled):  # noqa: N801 - PyTorch's name
    """``with no_grad():`` runs ops without recording a graph (inference, optimizer steps)."""

    def __init__(self) -> None:
        super().__init__(False)


class enable_grad(set_grad_enabled):  # noqa: N801 - PyTorch's name
    def __init__(self) -> None:
        super().__init__(True)


@contextmanager
def tracing() -> Iterator[None]:
    """Record every op's inputs and attributes so the graph can be exported afterwards."""
    previous = _state["tracing"]
    _state["tracing"] = True
    try:
        yield
    finally:
        _state["tracing"] = previous


def grad(outputs: Tensor | Sequence[Tensor], inputs: Tensor | Sequence[Tensor],
         grad_outputs: Any = None, retain_graph: bool | None = None, create_graph: bool = False,
         allow_unused: bool = False) -> tuple[Tensor | None, ...]:
    """d(outputs)/d(inputs) as new tensors, leaving every ``.grad`` untouched
    (``torch.autograd.grad``). Several outputs are summed, each with its ``grad_outputs``."""
    from reference_models.tensor import _gradient_tensor, add, as_tensor, mul, run_backward, sum

    if create_graph:
        raise NotImplementedError("autograd.grad(create_graph=True) (gradients of gradients) is "
                                  "not supported")
    outs = [outputs] if not isinstance(outputs, list | tuple) else list(outputs)
    ins = [inputs] if not isinstance(inputs, list | tuple) else list(inputs)
    weights = grad_outputs if isinstance(grad_outputs, list | tuple) else [grad_outputs] * len(outs)
    total = None
    for out, weight in zip(outs, weights, strict=True):
        term = out if weight is None else sum(mul(out, as_tensor(weight)))
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
