"""Padding and truncation: sequences of different lengths as one ``[N, T]`` batch and its mask.

    batch = pad_sequences([ids_a, ids_b], pad_id=0, max_length=16)
    batch.input_ids        # int64 [2, T], padded with pad_id on the right (or the left)
    batch.attention_mask   # int64 [2, T], 1 for real tokens, 0 for padding (Hugging Face's)
    batch.key_padding_mask # bool [2, T], True at padding: what nn.MultiheadAttention takes

``padding="longest"`` pads to the longest row (at most ``max_length``); ``"max_length"`` always
to ``max_length``. Rows longer than ``max_length`` are truncated (``truncation=False`` raises).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PaddedBatch", "pad_sequences"]


@dataclass
class PaddedBatch:
    input_ids: np.ndarray
    attention_mask: np.ndarray

    @property
    def key_padding_mask(self) -> np.ndarray:
        return self.attention_mask == 0

    @property
    def lengths(self) -> np.ndarray:
        return self.attention_mask.sum(axis=1)


def pad_sequences(sequences: Sequence[Sequence[int] | np.ndarray], pad_id: int, *,
                  max_length: int | None = None, padding: str = "longest",
                  truncation: bool = True, side: str = "right") -> PaddedBatch:
    """``sequences`` of token ids as one padded batch with its attention mask."""
    if padding not in ("longest", "max_length"):
        raise ValueError(f"padding must be 'longest' or 'max_length', not {padding!r}")
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', not {side!r}")
    if padding == "max_length" and max_length is None:
        raise ValueError("padding='max_length' needs max_length")
    rows = [np.asarray(s, dtype=np.int64).reshape(-1) for s in sequences]
    if not rows:
        raise ValueError("no sequences to pad")
    if max_length is not None:
        too_long = [i for i, r in enumerate(rows) if len(r) > max_length]
        if too_long and not truncation:
            raise ValueError(f"{len(too_long)} sequences are longer than max_length={max_length} "
                             f"(the first is row {too_long[0]}); pass truncation=True to cut them")
        rows = [r[:max_length] for r in rows]
    width = max_length if padding == "max_length" else max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        if side == "right":
            ids[i, :len(r)], mask[i, :len(r)] = r, 1
        elif len(r):
            ids[i, -len(r):], mask[i, -len(r):] = r, 1
    return PaddedBatch(ids, mask)
