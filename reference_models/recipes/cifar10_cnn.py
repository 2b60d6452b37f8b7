"""CIFAR-10 baseline: a 160k-parameter CNN trained from scratch past 75% test accuracy.

Five conv-batchnorm-ReLU blocks at 32, 32, 64, 64 and 128 channels, three max-pools and one linear
layer; SGD with Nesterov momentum and weight decay, a one-cycle learning rate, label smoothing,
random crops (padding 4) and horizontal flips.

    python -m reference_models train cifar10-cnn --data-dir /tmp/arena-data --score
"""

from __future__ import annotations

from pathlib import Path

from reference_models import nn
from reference_models.data import Compose, RandomCrop, RandomHorizontalFlip, ToModelInput
from reference_models.recipes.common import RunResult, TrainingConfig, train_image_classifier

NAME = "cifar10-cnn"
TASK = "cifar10"
CONFIG = TrainingConfig(
    epochs=3, batch_size=256, lr=0.2, momentum=0.9, nesterov=True, weight_decay=5e-4,
    label_smoothing=0.1, seed=0,
)


def conv_block(in_channels: int, out_channels: int) -> list[nn.Module]:
    # No conv bias: the batch-norm right after it has its own shift.
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]


def build_model() -> nn.Sequential:
    return nn.Sequential(
        *conv_block(3, 32), *conv_block(32, 32), nn.MaxPool2d(2),  # 32x32 -> 16x16
        *conv_block(32, 64), *conv_block(64, 64), nn.MaxPool2d(2),  # -> 8x8
        *conv_block(64, 128), nn.MaxPool2d(2),  # -> 4x4
        nn.Flatten(),
        nn.Linear(128 * 4 * 4, 10),
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
    """Train from scratch; write the checkpoint, the .onnx and the run record into ``out_dir``."""
    augment = Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), ToModelInput(TASK)])
    return train_image_classifier(
        NAME, TASK, build_model, augment, config, data_dir, out_dir,
        progress=progress, command=command, score=score,
    )
