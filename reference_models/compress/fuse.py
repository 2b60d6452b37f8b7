"""Fold each BatchNorm that follows a Conv2d (or Linear) into that layer's weight and bias.

At inference a batch norm is a per-channel affine map ``y = a * x + c`` with
``a = gamma / sqrt(running_var + eps)`` and ``c = beta - a * running_mean``; applied to a conv's
output it equals a conv with weight ``a * W`` and bias ``a * b + c``. Quantizing the folded layer
is what integer kernels run, so folding comes before quantization (and before structured pruning
is exported).
"""

from __future__ import annotations

import copy

import numpy as np

from reference_models.nn.layers import BatchNorm1d, BatchNorm2d, Conv2d, Linear, Sequential
from reference_models.nn.module import Module, Parameter


def fold_batch_norm(layer: Conv2d | Linear, norm: BatchNorm1d | BatchNorm2d) -> Conv2d | Linear:
    """A copy of ``layer`` with ``norm`` (in eval mode) folded into its weight and bias."""
    if norm.running_mean is None:
        raise ValueError("cannot fold a batch norm without running statistics")
    folded = copy.deepcopy(layer)
    a = (norm.weight.data if norm.weight is not None else 1.0) / np.sqrt(
        norm.running_var.data + norm.eps)
    shift = norm.bias.data if norm.bias is not None else 0.0
    old_bias = layer.bias.data if layer.bias is not None else np.zeros(a.shape, np.float32)
    shape = (-1,) + (1,) * (layer.weight.ndim - 1)
    folded.weight = Parameter((layer.weight.data * a.reshape(shape)).astype(np.float32))
    folded.bias = Parameter((a * (old_bias - norm.running_mean.data) + shift).astype(np.float32))
    return folded


def fuse_sequential(model: Sequential) -> Sequential:
    """A new ``Sequential`` where every Conv2d/Linear directly followed by a batch norm is folded.

    Nested ``Sequential`` containers are flattened into one list of layers first.
    """
    layers = flatten_sequential(model)
    fused: list[Module] = []
    index = 0
    while index < len(layers):
        layer = layers[index]
        following = layers[index + 1] if index + 1 < len(layers) else None
        if isinstance(layer, Conv2d | Linear) and isinstance(following, BatchNorm1d | BatchNorm2d):
            fused.append(fold_batch_norm(layer, following))
            index += 2
            continue
        fused.append(copy.deepcopy(layer))
        index += 1
    return Sequential(*fused).eval()


def flatten_sequential(model: Module) -> list[Module]:
    if not isinstance(model, Sequential):
        raise TypeError(f"expected an nn.Sequential model, got {type(model).__name__}; wrap the "
                        "layers in nn.Sequential (custom forwards cannot be rewritten safely)")
    layers: list[Module] = []
    for layer in model:
        layers.extend(flatten_sequential(layer) if isinstance(layer, Sequential) else [layer])
    return layers


__all__ = ["flatten_sequential", "fold_batch_norm", "fuse_sequential"]
