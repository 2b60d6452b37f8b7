"""Quantization that rewrites an exported float ONNX graph: dynamic INT8 and INT4 weight-only.

Both replace every ``Gemm`` / ``MatMul`` whose weight is a constant (an initializer, possibly behind
a ``Transpose``) and leave the rest of the graph alone, so they work on any exported model:

- ``quantize_dynamic``: weights stored as INT8 (per output column, symmetric; by default limited
  to 7 bits, the ``"u8s7"`` scheme, so that onnxruntime's AVX2 kernel without VNNI cannot saturate:
  see ``fake_quant.INT8_SCHEMES``); the activations are quantized to uint8 at run time from each
  input's own range (``DynamicQuantizeLinear``), multiplied with ``MatMulInteger`` and rescaled to
  float. Standard opset-17 operators; onnxruntime fuses the pattern into ``DynamicQuantizeMatMul``. Good for linear-heavy models (MLPs, transformers). Convolutions
  are left in float: a dynamic ``ConvInteger`` is far slower than float Conv in onnxruntime.
- ``quantize_int4``: weights stored as 4-bit integers in blocks of ``block_size`` along the input
  dimension, one float scale per block, run by onnxruntime's ``com.microsoft.MatMulNBits`` (which
  the validation gate accepts). Activations stay float; the weights are dequantized inside the
  kernel. 8x smaller weights than float32.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from reference_models.compress.fake_quant import Int8Scheme, int8_scheme, symmetric_qparams

MICROSOFT = "com.microsoft"


class _Rewriter:
    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = onnx.ModelProto()
        self.model.CopyFrom(model)
        self.graph = self.model.graph
        self.initializers = {t.name: t for t in self.graph.initializer}
        self.producers = {out: node for node in self.graph.node for out in node.output}
        self.counter = 0
        self.new_initializers: list[onnx.TensorProto] = []

    def fresh(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}_wq{self.counter}"

    def add(self, array: np.ndarray, hint: str) -> str:
        name = self.fresh(hint)
        self.new_initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def weight_kn(self, node: onnx.NodeProto) -> np.ndarray | None:
        """The constant weight of a Gemm/MatMul as a [K, N] matrix (x @ W), or None."""
        name = node.input[1]
        transposed = False
        if name not in self.initializers and name in self.producers:
            producer = self.producers[name]
            perm = [a.ints for a in producer.attribute if a.name == "perm"]
            if producer.op_type != "Transpose" or producer.input[0] not in self.initializers or (
                    perm and list(perm[0]) != [1, 0]):
                return None
            name, transposed = producer.input[0], True
        if name not in self.initializers:
            return None
        weight = numpy_helper.to_array(self.initializers[name])
        if weight.ndim != 2 or weight.dtype != np.float32:
            return None
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Gemm":
            if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get(
                    "beta", 1.0) != 1.0:
                return None
            transposed ^= bool(attrs.get("transB", 0))
        return weight.T if transposed else weight

    def finish(self, replaced: dict[int, list[onnx.NodeProto]]) -> onnx.ModelProto:
        nodes = []
        for index, node in enumerate(self.graph.node):
            nodes.extend(replaced.get(index, [node]))
        del self.graph.node[:]
        self.graph.node.extend(nodes)
        self.graph.initializer.extend(self.new_initializers)
        _drop_unused(self.graph)
        return self.model


def _drop_unused(graph: onnx.GraphProto) -> None:
    """Remove nodes and initializers nothing needs any more (the float weights, their Transposes)."""
    needed = {o.name for o in graph.output}
    kept: list[onnx.NodeProto] = []
    for node in reversed(list(graph.node)):
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    initializers = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def _targets(rewriter: _Rewriter):
    for index, node in enumerate(rewriter.graph.node):
        if node.op_type in ("Gemm", "MatMul"):
            weight = rewriter.weight_kn(node)
            if weight is not None:
                yield index, node, weight


def quantize_dynamic(model: onnx.ModelProto, scheme: str | Int8Scheme | None = None
                     ) -> onnx.ModelProto:
    """INT8 weights with activations quantized at run time (see the module docstring).

    ``scheme``: ``"u8s7"`` (default), ``"u8s8"`` or ``"u8u8"``; ``"s8s8"`` does not exist here
    because ``DynamicQuantizeLinear`` only produces uint8.
    """
    chosen = int8_scheme(scheme)
    if chosen.activations != "uint8":
        raise ValueError(f"dynamic INT8 quantizes activations to uint8 (DynamicQuantizeLinear); "
                         f"scheme {chosen.name!r} is for static quantization only")
    rewriter = _Rewriter(model)
    replaced: dict[int, list[onnx.NodeProto]] = {}
    for index, node, weight in _targets(rewriter):
        qparams = symmetric_qparams(weight, axis=1, dtype=chosen.weights,
                                    reduce_range=chosen.reduce_range)  # one scale per column
        base = rewriter.fresh(node.output[0])
        w_int = rewriter.add(qparams.quantize(weight), f"{base}_weight")
        w_zero = rewriter.add(qparams.zero_point, f"{base}_weight_zero_point")
        w_scale = rewriter.add(qparams.scale.astype(np.float32), f"{base}_weight_scale")
        xq, xs, xz = f"{base}_xq", f"{base}_xscale", f"{base}_xzero"
        product, as_float, scale = f"{base}_int32", f"{base}_float", f"{base}_scale"
        scaled = node.output[0] if len(node.input) < 3 else f"{base}_scaled"
        nodes = [
            helper.make_node("DynamicQuantizeLinear", [node.input[0]], [xq, xs, xz]),
            helper.make_node("MatMulInteger", [xq, w_int, xz, w_zero], [product]),
            helper.make_node("Cast", [product], [as_float], to=onnx.TensorProto.FLOAT),
            helper.make_node("Mul", [xs, w_scale], [scale]),
            helper.make_node("Mul", [as_float, scale], [scaled]),
        ]
        if len(node.input) >= 3 and node.input[2]:
            nodes.append(helper.make_node("Add", [scaled, node.input[2]], [node.output[0]]))
        replaced[index] = nodes
    return rewriter.finish(replaced)


def int4_blocks(weight_kn: np.ndarray, block_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric 4-bit blocks of a [K, N] weight along K: ``(codes uint8 [N, blocks, block_size]
    in 0..15 with 8 meaning zero, scales float32 [N, blocks])``."""
    k, n = weight_kn.shape
    blocks = -(-k // block_size)
    padded = np.zeros((blocks * block_size, n), dtype=np.float32)
    padded[:k] = weight_kn
    per_block = padded.T.reshape(n, blocks, block_size)
    largest = np.abs(per_block).max(axis=2)
    scales = np.where(largest > 0, largest / 7, 1.0).astype(np.float32)
    codes = np.clip(np.rint(per_block / scales[..., None]), -7, 7).astype(np.int64) + 8
    return codes.astype(np.uint8), scales


def int4_dequantize(codes: np.ndarray, scales: np.ndarray, k: int) -> np.ndarray:
    """The [K, N] float weight that ``int4_blocks`` codes stand for (what MatMulNBits computes)."""
    values = (codes.astype(np.float32) - 8) * scales[..., None]
    n = codes.shape[0]
    return values.reshape(n, -1)[:, :k].T.copy()


def quantize_int4(model: onnx.ModelProto, block_size: int = 32) -> onnx.ModelProto:
    """4-bit weight-only quantization with ``com.microsoft.MatMulNBits`` (see the docstring)."""
    if block_size < 16 or block_size & (block_size - 1):
        raise ValueError("block_size must be a power of two, at least 16")
    rewriter = _Rewriter(model)
    replaced: dict[int, list[onnx.NodeProto]] = {}
    for index, node, weight in _targets(rewriter):
        k, n = weight.shape
        codes, scales = int4_blocks(weight, block_size)
        packed = (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)  # low nibble first
        base = rewriter.fresh(node.output[0])
        bias = len(node.input) >= 3 and node.input[2]
        out = f"{base}_product" if bias else node.output[0]
        nodes = [helper.make_node(
            "MatMulNBits",
            [node.input[0], rewriter.add(packed, f"{base}_weight_int4"),
             rewriter.add(scales.reshape(-1), f"{base}_scales")],
            [out], domain=MICROSOFT, K=k, N=n, bits=4, block_size=block_size)]
        if bias:
            nodes.append(helper.make_node("Add", [out, node.input[2]], [node.output[0]]))
        replaced[index] = nodes
    result = rewriter.finish(replaced)
    if not any(o.domain == MICROSOFT for o in result.opset_import):
        result.opset_import.append(helper.make_opsetid(MICROSOFT, 1))
    return result


__all__ = ["int4_blocks", "int4_dequantize", "quantize_dynamic", "quantize_int4"]
