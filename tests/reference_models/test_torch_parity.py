"""Each layer, loss, optimizer and schedule against PyTorch: same weights, outputs and gradients
within 1e-4 relative. Optional: skipped where PyTorch is not installed (it is not a dependency)."""

from __future__ import annotations

import numpy as np
import pytest

import reference_models as rm
from reference_models import nn, optim
from reference_models.nn import functional as F

torch = pytest.importorskip("torch")

RTOL = 1e-4


def assert_close(ours: np.ndarray, theirs, what: str) -> None:
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    scale = max(float(np.abs(theirs).max()), 1e-6)
    error = float(np.abs(np.asarray(ours) - theirs).max()) / scale
    assert error <= RTOL, f"{what}: max relative difference {error:.2e}"


def copy_into_torch(ours: nn.Module, theirs) -> None:
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})


def compare_module(ours: nn.Module, theirs, x: np.ndarray, train: bool = True) -> None:
    """Forward, input gradient and every parameter gradient; buffers after the step too."""
    copy_into_torch(ours, theirs)
    ours.train(train)
    theirs.train(train)
    xo = rm.Tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yo, yt = ours(xo), theirs(xt)
    assert_close(yo.data, yt, "forward")
    g = np.random.default_rng(0).standard_normal(yo.shape).astype(np.float32)
    yo.backward(g)
    yt.backward(torch.from_numpy(g))
    assert_close(xo.grad, xt.grad, "input gradient")
    theirs_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        assert_close(param.grad, theirs_params[name].grad, f"gradient of {name}")
    theirs_buffers = dict(theirs.named_buffers())
    for name, buffer in ours.named_buffers():
        assert_close(buffer.data, theirs_buffers[name], f"buffer {name}")


def images(*shape: int) -> np.ndarray:
    return np.random.default_rng(1).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("args,kwargs", [
    ((3, 32, 3), dict(padding=1)),
    ((32, 16, 3), dict(padding=1, bias=False)),
    ((8, 16, 3), dict(stride=2, padding=1)),
    ((16, 16, 3), dict(padding=1, groups=16)),
    ((8, 12, 1), dict()),
    ((4, 6, (3, 5)), dict(stride=(2, 1), padding=(1, 2), groups=2)),
])
def test_conv2d(args, kwargs) -> None:
    compare_module(nn.Conv2d(*args, **kwargs), torch.nn.Conv2d(*args, **kwargs),
                   images(4, args[0], 12, 12))


def test_linear_on_matrices_and_sequences() -> None:
    compare_module(nn.Linear(20, 7), torch.nn.Linear(20, 7), images(5, 20))
    compare_module(nn.Linear(20, 7, bias=False), torch.nn.Linear(20, 7, bias=False),
                   images(2, 5, 20))


@pytest.mark.parametrize("cls,args", [("MaxPool2d", (2,)), ("MaxPool2d", (3, 2, 1)),
                                      ("AvgPool2d", (2,)), ("AvgPool2d", (3, 2, 1))])
def test_pooling(cls: str, args) -> None:
    compare_module(getattr(nn, cls)(*args), getattr(torch.nn, cls)(*args), images(2, 3, 9, 9))


def test_max_pool_after_relu_with_tied_zeros() -> None:
    x = np.maximum(images(2, 4, 8, 8), 0)  # many all-zero windows: ties everywhere
    compare_module(nn.MaxPool2d(2), torch.nn.MaxPool2d(2), x)


@pytest.mark.parametrize("train", [True, False])
def test_batch_norm(train: bool) -> None:
    ours2d, theirs2d = nn.BatchNorm2d(6, momentum=0.2), torch.nn.BatchNorm2d(6, momentum=0.2)
    ours2d.running_mean.data[:] = np.linspace(-1, 1, 6)
    ours2d.running_var.data[:] = np.linspace(0.5, 2, 6)
    compare_module(ours2d, theirs2d, images(8, 6, 5, 5) * 2 + 1, train=train)
    compare_module(nn.BatchNorm1d(6), torch.nn.BatchNorm1d(6), images(8, 6), train=train)
    compare_module(nn.BatchNorm1d(6, affine=False), torch.nn.BatchNorm1d(6, affine=False),
                   images(8, 6, 3), train=train)


@pytest.mark.parametrize("name", ["ReLU", "GELU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
                                  "Flatten"])
def test_activations_and_flatten(name: str) -> None:
    kwargs = {"dim": 1} if "Softmax" in name else {}
    compare_module(getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs),
                   images(4, 5, 3) * 3)


def test_gelu_tanh_approximation() -> None:
    compare_module(nn.GELU("tanh"), torch.nn.GELU("tanh"), images(4, 50) * 3)


def test_embedding() -> None:
    ours, theirs = nn.Embedding(10, 4), torch.nn.Embedding(10, 4)
    copy_into_torch(ours, theirs)
    ids = np.array([[1, 2, 2], [9, 0, 1]])
    yo, yt = ours(ids), theirs(torch.from_numpy(ids))
    assert_close(yo.data, yt, "forward")
    yo.sum().backward()
    yt.sum().backward()
    assert_close(ours.weight.grad, theirs.weight.grad, "weight gradient")


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy(smoothing: float, reduction: str) -> None:
    logits = images(16, 10) * 4
    target = np.random.default_rng(2).integers(0, 10, 16)
    xo, xt = rm.Tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    lo = F.cross_entropy(xo, target, reduction=reduction, label_smoothing=smoothing)
    lt = torch.nn.functional.cross_entropy(xt, torch.from_numpy(target), reduction=reduction,
                                           label_smoothing=smoothing)
    assert_close(lo.data, lt, "loss")
    lo.sum().backward()
    lt.sum().backward()
    assert_close(xo.grad, xt.grad, "gradient")


def test_cross_entropy_over_sequence_positions() -> None:
    logits = images(2, 5, 7)
    target = np.random.default_rng(3).integers(0, 5, (2, 7))
    xo, xt = rm.Tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    F.cross_entropy(xo, target).backward()
    torch.nn.functional.cross_entropy(xt, torch.from_numpy(target)).backward()
    assert_close(xo.grad, xt.grad, "gradient")


def test_mse_loss() -> None:
    a, b = images(4, 3), images(4, 3) * 0.5
    xo, xt = rm.Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    lo, lt = F.mse_loss(xo, b), torch.nn.functional.mse_loss(xt, torch.from_numpy(b))
    assert_close(lo.data, lt, "loss")
    lo.backward()
    lt.backward()
    assert_close(xo.grad, xt.grad, "gradient")


# ---------------------------------------------------------------- optimizers and schedules
def _train_both(make_ours, make_theirs, steps: int = 5) -> None:
    rm.manual_seed(0)
    ours = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    theirs = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    copy_into_torch(ours, theirs)
    opt_o, opt_t = make_ours(ours.parameters()), make_theirs(theirs.parameters())
    x, y = images(10, 6), np.random.default_rng(4).integers(0, 3, 10)
    for _ in range(steps):
        opt_o.zero_grad()
        opt_t.zero_grad()
        F.cross_entropy(ours(rm.Tensor(x)), y).backward()
        torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt_o.step()
        opt_t.step()
    theirs_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        assert_close(param.data, theirs_params[name], f"{name} after {steps} steps")


@pytest.mark.parametrize("kwargs", [dict(lr=0.1), dict(lr=0.1, momentum=0.9),
                                    dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4),
                                    dict(lr=0.1, momentum=0.8, dampening=0.1, weight_decay=1e-2)])
def test_sgd(kwargs) -> None:
    _train_both(lambda p: optim.SGD(p, **kwargs), lambda p: torch.optim.SGD(p, **kwargs))


@pytest.mark.parametrize("name,kwargs", [("Adam", dict(lr=0.01)),
                                         ("Adam", dict(lr=0.01, weight_decay=0.1)),
                                         ("AdamW", dict(lr=0.01)),
                                         ("AdamW", dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.3))])
def test_adam_family(name: str, kwargs) -> None:
    _train_both(lambda p: getattr(optim, name)(p, **kwargs),
                lambda p: getattr(torch.optim, name)(p, **kwargs))


def _schedules(make_ours, make_theirs, steps: int, opt_kwargs=None):
    opt_kwargs = opt_kwargs or dict(lr=0.1, momentum=0.9)
    ours_opt = optim.SGD([rm.Tensor(np.zeros(1), requires_grad=True)], **opt_kwargs)
    theirs_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], **opt_kwargs)
    ours, theirs = make_ours(ours_opt), make_theirs(theirs_opt)
    rates = []
    for _ in range(steps):
        rates.append((ours_opt.param_groups[0]["lr"], theirs_opt.param_groups[0]["lr"],
                      ours_opt.param_groups[0]["momentum"], theirs_opt.param_groups[0]["momentum"]))
        ours_opt.step()
        theirs_opt.step()
        ours.step()
        theirs.step()
    return np.array(rates)


def test_step_cosine_and_one_cycle_schedules() -> None:
    sched = torch.optim.lr_scheduler
    cases = [
        (lambda o: optim.lr_scheduler.StepLR(o, 3, 0.5), lambda o: sched.StepLR(o, 3, 0.5)),
        (lambda o: optim.lr_scheduler.CosineAnnealingLR(o, 10, 1e-3),
         lambda o: sched.CosineAnnealingLR(o, 10, 1e-3)),
        (lambda o: optim.lr_scheduler.OneCycleLR(o, 0.4, total_steps=20),
         lambda o: sched.OneCycleLR(o, 0.4, total_steps=20)),
        (lambda o: optim.lr_scheduler.OneCycleLR(o, 0.4, epochs=2, steps_per_epoch=7,
                                                 three_phase=True, anneal_strategy="linear"),
         lambda o: sched.OneCycleLR(o, 0.4, epochs=2, steps_per_epoch=7, three_phase=True,
                                    anneal_strategy="linear")),
        (lambda o: optim.lr_scheduler.LambdaLR(o, lambda s: 1 / (s + 1)),
         lambda o: sched.LambdaLR(o, lambda s: 1 / (s + 1))),
    ]
    for make_ours, make_theirs in cases:
        rates = _schedules(make_ours, make_theirs, 14)
        np.testing.assert_allclose(rates[:, 0], rates[:, 1], rtol=1e-6)
        np.testing.assert_allclose(rates[:, 2], rates[:, 3], rtol=1e-6)


def test_clip_grad_norm() -> None:
    grads = [images(3, 4), images(5)]
    ours = [rm.Tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    theirs = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for o, t, g in zip(ours, theirs, grads, strict=True):
        o.grad, t.grad = g.copy(), torch.from_numpy(g.copy())
    norm_o = nn.utils.clip_grad_norm_(ours, 1.5)
    norm_t = torch.nn.utils.clip_grad_norm_(theirs, 1.5)
    assert_close(norm_o.data, norm_t, "norm")
    for o, t in zip(ours, theirs, strict=True):
        assert_close(o.grad, t.grad, "clipped gradient")


def test_cnn_training_step_matches() -> None:
    """The benchmark's CNN: one SGD Nesterov step with label smoothing, weights compared after."""
    from benchmarks.framework_vs_torch import cnn_layers

    rm.manual_seed(5)
    ours, theirs = nn.Sequential(*cnn_layers(nn)), torch.nn.Sequential(*cnn_layers(torch.nn))
    copy_into_torch(ours, theirs)
    x = np.random.default_rng(6).random((8, 3, 32, 32), dtype=np.float32)
    y = np.random.default_rng(7).integers(0, 10, 8)
    opt_o = optim.SGD(ours.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    opt_t = torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                            weight_decay=5e-4)
    for _ in range(2):
        opt_o.zero_grad()
        opt_t.zero_grad()
        F.cross_entropy(ours(rm.Tensor(x)), y, label_smoothing=0.1).backward()
        torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y),
                                          label_smoothing=0.1).backward()
        opt_o.step()
        opt_t.step()
    theirs_state = theirs.state_dict()
    for name, value in ours.state_dict().items():
        assert_close(value, theirs_state[name], name)


def test_large_inputs_split_across_threads_match() -> None:
    """Batch norm and ReLU work on row blocks in parallel above a size threshold."""
    from reference_models.parallel import PARALLEL_MIN_BYTES

    x = images(64, 32, 24, 24)
    assert x.nbytes > PARALLEL_MIN_BYTES
    # no conv bias: batch norm cancels it, so its gradient is rounding noise around zero
    model = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32),
                          nn.ReLU())
    theirs = torch.nn.Sequential(torch.nn.Conv2d(32, 32, 3, padding=1, bias=False),
                                 torch.nn.BatchNorm2d(32), torch.nn.ReLU())
    compare_module(model, theirs, x, train=True)
    compare_module(model, theirs, x, train=False)
