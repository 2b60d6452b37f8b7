"""The tensor methods, layers and losses added for PyTorch habits (issue 17): each one's gradient
against finite differences, and its values and gradients against PyTorch (to 1e-5 relative, in
float32) where PyTorch is installed.

Every case is one function written once and called with ``lib`` bound to ``reference_models`` or
to ``torch``, so both frameworks run exactly the same code.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import reference_models as rm
from reference_models import nn, optim
from tests.reference_models.gradcheck import check_gradients

rng = np.random.default_rng(7)
A = rng.standard_normal((3, 4))
B = rng.standard_normal((3, 4))
POS = rng.random((3, 4)) + 0.5
PROBS = rng.random((3, 4)) * 0.8 + 0.1
IMG = rng.standard_normal((2, 3, 4, 4))
DISTINCT = rng.permutation(12).reshape(3, 4).astype(np.float64) / 3  # no ties (max, sort)


def _functional(lib):
    return lib.nn.functional


# name -> (fn(lib, *tensors), inputs); fn must be a smooth function of its inputs at those points
CASES: dict[str, tuple[Callable, tuple[np.ndarray, ...]]] = {
    "prod": (lambda lib, a: a.prod(1), (A,)),
    "prod_with_zero": (lambda lib, a: (a * lib.tensor([[1.0, 0.0, 1.0, 1.0]],
                                                       dtype=a.dtype)).prod(1), (A,)),
    "cumsum": (lambda lib, a: a.cumsum(1), (A,)),
    "norm": (lambda lib, a: a.norm(dim=1), (A,)),
    "norm_all": (lambda lib, a: a.norm(), (A,)),
    "logsumexp": (lambda lib, a: lib.logsumexp(a, 1), (A,)),
    "std": (lambda lib, a: a.std(0), (A,)),
    "sin_cos": (lambda lib, a: a.sin() * a.cos(), (A,)),
    "tril_triu": (lambda lib, a: lib.tril(a) + lib.triu(a, 1) * 2, (A,)),
    "expand": (lambda lib, a: a[:1].expand(3, 4) * a, (A,)),
    "repeat": (lambda lib, a: a.repeat(2, 3), (A,)),
    "split": (lambda lib, a: a.split([1, 3], 1)[1] * 2, (A,)),
    "chunk": (lambda lib, a: a.chunk(2, 0)[0], (A,)),
    "flip": (lambda lib, a: a.flip(1), (A,)),
    "clamp": (lambda lib, a: a.clamp(-0.5, 0.7), (A,)),
    "maximum": (lambda lib, a, b: lib.maximum(a, b), (A, B)),
    "pow_tensor": (lambda lib, p, b: p ** b, (POS, B)),
    "rpow": (lambda lib, a: 2 ** a, (A,)),
    "remainder": (lambda lib, a: a % 0.7, (A,)),
    "rsqrt": (lambda lib, p: p.rsqrt(), (POS,)),
    "max_values": (lambda lib, a: a.max(1).values, (DISTINCT,)),
    "sort_values": (lambda lib, a: a.sort(0, descending=True).values, (DISTINCT,)),
    "topk_values": (lambda lib, a: a.topk(2).values, (DISTINCT,)),
    "setitem": (lambda lib, a, b: _setitem(a, b), (A, B)),
    "iadd_in_graph": (lambda lib, a, b: _iadd(a, b), (A, B)),
    "leaky_relu": (lambda lib, a: _functional(lib).leaky_relu(a, 0.1), (A,)),
    "silu": (lambda lib, a: _functional(lib).silu(a), (A,)),
    "pad": (lambda lib, a: _functional(lib).pad(a, (1, 2, 0, 1), value=0.5), (A,)),
    "adaptive_avg_pool2d": (lambda lib, x: _functional(lib).adaptive_avg_pool2d(x, 2), (IMG,)),
    "conv1d": (lambda lib, x, w: _functional(lib).conv1d(x, w, stride=2, padding=1),
               (rng.standard_normal((2, 3, 7)), rng.standard_normal((4, 3, 3)))),
    "conv_transpose2d": (lambda lib, x, w, b: _functional(lib).conv_transpose2d(
        x, w, b, stride=2, padding=1, output_padding=1),
        (rng.standard_normal((2, 3, 3, 4)), rng.standard_normal((3, 2, 3, 3)),
         rng.standard_normal(2))),
    "conv_transpose2d_k2": (lambda lib, x, w: _functional(lib).conv_transpose2d(x, w, stride=2),
                            (rng.standard_normal((1, 2, 3, 3)), rng.standard_normal((2, 3, 2, 2)))),
    "group_norm": (lambda lib, x, w: _functional(lib).group_norm(x, 3, w, w * 0.5 + 1),
                   (rng.standard_normal((2, 6, 3, 3)), rng.standard_normal(6))),
    "interpolate_size": (lambda lib, x: _functional(lib).interpolate(x, size=(6, 3)), (IMG,)),
    "interpolate_scale": (lambda lib, x: _functional(lib).interpolate(x, scale_factor=2), (IMG,)),
    "nll_loss": (lambda lib, a: _functional(lib).nll_loss(
        _functional(lib).log_softmax(a, 1), lib.tensor([1, 0, 3])), (A,)),
    "cross_entropy_ignore_index": (lambda lib, a: _functional(lib).cross_entropy(
        a, lib.tensor([1, -100, 3]), ignore_index=-100, label_smoothing=0.1), (A,)),
    "cross_entropy_weight": (lambda lib, a: _functional(lib).cross_entropy(
        a, lib.tensor([1, -100, 3]), weight=lib.tensor([0.5, 2.0, 1.0, 3.0], dtype=a.dtype),
        label_smoothing=0.2), (A,)),
    "cross_entropy_weight_sum": (lambda lib, a: _functional(lib).cross_entropy(
        a, lib.tensor([1, 0, 3]), weight=lib.tensor([0.5, 2.0, 1.0, 3.0], dtype=a.dtype),
        reduction="sum"), (A,)),
    "cross_entropy_probabilities_weight": (lambda lib, a: _functional(lib).cross_entropy(
        a, lib.tensor((POS / 4).astype(np.float32)).to(a.dtype),
        weight=lib.tensor([0.5, 2.0, 1.0, 3.0], dtype=a.dtype)), (A,)),
    "l1_loss": (lambda lib, a, b: _functional(lib).l1_loss(a, b), (A, B)),
    "bce": (lambda lib, p: _functional(lib).binary_cross_entropy(
        p, lib.tensor((B > 0).astype(np.float32))), (PROBS,)),
    "bce_with_logits": (lambda lib, a: _functional(lib).binary_cross_entropy_with_logits(
        a, lib.tensor((B > 0).astype(np.float32))), (A,)),
}


def _setitem(a, b):
    c = a * 1
    c[0] = b[1]
    c[:, 2] = 0.25
    return c * a


def _iadd(a, b):
    c = a * 2
    c += b
    c *= a
    return c


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_match_finite_differences(name: str) -> None:
    fn, inputs = CASES[name]
    if name in ("bce", "bce_with_logits"):  # the targets must share the input's dtype
        check_gradients(lambda *t: _float64_targets(name, *t), *inputs)
        return
    check_gradients(lambda *t: fn(rm, *t), *inputs)


def _float64_targets(name: str, x):
    target = rm.tensor((B > 0).astype(np.float64), dtype=np.float64)
    if name == "bce":
        return rm.nn.functional.binary_cross_entropy(x, target)
    return rm.nn.functional.binary_cross_entropy_with_logits(x, target)


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_gradients_match_pytorch(name: str) -> None:
    torch = pytest.importorskip("torch")
    fn, inputs = CASES[name]
    results = []
    for lib in (rm, torch):
        tensors = [lib.tensor(a.astype(np.float32), requires_grad=True) for a in inputs]
        out = fn(lib, *tensors)
        weights = lib.tensor(np.random.default_rng(1).standard_normal(tuple(out.shape))
                             .astype(np.float32))
        (out * weights).sum().backward()
        results.append([_numpy(out)] + [_numpy(t.grad) for t in tensors])
    for ours, theirs in zip(*results, strict=True):
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def _numpy(t) -> np.ndarray:
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def test_new_layers_match_pytorch() -> None:
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    for make in (lambda lib: lib.nn.Conv2d(3, 4, 3, padding="same"),
                 lambda lib: lib.nn.Sequential(lib.nn.LeakyReLU(0.2), lib.nn.SiLU(),
                                               lib.nn.AdaptiveAvgPool2d(1), lib.nn.Flatten()),
                 lambda lib: lib.nn.ReLU(inplace=True)):
        ours, theirs = make(rm), make(torch)
        theirs.load_state_dict({k: torch.from_numpy(v.data.copy())
                                for k, v in ours.state_dict().items()})
        np.testing.assert_allclose(ours(rm.tensor(x)).data,
                                   theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_module_dict_registers_its_modules() -> None:
    layers = nn.ModuleDict({"encoder": nn.Linear(4, 3), "head": nn.Linear(3, 2)})
    layers["extra"] = nn.ReLU()
    assert list(layers) == ["encoder", "head", "extra"] and "head" in layers
    assert [name for name, _ in layers.named_parameters()] == [
        "encoder.weight", "encoder.bias", "head.weight", "head.bias"]
    assert layers["head"](layers["encoder"](rm.randn(5, 4))).shape == (5, 2)


def test_unsupported_options_name_the_pytorch_feature() -> None:
    with pytest.raises(NotImplementedError, match="dilation"):
        nn.ConvTranspose2d(3, 3, 3, dilation=2)
    with pytest.raises(NotImplementedError, match="even kernel"):
        nn.Conv2d(3, 3, 2, padding="same")
    with pytest.raises(NotImplementedError, match="weight"):
        nn.functional.nll_loss(rm.randn(2, 3), rm.tensor([0, 1]), weight=rm.ones(3))
    with pytest.raises(NotImplementedError, match="divide"):
        nn.functional.adaptive_avg_pool2d(rm.randn(1, 1, 5, 5), 2)
    with pytest.raises(RuntimeError, match="CPU only"):
        rm.randn(2).to("cuda")
    assert rm.cuda.is_available() is False and str(rm.device("cpu")) == "cpu"


@pytest.mark.parametrize("make", [
    lambda lib, p: lib.optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True, weight_decay=0.1),
    lambda lib, p: lib.optim.RMSprop(p, lr=0.01),
    lambda lib, p: lib.optim.Adagrad(p, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
    lambda lib, p: lib.optim.Adam(p, lr=0.05, amsgrad=True),
    lambda lib, p: lib.optim.AdamW(p, lr=0.05, amsgrad=True),
    lambda lib, p: lib.optim.Adadelta(p, lr=0.5, weight_decay=0.01),
])
def test_new_optimizers_match_pytorch(make) -> None:
    torch = pytest.importorskip("torch")
    rm.manual_seed(0)
    ours = nn.Linear(4, 3)
    theirs = torch.nn.Linear(4, 3)
    theirs.load_state_dict({k: torch.from_numpy(v.data.copy()) for k, v in
                            ours.state_dict().items()})
    x = rng.standard_normal((6, 4)).astype(np.float32)
    for model, lib, inp in ((ours, rm, rm.tensor(x)), (theirs, torch, torch.tensor(x))):
        opt = make(lib, model.parameters())
        for _ in range(5):
            opt.zero_grad()
            ((model(inp) - 1) ** 2).mean().backward()
            opt.step()
    np.testing.assert_allclose(ours.weight.data, theirs.weight.detach().numpy(), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("make", [
    lambda s, o: s.MultiStepLR(o, [2, 5], gamma=0.5),
    lambda s, o: s.ExponentialLR(o, gamma=0.8),
    lambda s, o: s.LinearLR(o, start_factor=0.25, total_iters=4),
    lambda s, o: s.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=3),
])
def test_new_schedulers_match_pytorch(make) -> None:
    torch = pytest.importorskip("torch")
    rates = []
    for lib in (rm, torch):
        opt = lib.optim.SGD(lib.nn.Linear(2, 2).parameters(), lr=0.5)
        sched = make(lib.optim.lr_scheduler, opt)
        seen = []
        for _ in range(8):
            seen.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        rates.append(seen)
    np.testing.assert_allclose(rates[0], rates[1], rtol=1e-12)


def test_autograd_grad_leaves_grad_fields_alone() -> None:
    model = nn.Linear(3, 1)
    x = rm.randn(4, 3, requires_grad=True)
    (gx,) = rm.autograd.grad(model(x).sum(), x)
    np.testing.assert_allclose(gx.data, np.broadcast_to(model.weight.data, (4, 3)), rtol=1e-6)
    assert model.weight.grad is None and x.grad is None
    with pytest.raises(RuntimeError, match="allow_unused"):
        rm.autograd.grad(model(x).sum(), [x, rm.randn(2, requires_grad=True)])


def test_multinomial_draws_by_weight() -> None:
    rm.manual_seed(0)
    draws = rm.multinomial(rm.tensor([[0.0, 1.0, 3.0]]), 4000, replacement=True)
    counts = np.bincount(draws.data[0], minlength=3)
    assert counts[0] == 0 and 0.7 < counts[2] / 4000 < 0.8
    assert sorted(rm.multinomial(rm.tensor([1.0, 1.0, 1.0]), 3).tolist()) == [0, 1, 2]
    with pytest.raises(RuntimeError, match="without replacement"):
        rm.multinomial(rm.tensor([1.0, 1.0]), 3)


def test_top_level_spellings_and_dtype_names() -> None:
    x = rm.tensor([[1.0, 4.0], [3.0, 2.0]])
    assert rm.max(x, 1).indices.tolist() == [1, 0] and rm.argmax(x, dim=0).tolist() == [1, 0]
    assert rm.sum(x, dim=1).tolist() == [5.0, 5.0] and rm.mean(x).item() == 2.5
    assert x.long().dtype == rm.long == rm.int64 and x.to(rm.float64).dtype == np.float64
    assert rm.zeros(2, dtype=rm.long).dtype == np.int64 and rm.is_tensor(x)
    assert optim.lr_scheduler.MultiStepLR is not None


def test_batch_norm_float32_statistics_are_as_precise_as_pytorch() -> None:
    """Batch statistics accumulate in float64: on inputs far from zero mean a float32 sum lost
    about 10x the precision of PyTorch's (5.5e-6 vs 5.8e-7 max error here before the fix)."""
    gen = np.random.default_rng(0)
    x = (gen.standard_normal((64, 16, 8, 8)) * 3 + 5).astype(np.float32)
    w, b = gen.standard_normal(16).astype(np.float32), gen.standard_normal(16).astype(np.float32)
    x64 = x.astype(np.float64)
    mean, var = x64.mean(axis=(0, 2, 3), keepdims=True), x64.var(axis=(0, 2, 3), keepdims=True)
    exact = (x64 - mean) / np.sqrt(var + 1e-5) * w.reshape(1, -1, 1, 1) + b.reshape(1, -1, 1, 1)
    running_mean, running_var = rm.zeros(16), rm.ones(16)
    ours = nn.functional.batch_norm(rm.tensor(x), running_mean, running_var, rm.tensor(w),
                                    rm.tensor(b), training=True).data
    assert np.abs(ours - exact).max() < 1.5e-6  # float32 rounding of outputs up to ~12
    np.testing.assert_allclose(running_mean.data, 0.1 * mean.reshape(-1), rtol=1e-6)
    torch = pytest.importorskip("torch")
    theirs = torch.nn.functional.batch_norm(torch.tensor(x), None, None, torch.tensor(w),
                                            torch.tensor(b), training=True).numpy()
    assert np.abs(ours - exact).max() < 2.5 * np.abs(theirs - exact).max()


def test_reduce_lr_on_plateau_matches_pytorch() -> None:
    torch = pytest.importorskip("torch")
    losses = [1.0, 0.9, 0.95, 0.96, 0.97, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    rates = []
    for lib in (rm, torch):
        opt = lib.optim.SGD(lib.nn.Linear(2, 2).parameters(), lr=1.0)
        sched = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1,
                                                         cooldown=1, min_lr=0.2)
        seen = []
        for loss in losses:
            sched.step(loss)
            seen.append(opt.param_groups[0]["lr"])
        rates.append(seen)
    assert rates[0] == rates[1]


def test_embedding_padding_row_is_zero_and_untrained() -> None:
    layer = nn.Embedding(5, 3, padding_idx=0)
    assert not layer.weight.data[0].any()
    layer(rm.tensor([[0, 2, 0]])).sum().backward()
    assert not layer.weight.grad.data[0].any() and layer.weight.grad.data[2].all()


def test_dropout2d_zeros_whole_channels() -> None:
    rm.manual_seed(0)
    layer = nn.Dropout2d(0.5)
    out = layer(rm.ones(8, 16, 4, 4)).data
    per_channel = out.reshape(8, 16, -1)
    assert set(np.unique(per_channel)) <= {0.0, 2.0}
    assert (per_channel.min(axis=2) == per_channel.max(axis=2)).all()  # one value per channel
    assert 0.3 < (per_channel[..., 0] == 0).mean() < 0.7
    assert layer.eval()(rm.ones(2, 3, 2, 2)).data.min() == 1.0


def test_conv1d_and_group_norm_layers_match_pytorch() -> None:
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 4, 9)).astype(np.float32)
    for make in (lambda lib: lib.nn.Conv1d(4, 6, 3, padding="same", groups=2),
                 lambda lib: lib.nn.Sequential(lib.nn.Conv1d(4, 6, 3, stride=2),
                                               lib.nn.GroupNorm(2, 6))):
        ours, theirs = make(rm), make(torch)
        theirs.load_state_dict({k: torch.from_numpy(v.data.copy())
                                for k, v in ours.state_dict().items()})
        np.testing.assert_allclose(ours(rm.tensor(x)).data,
                                   theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_new_layers_export_and_match_onnxruntime(tmp_path) -> None:
    import onnxruntime as ort

    rm.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(4, 6, 3, padding=1), nn.GroupNorm(2, 6), nn.SiLU(),
                          nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(54, 3)).eval()
    x = rm.randn(2, 4, 9)
    rm.export_onnx(model, x, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.data})[0]
    with rm.no_grad():
        np.testing.assert_allclose(got, model(x).data, rtol=1e-5, atol=1e-6)
