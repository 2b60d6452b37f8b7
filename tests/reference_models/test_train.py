"""The training loop: it learns, it is reproducible, it steps schedules, and evaluate measures."""

from __future__ import annotations

import numpy as np
import pytest

from reference_models import manual_seed, nn, optim
from reference_models.data import DataLoader, TensorDataset
from reference_models.nn import functional as F
from reference_models.train import evaluate, fit


def blobs(count=512, seed=0):
    """Three well separated Gaussian clusters in 2-D: a problem a tiny MLP solves quickly."""
    rng = np.random.default_rng(seed)
    centers = np.array([[2.0, 0.0], [-1.0, 1.8], [-1.0, -1.8]], dtype=np.float32)
    labels = rng.integers(0, 3, count)
    points = centers[labels] + rng.normal(0, 0.5, (count, 2)).astype(np.float32)
    return points.astype(np.float32), labels.astype(np.int64)


def setup(seed=0, lr=0.1):
    manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    x, y = blobs()
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, seed=seed)
    return model, optimizer, loader


def test_fit_reduces_the_loss_and_learns_the_problem():
    model, optimizer, loader = setup()
    before = evaluate(model, loader, F.cross_entropy)
    history = fit(model, loader, optimizer, F.cross_entropy, epochs=4, progress=False)
    after = evaluate(model, loader, F.cross_entropy)
    assert len(history.epochs) == 4
    assert history.epochs[-1].train_loss < history.epochs[0].train_loss
    assert after["loss"] < 0.5 * before["loss"]
    assert after["accuracy"] > 0.95
    assert history.last.examples_per_second > 0 and history.seconds > 0


def test_same_seed_same_run_other_seed_other_run():
    def final_weights(seed):
        model, optimizer, loader = setup(seed)
        fit(model, loader, optimizer, F.cross_entropy, epochs=2, seed=seed, progress=False)
        return model.state_dict()["0.weight"]

    assert np.array_equal(final_weights(3), final_weights(3))
    assert not np.array_equal(final_weights(3), final_weights(4))


def test_validation_metrics_are_recorded_per_epoch():
    model, optimizer, loader = setup()
    x, y = blobs(count=200, seed=9)
    val_loader = DataLoader(TensorDataset(x, y), batch_size=100)
    seen = []
    history = fit(model, loader, optimizer, F.cross_entropy, epochs=2, val_loader=val_loader,
                  progress=False, on_epoch_end=seen.append)
    assert seen == history.epochs
    assert all(0 <= record.val_accuracy <= 1 for record in history.epochs)
    assert history.last.val_accuracy > 0.9 and history.last.val_loss is not None


def test_a_batch_scheduler_steps_every_batch_and_an_epoch_scheduler_every_epoch():
    model, optimizer, loader = setup()
    per_batch = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    fit(model, loader, optimizer, F.cross_entropy, epochs=1, scheduler=per_batch, progress=False)
    assert per_batch.last_epoch == len(loader)
    model, optimizer, loader = setup()
    per_epoch = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = fit(model, loader, optimizer, F.cross_entropy, epochs=2, scheduler=per_epoch,
                  scheduler_interval="epoch", progress=False)
    assert per_epoch.last_epoch == 2
    assert history.epochs[0].learning_rate == pytest.approx(0.1)
    assert history.epochs[1].learning_rate == pytest.approx(0.05)
    with pytest.raises(ValueError, match="scheduler_interval"):
        fit(model, loader, optimizer, F.cross_entropy, epochs=1, scheduler_interval="often")


def test_evaluate_uses_eval_mode_and_restores_the_mode():
    manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.9), nn.Linear(8, 3))
    x, y = blobs(count=64)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    first = evaluate(model, loader)
    second = evaluate(model, loader)
    assert first == second, "no dropout while evaluating: the result is deterministic"
    assert model.training
    model.eval()
    evaluate(model, loader)
    assert not model.training
    assert first["examples"] == 64 and "loss" not in first


def test_fit_with_the_progress_bar_prints_a_summary_per_epoch(capsys):
    model, optimizer, loader = setup()
    fit(model, loader, optimizer, F.cross_entropy, epochs=2, progress=True)
    out = capsys.readouterr().out
    assert "epoch 1/2: loss" in out and "epoch 2/2: loss" in out and "img/s" in out


def test_token_accuracy_counts_every_position_of_a_sequence_model():
    from reference_models.train import RunningMetrics

    metrics = RunningMetrics()
    logits = np.zeros((2, 3, 4), dtype=np.float32)
    logits[..., 1] = 1  # always predicts token 1
    targets = np.array([[1, 1, 0], [1, 2, 3]])
    metrics.update(2.0, logits, targets)
    assert metrics.accuracy == pytest.approx(3 / 6) and metrics.loss == pytest.approx(2.0)


def test_a_loader_may_yield_tensors_instead_of_arrays():
    from reference_models import Tensor

    model, optimizer, loader = setup()
    tensors = [(Tensor(x), Tensor(y)) for x, y in loader]
    history = fit(model, tensors, optimizer, F.cross_entropy, epochs=2, progress=False)
    assert history.last.train_accuracy > 0.8
    assert evaluate(model, tensors)["examples"] == 512
