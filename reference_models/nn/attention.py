"""Attention modules: causal self-attention, multi-head and grouped-query attention, a KV cache.

They are built on ``F.scaled_dot_product_attention`` (in ``nn.functional``, imported one way, as in
PyTorch), which mirrors ``torch.nn.functional.scaled_dot_product_attention``:

- ``is_causal=True``: query ``i`` sees keys ``0..i`` (the top-left aligned lower triangle, as in
  PyTorch);
- a boolean ``attn_mask``: ``True`` marks the key positions a query may attend to;
- a float ``attn_mask``: added to the scores (``-inf`` forbids a position).

Masking is exact: a forbidden score becomes ``-inf`` before the softmax, so it gets weight exactly 0
and every allowed score keeps its value. (Adding a large negative number to *all* scores, or
multiplying the scores by the mask, is the classic bug: it leaves the softmax nearly uniform.) A
query whose keys are all forbidden gets zero weights and a zero output instead of NaN.

The op is one graph node with a hand-written backward; the attention weights of the forward are
kept for it, so memory grows with ``batch x heads x T x T``.
"""

from __future__ import annotations

import numpy as np

from reference_models.nn import functional as F
from reference_models.nn import init
from reference_models.nn.layers import Linear
from reference_models.nn.module import Module, Parameter
from reference_models.tensor import Tensor, as_tensor, cat, record_op, where

__all__ = ["CausalSelfAttention", "KVCache", "MultiheadAttention", "attention_weights", "merge_heads",
           "split_heads"]

def split_heads(x: Tensor, heads: int) -> Tensor:
    """``[N, T, H * E]`` -> ``[N, H, T, E]`` (a view); one op, so export keeps ``T`` dynamic."""
    n, t, width = x.shape
    if width % heads:
        raise ValueError(f"{width} features do not split into {heads} heads")
    out = x.data.reshape(n, t, heads, width // heads).transpose(0, 2, 1, 3)
    return record_op(out, (x,), "split_heads",
                     lambda g: (g.transpose(0, 2, 1, 3).reshape(n, t, width),), heads=heads)


def merge_heads(x: Tensor) -> Tensor:
    """``[N, H, T, E]`` -> ``[N, T, H * E]``, the inverse of ``split_heads``."""
    n, heads, t, e = x.shape
    out = x.data.transpose(0, 2, 1, 3).reshape(n, t, heads * e)
    return record_op(out, (x,), "merge_heads",
                     lambda g: (g.reshape(n, t, heads, e).transpose(0, 2, 1, 3),), width=heads * e)


# ===================================================================== KV cache
class _LayerCache:
    """The keys and values one attention layer has seen so far, ``[N, H_kv, S, E]`` each."""

    def __init__(self) -> None:
        self.key: Tensor | None = None
        self.value: Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.key is None else self.key.shape[-2]

    def update(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Append the new keys and values; return all of them."""
        if self.key is None:
            self.key, self.value = key, value
        else:
            self.key, self.value = cat([self.key, key], dim=-2), cat([self.value, value], dim=-2)
        return self.key, self.value


class KVCache:
    """Keys and values of every layer, for incremental decoding: feed only the new tokens.

    ``cache[i]`` is layer ``i``'s store; ``cache.length`` is how many positions it holds. Outputs
    equal a full recomputation as long as the whole sequence fits the model's context.
    """

    def __init__(self, num_layers: int) -> None:
        self.layers = [_LayerCache() for _ in range(num_layers)]

    def __getitem__(self, index: int) -> _LayerCache:
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def length(self) -> int:
        return self.layers[0].length if self.layers else 0

    def nbytes(self) -> int:
        return sum(t.data.nbytes for layer in self.layers for t in (layer.key, layer.value)
                   if t is not None)


# ===================================================================== modules
class CausalSelfAttention(Module):
    """Masked multi-head self-attention of a GPT block, with grouped-query attention and RoPE.

    One projection ``c_attn`` makes the queries (``num_heads`` heads) and the keys and values
    (``num_kv_heads`` heads each; fewer than ``num_heads`` is grouped-query attention, 1 is
    multi-query attention); ``c_proj`` mixes the heads' outputs. ``rotary`` (a
    ``RotaryEmbedding``) rotates queries and keys by their positions.
    """

    def __init__(self, embed_dim: int, num_heads: int, num_kv_heads: int | None = None,
                 bias: bool = True, dropout: float = 0.0, rotary: Module | None = None) -> None:
        super().__init__()
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if embed_dim % num_heads or num_heads % num_kv_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be a multiple of num_heads "
                             f"({num_heads}), and num_heads of num_kv_heads ({num_kv_heads})")
        self.embed_dim, self.num_heads, self.num_kv_heads = embed_dim, num_heads, num_kv_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        kv_dim = num_kv_heads * self.head_dim
        self.c_attn = Linear(embed_dim, embed_dim + 2 * kv_dim, bias=bias)
        self.c_proj = Linear(embed_dim, embed_dim, bias=bias)
        self.rotary = rotary
        self.keep_attention_weights = False  # set by ``attention_maps``
        self.attention_weights: np.ndarray | None = None

    def forward(self, x: Tensor, cache: _LayerCache | None = None) -> Tensor:
        t = x.shape[1]
        d, kv_dim = self.embed_dim, self.num_kv_heads * self.head_dim
        qkv = self.c_attn(x)
        q = split_heads(qkv[..., :d], self.num_heads)
        k = split_heads(qkv[..., d:d + kv_dim], self.num_kv_heads)
        v = split_heads(qkv[..., d + kv_dim:], self.num_kv_heads)
        past = 0 if cache is None else cache.length
        if self.rotary is not None:
            q, k = self.rotary(q, past), self.rotary(k, past)
        if cache is not None:
            k, v = cache.update(k, v)
        mask, causal = None, True
        if past:  # new queries sit after the cached keys: the triangle is shifted
            mask, causal = (None, False) if t == 1 else (F.causal_mask(t, past + t, past), False)
        if self.keep_attention_weights:
            self.attention_weights = attention_weights(q.data, k.data, mask, causal)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal,
            dropout_p=self.dropout if self.training else 0.0,
            enable_gqa=self.num_kv_heads != self.num_heads)
        return self.c_proj(merge_heads(y))

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"num_kv_heads={self.num_kv_heads}")


class MultiheadAttention(Module):
    """``torch.nn.MultiheadAttention`` with ``batch_first=True``: same parameters and masks.

    As in PyTorch (and unlike ``scaled_dot_product_attention``), a boolean ``attn_mask`` or
    ``key_padding_mask`` marks with ``True`` the positions that may NOT be attended to.
    ``need_weights=True`` also returns the weights averaged over heads (without gradient).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 batch_first: bool = True) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be a multiple of num_heads "
                             f"({num_heads})")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.batch_first = batch_first
        self.keep_attention_weights = False  # set by ``attention_maps``: keep every head's weights
        self.attention_weights: np.ndarray | None = None
        self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), dtype=np.float32))
        self.in_proj_bias = (Parameter(np.zeros(3 * embed_dim, dtype=np.float32)) if bias
                             else None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)
        init.xavier_uniform_(self.in_proj_weight)
        if bias:
            init.zeros_(self.out_proj.bias)

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | np.ndarray | None = None, need_weights: bool = True,
                attn_mask: Tensor | np.ndarray | None = None,
                average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        e, h = self.embed_dim, self.num_heads
        if not self.batch_first:  # [L, N, E] in and out, as PyTorch's default
            query, key, value = (x.transpose(0, 1) for x in (query, key, value))
        w, b = self.in_proj_weight, self.in_proj_bias
        parts = [F.linear(x, w[i * e:(i + 1) * e], None if b is None else b[i * e:(i + 1) * e])
                 for i, x in enumerate((query, key, value))]
        q, k, v = (split_heads(p, h) for p in parts)
        allowed = _allowed(attn_mask, key_padding_mask, q.shape[-2], k.shape[-2], is_causal)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed,
                                         dropout_p=self.dropout if self.training else 0.0)
        out = self.out_proj(merge_heads(y))
        if not self.batch_first:
            out = out.transpose(0, 1)
        weights = None
        if need_weights or self.keep_attention_weights:
            weights = attention_weights(q.data, k.data, allowed)
        if self.keep_attention_weights:
            self.attention_weights = weights
            self.attention_is_cross = key is not query
        if not need_weights:
            return out, None
        return out, Tensor(weights.mean(axis=1) if average_attn_weights else weights)


def attention_weights(q: np.ndarray, k: np.ndarray, allowed: Tensor | np.ndarray | None = None,
                      is_causal: bool = False) -> np.ndarray:
    """The softmax weights ``[..., H, L, S]`` an attention op gives (no graph: for inspection).

    ``allowed`` is an SDPA mask: boolean (True may attend) or float (added to the scores).
    """
    if q.ndim == 4 and k.shape[1] != q.shape[1]:  # grouped-query heads serve several queries
        k = np.repeat(k, q.shape[1] // k.shape[1], axis=1)
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]).astype(q.dtype)
    if is_causal:
        allowed = F.causal_mask(q.shape[-2], k.shape[-2])
    if allowed is not None:
        mask = allowed.data if isinstance(allowed, Tensor) else np.asarray(allowed)
        if mask.dtype == np.bool_:
            scores = np.where(mask, scores, -np.inf)
        else:
            scores = scores + mask
    return F.masked_softmax(scores.astype(q.dtype, copy=False))


def _allowed(attn_mask, key_padding_mask, length: int, source: int,
             is_causal: bool) -> Tensor | None:
    """PyTorch MHA masks (True = blocked, or float additive) as one SDPA boolean/float mask.

    Masks given as tensors stay in the graph, so a padding mask computed from the input tokens
    (``src == pad_id``) exports as ops on the input instead of a constant of the example batch,
    and a learned float bias (relative positions) gets its gradient.
    """
    if isinstance(key_padding_mask, Tensor) and key_padding_mask.dtype == np.bool_:
        blocked = key_padding_mask.unsqueeze(1).unsqueeze(1)  # [N, 1, 1, S]
        padding = where(blocked, -np.inf, 0.0)
        base = _allowed(attn_mask, None, length, source, is_causal)
        if base is None:
            return padding
        if base.dtype == np.bool_:
            base = Tensor(_additive(base.data).astype(np.float32))
        return base + padding
    if isinstance(attn_mask, Tensor) and attn_mask.dtype != np.bool_ and attn_mask.requires_grad:
        base = attn_mask
        if key_padding_mask is not None:
            base = base + Tensor(_additive(~as_tensor(key_padding_mask).data[:, None, None, :])
                                 .astype(base.dtype))
        return base
    mask = None
    if attn_mask is not None:
        m = as_tensor(attn_mask).data
        mask = ~m if m.dtype == np.bool_ else m.astype(np.float32)
    elif is_causal:
        mask = F.causal_mask(length, source)
    if key_padding_mask is not None:
        pad = as_tensor(key_padding_mask).data
        keep = ~pad[:, None, None, :] if pad.dtype == np.bool_ else pad[:, None, None, :]
        if mask is None:
            mask = keep
        elif mask.dtype == np.bool_ and keep.dtype == np.bool_:
            mask = mask & keep
        else:
            mask = (_additive(mask) + _additive(keep)).astype(np.float32)
    return None if mask is None else Tensor(mask)


def _additive(mask: np.ndarray) -> np.ndarray:
    return np.where(mask, 0.0, -np.inf) if mask.dtype == np.bool_ else mask
