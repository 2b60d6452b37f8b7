"""TinyGPT baseline: a 0.8M-parameter character-level GPT trained from scratch on Tiny Shakespeare.

4 pre-norm blocks, 4 heads, width 128, context 64, learned positions, tied embeddings, init std 0.02
(nanoGPT's layout); AdamW with linear warm-up and cosine decay on random windows of the first 90% of
the text, batch 12. Writes the checkpoint, the exported ``int64[N, 64] -> float32[N, 64, 65]`` ONNX
model and a run record; prints generated text as it trains.

    python -m reference_models train tinygpt --data-dir /tmp/arena-data --score
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reference_models import manual_seed, no_grad, optim
from reference_models.checkpoint import save_checkpoint, versions
from reference_models.data import load_task_data
from reference_models.generate import generate
from reference_models.gpt import GPT, GPTConfig, parameter_counts
from reference_models.nn import functional as F
from reference_models.nn.utils import clip_grad_norm_
from reference_models.parallel import single_threaded_blas
from reference_models.recipes.common import RunResult, machine, write_run_record
from reference_models.text import CharTokenizer
from reference_models.train import (
    History,
    ProgressBar,
    RunningMetrics,
    StepRecord,
    current_learning_rate,
)

NAME = "tinygpt"
TASK = "tinygpt"


@dataclass(frozen=True)
class TinyGPTConfig:
    """Training settings. ``epochs`` (if set) overrides ``steps``: that many passes' worth of
    windows over the training text. ``limit`` trains on the first N characters only."""

    steps: int = 5000
    batch_size: int = 12
    lr: float = 2e-3
    min_lr: float = 1e-4
    warmup_steps: int = 200
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    seed: int = 0
    epochs: int | None = None
    limit: int | None = None
    validation_size: int = 0  # characters held out of the training text for a validation loss
    log_every: int = 100  # steps between progress lines (records) when not on a terminal
    sample_every: int = 1000  # steps between generated samples
    model: GPTConfig = GPTConfig(vocab_size=65, context=64, n_layer=4, n_head=4, n_embd=128)

    def replace(self, **changes: Any) -> TinyGPTConfig:
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


CONFIG = TinyGPTConfig()


def build_model(config: GPTConfig = CONFIG.model) -> GPT:
    return GPT(config)


def random_windows(ids: np.ndarray, batch_size: int, context: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``batch_size`` windows at random offsets: inputs and the next character of each position."""
    starts = rng.integers(0, len(ids) - context - 1, batch_size)
    windows = ids[starts[:, None] + np.arange(context + 1)]
    return windows[:, :-1], windows[:, 1:]


def make_optimizer(model: GPT, config: TinyGPTConfig) -> optim.AdamW:
    """Weight decay on matrices only (not on biases and norm gains), as in nanoGPT."""
    params = list(model.parameters())
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                        {"params": no_decay, "weight_decay": 0.0}],
                       lr=config.lr, betas=config.betas)


def total_steps(config: TinyGPTConfig, text_length: int) -> int:
    if config.epochs is None:
        return config.steps
    return max(1, config.epochs * text_length // (config.batch_size * config.model.context))


def train(
    config: TinyGPTConfig = CONFIG,
    data_dir: str | Path | None = None,
    out_dir: str | Path = "runs",
    *,
    progress: bool = True,
    command: str | None = None,
    score: bool = False,
) -> RunResult:
    started = time.perf_counter()
    manual_seed(config.seed)
    ids, _ = load_task_data(TASK, "train", data_dir, config.validation_size)
    if config.limit is not None:
        ids = ids[: config.limit]
    context = config.model.context
    if len(ids) < context + 2:
        raise ValueError(f"{len(ids)} training characters are too few for windows of {context}")
    val_ids = (load_task_data(TASK, "validation", data_dir, config.validation_size)[0]
               if config.validation_size else None)
    model = build_model(config.model)
    optimizer = make_optimizer(model, config)
    steps = total_steps(config, len(ids))
    scheduler = optim.lr_scheduler.CosineWarmupLR(optimizer, min(config.warmup_steps, steps - 1),
                                                  steps, min_lr=config.min_lr)
    with ProgressBar(progress, unit="tok/s", accuracy=False, tenths=False) as bar:
        bar.print(f"TinyGPT: {parameter_counts(model)['total']:,} parameters, {len(ids):,} "
                  f"training characters, {steps} steps of {config.batch_size} x {context}")
        bar.start("steps", steps)
        with single_threaded_blas():  # see its docstring: small products, busy shared cores
            history = _train_steps(model, optimizer, scheduler, ids, val_ids, config, steps, bar)
    return _finish(model, config, steps, history, out_dir, started, command, score, data_dir)


def _train_steps(model, optimizer, scheduler, ids, val_ids, config, steps,
                 bar: ProgressBar) -> History:
    tokenizer = CharTokenizer.tinygpt()
    rng = np.random.default_rng(config.seed)
    history = History()
    metrics, window_started = RunningMetrics(), time.perf_counter()
    model.train()
    for step in range(1, steps + 1):
        x, y = random_windows(ids, config.batch_size, config.model.context, rng)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        if config.grad_clip:
            clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        metrics.update(float(loss.data), logits.data, y)
        elapsed = time.perf_counter() - window_started
        bar.advance(float(loss.data), metrics.accuracy, metrics.predictions / max(elapsed, 1e-9))
        if step % config.log_every == 0 or step == steps:
            record = StepRecord(
                step=step, train_loss=metrics.loss, train_accuracy=metrics.accuracy,
                seconds=elapsed, tokens_per_second=metrics.predictions / max(elapsed, 1e-9),
                learning_rate=current_learning_rate(optimizer))
            if val_ids is not None:
                record.val_loss, record.val_accuracy = validation_loss(model, val_ids,
                                                                       config.model.context)
            history.epochs.append(record)
            bar.print(step_line(record))
            metrics, window_started = RunningMetrics(), time.perf_counter()
        if config.sample_every and (step % config.sample_every == 0 or step == steps):
            bar.print(f"--- sample after {step} steps ---\n" + sample_text(model, tokenizer))
            model.train()
    return history


def step_line(record: StepRecord) -> str:
    """The line printed at every ``log_every`` steps: loss in nats and bits per character."""
    line = (f"step {record.step}: loss {record.train_loss:.4f} "
            f"({record.train_loss / np.log(2):.3f} bits/char), accuracy "
            f"{record.train_accuracy:.2%}, {record.tokens_per_second:.0f} tok/s, "
            f"lr {record.learning_rate:.2e}")
    if record.val_loss is not None:
        line += f"; validation {record.val_loss / np.log(2):.3f} bits/char"
    return line


def sample_text(model: GPT, tokenizer: CharTokenizer, length: int = 300, seed: int = 0,
                prompt: str = "\n", temperature: float = 0.8, top_k: int | None = 20) -> str:
    ids = generate(model, tokenizer.encode(prompt), length, temperature=temperature,
                   top_k=top_k, seed=seed)
    return tokenizer.decode(ids)


def validation_loss(model: GPT, ids: np.ndarray, context: int,
                    max_windows: int = 256) -> tuple[float, float]:
    """Mean cross-entropy (nats) and accuracy over consecutive windows, as the scorer reads them."""
    count = min((len(ids) - 1) // context, max_windows)
    x = ids[: count * context].reshape(count, context)
    y = ids[1: count * context + 1].reshape(count, context)
    was_training = model.training
    model.eval()
    with no_grad():
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    model.train(was_training)
    return float(loss.data), float((logits.data.argmax(-1) == y).mean())


def _finish(model: GPT, config: TinyGPTConfig, steps: int, history: History, out_dir,
            started: float,
            command: str | None, score: bool, data_dir) -> RunResult:
    from reference_models.export import export_onnx

    out_dir = Path(out_dir)
    stem = out_dir / NAME
    training_seconds = history.seconds
    meta = {"recipe": NAME, "task": TASK, "config": config.as_dict(),
            "history": history.as_dicts()}
    checkpoint = save_checkpoint(model, stem, meta)
    model.eval()
    onnx_path = stem.with_name(stem.name + ".onnx")
    example = np.zeros((1, config.model.context), dtype=np.int64)
    export_onnx(model, example, onnx_path, task=TASK)
    record = {
        "recipe": NAME, "task": TASK, "command": command, "seed": config.seed,
        "steps": steps,
        "config": config.as_dict(),
        "parameters": parameter_counts(model),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "training_seconds": round(training_seconds, 1),
        "final": dataclasses.asdict(history.last),
        "sample": sample_text(model, CharTokenizer.tinygpt()),
        "onnx_bytes": onnx_path.stat().st_size,
        "machine": machine(),
        "versions": versions(),
    }
    return write_run_record(record, task=TASK, stem=stem, checkpoint=checkpoint,
                            onnx_path=onnx_path, history=history, score=score, data_dir=data_dir)
