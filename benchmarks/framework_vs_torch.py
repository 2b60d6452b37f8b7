"""The reference framework against PyTorch, side by side in one process, same weights, 2 threads.

    .venv/bin/python benchmarks/framework_vs_torch.py [--repeats 10] [--threads 2]

Prints the median wall time of each workload (after warm-up) for both frameworks and the ratio
ours / PyTorch: a Conv2d 3->32 3x3 forward+backward, an MLP 784->256->10 forward+backward, and one
full training step of the 160k-parameter CIFAR-10 CNN at batch 128, and one AdamW step of the
0.8M-parameter TinyGPT (4 layers, width 128) at batch 12, context 64.

Timings are only comparable on an otherwise idle machine; the load average is printed first. On
a busy machine PyTorch's OpenMP threads spin while they wait for each other and lose badly at 2
threads; run with ``OMP_WAIT_POLICY=PASSIVE`` (or ``--threads 1``) for a fairer comparison there.
"""

from __future__ import annotations

import os
import sys

# BLAS reads its thread count when numpy loads, so this must come before any numpy import
# (only when run as a script: tests import cnn_layers from here and must not change the env).
THREADS = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "2"
if __name__ == "__main__":
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = THREADS

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

import reference_models as rm  # noqa: E402
from reference_models import nn  # noqa: E402
from reference_models.nn import functional as F  # noqa: E402

CNN_WIDTHS = (32, 32, 64, 64, 128)
POOL_AFTER = (1, 3, 4)  # a 2x2 max-pool follows these conv layers


def median_seconds(ours: Callable[[], object], theirs: Callable[[], object], repeats: int,
                   warmup: int = 2) -> tuple[float, float]:
    """Median wall time of each, timed in alternation so both see the same machine load."""
    for _ in range(warmup):
        ours()
        theirs()
    times: dict[str, list[float]] = {"ours": [], "theirs": []}
    for _ in range(repeats):
        for key, fn in (("ours", ours), ("theirs", theirs)):
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return statistics.median(times["ours"]), statistics.median(times["theirs"])


def cnn_layers(lib) -> list:
    """The 160k CNN with ``lib`` = reference_models.nn or torch.nn (identical layer order)."""
    layers, channels = [], 3
    for index, width in enumerate(CNN_WIDTHS):
        layers += [lib.Conv2d(channels, width, 3, padding=1, bias=False),
                   lib.BatchNorm2d(width), lib.ReLU()]
        if index in POOL_AFTER:
            layers.append(lib.MaxPool2d(2))
        channels = width
    return [*layers, lib.Flatten(), lib.Linear(channels * 4 * 4, 10)]


def copy_weights(ours: nn.Module, theirs) -> None:
    import torch

    state = {k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state)


def conv_workload(torch, repeats: int) -> tuple[float, float]:
    gen = np.random.default_rng(0)
    x_np = gen.standard_normal((32, 3, 32, 32), dtype=np.float32)
    conv = nn.Conv2d(3, 32, 3, padding=1)
    tconv = torch.nn.Conv2d(3, 32, 3, padding=1)
    copy_weights(conv, tconv)
    x, tx = rm.Tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)

    def ours() -> None:
        conv.zero_grad()
        conv(x).sum().backward()

    def theirs() -> None:
        tconv.zero_grad()
        tconv(tx).sum().backward()

    return median_seconds(ours, theirs, repeats)


def mlp_workload(torch, repeats: int) -> tuple[float, float]:
    gen = np.random.default_rng(1)
    x_np = gen.standard_normal((128, 784), dtype=np.float32)
    y_np = gen.integers(0, 10, 128)
    mlp = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    tmlp = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    copy_weights(mlp, tmlp)
    x, tx, ty = rm.Tensor(x_np), torch.from_numpy(x_np), torch.from_numpy(y_np)

    def ours() -> None:
        mlp.zero_grad()
        F.cross_entropy(mlp(x), y_np).backward()

    def theirs() -> None:
        tmlp.zero_grad()
        torch.nn.functional.cross_entropy(tmlp(tx), ty).backward()

    return median_seconds(ours, theirs, repeats)


def cnn_step_workload(torch, repeats: int) -> tuple[float, float]:
    gen = np.random.default_rng(2)
    x_np = gen.random((128, 3, 32, 32), dtype=np.float32)
    y_np = gen.integers(0, 10, 128)
    model = nn.Sequential(*cnn_layers(nn))
    tmodel = torch.nn.Sequential(*cnn_layers(torch.nn))
    copy_weights(model, tmodel)
    opt = rm.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                           weight_decay=5e-4)
    x, tx, ty = rm.Tensor(x_np), torch.from_numpy(x_np), torch.from_numpy(y_np)

    def ours() -> None:
        opt.zero_grad()
        F.cross_entropy(model(x), y_np, label_smoothing=0.1).backward()
        opt.step()

    def theirs() -> None:
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tmodel(tx), ty, label_smoothing=0.1).backward()
        topt.step()

    params = sum(p.numel() for p in model.parameters())
    print(f"(CNN: {params:,} parameters)")
    return median_seconds(ours, theirs, repeats)


def torch_gpt(torch, vocab: int, context: int, layers: int, width: int, heads: int):
    """nanoGPT's model in PyTorch (pre-norm blocks, tanh GELU, tied head), our parameter names."""
    tnn, tf = torch.nn, torch.nn.functional

    class Block(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln_1, self.ln_2 = tnn.LayerNorm(width), tnn.LayerNorm(width)
            self.attn, self.mlp = tnn.Module(), tnn.Module()
            self.attn.c_attn, self.attn.c_proj = tnn.Linear(width, 3 * width), tnn.Linear(width, width)
            self.mlp.c_fc, self.mlp.c_proj = tnn.Linear(width, 4 * width), tnn.Linear(4 * width, width)

        def forward(self, x):
            n, t, d = x.shape
            q, k, v = self.attn.c_attn(self.ln_1(x)).split(d, dim=2)
            q, k, v = (z.view(n, t, heads, d // heads).transpose(1, 2) for z in (q, k, v))
            y = tf.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.attn.c_proj(y.transpose(1, 2).reshape(n, t, d))
            return x + self.mlp.c_proj(tf.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))

    class GPT(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte, self.wpe = tnn.Embedding(vocab, width), tnn.Embedding(context, width)
            self.h = tnn.ModuleList(Block() for _ in range(layers))
            self.ln_f = tnn.LayerNorm(width)
            self.lm_head = tnn.Linear(width, vocab, bias=False)
            self.lm_head.weight = self.wte.weight

        def forward(self, ids):
            x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
            for block in self.h:
                x = block(x)
            return self.lm_head(self.ln_f(x))

    return GPT()


def gpt_step_workload(torch, repeats: int) -> tuple[float, float]:
    """One AdamW training step of the TinyGPT baseline (4 layers, 4 heads, width 128), 12 x 64."""
    from reference_models.gpt import GPT, GPTConfig

    gen = np.random.default_rng(3)
    x_np, y_np = gen.integers(0, 65, (12, 64)), gen.integers(0, 65, (12, 64))
    model = GPT(GPTConfig(vocab_size=65, context=64, n_layer=4, n_head=4, n_embd=128))
    tmodel = torch_gpt(torch, 65, 64, 4, 128, 4)
    copy_weights(model, tmodel)
    opt = rm.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    topt = torch.optim.AdamW(tmodel.parameters(), lr=1e-3, weight_decay=0.1)
    tx, ty = torch.from_numpy(x_np), torch.from_numpy(y_np).reshape(-1)

    def ours() -> None:
        opt.zero_grad()
        F.cross_entropy(model(x_np).reshape(-1, 65), y_np.reshape(-1)).backward()
        opt.step()

    def theirs() -> None:
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tmodel(tx).reshape(-1, 65), ty).backward()
        topt.step()

    return median_seconds(ours, theirs, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per workload")
    parser.add_argument("--threads", type=int, default=2, help="BLAS/OpenMP threads for each")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(int(THREADS))
    rm.manual_seed(0)
    print(f"numpy {np.__version__} ({_blas_name()}), torch {torch.__version__}, "
          f"{THREADS} threads each; medians of {args.repeats} runs after warm-up; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    rows = [
        ("Conv2d 3->32 3x3 pad 1, 32x3x32x32, fwd+bwd", conv_workload(torch, args.repeats), 3.0),
        ("MLP 784->256->10, batch 128, fwd+bwd", mlp_workload(torch, args.repeats), 1.5),
        ("CNN 160k train step (CE ls=0.1, SGD Nesterov), batch 128",
         cnn_step_workload(torch, max(3, args.repeats // 2)), 3.0),
        ("TinyGPT 0.8M train step (4x128, AdamW), batch 12 x 64",
         gpt_step_workload(torch, args.repeats), 2.0),
    ]
    print(f"{'workload':60s} {'ours ms':>9s} {'torch ms':>9s} {'ratio':>7s} {'aim':>5s}")
    for name, (ours, theirs), aim in rows:
        print(f"{name:60s} {ours * 1e3:9.2f} {theirs * 1e3:9.2f} {ours / theirs:6.2f}x "
              f"{aim:4.1f}x")


def _blas_name() -> str:
    try:
        config = np.show_config(mode="dicts")
        return config["Build Dependencies"]["blas"]["name"]
    except Exception:  # the config layout is not a stable API
        return "unknown BLAS"


if __name__ == "__main__":
    main()
