"""What the baseline recipes share: their configuration, data loaders, and the end of a run.

The end of a run writes into ``out_dir``, for a recipe called ``cifar10-cnn``:
``cifar10_cnn.npz`` + ``cifar10_cnn.json`` (checkpoint), ``cifar10_cnn.onnx`` (the exported model a
student submits) and ``cifar10_cnn.run.json`` (how it was trained, how long it took and, with
``score=True``, the evaluator's scorecard on the hidden test set).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from reference_models import manual_seed, optim
from reference_models.checkpoint import save_checkpoint, versions
from reference_models.data import DataLoader, TensorDataset, ToModelInput, load_task_data
from reference_models.nn import functional as F
from reference_models.train import History, fit


@dataclass(frozen=True)
class TrainingConfig:
    """Hyperparameters of a recipe. ``limit`` trains on a seeded random N examples (quick trials)."""

    epochs: int
    batch_size: int
    lr: float  # the peak learning rate of the one-cycle schedule
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    seed: int = 0
    limit: int | None = None
    # Examples held out of the training data to report validation accuracy; 0 trains on them all.
    validation_size: int = 0

    def replace(self, **changes: Any) -> TrainingConfig:
        """A copy with ``changes``; a ``ValueError`` naming the settings this recipe has otherwise."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(
                f"this recipe has no setting {', '.join(unknown)}; its settings are: "
                f"{', '.join(sorted(known))}"
            )
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RunResult:
    """What a recipe's ``train`` produced: the files written, the history and the run record."""

    files: dict[str, Path]
    history: History
    record: dict[str, Any] = field(default_factory=dict)


def train_image_classifier(
    name: str,
    task: str,
    build_model: Callable,
    augment: Callable,
    config: TrainingConfig,
    data_dir: str | Path | None = None,
    out_dir: str | Path = "runs",
    *,
    progress: bool = True,
    command: str | None = None,
    score: bool = False,
) -> RunResult:
    """The baselines' training script: SGD (Nesterov, weight decay) with a one-cycle schedule and
    label-smoothed cross-entropy on ``augment``-ed batches, then save, export and record."""
    started = time.perf_counter()
    manual_seed(config.seed)
    train_loader, val_loader = image_loaders(task, config, data_dir, augment)
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
        name, task, model, config, history, out_dir, started=started, command=command,
        score=score, data_dir=data_dir,
    )


def image_loaders(task: str, config: TrainingConfig, data_dir, train_transform):
    """The training loader (shuffled, augmented by ``train_transform``) and a validation loader
    (``None`` when ``config.validation_size`` is 0)."""
    images, labels = load_task_data(task, "train", data_dir, config.validation_size)
    if config.limit is not None and config.limit < len(images):
        # A random subset: the prepared images are grouped by class, so the first N would be one class.
        chosen = np.sort(np.random.default_rng(config.seed).permutation(len(images))[: config.limit])
        images, labels = images[chosen], labels[chosen]
    if len(images) < config.batch_size:
        raise ValueError(
            f"{len(images)} training examples are fewer than one batch of {config.batch_size}"
        )
    train_loader = DataLoader(
        TensorDataset(images, labels), batch_size=config.batch_size, shuffle=True,
        drop_last=True, seed=config.seed, transform=train_transform,
    )
    if not config.validation_size:
        return train_loader, None
    val_images, val_labels = load_task_data(task, "validation", data_dir, config.validation_size)
    val_loader = DataLoader(
        TensorDataset(val_images, val_labels), batch_size=500, transform=ToModelInput(task)
    )
    return train_loader, val_loader


def finish_run(
    name: str,
    task: str,
    model,
    config: TrainingConfig,
    history: History,
    out_dir: str | Path,
    *,
    started: float,
    command: str | None = None,
    score: bool = False,
    data_dir=None,
) -> RunResult:
    """Save the checkpoint, export the ONNX model, optionally score it, and write the run record.

    ``started`` is the ``time.perf_counter()`` at the start of the run (wall time includes loading
    the data).
    """
    from reference_models.export import export_onnx

    out_dir = Path(out_dir)
    stem = out_dir / name.replace("-", "_")
    training_seconds = history.seconds
    wall_seconds = time.perf_counter() - started
    meta = {"recipe": name, "task": task, "config": config.as_dict(), "history": history.as_dicts()}
    checkpoint = save_checkpoint(model, stem, meta)
    model.eval()
    onnx_path = stem.with_name(stem.name + ".onnx")
    export_onnx(model, example_input(task), onnx_path, task=task)
    record = {
        "recipe": name,
        "task": task,
        "command": command,
        "seed": config.seed,
        "epochs": config.epochs,
        "config": config.as_dict(),
        "wall_seconds": round(wall_seconds, 3),
        "training_seconds": round(training_seconds, 3),
        "final_epoch": dataclasses.asdict(history.last),
        "onnx_bytes": onnx_path.stat().st_size,
        "machine": machine(),
        "versions": versions(),
    }
    return write_run_record(record, task=task, stem=stem, checkpoint=checkpoint,
                            onnx_path=onnx_path, history=history, score=score, data_dir=data_dir)


def write_run_record(record: dict, *, task: str, stem: Path, checkpoint: Path, onnx_path: Path,
                     history: History, score: bool, data_dir) -> RunResult:
    """Score the exported model if asked, write ``<stem>.run.json`` and return the run's files."""
    if score:
        from evaluator.scoring import score as score_model

        record["scorecard"] = score_model(onnx_path.read_bytes(), task, data_dir=data_dir)
    record_path = stem.with_name(stem.name + ".run.json")
    record_path.write_text(json.dumps(record, indent=2, default=_plain) + "\n")
    files = {"checkpoint": checkpoint, "onnx": onnx_path, "record": record_path}
    return RunResult(files=files, history=history, record=record)


def example_input(task: str) -> np.ndarray:
    """One all-zero input of the task's shape, batch 1, for tracing the model during export."""
    from evaluator.tasks import get_task

    spec = get_task(task)
    shape = tuple(1 if size is None else size for size in spec.input_shape)
    return np.zeros(shape, dtype=spec.input_dtype)


def machine() -> dict[str, Any]:
    """How busy the machine was: timings on a shared machine are only comparable with this."""
    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "load_average_1_5_15": [round(x, 2) for x in load]}


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")
