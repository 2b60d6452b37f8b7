"""Mixed precision: float16 products with float32 master weights, float32 for sensitive ops,
GradScaler's dynamics against PyTorch's, and training a GPT under autocast."""

from __future__ import annotations

import numpy as np
import pytest

import reference_models as rm
from reference_models import amp, nn, optim
from reference_models.gpt import GPT, GPTConfig
from reference_models.nn import functional as F


def test_autocast_computes_products_in_float16_and_keeps_float32_master_gradients() -> None:
    rm.manual_seed(0)
    layer = nn.Linear(8, 4)
    x = rm.Tensor(np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32),
                  requires_grad=True)
    with amp.autocast("cpu", dtype=rm.float16):
        assert amp.is_autocast_enabled()
        y = layer(x)
        z = x @ layer.weight.T
        probs = F.softmax(y, dim=-1)
    assert y.dtype == np.float16 and z.dtype == np.float16 and probs.dtype == np.float32
    expected = (x.data @ layer.weight.data.T + layer.bias.data)
    np.testing.assert_allclose(y.data.astype(np.float32), expected, rtol=2e-3, atol=2e-3)
    (y.float() * 3).sum().backward()
    assert layer.weight.dtype == np.float32 and layer.weight.grad.dtype == np.float32
    np.testing.assert_allclose(layer.weight.grad.data, 3 * np.ones((4, 3)) @ x.data, rtol=2e-3)
    assert x.grad.dtype == np.float32
    # outside the context everything is float32 again
    assert not amp.is_autocast_enabled() and layer(x).dtype == np.float32
    assert F.linear is not amp._half_linear


def test_autocast_refuses_what_it_cannot_do() -> None:
    with pytest.raises(RuntimeError, match="CPU only"):
        amp.autocast("cuda")
    with pytest.raises(ValueError, match="float16 only"):
        amp.autocast("cpu", dtype=np.float32)


def test_float16_gradients_underflow_without_loss_scaling() -> None:
    rm.manual_seed(1)
    layer = nn.Linear(4, 4, bias=False)
    x = rm.Tensor(np.ones((2, 4), dtype=np.float32), requires_grad=True)
    for scale, survives in ((1.0, False), (2.0 ** 16, True)):
        x.grad = None
        with amp.autocast("cpu"):
            out = layer(x)
        (out.float().sum() * (1e-8 * scale)).backward()  # 1e-8 is below float16's smallest
        assert bool(np.any(x.grad.data != 0)) == survives


def _grads(model) -> None:
    for p in model.parameters():
        p.grad = np.ones_like(p.data)


def test_grad_scaler_skips_overflowed_steps_and_adapts_like_pytorchs() -> None:
    torch = pytest.importorskip("torch")
    rm.manual_seed(2)
    ours_model = nn.Linear(3, 2)
    theirs_model = torch.nn.Linear(3, 2)
    ours_opt = optim.SGD(ours_model.parameters(), lr=0.1)
    theirs_opt = torch.optim.SGD(theirs_model.parameters(), lr=0.1)
    ours = amp.GradScaler(init_scale=1024.0, growth_interval=3)
    theirs = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=3)
    for step, overflow in enumerate([False, True, False, False, False, True, False]):
        before = ours_model.weight.data.copy()
        for p in ours_model.parameters():
            p.grad = np.full(p.shape, np.inf if overflow else 2048.0, dtype=np.float32)
        for p in theirs_model.parameters():
            p.grad = torch.full(p.shape, float("inf") if overflow else 2048.0)
        ours.scale(rm.Tensor(1.0))
        theirs.scale(torch.tensor(1.0))  # PyTorch sets its scale up lazily, here
        ours.step(ours_opt)
        theirs.step(theirs_opt)
        moved = not np.array_equal(before, ours_model.weight.data)
        assert moved != overflow, f"step {step}"
        if not overflow:  # the unscaled gradient is 2048 / scale
            np.testing.assert_allclose(ours_model.weight.grad.data, 2048.0 / ours.get_scale())
        ours.update()
        theirs.update()
        assert ours.get_scale() == theirs.get_scale(), f"step {step}"
    assert ours.state_dict()["_growth_tracker"] == theirs.state_dict()["_growth_tracker"]


def test_grad_scaler_state_and_misuse() -> None:
    model = nn.Linear(2, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    scaler = amp.GradScaler(init_scale=8.0)
    loss = model(rm.Tensor(np.ones((1, 2), dtype=np.float32))).sum()
    assert float(scaler.scale(loss).data) == pytest.approx(8 * float(loss.data))
    _grads(model)
    scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match="already been called"):
        scaler.unscale_(opt)
    scaler.step(opt)
    scaler.update()
    again = amp.GradScaler()
    again.load_state_dict(scaler.state_dict())
    assert again.get_scale() == 8.0 and again.state_dict() == scaler.state_dict()
    off = amp.GradScaler(enabled=False)
    assert off.scale(loss) is loss and off.get_scale() == 1.0 and off.state_dict() == {}


def test_a_gpt_learns_under_autocast_like_in_float32() -> None:
    config = GPTConfig(vocab_size=12, context=8, n_layer=2, n_head=2, n_embd=32)
    ids = np.random.default_rng(3).integers(0, 12, (8, 9))
    losses = {}
    for mixed in (False, True):
        rm.manual_seed(0)
        model = GPT(config)
        opt = optim.AdamW(model.parameters(), lr=3e-3)
        scaler = amp.GradScaler(enabled=mixed)
        history = []
        for _ in range(40):
            with amp.autocast("cpu", enabled=mixed):
                logits = model(ids[:, :-1])
                loss = F.cross_entropy(logits.reshape(-1, 12), ids[:, 1:].reshape(-1))
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            history.append(float(loss.data))
        assert all(p.dtype == np.float32 for p in model.parameters())
        losses[mixed] = history
    assert losses[True][-1] < 0.5 * losses[True][0]
    assert abs(losses[True][-1] - losses[False][-1]) < 0.1 * losses[False][-1] + 0.05
