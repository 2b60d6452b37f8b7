"""ONNX translations of the quantization ops, registered with the framework's exporter.

- ``fake_quantize`` (activations) -> ``QuantizeLinear`` -> ``DequantizeLinear`` with a uint8 zero point;
- ``qdq_conv2d`` / ``qdq_linear`` -> the weight stored as an INT8 initializer (per output channel
  scales, ``axis``) and the bias as an INT32 initializer, each behind a ``DequantizeLinear``,
  feeding a float ``Conv`` / ``Gemm`` / ``MatMul``.

That is the QDQ format: a standard-opset graph any runtime can execute, which onnxruntime's graph
optimizer rewrites into integer kernels (``QLinearConv``, ``QGemm``, ``QLinearMatMul``) when the
pattern DQ -> op -> Q is complete. The translations are registered with the exporter's public
``register_translation``, like any new op's; ``reference_models.compress`` imports this module, so
they exist whenever the quantized layers do.
"""

from __future__ import annotations

import numpy as np

from reference_models.compress.fake_quant import QParams
from reference_models.export import GraphBuilder, register_translation
from reference_models.tensor import Tensor


def _qparam_inputs(b: GraphBuilder, qparams: QParams, hint: str) -> tuple[str, str]:
    """Initializer names of ``qparams``' scale and zero point (one pair per quantizer)."""
    cache = b.memo.setdefault("qparam_names", {})
    key = id(qparams)
    if key not in cache:
        scale = b.constant(np.asarray(qparams.scale, dtype=np.float32), f"{hint}_scale")
        zero = b.constant(np.asarray(qparams.zero_point, dtype=np.dtype(qparams.dtype)),
                          f"{hint}_zero_point")
        cache[key] = (scale, zero, qparams)  # keep qparams alive so its id stays unique
    scale, zero, _ = cache[key]
    return scale, zero


def _axis_attrs(qparams: QParams) -> dict:
    return {} if qparams.axis is None or np.ndim(qparams.scale) == 0 else {"axis": qparams.axis}


@register_translation("fake_quantize")
def _fake_quantize(b: GraphBuilder, t: Tensor) -> None:
    qparams: QParams = t._attrs["qparams"]
    scale, zero = _qparam_inputs(b, qparams, "activation")
    quantized = b.node("QuantizeLinear", [b.name(t._prev[0]), scale, zero], **_axis_attrs(qparams))
    b.node("DequantizeLinear", [quantized, scale, zero], b.out(t), **_axis_attrs(qparams))


def dequantized_constant(b: GraphBuilder, param: Tensor, qparams: QParams,
                         transpose: bool = False) -> str:
    """Store ``param`` as integers (INT8/INT32 initializer) and return the name of its
    ``DequantizeLinear`` output. ``transpose`` stores a [out, in] weight as [in, out] for MatMul."""
    base = b.param_names.get(id(param), "param")
    integers = qparams.quantize(param.data)
    if transpose:
        integers = np.ascontiguousarray(integers.T)
        qparams = QParams(qparams.scale, qparams.zero_point, qparams.dtype, axis=1)
    name = b.constant(integers, f"{base}_quantized")
    scale = b.constant(np.asarray(qparams.scale, dtype=np.float32), f"{base}_scale")
    zero = b.constant(np.asarray(qparams.zero_point), f"{base}_zero_point")
    return b.node("DequantizeLinear", [name, scale, zero], **_axis_attrs(qparams))


def _quantized_inputs(b: GraphBuilder, t: Tensor, transpose_weight: bool = False) -> list[str]:
    x, *params = t._prev
    names = [b.name(x)]
    for index, (param, qparams) in enumerate(zip(params, t._attrs["qparams"], strict=True)):
        names.append(dequantized_constant(b, param, qparams, transpose_weight and index == 0))
    return names


@register_translation("qdq_conv2d")
def _qdq_conv2d(b: GraphBuilder, t: Tensor) -> None:
    (ph, pw), attrs = t._attrs["padding"], t._attrs
    b.node("Conv", _quantized_inputs(b, t), b.out(t), kernel_shape=list(attrs["kernel_shape"]),
           strides=list(attrs["stride"]), pads=[ph, pw, ph, pw], group=attrs["groups"],
           dilations=list(attrs.get("dilation", (1, 1))))


@register_translation("qdq_linear")
def _qdq_linear(b: GraphBuilder, t: Tensor) -> None:
    if t._prev[0].ndim == 2:
        b.node("Gemm", _quantized_inputs(b, t), b.out(t), transB=1)
        return
    x, weight, *bias = _quantized_inputs(b, t, transpose_weight=True)
    product = b.node("MatMul", [x, weight], None if bias else b.out(t))
    if bias:
        b.node("Add", [product, bias[0]], b.out(t))


__all__ = ["dequantized_constant"]
