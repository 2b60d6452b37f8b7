"""Observers watch the activations flowing through a point of the model and choose its range.

- ``MinMaxObserver``: the smallest and largest value seen (no value is ever clipped, but one outlier
  stretches the scale for everybody).
- ``PercentileObserver``: the ``percentile``-th percentile of the values seen (e.g. 99.99): the rare
  outliers are clipped and the common values get finer steps.

``FakeQuantize`` is the module placed in the model: while observing it records and passes values
through; once frozen it fake-quantizes them with the chosen ``QParams``. During quantization-aware
training it keeps quantizing with the frozen range (set ``observing`` to let it move).
"""

from __future__ import annotations

import numpy as np

from reference_models.compress.fake_quant import QParams, affine_qparams, fake_quantize
from reference_models.nn.module import Module
from reference_models.tensor import Tensor

# Values kept per observation by the percentile observer (a random sample keeps memory bounded).
_SAMPLE_PER_BATCH = 200_000


class MinMaxObserver:
    def __init__(self) -> None:
        self.low, self.high = np.inf, -np.inf

    def observe(self, x: np.ndarray) -> None:
        self.low = min(self.low, float(x.min()))
        self.high = max(self.high, float(x.max()))

    def range(self) -> tuple[float, float]:
        if not np.isfinite(self.low):
            raise RuntimeError("this observer has seen no data: run calibration batches first")
        return self.low, self.high


class PercentileObserver(MinMaxObserver):
    def __init__(self, percentile: float = 99.99, seed: int = 0) -> None:
        super().__init__()
        if not 50 < percentile <= 100:
            raise ValueError(f"percentile must be in (50, 100], got {percentile}")
        self.percentile = percentile
        self.samples: list[np.ndarray] = []
        self.generator = np.random.default_rng(seed)

    def observe(self, x: np.ndarray) -> None:
        super().observe(x)
        flat = x.reshape(-1)
        if flat.size > _SAMPLE_PER_BATCH:
            flat = flat[self.generator.integers(0, flat.size, _SAMPLE_PER_BATCH)]
        self.samples.append(np.asarray(flat, dtype=np.float32))

    def range(self) -> tuple[float, float]:
        super().range()
        values = np.concatenate(self.samples)
        low = float(np.percentile(values, 100 - self.percentile))
        high = float(np.percentile(values, self.percentile))
        return low, high


def make_observer(kind: str, percentile: float = 99.99) -> MinMaxObserver:
    if kind == "minmax":
        return MinMaxObserver()
    if kind == "percentile":
        return PercentileObserver(percentile)
    raise ValueError(f"unknown observer {kind!r}; use 'minmax' or 'percentile'")


class FakeQuantize(Module):
    """A point where activations are quantized to ``dtype`` (uint8, or int8 for the ``"s8s8"``
    scheme), observed first, then fake-quantized."""

    def __init__(self, observer: MinMaxObserver, dtype: str = "uint8") -> None:
        super().__init__()
        self.observer, self.dtype = observer, dtype
        self.qparams: QParams | None = None
        self.observing = True

    def forward(self, input: Tensor) -> Tensor:
        if self.observing:
            self.observer.observe(input.data)
            return input
        if self.qparams is None:
            raise RuntimeError("freeze() the quantizer after calibration before using it")
        return fake_quantize(input, self.qparams)

    def freeze(self) -> QParams:
        self.qparams = affine_qparams(*self.observer.range(), self.dtype)
        self.observing = False
        return self.qparams

    def extra_repr(self) -> str:
        if self.qparams is None:
            return f"{type(self.observer).__name__}, observing"
        return (f"{self.dtype}, scale={float(self.qparams.scale):.5g}, "
                f"zero_point={int(self.qparams.zero_point)}")


__all__ = ["FakeQuantize", "MinMaxObserver", "PercentileObserver", "make_observer"]
