"""The metrics of SPEC §3 as pure functions over numpy arrays and bytes.

Nothing here runs a model: the child process feeds model outputs in, and tests feed in values they
computed themselves. Counts are returned as sums (correct, scored, cross-entropy) so the public and
private halves can be pooled exactly into the whole hidden set.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

# zlib's DEFLATE at its strongest level: what shipping the model costs. The zlib framing adds 6
# bytes over raw DEFLATE; the same for every model, so it never changes a ranking.
DEFLATE_LEVEL = 9


@dataclass
class Tally:
    """Running sums for one split: top-1 hits, scored items and (language models) cross-entropy."""

    correct: int = 0
    count: int = 0
    nll_nats: float = 0.0

    def add(self, other: Tally) -> None:
        self.correct += other.correct
        self.count += other.count
        self.nll_nats += other.nll_nats

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.count if self.count else None

    @property
    def bits_per_char(self) -> float | None:
        return self.nll_nats / self.count / math.log(2) if self.count else None

    def to_dict(self, language_model: bool) -> dict:
        return {
            "accuracy": self.accuracy,
            "bits_per_char": self.bits_per_char if language_model else None,
            "count": self.count,
        }


def classification_tally(scores: np.ndarray, labels: np.ndarray) -> Tally:
    """Top-1 hits of ``scores`` [N, C] against integer ``labels`` [N] (ties go to the lowest class)."""
    predicted = np.argmax(scores, axis=1)
    return Tally(correct=int(np.sum(predicted == labels)), count=int(labels.shape[0]))


def next_char_tally(logits: np.ndarray, targets: np.ndarray) -> Tally:
    """Top-1 hits and summed cross-entropy (nats) of ``logits`` [N, T, V] for ``targets`` [N, T]."""
    flat = logits.reshape(-1, logits.shape[-1]).astype(np.float64)
    wanted = targets.reshape(-1)
    shifted = flat - flat.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    nll = log_norm - shifted[np.arange(wanted.size), wanted]
    hits = np.argmax(flat, axis=1) == wanted
    return Tally(correct=int(hits.sum()), count=int(wanted.size), nll_nats=float(nll.sum()))


def window_count(length: int, context: int) -> int:
    """Full windows of ``context`` ids in a segment of ``length`` ids (each needs one more id as target)."""
    return max(0, (length - 1) // context)


def text_windows(segment: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """The consecutive non-overlapping windows of a segment: inputs and next-id targets, both [W, T].

    Windows start at 0, T, 2T, ...; window ``k`` reads ids ``kT .. kT+T-1`` and is scored against ids
    ``kT+1 .. kT+T``. A final window without ``T`` targets is dropped.
    """
    count = window_count(len(segment), context)
    used = count * context
    inputs = np.asarray(segment[:used], dtype=np.int64).reshape(count, context)
    targets = np.asarray(segment[1 : used + 1], dtype=np.int64).reshape(count, context)
    return inputs, targets


def window_batches(
    segments: Iterable[np.ndarray], context: int, windows_per_batch: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of (inputs, targets) windows over every segment, each segment windowed on its own."""
    for segment in segments:
        inputs, targets = text_windows(segment, context)
        for start in range(0, len(inputs), windows_per_batch):
            stop = start + windows_per_batch
            yield inputs[start:stop], targets[start:stop]


def deflate_size(model_bytes: bytes) -> int:
    """Bytes of the model after DEFLATE (zlib, level 9): pruning and quantization both shrink it."""
    return len(zlib.compress(model_bytes, DEFLATE_LEVEL))


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[np.ndarray]:
    """Every initializer (dense and sparse) of a graph and of its subgraphs, as arrays."""
    for tensor in graph.initializer:
        yield numpy_helper.to_array(tensor)
    for sparse in graph.sparse_initializer:
        values = numpy_helper.to_array(sparse.values)
        dense_size = int(np.prod(sparse.dims)) if len(sparse.dims) else 1
        # Only the stored values can be non-zero; the rest of the dense tensor is zero.
        padded = np.zeros(dense_size, dtype=values.dtype)
        padded[: values.size] = values.reshape(-1)
        yield padded
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from _graph_tensors(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for subgraph in attribute.graphs:
                    yield from _graph_tensors(subgraph)


def parameter_counts(model: onnx.ModelProto) -> tuple[int, int]:
    """Total and non-zero parameters: the elements of every initializer, whatever its dtype.

    Quantized (int8/uint8) weights count one parameter per element, like float ones; their scales
    and zero points count too, since they are stored numbers the model needs.
    """
    total = 0
    nonzero = 0
    for array in _graph_tensors(model.graph):
        total += int(array.size)
        nonzero += int(np.count_nonzero(array))
    return total, nonzero
