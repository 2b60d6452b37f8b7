"""Evaluation metrics for sequence models: BLEU, perplexity, exact match.

- ``corpus_bleu(candidates, references)``: Papineni et al.'s BLEU-4 over a whole test set — the
  clipped n-gram precisions (n = 1..4) summed over all sentences, their geometric mean, times the
  brevity penalty ``exp(1 - r / c)`` when the candidates are shorter than the references; in
  [0, 1] (multiply by 100 for the usual figure). ``smooth=True`` adds 1 to every count for n > 1
  (Lin & Och's smoothing 1), for sentence-level scores where a 4-gram match is often missing.
- ``perplexity(logits, targets)``: ``exp`` of the mean cross-entropy in nats, the number of choices
  the model is as unsure as; ``bits_per_token`` is the same loss in bits.

Tokens are any hashable items: characters of a string, ids, words.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np

__all__ = ["bits_per_token", "corpus_bleu", "exact_match", "perplexity", "sentence_bleu"]

Tokens = Sequence[Hashable]


def _ngrams(tokens: Tokens, n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _as_reference_lists(references: Sequence) -> list[list[Tokens]]:
    """One reference per candidate (a token sequence: a string, a list of words or ids), or
    several (a list of lists or tuples of tokens)."""
    out = []
    for ref in references:
        if isinstance(ref, list) and ref and all(isinstance(r, list | tuple) for r in ref):
            out.append(list(ref))
        else:
            out.append([ref])
    return out


def corpus_bleu(candidates: Sequence[Tokens], references: Sequence, max_n: int = 4,
                smooth: bool = False) -> float:
    """Corpus-level BLEU of ``candidates`` against ``references`` (one or more per candidate)."""
    refs = _as_reference_lists(references)
    if len(refs) != len(candidates):
        raise ValueError(f"{len(candidates)} candidates but {len(refs)} references")
    matches, totals = np.zeros(max_n), np.zeros(max_n)
    candidate_length = reference_length = 0
    for cand, options in zip(candidates, refs, strict=True):
        cand = list(cand)
        candidate_length += len(cand)
        # the reference length closest to the candidate's (the shorter one on a tie)
        reference_length += min((abs(len(r) - len(cand)), len(r)) for r in options)[1]
        for n in range(1, max_n + 1):
            counts = _ngrams(cand, n)
            best: Counter = Counter()
            for r in options:
                best |= _ngrams(list(r), n)
            matches[n - 1] += sum(min(c, best[g]) for g, c in counts.items())
            totals[n - 1] += max(len(cand) - n + 1, 0)
    if smooth:
        matches[1:] += 1
        totals[1:] += 1
    if candidate_length == 0 or np.any(matches == 0):
        return 0.0
    log_precision = float(np.mean(np.log(matches / totals)))
    brevity = 1.0 if candidate_length > reference_length else math.exp(
        1 - reference_length / candidate_length)
    return brevity * math.exp(log_precision)


def sentence_bleu(candidate: Tokens, references: Tokens | Sequence[Tokens], max_n: int = 4,
                  smooth: bool = True) -> float:
    """BLEU of one sentence (smoothed by default: one missing 4-gram would make it 0)."""
    return corpus_bleu([candidate], [references], max_n=max_n, smooth=smooth)


def exact_match(candidates: Sequence[Tokens], references: Sequence[Tokens]) -> float:
    """The fraction of candidates equal to their reference, token for token."""
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} references")
    return float(np.mean([list(c) == list(r) for c, r in zip(candidates, references,
                                                              strict=True)]))


def _mean_cross_entropy(logits: np.ndarray, targets: np.ndarray, ignore_index: int | None) -> float:
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets).reshape(-1)
    flat = logits.reshape(-1, logits.shape[-1])
    if len(flat) != len(targets):
        raise ValueError(f"{len(flat)} predictions but {len(targets)} targets")
    keep = np.ones(len(targets), dtype=bool) if ignore_index is None else targets != ignore_index
    flat, targets = flat[keep], targets[keep]
    top = flat.max(axis=-1, keepdims=True)
    log_z = np.log(np.exp(flat - top).sum(axis=-1)) + top[:, 0]
    return float(np.mean(log_z - flat[np.arange(len(targets)), targets]))


def perplexity(logits: np.ndarray | float, targets: np.ndarray | None = None,
               ignore_index: int | None = None) -> float:
    """``exp(mean cross-entropy)`` of ``logits [..., V]`` against ``targets [...]``; or, given a
    mean loss in nats alone, ``exp(loss)``. Targets equal to ``ignore_index`` (padding) don't count."""
    if targets is None:
        return float(math.exp(float(logits)))
    return float(math.exp(_mean_cross_entropy(logits, targets, ignore_index)))


def bits_per_token(logits: np.ndarray, targets: np.ndarray,
                   ignore_index: int | None = None) -> float:
    """The mean cross-entropy in bits (bits per character for a character model)."""
    return _mean_cross_entropy(logits, targets, ignore_index) / math.log(2)
