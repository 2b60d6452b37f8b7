"""Optimizers, schedules and gradient clipping, checked against their update rules by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

import reference_models as rm
from reference_models import nn, optim
from reference_models.optim import lr_scheduler


def param(*values: float) -> rm.Tensor:
    return rm.Tensor(np.array(values, dtype=np.float32), requires_grad=True)


def step_with_grad(opt: optim.Optimizer, p: rm.Tensor, grad: list[float]) -> None:
    p.grad = np.array(grad, dtype=np.float32)
    opt.step()


def test_sgd_plain_momentum_and_nesterov_by_hand() -> None:
    p = param(1.0)
    opt = optim.SGD([p], lr=0.1)
    step_with_grad(opt, p, [2.0])
    assert p.data[0] == pytest.approx(0.8)

    p = param(1.0)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    step_with_grad(opt, p, [1.0])  # buffer 1
    step_with_grad(opt, p, [1.0])  # buffer 1.9
    assert p.data[0] == pytest.approx(1.0 - 0.1 - 0.19)

    p = param(1.0)
    opt = optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.5)
    step_with_grad(opt, p, [1.0])  # g = 1 + 0.5 = 1.5, buf = 1.5, update = 1.5 + 0.9 * 1.5
    assert p.data[0] == pytest.approx(1.0 - 0.1 * 2.85)


def test_nesterov_needs_momentum() -> None:
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([param(1.0)], lr=0.1, nesterov=True)


def test_adam_first_step_moves_by_lr_in_the_gradient_sign() -> None:
    p = param(1.0, -1.0)
    opt = optim.Adam([p], lr=0.01)
    step_with_grad(opt, p, [3.0, -0.001])
    np.testing.assert_allclose(p.data, [0.99, -0.99], rtol=1e-4)


def test_adamw_decays_weights_apart_from_the_gradient() -> None:
    p = param(2.0)
    opt = optim.AdamW([p], lr=0.1, weight_decay=0.5)
    step_with_grad(opt, p, [0.0])  # zero gradient: only the decoupled decay acts
    assert p.data[0] == pytest.approx(2.0 * (1 - 0.1 * 0.5))
    q = param(2.0)
    step_with_grad(optim.Adam([q], lr=0.1, weight_decay=0.5), q, [0.0])
    assert q.data[0] == pytest.approx(2.0 - 0.1, rel=1e-4)  # Adam: decay goes through the gradient


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    lambda ps: optim.Adam(ps, lr=0.05),
    lambda ps: optim.AdamW(ps, lr=0.05, weight_decay=0.0),
])
def test_optimizers_fit_a_linear_regression(make) -> None:
    rm.manual_seed(0)
    gen = np.random.default_rng(0)
    x = gen.standard_normal((64, 3)).astype(np.float32)
    y = x @ np.array([[1.5], [-2.0], [0.5]], dtype=np.float32) + 0.3
    model = nn.Linear(3, 1)
    opt = make(model.parameters())
    for _ in range(300):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(rm.Tensor(x)), y)
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3


def test_param_groups_have_their_own_rates() -> None:
    a, b = param(1.0), param(1.0)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    a.grad, b.grad = np.ones(1, np.float32), np.ones(1, np.float32)
    opt.step()
    assert a.data[0] == pytest.approx(0.9) and b.data[0] == pytest.approx(0.0)


def test_optimizer_state_dict_round_trip() -> None:
    p = param(1.0, 2.0)
    opt = optim.Adam([p], lr=0.01)
    step_with_grad(opt, p, [1.0, 1.0])
    saved = opt.state_dict()
    q = param(*p.data)
    restored = optim.Adam([q], lr=0.5)
    restored.load_state_dict(saved)
    assert restored.param_groups[0]["lr"] == 0.01
    step_with_grad(opt, p, [0.5, -0.5])
    step_with_grad(restored, q, [0.5, -0.5])
    np.testing.assert_array_equal(p.data, q.data)


def rates(scheduler_factory, steps: int, lr: float = 1.0) -> list[float]:
    opt = optim.SGD([param(0.0)], lr=lr, momentum=0.9)
    scheduler = scheduler_factory(opt)
    seen = []
    for _ in range(steps):
        seen.append(opt.param_groups[0]["lr"])
        scheduler.step()
    return seen


def test_step_lr() -> None:
    assert rates(lambda o: lr_scheduler.StepLR(o, step_size=2, gamma=0.5), 5) == [
        1.0, 1.0, 0.5, 0.5, 0.25]


def test_cosine_with_warmup() -> None:
    seen = rates(lambda o: lr_scheduler.CosineWarmupLR(o, warmup_steps=4, total_steps=14,
                                                       min_lr=0.1), 15)
    assert seen[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert seen[4] == pytest.approx(1.0)
    assert seen[9] == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 0.5)) / 2)
    assert seen[14] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(seen[4:], seen[5:], strict=False))


def test_one_cycle_rises_then_falls_far_below_the_start() -> None:
    seen = rates(lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.4, total_steps=100), 100)
    assert seen[0] == pytest.approx(0.4 / 25)
    assert max(seen) == pytest.approx(0.4, rel=1e-3) and int(np.argmax(seen)) in (29, 30)
    assert seen[-1] < 0.4 / 25 / 100


def test_one_cycle_refuses_to_run_past_its_end() -> None:
    opt = optim.SGD([param(0.0)], lr=0.1)
    scheduler = lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        scheduler.step()
    with pytest.raises(ValueError, match="total_steps"):
        scheduler.step()


def test_clip_grad_norm_scales_only_when_needed() -> None:
    a, b = param(0.0, 0.0), param(0.0)
    a.grad, b.grad = np.array([3.0, 0.0], np.float32), np.array([4.0], np.float32)
    norm = nn.utils.clip_grad_norm_([a, b], max_norm=10.0)
    assert norm.item() == pytest.approx(5.0)
    np.testing.assert_allclose(b.grad, [4.0])
    nn.utils.clip_grad_norm_([a, b], max_norm=1.0)
    total = math.sqrt(float((a.grad ** 2).sum() + (b.grad ** 2).sum()))
    assert total == pytest.approx(1.0, rel=1e-4)
