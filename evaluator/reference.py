"""The fixed reference basket of each task, built in code, that the speed index divides by.

The basket is timed interleaved with the submission in the same scoring process, so
``speed_index`` (the geometric mean over the basket of member median / model median) cancels most
of what differs between worker machines and moments. Three members of one family at growing width
(a student's first CNN and two wider ones; for language models one attention block at three
embedding widths), because a model's speed relative to a single reference drifts with the host's
state by how alike the two are (``evaluator.latency``). Graphs and weights are fixed (seeded) and
must never change within a competition: a change would shift every speed index.
``REFERENCE_VERSION`` names the current set and is recorded in each scorecard (version 1 was the
first member alone).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from evaluator.tasks import TINYGPT_MAX_CONTEXT, get_task

REFERENCE_VERSION = "2"
REFERENCE_IR_VERSION = 10
REFERENCE_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "output"
# Per member of the basket: the two conv widths of an image reference (MNIST, CIFAR-10) and the
# embedding width of a language reference.
_IMAGE_WIDTHS = {1: ((16, 32), (32, 64), (64, 64)), 3: ((32, 64), (64, 128), (128, 128))}
_EMBED_WIDTHS = (64, 128, 256)


def _weight(rng: np.random.Generator, name: str, *shape: int) -> onnx.TensorProto:
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    values = rng.standard_normal(shape).astype(np.float32) / np.float32(np.sqrt(fan_in))
    return numpy_helper.from_array(values, name)


def _conv_block(rng, index: int, c_in: int, c_out: int, x: str, weights: list) -> tuple[list, str]:
    w, b = f"conv{index}.weight", f"conv{index}.bias"
    weights += [_weight(rng, w, c_out, c_in, 3, 3), numpy_helper.from_array(
        np.zeros(c_out, np.float32), b)]
    nodes = [
        helper.make_node("Conv", [x, w, b], [f"c{index}"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", [f"c{index}"], [f"r{index}"]),
        helper.make_node("MaxPool", [f"r{index}"], [f"p{index}"], kernel_shape=[2, 2], strides=[2, 2]),
    ]
    return nodes, f"p{index}"


def _image_graph(channels: int, side: int, widths: tuple[int, int]) -> onnx.GraphProto:
    """Two conv-relu-pool blocks and a linear layer: a small CNN like a student's first model."""
    rng = np.random.default_rng(0)
    weights: list = []
    first, x = _conv_block(rng, 1, channels, widths[0], INPUT_NAME, weights)
    second, x = _conv_block(rng, 2, widths[0], widths[1], x, weights)
    features = widths[1] * (side // 4) ** 2
    weights += [_weight(rng, "fc.weight", 10, features),
                numpy_helper.from_array(np.zeros(10, np.float32), "fc.bias")]
    head = [
        helper.make_node("Flatten", [x], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], [OUTPUT_NAME], transB=1),
    ]
    return helper.make_graph(
        first + second + head,
        "reference",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", channels, side, side])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 10])],
        weights,
    )


def _language_graph(vocabulary_size: int, context: int, embed: int) -> onnx.GraphProto:
    """Embedding, one causal self-attention head and a linear head over a fixed context."""
    rng = np.random.default_rng(0)
    mask = np.triu(np.full((context, context), -1e9, np.float32), k=1)
    weights = [
        _weight(rng, "embed", vocabulary_size, embed),
        _weight(rng, "wq", embed, embed),
        _weight(rng, "wk", embed, embed),
        _weight(rng, "wv", embed, embed),
        _weight(rng, "head", embed, vocabulary_size),
        numpy_helper.from_array(mask, "mask"),
        numpy_helper.from_array(np.array(1 / np.sqrt(embed), np.float32), "scale"),
    ]
    nodes = [
        helper.make_node("Gather", ["embed", INPUT_NAME], ["x"]),
        helper.make_node("MatMul", ["x", "wq"], ["q"]),
        helper.make_node("MatMul", ["x", "wk"], ["k"]),
        helper.make_node("MatMul", ["x", "wv"], ["v"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        helper.make_node("Mul", ["s", "scale"], ["ss"]),
        helper.make_node("Add", ["ss", "mask"], ["sm"]),
        helper.make_node("Softmax", ["sm"], ["a"], axis=-1),
        helper.make_node("MatMul", ["a", "v"], ["y"]),
        helper.make_node("Add", ["x", "y"], ["h"]),
        helper.make_node("MatMul", ["h", "head"], [OUTPUT_NAME]),
    ]
    return helper.make_graph(
        nodes,
        "reference",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.INT64, ["N", context])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", context, vocabulary_size])],
        weights,
    )


def _serialized(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(
        graph,
        ir_version=REFERENCE_IR_VERSION,
        opset_imports=[helper.make_opsetid("", REFERENCE_OPSET)],
        producer_name="evaluator.reference",
    )
    return model.SerializeToString()


@cache
def reference_basket(task_name: str) -> tuple[bytes, ...]:
    """The serialized reference models of a task, smallest first (same bytes on every machine)."""
    task = get_task(task_name)
    if task.is_language_model:
        return tuple(_serialized(_language_graph(task.num_classes, TINYGPT_MAX_CONTEXT, embed))
                     for embed in _EMBED_WIDTHS)
    channels, side = task.input_shape[1], task.input_shape[2]
    return tuple(_serialized(_image_graph(channels, side, widths))
                 for widths in _IMAGE_WIDTHS[channels])


def reference_input(task_name: str) -> np.ndarray:
    """The fixed batch-1 input the reference is timed on (a full window for language models)."""
    task = get_task(task_name)
    rng = np.random.default_rng(1)
    if task.is_language_model:
        return rng.integers(0, task.num_classes, size=(1, TINYGPT_MAX_CONTEXT), dtype=np.int64)
    shape = (1, *task.input_shape[1:])
    return (rng.integers(0, 256, size=shape).astype(np.float32) / np.float32(255))
