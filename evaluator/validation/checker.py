"""onnx's own checker and shape inference, with their errors turned into student-readable problems."""

from __future__ import annotations

import re

import onnx
from onnx.shape_inference import InferenceError

from evaluator.validation.report import Problem

CHECKER_FIX = (
    "re-export the model with a current exporter and run onnx.checker.check_model(model, "
    "full_check=True) locally to see the same error"
)
_NODE_CONTEXT = re.compile(r"Name:\s*(\S*)\s*OpType:\s*(\S+)")
_OP_CONTEXT = re.compile(r"\(op_type:(\w+)(?:, node name: ([^)]*))?\)")


def _where(text: str) -> str | None:
    for pattern in (_NODE_CONTEXT, _OP_CONTEXT):
        match = pattern.search(text)
        if match:
            op_type, name = (match.group(2), match.group(1)) if pattern is _NODE_CONTEXT else (
                match.group(1), match.group(2))
            return f"node '{name}' ({op_type})" if name else f"a {op_type} node"
    return None


def _message(error: Exception) -> str:
    text = str(error).strip()
    first = text.split("==> Context:")[0].strip()
    return " ".join(first.split())[:600] or type(error).__name__


def check(model: onnx.ModelProto) -> list[Problem]:
    """onnx.checker.check_model with full_check (which includes strict shape inference)."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except InferenceError as error:
        return [Problem("shape-inference", "the model's shapes or types do not fit together: "
                        + _message(error), _where(str(error)), CHECKER_FIX)]
    except (onnx.checker.ValidationError, ValueError, RuntimeError) as error:
        return [Problem("checker", "onnx's checker rejected the model: " + _message(error),
                        _where(str(error)), CHECKER_FIX)]
    return []


def infer(model: onnx.ModelProto) -> tuple[onnx.ModelProto | None, list[Problem]]:
    """The model with inferred shapes, propagating constant shape values (``data_prop``)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(
            model, check_type=True, strict_mode=True, data_prop=True
        )
    except (InferenceError, onnx.checker.ValidationError, ValueError, RuntimeError) as error:
        return None, [Problem("shape-inference", "the model's shapes or types do not fit "
                              "together: " + _message(error), _where(str(error)), CHECKER_FIX)]
    return inferred, []
