"""INT8 fairness: does every shipped INT8 baseline score the same on every x86 CPU?

    .venv/bin/python benchmarks/fairness_int8.py [--quick] [--data-dir DIR]

For each ``reference_models/baselines/*_int8.onnx`` it prints

- natively (this machine's kernels): accuracy under the scorer's optimized session and under the
  graph's exact semantics (``portability.reference_outputs``: optimizations off for QDQ graphs,
  onnx's reference evaluator for dynamic INT8), on the full hidden test set for images and a fixed
  sample of windows for ``tinygpt``, with the largest logit difference and class agreement;
- emulated (``qemu-x86_64 -cpu Haswell``: AVX2, no AVX-512, no VNNI, where onnxruntime takes its
  saturating u8s8 kernels): the largest logit difference and class agreement on a fixed sample
  against the same exact semantics computed natively.

A baseline is portable when the emulated comparison is within ``portability.tolerance`` (QDQ
graphs: 0.05 logits, every class the same; dynamic INT8: 0.5 logits, 99% of the classes; the
tolerance of tests/reference_models/test_int8_portability.py). Nothing is timed
under emulation. ``benchmarks/fairness.py`` calls ``main``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reference_models.compress.portability import (  # noqa: E402
    compare,
    qemu_path,
    reference_outputs,
    run_emulated,
    run_session,
    tolerance,
    within_tolerance,
)

BASELINES = ROOT / "reference_models" / "baselines"
EMULATED_BATCH = 50
# (native sample, emulated sample) per task; None = the whole hidden test set. tinygpt counts
# windows of 64 characters (its reference evaluator is numpy, its emulated attention is slow).
SAMPLES = {"full": {"cifar10": (None, 100), "mnist": (None, 200), "tinygpt": (64, 4)},
           "quick": {"cifar10": (2000, 20), "mnist": (2000, 100), "tinygpt": (16, 2)}}


def _task(name: str) -> str:
    import json

    return json.loads((BASELINES / f"{name}.json").read_text())["task"]


def _hidden(task: str, data_dir, count: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` inputs of the hidden test set (all when None) and their labels
    (next-character targets for tinygpt)."""
    from evaluator.datasets.store import as_model_input, load_hidden
    from evaluator.metrics import window_batches

    hidden = load_hidden(task, "all", data_dir)
    if task == "tinygpt":
        inputs, targets = next(window_batches(hidden.segments, 64, count or 64))
        return np.ascontiguousarray(inputs), np.asarray(targets)
    stop = len(hidden.labels) if count is None else count
    return as_model_input(task, hidden.inputs[:stop]), np.asarray(hidden.labels[:stop])


def _scorer_batch(task: str) -> int:
    """The evaluator's accuracy batch (dynamic INT8 ranges depend on the batch)."""
    from evaluator.latency import LatencyProtocol

    protocol = LatencyProtocol.standard()
    return max(1, protocol.accuracy_tokens // 64) if task == "tinygpt" else protocol.accuracy_batch


def measure(data_dir=None, quick: bool = False) -> tuple[list[dict], str | None]:
    """One row per shipped INT8 baseline, and why the emulated columns are empty (if they are)."""
    samples = SAMPLES["quick" if quick else "full"]
    names = sorted(p.stem for p in BASELINES.glob("*_int8.onnx"))
    rows, emulated_inputs = [], {}
    for name in names:
        task = _task(name)
        model = (BASELINES / f"{name}.onnx").read_bytes()
        native_count, emulated_count = samples[task]
        inputs, labels = _hidden(task, data_dir, native_count)
        batch = _scorer_batch(task)
        optimized = run_session(model, inputs, optimized=True, batch=batch)
        reference = reference_outputs(model, inputs, batch=batch)
        native = compare(optimized, reference)
        rows.append({"model": name, "task": task, "inputs": len(inputs),
                     "accuracy_optimized": float(np.mean(optimized.argmax(-1) == labels)),
                     "accuracy_reference": float(np.mean(reference.argmax(-1) == labels)),
                     "native_max_abs_diff": native["max_abs_diff"],
                     "native_class_agreement": native["class_agreement"],
                     "emulated_inputs": emulated_count})
        emulated_inputs[name] = np.ascontiguousarray(inputs[:emulated_count])
    if qemu_path() is None:
        return rows, "qemu-x86_64 is not installed (apt-get install qemu-user)"
    models = {name: BASELINES / f"{name}.onnx" for name in names}
    outputs = run_emulated(models, emulated_inputs, batch=EMULATED_BATCH, timeout=1800)
    for row in rows:
        name = row["model"]
        found = compare(outputs[name], reference_outputs(models[name], emulated_inputs[name],
                                                         batch=EMULATED_BATCH))
        row.update(emulated_max_abs_diff=found["max_abs_diff"],
                   emulated_class_agreement=found["class_agreement"],
                   tolerance=tolerance(models[name]),
                   portable=within_tolerance(found, models[name]))
    return rows, None


def _machine_line() -> str:
    import onnxruntime

    from evaluator.hardware import cpu_count, cpu_features, cpu_model

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"CPU: {cpu_model()} | features: {', '.join(cpu_features()) or 'none'} | "
            f"{cpu_count()} cores | load average {load} | onnxruntime {onnxruntime.__version__}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2,000 images natively and fewer emulated inputs")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    print(_machine_line(), flush=True)
    rows, missing = measure(args.data_dir, args.quick)
    print("emulated: qemu-x86_64 -cpu Haswell (avx2, no avx512, no vnni) "
          + (f"- skipped: {missing}" if missing else
             "- tolerance: QDQ 0.05 logits and every class, dynamic INT8 0.5 logits and 99%"))
    header = (f"{'model':26s} {'n':>6s} {'acc opt':>8s} {'acc ref':>8s} {'delta':>7s} "
              f"{'max diff':>9s} {'agree':>7s} | {'emu n':>5s} {'max diff':>9s} {'agree':>7s} "
              f"{'portable':>8s}")
    print(header)
    print("-" * len(header))
    for row in rows:
        delta = (row["accuracy_optimized"] - row["accuracy_reference"]) * 100
        line = (f"{row['model']:26s} {row['inputs']:6d} {row['accuracy_optimized']:8.2%} "
                f"{row['accuracy_reference']:8.2%} {delta:+7.2f} "
                f"{row['native_max_abs_diff']:9.4f} {row['native_class_agreement']:7.2%} | ")
        if "emulated_max_abs_diff" in row:
            line += (f"{row['emulated_inputs']:5d} {row['emulated_max_abs_diff']:9.4f} "
                     f"{row['emulated_class_agreement']:7.2%} {'yes' if row['portable'] else 'NO':>8s}")
        else:
            line += f"{'-':>5s} {'-':>9s} {'-':>7s} {'-':>8s}"
        print(line, flush=True)
    print("n: inputs (tinygpt: windows of 64 characters; accuracy over their tokens); delta: "
          "points, optimized - reference; max diff: largest logit difference")
    return 0 if missing or all(row["portable"] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
