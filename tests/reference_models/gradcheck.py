"""Finite-difference gradient checking for the reference framework's tests (float64 inside)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from reference_models import Tensor


def numeric_grad(fn: Callable[[], float], array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``fn()`` with respect to every element of ``array``."""
    grad = np.zeros_like(array)
    flat, out = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        plus = fn()
        flat[i] = saved - eps
        minus = fn()
        flat[i] = saved
        out[i] = (plus - minus) / (2 * eps)
    return grad


def check_gradients(fn: Callable[..., Tensor], *arrays: np.ndarray, wrt: Sequence[int] | None = None,
                    seed: int = 0, rtol: float = 1e-5, atol: float = 1e-7) -> None:
    """Assert autograd's gradients of ``fn(*tensors)`` match finite differences.

    The output is reduced with fixed random weights, so every output element's gradient counts
    (a plain sum would hide errors that cancel, e.g. in softmax).
    """
    tensors = [Tensor(np.array(a, dtype=np.float64), requires_grad=True, dtype=np.float64)
               for a in arrays]
    wrt = range(len(tensors)) if wrt is None else wrt
    out = fn(*tensors)
    assert out.dtype == np.float64, f"the op changed float64 into {out.dtype}"
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    (out * Tensor(weights, dtype=np.float64)).sum().backward()

    def loss() -> float:
        return float((fn(*tensors).data * weights).sum())

    for index in wrt:
        expected = numeric_grad(loss, tensors[index].data)
        got = tensors[index].grad
        assert got is not None, f"input {index} got no gradient"
        assert got.shape == tensors[index].shape
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {index}")
