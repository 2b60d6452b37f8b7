"""Every op and layer of the framework against finite differences (float64)."""

from __future__ import annotations

import numpy as np
import pytest

import reference_models as rm
from reference_models import nn
from reference_models.nn import functional as F
from tests.reference_models.gradcheck import check_gradients

RNG = np.random.default_rng(1234)


def randn(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


def positive(*shape: int) -> np.ndarray:
    return RNG.uniform(0.5, 2.0, shape)


# ---------------------------------------------------------------- elementwise, with broadcasting
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 4)),
                                    ((2, 1, 4), (3, 1))])
def test_binary_ops_with_broadcasting(op: str, shapes) -> None:
    a, b = randn(*shapes[0]), positive(*shapes[1])
    fn = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y,
          "mul": lambda x, y: x * y, "div": lambda x, y: x / y}[op]
    check_gradients(fn, a, b)


def test_scalar_constants_on_either_side() -> None:
    check_gradients(lambda x: 2.0 - x * 3.0 + 1.5 / (x + 4.0), positive(3, 2))


@pytest.mark.parametrize("name", ["neg", "exp", "log", "sqrt", "abs", "relu", "sigmoid", "tanh",
                                  "gelu", "gelu_tanh", "pow3", "pow_half"])
def test_unary_ops(name: str) -> None:
    data = positive(4, 5) if name in {"log", "sqrt", "pow_half"} else randn(4, 5)
    fn = {
        "neg": lambda x: -x, "exp": rm.exp, "log": rm.log, "sqrt": rm.sqrt,
        "abs": lambda x: x.abs(), "relu": F.relu, "sigmoid": F.sigmoid, "tanh": F.tanh,
        "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
        "pow3": lambda x: x ** 3, "pow_half": lambda x: x ** 0.5,
    }[name]
    check_gradients(fn, data)


def test_sigmoid_is_stable_for_large_inputs() -> None:
    out = F.sigmoid(rm.Tensor([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(out.data, [0.0, 0.5, 1.0])


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)),
                                    ((2, 1, 3, 4), (5, 4, 2)), ((3, 4), (2, 4, 5))])
def test_batched_matmul_with_broadcast_batches(shapes) -> None:
    check_gradients(lambda a, b: a @ b, randn(*shapes[0]), randn(*shapes[1]))


# ---------------------------------------------------------------- reductions
@pytest.mark.parametrize("reduce", ["sum", "mean", "amax", "var"])
@pytest.mark.parametrize("dim,keepdim", [(None, False), (1, False), (1, True), ((0, 2), False),
                                         (-1, True)])
def test_reductions(reduce: str, dim, keepdim: bool) -> None:
    data = randn(3, 4, 5)
    check_gradients(lambda x: getattr(x, reduce)(dim=dim, keepdim=keepdim), data)


def test_numpy_style_axis_keywords() -> None:
    check_gradients(lambda x: x.sum(axis=0, keepdims=True) * x.mean(axis=1, keepdims=True),
                    randn(3, 4))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax(dim: int) -> None:
    data = randn(3, 4, 5) * 3
    check_gradients(lambda x: F.softmax(x, dim), data)
    check_gradients(lambda x: F.log_softmax(x, dim), data)


# ---------------------------------------------------------------- shapes and indexing
def test_shape_ops() -> None:
    data = randn(2, 3, 4)
    check_gradients(lambda x: x.reshape(4, 6), data)
    check_gradients(lambda x: x.view(-1), data)
    check_gradients(lambda x: x.flatten(1), data)
    check_gradients(lambda x: x.transpose(0, 2), data)
    check_gradients(lambda x: x.permute(2, 0, 1), data)
    check_gradients(lambda x: x.unsqueeze(1).squeeze(1), data)
    check_gradients(lambda x: x.T, randn(3, 5))


@pytest.mark.parametrize("index", [
    (slice(None), 1), (0, slice(1, 3)), (slice(None, None, 2), Ellipsis, slice(1, None)),
    (np.array([0, 1, 1]),), (slice(None), np.array([2, 0, 2, 2])), (-1,),
])
def test_indexing_including_repeated_indices(index) -> None:
    check_gradients(lambda x: x[index], randn(3, 4, 2))


def test_boolean_mask_indexing() -> None:
    data = randn(3, 4)
    check_gradients(lambda x: x[data > 0], data)


def test_gather_with_repeated_indices() -> None:
    index = np.array([[0, 0, 2], [1, 2, 1]])
    check_gradients(lambda x: x.gather(1, index), randn(2, 3))
    check_gradients(lambda x: rm.gather(x, 0, np.array([[1, 0, 1]])), randn(2, 3))


def test_cat_and_stack() -> None:
    check_gradients(lambda a, b: rm.cat([a, b, a], dim=1), randn(2, 3), randn(2, 1))
    check_gradients(lambda a, b: rm.stack([a, b], dim=1), randn(2, 3), randn(2, 3))


def test_where_and_masked_fill() -> None:
    mask = RNG.random((3, 4)) > 0.5
    check_gradients(lambda a, b: rm.where(mask, a, b), randn(3, 4), randn(1, 4))
    check_gradients(lambda a: a.masked_fill(mask, -5.0), randn(3, 4))


def test_embedding_with_repeated_ids() -> None:
    ids = np.array([[0, 3, 3], [1, 0, 2]])
    check_gradients(lambda w: F.embedding(ids, w), randn(4, 5))


# ---------------------------------------------------------------- layers
def test_linear_2d_and_batched() -> None:
    check_gradients(F.linear, randn(3, 4), randn(5, 4), randn(5))
    check_gradients(F.linear, randn(2, 3, 4), randn(5, 4), randn(5))
    check_gradients(lambda x, w: F.linear(x, w), randn(3, 4), randn(5, 4))


@pytest.mark.parametrize("cin,cout,k,stride,padding,groups,size", [
    (3, 4, 3, 1, 1, 1, 6),     # small channels: col2im route for the input gradient
    (16, 4, 3, 1, 1, 1, 5),    # >= 16 channels: transposed-convolution route
    (2, 3, 3, 2, 1, 1, 7),     # stride 2
    (2, 2, (3, 1), (1, 2), (1, 0), 1, 6),  # rectangular kernel, stride, padding
    (4, 6, 3, 1, 0, 2, 5),     # groups
    (3, 3, 3, 1, 1, 3, 5),     # depthwise
    (16, 4, 1, 1, 0, 1, 4),    # 1x1
])
def test_conv2d(cin, cout, k, stride, padding, groups, size) -> None:
    kh, kw = (k, k) if isinstance(k, int) else k
    check_gradients(lambda x, w, b: F.conv2d(x, w, b, stride, padding, groups=groups),
                    randn(2, cin, size, size), randn(cout, cin // groups, kh, kw), randn(cout))


@pytest.mark.parametrize("kernel,stride,padding", [(2, None, 0), (3, 2, 1), (3, 1, 0)])
def test_pooling(kernel, stride, padding) -> None:
    data = randn(2, 3, 6, 6)
    check_gradients(lambda x: F.max_pool2d(x, kernel, stride, padding), data)
    check_gradients(lambda x: F.avg_pool2d(x, kernel, stride, padding), data)


def test_max_pool_gives_a_tied_window_gradient_once() -> None:
    x = rm.Tensor(np.zeros((1, 1, 2, 2)), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    assert x.grad.sum() == 1.0


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 3, 4, 4)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training(shape, affine: bool) -> None:
    def fn(x, w, b):
        return F.batch_norm(x, None, None, w if affine else None, b if affine else None,
                            training=True)

    check_gradients(fn, randn(*shape), positive(3), randn(3), wrt=[0, 1, 2] if affine else [0])


def test_batch_norm_eval_uses_running_statistics() -> None:
    mean, var = rm.Tensor(randn(3), dtype=np.float64), rm.Tensor(positive(3), dtype=np.float64)
    check_gradients(lambda x, w, b: F.batch_norm(x, mean, var, w, b, training=False),
                    randn(4, 3, 2, 2), positive(3), randn(3))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_with_class_ids(smoothing: float, reduction: str) -> None:
    target = np.array([0, 3, 1, 3, 2])
    check_gradients(lambda x: F.cross_entropy(x, target, reduction=reduction,
                                              label_smoothing=smoothing), randn(5, 4) * 3)


def test_cross_entropy_over_positions_and_with_probabilities() -> None:
    target = RNG.integers(0, 4, (2, 3))
    check_gradients(lambda x: F.cross_entropy(x, target), randn(2, 4, 3))
    probs = RNG.dirichlet(np.ones(4), size=5)
    check_gradients(lambda x: F.cross_entropy(x, probs, label_smoothing=0.2), randn(5, 4))


def test_mse_loss() -> None:
    target = randn(3, 4)
    for reduction in ("mean", "sum", "none"):
        check_gradients(lambda x, r=reduction: F.mse_loss(x, target, reduction=r), randn(3, 4))


def test_dropout_with_a_fixed_mask() -> None:
    def fn(x):  # the same generator state each call, so the mask is the same
        return F.dropout(x, 0.4, training=True, generator=np.random.default_rng(7))

    check_gradients(fn, randn(4, 5))


# ---------------------------------------------------------------- whole modules
def _float64(module: nn.Module) -> nn.Module:
    for tensor in [*module.parameters(), *module.buffers()]:
        if np.issubdtype(tensor.dtype, np.floating):
            tensor.data = tensor.data.astype(np.float64)
    return module


@pytest.mark.parametrize("make", [
    lambda: nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.Linear(6, 3), nn.Tanh()),
    lambda: nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 3), nn.BatchNorm1d(3),
                          nn.Sigmoid()),
    lambda: nn.Sequential(nn.AvgPool2d(2), nn.Flatten(), nn.Softmax(dim=1)),
    lambda: nn.Sequential(nn.Flatten(), nn.LogSoftmax(dim=-1)),
])
def test_modules_end_to_end(make) -> None:
    rm.manual_seed(3)
    module = _float64(make())
    check_gradients(module, randn(3, 2, 4, 4) if isinstance(module[0], nn.Conv2d | nn.AvgPool2d |
                                                            nn.Flatten) else randn(3, 4))


def test_parameter_gradients_of_a_module() -> None:
    rm.manual_seed(4)
    model = _float64(nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, bias=True), nn.BatchNorm2d(3),
                                   nn.ReLU(), nn.Flatten(), nn.Linear(3 * 9, 2)))
    x = rm.Tensor(randn(4, 2, 3, 3), dtype=np.float64)
    target = np.array([0, 1, 1, 0])
    loss = F.cross_entropy(model(x), target, label_smoothing=0.1)
    loss.backward()
    from tests.reference_models.gradcheck import numeric_grad

    for name, param in model.named_parameters():
        expected = numeric_grad(lambda: float(F.cross_entropy(model(x), target,
                                                              label_smoothing=0.1).data),
                                param.data)
        np.testing.assert_allclose(param.grad, expected, rtol=1e-5, atol=1e-7, err_msg=name)
