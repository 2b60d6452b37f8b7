"""MNIST baseline: a two-hidden-layer perceptron trained from scratch past 98% test accuracy.

    python -m reference_models train mnist-mlp --data-dir /tmp/arena-data --score
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from reference_models import manual_seed, nn, optim
from reference_models.data import Compose, RandomCrop, ToModelInput
from reference_models.nn import functional as F
from reference_models.recipes.common import RunResult, TrainingConfig, finish_run, image_loaders
from reference_models.train import fit

NAME = "mnist-mlp"
TASK = "mnist"
CONFIG = TrainingConfig(
    epochs=8, batch_size=128, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4,
    label_smoothing=0.1, seed=0,
)


def build_model() -> nn.Sequential:
    # 784 -> 256 -> 128 -> 10: about 235k parameters, under 1 MB as float32.
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(28 * 28, 256), nn.ReLU(),
        nn.Linear(256, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )


def train(
    config: TrainingConfig = CONFIG,
    data_dir: str | Path | None = None,
    out_dir: str | Path = "runs",
    *,
    progress: bool = True,
    command: str | None = None,
    score: bool = False,
) -> RunResult:
    started = time.perf_counter()
    manual_seed(config.seed)
    # Shifting digits by up to two pixels is the augmentation an MLP, blind to locality, needs most.
    augment = Compose([RandomCrop(28, padding=2), ToModelInput(TASK)])
    train_loader, val_loader = image_loaders(TASK, config, data_dir, augment)
    model = build_model()
    optimizer = optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum,
        weight_decay=config.weight_decay, nesterov=config.nesterov,
    )
    scheduler = optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * len(train_loader)
    )
    loss_fn = partial(F.cross_entropy, label_smoothing=config.label_smoothing)
    history = fit(
        model, train_loader, optimizer, loss_fn, config.epochs, scheduler=scheduler,
        val_loader=val_loader, seed=config.seed, progress=progress,
    )
    return finish_run(
        NAME, TASK, model, config, history, out_dir, started=started, command=command,
        score=score, data_dir=data_dir,
    )
