"""Positional encodings: where each token sits, which attention alone cannot see.

- learned: an ``nn.Embedding(context, dim)`` of positions (GPT-2; nothing new needed here);
- ``SinusoidalPositionalEncoding``: the fixed sines and cosines of "Attention Is All You Need";
- ``RotaryEmbedding`` (RoPE): rotates each pair of query/key features by an angle proportional to
  the position, so the score of two tokens depends on their distance only;
- ``ALiBi``: no embedding at all, a fixed penalty ``-slope_h * |i - j|`` added to the scores of head
  ``h`` (Press et al.), so attention fades with distance and longer contexts extrapolate;
- ``RelativePositionBias``: T5's learned bias per head for the (bucketed) distance ``j - i``.

The last two are float attention masks ``[heads, L, S]``: pass them as ``attn_mask`` (they add to
the scores; the learned one gets its gradient through the attention op).

``offset`` is the position of the first token (the length of a KV cache during decoding).
"""

from __future__ import annotations

import numpy as np

from reference_models.nn.layers import Embedding
from reference_models.nn.module import Module
from reference_models.tensor import Tensor, record_op

__all__ = ["ALiBi", "RelativePositionBias", "RotaryEmbedding", "SinusoidalPositionalEncoding",
           "alibi_slopes", "apply_rotary", "relative_position_buckets", "sinusoidal_table"]


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


def alibi_slopes(num_heads: int) -> np.ndarray:
    """The geometric slopes of ALiBi: ``2^(-8/H), 2^(-16/H), ...`` for ``H`` a power of two; other
    counts take the slopes of the power of two below and every other one of the next (the paper's)."""
    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    if num_heads < 1:
        raise ValueError(f"ALiBi needs at least one head, got {num_heads}")
    below = 2 ** int(np.floor(np.log2(num_heads)))
    slopes = power_of_two(below)
    if below != num_heads:
        slopes += power_of_two(2 * below)[0::2][:num_heads - below]
    return np.asarray(slopes, dtype=np.float32)


class ALiBi(Module):
    """Attention with linear biases: ``bias[h, i, j] = -slope_h * |pos_i - pos_j|`` (no parameters).

    ``alibi(L, S)`` is the ``[heads, L, S]`` float mask for ``L`` queries at positions
    ``offset..offset+L-1`` over ``S`` keys at ``0..S-1``; ``causal=True`` also forbids later keys.
    """

    def __init__(self, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.slopes = alibi_slopes(num_heads)

    def forward(self, query_length: int, key_length: int, offset: int = 0,
                causal: bool = False) -> Tensor:
        queries = np.arange(offset, offset + query_length)[:, None]
        distance = np.abs(queries - np.arange(key_length)[None, :]).astype(np.float32)
        bias = -self.slopes[:, None, None] * distance
        if causal:
            bias = np.where(np.arange(key_length)[None, :] <= queries, bias, -np.inf)
        return Tensor(bias.astype(np.float32))

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}"


def relative_position_buckets(relative: np.ndarray, bidirectional: bool = True,
                              num_buckets: int = 32, max_distance: int = 128) -> np.ndarray:
    """T5's buckets of ``relative = key_position - query_position``: exact for small distances,
    logarithmic up to ``max_distance``, one bucket beyond; both directions apart if bidirectional."""
    buckets = np.zeros(relative.shape, dtype=np.int64)
    n = -relative
    if bidirectional:
        num_buckets //= 2
        buckets += (n < 0).astype(np.int64) * num_buckets
        n = np.abs(n)
    else:
        n = np.maximum(n, 0)
    exact = num_buckets // 2
    with np.errstate(divide="ignore"):
        large = exact + (np.log(np.maximum(n, 1) / exact) / np.log(max_distance / exact)
                         * (num_buckets - exact)).astype(np.int64)
    large = np.minimum(large, num_buckets - 1)
    return buckets + np.where(n < exact, n, large)


class RelativePositionBias(Module):
    """T5's learned relative position bias: one scalar per head and distance bucket.

    ``bias(L, S)`` is a ``[heads, L, S]`` tensor with gradient; the parameter is
    ``relative_attention_bias.weight`` ``[num_buckets, heads]`` (T5's name).
    """

    def __init__(self, num_heads: int, num_buckets: int = 32, max_distance: int = 128,
                 bidirectional: bool = True) -> None:
        super().__init__()
        self.num_heads, self.num_buckets = num_heads, num_buckets
        self.max_distance, self.bidirectional = max_distance, bidirectional
        self.relative_attention_bias = Embedding(num_buckets, num_heads)

    def forward(self, query_length: int, key_length: int, offset: int = 0) -> Tensor:
        queries = np.arange(offset, offset + query_length)[:, None]
        relative = np.arange(key_length)[None, :] - queries
        buckets = relative_position_buckets(relative, self.bidirectional, self.num_buckets,
                                            self.max_distance)
        return self.relative_attention_bias(buckets).permute(2, 0, 1)  # [L, S, H] -> [H, L, S]

    def extra_repr(self) -> str:
        return (f"num_heads={self.num_heads}, num_buckets={self.num_buckets}, "
                f"max_distance={self.max_distance}, bidirectional={self.bidirectional}")
