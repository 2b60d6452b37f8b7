"""Metrics against values computed independently here, with plain numpy and python loops."""

from __future__ import annotations

import math
import zlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from evaluator.datasets import as_model_input, load_hidden
from evaluator.latency import LatencyProtocol
from evaluator.metrics import (
    classification_tally,
    deflate_size,
    next_char_tally,
    parameter_counts,
    text_windows,
)
from evaluator.scoring import score
from tests.evaluator.scoring_helpers import (
    VOCAB,
    bigram_model,
    initializer_arrays,
    linear_image_model,
)

QUICK = LatencyProtocol.quick()


def _log_softmax_rows(rows: np.ndarray) -> list[list[float]]:
    out = []
    for row in rows.tolist():
        top = max(row)
        norm = top + math.log(sum(math.exp(v - top) for v in row))
        out.append([v - norm for v in row])
    return out


def test_classification_tally_counts_top1_hits():
    scores = np.array([[0.1, 0.9, 0.0], [2.0, 1.0, 0.5], [0.0, 0.0, 3.0], [1.0, 5.0, 0.0]])
    labels = np.array([1, 0, 1, 0])
    tally = classification_tally(scores, labels)
    assert (tally.correct, tally.count) == (2, 4)
    assert tally.accuracy == 0.5


def test_next_char_tally_matches_hand_computed_cross_entropy():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 3, 5)).astype(np.float32)
    targets = rng.integers(0, 5, (2, 3))
    expected_nll, expected_hits = 0.0, 0
    for n in range(2):
        log_probs = _log_softmax_rows(logits[n].astype(np.float64))
        for t in range(3):
            expected_nll -= log_probs[t][targets[n, t]]
            expected_hits += int(np.argmax(logits[n, t]) == targets[n, t])
    tally = next_char_tally(logits, targets)
    assert tally.count == 6 and tally.correct == expected_hits
    assert tally.nll_nats == pytest.approx(expected_nll, rel=1e-9)
    assert tally.bits_per_char == pytest.approx(expected_nll / 6 / math.log(2), rel=1e-9)


def test_windows_start_at_multiples_of_T_and_drop_the_partial_one():
    segment = np.arange(11)  # ids 0..10: windows 0-2, 3-5, 6-8 (targets up to 9); 9,10 left over
    inputs, targets = text_windows(segment, 3)
    assert inputs.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert targets.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    # Exactly T+1 ids make one window; T ids make none (no target for the last one).
    assert len(text_windows(np.arange(4), 3)[0]) == 1
    assert len(text_windows(np.arange(3), 3)[0]) == 0


def test_deflate_size_is_zlib_level_9_length():
    data = bytes(range(256)) * 40 + b"\0" * 10_000
    stream = zlib.compressobj(level=9)
    expected = len(stream.compress(data) + stream.flush())
    assert deflate_size(data) == expected < len(data)


def test_parameter_counts_include_quantized_and_sparse_initializers():
    weight = np.zeros((4, 5), np.float32)
    weight[0, :3] = 1.0
    quantized = np.array([0, 3, -2, 0, 0, 7], np.int8)
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([2.5, 0.0], np.float32), "s"),
        numpy_helper.from_array(np.array([1, 6], np.int64), "s_idx"),
        [3, 3],
    )
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(quantized, "q")],
        sparse_initializer=[sparse],
    )
    total, nonzero = parameter_counts(helper.make_model(graph))
    assert total == 20 + 6 + 9
    assert nonzero == 3 + 3 + 1


def _image_model(task: str, seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = 784 if task == "mnist" else 3072
    weight = rng.standard_normal((10, features)).astype(np.float32)
    weight[:, ::3] = 0.0  # some pruned weights, so non-zero differs from total
    bias = rng.standard_normal(10).astype(np.float32)
    return linear_image_model(task, weight, bias), weight, bias


@pytest.mark.parametrize("task", ["mnist", "cifar10"])
def test_scored_image_metrics_match_numpy(task, tiny_data_dir):
    model, weight, bias = _image_model(task, seed=1)
    card = score(model, task, data_dir=tiny_data_dir, protocol=QUICK, timeout_s=60)
    assert card["valid"], card["error"]
    hits = {}
    for half in ("public", "private"):
        hidden = load_hidden(task, half, tiny_data_dir)
        x = as_model_input(task, hidden.inputs).reshape(len(hidden.labels), -1).astype(np.float64)
        predicted = np.argmax(x @ weight.T.astype(np.float64) + bias, axis=1)
        hits[half] = (int(np.sum(predicted == hidden.labels)), len(hidden.labels))
        assert card["splits"][half]["count"] == hits[half][1]
        assert card["splits"][half]["accuracy"] == pytest.approx(hits[half][0] / hits[half][1])
        assert card["splits"][half]["bits_per_char"] is None
    total = sum(h[0] for h in hits.values()) / sum(h[1] for h in hits.values())
    assert card["accuracy"] == pytest.approx(total)
    assert card["bits_per_char"] is None
    stream = zlib.compressobj(level=9)
    assert card["size_bytes"] == len(stream.compress(model) + stream.flush())
    assert card["raw_bytes"] == len(model)
    arrays = initializer_arrays(model)
    assert card["params"] == sum(a.size for a in arrays)
    assert card["nonzero_params"] == sum(int((a != 0).sum()) for a in arrays) < card["params"]


def _expected_text_metrics(table: np.ndarray, segments, context: int) -> tuple[int, int, float]:
    """Hits, scored positions and summed cross-entropy (nats), windowing each segment here."""
    log_probs = np.asarray(_log_softmax_rows(table.astype(np.float64)))
    hits = count = 0
    nll = 0.0
    for segment in segments:
        ids = [int(i) for i in segment]
        start = 0
        while start + context + 1 <= len(ids):  # a window needs T inputs and T next-id targets
            for position in range(start, start + context):
                current, following = ids[position], ids[position + 1]
                nll -= log_probs[current, following]
                hits += int(np.argmax(table[current]) == following)
                count += 1
            start += context
    return hits, count, nll


@pytest.mark.parametrize("context", [7, "T"])
def test_scored_bits_per_char_match_windows_computed_here(context, tiny_data_dir):
    rng = np.random.default_rng(2)
    table = rng.standard_normal((VOCAB, VOCAB)).astype(np.float32) * 2
    card = score(bigram_model(table, context), "tinygpt", data_dir=tiny_data_dir, protocol=QUICK,
                 timeout_s=60)
    assert card["valid"], card["error"]
    window = 7 if context == 7 else 256  # a dynamic context is read in windows of 256
    assert card["context_length"] == window
    totals = [0, 0, 0.0]
    for half in ("public", "private"):
        segments = load_hidden("tinygpt", half, tiny_data_dir).segments
        hits, count, nll = _expected_text_metrics(table, segments, window)
        # The partial window at each segment's end was dropped: fewer positions than characters.
        assert count < sum(len(s) - 1 for s in segments)
        result = card["splits"][half]
        assert result["count"] == count
        assert result["accuracy"] == pytest.approx(hits / count)
        assert result["bits_per_char"] == pytest.approx(nll / count / math.log(2), rel=1e-6)
        totals = [totals[0] + hits, totals[1] + count, totals[2] + nll]
    assert card["accuracy"] == pytest.approx(totals[0] / totals[1])
    assert card["bits_per_char"] == pytest.approx(totals[2] / totals[1] / math.log(2), rel=1e-6)


def test_deflate_rewards_pruning(tiny_data_dir):
    dense, weight, bias = _image_model("mnist", seed=4)
    weight[:, ::2] = 0.0
    pruned = linear_image_model("mnist", weight, bias)
    assert len(pruned) == len(dense)  # same raw size ...
    assert deflate_size(pruned) < deflate_size(dense)  # ... smaller to ship


def test_parameter_counts_walk_subgraphs():
    inner = helper.make_graph(
        [helper.make_node("Add", ["x", "k"], ["y"])], "body", [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [numpy_helper.from_array(np.array([1.0, 0.0], np.float32), "k")],
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=inner, else_branch=inner)], "g",
        [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    assert parameter_counts(onnx.helper.make_model(graph)) == (4, 2)
