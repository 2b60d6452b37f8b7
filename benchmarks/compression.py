"""Compression benchmark: every float baseline against each of its compressed forms, side by side.

    .venv/bin/python benchmarks/compression.py --data-dir /tmp/arena-data [--quick]

For each float baseline in ``reference_models/baselines`` (``mnist_mlp``, ``cifar10_cnn``,
``tinygpt`` when present) the forms are: the committed compressed baselines (``*_int8``,
``*_pruned_int8``), plus graph rewrites made here: dynamic INT8 and INT4 weight-only (MatMulNBits),
and, for CIFAR-10, onnxruntime's own ``quantize_static`` (QDQ, per channel) as a reference point
for the framework's PTQ. Each model is scored by the evaluator on the hidden test set (standard
latency protocol unless ``--quick``), and the table prints accuracy delta (points), size ratio
(deflate, float / form) and latency ratio (float / form; > 1 is faster). The float model is scored
again in the same run. The machine is shared: rerun for stable latency figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaluator.scoring import LatencyProtocol, score  # noqa: E402
from reference_models.compress.weight_only import quantize_dynamic, quantize_int4  # noqa: E402

BASELINES = ROOT / "reference_models" / "baselines"
FLOATS = {"mnist_mlp": "mnist", "cifar10_cnn": "cifar10", "tinygpt": "tinygpt"}


def ort_static_reference(float_path: Path, target: Path, data_dir) -> Path:
    """onnxruntime.quantization.quantize_static on the same 2,000 calibration images."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from reference_models.compress.make_baselines import calibration_batches

    batches = calibration_batches("cifar10", data_dir)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"input": b} for b in batches])

        def get_next(self):
            return next(self.items, None)

    quantize_static(str(float_path), str(target), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)
    return target


def forms(name: str, float_path: Path, work: Path, data_dir) -> list[tuple[str, Path]]:
    found = [(p.stem.removeprefix(name + "_"), p) for p in sorted(BASELINES.glob(f"{name}_*.onnx"))]
    model = onnx.load(str(float_path))
    for label, rewrite in (("dynamic_int8", quantize_dynamic), ("int4_weights", quantize_int4)):
        path = work / f"{name}_{label}.onnx"
        path.write_bytes(rewrite(model).SerializeToString())
        found.append((label, path))
    if name == "cifar10_cnn":
        found.append(("ort_quantize_static",
                      ort_static_reference(float_path, work / "ort_static.onnx", data_dir)))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="quick latency protocol (noisy)")
    parser.add_argument("--only", choices=sorted(FLOATS), default=None)
    args = parser.parse_args()
    protocol = LatencyProtocol.quick() if args.quick else LatencyProtocol.standard()
    header = (f"{'baseline':<13}{'form':<22}{'accuracy':>9}{'delta pts':>10}{'size B':>10}"
              f"{'size x':>8}{'lat ms':>9}{'lat x':>7}{'int kernels':>13}")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as folder:
        for name, task in FLOATS.items():
            float_path = BASELINES / f"{name}.onnx"
            if not float_path.is_file() or args.only not in (None, name):
                continue
            base = score(float_path, task, data_dir=args.data_dir, protocol=protocol)
            _row(name, "float32", base, base, float_path)
            for label, path in forms(name, float_path, Path(folder), args.data_dir):
                card = score(path, task, data_dir=args.data_dir, protocol=protocol)
                _row(name, label, card, base, path)
    print("\nsize x = float deflate size / form's; lat x = float latency / form's (batch 1, one "
          "thread, median); shared 2-core machine: latency ratios move by ~10% between runs.")
    return 0


def _row(name: str, label: str, card: dict, base: dict, path: Path) -> None:
    from reference_models.compress.quantize import integer_kernel_count

    if not card["valid"]:
        print(f"{name:<13}{label:<22} refused: {card['error'][:80]}")
        return
    metric = "accuracy"
    delta = (card[metric] - base[metric]) * 100
    kernels = ",".join(f"{k}x{v}" for k, v in integer_kernel_count(path).items()) or "-"
    print(f"{name:<13}{label:<22}{card[metric]:>9.2%}{delta:>+10.2f}{card['size_bytes']:>10,}"
          f"{base['size_bytes'] / card['size_bytes']:>8.2f}{card['latency_ms']:>9.3f}"
          f"{base['latency_ms'] / card['latency_ms']:>7.2f}  {kernels}", flush=True)
    if card.get("bits_per_char") is not None:
        print(f"{'':<35}bits/char {card['bits_per_char']:.3f} (float "
              f"{base['bits_per_char']:.3f})")


if __name__ == "__main__":
    np.set_printoptions(suppress=True)
    raise SystemExit(main())
