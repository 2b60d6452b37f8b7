"""Tensor basics: dtypes, the autograd engine's bookkeeping, grad modes, seeding."""

from __future__ import annotations

import numpy as np
import pytest

import reference_models as rm
from reference_models.nn import functional as F


def test_default_dtypes_follow_pytorch() -> None:
    assert rm.Tensor([1.0, 2.0]).dtype == np.float32
    assert rm.Tensor(np.zeros(3, dtype=np.float64)).dtype == np.float32  # no silent float64
    assert rm.Tensor([1, 2]).dtype == np.int64
    assert rm.Tensor([True]).dtype == np.bool_
    assert rm.Tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert rm.zeros(2, 3).shape == (2, 3) and rm.ones((4,)).dtype == np.float32


def test_constants_never_upcast_float32() -> None:
    x = rm.randn(3, requires_grad=True)
    y = (x * 2.5 + np.float64(1.0)) / np.array([2.0, 3.0, 4.0]) - 1
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_integer_tensors_cannot_require_grad() -> None:
    with pytest.raises(TypeError, match="floating point"):
        rm.Tensor([1, 2], requires_grad=True)


def test_gradients_reduce_over_broadcast_axes() -> None:
    a = rm.Tensor(np.ones((2, 3)), requires_grad=True)
    b = rm.Tensor(np.ones((3,)), requires_grad=True)
    c = rm.Tensor(np.ones((2, 1)), requires_grad=True)
    (a * b + c).sum().backward()
    assert b.grad.shape == (3,) and np.all(b.grad == 2)
    assert c.grad.shape == (2, 1) and np.all(c.grad == 3)


def test_gradients_accumulate_until_cleared() -> None:
    x = rm.Tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, [4.0, 8.0])


def test_a_tensor_used_twice_gets_both_contributions() -> None:
    x = rm.Tensor(3.0, requires_grad=True)
    y = x * x + x  # dy/dx = 2x + 1
    y.backward()
    assert x.grad == pytest.approx(7.0)


def test_deep_graphs_need_no_recursion() -> None:
    x = rm.Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(20_000):  # far deeper than Python's recursion limit
        y = y * 1.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001 ** 20_000, rel=1e-3)


def test_no_grad_records_nothing() -> None:
    x = rm.randn(3, requires_grad=True)
    with rm.no_grad():
        y = x * 2
    assert not y.requires_grad and y._prev == ()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()
    assert rm.is_grad_enabled()


def test_no_grad_as_decorator_and_set_grad_enabled() -> None:
    @rm.no_grad()
    def infer(t: rm.Tensor) -> rm.Tensor:
        return t * 2

    x = rm.randn(2, requires_grad=True)
    assert not infer(x).requires_grad
    with rm.set_grad_enabled(False):
        with rm.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad


def test_backward_needs_a_gradient_for_non_scalars() -> None:
    x = rm.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        (x * 2).backward()
    (x * 2).backward(np.ones(3))
    np.testing.assert_allclose(x.grad, [2, 2, 2])


def test_detach_cuts_the_graph() -> None:
    x = rm.randn(3, requires_grad=True)
    y = (x.detach() * x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad, x.data)


def test_leaf_gradients_are_owned_copies() -> None:
    a = rm.randn(3, requires_grad=True)
    b = rm.randn(3, requires_grad=True)
    (a + b).sum().backward()  # add passes the same gradient array to both parents
    a.grad *= 0
    np.testing.assert_allclose(b.grad, 1.0)


def test_comparisons_and_argmax_give_plain_tensors() -> None:
    x = rm.Tensor([[0.1, 0.9], [0.8, 0.2]])
    assert (x > 0.5).dtype == np.bool_
    np.testing.assert_array_equal(x.argmax(dim=1).numpy(), [1, 0])
    assert x.eq(x).numpy().all()


def test_accessors_mirror_pytorch() -> None:
    x = rm.randn(2, 3)
    assert x.size() == (2, 3) and x.size(1) == 3 and x.dim() == 2 and x.numel() == 6
    assert len(x) == 2 and x.numpy() is x.data
    assert rm.tensor([[1.0]]).item() == 1.0 and rm.Tensor([1, 2]).tolist() == [1, 2]
    assert "requires_grad=True" in repr(rm.randn(1, requires_grad=True))


def test_softmax_is_stable_for_huge_logits() -> None:
    x = rm.Tensor([[1000.0, 0.0, -1000.0]])
    np.testing.assert_allclose(F.softmax(x).data, [[1.0, 0.0, 0.0]])
    assert np.isfinite(F.log_softmax(x).data).all()
    assert np.isfinite(F.cross_entropy(x, np.array([2])).data)


def test_manual_seed_makes_runs_repeat() -> None:
    rm.manual_seed(42)
    first = (rm.randn(3).numpy().copy(), rm.nn.Linear(3, 2).weight.detach().numpy().copy())
    rm.manual_seed(42)
    second = (rm.randn(3).numpy(), rm.nn.Linear(3, 2).weight.detach().numpy())
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    # code that holds the generator keeps seeing the reseeded stream
    generator = rm.default_generator
    rm.manual_seed(7)
    a = generator.random()
    rm.manual_seed(7)
    assert rm.default_generator.random() == a


def test_dropout_keeps_the_expected_value_and_is_off_in_eval() -> None:
    rm.manual_seed(0)
    x = rm.ones(200, 200)
    y = F.dropout(x, 0.3, training=True)
    assert abs(float((y.data == 0).mean()) - 0.3) < 0.02
    assert abs(float(y.data.mean()) - 1.0) < 0.03
    assert F.dropout(x, 0.3, training=False) is x
    with pytest.raises(ValueError, match="probability"):
        F.dropout(x, 1.0)


def test_cross_entropy_rejects_bad_targets_clearly() -> None:
    with pytest.raises(ValueError, match=r"class ids in \[0, 3\)"):
        F.cross_entropy(rm.randn(2, 3), np.array([0, 3]))


def test_conv_output_is_an_nchw_view_that_numpy_can_use() -> None:
    conv = rm.nn.Conv2d(3, 4, 3, padding=1)
    y = conv(rm.randn(2, 3, 5, 5))
    assert y.shape == (2, 4, 5, 5)
    np.testing.assert_allclose(np.ascontiguousarray(y.data).sum(), y.data.sum(), rtol=1e-5)


def test_casts_between_float_types_pass_the_gradient() -> None:
    x = rm.Tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    y = x.float()
    assert y.dtype == np.float32 and x.long().dtype == np.int64
    (y * 3).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad, [3.0, 3.0])
