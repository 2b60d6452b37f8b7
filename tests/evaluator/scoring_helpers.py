"""Small prepared datasets and models built with onnx.helper for the scoring tests.

The expected metrics are computed in the tests with plain numpy from these same weights, never by
calling the evaluator's own metric code.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from evaluator.datasets import save_prepared, save_prepared_text
from evaluator.tasks import TINYGPT_VOCABULARY, get_task

IR_VERSION = 10
OPSET = 17
VOCAB = len(TINYGPT_VOCABULARY)


def _model(nodes, inputs, outputs, initializers) -> bytes:
    graph = helper.make_graph(nodes, "test", inputs, outputs, initializers)
    model = helper.make_model(graph, ir_version=IR_VERSION,
                              opset_imports=[helper.make_opsetid("", OPSET)])
    return model.SerializeToString()


def _image_io(task: str):
    spec = get_task(task)
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", *spec.input_shape[1:]])
    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 10])
    return image, scores


def linear_image_model(task: str, weight: np.ndarray, bias: np.ndarray) -> bytes:
    """scores = flatten(image) @ weight.T + bias."""
    image, scores = _image_io(task)
    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"]),
        helper.make_node("Gemm", ["flat", "W", "b"], ["scores"], transB=1),
    ]
    inits = [numpy_helper.from_array(weight.astype(np.float32), "W"),
             numpy_helper.from_array(bias.astype(np.float32), "b")]
    return _model(nodes, [image], [scores], inits)


def bigram_model(table: np.ndarray, context: int | str) -> bytes:
    """logits[n, t] = table[ids[n, t]]: a next-character model with a fixed or dynamic context."""
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", context])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", context, VOCAB])
    node = helper.make_node("Gather", ["table", "ids"], ["logits"], axis=0)
    return _model([node], [ids], [logits], [numpy_helper.from_array(table.astype(np.float32), "table")])


def _mnist_head(extra_nodes, extra_inits, added: str) -> bytes:
    """A linear MNIST model whose scores get ``added`` (a scalar computed by ``extra_nodes``) added."""
    image, scores = _image_io("mnist")
    rng = np.random.default_rng(3)
    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"]),
        helper.make_node("Gemm", ["flat", "W", "b"], ["pre"], transB=1),
        *extra_nodes,
        helper.make_node("Add", ["pre", added], ["scores"]),
    ]
    inits = [numpy_helper.from_array(rng.standard_normal((10, 784)).astype(np.float32), "W"),
             numpy_helper.from_array(np.zeros(10, np.float32), "b"), *extra_inits]
    return _model(nodes, [image], [scores], inits)


def batch_sized_allocation(bytes_per_sample: int = 3 * 2**30) -> bytes:
    """Allocates ``bytes_per_sample`` floats per input image at run time (shape from the batch).

    No static check can see it: the size comes from the input's batch dimension.
    """
    per_sample = bytes_per_sample // 4
    nodes = [
        helper.make_node("Shape", ["image"], ["shape"], start=0, end=1),
        helper.make_node("Mul", ["shape", "per_sample"], ["giant_shape"]),
        helper.make_node("ConstantOfShape", ["giant_shape"], ["giant"],
                         value=numpy_helper.from_array(np.array([1.0], np.float32))),
        helper.make_node("ReduceSum", ["giant"], ["total"], keepdims=0),
    ]
    inits = [numpy_helper.from_array(np.array([per_sample], np.int64), "per_sample")]
    return _mnist_head(nodes, inits, "total")


def index_out_of_range() -> bytes:
    """Gathers row ``1000 * max(pixel)`` of a 10-row table: onnxruntime fails at run time."""
    nodes = [
        helper.make_node("ReduceMax", ["image"], ["brightest"], keepdims=0),
        helper.make_node("Mul", ["brightest", "thousand"], ["scaled"]),
        helper.make_node("Cast", ["scaled"], ["index"], to=TensorProto.INT64),
        helper.make_node("Gather", ["rows", "index"], ["row"], axis=0),
        helper.make_node("ReduceSum", ["row"], ["picked"], keepdims=0),
    ]
    inits = [numpy_helper.from_array(np.array(1000.0, np.float32), "thousand"),
             numpy_helper.from_array(np.ones((10, 10), np.float32), "rows")]
    return _mnist_head(nodes, inits, "picked")


def tiny_text(length: int = 60_000, seed: int = 5) -> str:
    """Text over the tinygpt vocabulary with some bigram structure (a bigram model beats chance)."""
    rng = np.random.default_rng(seed)
    ids = [0]
    for _ in range(length - 1):
        ids.append((ids[-1] * 7 + 3) % VOCAB if rng.random() < 0.6 else int(rng.integers(VOCAB)))
    return "".join(TINYGPT_VOCABULARY[i] for i in ids)


def prepare_tiny_datasets(data_dir) -> None:
    """Random MNIST/CIFAR-10 images (labels from a fixed rule) and a tiny text, all three tasks."""
    rng = np.random.default_rng(11)
    for task, count in (("mnist", 120), ("cifar10", 60)):
        shape = get_task(task).input_shape[1:]
        train = rng.integers(0, 256, (8, *shape), dtype=np.uint8)
        test = rng.integers(0, 256, (count, *shape), dtype=np.uint8)
        save_prepared(task, data_dir, train_inputs=train, train_labels=np.arange(8) % 10,
                      test_inputs=test, test_labels=rng.integers(0, 10, count))
    save_prepared_text(data_dir, tiny_text())


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
    """A data directory with small synthetic versions of all three tasks prepared."""
    path = tmp_path_factory.mktemp("tiny-data")
    prepare_tiny_datasets(path)
    return path


def initializer_arrays(model_bytes: bytes) -> list[np.ndarray]:
    return [numpy_helper.to_array(t) for t in onnx.load_from_string(model_bytes).graph.initializer]
