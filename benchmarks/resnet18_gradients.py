"""Gradient error of a ResNet-18 (CIFAR variant) against PyTorch, same weights and batch.

    .venv/bin/python benchmarks/resnet18_gradients.py [--batch 16] [--width 64]

One training-mode forward and backward (BatchNorm on batch statistics, cross-entropy) in three
runs: the framework in float32, PyTorch in float32, and PyTorch in float64 as the reference. For
each parameter the relative error of its gradient is ``||g - g_ref|| / ||g_ref||``; the script
prints the median and the largest over the 62 parameter tensors, for the framework and for
PyTorch's own float32, side by side (the ratio says how far the framework is from what float32
can do). Precision only: nothing here is timed.
"""

from __future__ import annotations

import argparse

import numpy as np

import reference_models as rm
from reference_models import nn
from reference_models.nn import functional as F


def resnet18(lib, width: int = 64, classes: int = 10):
    """ResNet-18 for 32x32 inputs (3x3 stem, no max-pool) with ``lib`` = torch.nn or ours."""

    class BasicBlock(lib.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = lib.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            self.bn1 = lib.BatchNorm2d(cout)
            self.conv2 = lib.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn2 = lib.BatchNorm2d(cout)
            self.shortcut = lib.Sequential()
            if stride != 1 or cin != cout:
                self.shortcut = lib.Sequential(lib.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                               lib.BatchNorm2d(cout))
            self.relu = lib.ReLU()

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + self.shortcut(x))

    class ResNet(lib.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = lib.Conv2d(3, width, 3, padding=1, bias=False)
            self.bn1 = lib.BatchNorm2d(width)
            blocks, cin = [], width
            for stage, cout in enumerate([width, 2 * width, 4 * width, 8 * width]):
                for index in range(2):
                    stride = 2 if stage > 0 and index == 0 else 1
                    blocks.append(BasicBlock(cin, cout, stride))
                    cin = cout
            self.layers = lib.Sequential(*blocks)
            self.pool = lib.AdaptiveAvgPool2d(1)
            self.fc = lib.Linear(cin, classes)
            self.relu = lib.ReLU()

        def forward(self, x):
            x = self.layers(self.relu(self.bn1(self.conv1(x))))
            return self.fc(self.pool(x).flatten(1))

    return ResNet()


def gradients(batch: int, width: int) -> tuple[list[str], dict[str, list[np.ndarray]]]:
    import torch

    rm.manual_seed(0)
    ours = resnet18(nn, width)
    state = {k: np.array(v.data) for k, v in ours.state_dict().items()}
    gen = np.random.default_rng(0)
    x = gen.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    y = gen.integers(0, 10, batch)

    loss = F.cross_entropy(ours(rm.tensor(x)), rm.tensor(y))
    loss.backward()
    names = [n for n, _ in ours.named_parameters()]
    result = {"ours": [p.grad.data.astype(np.float64) for _, p in ours.named_parameters()]}
    for label, dtype in (("torch32", torch.float32), ("torch64", torch.float64)):
        theirs = resnet18(torch.nn, width).to(dtype)
        theirs.load_state_dict({k: torch.from_numpy(v).to(dtype) if v.dtype.kind == "f"
                                else torch.from_numpy(v) for k, v in state.items()})
        out = theirs(torch.from_numpy(x).to(dtype))
        torch.nn.functional.cross_entropy(out, torch.from_numpy(y)).backward()
        result[label] = [p.grad.double().numpy() for _, p in theirs.named_parameters()]
    return names, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--width", type=int, default=64)
    args = parser.parse_args()
    names, grads = gradients(args.batch, args.width)
    reference = grads["torch64"]

    def errors(label: str) -> np.ndarray:
        return np.array([np.linalg.norm(g - r) / max(np.linalg.norm(r), 1e-30)
                         for g, r in zip(grads[label], reference, strict=True)])

    ours, theirs = errors("ours"), errors("torch32")
    params = sum(g.size for g in reference)
    print(f"ResNet-18 (width {args.width}, {params / 1e6:.1f}M parameters), batch {args.batch}, "
          f"32x32, train-mode BatchNorm; gradient error against PyTorch float64, "
          f"{len(names)} parameter tensors")
    print(f"{'':24}{'median':>12}{'max':>12}")
    print(f"{'reference_models f32':24}{np.median(ours):12.2e}{ours.max():12.2e}")
    print(f"{'PyTorch f32':24}{np.median(theirs):12.2e}{theirs.max():12.2e}")
    print(f"ratio ours / PyTorch: median {np.median(ours) / np.median(theirs):.2f}, "
          f"max {ours.max() / theirs.max():.2f}")
    worst = int(np.argmax(ours))
    print(f"worst parameter (ours): {names[worst]} ({ours[worst]:.2e})")
    direct = np.array([np.linalg.norm(g - r) / max(np.linalg.norm(r), 1e-30)
                       for g, r in zip(grads["ours"], grads["torch32"], strict=True)])
    print(f"ours against PyTorch f32 directly: median {np.median(direct):.2e}, "
          f"max {direct.max():.2e}")


if __name__ == "__main__":
    main()
