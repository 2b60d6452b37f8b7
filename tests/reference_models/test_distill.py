"""Knowledge distillation: the loss (temperature, T^2 scaling, zero KL at a perfect match, gradient
towards the teacher) and the loop training a smaller student to follow a teacher."""

from __future__ import annotations

import numpy as np
import pytest

from reference_models import Tensor, manual_seed, nn, no_grad, optim
from reference_models.compress.distill import distill, distillation_loss, softmax_array
from reference_models.data import DataLoader, TensorDataset

RNG = np.random.default_rng(4)


def test_soft_term_is_zero_when_the_student_matches_the_teacher():
    logits = RNG.normal(size=(16, 10)).astype(np.float32)
    loss = distillation_loss(Tensor(logits), logits, RNG.integers(0, 10, 16), temperature=3.0,
                             alpha=1.0)
    assert abs(float(loss.data)) < 1e-5


def test_loss_is_the_scaled_kl_divergence_plus_hard_cross_entropy():
    student = RNG.normal(size=(8, 5)).astype(np.float32)
    teacher = RNG.normal(size=(8, 5)).astype(np.float32)
    labels = RNG.integers(0, 5, 8)
    t, alpha = 2.0, 0.7
    p, q = softmax_array(teacher, t), softmax_array(student, t)
    kl = np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1))
    hard = -np.mean(np.log(softmax_array(student)[np.arange(8), labels]))
    expected = alpha * t * t * kl + (1 - alpha) * hard
    got = float(distillation_loss(Tensor(student), teacher, labels, t, alpha).data)
    assert got == pytest.approx(expected, rel=1e-4)


def test_gradient_moves_the_student_towards_the_teacher():
    teacher = np.array([[3.0, 0.0, -3.0]], dtype=np.float32)
    student = Tensor(np.zeros((1, 3), dtype=np.float32), requires_grad=True)
    distillation_loss(student, teacher, [0], temperature=2.0, alpha=1.0).backward()
    assert student.grad[0, 0] < 0 < student.grad[0, 2]  # raise class 0, lower class 2


def test_bad_temperature_is_refused():
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(Tensor(np.zeros((1, 2), np.float32)), np.zeros((1, 2)), [0], 0.0)


def test_a_small_student_learns_to_follow_the_teacher():
    manual_seed(0)
    x = RNG.normal(size=(512, 10)).astype(np.float32)
    teacher = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 4))
    with no_grad():
        labels = teacher(Tensor(x)).data.argmax(1)
    student = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 4))
    loader = DataLoader(TensorDataset(x, labels), batch_size=64, shuffle=True, seed=0)

    def agreement() -> float:
        with no_grad():
            return float(np.mean(student(Tensor(x)).data.argmax(1) == labels))

    before = agreement()
    history = distill(student, teacher, loader, optim.Adam(student.parameters(), lr=0.01), 15,
                      temperature=2.0, alpha=0.9)
    assert history.epochs[-1].train_loss < history.epochs[0].train_loss
    assert agreement() > max(0.85, before + 0.2)
