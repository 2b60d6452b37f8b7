"""The weights fingerprint of the copy flag: blind to names, order and packaging, sharp on values;
computed by validation without running anything."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from evaluator.fingerprint import weights_fingerprint
from evaluator.validation import validate

BASELINE = Path(__file__).resolve().parents[2] / "reference_models" / "baselines" / "mnist_mlp.onnx"


def disguised_copy(model_bytes: bytes) -> bytes:
    """The same weights under other names, in reverse order, from another 'producer'."""
    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    renames = {t.name: f"w{i}_{hashlib.md5(t.name.encode()).hexdigest()[:6]}"
               for i, t in enumerate(graph.initializer)}
    for tensor in graph.initializer:
        tensor.name = renames[tensor.name]
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.name = f"renamed_{node.name}"
    tensors = list(graph.initializer)[::-1]
    del graph.initializer[:]
    graph.initializer.extend(tensors)
    graph.name = "my_own_model"
    model.producer_name = "totally-original"
    return model.SerializeToString()


def test_a_renamed_reordered_copy_has_other_bytes_and_the_same_fingerprint():
    original = BASELINE.read_bytes()
    copy = disguised_copy(original)
    assert hashlib.sha256(copy).digest() != hashlib.sha256(original).digest()
    first, second = validate(original, "mnist"), validate(copy, "mnist")
    assert first.ok and second.ok
    assert first.info["weights_sha256"] == second.info["weights_sha256"]
    assert len(first.info["weights_sha256"]) == 64


def test_one_changed_value_changes_the_fingerprint():
    model = onnx.load_from_string(BASELINE.read_bytes())
    tensor = max(model.graph.initializer, key=lambda t: np.prod(t.dims))
    values = numpy_helper.to_array(tensor).copy()
    values.flat[0] += np.float32(1e-3)
    tensor.CopyFrom(numpy_helper.from_array(values, tensor.name))
    assert weights_fingerprint(model) != weights_fingerprint(onnx.load(BASELINE))


def test_external_data_is_never_opened(tmp_path):
    model = onnx.load(BASELINE)
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "/etc/shadow"
    assert len(weights_fingerprint(model)) == 64  # hashed the reference, read no file


def test_no_weights_no_fingerprint():
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    assert weights_fingerprint(onnx.helper.make_model(graph)) is None
