"""Declared shapes whose tensors would exceed the memory cap, found without allocating anything.

Looks at every shape onnx's inference could work out (intermediate values, inputs and outputs of
every graph) and, directly, at ConstantOfShape/Expand/Tile nodes whose shape comes from a stored
constant. Unknown and symbolic dims count as 1, so this is a lower bound: a size that depends on the
batch or on input values is left to the scoring child's address-space limit.
"""

from __future__ import annotations

import math

import onnx
from onnx import numpy_helper

from evaluator.validation.report import Problem
from evaluator.validation.structure import memory_problem, tensor_bytes
from evaluator.validation.walk import iter_graphs, iter_nodes

# Shape inputs larger than this are not shapes; never decode them.
_MAX_SHAPE_ELEMENTS = 64


def declared(model: onnx.ModelProto, cap: int) -> list[Problem]:
    """Every inferred or declared value of every graph whose size exceeds ``cap``."""
    problems, seen = [], set()
    for graph, where in iter_graphs(model):
        for value in [*graph.input, *graph.value_info, *graph.output]:
            tensor_type = value.type.tensor_type
            if value.type.WhichOneof("value") != "tensor_type" or not tensor_type.HasField("shape"):
                continue
            dims = [d.dim_value if d.HasField("dim_value") else None
                    for d in tensor_type.shape.dim]
            if (value.name, where) not in seen and tensor_bytes(dims, tensor_type.elem_type) > cap:
                seen.add((value.name, where))
                problems.append(memory_problem(value.name, dims, tensor_type.elem_type, cap,
                                               f"{where} > value '{value.name}'"))
    return problems


def _constants(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    found = {}
    for graph, _ in iter_graphs(model):
        found.update((t.name, t) for t in graph.initializer)
    for node, _ in iter_nodes(model):
        if node.op_type == "Constant" and node.output:
            for attribute in node.attribute:
                if attribute.name == "value" and attribute.type == onnx.AttributeProto.TENSOR:
                    found[node.output[0]] = attribute.t
    return found


def _small_ints(tensor: onnx.TensorProto) -> list[int] | None:
    if math.prod(tensor.dims) > _MAX_SHAPE_ELEMENTS:
        return None
    try:
        return [int(v) for v in numpy_helper.to_array(tensor).reshape(-1)]
    except (ValueError, TypeError):
        return None


def constant_shapes(model: onnx.ModelProto, cap: int) -> list[Problem]:
    """ConstantOfShape / Expand / Tile driven by stored constants (caught even without inference)."""
    constants, problems = _constants(model), []
    for node, where in iter_nodes(model):
        if node.op_type not in {"ConstantOfShape", "Expand", "Tile"} or len(node.input) < 1:
            continue
        shape_input = node.input[0] if node.op_type == "ConstantOfShape" else (
            node.input[1] if len(node.input) > 1 else "")
        shape = _small_ints(constants[shape_input]) if shape_input in constants else None
        if shape is None or any(d < 0 for d in shape):
            continue
        data_type = _output_type(node, constants)
        if tensor_bytes(shape, data_type) > cap:
            name = node.output[0] if node.output else node.op_type
            problems.append(memory_problem(name, shape, data_type, cap, where))
    return problems


def _output_type(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> int:
    """The element type of the node's output when known, else 1-byte (a lower bound)."""
    if node.op_type == "ConstantOfShape":
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        return value.data_type if value is not None else onnx.TensorProto.FLOAT
    data = constants.get(node.input[0])
    return data.data_type if data is not None else onnx.TensorProto.UINT8
