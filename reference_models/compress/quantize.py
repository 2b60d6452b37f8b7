"""Post-training static INT8 quantization and quantization-aware training of ``nn.Sequential`` models.

    qmodel = prepare(model, observer="percentile")      # fold batch norms, insert quantizers
    calibrate(qmodel, calibration_batches)               # observe activation ranges, then freeze
    export_quantized(qmodel, "model_int8.onnx", task="cifar10")

What ``prepare`` builds, for ``Conv -> BN -> ReLU -> MaxPool -> ... -> Linear``:

    x -> [Q/DQ uint8] -> Conv(int8 W per channel, int32 b) -> ReLU -> [Q/DQ uint8] -> MaxPool
      -> Conv(...) -> ... -> Flatten -> Gemm(int8 W, int32 b) -> float logits

Each Conv/Linear quantizes its input; the ReLU that follows it is fused into it and its output is
quantized. MaxPool and Flatten do not change a value's scale, so the next layer reuses the same
quantizer (same scale and zero point), which is exactly what onnxruntime needs to run them on
integers too. The last layer's output stays float: the logits are the model's answer.

Integer types: ``scheme`` (``fake_quant.INT8_SCHEMES``), by default ``"u8s7"``: uint8 activations
and int8 weights limited to 7 bits (-63..63), the one form whose onnxruntime outputs equal the QDQ
semantics on x86 CPUs with and without VNNI at the speed of full int8 (measured in
docs/compression.md, "Portable INT8"). ``"u8s8"`` (full 8-bit weights) saturates onnxruntime's
AVX2 kernel; ``"u8u8"`` and ``"s8s8"`` are exact but slower there.

QAT: after ``calibrate``, train ``qmodel`` with ``fit`` like any model: the forward pass is
fake-quantized, the gradient passes straight through rounding to the float weights.

Dynamic INT8 (``quantize_dynamic``) and INT4 weight-only (``quantize_int4``) live in
``compress.weight_only`` since they rewrite an exported float graph instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from reference_models.autograd import no_grad
from reference_models.compress.fake_quant import Int8Scheme, int8_scheme
from reference_models.compress.fuse import fuse_sequential
from reference_models.compress.observers import FakeQuantize, make_observer
from reference_models.compress.qlayers import _QuantLayer, wrap
from reference_models.nn.layers import (
    Conv2d,
    Dropout,
    Flatten,
    Identity,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
)
from reference_models.nn.module import Module
from reference_models.tensor import Tensor

# Layers that pass quantized values through unchanged in scale: the next layer reuses the range.
_SCALE_PRESERVING = (MaxPool2d, Flatten, Dropout, Identity)


def prepare(model: Sequential, observer: str = "minmax", percentile: float = 99.99,
            reduce_range: bool | None = None, scheme: str | Int8Scheme | None = None
            ) -> Sequential:
    """A quantizable copy of ``model`` (batch norms folded), observing activations.

    ``observer``: ``"minmax"`` or ``"percentile"`` (clip the top ``100 - percentile`` % of values).
    ``scheme``: the integer types (``"u8s7"``, the default, ``"u8s8"``, ``"u8u8"``, ``"s8s8"``;
    see ``fake_quant.INT8_SCHEMES``). ``reduce_range=False`` is the older way to ask for ``"u8s8"``.
    """
    chosen = int8_scheme(scheme, reduce_range)
    layers = list(fuse_sequential(model))
    out: list[Module] = []
    current: FakeQuantize | None = None  # the quantizer whose range the current value has
    fresh = True  # nothing since ``current``: the next layer's input is already quantized
    last_quantizable = max((i for i, layer in enumerate(layers)
                            if isinstance(layer, Conv2d | Linear)), default=-1)
    if last_quantizable < 0:
        raise ValueError("the model has no Conv2d or Linear layer to quantize")
    index = 0
    while index < len(layers):
        layer = layers[index]
        if isinstance(layer, Conv2d | Linear):
            relu = index + 1 < len(layers) and isinstance(layers[index + 1], ReLU)
            input_quantizer = current or FakeQuantize(make_observer(observer, percentile),
                                                      chosen.activations)
            output = (None if index == last_quantizable
                      else FakeQuantize(make_observer(observer, percentile), chosen.activations))
            out.append(wrap(layer, input_quantizer, relu=relu, output_quantizer=output,
                            input_is_quantized=current is not None and fresh,
                            reduce_range=chosen.reduce_range, weight_dtype=chosen.weights))
            current, fresh = output, output is not None
            index += 2 if relu else 1
            continue
        out.append(layer)
        if isinstance(layer, _SCALE_PRESERVING):
            fresh = False
        else:
            current = None
        index += 1
    return Sequential(*out).eval()


def quant_layers(model: Module) -> list[_QuantLayer]:
    return [m for m in model.modules() if isinstance(m, _QuantLayer)]


def quantizers(model: Module) -> list[FakeQuantize]:
    seen: dict[int, FakeQuantize] = {}
    for layer in quant_layers(model):
        for quantizer in layer.quantizers():
            seen.setdefault(id(quantizer), quantizer)
    return list(seen.values())


def calibrate(model: Sequential, batches: Iterable, max_batches: int | None = None) -> Sequential:
    """Run ``batches`` (arrays or ``(inputs, targets)`` tuples) through the observing model, then
    freeze every quantizer's range. Returns the model, now fake-quantizing."""
    for quantizer in quantizers(model):
        quantizer.observing = True
    model.eval()
    seen = 0
    with no_grad():
        for batch in batches:
            inputs = batch[0] if isinstance(batch, tuple | list) else batch
            model(inputs if isinstance(inputs, Tensor) else Tensor(inputs))
            seen += 1
            if max_batches is not None and seen >= max_batches:
                break
    if seen == 0:
        raise ValueError("calibration needs at least one batch of inputs")
    for quantizer in quantizers(model):
        quantizer.freeze()
    return model


def export_quantized(model: Sequential, path: str | os.PathLike | None, *, task: str | None = None,
                     example_input: np.ndarray | None = None):
    """Export a calibrated model as a QDQ ONNX file (integer weights as ``prepare``'s scheme
    chose them, INT32 biases)."""
    from reference_models.export import export_onnx

    if any(q.observing for q in quantizers(model)):
        raise ValueError("calibrate the model before exporting it (its quantizers are observing)")
    if example_input is None:
        from reference_models.recipes.common import example_input as task_example

        if task is None:
            raise ValueError("give task= or example_input=")
        example_input = task_example(task)
    # check=False: the framework's fake quantization and onnxruntime's integer kernels agree to one
    # quantization step, not to 1e-4 (see tests/reference_models/test_quantize.py).
    return export_onnx(model, example_input, path, task=task, check=False)


def optimized_op_types(model: bytes | str | os.PathLike) -> list[str]:
    """The operator types onnxruntime actually runs after its full graph optimization (single
    thread, ``ORT_ENABLE_ALL``: the scorer's settings). Shows whether QDQ became integer kernels."""
    import tempfile

    import onnx
    import onnxruntime as ort

    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.optimized_model_filepath = str(Path(folder) / "optimized.onnx")
        options.log_severity_level = 3  # the "hardware specific optimizations" warning is expected
        ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        optimized = onnx.load(options.optimized_model_filepath)
    return [node.op_type for node in optimized.graph.node]


INTEGER_KERNELS = frozenset({"QLinearConv", "QGemm", "QLinearMatMul", "MatMulInteger",
                             "ConvInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat",
                             "MatMulNBits", "QLinearAdd"})


def integer_kernel_count(model: bytes | str | os.PathLike) -> dict[str, int]:
    """How many nodes of each integer kernel the optimized graph has (empty: it runs in float)."""
    counts: dict[str, int] = {}
    for op in optimized_op_types(model):
        if op in INTEGER_KERNELS:
            counts[op] = counts.get(op, 0) + 1
    return counts


__all__ = ["INTEGER_KERNELS", "calibrate", "export_quantized", "integer_kernel_count",
           "optimized_op_types", "prepare", "quant_layers", "quantizers"]
