"""Walk every graph, node and tensor of a model, wherever it hides.

onnx's own external-data helper skips sparse initializers, and tensors also live in node attributes,
in If/Loop/Scan bodies, in model-local function bodies and in training-info graphs. Each item comes
with a ``where`` string a student can find in their model (``graph 'main' > node 'If_3' > then_branch``).
"""

from __future__ import annotations

from collections.abc import Iterator

import onnx
from onnx import AttributeProto


def _label(node: onnx.NodeProto) -> str:
    return f"node '{node.name}' ({node.op_type})" if node.name else f"a {node.op_type} node"


def _subgraphs(node: onnx.NodeProto, where: str) -> Iterator[tuple[onnx.GraphProto, str]]:
    for attribute in node.attribute:
        if attribute.type == AttributeProto.GRAPH:
            yield attribute.g, f"{where} > {_label(node)} > {attribute.name}"
        elif attribute.type == AttributeProto.GRAPHS:
            for index, graph in enumerate(attribute.graphs):
                yield graph, f"{where} > {_label(node)} > {attribute.name}[{index}]"


def iter_graphs(model: onnx.ModelProto) -> Iterator[tuple[onnx.GraphProto, str]]:
    """The main graph, every nested subgraph, and the graphs inside training info."""
    roots = [(model.graph, f"graph '{model.graph.name}'")]
    for index, info in enumerate(model.training_info):
        roots.append((info.initialization, f"training_info[{index}].initialization"))
        roots.append((info.algorithm, f"training_info[{index}].algorithm"))
    for function in model.functions:
        for node in function.node:
            roots.extend(_subgraphs(node, f"function '{function.domain}.{function.name}'"))
    stack = list(reversed(roots))
    while stack:
        graph, where = stack.pop()
        yield graph, where
        for node in graph.node:
            stack.extend(reversed(list(_subgraphs(node, where))))


def iter_nodes(model: onnx.ModelProto) -> Iterator[tuple[onnx.NodeProto, str]]:
    """Every node of every graph and of every model-local function body."""
    for graph, where in iter_graphs(model):
        for node in graph.node:
            yield node, f"{where} > {_label(node)}"
    for function in model.functions:
        for node in function.node:
            yield node, f"function '{function.domain}.{function.name}' > {_label(node)}"


def _sparse_parts(sparse: onnx.SparseTensorProto, where: str):
    yield sparse.values, f"{where} (values)"
    yield sparse.indices, f"{where} (indices)"


def iter_sparse(model: onnx.ModelProto) -> Iterator[tuple[onnx.SparseTensorProto, str]]:
    """Every sparse tensor: sparse initializers and sparse-valued node attributes."""
    for graph, where in iter_graphs(model):
        for sparse in graph.sparse_initializer:
            yield sparse, f"{where} > sparse initializer '{sparse.values.name}'"
    for node, where in iter_nodes(model):
        for attribute in node.attribute:
            at = f"{where} > attribute '{attribute.name}'"
            if attribute.type == AttributeProto.SPARSE_TENSOR:
                yield attribute.sparse_tensor, at
            elif attribute.type == AttributeProto.SPARSE_TENSORS:
                yield from ((sparse, at) for sparse in attribute.sparse_tensors)


def iter_tensors(model: onnx.ModelProto) -> Iterator[tuple[onnx.TensorProto, str]]:
    """Every stored dense tensor, including the values and indices of every sparse tensor."""
    for graph, where in iter_graphs(model):
        for tensor in graph.initializer:
            yield tensor, f"{where} > initializer '{tensor.name}'"
    for node, where in iter_nodes(model):
        for attribute in node.attribute:
            at = f"{where} > attribute '{attribute.name}'"
            if attribute.type == AttributeProto.TENSOR:
                yield attribute.t, at
            elif attribute.type == AttributeProto.TENSORS:
                yield from ((tensor, at) for tensor in attribute.tensors)
    for sparse, where in iter_sparse(model):
        yield from _sparse_parts(sparse, where)
