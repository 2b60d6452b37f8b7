"""Convolution kernels on channels-last (NHWC) arrays: im2col over strided views + BLAS.

A convolution is a matrix product once every kernel window is laid out as a row ("im2col"). The
window rows of a whole batch are large (151 MB for 128 CIFAR images at 32 channels), so the
dense path works a few images at a time: each chunk's rows (about 2 MB) are built and consumed
while they are still in the CPU cache, which makes forward and backward about a third faster
than one giant product, and nothing batch-sized has to be kept for the backward pass.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.lib.stride_tricks import as_strided

from reference_models.parallel import map_chunks

CHUNK_BYTES = 2 << 20  # im2col rows per chunk: about the size of a core's share of cache


def pad_channels_last(x_nhwc: np.ndarray, ph: int, pw: int, fill: float = 0.0) -> np.ndarray:
    """Padded NHWC copy; returns ``x_nhwc`` itself (no copy) when there is no padding."""
    if ph == 0 and pw == 0:
        return x_nhwc
    n, h, w, c = x_nhwc.shape
    out = np.full((n, h + 2 * ph, w + 2 * pw, c), fill, dtype=x_nhwc.dtype)
    out[:, ph:ph + h, pw:pw + w] = x_nhwc
    return out


def windows(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int, ho: int, wo: int) -> np.ndarray:
    """Strided (N, Ho, Wo, kh, kw, C) view of every kernel window of padded NHWC ``xp`` (no copy)."""
    s0, s1, s2, s3 = xp.strides
    return as_strided(xp, (xp.shape[0], ho, wo, kh, kw, xp.shape[3]),
                      (s0, s1 * sh, s2 * sw, s1, s2, s3), writeable=False)


def image_chunks(n: int, row_bytes: int) -> Iterator[slice]:
    """Slices of the batch whose im2col rows take about ``CHUNK_BYTES``."""
    step = max(1, CHUNK_BYTES // max(row_bytes, 1))
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def rows(window_view: np.ndarray) -> np.ndarray:
    """Copy windows (m, Ho, Wo, kh, kw, C) into a (m*Ho*Wo, kh*kw*C) matrix."""
    m, ho, wo, kh, kw, c = window_view.shape
    return np.ascontiguousarray(window_view).reshape(m * ho * wo, kh * kw * c)


def weight_matrix(weight: np.ndarray) -> np.ndarray:
    """(O, C, kh, kw) -> (kh*kw*C, O), rows in the order of a window row's entries."""
    o, c, kh, kw = weight.shape
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0)).reshape(kh * kw * c, o)


def conv_forward(xp: np.ndarray, w_mat: np.ndarray, kernel: tuple[int, int],
                 stride: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """Output (N, Ho, Wo, O) of a dense convolution of padded NHWC ``xp``."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw
    n, o = xp.shape[0], w_mat.shape[1]
    view = windows(xp, kh, kw, sh, sw, ho, wo)
    out = np.empty((n, ho, wo, o), dtype=xp.dtype)

    def chunk(part: slice) -> None:
        np.matmul(rows(view[part]), w_mat, out=out[part].reshape(-1, o))

    map_chunks(chunk, image_chunks(n, ho * wo * w_mat.shape[0] * xp.itemsize))
    return out


def conv_weight_grad(xp: np.ndarray, g_nhwc: np.ndarray, kernel: tuple[int, int],
                     stride: tuple[int, int]) -> np.ndarray:
    """d loss / d weight as (O, kh*kw*C): window rows rebuilt chunk by chunk, never stored."""
    (kh, kw), (sh, sw) = kernel, stride
    n, ho, wo, o = g_nhwc.shape
    view = windows(xp, kh, kw, sh, sw, ho, wo)
    k = kh * kw * xp.shape[3]

    def chunk(part: slice) -> np.ndarray:
        # (O, rows) @ (rows, K) runs about twice as fast in OpenBLAS as (K, rows) @ (rows, O)
        return g_nhwc[part].reshape(-1, o).T @ rows(view[part])

    partial_sums = map_chunks(chunk, image_chunks(n, ho * wo * k * xp.itemsize))
    return np.sum(partial_sums, axis=0, dtype=xp.dtype)


def conv_input_grad(g_nhwc: np.ndarray, weight: np.ndarray, stride: tuple[int, int],
                    padding: tuple[int, int], in_hw: tuple[int, int]) -> np.ndarray:
    """d loss / d input (N, H, W, C) of a dense convolution."""
    _, c, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    # few input channels: the scatter adds are cheap and a GEMM with C columns would be slow
    if (sh, sw) == (1, 1) and ph < kh and pw < kw and c >= 16:
        return _input_grad_as_convolution(g_nhwc, weight, padding, in_hw)
    return _input_grad_by_scatter(g_nhwc, weight, stride, padding, in_hw)


def _input_grad_as_convolution(g_nhwc: np.ndarray, weight: np.ndarray,
                               padding: tuple[int, int], in_hw: tuple[int, int]) -> np.ndarray:
    """Stride 1: the input gradient is the full correlation of the output gradient with the
    flipped kernel, i.e. one more convolution (im2col + GEMM, no scattered adds)."""
    o, c, kh, kw = weight.shape
    (h, w) = in_hw
    gp = pad_channels_last(g_nhwc, kh - 1 - padding[0], kw - 1 - padding[1])
    flipped = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(2, 3, 0, 1)).reshape(
        kh * kw * o, c)
    return conv_forward(gp, flipped, (kh, kw), (1, 1), (h, w))


def _input_grad_by_scatter(g_nhwc: np.ndarray, weight: np.ndarray, stride: tuple[int, int],
                           padding: tuple[int, int], in_hw: tuple[int, int]) -> np.ndarray:
    """Any stride: column gradients, each kernel position added back onto the input (col2im)."""
    o, c, kh, kw = weight.shape
    n, ho, wo, _ = g_nhwc.shape
    (sh, sw), (ph, pw), (h, w) = stride, padding, in_hw
    w_rows = weight_matrix(weight).T  # (O, kh*kw*C)
    dxp = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=g_nhwc.dtype)

    def chunk(part: slice) -> None:  # chunks are whole images: they never add to the same pixel
        dcols = (g_nhwc[part].reshape(-1, o) @ w_rows).reshape(-1, ho, wo, kh, kw, c)
        scatter_windows(dxp[part], dcols, (sh, sw))

    map_chunks(chunk, image_chunks(n, ho * wo * w_rows.shape[1] * g_nhwc.itemsize))
    return dxp[:, ph:ph + h, pw:pw + w]


def scatter_windows(dxp: np.ndarray, dcols: np.ndarray, stride: tuple[int, int]) -> None:
    """Add window gradients (m, Ho, Wo, kh, kw, C) onto padded NHWC ``dxp``: kh*kw strided adds."""
    _, ho, wo, kh, kw, _ = dcols.shape
    sh, sw = stride
    for i in range(kh):
        for j in range(kw):
            dxp[:, i:i + sh * ho:sh, j:j + sw * wo:sw] += dcols[:, :, :, i, j]
