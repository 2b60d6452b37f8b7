"""Positional encodings: where each token sits, which attention alone cannot see.

- learned: an ``nn.Embedding(context, dim)`` of positions (GPT-2; nothing new needed here);
- ``SinusoidalPositionalEncoding``: the fixed sines and cosines of "Attention Is All You Need";
- ``RotaryEmbedding`` (RoPE): rotates each pair of query/key features by an angle proportional to
  the position, so the score of two tokens depends on their distance only.

``offset`` is the position of the first token (the length of a KV cache during decoding).
"""

from __future__ import annotations

import numpy as np

from reference_models.nn.module import Module
from reference_models.tensor import Tensor, record_op

__all__ = ["RotaryEmbedding", "SinusoidalPositionalEncoding", "apply_rotary", "sinusoidal_table"]


def sinusoidal_table(length: int, dim: int, base: float = 10000.0) -> np.ndarray:
    """``[length, dim]``: even features ``sin(p / base^(2i/dim))``, odd ones the cosine."""
    if dim % 2:
        raise ValueError(f"sinusoidal encodings need an even dimension, got {dim}")
    positions = np.arange(length, dtype=np.float64)[:, None]
    frequencies = base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)
    table = np.empty((length, dim), dtype=np.float64)
    table[:, 0::2] = np.sin(positions * frequencies)
    table[:, 1::2] = np.cos(positions * frequencies)
    return table.astype(np.float32)


class SinusoidalPositionalEncoding(Module):
    """Adds the fixed sinusoidal encoding of positions ``offset..offset+T-1`` to ``[N, T, dim]``."""

    def __init__(self, dim: int, max_length: int, base: float = 10000.0) -> None:
        super().__init__()
        self.dim, self.max_length = dim, max_length
        self.register_buffer("table", sinusoidal_table(max_length, dim, base), persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        t = x.shape[-2]
        if offset + t > self.max_length:
            raise ValueError(f"positions up to {offset + t} exceed max_length {self.max_length}")
        return x + self.table[offset:offset + t]


def apply_rotary(x: Tensor, cos: np.ndarray, sin: np.ndarray) -> Tensor:
    """``x * cos + rotate_half(x) * sin`` with ``rotate_half([a, b]) = [-b, a]`` on the last axis.

    ``cos`` and ``sin`` are ``[T, dim]`` (each angle repeated for both halves). One graph op: the
    backward is the inverse rotation, ``g * cos + rotate_half^T(g * sin)``.
    """
    data = x.data
    half = data.shape[-1] // 2
    cos, sin = cos.astype(data.dtype, copy=False), sin.astype(data.dtype, copy=False)
    rotated = np.concatenate([-data[..., half:], data[..., :half]], axis=-1)
    out = data * cos + rotated * sin

    def backward(g: np.ndarray) -> tuple:
        gs = g * sin
        return (g * cos + np.concatenate([gs[..., half:], -gs[..., :half]], axis=-1),)

    return record_op(out, (x,), "rotary", backward, cos=cos, sin=sin)


class RotaryEmbedding(Module):
    """RoPE for heads of ``dim`` features over up to ``max_length`` positions (``x: [..., T, dim]``).

    Uses the "rotate half" pairing of GPT-NeoX and Llama: feature ``i`` pairs with ``i + dim/2``.
    """

    def __init__(self, dim: int, max_length: int, base: float = 10000.0) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"rotary embeddings need an even head dimension, got {dim}")
        self.dim, self.max_length, self.base = dim, max_length, base
        inv_freq = base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)
        angles = np.arange(max_length, dtype=np.float64)[:, None] * inv_freq
        angles = np.concatenate([angles, angles], axis=-1)
        self.cos, self.sin = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        t = x.shape[-2]
        if offset + t > self.max_length:
            raise ValueError(f"positions up to {offset + t} exceed max_length {self.max_length}")
        return apply_rotary(x, self.cos[offset:offset + t], self.sin[offset:offset + t])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, max_length={self.max_length}, base={self.base}"
