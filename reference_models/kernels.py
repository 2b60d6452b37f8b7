"""Fused kernels: several ops as one graph node with a hand-written backward, and a faster matmul.

A chain of small ops (``x + b``, then GELU) makes one graph node, one temporary array and one
pass over memory per op, forward and backward. Fused, the chain is one node: one pass, fewer
temporaries, and a backward that reuses what the forward kept. The results and gradients are the
same as the unfused ops' (``tests/reference_models/test_kernels.py`` checks both against finite
differences and against the unfused chain).

- ``bias_gelu(x, bias)``: ``gelu(x + bias)`` (the feed-forward layer after a bias-free matmul);
- ``add_layer_norm(x, residual, weight, bias)``: ``layer_norm(x + residual)``, the post-norm
  transformer's residual step;
- ``relu_add(x, residual)``: ``relu(x + residual)``, a ResNet block's end;
- ``linear(x, weight, bias)``: ``x @ weight.T + bias`` as ONE matrix product over all leading
  dimensions (``[N, T, E]`` is viewed as ``[N*T, E]``), forward and backward, instead of numpy's
  batched matmul of ``N`` separate products;
- ``fuse(model)``: swaps these in (``nn.Linear`` -> ``FastLinear``, a GPT's MLP -> ``FusedMLP``)
  keeping the parameters and their ``state_dict`` names.

Every fused op exports to ONNX (standard nodes, registered with ``register_translation``).
``benchmarks/kernels.py`` measures fused against unfused, per op and on whole training steps.
"""

from __future__ import annotations

import numpy as np

from reference_models.export import GraphBuilder, register_translation
from reference_models.gpt import MLP
from reference_models.nn.layers import Linear
from reference_models.nn.module import Module, Parameter
from reference_models.tensor import Tensor, erf, record_op, unbroadcast

__all__ = ["AddLayerNorm", "FastLinear", "FusedMLP", "add_layer_norm", "bias_gelu", "fuse",
           "linear", "relu_add"]

_GELU_C = float(np.sqrt(2 / np.pi))
_GELU_K = 0.044715


def bias_gelu(x: Tensor, bias: Tensor, approximate: str = "tanh") -> Tensor:
    """``gelu(x + bias)`` in one op; ``approximate`` as ``F.gelu`` ("tanh" or "none")."""
    u = x.data + bias.data
    dtype = u.dtype
    if approximate == "tanh":
        t = u * u
        t *= dtype.type(_GELU_K * _GELU_C)
        t += dtype.type(_GELU_C)
        t *= u
        np.tanh(t, out=t)
        out = t + dtype.type(1)
        out *= u
        out *= dtype.type(0.5)

        def derivative() -> np.ndarray:
            # d/du: 0.5 (1 + t) + 0.5 u (1 - t^2) c (1 + 3 k u^2)
            inner = u * u
            inner *= dtype.type(3 * _GELU_K * _GELU_C)
            inner += dtype.type(_GELU_C)
            inner *= u
            sech2 = t * t
            np.subtract(dtype.type(1), sech2, out=sech2)
            inner *= sech2
            inner += t
            inner += dtype.type(1)
            inner *= dtype.type(0.5)
            return inner
    elif approximate == "none":
        cdf = erf(u / dtype.type(np.sqrt(2)))
        cdf += dtype.type(1)
        cdf *= dtype.type(0.5)
        out = u * cdf

        def derivative() -> np.ndarray:
            pdf = np.exp(u * u * dtype.type(-0.5)) * dtype.type(1 / np.sqrt(2 * np.pi))
            return cdf + u * pdf
    else:
        raise ValueError(f"approximate must be 'tanh' or 'none', not {approximate!r}")

    def backward(g: np.ndarray) -> tuple:
        gu = derivative()
        gu *= g
        return (unbroadcast(gu, x.shape) if x.requires_grad else None,
                unbroadcast(gu, bias.shape) if bias.requires_grad else None)

    return record_op(out, (x, bias), "bias_gelu", backward, approximate=approximate)


def add_layer_norm(x: Tensor, residual: Tensor, weight: Tensor | None = None,
                   bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """``layer_norm(x + residual)`` over the last dimension, in one op."""
    h = x.data + residual.data
    width = h.shape[-1]
    h -= h.mean(axis=-1, keepdims=True)  # centred in place: h is ours
    var = np.einsum("...i,...i->...", h, h)[..., None] / h.dtype.type(width)
    rstd = (1.0 / np.sqrt(var + h.dtype.type(eps))).astype(h.dtype, copy=False)
    h *= rstd  # xhat
    xhat = h
    out = xhat * weight.data if weight is not None else xhat.copy()
    if bias is not None:
        out += bias.data

    def backward(g: np.ndarray) -> tuple:
        gxhat = g * weight.data if weight is not None else g.copy()
        proj = np.einsum("...i,...i->...", gxhat, xhat)[..., None] / h.dtype.type(width)
        gx = gxhat
        gx -= gxhat.mean(axis=-1, keepdims=True)
        gx -= xhat * proj
        gx *= rstd
        grads = [gx if x.requires_grad else None,
                 gx if residual.requires_grad else None]
        rows = g.reshape(-1, width)
        if weight is not None:
            grads.append(np.einsum("ij,ij->j", rows, xhat.reshape(-1, width)))
        if bias is not None:
            grads.append(rows.sum(axis=0))
        return tuple(grads)

    parents = [x, residual] + [t for t in (weight, bias) if t is not None]
    return record_op(out, parents, "add_layer_norm", backward, eps=float(eps),
                     has_weight=weight is not None, has_bias=bias is not None)


def relu_add(x: Tensor, residual: Tensor) -> Tensor:
    """``relu(x + residual)`` in one op (the sum is made in place of the output)."""
    out = np.add(x.data, residual.data)
    np.maximum(out, 0, out=out)

    def backward(g: np.ndarray) -> tuple:
        gx = g * (out > 0)  # one array for both inputs, as the engine's own add does
        return (unbroadcast(gx, x.shape) if x.requires_grad else None,
                unbroadcast(gx, residual.shape) if residual.requires_grad else None)

    return record_op(out, (x, residual), "relu_add", backward)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` with all leading dimensions as one GEMM (forward and backward)."""
    data, w = x.data, weight.data
    rows = data.reshape(-1, data.shape[-1])
    out = rows @ w.T
    if bias is not None:
        out += bias.data
    out = out.reshape(*data.shape[:-1], w.shape[0])

    def backward(g: np.ndarray) -> tuple:
        g2 = g.reshape(-1, g.shape[-1])
        gx = (g2 @ w).reshape(data.shape) if x.requires_grad else None
        gw = g2.T @ rows if weight.requires_grad else None
        return (gx, gw) if bias is None else (gx, gw, g2.sum(axis=0))

    parents = (x, weight) if bias is None else (x, weight, bias)
    return record_op(out, parents, "fast_linear", backward)


# ===================================================================== modules
class FastLinear(Linear):
    """``nn.Linear`` computed by ``kernels.linear`` (same parameters, same ``state_dict``)."""

    @classmethod
    def from_linear(cls, layer: Linear) -> FastLinear:
        fast = cls.__new__(cls)
        Module.__init__(fast)
        fast.in_features, fast.out_features = layer.in_features, layer.out_features
        fast.weight, fast.bias = layer.weight, layer.bias
        return fast

    def forward(self, input: Tensor) -> Tensor:
        return linear(input, self.weight, self.bias)


class FusedMLP(Module):
    """A GPT MLP ``c_proj(gelu(c_fc(x)))`` as a bias-free fast matmul, ``bias_gelu`` and a fast
    linear; it holds the original ``c_fc`` and ``c_proj`` (their parameter names stay)."""

    def __init__(self, mlp: Module) -> None:
        super().__init__()
        self.c_fc, self.c_proj = mlp.c_fc, mlp.c_proj
        self.approximate = getattr(mlp, "approximate", "tanh")

    def forward(self, x: Tensor) -> Tensor:
        h = linear(x, self.c_fc.weight)
        h = bias_gelu(h, self.c_fc.bias, self.approximate) if self.c_fc.bias is not None else (
            bias_gelu(h, Tensor(np.zeros(h.shape[-1], h.dtype)), self.approximate))
        return linear(h, self.c_proj.weight, self.c_proj.bias)


class AddLayerNorm(Module):
    """``LayerNorm(d)`` of ``x + residual`` through ``add_layer_norm`` (LayerNorm's parameters)."""

    def __init__(self, normalized_shape: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.normalized_shape, self.eps = (normalized_shape,), eps
        self.weight = Parameter(np.ones(normalized_shape, dtype=np.float32))
        self.bias = Parameter(np.zeros(normalized_shape, dtype=np.float32))

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return add_layer_norm(x, residual, self.weight, self.bias, self.eps)


def fuse(model: Module) -> Module:
    """Swap fused kernels into ``model`` in place (and return it): every ``nn.Linear`` becomes a
    ``FastLinear`` and every GPT ``MLP`` (``c_fc`` + GELU + ``c_proj``) a ``FusedMLP``."""
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if child is None:
                continue
            if isinstance(child, MLP):
                parent._modules[name] = FusedMLP(child)
                fused = parent._modules[name]
                fused._modules["c_fc"] = FastLinear.from_linear(child.c_fc)
                fused._modules["c_proj"] = FastLinear.from_linear(child.c_proj)
            elif type(child) is Linear:
                parent._modules[name] = FastLinear.from_linear(child)
    return model


# ===================================================================== ONNX
@register_translation("bias_gelu")
def _bias_gelu(b: GraphBuilder, t: Tensor) -> None:
    x, bias = b.inputs(t)
    u, dtype = b.node("Add", [x, bias]), t.dtype

    def scalar(value: float, hint: str) -> str:
        return b.constant(np.asarray(value, dtype=dtype), hint)

    if t._attrs["approximate"] == "tanh":
        cube = b.node("Mul", [b.node("Mul", [u, u]), u])
        inner = b.node("Add", [u, b.node("Mul", [cube, scalar(_GELU_K, "gelu_c")])])
        core = b.node("Tanh", [b.node("Mul", [inner, scalar(_GELU_C, "gelu_k")])])
    else:
        core = b.node("Erf", [b.node("Div", [u, scalar(np.sqrt(2.0), "sqrt2")])])
    one_plus = b.node("Add", [core, scalar(1.0, "one")])
    b.node("Mul", [b.node("Mul", [u, scalar(0.5, "half")]), one_plus], b.out(t))


@register_translation("add_layer_norm")
def _add_layer_norm(b: GraphBuilder, t: Tensor) -> None:
    x, residual, *rest = t._prev
    names = [b.name(p) for p in rest]
    attrs = t._attrs
    scale = names.pop(0) if attrs["has_weight"] else b.constant(
        np.ones(t.shape[-1], t.dtype), "ln_scale")
    h = b.node("Add", [b.name(x), b.name(residual)])
    inputs = [h, scale] + ([names.pop(0)] if attrs["has_bias"] else [])
    b.node("LayerNormalization", inputs, b.out(t), axis=-1, epsilon=attrs["eps"])


@register_translation("relu_add")
def _relu_add(b: GraphBuilder, t: Tensor) -> None:
    b.node("Relu", [b.node("Add", b.inputs(t))], b.out(t))


@register_translation("fast_linear")
def _fast_linear(b: GraphBuilder, t: Tensor) -> None:
    names = b.inputs(t)
    product = b.node("MatMul", [names[0], b.node("Transpose", [names[1]], perm=[1, 0])],
                     b.out(t) if len(names) == 2 else None)
    if len(names) == 3:
        b.node("Add", [product, names[2]], b.out(t))
