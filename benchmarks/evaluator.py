"""Evaluator benchmark: scoring overhead and latency stability, side by side in one run.

    .venv/bin/python benchmarks/evaluator.py [--data-dir DIR] [--repeats 10]

1. Overhead: full ``score()`` of a CIFAR-10 CNN on the 10,000 hidden images (validation, child
   start, data, accuracy, memory, throughput, interleaved latency) against bare onnxruntime
   inference of the same images in this process (same session settings, batch 256). The ratio that
   matters excludes the latency protocol's own fixed budget (throughput + latency stages): aim <= 1.25.
2. Stability: the coefficient of variation of the latency median (and of the speed index) over
   ``--repeats`` full scorings of one model with the standard protocol: aim <= 2%. As a control,
   the same model timed alone in fresh processes on the same core, without the evaluator, shows
   how much of that variation is the machine's.

The CNN is built here with onnx.helper (fixed seed), so the benchmark needs no trained model. CIFAR-10
must be prepared in ``--data-dir``; if it is not, it is imported from ``--shared`` into that folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaluator.datasets import (  # noqa: E402
    DatasetNotPrepared,
    as_model_input,
    import_from,
    load_hidden,
    prepared_entry,
)
from evaluator.latency import LatencyProtocol  # noqa: E402
from evaluator.runtime import make_session  # noqa: E402
from evaluator.sandbox import default_cpu  # noqa: E402
from evaluator.scoring import score  # noqa: E402

BATCH = 256


def cifar_cnn() -> bytes:
    """Three conv-relu-pool blocks (32, 64, 128 channels) and a linear layer: ~10 M MACs/image."""
    rng = np.random.default_rng(0)
    nodes, inits, x, channels = [], [], "image", 3
    for index, width in enumerate((32, 64, 128)):
        w = (rng.standard_normal((width, channels, 3, 3)) / np.sqrt(9 * channels)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{index}"),
                  numpy_helper.from_array(np.zeros(width, np.float32), f"b{index}")]
        nodes += [
            helper.make_node("Conv", [x, f"w{index}", f"b{index}"], [f"c{index}"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", [f"c{index}"], [f"r{index}"]),
            helper.make_node("MaxPool", [f"r{index}"], [f"p{index}"], kernel_shape=[2, 2],
                             strides=[2, 2]),
        ]
        x, channels = f"p{index}", width
    fc = (rng.standard_normal((10, 128 * 16)) / np.sqrt(128 * 16)).astype(np.float32)
    inits += [numpy_helper.from_array(fc, "fc"), numpy_helper.from_array(np.zeros(10, np.float32),
                                                                          "fcb")]
    nodes += [helper.make_node("Flatten", [x], ["flat"]),
              helper.make_node("Gemm", ["flat", "fc", "fcb"], ["scores"], transB=1)]
    graph = helper.make_graph(
        nodes, "bench_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 10])], inits)
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


def bare_inference_seconds(model: bytes, data_dir: Path) -> float:
    """Session creation plus batch-256 inference over both hidden halves, in this process."""
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})  # like the scoring child: one core
    started = time.perf_counter()
    session = make_session(model)
    for half in ("public", "private"):
        hidden = load_hidden("cifar10", half, data_dir)
        for start in range(0, len(hidden.labels), BATCH):
            session.run(None, {"image": as_model_input("cifar10", hidden.inputs[start:start + BATCH])})
    return time.perf_counter() - started


CONTROL = """
import os, sys, time, numpy as np
from evaluator.runtime import make_session
os.sched_setaffinity(0, {int(sys.argv[1])})
session = make_session(sys.stdin.buffer.read())
x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
for _ in range(20):
    session.run(None, {"image": x})
times, started = [], time.perf_counter()
while len(times) < 100 or time.perf_counter() - started < 2.0:
    t = time.perf_counter_ns(); session.run(None, {"image": x}); times.append(time.perf_counter_ns() - t)
print(np.median(times) / 1e6)
"""


def control_median_ms(model: bytes) -> float:
    """Batch-1 median of the model alone in a fresh process on the scoring core (no evaluator)."""
    done = subprocess.run([sys.executable, "-c", CONTROL, str(default_cpu())], input=model,
                          capture_output=True, check=True, cwd=ROOT)
    return float(done.stdout)


def ensure_cifar(data_dir: Path, shared: Path) -> None:
    try:
        prepared_entry("cifar10", data_dir)
    except DatasetNotPrepared:
        print(f"importing CIFAR-10 from {shared} into {data_dir} ...", flush=True)
        import_from(shared, data_dir, ["cifar10"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("ARENA_DATA_DIR", "/tmp/arena-bench-data")))
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    ensure_cifar(args.data_dir, args.shared)
    model = cifar_cnn()
    protocol = LatencyProtocol.standard()

    # Bare inference and full scoring alternate, so both see the same machine load over the run.
    cards, walls, bares, controls = [], [], [], []
    for _ in range(args.repeats):
        bares.append(bare_inference_seconds(model, args.data_dir))
        controls.append(control_median_ms(model))
        started = time.perf_counter()
        cards.append(score(model, "cifar10", data_dir=args.data_dir, protocol=protocol))
        walls.append(time.perf_counter() - started)
    for card in cards:
        assert card["valid"], card["error"]

    first = cards[0]
    bare = statistics.median(bares)
    wall = statistics.median(walls)
    budgets = [c["timings"]["throughput"] + c["timings"]["latency"] for c in cards]
    budget = statistics.median(budgets)
    beyond = statistics.median(w - b for w, b in zip(walls, budgets, strict=True))
    medians = [c["latency_ms"] for c in cards]
    indexes = [c["speed_index"] for c in cards]

    def cv(values):
        return statistics.stdev(values) / statistics.mean(values)

    accuracy_stage = statistics.median(c["timings"]["accuracy"] for c in cards)
    print(f"\nCIFAR-10 CNN ({len(model):,} bytes), 10,000 hidden images, batch {BATCH}, one thread;"
          f" medians of {args.repeats} alternating runs")
    print(f"{'':48}{'seconds':>10}")
    print(f"{'bare onnxruntime inference (in process)':48}{bare:10.2f}")
    print(f"{'full score() wall time':48}{wall:10.2f}")
    print(f"{'  of which protocol budget (throughput+latency)':48}{budget:10.2f}")
    print(f"{'  of which the accuracy pass in the child':48}{accuracy_stage:10.2f}")
    print(f"{'overhead ratio beyond the protocol budget':48}{beyond / bare:10.2f}   (aim <= 1.25)")
    print(f"{'overhead ratio, everything included':48}{wall / bare:10.2f}")
    print(f"\nlatency over {args.repeats} full scorings (standard protocol)")
    print(f"  median of medians {statistics.median(medians):.4f} ms, "
          f"min {min(medians):.4f}, max {max(medians):.4f}")
    print(f"  CV of latency median  {100 * cv(medians):6.2f} %   (aim <= 2%)")
    print(f"  CV of speed index     {100 * cv(indexes):6.2f} %")
    print(f"  control: the model alone in {args.repeats} fresh processes (no evaluator), median "
          f"{statistics.median(controls):.4f} ms, CV {100 * cv(controls):.2f} %")
    print(f"  reference median      {statistics.median(c['reference_latency_ms'] for c in cards):.4f}"
          f" ms; noisy attempts repeated: {sum(len(c['latency_attempts']) - 1 for c in cards)}")
    print(f"  accuracy {first['accuracy']:.4f} (random weights), peak memory "
          f"{first['peak_memory_mb']:.1f} MB, throughput {first['throughput']:.0f} images/s")
    print("\nNote: the machine's 2 cores are shared with other work; figures are noisy.")


if __name__ == "__main__":
    main()
