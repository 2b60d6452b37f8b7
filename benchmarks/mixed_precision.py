"""Mixed precision against float32 on the TinyGPT recipe: memory, speed and bits per character.

    .venv/bin/python benchmarks/mixed_precision.py [--steps 300]

Trains the tinygpt recipe's model (4 x 128, context 64, batch 12, AdamW, warm-up and cosine decay,
gradient clipping) twice from the same seed on the same windows of Tiny Shakespeare: in float32,
and under ``amp.autocast`` with a ``GradScaler`` (float16 products, float32 master weights). The
two runs alternate step by step so load changes hit them alike. Prints the median step time, the
peak memory one training step allocates (``tracemalloc``: activations kept for backward,
gradients, temporaries), and the final training and validation loss in bits per character.

The text comes from the prepared tinygpt data when there is some, else from
``$ARENA_SHARED_DATASETS/tinyshakespeare/input.txt``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]

if __name__ == "__main__":  # one BLAS thread, as the recipes train: on busy shared cores a BLAS
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # thread that is
        os.environ.setdefault(_var, "1")  # descheduled stalls the others at every small product

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

import reference_models as rm  # noqa: E402
from reference_models import amp, optim  # noqa: E402
from reference_models.nn import functional as F  # noqa: E402
from reference_models.nn.utils import clip_grad_norm_  # noqa: E402
from reference_models.recipes.tinygpt import (  # noqa: E402
    CONFIG,
    build_model,
    make_optimizer,
    random_windows,
    validation_loss,
)
from reference_models.text import CharTokenizer  # noqa: E402


def text_ids() -> np.ndarray:
    try:
        from reference_models.data import load_task_data

        return load_task_data("tinygpt", "train", None, 0)[0]
    except Exception as error:  # no prepared data: the raw text
        shared = Path(os.environ.get("ARENA_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))
        print(f"(no prepared tinygpt data: {error}; reading {shared})")
        text = (shared / "tinyshakespeare" / "input.txt").read_text()
        return CharTokenizer.tinygpt().encode(text)


class Run:
    def __init__(self, mixed: bool, steps: int) -> None:
        rm.manual_seed(CONFIG.seed)
        self.mixed = mixed
        self.model = build_model(CONFIG.model)
        self.optimizer = make_optimizer(self.model, CONFIG)
        self.scheduler = optim.lr_scheduler.CosineWarmupLR(
            self.optimizer, min(CONFIG.warmup_steps, steps - 1), steps, min_lr=CONFIG.min_lr)
        self.scaler = amp.GradScaler(enabled=mixed)
        self.times: list[float] = []
        self.losses: list[float] = []

    def step(self, x: np.ndarray, y: np.ndarray) -> None:
        started = time.perf_counter()
        with amp.autocast("cpu", enabled=self.mixed):
            logits = self.model(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        self.optimizer.zero_grad()
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        clip_grad_norm_(self.model.parameters(), CONFIG.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.times.append(time.perf_counter() - started)
        self.losses.append(float(loss.data))

    def peak_bytes(self, x: np.ndarray, y: np.ndarray) -> int:
        tracemalloc.start()
        try:
            self.step(x, y)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="mixed precision vs float32 on TinyGPT")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    ids = text_ids()
    cut = int(len(ids) * 0.9)
    train_ids, val_ids = ids[:cut], ids[cut:]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; TinyGPT recipe model, "
          f"{args.steps} steps of {CONFIG.batch_size} x {CONFIG.model.context}", flush=True)
    runs = {"float32": Run(False, args.steps), "mixed float16": Run(True, args.steps)}
    rng = np.random.default_rng(CONFIG.seed)
    for step in range(1, args.steps + 1):
        x, y = random_windows(train_ids, CONFIG.batch_size, CONFIG.model.context, rng)
        for run in runs.values():
            run.step(x, y)
        if step % 50 == 0:
            print(f"step {step}: " + ", ".join(
                f"{name} {np.mean(run.losses[-50:]) / math.log(2):.3f} bits/char"
                for name, run in runs.items()), flush=True)
    x, y = random_windows(train_ids, CONFIG.batch_size, CONFIG.model.context, rng)
    print(f"\n{'':14} {'step (median)':>14} {'peak step memory':>17} {'train bits/char':>16} "
          f"{'val bits/char':>14}")
    base = None
    for name, run in runs.items():
        peak = max(run.peak_bytes(x, y) for _ in range(2))
        val, _ = validation_loss(run.model, val_ids, CONFIG.model.context, max_windows=128)
        median = float(np.median(run.times))
        base = base or (median, peak)
        print(f"{name:14} {median * 1e3:11.1f} ms {peak / 2**20:13.1f} MiB "
              f"{np.mean(run.losses[-50:]) / math.log(2):16.3f} {val / math.log(2):14.3f}"
              f"   time x{median / base[0]:.2f}, memory x{peak / base[1]:.2f}", flush=True)
    print(f"loss scale at the end: {runs['mixed float16'].scaler.get_scale():g}")


if __name__ == "__main__":
    main()
