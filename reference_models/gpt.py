"""A GPT: token (and position) embeddings, pre-norm transformer blocks, a language-model head.

    model = GPT(GPTConfig(vocab_size=65, context=64, n_layer=4, n_head=4, n_embd=128))
    logits = model(ids)                       # ids [N, T] int64 -> logits [N, T, vocab]

Each ``Block`` is ``x + attn(norm(x))`` then ``x + mlp(norm(x))`` (pre-norm, as in GPT-2), so the
residual stream is never normalized away. ``GPTConfig`` chooses the variants an architecture lesson
compares: learned, sinusoidal or rotary positions; GELU or SwiGLU feed-forward; LayerNorm or
RMSNorm; grouped-query attention; tied input and output embeddings. Names follow nanoGPT
(``wte``, ``wpe``, ``h``, ``ln_f``, ``lm_head``, ``c_attn``, ``c_fc``, ``c_proj``).

``parameter_counts`` and ``memory_estimate`` give the per-component breakdown.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from reference_models import nn
from reference_models.nn import functional as F
from reference_models.nn import init
from reference_models.nn.attention import CausalSelfAttention, KVCache
from reference_models.nn.normalization import LayerNorm, RMSNorm
from reference_models.nn.positional import RotaryEmbedding, SinusoidalPositionalEncoding
from reference_models.tensor import Tensor, arange

__all__ = ["GPT", "Block", "GPTConfig", "MLP", "SwiGLU", "memory_estimate", "parameter_counts"]


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 65
    context: int = 64  # the longest sequence the model reads (nanoGPT's block_size)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    n_kv_head: int | None = None  # fewer than n_head: grouped-query attention
    positions: str = "learned"  # "learned", "sinusoidal" or "rope"
    mlp: str = "gelu"  # "gelu" or "swiglu"
    mlp_ratio: float = 4.0
    norm: str = "layernorm"  # "layernorm" or "rmsnorm"
    bias: bool = True
    tie_weights: bool = True  # the output head reuses the token embedding matrix
    dropout: float = 0.0
    gelu_approximate: str = "tanh"  # "none" is exact erf GELU (slower in numpy)
    init_std: float = 0.02

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __post_init__(self) -> None:
        checks = {"positions": ("learned", "sinusoidal", "rope"), "mlp": ("gelu", "swiglu"),
                  "norm": ("layernorm", "rmsnorm")}
        for name, allowed in checks.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"GPTConfig.{name} must be one of {allowed}, "
                                 f"not {getattr(self, name)!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head "
                             f"({self.n_head})")


def _norm(config: GPTConfig) -> nn.Module:
    if config.norm == "rmsnorm":
        return RMSNorm(config.n_embd, eps=1e-5)
    return LayerNorm(config.n_embd, bias=config.bias)


class MLP(nn.Module):
    """``c_proj(gelu(c_fc(x)))`` with a hidden width of ``mlp_ratio * n_embd``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        hidden = int(config.mlp_ratio * config.n_embd)
        self.c_fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.approximate = config.gelu_approximate

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), self.approximate))


class SwiGLU(nn.Module):
    """``c_proj(silu(c_fc(x)) * c_gate(x))``; hidden width 2/3 of the GELU MLP's (same parameters)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        hidden = int(math.ceil(config.mlp_ratio * config.n_embd * 2 / 3 / 8) * 8)
        self.c_fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.c_gate = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)

    def forward(self, x: Tensor) -> Tensor:
        a = self.c_fc(x)
        return self.c_proj(a * F.sigmoid(a) * self.c_gate(x))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    def __init__(self, config: GPTConfig, rotary: RotaryEmbedding | None = None) -> None:
        super().__init__()
        self.ln_1 = _norm(config)
        self.attn = CausalSelfAttention(config.n_embd, config.n_head, config.n_kv_head,
                                        bias=config.bias, dropout=config.dropout, rotary=rotary)
        self.ln_2 = _norm(config)
        self.mlp = SwiGLU(config) if config.mlp == "swiglu" else MLP(config)
        self.dropout = config.dropout

    def forward(self, x: Tensor, cache=None) -> Tensor:
        x = x + F.dropout(self.attn(self.ln_1(x), cache), self.dropout, self.training)
        return x + F.dropout(self.mlp(self.ln_2(x)), self.dropout, self.training)


class GPT(nn.Module):
    """A decoder-only transformer language model: ids ``[N, T]`` -> next-token logits."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        rotary = None
        if config.positions == "learned":
            self.wpe = nn.Embedding(config.context, config.n_embd)
        elif config.positions == "sinusoidal":
            self.wpe = SinusoidalPositionalEncoding(config.n_embd, config.context)
        else:
            rotary = RotaryEmbedding(config.n_embd // config.n_head, config.context)
        self.h = nn.ModuleList(Block(config, rotary) for _ in range(config.n_layer))
        self.ln_f = _norm(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self._init_weights()
        if config.tie_weights:
            self.lm_head.weight = self.wte.weight

    def _init_weights(self) -> None:
        """GPT-2's: normal(0, 0.02) weights, zero biases, residual projections scaled by depth."""
        std = self.config.init_std
        for name, param in self.named_parameters():
            if name.endswith("bias"):
                init.zeros_(param)
            elif name.endswith("c_proj.weight"):  # keeps the residual stream's variance flat
                init.normal_(param, 0.0, std / math.sqrt(2 * self.config.n_layer))
            elif param.ndim == 2:
                init.normal_(param, 0.0, std)

    def forward(self, ids: Tensor | np.ndarray, kv_cache: KVCache | None = None) -> Tensor:
        ids = ids if isinstance(ids, Tensor) else Tensor(ids)
        if ids.ndim != 2:
            raise ValueError(f"GPT takes token ids of shape [N, T], got {list(ids.shape)}")
        offset = 0 if kv_cache is None else kv_cache.length
        t = ids.shape[1]
        if offset + t > self.config.context:
            raise ValueError(f"a sequence of {offset + t} tokens is longer than the model's "
                             f"context of {self.config.context}; crop it to the last "
                             f"{self.config.context} tokens")
        x = self.wte(ids)
        if self.config.positions == "learned":
            x = x + self.wpe(arange(offset, offset + t))
        elif self.config.positions == "sinusoidal":
            x = self.wpe(x, offset)
        x = F.dropout(x, self.config.dropout, self.training)
        for index, block in enumerate(self.h):
            x = block(x, None if kv_cache is None else kv_cache[index])
        return self.lm_head(self.ln_f(x))

    def new_cache(self) -> KVCache:
        return KVCache(self.config.n_layer)


# ===================================================================== sizes
def parameter_counts(model: GPT) -> dict[str, int]:
    """Parameters per component: embeddings, attention, feed-forward, norms, head, total.

    A tied head shares the token embedding and adds nothing.
    """
    counts = {"embeddings": 0, "attention": 0, "feed_forward": 0, "norms": 0, "head": 0}
    for name, param in model.named_parameters():  # a tied weight is listed once, as wte
        if name.startswith(("wte", "wpe")):
            key = "embeddings"
        elif ".attn." in name:
            key = "attention"
        elif ".mlp." in name:
            key = "feed_forward"
        elif name.startswith("lm_head"):
            key = "head"
        else:
            key = "norms"
        counts[key] += param.numel()
    counts["total"] = sum(counts.values())
    return counts


def memory_estimate(config: GPTConfig, batch_size: int, context: int | None = None,
                    bytes_per_value: int = 4) -> dict[str, int]:
    """Rough bytes for training with AdamW and for inference, by what each one stores.

    Training holds weights, gradients and two Adam moments (4 copies of the parameters) plus the
    activations the backward pass needs: per block about ``16 x N x T x n_embd`` values (norm
    outputs, q/k/v, attention output, the 4x-wide MLP hidden layer before and after its activation)
    and the ``N x heads x T x T`` attention weights, plus the ``N x T x vocab`` logits twice (logits
    and their softmax in the loss). Inference keeps the weights, one block's activations and a KV
    cache of ``2 x layers x N x T x kv_heads x head_dim`` values.
    """
    t = config.context if context is None else context
    d, heads, layers = config.n_embd, config.n_head, config.n_layer
    kv_heads = config.n_kv_head or heads
    params = _parameter_total(config)
    hidden = config.mlp_ratio * d
    per_block = batch_size * t * (6 * d + 2 * hidden + 2 * kv_heads * (d // heads)) \
        + batch_size * heads * t * t
    activations = layers * per_block + 2 * batch_size * t * config.vocab_size
    kv_cache = 2 * layers * batch_size * t * kv_heads * (d // heads)
    b = bytes_per_value
    return {
        "parameters": int(params),
        "weights_bytes": int(params * b),
        "training_gradients_and_adam_bytes": int(3 * params * b),
        "training_activation_bytes": int(activations * b),
        "training_total_bytes": int((4 * params + activations) * b),
        "inference_kv_cache_bytes": int(kv_cache * b),
        "inference_total_bytes": int((params + per_block + kv_cache
                                      + batch_size * t * config.vocab_size) * b),
    }


def _parameter_total(config: GPTConfig) -> int:
    d, v, layers = config.n_embd, config.vocab_size, config.n_layer
    kv = (config.n_kv_head or config.n_head) * (d // config.n_head)
    bias = 1 if config.bias else 0
    attention = d * (d + 2 * kv) + bias * (d + 2 * kv) + d * d + bias * d
    if config.mlp == "swiglu":
        hidden = int(math.ceil(config.mlp_ratio * d * 2 / 3 / 8) * 8)
        feed_forward = 3 * d * hidden + bias * (2 * hidden + d)
    else:
        hidden = int(config.mlp_ratio * d)
        feed_forward = 2 * d * hidden + bias * (hidden + d)
    norm = d * (2 if config.norm == "layernorm" and config.bias else 1)
    embeddings = v * d + (config.context * d if config.positions == "learned" else 0)
    head = 0 if config.tie_weights else v * d
    return embeddings + layers * (attention + feed_forward + 2 * norm) + norm + head
