"""Rules checked on the parsed protobuf before any onnx or onnxruntime code interprets the graph.

External data first: onnx's checker itself looks at the file system for external tensors, and
onnxruntime would read any file beside the model or in its working directory.
"""

from __future__ import annotations

import math

import onnx
from onnx import TensorProto

from evaluator import onnx_facts as facts
from evaluator.validation.report import Problem, format_shape
from evaluator.validation.walk import iter_nodes, iter_sparse, iter_tensors

SELF_CONTAINED_FIX = (
    "save the model as one self-contained .onnx file with every weight inside it: "
    "onnx.save(model, path, save_as_external_data=False), or torch.onnx.export(..., "
    "external_data=False)"
)
VERSION_FIX = (
    f"export with opset {facts.RECOMMENDED_OPSET} (any opset from {facts.MIN_OPSET} to "
    f"{facts.MAX_OPSET}): torch.onnx.export(..., opset_version={facts.RECOMMENDED_OPSET}) or "
    f"onnx.version_converter.convert_version(model, {facts.RECOMMENDED_OPSET})"
)


def external_data(model: onnx.ModelProto) -> list[Problem]:
    """Every tensor, wherever it is, must hold its bytes inside the model file."""
    problems = []
    for tensor, where in iter_tensors(model):
        if tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data) > 0:
            location = next((e.value for e in tensor.external_data if e.key == "location"), "?")
            problems.append(Problem(
                "external-data",
                f"tensor '{tensor.name}' is stored outside the model (in '{location}'); the "
                "evaluator only accepts the model file itself and never reads other files",
                where, SELF_CONTAINED_FIX,
            ))
    return problems


def element_bytes(data_type: int) -> int:
    """Bytes per element of an ONNX tensor type (strings and unknown types count as 8)."""
    try:
        return max(1, onnx.helper.tensor_dtype_to_np_dtype(data_type).itemsize)
    except (KeyError, TypeError, ValueError):
        return 8


def tensor_bytes(dims: list[int | None], data_type: int) -> int:
    """Bytes a tensor of these dims needs; unknown dims count as 1 (a lower bound)."""
    return math.prod(d if isinstance(d, int) and d > 0 else 1 for d in dims) * element_bytes(
        data_type
    )


def stored_tensor_sizes(model: onnx.ModelProto, cap: int) -> list[Problem]:
    """A stored tensor may declare dims far larger than its data; refuse what exceeds the cap."""
    problems = []
    for tensor, where in iter_tensors(model):
        dims = list(tensor.dims)
        if any(d < 0 for d in dims):
            problems.append(Problem(
                "checker", f"tensor '{tensor.name}' declares a negative dimension {dims}", where,
                "re-export the model; a stored tensor's dimensions must be zero or positive",
            ))
        elif tensor_bytes(dims, tensor.data_type) > cap:
            problems.append(memory_problem(tensor.name, dims, tensor.data_type, cap, where))
    # onnxruntime turns sparse tensors dense when it loads them: their dense dims count.
    for sparse, where in iter_sparse(model):
        dims = list(sparse.dims)
        if all(d >= 0 for d in dims) and tensor_bytes(dims, sparse.values.data_type) > cap:
            problems.append(memory_problem(sparse.values.name, dims, sparse.values.data_type, cap,
                                           where))
    return problems


def memory_problem(name: str, dims, data_type: int, cap: int, where: str | None) -> Problem:
    size = tensor_bytes(list(dims), data_type)
    return Problem(
        "memory",
        f"tensor '{name}' would take {size / 2**30:,.1f} GiB (shape {format_shape(dims)}), more "
        f"than the "
        f"{cap / 2**30:g} GiB any single tensor may use",
        where, "make this tensor smaller; no tensor of a model may exceed the memory cap",
    )


def local_functions(model: onnx.ModelProto) -> list[Problem]:
    """Model-local functions are refused (their bodies escape per-node checks)."""
    return [
        Problem(
            "model-local-function",
            f"the model defines its own function '{function.domain}.{function.name}'; only "
            "standard operators are accepted",
            f"function '{function.domain}.{function.name}'",
            "inline the functions before saving: "
            "model = onnx.inliner.inline_local_functions(model)",
        )
        for function in model.functions
    ]


def versions(model: onnx.ModelProto) -> list[Problem]:
    """IR version and the ai.onnx opset must be ones onnxruntime loads and we test."""
    problems = []
    if not facts.MIN_IR_VERSION <= model.ir_version <= facts.MAX_IR_VERSION:
        problems.append(Problem(
            "ir-version",
            f"the model's IR version is {model.ir_version}; the evaluator accepts IR "
            f"{facts.MIN_IR_VERSION} to {facts.MAX_IR_VERSION}",
            "model.ir_version",
            f"{VERSION_FIX}; a model built with onnx.helper also needs "
            f"model.ir_version = {facts.MAX_IR_VERSION} or lower",
        ))
    opset = standard_opset(model)
    if opset is None:
        problems.append(Problem("opset", "the model imports no ai.onnx opset", "opset_import",
                                VERSION_FIX))
    elif not facts.MIN_OPSET <= opset <= facts.MAX_OPSET:
        problems.append(Problem(
            "opset",
            f"the model uses ai.onnx opset {opset}; the evaluator accepts opsets "
            f"{facts.MIN_OPSET} to {facts.MAX_OPSET}",
            "opset_import", VERSION_FIX,
        ))
    problems += _microsoft_version(model)
    return problems


def _microsoft_version(model: onnx.ModelProto) -> list[Problem]:
    """onnxruntime only has version 1 of its com.microsoft domain."""
    used = any(node.domain == facts.MICROSOFT_DOMAIN for node, _ in iter_nodes(model))
    version = next((e.version for e in model.opset_import if e.domain == facts.MICROSOFT_DOMAIN),
                   None)
    if not used or version == facts.MICROSOFT_OPSET:
        return []
    return [Problem(
        "opset",
        f"the model uses com.microsoft operators but imports com.microsoft version {version}; "
        f"onnxruntime has only version {facts.MICROSOFT_OPSET}",
        "opset_import",
        "quantize with onnxruntime.quantization, which writes the right import",
    )]


def standard_opset(model: onnx.ModelProto) -> int | None:
    for entry in model.opset_import:
        if entry.domain in facts.STANDARD_DOMAINS:
            return entry.version
    return None


def domains(model: onnx.ModelProto) -> list[Problem]:
    """Check the domains nodes actually use (unused opset imports from tools are harmless)."""
    problems = []
    for node, where in iter_nodes(model):
        if node.domain in facts.STANDARD_DOMAINS:
            continue
        if node.domain == facts.MICROSOFT_DOMAIN and node.op_type in facts.ALLOWED_MICROSOFT_OPS:
            continue
        accepted = "standard ai.onnx operators"
        if node.domain == facts.MICROSOFT_DOMAIN:
            allowed = ", ".join(sorted(facts.ALLOWED_MICROSOFT_OPS))
            accepted += f" and only these com.microsoft quantization operators: {allowed}"
        problems.append(Problem(
            "custom-domain",
            f"operator '{node.op_type}' from domain '{node.domain}' is not a standard ONNX "
            f"operator; the evaluator accepts {accepted}",
            where,
            "export with standard operators only (no custom ops, no onnxruntime-optimized or "
            "fused graphs; save the model before onnxruntime's optimizer rewrites it)",
        ))
    return problems
