"""Attention: exact masking (zero weight where masked, unchanged scores elsewhere), gradients,
grouped-query attention, the KV cache against full recomputation, and ONNX export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import reference_models as rm
from reference_models import nn
from reference_models.export import export_onnx
from reference_models.nn import functional as F
from reference_models.nn.functional import causal_mask
from tests.reference_models.gradcheck import check_gradients

RNG = np.random.default_rng(0)


def rand(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float64)


def tensor(array) -> rm.Tensor:
    """Keep the array's dtype (float64 here: exact comparisons)."""
    array = np.asarray(array)
    return rm.Tensor(array, dtype=array.dtype)


def reference_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray,
                        allowed: np.ndarray) -> np.ndarray:
    """One query at a time: softmax over the allowed keys only (an independent formulation)."""
    out = np.zeros(q.shape[:-1] + (v.shape[-1],))
    for index in np.ndindex(*q.shape[:-1]):
        *lead, i = index
        keys = np.flatnonzero(np.broadcast_to(allowed, q.shape[:-1] + (k.shape[-2],))[index])
        scores = np.array([q[index] @ k[(*lead, j)] for j in keys]) / np.sqrt(q.shape[-1])
        weights = np.exp(scores - scores.max())
        weights /= weights.sum()
        out[index] = sum(w * v[(*lead, j)] for w, j in zip(weights, keys, strict=True))
    return out


def test_causal_attention_equals_softmax_over_allowed_keys_only() -> None:
    q, k, v = rand(2, 3, 6, 4, scale=2.0), rand(2, 3, 6, 4, scale=2.0), rand(2, 3, 6, 5)
    got = F.scaled_dot_product_attention(tensor(q), tensor(k), tensor(v),
                                         is_causal=True).data
    expected = reference_attention(q, k, v, causal_mask(6, 6))
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_causal_attention_does_not_degenerate_to_uniform_weights() -> None:
    # The course-framework bug: -1e9 added to every score makes the softmax almost uniform.
    # Here one key per query scores far higher, so the output must be close to that key's value.
    t = 8
    k = np.eye(t)  # orthonormal keys
    q = 10.0 * k  # query i scores 5 on key i and 0 on every other key
    v = np.arange(t, dtype=np.float64)[:, None] * np.ones((1, 3))
    out = F.scaled_dot_product_attention(tensor(q[None]), tensor(k[None]),
                                         tensor(v[None]), is_causal=True).data[0]
    uniform = np.cumsum(v, axis=0) / np.arange(1, t + 1)[:, None]  # mean of allowed values
    expected = reference_attention(q[None], k[None], v[None], causal_mask(t, t))[0]
    np.testing.assert_allclose(out, expected, rtol=1e-10)
    assert np.abs(out - uniform)[1:].max() > 0.5, "attention is (nearly) uniform"
    assert out[0, 0] == 0.0  # the first query sees only itself: exactly value 0


def test_masked_positions_get_exactly_zero_weight() -> None:
    attention = nn.MultiheadAttention(8, 2)
    x = tensor(rand(1, 5, 8).astype(np.float32))
    blocked = ~causal_mask(5, 5)
    _, weights = attention(x, x, x, attn_mask=blocked, need_weights=True,
                           average_attn_weights=False)
    assert (weights.data[..., blocked] == 0).all()
    assert (weights.data[..., ~blocked] > 0).all()
    np.testing.assert_allclose(weights.data.sum(-1), 1.0, rtol=1e-6)


def test_boolean_float_and_causal_masks_agree() -> None:
    q, k, v = (tensor(rand(2, 2, 5, 3)) for _ in range(3))
    allowed = causal_mask(5, 5)
    additive = np.where(allowed, 0.0, -np.inf)
    causal = F.scaled_dot_product_attention(q, k, v, is_causal=True).data
    boolean = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed).data
    floating = F.scaled_dot_product_attention(q, k, v, attn_mask=additive).data
    np.testing.assert_array_equal(causal, boolean)
    np.testing.assert_array_equal(causal, floating)


def test_padding_mask_ignores_padded_keys_and_fully_masked_rows_are_zero() -> None:
    q, k, v = rand(2, 1, 4, 3), rand(2, 1, 4, 3), rand(2, 1, 4, 3)
    keep = np.array([[True, True, False, False], [True, True, True, True]])[:, None, None, :]
    out = F.scaled_dot_product_attention(tensor(q), tensor(k), tensor(v),
                                         attn_mask=keep).data
    np.testing.assert_allclose(out, reference_attention(q, k, v, keep), rtol=1e-10)
    nothing = np.zeros((4, 4), dtype=bool)
    empty = F.scaled_dot_product_attention(tensor(q), tensor(k), tensor(v),
                                           attn_mask=nothing).data
    assert np.all(empty == 0) and not np.isnan(empty).any()


@pytest.mark.parametrize("kwargs", [
    {}, {"is_causal": True}, {"attn_mask": causal_mask(4, 6, 2)},
    {"attn_mask": np.random.default_rng(1).standard_normal((4, 6))}, {"scale": 0.3},
])
def test_attention_gradients(kwargs) -> None:
    check_gradients(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kwargs),
                    rand(2, 2, 4, 3), rand(2, 2, 6, 3), rand(2, 2, 6, 5))


def test_grouped_query_attention_equals_repeated_heads_and_has_gradients() -> None:
    q, k, v = rand(2, 6, 5, 4), rand(2, 2, 5, 4), rand(2, 2, 5, 3)
    grouped = F.scaled_dot_product_attention(tensor(q), tensor(k), tensor(v),
                                             is_causal=True, enable_gqa=True).data
    repeated = F.scaled_dot_product_attention(
        tensor(q), tensor(np.repeat(k, 3, axis=1)), tensor(np.repeat(v, 3, axis=1)),
        is_causal=True).data
    np.testing.assert_array_equal(grouped, repeated)
    check_gradients(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True,
                                                                    enable_gqa=True), q, k, v)
    with pytest.raises(ValueError, match="enable_gqa"):
        F.scaled_dot_product_attention(tensor(q), tensor(k), tensor(v))


def test_mask_and_is_causal_together_are_refused() -> None:
    x = tensor(rand(1, 2, 3))
    with pytest.raises(ValueError, match="not both"):
        F.scaled_dot_product_attention(x, x, x, attn_mask=causal_mask(2, 2), is_causal=True)


def float64_module(module: nn.Module) -> nn.Module:
    for param in module.parameters():
        param.data = param.data.astype(np.float64)
    return module


@pytest.mark.parametrize("kv_heads,rope", [(4, False), (2, True), (1, False)])
def test_causal_self_attention_gradients(kv_heads: int, rope: bool) -> None:
    rm.manual_seed(0)
    rotary = nn.RotaryEmbedding(4, 16) if rope else None
    attention = float64_module(nn.CausalSelfAttention(16, 4, kv_heads, rotary=rotary))
    check_gradients(attention, rand(2, 5, 16), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("kv_heads,rope", [(4, False), (2, True)])
def test_kv_cache_gives_the_same_outputs_as_full_recomputation(kv_heads: int, rope: bool) -> None:
    rm.manual_seed(1)
    rotary = nn.RotaryEmbedding(4, 16) if rope else None
    attention = nn.CausalSelfAttention(16, 4, kv_heads, rotary=rotary)
    x = tensor(rand(2, 9, 16).astype(np.float32))
    with rm.no_grad():
        full = attention(x).data
        cache = nn.KVCache(1)
        chunks = [attention(x[:, :4], cache[0]).data]  # a prompt of 4, then 2 + 1 + 1 + 1
        for start, stop in ((4, 6), (6, 7), (7, 8), (8, 9)):
            chunks.append(attention(x[:, start:stop], cache[0]).data)
    assert cache.length == 9
    np.testing.assert_allclose(np.concatenate(chunks, axis=1), full, rtol=1e-5, atol=1e-6)


def test_rotary_and_sinusoidal_encodings() -> None:
    rope = nn.RotaryEmbedding(4, 12)
    check_gradients(lambda x: rope(x, 3), rand(2, 5, 4))
    # rotation keeps lengths and makes scores depend on the distance only
    x = rand(1, 12, 4)
    rotated = rope(tensor(x)).data
    np.testing.assert_allclose(np.linalg.norm(rotated, axis=-1), np.linalg.norm(x, axis=-1))
    q = np.tile(rand(1, 1, 4), (1, 12, 1))
    k = np.tile(rand(1, 1, 4), (1, 12, 1))
    rq, rk = rope(tensor(q)).data[0], rope(tensor(k)).data[0]
    np.testing.assert_allclose(rq[5] @ rk[2], rq[9] @ rk[6], rtol=1e-6)  # float32 angles
    table = nn.SinusoidalPositionalEncoding(6, 10).table.data
    assert table[0, 0] == 0 and table[0, 1] == 1
    np.testing.assert_allclose(table[3, 2], np.sin(3 / 10000 ** (2 / 6)), rtol=1e-6)


class AttentionOnly(nn.Module):
    """Embedding + causal attention (no positions): valid for any context length."""

    def __init__(self, kv_heads: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(65, 16)
        self.attn = nn.CausalSelfAttention(16, 4, kv_heads)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 65)

    def forward(self, ids: rm.Tensor) -> rm.Tensor:
        return self.head(self.norm(self.attn(self.embed(ids))))


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_attention_exports_with_a_dynamic_context(tmp_path: Path, kv_heads: int) -> None:
    rm.manual_seed(2)
    model = AttentionOnly(kv_heads)
    path = tmp_path / "attention.onnx"
    ids = np.random.default_rng(0).integers(0, 65, (2, 16))
    export_onnx(model, tensor(ids), path, task="tinygpt", dynamic_axes={1: "T"})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in ((1, 5), (3, 16), (2, 40)):
        batch = np.random.default_rng(1).integers(0, 65, shape)
        with rm.no_grad():
            expected = model.eval()(tensor(batch)).data
        got = session.run(None, {"input": batch})[0]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_multihead_attention_gradients_with_padding() -> None:
    rm.manual_seed(3)
    attention = float64_module(nn.MultiheadAttention(8, 2))
    padding = np.array([[False, False, False, True], [False, False, False, False]])

    def run(query, memory):
        return attention(query, memory, memory, key_padding_mask=padding, need_weights=False)[0]

    check_gradients(run, rand(2, 3, 8), rand(2, 4, 8), rtol=1e-5, atol=1e-8)
