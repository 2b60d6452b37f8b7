"""The task's fixed signature (SPEC §2): one input, one output, their dtypes, ranks and dims.

Dims the task fixes must not be declared as a different number; a symbolic dim there is accepted
(the scorer checks real output shapes at run time). The batch dim must be dynamic everywhere. For
``tinygpt`` the context T is fixed (1..256) or dynamic, and the logits follow the input's T.
"""

from __future__ import annotations

from typing import Any

import onnx
from onnx import TensorProto

from evaluator.tasks import Task
from evaluator.validation.report import Problem, clip_name, format_shape

Dim = int | str | None
DYNAMIC_BATCH_FIX = (
    "make the batch dimension dynamic: torch.onnx.export(..., dynamic_axes={'input': {0: 'N'}, "
    "'output': {0: 'N'}}), or give dim 0 a name (dim_param 'N') in the graph's input and output"
)


def dtype_name(elem_type: int) -> str:
    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem_type).name
    except (KeyError, TypeError, ValueError):
        return TensorProto.DataType.Name(elem_type).lower() if elem_type else "undefined"


def _dims(value: onnx.ValueInfoProto) -> list[Dim] | None:
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    dims: list[Dim] = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(dim.dim_value)
        else:
            dims.append(clip_name(dim.dim_param) if dim.dim_param else None)
    return dims


def describe(value: onnx.ValueInfoProto) -> dict[str, Any]:
    """JSON-able {name, dtype, shape}; shape is None when the rank is unknown."""
    if value.type.WhichOneof("value") != "tensor_type":
        return {"name": clip_name(value.name), "dtype": value.type.WhichOneof("value") or "none",
                "shape": None}
    return {"name": clip_name(value.name), "dtype": dtype_name(value.type.tensor_type.elem_type),
            "shape": _dims(value)}


def expected(dtype: str, shape: tuple[int | None, ...], names: tuple[str, ...]) -> str:
    dims = (str(d) if d is not None else n for d, n in zip(shape, names, strict=True))
    return f"{dtype}[{', '.join(dims)}]"


def real_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """Graph inputs that are not initializers (old exporters list weights as inputs too)."""
    stored = {t.name for t in graph.initializer} | {s.values.name for s in graph.sparse_initializer}
    return [value for value in graph.input if value.name not in stored]


def check(graph: onnx.GraphProto, task: Task) -> tuple[list[Problem], dict[str, Any]]:
    """Problems with the signature, and info: inputs, outputs, context_length (tinygpt)."""
    inputs, outputs = real_inputs(graph), list(graph.output)
    info: dict[str, Any] = {"inputs": [describe(v) for v in inputs],
                            "outputs": [describe(v) for v in outputs]}
    problems = _count(inputs, "input", task) + _count(outputs, "output", task)
    if problems:
        return problems, info
    in_info, out_info = info["inputs"][0], info["outputs"][0]
    problems += _tensor(in_info, "input", task.input_dtype, task.input_shape, task)
    problems += _tensor(out_info, "output", "float32", task.output_shape, task)
    if task.is_language_model and not problems:
        context, context_problems = _context(in_info, out_info, task)
        info["context_length"] = context
        problems += context_problems
    return problems, info


def _names(task: Task, kind: str) -> tuple[str, ...]:
    if task.is_language_model:
        return ("N", "T") if kind == "input" else ("N", "T", "V")
    return ("N", "C", "H", "W") if kind == "input" else ("N", "classes")


def _count(values: list, kind: str, task: Task) -> list[Problem]:
    if len(values) == 1:
        return []
    shape = task.input_shape if kind == "input" else task.output_shape
    dtype = task.input_dtype if kind == "input" else "float32"
    want = expected(dtype, shape, _names(task, kind))
    names = ", ".join(f"'{v.name}'" for v in values) or "none"
    return [Problem(
        "signature",
        f"the model has {len(values)} {kind}s ({names}); task '{task.name}' needs exactly one "
        f"{kind}: {want}",
        f"graph {kind}s",
        f"export a model with a single {kind} {want}",
    )]


def _tensor(value: dict, kind: str, dtype: str, shape: tuple, task: Task) -> list[Problem]:
    want = expected(dtype, shape, _names(task, kind))
    where = f"{kind} '{value['name']}'"
    got = f"{value['dtype']}{format_shape(value['shape'])}"

    def problem(what: str, fix: str | None = None) -> Problem:
        return Problem("signature", f"{kind} '{value['name']}' is {got}: {what}; task "
                       f"'{task.name}' needs {want}", where, fix or f"make the {kind} {want}")

    if value["dtype"] != dtype:
        return [problem(f"its type must be {dtype}, not {value['dtype']}")]
    dims = value["shape"]
    if dims is None:
        return [problem("its shape is not declared")] if kind == "input" else []
    if len(dims) != len(shape):
        return [problem(f"it must have {len(shape)} dimensions, not {len(dims)}")]
    if isinstance(dims[0], int):
        return [problem(f"its batch dimension is fixed to {dims[0]}", DYNAMIC_BATCH_FIX)]
    for index, (got_dim, want_dim) in enumerate(zip(dims, shape, strict=True)):
        if want_dim is not None and isinstance(got_dim, int) and got_dim != want_dim:
            return [problem(f"dimension {index} is {got_dim}, not {want_dim}")]
    return []


def _context(in_info: dict, out_info: dict, task: Task) -> tuple[int | None, list[Problem]]:
    """tinygpt: T fixed within 1..max_context or dynamic; the logits' T must follow it."""
    in_t = in_info["shape"][1]
    context = in_t if isinstance(in_t, int) else None
    where = f"input '{in_info['name']}'"
    if context is not None and not 1 <= context <= task.max_context:
        return context, [Problem(
            "signature", f"the context length T is {context}; it must be 1 to "
            f"{task.max_context} (or dynamic)", where,
            f"export with a context of at most {task.max_context} characters",
        )]
    out_dims = out_info["shape"]
    out_t = out_dims[1] if out_dims is not None else None
    if isinstance(out_t, int) and out_t != context:
        return context, [Problem(
            "signature", f"the logits' T is {out_t} but the input's T is "
            f"{context if context is not None else 'dynamic'}; the model must return logits "
            "for every input position", f"output '{out_info['name']}'",
            "return logits of shape [N, T, 65] for ids of shape [N, T]",
        )]
    return context, []
