"""Decoding an encoder-decoder: greedy search and beam search with a length penalty and EOS.

Both work with any model that has

    memory = model.encode(src)                  # src: int64 [N, S] -> [N, S, E]
    logits = model.decode(tgt, memory, src)     # tgt: int64 [N, T] (starts with BOS) -> [N, T, V]

(``Seq2SeqTransformer`` in ``reference_models.seq2seq``): the source is encoded once, then each step
runs the decoder on the prefix so far and reads the last position's next-token distribution.

- ``greedy_decode`` takes the most likely token at every step;
- ``beam_search`` keeps the ``beam_size`` best prefixes by total log-probability. A prefix that
  emits ``eos_id`` is finished; finished hypotheses are ranked by ``log p / length **
  length_penalty`` (``length_penalty=0``: raw log-probability, which favours short outputs; 1:
  the mean per token). The search of a sentence stops once ``beam_size`` hypotheses are finished
  (``early_stopping=True``, the default, as Hugging Face's ``early_stopping=True``), or with
  ``early_stopping=False`` once no live prefix can still beat the worst of them; at the latest after
  ``max_length`` tokens. ``beam_size=1`` is exactly greedy search.

Outputs are lists of token ids without BOS and without EOS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reference_models.autograd import no_grad
from reference_models.tensor import Tensor

__all__ = ["Hypothesis", "beam_search", "greedy_decode"]


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    top = logits.max(axis=-1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))


def _next_log_probs(model, tokens: np.ndarray, memory: Tensor, src: np.ndarray) -> np.ndarray:
    return _log_softmax(model.decode(Tensor(tokens), memory, src).data[:, -1])


def _encode(model, src) -> tuple[np.ndarray, Tensor]:
    src = np.asarray(src.data if isinstance(src, Tensor) else src, dtype=np.int64)
    if src.ndim != 2:
        raise ValueError(f"src must be int64 [N, S] token ids, got shape {list(src.shape)}")
    return src, model.encode(Tensor(src))


def greedy_decode(model, src, bos_id: int, eos_id: int, max_length: int) -> list[list[int]]:
    """The most likely token at each step, for every row of ``src``, until EOS or ``max_length``."""
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            src, memory = _encode(model, src)
            tokens = np.full((len(src), 1), bos_id, dtype=np.int64)
            done = np.zeros(len(src), dtype=bool)
            for _ in range(max_length):
                nxt = _next_log_probs(model, tokens, memory, src).argmax(axis=-1)
                nxt = np.where(done, eos_id, nxt)
                tokens = np.concatenate([tokens, nxt[:, None]], axis=1)
                done |= nxt == eos_id
                if done.all():
                    break
    finally:
        model.train(was_training)
    return [_strip(row[1:], eos_id) for row in tokens.tolist()]


def _strip(row: list[int], eos_id: int) -> list[int]:
    return row[:row.index(eos_id)] if eos_id in row else row


@dataclass(order=True)
class Hypothesis:
    """A finished output: its length-normalized score, total log-probability and tokens."""

    score: float
    log_prob: float = field(compare=False)
    tokens: list[int] = field(compare=False)


def _normalized(log_prob: float, length: int, length_penalty: float) -> float:
    return log_prob / (max(length, 1) ** length_penalty)


def beam_search(model, src, bos_id: int, eos_id: int, max_length: int, beam_size: int = 4,
                length_penalty: float = 1.0, early_stopping: bool = True,
                return_hypotheses: bool = False):
    """The best output of a beam search for every row of ``src`` (``return_hypotheses``: every
    finished ``Hypothesis`` of each row, best first)."""
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            src, memory = _encode(model, src)
            results = _beam_search(model, src, memory, bos_id, eos_id, max_length, beam_size,
                                   length_penalty, early_stopping)
    finally:
        model.train(was_training)
    if return_hypotheses:
        return results
    return [hyps[0].tokens for hyps in results]


def _beam_search(model, src, memory, bos_id, eos_id, max_length, k, length_penalty,
                 early_stopping):
    n = len(src)
    rows = np.repeat(np.arange(n), k)  # every sentence's k beams, side by side
    memory = Tensor(memory.data[rows])
    src_beams = src[rows]
    tokens = np.full((n * k, 1), bos_id, dtype=np.int64)
    scores = np.full((n, k), -np.inf)
    scores[:, 0] = 0.0  # at the start the k beams are one and the same: expand only the first
    finished: list[list[Hypothesis]] = [[] for _ in range(n)]
    done = np.zeros(n, dtype=bool)
    for step in range(1, max_length + 1):
        log_probs = _next_log_probs(model, tokens, memory, src_beams)
        vocab = log_probs.shape[-1]
        candidates = (scores[:, :, None] + log_probs.reshape(n, k, vocab)).reshape(n, k * vocab)
        order = np.argsort(-candidates, axis=-1, kind="stable")[:, :2 * k]
        new_tokens = np.empty((n, k, step + 1), dtype=np.int64)
        new_scores = np.full((n, k), -np.inf)
        previous = tokens.reshape(n, k, step)
        for i in range(n):
            if done[i]:
                new_tokens[i] = np.concatenate([previous[i], np.full((k, 1), eos_id)], axis=1)
                continue
            kept = 0
            for rank, flat in enumerate(order[i]):
                score = candidates[i, flat]
                if not np.isfinite(score):
                    break
                beam, token = divmod(int(flat), vocab)
                if token == eos_id:
                    if rank < k:  # only an EOS among the k best ends a hypothesis
                        output = previous[i, beam, 1:].tolist()
                        finished[i].append(Hypothesis(
                            _normalized(score, len(output) + 1, length_penalty), float(score),
                            output))
                    continue
                new_tokens[i, kept, :step] = previous[i, beam]
                new_tokens[i, kept, step] = token
                new_scores[i, kept] = score
                kept += 1
                if kept == k:
                    break
            for empty in range(kept, k):  # fewer live candidates than beams: pad with dead ones
                new_tokens[i, empty] = np.concatenate([previous[i, 0], [eos_id]])
            done[i] = _finished(finished[i], new_scores[i], step, max_length, k, length_penalty,
                                early_stopping)
        tokens, scores = new_tokens.reshape(n * k, step + 1), new_scores
        if done.all():
            break
    for i in range(n):
        if not finished[i]:  # nothing reached EOS within max_length: the live beams compete
            for beam in range(k):
                if np.isfinite(scores[i, beam]):
                    output = tokens.reshape(n, k, -1)[i, beam, 1:].tolist()
                    finished[i].append(Hypothesis(
                        _normalized(scores[i, beam], len(output), length_penalty),
                        float(scores[i, beam]), output))
        finished[i].sort(reverse=True)
    return finished


def _finished(hyps: list[Hypothesis], live: np.ndarray, step: int, max_length: int, k: int,
              length_penalty: float, early_stopping: bool) -> bool:
    """True when ``k`` hypotheses are finished (early stopping) or no live beam can beat the worst
    of them any more."""
    if len(hyps) < k:
        return not np.isfinite(live).any()
    if early_stopping:
        return True
    best_live = float(live.max())
    if not np.isfinite(best_live):
        return True
    # log-probabilities only fall, so a live beam's best future score is its score now divided
    # by the largest length penalty it can still reach (the longest length when the score < 0)
    length = max_length + 1 if length_penalty > 0 else step + 1
    worst = sorted(hyps, reverse=True)[k - 1].score
    return worst >= _normalized(best_live, length, length_penalty)
