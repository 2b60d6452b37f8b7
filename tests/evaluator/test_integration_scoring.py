"""Score real models on the real hidden sets (MNIST, CIFAR-10, Tiny Shakespeare).

The models are fitted here in a few seconds with numpy (ridge regression, bigram counts) so they are
far better than chance; the expected metrics are computed here with numpy from the same weights.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from evaluator.datasets import as_model_input, dataset_sha256, load_hidden, load_train
from evaluator.latency import LatencyProtocol
from evaluator.scoring import score
from tests.evaluator.scoring_helpers import (
    IR_VERSION,
    OPSET,
    VOCAB,
    bigram_model,
    linear_image_model,
)

pytestmark = pytest.mark.integration
QUICK = LatencyProtocol.quick()


def _ridge(features: np.ndarray, labels: np.ndarray, penalty: float) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares one-hot classifier: weight [10, F] and bias [10]."""
    x = np.hstack([features.astype(np.float64), np.ones((len(features), 1))])
    targets = np.eye(10)[labels]
    solution = np.linalg.solve(x.T @ x + penalty * np.eye(x.shape[1]), x.T @ targets)
    return solution[:-1].T.astype(np.float32), solution[-1].astype(np.float32)


def _check_image_card(card: dict, task: str, data_dir, predict) -> None:
    assert card["valid"], card["error"]
    assert card["provenance"]["dataset_sha256"] == dataset_sha256(task, data_dir)
    for half in ("public", "private"):
        hidden = load_hidden(task, half, data_dir)
        predicted = predict(as_model_input(task, np.asarray(hidden.inputs)))
        expected = float(np.mean(predicted == hidden.labels))
        assert card["splits"][half]["count"] == len(hidden.labels) == 5000
        # onnxruntime and numpy sum in different orders: allow two near-tie images to flip.
        assert card["splits"][half]["accuracy"] == pytest.approx(expected, abs=2 / 5000)
    for key in ("latency_ms", "speed_index", "throughput", "peak_memory_mb"):
        assert card[key] > 0, key


def test_linear_model_on_real_mnist(prepared_mnist_dir):
    images, labels = load_train("mnist", prepared_mnist_dir)
    images, labels = images[:20000], labels[:20000]  # enough for ~0.85, and quick
    features = as_model_input("mnist", images).reshape(len(images), -1)
    weight, bias = _ridge(features, labels, penalty=1.0)
    card = score(linear_image_model("mnist", weight, bias), "mnist", data_dir=prepared_mnist_dir,
                 protocol=QUICK)
    _check_image_card(card, "mnist", prepared_mnist_dir,
                      lambda x: np.argmax(x.reshape(len(x), -1) @ weight.T + bias, axis=1))
    assert card["accuracy"] > 0.8  # ridge regression on pixels reaches about 0.86


def _pooled_cifar_model(weight: np.ndarray, bias: np.ndarray) -> bytes:
    """4x4 average pooling (3x8x8 features) then a linear layer."""
    nodes = [
        helper.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "W", "b"], ["scores"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "pooled_linear",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, ir_version=IR_VERSION,
                              opset_imports=[helper.make_opsetid("", OPSET)])
    return model.SerializeToString()


def _pool(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), 3, 8, 4, 8, 4).mean(axis=(3, 5)).reshape(len(x), -1)


def test_pooled_linear_model_on_real_cifar10(prepared_data_dir):
    images, labels = load_train("cifar10", prepared_data_dir)
    weight, bias = _ridge(_pool(as_model_input("cifar10", images[:20000])), labels[:20000], 1.0)
    card = score(_pooled_cifar_model(weight, bias), "cifar10", data_dir=prepared_data_dir,
                 protocol=QUICK)
    _check_image_card(card, "cifar10", prepared_data_dir,
                      lambda x: np.argmax(_pool(x) @ weight.T + bias, axis=1))
    assert card["accuracy"] > 0.25  # chance is 0.10


def test_bigram_model_on_real_tiny_shakespeare(prepared_data_dir):
    train_ids, _ = load_train("tinygpt", prepared_data_dir)
    counts = np.ones((VOCAB, VOCAB))
    np.add.at(counts, (train_ids[:-1], train_ids[1:]), 1)
    table = np.log(counts / counts.sum(axis=1, keepdims=True)).astype(np.float32)
    context = 128
    card = score(bigram_model(table, context), "tinygpt", data_dir=prepared_data_dir,
                 protocol=QUICK)
    assert card["valid"], card["error"]
    assert card["context_length"] == context
    log_probs = table.astype(np.float64) - np.log(np.exp(table.astype(np.float64)).sum(axis=1,
                                                                                      keepdims=True))
    for half in ("public", "private"):
        nll, hits, count = 0.0, 0, 0
        for segment in load_hidden("tinygpt", half, prepared_data_dir).segments:
            used = (len(segment) - 1) // context * context  # whole windows only
            current, following = np.asarray(segment[:used]), np.asarray(segment[1 : used + 1])
            nll -= log_probs[current, following].sum()
            hits += int(np.sum(np.argmax(table, axis=1)[current] == following))
            count += used
        result = card["splits"][half]
        assert result["count"] == count
        assert result["bits_per_char"] == pytest.approx(nll / count / math.log(2), rel=1e-5)
        assert result["accuracy"] == pytest.approx(hits / count)
    assert 3.0 < card["bits_per_char"] < 3.8  # a character bigram model of Shakespeare
