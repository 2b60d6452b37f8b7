"""Mixed precision: float16 compute with float32 master weights, and loss scaling (``torch.amp``).

    scaler = amp.GradScaler()
    for x, y in batches:
        with amp.autocast(device_type="cpu", dtype=rm.float16):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        scaler.scale(loss).backward()      # the loss times 2^16: small gradients survive float16
        scaler.unscale_(optimizer)         # optional: true gradients, e.g. to clip them
        clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)             # skipped if a gradient is inf/NaN
        scaler.update()                    # halve the scale after an overflow, double it after
                                           # growth_interval clean steps

Inside ``autocast`` the matrix products (``F.linear``, ``Tensor @``) round their inputs (the
activations and the float32 parameters) to float16, multiply with float32 accumulation and store
the result in float16, as GPU tensor cores do; their backward gives float16 gradients to
activations and float32 gradients to the float32 parameters (the master weights, which the
optimizer updates). Numerically sensitive ops (``softmax``, ``log_softmax``, ``layer_norm``,
``cross_entropy``, ``scaled_dot_product_attention``) run in float32 on upcast inputs, as in
PyTorch's autocast lists. Outside the context nothing changes.

How: entering the context swaps those functions of ``nn.functional`` and ``tensor`` for
float16/float32 versions and leaving restores them (one process-wide switch, like PyTorch's
per-thread one; not for concurrent threads).

On this CPU framework float16 saves memory (activations kept for backward are half the bytes) but
not time: numpy has no fast float16 arithmetic, so the casts cost extra
(``benchmarks/mixed_precision.py`` measures both on the TinyGPT recipe).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from reference_models.autograd import no_grad
from reference_models.nn import functional as _functional
from reference_models.tensor import Tensor, cast, record_op, unbroadcast

# the module itself: ``reference_models.tensor`` as an attribute is the ``tensor()`` function
_tensor = sys.modules["reference_models.tensor"]

__all__ = ["GradScaler", "autocast", "is_autocast_enabled"]

_state: dict[str, Any] = {"dtype": None}


def is_autocast_enabled() -> bool:
    return _state["dtype"] is not None


def _low(x: np.ndarray, dtype) -> np.ndarray:
    return x.astype(dtype, copy=False)


def _half_linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``linear`` with float16 inputs, float32 accumulation and a float16 result.

    Only the float16 copies are kept for backward (half the bytes of the float32 input)."""
    low = _state["dtype"]
    x16, w16 = _low(input.data, low), _low(weight.data, low)
    out = x16.reshape(-1, x16.shape[-1]).astype(np.float32) @ w16.astype(np.float32).T
    if bias is not None:
        out += _low(bias.data, low)
    out = out.astype(low).reshape(*x16.shape[:-1], w16.shape[0])

    def backward(g: np.ndarray) -> tuple:
        g2 = _low(g, low).reshape(-1, g.shape[-1]).astype(np.float32)
        gx = gw = None
        if input.requires_grad:
            gx = _low(g2 @ w16.astype(np.float32), low).reshape(x16.shape)
            gx = gx.astype(input.dtype, copy=False)
        if weight.requires_grad:
            gw = (g2.T @ x16.reshape(-1, x16.shape[-1]).astype(np.float32)).astype(
                weight.dtype, copy=False)
        if bias is None:
            return gx, gw
        return gx, gw, g2.sum(axis=0).astype(bias.dtype, copy=False)

    parents = (input, weight) if bias is None else (input, weight, bias)
    return record_op(out, parents, "linear", backward)


def _half_matmul(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` with float16 inputs, float32 accumulation and a float16 result."""
    low = _state["dtype"]
    a16, b16 = _low(a.data, low), _low(b.data, low)

    def backward(g: np.ndarray) -> tuple:
        g32 = _low(g, low).astype(np.float32)
        ga = gb = None
        if a.requires_grad:
            ga = unbroadcast(g32 @ np.swapaxes(b16, -1, -2).astype(np.float32), a.shape)
            ga = _low(ga, low).astype(a.dtype, copy=False)
        if b.requires_grad:
            gb = unbroadcast(np.swapaxes(a16, -1, -2).astype(np.float32) @ g32, b.shape)
            gb = gb.astype(b.dtype, copy=False)
        return ga, gb

    out = (a16.astype(np.float32) @ b16.astype(np.float32)).astype(low)
    return record_op(out, (a, b), "matmul", backward)


def _in_float32(fn: Callable) -> Callable:
    """``fn`` with its floating-point tensor arguments upcast to float32 (gradients flow back)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        def up(value: Any) -> Any:
            if isinstance(value, Tensor) and value.dtype.kind == "f" and value.dtype != np.float32:
                return cast(value, np.float32)
            return value

        return fn(*(up(a) for a in args), **{k: up(v) for k, v in kwargs.items()})

    return wrapper


_FLOAT32_OPS = ("softmax", "log_softmax", "layer_norm", "cross_entropy",
                "scaled_dot_product_attention")


class autocast:  # noqa: N801 - PyTorch's name
    """``torch.autocast``: matrix products in ``dtype`` (float16) inside the context."""

    def __init__(self, device_type: str = "cpu", dtype: Any = np.float16, enabled: bool = True,
                 cache_enabled: bool | None = None) -> None:
        if str(device_type).split(":")[0] != "cpu":
            raise RuntimeError(f"device_type {device_type!r}: reference_models runs on the CPU "
                               "only; use autocast('cpu')")
        if np.dtype(dtype) != np.float16:
            raise ValueError(f"autocast supports dtype float16 only, not {np.dtype(dtype)} "
                             "(numpy has no bfloat16)")
        self.dtype, self.enabled = np.dtype(dtype).type, enabled
        self._saved: dict[tuple[Any, str], Any] = {}
        self._previous = None

    def __enter__(self) -> autocast:
        self._previous = _state["dtype"]
        if not self.enabled or self._previous is not None:  # nested: the outer one rules
            return self
        _state["dtype"] = self.dtype
        patches = {(_functional, "linear"): _half_linear, (_tensor, "matmul"): _half_matmul}
        for name in _FLOAT32_OPS:
            patches[(_functional, name)] = _in_float32(getattr(_functional, name))
        for (module, name), replacement in patches.items():
            self._saved[(module, name)] = getattr(module, name)
            setattr(module, name, replacement)
        return self

    def __exit__(self, *exc: object) -> None:
        for (module, name), original in self._saved.items():
            setattr(module, name, original)
        self._saved.clear()
        if self.enabled and self._previous is None:
            _state["dtype"] = None

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with autocast("cpu", self.dtype, self.enabled):
                return fn(*args, **kwargs)

        return wrapper


class GradScaler:
    """``torch.amp.GradScaler``: dynamic loss scaling so float16 gradients neither underflow nor
    stay overflowed.

    ``scale(loss)`` multiplies by the current scale; ``unscale_(optimizer)`` divides that
    optimizer's gradients by it and notes whether any is inf/NaN; ``step(optimizer)`` unscales if
    needed and calls ``optimizer.step()`` only when all are finite; ``update()`` multiplies the
    scale by ``backoff_factor`` after a skipped step, by ``growth_factor`` after
    ``growth_interval`` steps in a row without one.
    """

    def __init__(self, device: str = "cpu", init_scale: float = 2.0 ** 16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> None:
        if growth_factor <= 1.0 or not 0.0 < backoff_factor < 1.0:
            raise ValueError("growth_factor must be > 1 and backoff_factor in (0, 1)")
        self._enabled = enabled
        self._scale = float(init_scale)
        self._growth_factor, self._backoff_factor = float(growth_factor), float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        self._per_optimizer: dict[int, dict[str, Any]] = {}

    def is_enabled(self) -> bool:
        return self._enabled

    def get_scale(self) -> float:
        return self._scale if self._enabled else 1.0

    def scale(self, outputs: Tensor | Iterable[Tensor]) -> Tensor | list[Tensor]:
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            return outputs * self._scale
        return [o * self._scale for o in outputs]

    def _record(self, optimizer) -> dict[str, Any]:
        return self._per_optimizer.setdefault(id(optimizer), {"unscaled": False,
                                                              "found_inf": False})

    def unscale_(self, optimizer) -> None:
        if not self._enabled:
            return
        record = self._record(optimizer)
        if record["unscaled"]:
            raise RuntimeError("unscale_() has already been called on this optimizer since the "
                               "last update().")
        inverse = 1.0 / self._scale
        found_inf = False
        with no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad.data
                    g *= np.asarray(inverse, dtype=g.dtype)
                    found_inf = found_inf or not bool(np.isfinite(g).all())
        record["unscaled"], record["found_inf"] = True, found_inf

    def step(self, optimizer, *args: Any, **kwargs: Any) -> Any:
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        record = self._record(optimizer)
        if not record["unscaled"]:
            self.unscale_(optimizer)
        if record["found_inf"]:
            return None  # an overflowed step is skipped: the weights stay as they were
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale: float | None = None) -> None:
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale)
        elif any(r["found_inf"] for r in self._per_optimizer.values()):
            self._scale *= self._backoff_factor
            self._growth_tracker = 0
        else:
            self._growth_tracker += 1
            if self._growth_tracker == self._growth_interval:
                self._scale *= self._growth_factor
                self._growth_tracker = 0
        self._per_optimizer.clear()

    def state_dict(self) -> dict[str, Any]:
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not self._enabled:
            return
        if not state_dict:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
