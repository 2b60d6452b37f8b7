"""Attention maps: the weights of every head of every attention layer for one input, and heat maps.

    maps = attention_maps(model, src_ids, tgt_ids)      # runs model(src_ids, tgt_ids) once
    for m in maps:
        print(m.name, m.kind, m.weights.shape)          # [N, heads, queries, keys]
    plot_attention(maps[0], query_tokens=list("hello"), key_tokens=list("hello"), path="a.png")

Every ``nn.MultiheadAttention`` and ``nn.CausalSelfAttention`` inside ``model`` keeps its softmax
weights during that one call (``kind`` is ``"self"`` or ``"cross"``: queries from the decoder, keys
from the encoder's memory). The weights are what the attention op used: masked keys get exactly 0,
dropout is off (eval mode), and nothing is recorded for backward.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reference_models.autograd import no_grad
from reference_models.nn.attention import CausalSelfAttention, MultiheadAttention
from reference_models.nn.module import Module

__all__ = ["AttentionMap", "attention_maps", "plot_attention", "plot_attention_maps"]


@dataclass
class AttentionMap:
    """The weights ``[N, heads, queries, keys]`` of the attention module called ``name``."""

    name: str
    kind: str  # "self" or "cross"
    weights: np.ndarray

    @property
    def heads(self) -> int:
        return self.weights.shape[1]


def attention_maps(model: Module, *inputs: Any, **kwargs: Any) -> list[AttentionMap]:
    """Run ``model(*inputs, **kwargs)`` once in eval mode; the attention weights of every layer,
    in the order of ``model.named_modules()`` (encoder layers before decoder layers)."""
    layers = [(name, m) for name, m in model.named_modules()
              if isinstance(m, MultiheadAttention | CausalSelfAttention)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no attention layer (nn.MultiheadAttention "
                         "or nn.CausalSelfAttention)")
    was_training = model.training
    model.eval()
    for _, layer in layers:
        layer.keep_attention_weights, layer.attention_weights = True, None
    try:
        with no_grad():
            model(*inputs, **kwargs)
    finally:
        model.train(was_training)
        for _, layer in layers:
            layer.keep_attention_weights = False
    maps = []
    for name, layer in layers:
        weights, layer.attention_weights = layer.attention_weights, None
        if weights is None:  # a layer this forward did not call
            continue
        kind = "cross" if getattr(layer, "attention_is_cross", False) else "self"
        maps.append(AttentionMap(name, kind, np.asarray(weights)))
    return maps


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def _heat_map(ax, weights: np.ndarray, query_tokens, key_tokens, title: str) -> Any:
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=max(float(weights.max()), 1e-9),
                      aspect="auto")
    ax.set_xticks(range(len(key_tokens)), [repr(t)[1:-1] for t in key_tokens], fontsize=7,
                  rotation=90)
    ax.set_yticks(range(len(query_tokens)), [repr(t)[1:-1] for t in query_tokens], fontsize=7)
    ax.set_xlabel("key (attended to)", fontsize=8)
    ax.set_ylabel("query", fontsize=8)
    ax.set_title(title, fontsize=9)
    return image


def _check_tokens(weights: np.ndarray, query_tokens, key_tokens) -> None:
    if len(query_tokens) != weights.shape[-2] or len(key_tokens) != weights.shape[-1]:
        raise ValueError(f"the map is {weights.shape[-2]} queries x {weights.shape[-1]} keys; got "
                         f"{len(query_tokens)} query tokens and {len(key_tokens)} key tokens")


def plot_attention(attention: AttentionMap, query_tokens, key_tokens, *, sample: int = 0,
                   head: int | None = None, path: str | os.PathLike | None = None):
    """One heat map per head (or only ``head``) of one layer; tokens label the axes.

    Returns the matplotlib figure (saved to ``path`` and closed when a path is given)."""
    plt = _pyplot()
    weights = attention.weights[sample]
    _check_tokens(weights, query_tokens, key_tokens)
    heads = range(weights.shape[0]) if head is None else [head]
    fig, axes = plt.subplots(1, len(heads), figsize=(3.2 * len(heads), 3.2), squeeze=False)
    for ax, h in zip(axes[0], heads, strict=True):
        image = _heat_map(ax, weights[h], query_tokens, key_tokens,
                          f"{attention.name} ({attention.kind}), head {h}")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8)
    return _finish(fig, plt, path)


def plot_attention_maps(maps: list[AttentionMap], tokens: dict[str, list], *, sample: int = 0,
                        path: str | os.PathLike | None = None):
    """A grid: one row per layer, one column per head. ``tokens`` names the token lists:
    ``{"source": [...], "target": [...]}`` for an encoder-decoder (encoder self-attention is
    source x source, decoder self-attention target x target, cross-attention target x source),
    or ``{"source": [...]}`` for an encoder or a GPT. A self-attention layer whose name says
    ``decoder`` reads the target tokens."""
    plt = _pyplot()
    if not maps:
        raise ValueError("no attention maps to plot")
    columns = max(m.heads for m in maps)
    fig, axes = plt.subplots(len(maps), columns, figsize=(2.8 * columns, 2.6 * len(maps)),
                             squeeze=False)
    source = tokens["source"]
    target = tokens.get("target", source)
    for row, m in zip(axes, maps, strict=True):
        weights = m.weights[sample]
        in_decoder = m.kind == "cross" or "decoder" in m.name
        queries = target if in_decoder else source
        keys = source if m.kind == "cross" else queries
        _check_tokens(weights, queries, keys)
        for h, ax in enumerate(row):
            if h >= m.heads:
                ax.axis("off")
                continue
            short = ".".join(m.name.split(".")[-4:])  # e.g. decoder.layers.1.multihead_attn
            _heat_map(ax, weights[h], queries, keys, f"{short} ({m.kind})\nhead {h}")
    fig.tight_layout()
    return _finish(fig, plt, path)


def _finish(fig, plt, path):
    if path is not None:
        fig.savefig(Path(path), dpi=110)
        plt.close(fig)
    return fig
