"""Layers as functions (``reference_models.nn.functional``, like ``torch.nn.functional``).

The heavy ops (linear, conv2d, pooling, batch_norm, cross_entropy) are single graph nodes with a
hand-written vectorized backward: one BLAS call or a few whole-array passes each, never a Python
loop over pixels.

Images are NCHW to the user, but conv2d hands back its result as an NCHW *view* of channels-last
(NHWC) memory, which is the layout its matrix product produces for free. Elementwise numpy ops
keep that layout, so the next conv2d, batch_norm and max_pool2d read contiguous channel vectors
instead of paying for a transpose copy at every layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from reference_models.nn import im2col
from reference_models.parallel import map_chunks, split_rows
from reference_models.random import get_generator
from reference_models.tensor import (
    Tensor,
    as_tensor,
    gelu,
    log_softmax,
    record_op,
    sigmoid,
    softmax,
    tanh,
    unbroadcast,
    where,
)
from reference_models.tensor import relu as _relu

__all__ = [
    "adaptive_avg_pool2d", "avg_pool2d", "batch_norm", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "causal_mask", "conv1d", "conv2d", "conv_transpose2d", "cross_entropy",
    "dropout", "dropout2d", "embedding", "flatten", "gelu", "group_norm", "interpolate",
    "l1_loss", "layer_norm", "leaky_relu", "linear",
    "log_softmax", "masked_softmax", "max_pool2d", "mse_loss", "nll_loss", "one_hot", "pad",
    "relu", "rms_norm", "scaled_dot_product_attention", "sigmoid", "silu", "softmax", "tanh",
]


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    first, second = value
    return int(first), int(second)


# ===================================================================== linear
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias`` with ``weight`` shaped (out_features, in_features)."""
    x, w = input.data, weight.data
    out = x @ w.T
    if bias is not None:
        out += bias.data

    def backward(g: np.ndarray) -> tuple:
        g2 = g.reshape(-1, g.shape[-1])
        gx = (g @ w) if input.requires_grad else None
        gw = (g2.T @ x.reshape(-1, x.shape[-1])) if weight.requires_grad else None
        return (gx, gw) if bias is None else (gx, gw, g2.sum(axis=0))

    parents = (input, weight) if bias is None else (input, weight, bias)
    return record_op(out, parents, "linear", backward)


def flatten(input: Tensor, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    return input.flatten(start_dim, end_dim)


# ===================================================================== activations
def _maybe_in_place(input: Tensor, fn, inplace: bool) -> Tensor:
    """``inplace=True`` changes ``input`` itself, as PyTorch's does (same autograd rules as
    ``x.relu_()``); the values are the same either way."""
    return input._in_place((), fn) if inplace else fn(input)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_in_place(as_tensor(input), _relu, inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``x`` where positive, ``negative_slope * x`` elsewhere."""
    def run(a: Tensor) -> Tensor:  # built from where/gt/mul, so it exports as they do
        return where(a > 0, a, a * negative_slope)

    return _maybe_in_place(as_tensor(input), run, inplace)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * sigmoid(x)`` (also called swish)."""
    return _maybe_in_place(as_tensor(input), lambda a: a * sigmoid(a), inplace)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Class ids to int64 one-hot rows; ``num_classes=-1`` takes the largest id + 1."""
    ids = np.asarray(tensor.data if isinstance(tensor, Tensor) else tensor)
    if not np.issubdtype(ids.dtype, np.integer):
        raise RuntimeError("one_hot is only applicable to index tensor (integer ids)")
    count = int(ids.max()) + 1 if num_classes == -1 else int(num_classes)
    if ids.size and (ids.min() < 0 or ids.max() >= count):
        raise RuntimeError("Class values must be smaller than num_classes and non-negative.")
    return Tensor(np.eye(count, dtype=np.int64)[ids])


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad the last ``len(pad) // 2`` dimensions: ``(left, right, top, bottom, ...)``, as PyTorch
    lists them (last dimension first). Constant padding only."""
    if mode != "constant":
        raise NotImplementedError(f"F.pad mode={mode!r}: only mode='constant' is supported")
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad must have an even length of at most {2 * input.ndim}, got {pad}")
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    if any(a < 0 or b < 0 for a, b in widths):
        raise NotImplementedError("F.pad with negative padding (cropping) is not supported")
    out = np.pad(input.data, widths, constant_values=value)
    inner = tuple(slice(a, a + n) for (a, _), n in zip(widths, input.shape, strict=True))
    return record_op(out, (input,), "pad", lambda g: (g[inner],), pads=tuple(widths),
                     value=float(value))


# ===================================================================== convolution
def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int = 1,
           padding: int = 0, dilation: int = 1, groups: int = 1) -> Tensor:
    """1-D convolution over (N, C, L) as a 2-D one over (N, C, 1, L)."""
    if input.ndim != 3:
        raise ValueError(f"conv1d expects a 3-D (N, C, L) input, got shape {input.shape}")
    stride = stride[0] if isinstance(stride, Sequence) else stride
    padding = padding[0] if isinstance(padding, Sequence) else padding
    dilation = dilation[0] if isinstance(dilation, Sequence) else dilation
    out = conv2d(input.unsqueeze(2), weight.unsqueeze(2), bias, (1, stride), (0, padding),
                 (1, dilation), groups)
    return out.squeeze(2)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
           stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
           dilation: int | Sequence[int] = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation as im2col + BLAS matrix products (see ``nn.im2col``).

    A dilated kernel runs as the equivalent dense kernel with zeros between its taps (its
    gradient is read back at the taps), so one set of kernels serves both."""
    x = input.data
    if x.ndim != 4:
        raise ValueError(f"conv2d expects a 4-D NCHW input, got shape {x.shape}")
    n, c, h, w = x.shape
    o, cg, taps_h, taps_w = weight.shape
    if c != cg * groups:
        raise ValueError(f"conv2d: input has {c} channels, the weight expects {cg * groups}")
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    if dh < 1 or dw < 1:
        raise ValueError(f"conv2d: dilation must be positive, got {(dh, dw)}")
    kh, kw = (taps_h - 1) * dh + 1, (taps_w - 1) * dw + 1
    kernel = weight.data
    if (dh, dw) != (1, 1):
        kernel = np.zeros((o, cg, kh, kw), dtype=weight.dtype)
        kernel[:, :, ::dh, ::dw] = weight.data
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"conv2d: a {kh}x{kw} kernel does not fit a {h}x{w} input "
                         f"with padding {(ph, pw)}")
    xp = im2col.pad_channels_last(x.transpose(0, 2, 3, 1), ph, pw)
    geometry = dict(kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw), in_hw=(h, w),
                    out_hw=(ho, wo))
    kernels = _DenseConv if groups == 1 else _GroupedConv
    out, backward_parts = kernels.run(xp, kernel, groups, geometry)
    if bias is not None:
        out += bias.data
    result = out.transpose(0, 3, 1, 2)  # NCHW view of NHWC memory

    def backward(g: np.ndarray) -> tuple:
        g_nhwc = np.ascontiguousarray(g.transpose(0, 2, 3, 1))  # free for conv-shaped gradients
        gx, gw = backward_parts(g_nhwc, input.requires_grad, weight.requires_grad)
        gx = None if gx is None else gx.transpose(0, 3, 1, 2)
        if gw is not None and (dh, dw) != (1, 1):
            gw = np.ascontiguousarray(gw[:, :, ::dh, ::dw])
        if bias is None:
            return gx, gw
        return gx, gw, g_nhwc.reshape(-1, o).sum(axis=0)

    parents = (input, weight) if bias is None else (input, weight, bias)
    return record_op(result, parents, "conv2d", backward,
                     stride=(sh, sw), padding=(ph, pw), groups=groups,
                     kernel_shape=(taps_h, taps_w), dilation=(dh, dw))


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                     output_padding: int | Sequence[int] = 0, groups: int = 1,
                     dilation: int | Sequence[int] = 1) -> Tensor:
    """The transpose of ``conv2d`` (its input gradient as a layer): weight (C_in, C_out, kh, kw),
    output size ``(H - 1) * stride - 2 * padding + kh + output_padding``."""
    if groups != 1 or _pair(dilation) != (1, 1):
        raise NotImplementedError("conv_transpose2d with groups or dilation is not supported yet")
    x = input.data
    if x.ndim != 4 or x.shape[1] != weight.shape[0]:
        raise ValueError(f"conv_transpose2d expects (N, {weight.shape[0]}, H, W), got {x.shape}")
    (sh, sw), (ph, pw), (oh, ow) = _pair(stride), _pair(padding), _pair(output_padding)
    if oh >= sh or ow >= sw:
        raise ValueError("output_padding must be smaller than stride")
    kh, kw = weight.shape[2:]
    h, w = x.shape[2:]
    out_hw = ((h - 1) * sh - 2 * ph + kh + oh, (w - 1) * sw - 2 * pw + kw + ow)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    # the input gradient of a conv2d whose weight (O=C_in, C=C_out) maps out_hw back to (h, w)
    out = im2col.conv_input_grad(x_nhwc, weight.data, (sh, sw), (ph, pw), out_hw)
    if bias is not None:
        out = out + bias.data

    def backward(g: np.ndarray) -> tuple:
        g_nhwc = np.ascontiguousarray(g.transpose(0, 2, 3, 1))
        gp = im2col.pad_channels_last(g_nhwc, ph, pw)
        gx = gw = None
        if input.requires_grad:  # the forward convolution of g
            gx = im2col.conv_forward(gp, im2col.weight_matrix(weight.data), (kh, kw), (sh, sw),
                                     (h, w)).transpose(0, 3, 1, 2)
        if weight.requires_grad:
            rows = im2col.conv_weight_grad(gp, x_nhwc, (kh, kw), (sh, sw))
            gw = rows.reshape(weight.shape[0], kh, kw, weight.shape[1]).transpose(0, 3, 1, 2)
        if bias is None:
            return gx, gw
        return gx, gw, g_nhwc.reshape(-1, g.shape[1]).sum(axis=0)

    parents = (input, weight) if bias is None else (input, weight, bias)
    return record_op(out.transpose(0, 3, 1, 2), parents, "conv_transpose2d", backward,
                     stride=(sh, sw), padding=(ph, pw), output_padding=(oh, ow))


class _DenseConv:
    """groups=1: chunked im2col + GEMM forward and backward."""

    @staticmethod
    def run(xp: np.ndarray, weight: np.ndarray, groups: int, geo: dict):
        out = im2col.conv_forward(xp, im2col.weight_matrix(weight), geo["kernel"], geo["stride"],
                                  geo["out_hw"])

        def backward_parts(g_nhwc: np.ndarray, need_x: bool, need_w: bool):
            gw = gx = None
            if need_w:
                o, c, kh, kw = weight.shape
                gw_rows = im2col.conv_weight_grad(xp, g_nhwc, geo["kernel"], geo["stride"])
                gw = gw_rows.reshape(o, kh, kw, c).transpose(0, 3, 1, 2)
            if need_x:
                gx = im2col.conv_input_grad(g_nhwc, weight, geo["stride"], geo["padding"],
                                            geo["in_hw"])
            return gx, gw

        return out, backward_parts


class _GroupedConv:
    """groups>1: every group's product in one batched matmul over the whole batch."""

    @staticmethod
    def run(xp: np.ndarray, weight: np.ndarray, groups: int, geo: dict):
        (kh, kw), (ho, wo), (ph, pw) = geo["kernel"], geo["out_hw"], geo["padding"]
        n, c = xp.shape[0], xp.shape[3]
        o, cg = weight.shape[:2]
        og, k = o // groups, kh * kw * cg
        cols = np.ascontiguousarray(im2col.windows(xp, kh, kw, *geo["stride"], ho, wo))
        # (N,Ho,Wo,kh,kw,G,Cg) -> (G, NHW, kh*kw*Cg): each group's window rows
        cols = cols.reshape(n * ho * wo, kh * kw, groups, cg).transpose(2, 0, 1, 3).reshape(
            groups, n * ho * wo, k)
        w_mat = weight.reshape(groups, og, cg, kh, kw).transpose(0, 3, 4, 2, 1).reshape(
            groups, k, og)
        out = (cols @ w_mat).transpose(1, 0, 2).reshape(n, ho, wo, o)

        def backward_parts(g_nhwc: np.ndarray, need_x: bool, need_w: bool):
            gg = g_nhwc.reshape(n * ho * wo, groups, og).transpose(1, 0, 2)
            gw = gx = None
            if need_w:
                gw = (np.swapaxes(cols, 1, 2) @ gg).reshape(groups, kh, kw, cg, og).transpose(
                    0, 4, 3, 1, 2).reshape(o, cg, kh, kw)
            if need_x:
                dcols = (gg @ np.swapaxes(w_mat, 1, 2)).reshape(groups, n, ho, wo, kh, kw, cg)
                dcols = dcols.transpose(1, 2, 3, 4, 5, 0, 6).reshape(n, ho, wo, kh, kw, c)
                h, w = geo["in_hw"]
                dxp = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=xp.dtype)
                im2col.scatter_windows(dxp, dcols, geo["stride"])
                gx = dxp[:, ph:ph + h, pw:pw + w]
            return gx, gw

        return out, backward_parts


# ===================================================================== pooling
def _pool_setup(x: np.ndarray, kernel_size, stride, padding, fill: float):
    (kh, kw) = _pair(kernel_size)
    (sh, sw) = _pair(kernel_size if stride is None else stride)
    (ph, pw) = _pair(padding)
    n, c, h, w = x.shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    xp = im2col.pad_channels_last(x.transpose(0, 2, 3, 1), ph, pw, fill)
    return xp, (kh, kw), (sh, sw), (ph, pw), (ho, wo)


def _window_slice(i: int, j: int, stride: tuple[int, int], out_hw: tuple[int, int]):
    (sh, sw), (ho, wo) = stride, out_hw
    return (slice(None), slice(i, i + sh * ho, sh), slice(j, j + sw * wo, sw))


def max_pool2d(input: Tensor, kernel_size: int | Sequence[int],
               stride: int | Sequence[int] | None = None, padding: int | Sequence[int] = 0) -> Tensor:
    """Max over each window: an elementwise max of kh*kw strided views (NHWC memory)."""
    x = input.data
    xp, (kh, kw), st, pad, out_hw = _pool_setup(x, kernel_size, stride, padding, -np.inf)
    positions = [(i, j) for i in range(kh) for j in range(kw)]
    overlapping = st[0] < kh or st[1] < kw
    out = xp[_window_slice(0, 0, st, out_hw)].copy()
    for i, j in positions[1:]:
        np.maximum(out, xp[_window_slice(i, j, st, out_hw)], out=out)

    def backward(g: np.ndarray) -> tuple:
        g_nhwc = g.transpose(0, 2, 3, 1)
        dxp = np.zeros(xp.shape, dtype=x.dtype)
        unclaimed = None  # the first max of a window takes its gradient, as in PyTorch
        for i, j in positions:
            window = _window_slice(i, j, st, out_hw)
            hit = xp[window] == out
            if unclaimed is None:
                unclaimed = ~hit
            else:
                np.logical_and(hit, unclaimed, out=hit)
                np.logical_xor(unclaimed, hit, out=unclaimed)  # hit is a subset of unclaimed
            if overlapping:
                dxp[window] += g_nhwc * hit
            else:  # each input pixel is in one window only: write, don't accumulate
                np.multiply(g_nhwc, hit, out=dxp[window])
        ph, pw = pad
        return (dxp[:, ph:ph + x.shape[2], pw:pw + x.shape[3]].transpose(0, 3, 1, 2),)

    return record_op(out.transpose(0, 3, 1, 2), (input,), "max_pool2d", backward,
                     kernel_shape=(kh, kw), stride=st, padding=pad)


def avg_pool2d(input: Tensor, kernel_size: int | Sequence[int],
               stride: int | Sequence[int] | None = None, padding: int | Sequence[int] = 0) -> Tensor:
    """Mean over each window (zero padding counts, like PyTorch's count_include_pad=True)."""
    x = input.data
    xp, (kh, kw), st, pad, out_hw = _pool_setup(x, kernel_size, stride, padding, 0.0)
    positions = [(i, j) for i in range(kh) for j in range(kw)]
    out = np.zeros((x.shape[0], *out_hw, x.shape[1]), dtype=x.dtype)
    for i, j in positions:
        out += xp[_window_slice(i, j, st, out_hw)]
    out *= np.asarray(1.0 / (kh * kw), dtype=x.dtype)

    def backward(g: np.ndarray) -> tuple:
        share = g.transpose(0, 2, 3, 1) * np.asarray(1.0 / (kh * kw), dtype=g.dtype)
        dxp = np.zeros(xp.shape, dtype=x.dtype)
        for i, j in positions:
            dxp[_window_slice(i, j, st, out_hw)] += share
        ph, pw = pad
        return (dxp[:, ph:ph + x.shape[2], pw:pw + x.shape[3]].transpose(0, 3, 1, 2),)

    return record_op(out.transpose(0, 3, 1, 2), (input,), "avg_pool2d", backward,
                     kernel_shape=(kh, kw), stride=st, padding=pad)


def adaptive_avg_pool2d(input: Tensor, output_size: int | Sequence[int | None]) -> Tensor:
    """Average pooling to ``output_size``; supported when it divides the input size (the usual
    ``AdaptiveAvgPool2d(1)`` or ``(7, 7)`` on a 14x14 map), which is one ``avg_pool2d``."""
    h, w = input.shape[-2:]
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
    oh, ow = h if oh is None else oh, w if ow is None else ow
    if h % oh or w % ow:
        raise NotImplementedError(f"adaptive_avg_pool2d from {h}x{w} to {oh}x{ow}: only output "
                                  "sizes that divide the input size are supported")
    return avg_pool2d(input, (h // oh, w // ow))


# ===================================================================== normalization
def _sum_blocks(fn, blocks: list[slice]) -> np.ndarray:
    """Sum of ``fn(block)`` over row blocks, computed in parallel."""
    parts = map_chunks(fn, blocks)
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def _channels_last_2d(x: np.ndarray) -> np.ndarray:
    """(N, C, *) -> (M, C) with channels contiguous; free for conv2d outputs (NHWC memory)."""
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _from_channels_last_2d(y2: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.moveaxis(y2.reshape((shape[0], *shape[2:], shape[1])), -1, 1)


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel (axis 1) by batch statistics (training) or running ones (eval)."""
    x = input.data
    x2 = _channels_last_2d(x)
    m = x2.shape[0]
    dtype = x.dtype
    gamma = weight.data if weight is not None else np.ones(x.shape[1], dtype=dtype)
    beta = bias.data if bias is not None else np.zeros(x.shape[1], dtype=dtype)
    use_batch_stats = training or running_mean is None
    blocks = split_rows(m, x2.nbytes)  # each pass runs on all cores, a block of rows each
    if use_batch_stats:
        # the statistics accumulate in float64 (as PyTorch's CPU kernel does): a float32 sum
        # over N*H*W values loses about 10x more precision than the normalization itself
        mu64 = _sum_blocks(lambda r: x2[r].sum(axis=0, dtype=np.float64), blocks) / m
        mu = mu64.astype(dtype)
        centered = np.empty_like(x2)

        def center(r: slice) -> np.ndarray:
            np.subtract(x2[r], mu, out=centered[r])
            return np.einsum("ij,ij->j", centered[r], centered[r], dtype=np.float64)

        # var of x = var of (x - mu32); the shift mu32 - mu64 moves the mean of centered
        shift = mu - mu64
        var = _sum_blocks(center, blocks) / m - shift * shift
        if training and running_mean is not None:
            # in place, so the module's buffers stay the same arrays
            running_mean.data *= 1 - momentum
            running_mean.data += momentum * mu64
            running_var.data *= 1 - momentum
            running_var.data += (momentum * m / max(m - 1, 1)) * var
    else:
        mu, var, centered = running_mean.data, running_var.data, None
    inv_std = (1.0 / np.sqrt(var + eps)).astype(dtype)
    scale = gamma * inv_std
    if use_batch_stats:  # (x - mu64) * scale = (x - mu32) * scale + (mu32 - mu64) * scale
        source, shift = centered, (beta + shift * (gamma * inv_std)).astype(dtype)
    else:
        source, shift = x2, beta - mu * scale
    y2 = np.empty_like(x2)

    def normalize(r: slice) -> None:
        np.multiply(source[r], scale, out=y2[r])
        y2[r] += shift

    map_chunks(normalize, blocks)
    out = _from_channels_last_2d(y2, x.shape)

    def backward(g: np.ndarray) -> tuple:
        g2 = _channels_last_2d(g)
        gbeta = _sum_blocks(lambda r: g2[r].sum(axis=0), blocks)
        gx2 = np.empty_like(g2)
        if use_batch_stats:
            ggamma = _sum_blocks(lambda r: np.einsum("ij,ij->j", g2[r], centered[r]),
                                 blocks) * inv_std
            # d/dx of gamma * (x - mean) / std with the batch mean and std depending on x:
            # scale * (g - mean(g) - xhat * mean(g * xhat)), in three passes
            k_centered, k_const = scale * inv_std * ggamma / m, scale * gbeta / m

            def input_grad(r: slice) -> None:
                np.multiply(g2[r], scale, out=gx2[r])
                gx2[r] -= centered[r] * k_centered
                gx2[r] -= k_const
        else:
            ggamma = _sum_blocks(lambda r: np.einsum("ij,ij->j", g2[r], x2[r] - mu),
                                 blocks) * inv_std

            def input_grad(r: slice) -> None:
                np.multiply(g2[r], scale, out=gx2[r])

        if input.requires_grad:
            map_chunks(input_grad, blocks)
        gx = _from_channels_last_2d(gx2, x.shape) if input.requires_grad else None
        grads = [gx]
        if weight is not None:
            grads.append(ggamma)
        if bias is not None:
            grads.append(gbeta)
        return (*grads, *[None] * len(stats))

    # the running statistics are parents too (without gradients): export reads them from there
    stats = [] if running_mean is None else [running_mean, running_var]
    affine = [t for t in (weight, bias) if t is not None]
    return record_op(out, [input, *affine, *stats], "batch_norm", backward, eps=eps,
                     training=use_batch_stats, has_weight=weight is not None,
                     has_bias=bias is not None, has_running_stats=bool(stats))


# ===================================================================== losses
def cross_entropy(input: Tensor, target: Tensor | np.ndarray, weight: Tensor | None = None,
                  size_average: None = None, ignore_index: int = -100, reduce: None = None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy from logits; ``target`` holds class ids or class probabilities.

    ``input`` is (N, C) or (N, C, d1, ...) with class ids (N, d1, ...), as in PyTorch. Targets
    equal to ``ignore_index`` add nothing and do not count in the mean. ``weight`` scales each
    class's terms; with class ids the mean divides by the targets' total weight (PyTorch's rule).
    """
    if size_average is not None or reduce is not None:
        raise TypeError("size_average and reduce are deprecated in PyTorch: use reduction=")
    num_classes = input.shape[1]
    # one row of C scores per (sample, position): (N, C, d...) -> (N*d..., C)
    logits = np.moveaxis(input.data, 1, -1).reshape(-1, num_classes)
    tgt = target.data if isinstance(target, Tensor) else np.asarray(target)
    rows = logits.shape[0]
    kept = None  # rows whose target is not ignore_index (None: all)
    if np.issubdtype(tgt.dtype, np.floating):
        probs = np.moveaxis(tgt, 1, -1).reshape(-1, num_classes).astype(logits.dtype, copy=False)
    else:
        tgt = tgt.astype(np.int64, copy=False).reshape(-1)
        if tgt.shape == (rows,) and (tgt == ignore_index).any():
            kept = tgt != ignore_index
            tgt = np.where(kept, tgt, 0)
        if tgt.shape != (rows,) or tgt.min(initial=0) < 0 or tgt.max(initial=0) >= num_classes:
            raise ValueError(f"cross_entropy targets must be {rows} class ids in [0, "
                             f"{num_classes}); got shape {tgt.shape}")
        probs = np.zeros_like(logits)
        probs[np.arange(rows), tgt] = 1
    if label_smoothing:
        probs = probs * (1 - label_smoothing) + label_smoothing / num_classes
    if kept is not None:
        probs *= kept[:, None]
    counted = rows if kept is None else int(kept.sum())
    if weight is not None:
        class_weights = np.asarray(getattr(weight, "data", weight), dtype=logits.dtype)
        if class_weights.shape != (num_classes,):
            raise ValueError(f"weight must have one entry per class ({num_classes}), got shape "
                             f"{class_weights.shape}")
        if not np.issubdtype(tgt.dtype, np.floating):
            counted = float((class_weights[tgt] * (1 if kept is None else kept)).sum())
        probs = probs * class_weights
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    losses = -(probs * log_probs).sum(axis=1)
    out = _reduce_rows(losses, counted, reduction, input.shape[:1] + input.shape[2:])

    def backward(g: np.ndarray) -> tuple:
        # d loss / d logits = softmax - target distribution, per row
        row_g = (g.reshape(-1, 1) if reduction == "none" else g / counted
                 if reduction == "mean" else g)
        # d/d logits of -(q . log_softmax) = softmax * sum(q) - q (sum(q) is 1 for a plain
        # one-hot row, 0 for an ignored one)
        grad = np.exp(log_probs) * probs.sum(axis=1, keepdims=True) - probs
        grad *= row_g.astype(logits.dtype, copy=False)
        grad = grad.reshape(input.shape[0], *input.shape[2:], num_classes)
        return (np.moveaxis(grad, -1, 1),)

    return record_op(np.asarray(out, dtype=logits.dtype), (input,), "cross_entropy", backward)


def _reduce_rows(losses: np.ndarray, counted: float, reduction: str,
                 shape: tuple[int, ...]) -> np.ndarray:
    """A class loss's per-row values reduced: the mean divides by ``counted`` (rows kept, or their
    class weights), so an all-ignored batch gives 0/0 = nan, as in PyTorch."""
    if reduction == "mean":
        return losses.sum() / np.asarray(counted, dtype=losses.dtype)
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses.reshape(shape)
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', not {reduction!r}")


def _reduce(losses: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', not {reduction!r}")


def mse_loss(input: Tensor, target: Tensor | np.ndarray, reduction: str = "mean") -> Tensor:
    diff = input - as_tensor(target)
    return _reduce(diff * diff, reduction)


def l1_loss(input: Tensor, target: Tensor | np.ndarray, reduction: str = "mean") -> Tensor:
    return _reduce((input - as_tensor(target)).abs(), reduction)


def nll_loss(input: Tensor, target: Tensor | np.ndarray, weight: Tensor | None = None,
             ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class ids, from log-probabilities (``log_softmax`` output):
    ``nll_loss(log_softmax(x, 1), t)`` is ``cross_entropy(x, t)``."""
    if weight is not None:
        raise NotImplementedError("nll_loss(weight=...) (per-class weights) is not supported yet")
    num_classes = input.shape[1]
    logp = np.moveaxis(input.data, 1, -1).reshape(-1, num_classes)
    tgt = np.asarray(target.data if isinstance(target, Tensor) else target).reshape(-1)
    if not np.issubdtype(tgt.dtype, np.integer) or tgt.shape != (logp.shape[0],):
        raise ValueError(f"nll_loss targets must be {logp.shape[0]} integer class ids")
    kept = tgt != ignore_index
    ids = np.where(kept, tgt, 0)
    if ids.min(initial=0) < 0 or ids.max(initial=0) >= num_classes:
        raise ValueError(f"nll_loss targets must be class ids in [0, {num_classes})")
    rows = np.arange(len(ids))
    losses = -logp[rows, ids] * kept
    counted = int(kept.sum())
    out = _reduce_rows(losses, counted, reduction, input.shape[:1] + input.shape[2:])

    def backward(g: np.ndarray) -> tuple:
        row_g = g.reshape(-1) if reduction == "none" else np.broadcast_to(
            g / counted if reduction == "mean" else g, ids.shape)
        grad = np.zeros_like(logp)
        grad[rows, ids] = -row_g * kept
        grad = grad.reshape(input.shape[0], *input.shape[2:], num_classes)
        return (np.moveaxis(grad, -1, 1),)

    return record_op(np.asarray(out, dtype=logp.dtype), (input,), "nll_loss", backward)


def binary_cross_entropy(input: Tensor, target: Tensor | np.ndarray,
                         reduction: str = "mean") -> Tensor:
    """``-(t log p + (1 - t) log(1 - p))`` for probabilities ``p``; each log is clamped at -100
    as in PyTorch, so p = 0 or 1 gives a large finite loss."""
    p = input.data
    t = np.asarray(target.data if isinstance(target, Tensor) else target, dtype=p.dtype)
    if p.size and (p.min() < 0 or p.max() > 1):
        raise RuntimeError("all elements of input should be between 0 and 1")
    with np.errstate(divide="ignore"):
        log_p, log_q = np.maximum(np.log(p), -100), np.maximum(np.log1p(-p), -100)
    losses = record_op(-(t * log_p + (1 - t) * log_q), (input,), "binary_cross_entropy",
                       lambda g: (g * (p - t) / np.maximum(p * (1 - p), 1e-12),))
    return _reduce(losses, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor | np.ndarray,
                                     reduction: str = "mean") -> Tensor:
    """Sigmoid and binary cross-entropy in one stable step (no overflow for large logits)."""
    x = input.data
    t = np.asarray(target.data if isinstance(target, Tensor) else target, dtype=x.dtype)
    losses = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    out = record_op(losses, (input,), "binary_cross_entropy_with_logits",
                    lambda g: (g * (sigmoid(Tensor._wrap(x)).data - t),))
    return _reduce(out, reduction)


# ===================================================================== regularization, lookup
def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            generator: np.random.Generator | None = None) -> Tensor:
    """Zero each element with probability ``p`` and scale survivors by 1/(1-p) (inverted dropout)."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return input
    rng = get_generator(generator)
    mask = (rng.random(input.shape, dtype=np.float32) >= p).astype(input.dtype)
    mask *= np.asarray(1 / (1 - p), dtype=input.dtype)
    return record_op(input.data * mask, (input,), "dropout", lambda g: (g * mask,), p=p)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              generator: np.random.Generator | None = None) -> Tensor:
    """Zero whole channels (axis 1) with probability ``p``, scaling the rest by 1/(1-p)."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return input
    shape = input.shape[:2] + (1,) * (input.ndim - 2)
    keep = get_generator(generator).random(shape, dtype=np.float32) >= p
    mask = keep.astype(input.dtype) * np.asarray(1 / (1 - p), dtype=input.dtype)
    return record_op(input.data * mask, (input,), "dropout", lambda g: (g * mask,), p=p)


def interpolate(input: Tensor, size: int | Sequence[int] | None = None,
                scale_factor: float | Sequence[float] | None = None,
                mode: str = "nearest") -> Tensor:
    """Resize the spatial dimensions (after N, C). ``mode="nearest"`` only, PyTorch's rule:
    output pixel ``i`` reads input pixel ``floor(i * in / out)``."""
    if mode != "nearest":
        raise NotImplementedError(f"F.interpolate mode={mode!r}: only 'nearest' is supported")
    spatial = input.shape[2:]
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        out = (size,) * len(spatial) if isinstance(size, int) else tuple(size)
        ratios = [n / o for n, o in zip(spatial, out, strict=True)]
    else:
        factors = ((scale_factor,) * len(spatial) if isinstance(scale_factor, int | float)
                   else tuple(scale_factor))
        out = tuple(int(math.floor(n * f)) for n, f in zip(spatial, factors, strict=True))
        ratios = [1 / f for f in factors]
    index: list = [slice(None), slice(None)]
    for axis, (n, o, r) in enumerate(zip(spatial, out, ratios, strict=True)):
        picks = np.minimum(np.floor(np.arange(o) * r).astype(np.int64), n - 1)
        shape = [1] * len(spatial)
        shape[axis] = o
        index.append(picks.reshape(shape))
    return input[tuple(index)]


def embedding(input: Tensor | np.ndarray, weight: Tensor,
              padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` picked by integer ids (``input`` of any shape); the row
    ``padding_idx`` gets no gradient, as in PyTorch."""
    ids = np.asarray(input.data if isinstance(input, Tensor) else input, dtype=np.int64)
    if padding_idx is not None and padding_idx < 0:
        padding_idx += weight.shape[0]

    def backward(g: np.ndarray) -> tuple:
        full = np.zeros(weight.shape, dtype=g.dtype)
        np.add.at(full, ids.reshape(-1), g.reshape(-1, weight.shape[1]))
        if padding_idx is not None:
            full[padding_idx] = 0
        return (full, None)

    ids_tensor = input if isinstance(input, Tensor) else Tensor(ids)
    return record_op(weight.data[ids], (weight, ids_tensor), "embedding", backward)


# ===================================================================== attention

_CAUSAL_BIAS: dict[tuple[int, int, int, str], np.ndarray] = {}


def causal_mask(query_length: int, key_length: int, offset: int = 0) -> np.ndarray:
    """Boolean ``[query_length, key_length]``: query ``i`` (at position ``offset + i``) may see key
    ``j`` when ``j <= offset + i``. ``offset`` is the number of cached keys before the queries."""
    return np.tri(query_length, key_length, offset, dtype=bool)


def _causal_bias(query_length: int, key_length: int, offset: int, dtype: np.dtype) -> np.ndarray:
    """0 where allowed, -inf where forbidden: ``score + 0.0`` is exactly ``score``."""
    key = (query_length, key_length, offset, np.dtype(dtype).str)
    if key not in _CAUSAL_BIAS:
        allowed = causal_mask(query_length, key_length, offset)
        _CAUSAL_BIAS[key] = np.where(allowed, 0.0, -np.inf).astype(dtype)
    return _CAUSAL_BIAS[key]


def masked_softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis where ``-inf`` scores get weight 0 (all ``-inf``: all 0)."""
    top = scores.max(axis=-1, keepdims=True)
    top[~np.isfinite(top)] = 0  # a fully masked row: exp(-inf) = 0 everywhere, no NaN
    weights = np.exp(scores - top, out=scores)
    total = weights.sum(axis=-1, keepdims=True)
    total[total == 0] = 1
    weights /= total
    return weights


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | np.ndarray | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None, enable_gqa: bool = False,
                                 generator: np.random.Generator | None = None) -> Tensor:
    """``softmax(query @ key^T * scale + mask) @ value`` over the last two dimensions.

    Shapes: query ``[..., Hq, L, E]``, key ``[..., Hk, S, E]``, value ``[..., Hk, S, Ev]``. With
    ``enable_gqa`` (grouped-query attention) ``Hq`` may be a multiple of ``Hk``: each key/value head
    serves ``Hq / Hk`` consecutive query heads.
    """
    q, k, v = query.data, key.data, value.data
    length, source = q.shape[-2], k.shape[-2]
    groups = _gqa_groups(q, k, v, enable_gqa)
    if groups > 1:
        k, v = np.repeat(k, groups, axis=-3), np.repeat(v, groups, axis=-3)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    scores = q @ np.swapaxes(k, -1, -2)
    scores *= np.asarray(scale, dtype=scores.dtype)
    mask = None if attn_mask is None else as_tensor(attn_mask)
    if is_causal:
        if mask is not None:
            raise ValueError("pass either attn_mask or is_causal=True, not both (as in PyTorch)")
        scores += _causal_bias(length, source, 0, scores.dtype)
    elif mask is not None:
        if mask.dtype == np.bool_:
            scores = np.where(mask.data, scores, np.asarray(-np.inf, dtype=scores.dtype))
        else:
            scores += mask.data.astype(scores.dtype, copy=False)
    weights = masked_softmax(scores)
    dropped = weights
    if dropout_p > 0:
        keep = get_generator(generator).random(weights.shape, dtype=np.float32) >= dropout_p
        dropped = weights * (keep / np.asarray(1 - dropout_p, dtype=weights.dtype))
    out = dropped @ v

    def backward(g: np.ndarray) -> tuple:
        gv = np.swapaxes(dropped, -1, -2) @ g
        gw = g @ np.swapaxes(v, -1, -2)
        if dropped is not weights:
            gw *= keep / np.asarray(1 - dropout_p, dtype=gw.dtype)
        gs = gw
        gs -= (gw * weights).sum(axis=-1, keepdims=True)
        gs *= weights
        # a float mask is added to the scores: its gradient is theirs (a learned position bias)
        gmask = (unbroadcast(gs.copy(), mask.shape) if mask is not None and mask.requires_grad
                 else None)
        gs *= np.asarray(scale, dtype=gs.dtype)
        gq = gs @ k
        gk = np.swapaxes(gs, -1, -2) @ q
        if groups > 1:
            gk = gk.reshape(*gk.shape[:-3], -1, groups, *gk.shape[-2:]).sum(axis=-3)
            gv = gv.reshape(*gv.shape[:-3], -1, groups, *gv.shape[-2:]).sum(axis=-3)
        grads = (unbroadcast(gq, query.shape), unbroadcast(gk, key.shape),
                 unbroadcast(gv, value.shape))
        return grads if mask is None else (*grads, gmask)

    parents = (query, key, value) if mask is None else (query, key, value, mask)
    mask_kind = None if mask is None else ("bool" if mask.dtype == np.bool_ else "float")
    return record_op(out, parents, "scaled_dot_product_attention", backward, scale=scale,
                     is_causal=bool(is_causal), groups=groups, mask_kind=mask_kind)


def _gqa_groups(q: np.ndarray, k: np.ndarray, v: np.ndarray, enable_gqa: bool) -> int:
    if k.shape[-2] != v.shape[-2] or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"attention shapes do not fit: query {list(q.shape)}, key "
                         f"{list(k.shape)}, value {list(v.shape)} (need query [..., L, E], key "
                         "[..., S, E], value [..., S, Ev])")
    if q.ndim < 3 or q.shape[-3] == k.shape[-3]:
        return 1
    hq, hk = q.shape[-3], k.shape[-3]
    if not enable_gqa or hq % hk or k.shape[-3] != v.shape[-3]:
        raise ValueError(f"query has {hq} heads and key/value {hk}: pass enable_gqa=True for "
                         "grouped-query attention, with query heads a multiple of key heads")
    return hq // hk


# ===================================================================== normalization

def _normalized_axes(x: np.ndarray, normalized_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(normalized_shape)
    if x.shape[x.ndim - len(shape):] != shape:
        raise ValueError(f"normalized_shape {list(shape)} does not match the last dimensions of an "
                         f"input of shape {list(x.shape)}")
    return tuple(range(x.ndim - len(shape), x.ndim))


def _affine_grads(g: np.ndarray, xhat: np.ndarray, weight: Tensor | None, bias: Tensor | None,
                  lead: tuple[int, ...]) -> list[np.ndarray]:
    grads = []
    if weight is not None:
        grads.append((g * xhat).sum(axis=lead))
    if bias is not None:
        grads.append(g.sum(axis=lead))
    return grads


def layer_norm(input: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the trailing ``normalized_shape``."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    x = input.data
    axes = _normalized_axes(x, shape)
    lead = tuple(range(x.ndim - len(shape)))
    count = int(np.prod(shape))
    centered = x - x.mean(axis=axes, keepdims=True)
    var = np.square(centered).mean(axis=axes, keepdims=True)
    rstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
    xhat = centered * rstd
    out = xhat * weight.data if weight is not None else xhat.copy()
    if bias is not None:
        out += bias.data

    def backward(g: np.ndarray) -> tuple:
        gxhat = g * weight.data if weight is not None else g
        gx = None
        if input.requires_grad:
            proj = (gxhat * xhat).sum(axis=axes, keepdims=True) / count
            gx = gxhat - gxhat.sum(axis=axes, keepdims=True) / count
            gx -= xhat * proj
            gx *= rstd
        return (gx, *_affine_grads(g, xhat, weight, bias, lead))

    parents = [input] + [t for t in (weight, bias) if t is not None]
    return record_op(out, parents, "layer_norm", backward, axis=-len(shape), eps=float(eps),
                     has_weight=weight is not None, has_bias=bias is not None)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize each sample over groups of ``C / num_groups`` channels (and all positions),
    then scale and shift per channel: a ``layer_norm`` over each group."""
    n, c = input.shape[:2]
    if c % num_groups:
        raise ValueError(f"num_channels ({c}) must be divisible by num_groups ({num_groups})")
    grouped = input.reshape(n, num_groups, -1)
    out = layer_norm(grouped, (grouped.shape[-1],), eps=eps).reshape(input.shape)
    per_channel = (1, c) + (1,) * (input.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(per_channel)
    if bias is not None:
        out = out + bias.reshape(per_channel)
    return out


def rms_norm(input: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """``x / sqrt(mean(x^2) + eps) * weight``; ``eps=None`` is the dtype's epsilon, as in PyTorch."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    x = input.data
    axes = _normalized_axes(x, shape)
    lead = tuple(range(x.ndim - len(shape)))
    count = int(np.prod(shape))
    eps = float(np.finfo(x.dtype).eps) if eps is None else float(eps)
    rrms = (1.0 / np.sqrt(np.square(x).mean(axis=axes, keepdims=True) + eps)).astype(x.dtype)
    xhat = x * rrms
    out = xhat * weight.data if weight is not None else xhat

    def backward(g: np.ndarray) -> tuple:
        gxhat = g * weight.data if weight is not None else g
        gx = None
        if input.requires_grad:
            gx = gxhat - xhat * ((gxhat * xhat).sum(axis=axes, keepdims=True) / count)
            gx *= rrms
        return (gx, *_affine_grads(g, xhat, weight, None, lead))

    parents = [input] + ([weight] if weight is not None else [])
    return record_op(out, parents, "rms_norm", backward, axes=axes, eps=eps,
                     has_weight=weight is not None)
