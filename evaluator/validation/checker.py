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
# Initializers up to this size keep their bytes during inference: shape-like inputs (Reshape,
# Expand, Pad, Resize, ...) are tiny, and inference reads their values.
_KEEP_RAW_BYTES = 16384
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


def _function_op(text: str, graph_ops: set[str]) -> str | None:
    """The standard operator whose function body failed inference, if that is what ``text`` says.

    Some standard operators (MeanVarianceNormalization, ...) are defined by a function of other
    operators, and onnx infers their shapes by expanding that body; when inference fails there,
    the error names nodes the student's graph does not have.
    """
    ops = [match.group(1) for match in _OP_CONTEXT.finditer(text)]
    if not ops or ops[0] not in graph_ops:
        return None
    try:
        schema = onnx.defs.get_schema(ops[0])
    except onnx.defs.SchemaError:
        return None
    inner = set(ops[1:]) - graph_ops
    if (schema.has_function or schema.has_context_dependent_function) and inner:
        return ops[0]
    return None


def _shape_problem(error: Exception, graph_ops: set[str]) -> Problem:
    text = str(error)
    function_op = _function_op(text, graph_ops)
    if function_op is None:
        return Problem("shape-inference", "the model's shapes or types do not fit together: "
                       + _message(error), _where(text), CHECKER_FIX)
    return Problem(
        "shape-inference",
        f"onnx could not work out the shapes inside {function_op}: that operator is defined as a "
        f"small graph of other operators, and onnx's shape inference fails inside it for this "
        f"model, so the evaluator cannot check the model (onnx said: {_message(error)[:300]})",
        f"a {function_op} node",
        f"write {function_op} out of the basic operators it stands for (its definition is in the "
        f"ONNX operator documentation; for MeanVarianceNormalization: ReduceMean, Sub, Mul, "
        f"Sqrt, Div), or normalize inside the layers before it",
    )


def _graph_ops(model: bytes | onnx.ModelProto) -> set[str]:
    try:
        proto = model if isinstance(model, onnx.ModelProto) else onnx.load_from_string(model)
    except Exception:  # unreadable bytes were refused earlier; this is for the message only
        return set()
    return {node.op_type for node in proto.graph.node}


def check(model: bytes) -> list[Problem]:
    """onnx.checker.check_model with full_check (which includes strict shape inference).

    Given the serialized bytes, so the checker sees exactly what onnxruntime will be given.
    """
    try:
        onnx.checker.check_model(model, full_check=True)
    except InferenceError as error:
        return [_shape_problem(error, _graph_ops(model))]
    except (onnx.checker.ValidationError, ValueError, RuntimeError) as error:
        return [Problem("checker", "onnx's checker rejected the model: " + _message(error),
                        _where(str(error)), CHECKER_FIX)]
    return []


def infer(model: onnx.ModelProto) -> tuple[onnx.ModelProto | None, list[Problem]]:
    """The model with inferred shapes, propagating constant shape values (``data_prop``).

    Large initializers' bytes are set aside during inference (shapes never need them; a 94 MiB
    model infers in 0.01 s instead of 1 s) and put back afterwards; the returned model lacks them.
    """
    set_aside = [(t, t.raw_data) for t in model.graph.initializer
                 if len(t.raw_data) > _KEEP_RAW_BYTES]
    try:
        for tensor, _ in set_aside:
            tensor.ClearField("raw_data")
        inferred = onnx.shape_inference.infer_shapes(
            model, check_type=True, strict_mode=True, data_prop=True
        )
    except (InferenceError, onnx.checker.ValidationError, ValueError, RuntimeError) as error:
        return None, [_shape_problem(error, _graph_ops(model))]
    finally:
        for tensor, raw in set_aside:
            tensor.raw_data = raw
    return inferred, []
