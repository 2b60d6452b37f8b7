"""Pruning: zero the least important weights (unstructured) or remove whole channels (structured).

- ``magnitude_prune(model, amount, scope="layer")``: in every Conv2d/Linear weight, the ``amount``
  fraction with the smallest magnitudes is set to zero (``scope="global"``: one threshold over all
  layers, so layers with many small weights lose more). The returned ``Pruning`` keeps them at zero
  while you fine-tune (a forward pre-hook re-applies the masks) until ``remove()``. Zeros are still
  stored densely; they make the file smaller only after compression (the SPEC's deflate size), and
  onnxruntime runs them at dense speed.
- ``prune_channels(model, amount)``: removes the ``amount`` fraction of output channels of each
  Conv2d (and neurons of each hidden Linear) with the smallest L1 norm (times the |gamma| of the batch
  norm after it), and the matching BatchNorm entries and input channels of the next layer. The
  layers really shrink: fewer parameters, fewer FLOPs, faster inference.
- ``iterative_prune``: prune a little, fine-tune, prune more: accuracy recovers between steps.
- ``sparsity_report``: zeros per layer and overall.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from reference_models.compress.fuse import flatten_sequential
from reference_models.nn.layers import (
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    Identity,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
)
from reference_models.nn.module import Module, Parameter

PRUNABLE = (Conv2d, Linear)


# ===================================================================== unstructured
class Pruning:
    """Masks of pruned weights, re-applied before every forward pass until ``remove()``."""

    def __init__(self, model: Module, masks: dict[str, np.ndarray]) -> None:
        self.model, self.masks = model, masks
        self.params = dict(model.named_parameters())
        self.apply()
        self.handle = model.register_forward_pre_hook(lambda module, args: self.apply())

    def apply(self) -> None:
        for name, mask in self.masks.items():
            self.params[name].data *= mask

    def remove(self) -> Module:
        """Stop re-applying the masks (the zeros stay); returns the model."""
        self.apply()
        self.handle.remove()
        return self.model


def prunable_weights(model: Module) -> dict[str, Parameter]:
    return {f"{name}.weight" if name else "weight": module.weight
            for name, module in model.named_modules() if isinstance(module, PRUNABLE)}


def magnitude_masks(model: Module, amount: float, scope: str = "layer") -> dict[str, np.ndarray]:
    """Boolean-as-float masks (1 keep, 0 prune) removing the ``amount`` smallest-magnitude weights."""
    if not 0 <= amount < 1:
        raise ValueError(f"amount must be in [0, 1), got {amount}")
    weights = prunable_weights(model)
    if scope == "global":
        magnitudes = np.concatenate([np.abs(w.data).reshape(-1) for w in weights.values()])
        threshold = _kth_smallest(magnitudes, amount)
        return {name: (np.abs(w.data) > threshold).astype(w.dtype) for name, w in weights.items()}
    if scope == "layer":
        return {name: (np.abs(w.data) > _kth_smallest(np.abs(w.data).reshape(-1), amount)
                       ).astype(w.dtype) for name, w in weights.items()}
    raise ValueError(f"scope must be 'layer' or 'global', not {scope!r}")


def _kth_smallest(values: np.ndarray, amount: float) -> float:
    count = int(math.floor(amount * values.size))
    if count == 0:
        return -1.0  # nothing is pruned: every magnitude is above it
    return float(np.partition(values, count - 1)[count - 1])


def magnitude_prune(model: Module, amount: float, scope: str = "layer") -> Pruning:
    """Zero the smallest weights of ``model`` in place; see the module docstring."""
    return Pruning(model, magnitude_masks(model, amount, scope))


# ===================================================================== structured
def prune_channels(model: Sequential, amount: float, min_channels: int = 4) -> Sequential:
    """A smaller copy of ``model`` without its least important channels and neurons.

    Every Conv2d or Linear whose output feeds another Conv2d or Linear (through BatchNorm, ReLU,
    MaxPool, Dropout or Flatten only) keeps ``ceil((1 - amount) * out)`` outputs, at least
    ``min_channels``. The model's last layer keeps all its outputs (they are the classes).
    """
    if not 0 <= amount < 1:
        raise ValueError(f"amount must be in [0, 1), got {amount}")
    layers = [copy.deepcopy(layer) for layer in flatten_sequential(model)]
    for index, layer in enumerate(layers):
        if not isinstance(layer, PRUNABLE):
            continue
        consumer, norm, flattens = _next_consumer(layers, index)
        if consumer is None:
            continue
        outputs = layer.weight.shape[0]
        keep_count = min(outputs, max(min_channels, math.ceil((1 - amount) * outputs)))
        keep = np.sort(np.argsort(-_importance(layer, norm))[:keep_count])
        _keep_outputs(layer, norm, keep)
        _keep_inputs(consumer, keep, outputs, flattens)
    return Sequential(*layers).train(model.training)


_PASS_THROUGH = (ReLU, MaxPool2d, Dropout, Identity)


def _next_consumer(layers: list[Module], index: int):
    """The next Conv2d/Linear after ``layers[index]``, the batch norm in between, and whether a
    Flatten lies between; ``(None, ..)`` when something else intervenes or none follows."""
    norm, flattens = None, False
    for layer in layers[index + 1:]:
        if isinstance(layer, PRUNABLE):
            return layer, norm, flattens
        if isinstance(layer, BatchNorm1d | BatchNorm2d) and norm is None:
            norm = layer
        elif isinstance(layer, Flatten):
            flattens = True
        elif not isinstance(layer, _PASS_THROUGH):
            return None, None, False
    return None, None, False


def _importance(layer: Module, norm: Module | None) -> np.ndarray:
    weight = layer.weight.data
    score = np.abs(weight).reshape(weight.shape[0], -1).sum(axis=1)
    if norm is not None and norm.weight is not None:
        # a channel the batch norm scales down matters less, whatever its weights
        score = score * np.abs(norm.weight.data) / np.sqrt(norm.running_var.data + norm.eps)
    return score


def _keep_outputs(layer: Module, norm: Module | None, keep: np.ndarray) -> None:
    layer.weight = Parameter(layer.weight.data[keep])
    if layer.bias is not None:
        layer.bias = Parameter(layer.bias.data[keep])
    if isinstance(layer, Conv2d):
        layer.out_channels = len(keep)
    else:
        layer.out_features = len(keep)
    if norm is not None:
        norm.num_features = len(keep)
        for name in ("weight", "bias"):
            if getattr(norm, name) is not None:
                setattr(norm, name, Parameter(getattr(norm, name).data[keep]))
        for name in ("running_mean", "running_var"):
            if getattr(norm, name) is not None:
                norm.register_buffer(name, getattr(norm, name).data[keep].copy())


def _keep_inputs(consumer: Module, keep: np.ndarray, outputs: int, flattens: bool) -> None:
    weight = consumer.weight.data
    if isinstance(consumer, Conv2d):
        if consumer.groups != 1:
            raise ValueError("structured pruning of grouped convolutions is not supported")
        consumer.weight = Parameter(weight[:, keep])
        consumer.in_channels = len(keep)
        return
    columns = keep
    if flattens:  # a flattened [C, H, W] map: channel c owns columns c*HW .. (c+1)*HW - 1
        per_channel = weight.shape[1] // outputs
        columns = (keep[:, None] * per_channel + np.arange(per_channel)).reshape(-1)
    consumer.weight = Parameter(weight[:, columns])
    consumer.in_features = len(columns)


def iterative_prune(model: Module, amounts: Sequence[float],
                    fine_tune: Callable[[Module], object], *,
                    structured: bool = False, scope: str = "layer") -> Module:
    """Prune to each amount in ``amounts`` in turn (e.g. ``[0.3, 0.5, 0.7]`` of the original), with
    ``fine_tune(model)`` after every step. Unstructured pruning keeps earlier zeros (the masks
    only grow); structured pruning shrinks the model at every step. Returns the final model."""
    pruning = None
    for step, amount in enumerate(amounts):
        if structured:
            previous = amounts[step - 1] if step else 0.0
            # amount of what is left that removes ``amount`` of the original channels
            model = prune_channels(model, 1 - (1 - amount) / (1 - previous))
        else:
            if pruning is not None:
                pruning.remove()
            pruning = magnitude_prune(model, amount, scope)
        fine_tune(model)
    if pruning is not None:
        pruning.remove()
    return model


# ===================================================================== report
@dataclass(frozen=True)
class LayerSparsity:
    name: str
    shape: tuple[int, ...]
    params: int
    zeros: int

    @property
    def sparsity(self) -> float:
        return self.zeros / max(self.params, 1)


def sparsity_report(model: Module) -> list[LayerSparsity]:
    """Zeros in every parameter, plus a last row ``total``."""
    rows = [LayerSparsity(name, tuple(p.shape), int(p.data.size), int(np.sum(p.data == 0)))
            for name, p in model.named_parameters()]
    rows.append(LayerSparsity("total", (), sum(r.params for r in rows),
                              sum(r.zeros for r in rows)))
    return rows


def print_sparsity(model: Module, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Sparsity")
    for column in ("parameter", "shape", "params", "zeros", "sparsity"):
        table.add_column(column, justify="left" if column in ("parameter", "shape") else "right")
    for row in sparsity_report(model):
        table.add_row(row.name, "x".join(map(str, row.shape)), f"{row.params:,}",
                      f"{row.zeros:,}", f"{row.sparsity:.1%}")
    (console or Console()).print(table)


__all__ = ["LayerSparsity", "Pruning", "iterative_prune", "magnitude_masks", "magnitude_prune",
           "print_sparsity", "prune_channels", "prunable_weights", "sparsity_report"]
