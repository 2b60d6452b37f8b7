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

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from reference_models.random import get_generator
from reference_models.tensor import (
    Tensor,
    as_tensor,
    gelu,
    log_softmax,
    record_op,
    relu,
    sigmoid,
    softmax,
    tanh,
)

__all__ = [
    "avg_pool2d", "batch_norm", "conv2d", "cross_entropy", "dropout", "embedding", "flatten",
    "gelu", "linear", "log_softmax", "max_pool2d", "mse_loss", "relu", "sigmoid", "softmax",
    "tanh",
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


# ===================================================================== convolution
def _pad_channels_last(x_nhwc: np.ndarray, ph: int, pw: int, fill: float = 0.0) -> np.ndarray:
    """Zero-padded NHWC copy; returns ``x_nhwc`` itself (no copy) when there is no padding."""
    if ph == 0 and pw == 0:
        return x_nhwc
    n, h, w, c = x_nhwc.shape
    out = np.full((n, h + 2 * ph, w + 2 * pw, c), fill, dtype=x_nhwc.dtype)
    out[:, ph:ph + h, pw:pw + w] = x_nhwc
    return out


def _windows(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int, ho: int, wo: int) -> np.ndarray:
    """Strided (N, Ho, Wo, kh, kw, C) view of every kernel window of padded NHWC ``xp`` (no copy)."""
    s0, s1, s2, s3 = xp.strides
    return as_strided(xp, (xp.shape[0], ho, wo, kh, kw, xp.shape[3]),
                      (s0, s1 * sh, s2 * sw, s1, s2, s3), writeable=False)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
           stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
           groups: int = 1) -> Tensor:
    """2-D cross-correlation as im2col + one matrix product (per group), forward and backward."""
    x = input.data
    if x.ndim != 4:
        raise ValueError(f"conv2d expects a 4-D NCHW input, got shape {x.shape}")
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    if c != cg * groups:
        raise ValueError(f"conv2d: input has {c} channels, the weight expects {cg * groups}")
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    og = o // groups

    xp = _pad_channels_last(x.transpose(0, 2, 3, 1), ph, pw)
    cols = np.ascontiguousarray(_windows(xp, kh, kw, sh, sw, ho, wo))  # (N,Ho,Wo,kh,kw,C)
    # weight (O, Cg, kh, kw) -> (G, kh*kw*Cg, Og): rows ordered like a group's column entries
    w_mat = weight.data.reshape(groups, og, cg, kh, kw).transpose(0, 3, 4, 2, 1)
    w_mat = w_mat.reshape(groups, kh * kw * cg, og)
    if groups == 1:
        cols = cols.reshape(n * ho * wo, kh * kw * c)
        out = cols @ w_mat[0]
    else:
        cols = cols.reshape(n * ho * wo, kh * kw, groups, cg).transpose(2, 0, 1, 3)
        cols = cols.reshape(groups, n * ho * wo, kh * kw * cg)
        out = (cols @ w_mat).transpose(1, 0, 2).reshape(n * ho * wo, o)
    if bias is not None:
        out += bias.data
    result = out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)  # NCHW view of NHWC memory

    # Stride 1: the input gradient is itself a convolution (of the padded output gradient with
    # the flipped kernel), one im2col + GEMM, much cheaper than kh*kw scattered col2im adds.
    transposed_route = groups == 1 and (sh, sw) == (1, 1) and ph < kh and pw < kw and c >= 16

    def backward(g: np.ndarray) -> tuple:
        g2 = np.ascontiguousarray(g.transpose(0, 2, 3, 1)).reshape(n * ho * wo, o)
        gb = g2.sum(axis=0) if bias is not None else None
        gx = gw = None
        if groups == 1:
            if weight.requires_grad:
                # (O, NHW) @ (NHW, K) runs about twice as fast in OpenBLAS as (K, NHW) @ (NHW, O)
                gw_mat = (g2.T @ cols).T[None]
            if input.requires_grad and not transposed_route:
                dcols = g2 @ w_mat[0].T
        else:
            gg = g2.reshape(n * ho * wo, groups, og).transpose(1, 0, 2)
            if weight.requires_grad:
                gw_mat = np.swapaxes(cols, 1, 2) @ gg
            if input.requires_grad:
                dcols = (gg @ np.swapaxes(w_mat, 1, 2)).transpose(1, 0, 2)
        if weight.requires_grad:
            gw = gw_mat.reshape(groups, kh, kw, cg, og).transpose(0, 4, 3, 1, 2).reshape(
                o, cg, kh, kw)
        if input.requires_grad and transposed_route:
            gx = _conv_input_grad(g2.reshape(n, ho, wo, o), weight.data, (ph, pw))
        elif input.requires_grad:
            if groups == 1:
                dcols = dcols.reshape(n, ho, wo, kh, kw, c)
            else:  # (NHW, G, kh*kw*Cg) -> (N, Ho, Wo, kh, kw, G*Cg)
                dcols = dcols.reshape(n, ho, wo, groups, kh, kw, cg).transpose(
                    0, 1, 2, 4, 5, 3, 6).reshape(n, ho, wo, kh, kw, c)
            gx = _col2im(dcols, (n, h, w, c), (sh, sw), (ph, pw))
        return (gx, gw) if bias is None else (gx, gw, gb)

    parents = (input, weight) if bias is None else (input, weight, bias)
    return record_op(result, parents, "conv2d", backward,
                     stride=(sh, sw), padding=(ph, pw), groups=groups, kernel_shape=(kh, kw))


def _conv_input_grad(g_nhwc: np.ndarray, weight: np.ndarray,
                     padding: tuple[int, int]) -> np.ndarray:
    """d loss / d input of a stride-1 conv: full correlation of the gradient with flipped kernels."""
    o, c, kh, kw = weight.shape
    n, ho, wo, _ = g_nhwc.shape
    h, w = ho + kh - 1 - 2 * padding[0], wo + kw - 1 - 2 * padding[1]
    gp = _pad_channels_last(g_nhwc, kh - 1 - padding[0], kw - 1 - padding[1])
    cols = np.ascontiguousarray(_windows(gp, kh, kw, 1, 1, h, w)).reshape(n * h * w, kh * kw * o)
    flipped = weight[:, :, ::-1, ::-1].transpose(2, 3, 0, 1).reshape(kh * kw * o, c)
    return (cols @ flipped).reshape(n, h, w, c).transpose(0, 3, 1, 2)


def _col2im(dcols: np.ndarray, shape_nhwc: tuple[int, int, int, int], stride: tuple[int, int],
            padding: tuple[int, int]) -> np.ndarray:
    """Add each kernel position's column gradients back onto the input: kh*kw strided adds."""
    n, h, w, c = shape_nhwc
    _, ho, wo, kh, kw, _ = dcols.shape
    (sh, sw), (ph, pw) = stride, padding
    dxp = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, i:i + sh * ho:sh, j:j + sw * wo:sw] += dcols[:, :, :, i, j]
    return dxp[:, ph:ph + h, pw:pw + w].transpose(0, 3, 1, 2)


# ===================================================================== pooling
def _pool_setup(x: np.ndarray, kernel_size, stride, padding, fill: float):
    (kh, kw) = _pair(kernel_size)
    (sh, sw) = _pair(kernel_size if stride is None else stride)
    (ph, pw) = _pair(padding)
    n, c, h, w = x.shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    xp = _pad_channels_last(x.transpose(0, 2, 3, 1), ph, pw, fill)
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


# ===================================================================== normalization
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
    if use_batch_stats:
        mu = x2.mean(axis=0)
        centered = x2 - mu
        var = np.einsum("ij,ij->j", centered, centered) / m  # no squared temporary
        if training and running_mean is not None:
            # in place, so the module's buffers stay the same arrays
            running_mean.data *= 1 - momentum
            running_mean.data += momentum * mu
            running_var.data *= 1 - momentum
            running_var.data += (momentum * m / max(m - 1, 1)) * var
    else:
        mu, var, centered = running_mean.data, running_var.data, None
    inv_std = (1.0 / np.sqrt(var + eps)).astype(dtype)
    scale = gamma * inv_std
    y2 = (centered if use_batch_stats else x2) * scale
    y2 += beta if use_batch_stats else beta - mu * scale
    out = _from_channels_last_2d(y2, x.shape)

    def backward(g: np.ndarray) -> tuple:
        g2 = _channels_last_2d(g)
        gbeta = g2.sum(axis=0)
        if use_batch_stats:
            ggamma = np.einsum("ij,ij->j", g2, centered) * inv_std
            # d/dx of gamma * (x - mean) / std with the batch mean and std depending on x:
            # scale * (g - mean(g) - xhat * mean(g * xhat)), in three passes
            gx2 = g2 * scale
            gx2 -= centered * (scale * inv_std * ggamma / m)
            gx2 -= scale * gbeta / m
        else:
            ggamma = np.einsum("ij,ij->j", g2, (x2 - mu) * inv_std)
            gx2 = g2 * scale
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
def cross_entropy(input: Tensor, target: Tensor | np.ndarray, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy from logits; ``target`` holds class ids or class probabilities.

    ``input`` is (N, C) or (N, C, d1, ...) with class ids (N, d1, ...), as in PyTorch.
    """
    num_classes = input.shape[1]
    # one row of C scores per (sample, position): (N, C, d...) -> (N*d..., C)
    logits = np.moveaxis(input.data, 1, -1).reshape(-1, num_classes)
    tgt = target.data if isinstance(target, Tensor) else np.asarray(target)
    rows = logits.shape[0]
    if np.issubdtype(tgt.dtype, np.floating):
        probs = np.moveaxis(tgt, 1, -1).reshape(-1, num_classes).astype(logits.dtype, copy=False)
    else:
        tgt = tgt.astype(np.int64, copy=False).reshape(-1)
        if tgt.shape != (rows,) or tgt.min(initial=0) < 0 or tgt.max(initial=0) >= num_classes:
            raise ValueError(f"cross_entropy targets must be {rows} class ids in [0, "
                             f"{num_classes}); got shape {tgt.shape}")
        probs = np.zeros_like(logits)
        probs[np.arange(rows), tgt] = 1
    if label_smoothing:
        probs = probs * (1 - label_smoothing) + label_smoothing / num_classes
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    losses = -(probs * log_probs).sum(axis=1)
    if reduction == "mean":
        out = losses.mean()
    elif reduction == "sum":
        out = losses.sum()
    elif reduction == "none":
        out = losses.reshape(input.shape[:1] + input.shape[2:])
    else:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', not {reduction!r}")

    def backward(g: np.ndarray) -> tuple:
        # d loss / d logits = softmax - target distribution, per row
        row_g = g.reshape(-1, 1) if reduction == "none" else g / rows if reduction == "mean" else g
        grad = (np.exp(log_probs) - probs) * row_g.astype(logits.dtype, copy=False)
        grad = grad.reshape(input.shape[0], *input.shape[2:], num_classes)
        return (np.moveaxis(grad, -1, 1),)

    return record_op(np.asarray(out, dtype=logits.dtype), (input,), "cross_entropy", backward)


def mse_loss(input: Tensor, target: Tensor | np.ndarray, reduction: str = "mean") -> Tensor:
    diff = input - as_tensor(target)
    squared = diff * diff
    if reduction == "mean":
        return squared.mean()
    if reduction == "sum":
        return squared.sum()
    if reduction == "none":
        return squared
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', not {reduction!r}")


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


def embedding(input: Tensor | np.ndarray, weight: Tensor) -> Tensor:
    """Rows of ``weight`` picked by integer ids (``input`` of any shape)."""
    ids = np.asarray(input.data if isinstance(input, Tensor) else input, dtype=np.int64)

    def backward(g: np.ndarray) -> tuple:
        full = np.zeros(weight.shape, dtype=g.dtype)
        np.add.at(full, ids.reshape(-1), g.reshape(-1, weight.shape[1]))
        return (full, None)

    ids_tensor = input if isinstance(input, Tensor) else Tensor(ids)
    return record_op(weight.data[ids], (weight, ids_tensor), "embedding", backward)
