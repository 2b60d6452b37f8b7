"""What ONNX the evaluator accepts: versions, operator domains and limits, in one place.

Measured with onnx 1.23.2 and onnxruntime 1.31.1: onnxruntime loads at most IR version 13 and ai.onnx
opset 26, while ``onnx.helper.make_model`` stamps IR 14 / opset 28 by default (refused). The lower
bounds are a choice, not an onnxruntime limit: opset 13 (2020) changed several operators' inputs
(Split, Squeeze, ReduceSum axes), every current exporter produces 13 or newer, and the evaluator is
tested on exactly this range.
"""

from __future__ import annotations

MIN_IR_VERSION = 7
MAX_IR_VERSION = 13
MIN_OPSET = 13
MAX_OPSET = 26
# The opset a student is told to export with when theirs is outside the range.
RECOMMENDED_OPSET = 17

# The standard operator domain has two spellings.
STANDARD_DOMAINS = frozenset({"", "ai.onnx"})
MICROSOFT_DOMAIN = "com.microsoft"
MICROSOFT_OPSET = 1

# onnxruntime's own quantization tools emit these com.microsoft operators for static INT8 in
# QOperator form (QGemm, QLinear*), dynamic quantization (DynamicQuantizeMatMul,
# MatMulIntegerToFloat), 4-bit weights (MatMulNBits) and 16-bit/4-bit QDQ (Quantize/DequantizeLinear).
# They are plain arithmetic kernels; every other com.microsoft operator is refused.
ALLOWED_MICROSOFT_OPS = frozenset({
    "QGemm",
    "QLinearAdd",
    "QLinearMul",
    "QLinearConv",
    "QLinearAveragePool",
    "QLinearGlobalAveragePool",
    "QLinearConcat",
    "QLinearLeakyRelu",
    "QLinearSigmoid",
    "QLinearSoftmax",
    "QLinearReduceMean",
    "QLinearWhere",
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
    "MatMulNBits",
})

# Largest raw .onnx file read at all (bigger files are refused without parsing). A track's own size
# limit (deflate-compressed bytes, default 10 MB) is applied later by the ranking.
MAX_MODEL_BYTES = 100 * 2**20

# Largest single tensor a model may declare (stored, computed from constants or inferred).
MEMORY_CAP_BYTES = 2**30
