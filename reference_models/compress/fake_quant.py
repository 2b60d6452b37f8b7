"""Quantization arithmetic and the ``fake_quantize`` op (quantize, then dequantize, in float).

A quantized value is ``q = clip(round(x / scale) + zero_point, qmin, qmax)`` and stands for
``(q - zero_point) * scale``. Rounding is half-to-even, exactly like ONNX ``QuantizeLinear``, and
``x / scale`` is computed in float32 like onnxruntime, so the framework's fake-quantized numbers are
the numbers the exported QDQ graph computes.

``fake_quantize`` is differentiable with the straight-through estimator: rounding is treated as the
identity for the gradient, and values clipped to the ends of the range get no gradient (they could
not move the output). That is what quantization-aware training needs.

``INT8_SCHEMES`` names the integer types of an INT8 model (activations, weights). The default,
``"u8s7"`` (uint8 activations, int8 weights limited to 7 bits, -63..63), is the one whose
onnxruntime outputs equal the QDQ semantics on every x86 CPU: without VNNI, onnxruntime's
uint8 x int8 kernel adds pairs of products in saturating int16 (``vpmaddubsw``), and
255 * 127 * 2 = 64,770 overflows it while 255 * 63 * 2 = 32,130 never does. See
docs/compression.md ("Portable INT8") for the measured trade-off of each scheme.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reference_models.tensor import Tensor, record_op

# (qmin, qmax) of each storage type. Symmetric int8 weights use -127..127 so that zero sits in the
# middle and -128 never appears (the negation of -128 does not fit int8).
RANGES = {"uint8": (0, 255), "int8": (-127, 127), "int32": (-(2**31) + 1, 2**31 - 1),
          "int4": (-7, 7)}


@dataclass(frozen=True)
class Int8Scheme:
    """The integer types of an INT8 model: what its activations and weights are stored as."""

    name: str
    activations: str  # "uint8" or "int8"
    weights: str  # "int8" (zero point 0) or "uint8" (zero point 128)
    reduce_range: bool  # weights limited to 7 bits (-63..63 around the zero point)
    summary: str


INT8_SCHEMES = {s.name: s for s in (
    Int8Scheme("u8s7", "uint8", "int8", True,
               "uint8 activations, 7-bit int8 weights: exact on every x86 CPU, as fast as u8s8"),
    Int8Scheme("u8s8", "uint8", "int8", False,
               "uint8 activations, full int8 weights: saturates on x86 without VNNI"),
    Int8Scheme("u8u8", "uint8", "uint8", False,
               "uint8 activations and weights: exact everywhere, u8u8 kernels are slower"),
    Int8Scheme("s8s8", "int8", "int8", False,
               "int8 activations and weights: exact, but onnxruntime on x86 runs Conv in float"),
)}
DEFAULT_SCHEME = "u8s7"


def int8_scheme(scheme: str | Int8Scheme | None = None, reduce_range: bool | None = None
                ) -> Int8Scheme:
    """The ``Int8Scheme`` named ``scheme`` (default ``DEFAULT_SCHEME``).

    ``reduce_range`` is the older spelling: ``True`` is ``"u8s7"``, ``False`` is ``"u8s8"``; it
    cannot be combined with a ``scheme`` that says otherwise.
    """
    if isinstance(scheme, Int8Scheme):
        chosen = scheme
    elif scheme is None:
        chosen = INT8_SCHEMES[DEFAULT_SCHEME if reduce_range in (None, True) else "u8s8"]
    elif scheme in INT8_SCHEMES:
        chosen = INT8_SCHEMES[scheme]
    else:
        raise ValueError(f"unknown INT8 scheme {scheme!r}; use one of {', '.join(INT8_SCHEMES)}")
    if reduce_range is not None and scheme is not None and reduce_range != chosen.reduce_range:
        raise ValueError(f"reduce_range={reduce_range} contradicts scheme {chosen.name!r}")
    return chosen


@dataclass(frozen=True)
class QParams:
    """Scale and zero point of a quantizer; per channel along ``axis`` when they are arrays."""

    scale: np.ndarray  # float32, scalar or [channels]
    zero_point: np.ndarray  # the storage dtype, same shape as scale
    dtype: str  # "uint8", "int8" or "int32"
    axis: int | None = None

    @property
    def qmin(self) -> int:
        return RANGES[self.dtype][0]

    @property
    def qmax(self) -> int:
        return RANGES[self.dtype][1]

    def _broadcast(self, array: np.ndarray, ndim: int) -> np.ndarray:
        if self.axis is None or array.ndim == 0:
            return array
        shape = [1] * ndim
        shape[self.axis] = -1
        return array.reshape(shape)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """The stored integers of ``x`` (in the storage dtype)."""
        scale = self._broadcast(self.scale, x.ndim)
        zero = self._broadcast(self.zero_point.astype(np.int64), x.ndim)
        q = np.rint(x.astype(np.float32) / scale).astype(np.int64) + zero
        return np.clip(q, self.qmin, self.qmax).astype(np.dtype(self.dtype))

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        scale = self._broadcast(self.scale, q.ndim)
        zero = self._broadcast(self.zero_point.astype(np.int64), q.ndim)
        return ((q.astype(np.int64) - zero).astype(np.float32) * scale).astype(np.float32)

    def representable(self, x: np.ndarray) -> np.ndarray:
        """Where ``x`` lies inside the range the integers can represent (the STE passes there)."""
        scale = self._broadcast(self.scale, x.ndim)
        zero = self._broadcast(self.zero_point.astype(np.float32), x.ndim)
        low, high = (self.qmin - zero) * scale, (self.qmax - zero) * scale
        return (x >= low) & (x <= high)


def affine_qparams(low: float, high: float, dtype: str = "uint8") -> QParams:
    """Asymmetric parameters covering ``[low, high]`` (widened to include 0, so 0 is exact)."""
    qmin, qmax = RANGES[dtype]
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    scale = (high - low) / (qmax - qmin)
    if scale <= 0 or not np.isfinite(scale):
        scale = 1.0  # an all-zero tensor: any scale represents it exactly
    zero_point = int(np.clip(round(qmin - low / scale), qmin, qmax))
    return QParams(np.asarray(scale, dtype=np.float32),
                   np.asarray(zero_point, dtype=np.dtype(dtype)), dtype)


def symmetric_qparams(weight: np.ndarray, axis: int | None = 0, dtype: str = "int8",
                      reduce_range: bool = False) -> QParams:
    """Symmetric parameters from the largest magnitude, per channel along ``axis``: zero point 0
    for ``int8`` (-127..127), 128 for ``uint8`` (1..255, the same 255 levels shifted).

    ``reduce_range`` uses 7 bits (-63..63 around the zero point): on x86 CPUs without VNNI
    instructions onnxruntime's uint8 x int8 kernels saturate an intermediate int16 sum with
    full-range int8 weights (see the module docstring).
    """
    if dtype not in ("int8", "uint8"):
        raise ValueError(f"symmetric weights are int8 or uint8, not {dtype}")
    qmax = 127
    if reduce_range:
        qmax = 63
    if axis is None:
        largest = np.asarray(np.abs(weight).max(), dtype=np.float32)
    else:
        others = tuple(i for i in range(weight.ndim) if i != axis)
        largest = np.abs(weight).max(axis=others).astype(np.float32)
    scale = np.where(largest > 0, largest / qmax, 1.0).astype(np.float32)
    zero = np.full(scale.shape, 128 if dtype == "uint8" else 0, dtype=np.dtype(dtype))
    return QParams(scale, zero, dtype, axis)


def fake_quantize(x: Tensor, qparams: QParams) -> Tensor:
    """``dequantize(quantize(x))`` as a graph op with a straight-through gradient.

    Exported as an ONNX ``QuantizeLinear`` -> ``DequantizeLinear`` pair (see ``qdq_export``).
    """
    data = qparams.dequantize(qparams.quantize(x.data))

    def backward(g: np.ndarray) -> tuple:
        return (g * qparams.representable(x.data),)

    return record_op(data, (x,), "fake_quantize", backward, qparams=qparams)


def fake_quantize_array(x: np.ndarray, qparams: QParams) -> np.ndarray:
    return qparams.dequantize(qparams.quantize(x))


__all__ = ["DEFAULT_SCHEME", "INT8_SCHEMES", "Int8Scheme", "QParams", "RANGES", "affine_qparams",
           "fake_quantize", "fake_quantize_array", "int8_scheme", "symmetric_qparams"]
