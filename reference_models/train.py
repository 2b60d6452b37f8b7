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
class StepRecord:
    """What the steps since the last record did, in a loop counted in optimizer steps (a language
    model trained on random windows has no epochs). ``val_*`` are ``None`` without validation."""

    step: int
    train_loss: float
    train_accuracy: float
    seconds: float
    tokens_per_second: float
    learning_rate: float
    val_loss: float | None = None
    val_accuracy: float | None = None


@dataclass
class History:
    """The records of a run, one per epoch (``EpochRecord``) or per logged stretch of steps
    (``StepRecord``)."""

    epochs: list[EpochRecord | StepRecord] = field(default_factory=list)

    @property
    def last(self) -> EpochRecord | StepRecord:
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
    with ProgressBar(progress) as bar:
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
            bar.print(epoch_line(record, epochs))
            if on_epoch_end is not None:
                on_epoch_end(record)
    return history


def _train_one_epoch(model, loader, optimizer, loss_fn, epoch, epochs, bar, batch_scheduler):
    model.train()
    metrics = RunningMetrics()
    started = time.perf_counter()
    bar.start(f"epoch {epoch}/{epochs}", _length(loader))
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
        bar.advance(metrics.loss, metrics.accuracy, metrics.count / max(elapsed, 1e-9))
    seconds = time.perf_counter() - started
    return EpochRecord(
        epoch=epoch,
        train_loss=metrics.loss,
        train_accuracy=metrics.accuracy,
        seconds=seconds,
        examples_per_second=metrics.count / max(seconds, 1e-9),
        learning_rate=current_learning_rate(optimizer),
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


def current_learning_rate(optimizer) -> float:
    groups = getattr(optimizer, "param_groups", None)
    if groups:
        return float(groups[0]["lr"])
    return float(getattr(optimizer, "lr", float("nan")))


class ProgressBar:
    """The training loops' progress display: a live rich bar on a terminal, plain lines in a log.

    ``unit`` names the speed (``"img/s"``, ``"tok/s"``); ``accuracy`` adds the running accuracy to
    the bar. In a log file (no terminal) a line is printed at every tenth of the current task when
    ``tenths`` is true, and ``print`` lines always: they are what remains in the log. Disabled
    (``enabled=False``), it shows and prints nothing.
    """

    def __init__(self, enabled: bool, *, unit: str = "img/s", accuracy: bool = True,
                 tenths: bool = True) -> None:
        self.enabled, self.unit, self.accuracy, self.tenths = enabled, unit, accuracy, tenths
        self.progress = None
        self.task = None

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            scores = "loss {task.fields[loss]:.4f}"
            if self.accuracy:
                scores += "  acc {task.fields[accuracy]:6.2%}"
            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn(scores), TextColumn("{task.fields[speed]:7.0f} " + self.unit),
                TimeElapsedColumn(), TimeRemainingColumn(),
            )
            self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def start(self, description: str, total: int | None) -> None:
        """Begin a new task (an epoch, or all the steps of a step-based loop)."""
        if self.progress is not None:
            self.task = self.progress.add_task(
                description, total=total, loss=float("nan"), accuracy=0.0, speed=0.0
            )

    def advance(self, loss: float, accuracy: float, speed: float) -> None:
        if self.progress is None:
            return
        self.progress.update(self.task, advance=1, loss=loss, accuracy=accuracy, speed=speed)
        task = self.progress.tasks[-1]
        if self.tenths and not self.progress.console.is_terminal and task.total:
            # No live bar in a log file: print a line at every tenth of the task instead.
            tenth = max(task.total // 10, 1)
            if task.completed % tenth == 0 and task.completed < task.total:
                line = f"{task.description}: {task.completed}/{task.total} batches, loss {loss:.4f}"
                if self.accuracy:
                    line += f", accuracy {accuracy:.2%}"
                self.print(f"{line}, {speed:.0f} {self.unit}")

    def print(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text, markup=False, highlight=False)


def epoch_line(record: EpochRecord, epochs: int) -> str:
    """The one summary line ``fit`` prints per epoch."""
    line = (
        f"epoch {record.epoch}/{epochs}: loss {record.train_loss:.4f}, "
        f"accuracy {record.train_accuracy:.2%}, {record.examples_per_second:.0f} img/s, "
        f"{record.seconds:.1f} s"
    )
    if record.val_accuracy is not None:
        line += f"; validation loss {record.val_loss:.4f}, accuracy {record.val_accuracy:.2%}"
    return line
