"""Quantized layers: ``QuantConv2d`` and ``QuantLinear`` wrap a float layer and run it on quantized
inputs and weights, in float (fake quantization), so that training and export see the same numbers.

Each layer takes its input through a ``FakeQuantize`` (uint8, range from calibration), its weight
through per-output-channel symmetric quantization (int8 limited to 7 bits by default, see
``fake_quant.INT8_SCHEMES``) and its bias through int32 quantization with
scale ``input_scale * weight_scale`` (what integer kernels add to their int32 accumulators). An
optional ReLU and an output ``FakeQuantize`` follow.

The product is recorded as one op (``qdq_conv2d`` / ``qdq_linear``) whose ONNX translation stores
the weight as an INT8 initializer and the bias as an INT32 initializer, each behind a
``DequantizeLinear``: the QDQ form onnxruntime fuses into integer kernels (``QLinearConv``,
``QGemm``, ``QLinearMatMul``). Gradients reach the float weights through the straight-through
estimator (quantization-aware training).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from reference_models.autograd import enable_grad, is_grad_enabled, no_grad
from reference_models.compress.fake_quant import QParams, fake_quantize_array, symmetric_qparams
from reference_models.compress.observers import FakeQuantize
from reference_models.nn import functional as F
from reference_models.nn.layers import Conv2d, Linear
from reference_models.nn.module import Module
from reference_models.tensor import Tensor, record_op


def quantized_product(fn: Callable[..., Tensor], x: Tensor, params: list[tuple[Tensor, QParams]],
                      op: str, **attrs) -> Tensor:
    """``fn(x, *fake_quantized(params))`` recorded as the single op ``op`` with parents
    ``(x, *params)``; the backward runs ``fn``'s own backward and masks the parameters' gradients
    by the straight-through estimator."""
    quantized = [fake_quantize_array(p.data, qp) for p, qp in params]
    parents = (x, *(p for p, _ in params))
    wanted = is_grad_enabled() and any(t.requires_grad for t in parents)
    if not wanted:
        with no_grad():
            out = fn(Tensor._wrap(x.data), *(Tensor._wrap(q) for q in quantized)).data
        return record_op(out, parents, op, _no_backward, **attrs)
    leaves = [Tensor(x.data, requires_grad=x.requires_grad)]
    leaves += [Tensor(q, requires_grad=p.requires_grad) for q, (p, _) in zip(quantized, params,
                                                                             strict=True)]
    with enable_grad():
        inner = fn(*leaves)

    def backward(g: np.ndarray) -> tuple:
        for leaf in leaves:
            leaf.grad = None
        inner.backward(g)
        grads = [leaves[0].grad]
        for leaf, (p, qp) in zip(leaves[1:], params, strict=True):
            grads.append(None if leaf.grad is None else leaf.grad * qp.representable(p.data))
        return tuple(grads)

    return record_op(inner.data, parents, op, backward, **attrs)


def _no_backward(g: np.ndarray) -> tuple:  # pragma: no cover - never called without grad
    raise RuntimeError("this op was computed without gradients")


class _QuantLayer(Module):
    """What ``QuantConv2d`` and ``QuantLinear`` share: the quantizers around the float layer."""

    def __init__(self, layer: Module, input_quantizer: FakeQuantize, *, relu: bool = False,
                 output_quantizer: FakeQuantize | None = None, input_is_quantized: bool = False,
                 reduce_range: bool = False, weight_dtype: str = "int8") -> None:
        super().__init__()
        self.layer = layer
        self.input_quantizer = input_quantizer
        self.output_quantizer = output_quantizer
        self.relu = relu
        # True when the input comes straight from a quantizer (with the same range) already.
        self.input_is_quantized = input_is_quantized
        self.reduce_range = reduce_range
        self.weight_dtype = weight_dtype

    @property
    def observing(self) -> bool:
        return self.input_quantizer.observing

    def weight_qparams(self) -> QParams:
        return symmetric_qparams(self.layer.weight.data, axis=0, dtype=self.weight_dtype,
                                 reduce_range=self.reduce_range)

    def bias_qparams(self, weight_qparams: QParams) -> QParams:
        scale = (self.input_quantizer.qparams.scale * weight_qparams.scale).astype(np.float32)
        return QParams(scale, np.zeros(scale.shape, dtype=np.int32), "int32", axis=0)

    def forward(self, input: Tensor) -> Tensor:
        x = input if self.input_is_quantized and not self.observing else self.input_quantizer(input)
        out = self.float_forward(x) if self.observing else self.quantized_forward(x)
        if self.relu:
            out = F.relu(out)
        return self.output_quantizer(out) if self.output_quantizer is not None else out

    def quantized_params(self) -> list[tuple[Tensor, QParams]]:
        wq = self.weight_qparams()
        params = [(self.layer.weight, wq)]
        if self.layer.bias is not None:
            params.append((self.layer.bias, self.bias_qparams(wq)))
        return params

    def quantizers(self) -> list[FakeQuantize]:
        return [q for q in (self.input_quantizer, self.output_quantizer) if q is not None]

    def extra_repr(self) -> str:
        bits = 7 if self.reduce_range else 8
        return (f"relu={self.relu}, input_is_quantized={self.input_is_quantized}, "
                f"weights={self.weight_dtype} ({bits} bits)")


class QuantConv2d(_QuantLayer):
    def float_forward(self, x: Tensor) -> Tensor:
        return self.layer(x)

    def quantized_forward(self, x: Tensor) -> Tensor:
        conv: Conv2d = self.layer

        def run(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
            return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation,
                            conv.groups)

        params = self.quantized_params()
        return quantized_product(run, x, params, "qdq_conv2d", stride=conv.stride,
                                 padding=conv.padding, groups=conv.groups, dilation=conv.dilation,
                                 kernel_shape=conv.kernel_size,
                                 qparams=[qp for _, qp in params])


class QuantLinear(_QuantLayer):
    def float_forward(self, x: Tensor) -> Tensor:
        return self.layer(x)

    def quantized_forward(self, x: Tensor) -> Tensor:
        params = self.quantized_params()
        return quantized_product(F.linear, x, params, "qdq_linear",
                                 qparams=[qp for _, qp in params])


def wrap(layer: Module, input_quantizer: FakeQuantize, **options) -> _QuantLayer:
    if isinstance(layer, Conv2d):
        return QuantConv2d(layer, input_quantizer, **options)
    if isinstance(layer, Linear):
        return QuantLinear(layer, input_quantizer, **options)
    raise TypeError(f"cannot quantize a {type(layer).__name__}; only Conv2d and Linear")


__all__ = ["QuantConv2d", "QuantLinear", "quantized_product", "wrap"]
