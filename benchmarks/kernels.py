"""Fused kernels against unfused ops: per op, and on whole GPT and CNN training steps.

    .venv/bin/python benchmarks/kernels.py [--repeats 7]

Each row times forward + backward (the median of ``--repeats`` runs, the variants interleaved so
load changes hit them alike) of:

- "elementary": the op written with elementary tensor ops, as a student first writes it
  (``0.5 * u * (1 + tanh(...))``; mean, subtract, variance, divide for LayerNorm);
- "library": the framework's single-op building blocks chained (``F.gelu(x + b)``,
  ``F.layer_norm(x + r)``, ``F.relu(x + r)``, ``F.linear``);
- "fused": ``reference_models.kernels``.

Then one training step (forward, backward, AdamW) of the TinyGPT recipe's model (4 x 128, batch
12 x 64) with and without ``kernels.fuse``, and of a small residual CNN (batch 64, 16x16) whose
blocks end in ``relu(x + residual)`` unfused or ``kernels.relu_add``. Shapes are the recipes'.
On this shared machine the absolute times are noisy; the ratios, measured side by side, are the
figures to read.
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
import time  # noqa: E402

import numpy as np  # noqa: E402

import reference_models as rm  # noqa: E402
from reference_models import kernels, nn, optim  # noqa: E402
from reference_models.gpt import GPT, GPTConfig  # noqa: E402
from reference_models.nn import functional as F  # noqa: E402

RNG = np.random.default_rng(0)
C, K = float(np.sqrt(2 / np.pi)), 0.044715


def leaf(*shape: int) -> rm.Tensor:
    return rm.Tensor(RNG.standard_normal(shape).astype(np.float32), requires_grad=True)


def elementary_bias_gelu(x, b):
    u = x + b
    return 0.5 * u * (1 + (C * (u + K * u * u * u)).tanh())


def elementary_add_layer_norm(x, r, w, b, eps=1e-5):
    h = x + r
    d = h - h.mean(-1, keepdim=True)
    var = (d * d).mean(-1, keepdim=True)
    return d / (var + eps).sqrt() * w + b


def elementary_relu_add(x, r):
    return (x + r).relu()


def elementary_linear(x, w, b):
    return x @ w.T + b


def op_cases():
    x, b = leaf(12, 64, 512), leaf(512)
    h, r, w, bb = leaf(12, 64, 128), leaf(12, 64, 128), leaf(128), leaf(128)
    c, cr = leaf(64, 32, 16, 16), leaf(64, 32, 16, 16)
    lx, lw, lb = leaf(12, 64, 128), leaf(512, 128), leaf(512)
    return [
        ("bias + GELU [12,64,512]", (x, b), elementary_bias_gelu,
         lambda x, b: F.gelu(x + b, "tanh"), kernels.bias_gelu),
        ("residual add + LayerNorm [12,64,128]", (h, r, w, bb), elementary_add_layer_norm,
         lambda x, r, w, b: F.layer_norm(x + r, (128,), w, b), kernels.add_layer_norm),
        ("ReLU(x + residual) [64,32,16,16]", (c, cr), elementary_relu_add,
         lambda x, r: F.relu(x + r), kernels.relu_add),
        ("linear [12,64,128] x [512,128]", (lx, lw, lb), elementary_linear, F.linear,
         kernels.linear),
    ]


def step_time(fn, args) -> float:
    for a in args:
        a.grad = None
    started = time.perf_counter()
    out = fn(*args)
    out.backward(np.ones(out.shape, dtype=np.float32))
    return time.perf_counter() - started


def median_times(variants, repeats: int) -> list[float]:
    """Median seconds of each variant (a zero-argument callable), interleaved, after a warm-up."""
    for v in variants:
        v()
    times = [[] for _ in variants]
    for _ in range(repeats):
        for i, v in enumerate(variants):
            times[i].append(v())
    return [float(np.median(t)) for t in times]


def gpt_step(fused: bool):
    rm.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, context=64, n_layer=4, n_head=4, n_embd=128))
    if fused:
        kernels.fuse(model)
    opt = optim.AdamW(model.parameters(), lr=1e-3)
    ids = np.random.default_rng(0).integers(0, 65, (12, 65))

    def step() -> float:
        started = time.perf_counter()
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, 65), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return time.perf_counter() - started

    return step


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, fused: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.fused = fused

    def forward(self, x: rm.Tensor) -> rm.Tensor:
        h = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return kernels.relu_add(h, x) if self.fused else F.relu(h + x)


def cnn_step(fused: bool):
    rm.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), ResidualBlock(32, fused),
                          ResidualBlock(32, fused), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(32, 10))
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = RNG.standard_normal((64, 3, 16, 16)).astype(np.float32)
    y = RNG.integers(0, 10, 64)

    def step() -> float:
        started = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return time.perf_counter() - started

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description="fused kernels against unfused ops")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; forward + backward, "
          f"median of {args.repeats}", flush=True)
    print(f"{'op':40} {'elementary':>11} {'library':>9} {'fused':>9}  fused speed-up vs "
          "elementary / library")
    for name, tensors, elementary, library, fused in op_cases():
        e, lib, f = median_times([lambda fn=fn, args=tensors: step_time(fn, args)
                                  for fn in (elementary, library, fused)], args.repeats)
        print(f"{name:40} {e * 1e3:9.2f}ms {lib * 1e3:7.2f}ms {f * 1e3:7.2f}ms  "
              f"{e / f:5.2f}x / {lib / f:5.2f}x", flush=True)
    print(f"\n{'training step':40} {'unfused':>11} {'fused':>9}  speed-up")
    for name, make in (("TinyGPT 4x128, batch 12x64, AdamW", gpt_step),
                       ("residual CNN, batch 64x3x16x16, SGD", cnn_step)):
        plain, fused = median_times([make(False), make(True)], args.repeats)
        print(f"{name:40} {plain * 1e3:9.1f}ms {fused * 1e3:7.1f}ms  {plain / fused:5.2f}x",
              flush=True)


if __name__ == "__main__":
    main()
