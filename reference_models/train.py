"""Training: ``fit`` runs epochs of forward, loss, backward and optimizer steps; ``evaluate`` measures.

    history = fit(model, train_loader, optimizer, F.cross_entropy, epochs=3,
                  scheduler=scheduler, val_loader=val_loader, seed=0)

``fit`` shows a live progress bar (loss, accuracy, images per second) and returns a ``History`` with
one ``EpochRecord`` per epoch. It is the loop you would write yourself; read it, then change it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class EpochRecord:
    """What one epoch did. ``val_*`` are ``None`` without a validation loader."""

    epoch: int
    train_loss: float
    train_accuracy: float
    seconds: float
    examples_per_second: float
    learning_rate: float
    val_loss: float | None = None
    val_accuracy: float | None = None


@dataclass
class History:
    epochs: list[EpochRecord] = field(default_factory=list)

    @property
    def last(self) -> EpochRecord:
        return self.epochs[-1]

    @property
    def seconds(self) -> float:
        return sum(record.seconds for record in self.epochs)

    def as_dicts(self) -> list[dict]:
        return [asdict(record) for record in self.epochs]


class RunningMetrics:
    """Sums of loss and correct predictions over the batches seen so far, weighted by batch size."""

    def __init__(self) -> None:
        self.loss_sum = 0.0
        self.correct = 0
        self.count = 0  # examples, for the loss average
        self.predictions = 0  # predicted positions (examples x tokens for a language model)

    def update(self, loss: float, logits: np.ndarray, targets: np.ndarray) -> None:
        batch = len(targets)
        self.loss_sum += loss * batch
        self.count += batch
        self.correct += int((logits.argmax(axis=-1) == targets).sum())
        self.predictions += targets.size

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.count, 1)

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.predictions, 1)


def fit(
    model,
    train_loader: Iterable,
    optimizer,
    loss_fn: Callable,
    epochs: int,
    scheduler=None,
    val_loader: Iterable | None = None,
    *,
    seed: int | None = None,
    scheduler_interval: str = "batch",
    progress: bool = True,
    on_epoch_end: Callable[[EpochRecord], None] | None = None,
) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader``; return the ``History``.

    ``scheduler.step()`` runs after every optimizer step (``scheduler_interval="batch"``, what
    ``OneCycleLR`` expects) or after every epoch (``"epoch"``, e.g. ``StepLR``). ``seed`` seeds the
    framework's random numbers (dropout); loaders have their own seeds.
    """
    from reference_models import manual_seed

    if scheduler_interval not in ("batch", "epoch"):
        raise ValueError(f"scheduler_interval must be 'batch' or 'epoch', got {scheduler_interval!r}")
    if seed is not None:
        manual_seed(seed)
    history = History()
    with _ProgressBar(progress) as bar:
        for epoch in range(1, epochs + 1):
            record = _train_one_epoch(
                model, train_loader, optimizer, loss_fn, epoch, epochs, bar,
                scheduler if scheduler_interval == "batch" else None,
            )
            if scheduler is not None and scheduler_interval == "epoch":
                scheduler.step()
            if val_loader is not None:
                scores = evaluate(model, val_loader, loss_fn)
                record.val_loss, record.val_accuracy = scores["loss"], scores["accuracy"]
            history.epochs.append(record)
            bar.epoch_done(record, epochs)
            if on_epoch_end is not None:
                on_epoch_end(record)
    return history


def _train_one_epoch(model, loader, optimizer, loss_fn, epoch, epochs, bar, batch_scheduler):
    model.train()
    metrics = RunningMetrics()
    started = time.perf_counter()
    bar.start_epoch(epoch, epochs, _length(loader))
    for inputs, targets in loader:
        logits = model(_tensor(inputs))
        loss = loss_fn(logits, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if batch_scheduler is not None:
            batch_scheduler.step()
        metrics.update(float(loss.data), _array(logits), _array(targets))
        elapsed = time.perf_counter() - started
        bar.advance(metrics, metrics.count / max(elapsed, 1e-9))
    seconds = time.perf_counter() - started
    return EpochRecord(
        epoch=epoch,
        train_loss=metrics.loss,
        train_accuracy=metrics.accuracy,
        seconds=seconds,
        examples_per_second=metrics.count / max(seconds, 1e-9),
        learning_rate=_learning_rate(optimizer),
    )


def evaluate(model, loader: Iterable, loss_fn: Callable | None = None) -> dict[str, float]:
    """Mean loss (when ``loss_fn`` is given) and top-1 accuracy of ``model`` over ``loader``.

    Runs in eval mode (batch-norm uses its running statistics) without recording gradients, and
    puts the model back in the mode it was in.
    """
    from reference_models import no_grad

    was_training = model.training
    model.eval()
    metrics = RunningMetrics()
    try:
        with no_grad():
            for inputs, targets in loader:
                logits = model(_tensor(inputs))
                loss = float(loss_fn(logits, targets).data) if loss_fn is not None else 0.0
                metrics.update(loss, _array(logits), _array(targets))
    finally:
        model.train(was_training)
    result = {"accuracy": metrics.accuracy, "examples": metrics.count}
    if loss_fn is not None:
        result["loss"] = metrics.loss
    return result


def _tensor(inputs):
    from reference_models import Tensor

    return inputs if isinstance(inputs, Tensor) else Tensor(inputs)


def _array(value) -> np.ndarray:
    """The numpy array of a Tensor (or of an array: loaders may yield either)."""
    return np.asarray(getattr(value, "data", value))


def _length(loader) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None


def _learning_rate(optimizer) -> float:
    groups = getattr(optimizer, "param_groups", None)
    if groups:
        return float(groups[0]["lr"])
    return float(getattr(optimizer, "lr", float("nan")))


class _ProgressBar:
    """A rich progress bar for ``fit``, or nothing at all when ``enabled`` is false.

    Besides the live bar it prints one summary line per epoch, which is what remains in a log file.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.progress = None
        self.task = None

    def __enter__(self):
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[accuracy]:6.2%}"),
                TextColumn("{task.fields[speed]:7.0f} img/s"),
                TimeElapsedColumn(), TimeRemainingColumn(),
            )
            self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def start_epoch(self, epoch: int, epochs: int, batches: int | None) -> None:
        if self.progress is not None:
            self.task = self.progress.add_task(
                f"epoch {epoch}/{epochs}", total=batches, loss=float("nan"), accuracy=0.0, speed=0.0
            )

    def advance(self, metrics: RunningMetrics, speed: float) -> None:
        if self.progress is None:
            return
        self.progress.update(
            self.task, advance=1, loss=metrics.loss, accuracy=metrics.accuracy, speed=speed
        )
        task = self.progress.tasks[-1]
        if not self.progress.console.is_terminal and task.total:
            # No live bar in a log file: print a line at every tenth of the epoch instead.
            tenth = max(task.total // 10, 1)
            if task.completed % tenth == 0 and task.completed < task.total:
                self.progress.console.print(
                    f"{task.description}: {task.completed}/{task.total} batches, loss "
                    f"{metrics.loss:.4f}, accuracy {metrics.accuracy:.2%}, {speed:.0f} img/s"
                )

    def epoch_done(self, record: EpochRecord, epochs: int) -> None:
        if self.progress is None:
            return
        line = (
            f"epoch {record.epoch}/{epochs}: loss {record.train_loss:.4f}, "
            f"accuracy {record.train_accuracy:.2%}, {record.examples_per_second:.0f} img/s, "
            f"{record.seconds:.1f} s"
        )
        if record.val_accuracy is not None:
            line += f"; validation loss {record.val_loss:.4f}, accuracy {record.val_accuracy:.2%}"
        self.progress.console.print(line)
