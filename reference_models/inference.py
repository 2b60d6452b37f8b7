"""Serving-side helpers: dynamic batching for inference, and model ensembles.

- ``batched_predict(fn, sequences, ...)``: many variable-length inputs through a model in batches
  of similar lengths (sorted by length, so little padding), bounded by ``max_batch_size`` rows and
  ``max_tokens`` padded tokens; the outputs come back in the input order.
- ``DynamicBatcher(fn)``: requests from several threads are gathered for up to ``max_wait_ms``
  (or until ``max_batch_size`` are waiting) and run as ONE batch; each caller gets its own row.
  One batched forward costs much less than the same rows one at a time (BLAS works on whole
  matrices, and the per-op overhead is paid once).
- ``Ensemble(models)``: one module whose output is the mean of its members' logits
  (``mode="logits"``) or the log of their mean probabilities (``mode="probs"``); it exports to ONE
  ONNX graph holding every member.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import numpy as np

from reference_models.autograd import no_grad
from reference_models.nn.layers import ModuleList
from reference_models.nn.module import Module
from reference_models.tensor import Tensor, log

__all__ = ["DynamicBatcher", "Ensemble", "batched_predict"]

Batch = Callable[[np.ndarray], np.ndarray]


def _run(fn: Batch | Module, batch: np.ndarray) -> np.ndarray:
    with no_grad():
        out = fn(Tensor(batch)) if isinstance(fn, Module) else fn(batch)
    return np.asarray(out.data if isinstance(out, Tensor) else out)


def batched_predict(fn: Batch | Module, sequences: Sequence[Sequence[int] | np.ndarray],
                    max_batch_size: int = 64, max_tokens: int | None = None,
                    pad_id: int = 0) -> list[np.ndarray]:
    """``fn`` (a model, or a function of an int64 ``[N, T]`` batch) on every sequence; row ``i``
    of the result belongs to ``sequences[i]`` (per-token outputs ``[N, T, ...]`` are cut to its
    length)."""
    if max_batch_size < 1:
        raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
    rows = [np.asarray(s, dtype=np.int64).reshape(-1) for s in sequences]
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    results: list[np.ndarray | None] = [None] * len(rows)
    start = 0
    while start < len(order):
        end = start + 1
        while end < len(order) and end - start < max_batch_size and (
                max_tokens is None or (end + 1 - start) * len(rows[order[end]]) <= max_tokens):
            end += 1
        chosen = order[start:end]
        width = max(len(rows[i]) for i in chosen)
        batch = np.full((len(chosen), width), pad_id, dtype=np.int64)
        for r, i in enumerate(chosen):
            batch[r, :len(rows[i])] = rows[i]
        out = _run(fn, batch)
        for r, i in enumerate(chosen):
            row = out[r]
            results[i] = row[:len(rows[i])] if row.ndim >= 1 and out.ndim >= 3 else row
        start = end
    return results  # type: ignore[return-value]


class DynamicBatcher:
    """Gather concurrent single requests into batches: ``batcher(x)`` blocks until ``x``'s row
    of ``fn(batch)`` is ready; ``submit(x)`` returns a ``Future``. Inputs of one batch must have
    the same shape. Use as a context manager (or call ``close()``) to stop the worker thread."""

    def __init__(self, fn: Batch | Module, max_batch_size: int = 32,
                 max_wait_ms: float = 5.0) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        self.fn, self.max_batch_size, self.max_wait = fn, max_batch_size, max_wait_ms / 1000
        self.batch_sizes: list[int] = []  # the size of every batch run, for inspection
        self._queue: queue.Queue = queue.Queue()
        self._closed = False
        self._worker = threading.Thread(target=self._serve, name="dynamic-batcher", daemon=True)
        self._worker.start()

    def submit(self, x: np.ndarray) -> Future:
        if self._closed:
            raise RuntimeError("this DynamicBatcher is closed")
        future: Future = Future()
        self._queue.put((np.asarray(x), future))
        return future

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.submit(x).result()

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            pending = [item]
            try:
                while len(pending) < self.max_batch_size:
                    nxt = self._queue.get(timeout=self.max_wait)
                    if nxt is None:
                        self._queue.put(None)  # stop after this batch
                        break
                    pending.append(nxt)
            except queue.Empty:
                pass
            self._answer(pending)

    def _answer(self, pending: list[tuple[np.ndarray, Future]]) -> None:
        try:
            out = _run(self.fn, np.stack([x for x, _ in pending]))
        except Exception as error:  # every waiting caller learns why
            for _, future in pending:
                future.set_exception(error)
            return
        self.batch_sizes.append(len(pending))
        for row, (_, future) in zip(out, pending, strict=True):
            future.set_result(row)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._worker.join()

    def __enter__(self) -> DynamicBatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Ensemble(Module):
    """The members' average: of their logits (``"logits"``), or ``log`` of the mean of their
    softmax probabilities (``"probs"``, still usable as logits: argmax and softmax agree).
    ``weights`` (summing to 1) weigh the members; equal by default."""

    def __init__(self, models: Sequence[Module], mode: str = "logits",
                 weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        if mode not in ("logits", "probs"):
            raise ValueError(f"mode must be 'logits' or 'probs', not {mode!r}")
        weights = [1.0 / len(models)] * len(models) if weights is None else list(weights)
        if len(weights) != len(models) or abs(sum(weights) - 1.0) > 1e-6:
            raise ValueError("weights must give one number per model and sum to 1")
        self.members = ModuleList(models)
        self.mode, self.weights = mode, weights

    def forward(self, x: Tensor) -> Tensor:
        total = None
        for member, weight in zip(self.members, self.weights, strict=True):
            out = member(x)
            if self.mode == "probs":
                out = out.softmax(dim=-1)
            term = out * weight
            total = term if total is None else total + term
        return log(total) if self.mode == "probs" else total
