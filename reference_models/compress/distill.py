"""Knowledge distillation: a small student learns from a large teacher's softened predictions.

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))
           + (1 - alpha) * cross_entropy(student, labels)

A temperature ``T > 1`` spreads the teacher's probability over the wrong classes too ("a 3 looks a
bit like an 8"), which carries more information per example than the hard label. ``T^2`` keeps
the soft term's gradient on the same scale as the hard term's whatever ``T`` is (Hinton et al.,
2015). ``distill`` is the training loop: the teacher runs in eval mode without gradients.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from reference_models.autograd import no_grad
from reference_models.nn import functional as F
from reference_models.nn.module import Module
from reference_models.tensor import Tensor
from reference_models.train import EpochRecord, History, RunningMetrics


def softmax_array(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    shifted = logits / temperature
    shifted = shifted - shifted.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def distillation_loss(student_logits: Tensor, teacher_logits: np.ndarray | Tensor, targets,
                      temperature: float = 4.0, alpha: float = 0.9) -> Tensor:
    """The combined loss above. ``teacher_logits`` are constants (no gradient flows to them).

    The KL term is computed as the soft cross-entropy minus the teacher's entropy (a constant), so
    it is exactly zero when the student matches the teacher.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    teacher = teacher_logits.data if isinstance(teacher_logits, Tensor) else np.asarray(
        teacher_logits)
    soft_targets = softmax_array(teacher.astype(np.float32), temperature)
    entropy = float(-(soft_targets * np.log(np.clip(soft_targets, 1e-12, None))).sum(-1).mean())
    soft = F.cross_entropy(student_logits / temperature, soft_targets) - entropy
    loss = soft * (alpha * temperature**2)
    if alpha < 1:
        loss = loss + F.cross_entropy(student_logits, targets) * (1 - alpha)
    return loss


def distill(student: Module, teacher: Module, loader: Iterable, optimizer, epochs: int, *,
            temperature: float = 4.0, alpha: float = 0.9, scheduler=None) -> History:
    """Train ``student`` on ``loader``'s ``(inputs, labels)`` batches to match ``teacher``."""
    history = History()
    teacher.eval()
    for epoch in range(1, epochs + 1):
        student.train()
        metrics, started = RunningMetrics(), time.perf_counter()
        for inputs, targets in loader:
            x = inputs if isinstance(inputs, Tensor) else Tensor(inputs)
            with no_grad():
                teacher_logits = teacher(x).data
            logits = student(x)
            loss = distillation_loss(logits, teacher_logits, targets, temperature, alpha)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            metrics.update(float(loss.data), logits.data, np.asarray(targets))
        seconds = time.perf_counter() - started
        history.epochs.append(EpochRecord(
            epoch=epoch, train_loss=metrics.loss, train_accuracy=metrics.accuracy,
            seconds=seconds, examples_per_second=metrics.count / max(seconds, 1e-9),
            learning_rate=float(optimizer.param_groups[0]["lr"]),
        ))
    student.eval()
    return history


def train_student(teacher: Module, student: Module, task: str, *, data_dir=None, epochs: int = 3,
                  batch_size: int = 128, lr: float = 0.05, temperature: float = 4.0,
                  alpha: float = 0.9, limit: int | None = None, seed: int = 0) -> History:
    """The distillation recipe: SGD with Nesterov momentum and a one-cycle schedule on the task's
    public training data (with the recipes' augmentation for images), teacher guiding student."""
    from reference_models import manual_seed, optim
    from reference_models.data import Compose, RandomCrop, RandomHorizontalFlip, ToModelInput
    from reference_models.recipes.common import TrainingConfig, image_loaders

    manual_seed(seed)
    config = TrainingConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, limit=limit)
    steps = [RandomCrop(32, padding=4), RandomHorizontalFlip()] if task == "cifar10" else [
        RandomCrop(28, padding=2)]
    loader, _ = image_loaders(task, config, data_dir, Compose([*steps, ToModelInput(task)]))
    optimizer = optim.SGD(student.parameters(), lr=lr, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr,
                                              total_steps=epochs * len(loader))
    return distill(student, teacher, loader, optimizer, epochs, temperature=temperature,
                   alpha=alpha, scheduler=scheduler)


__all__ = ["distill", "distillation_loss", "softmax_array", "train_student"]
