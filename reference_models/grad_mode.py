"""Global switches of the autograd engine: gradient recording and export tracing
(``torch.autograd.grad_mode``).

The bottom of the framework's import graph: ``tensor`` reads these two flags, and
``reference_models.autograd`` (which needs tensors) re-exports them, so imports go one way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

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
