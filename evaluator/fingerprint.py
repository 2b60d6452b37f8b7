"""A model's weights fingerprint: the same for two files holding the same weight values, whatever
the tensors are called, in whatever order they are stored, and however the graph around them is
rearranged. The copy flag (``platform/integrity``) compares it between participants.

Computed from the parsed protobuf alone (nothing runs): each initializer (dense, sparse, of the
main graph and of every subgraph) and each ``Constant`` node's tensor is hashed as its dtype, its
shape and its raw little-endian values; the sorted list of those hashes is hashed again. Renaming
a tensor, reordering the initializers or the nodes, changing the producer or the graph's name, or
re-exporting the same weights changes the file's SHA-256 but not this fingerprint. Changing any
single value (fine-tuning one step, re-quantizing) changes it, by design: it finds copies, not
similar models.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
import onnx
from onnx import numpy_helper

FINGERPRINT_VERSION = 1


def _tensor_digest(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    header = f"{array.dtype.str}:{list(array.shape)}:".encode()
    return hashlib.sha256(header + array.tobytes()).hexdigest()


def _array(tensor: onnx.TensorProto) -> np.ndarray:
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        # Never open a path named by an upload (validation refuses such files anyway): the
        # reference itself stands for the values.
        reference = "".join(f"{e.key}={e.value};" for e in tensor.external_data)
        return np.frombuffer(reference.encode(), dtype=np.uint8)
    return numpy_helper.to_array(tensor)


def _graph_arrays(graph: onnx.GraphProto) -> Iterator[np.ndarray]:
    for tensor in graph.initializer:
        yield _array(tensor)
    for sparse in graph.sparse_initializer:
        yield _array(sparse.values)
        yield _array(sparse.indices)
    for node in graph.node:
        for attribute in node.attribute:
            if node.op_type == "Constant" and attribute.type == onnx.AttributeProto.TENSOR:
                yield _array(attribute.t)
            elif attribute.type == onnx.AttributeProto.GRAPH:
                yield from _graph_arrays(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for subgraph in attribute.graphs:
                    yield from _graph_arrays(subgraph)


def weights_fingerprint(model: onnx.ModelProto) -> str | None:
    """SHA-256 over the sorted per-tensor hashes of every stored tensor; None when the model
    stores no tensor with more than one value (nothing to tell copies by)."""
    digests = []
    informative = False
    for array in _graph_arrays(model.graph):
        digests.append(_tensor_digest(array))
        informative |= array.size > 1
    if not informative:
        return None
    lines = "".join(f"{digest}\n" for digest in sorted(digests))
    return hashlib.sha256(f"v{FINGERPRINT_VERSION}\n{lines}".encode()).hexdigest()
